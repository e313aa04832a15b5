"""Wall time of the commands that must stay fast (analyze < 2 s, build < 3 s, no TensorFlow import),
measured side by side in one run on the bundled example. Prints medians of N runs.

    python bench/cli_speed.py [N]
"""

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "host" / "tinydeploy" / "examples" / "fashion_cnn_int8.tflite"


def timed(args):
    t = time.monotonic()
    subprocess.run([sys.executable, "-m", "tinydeploy", *args], check=True, capture_output=True)
    return time.monotonic() - t


def main(n=5):
    res = {"python -c pass": [], "analyze": [], "build": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            t = time.monotonic()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            res["python -c pass"].append(time.monotonic() - t)
            res["analyze"].append(timed(["analyze", str(EXAMPLE)]))
            res["build"].append(timed(["build", "-o", f"{tmp}/p{i}", "--no-compile"]))
    for k, v in res.items():
        print(f"{k:16s} median {statistics.median(v):.3f} s  (min {min(v):.3f}, max {max(v):.3f}, n={n})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
