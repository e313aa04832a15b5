"""Quantization-aware training against post-training int8 after the same number of epochs, on full Fashion-MNIST,
side by side in one run (`tinydeploy compress --qat`): the parent trains E epochs; then the parent trained F more
epochs is converted post-training, and a QAT copy of the parent is fine-tuned F epochs and converted.

    python bench/qat.py [EPOCHS] [FINETUNE_EPOCHS]      (default 3 and 2)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time


def main() -> int:
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    finetune = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "tinydeploy", "compress", "--dataset", "fashion-mnist", "--model",
                            "custom_cnn", "--epochs", str(epochs), "--finetune-epochs", str(finetune), "--variants",
                            "int8", "--qat", "-o", f"{tmp}/out", "--json", "-"], capture_output=True, text=True)
        seconds = time.monotonic() - t0
    if r.returncode != 0:
        print(r.stderr, file=sys.stderr)
        return r.returncode
    rows = {x["name"]: x for x in json.loads(r.stdout)["rows"]}
    ptq, qat, parent = rows[f"custom_cnn_plus{finetune}ep"], rows["custom_cnn_qat"], rows["custom_cnn"]
    print(f"Fashion-MNIST, custom_cnn, full training set, 10,000 test images; {seconds:.0f} s on this machine")
    print(f"{'model':<40} {'epochs':>6} {'bytes':>8} {'TFLite acc.':>11} {'TFLM acc.':>10}")
    for label, row, n in (("parent, post-training int8", parent, epochs),
                          ("parent + more epochs, post-training int8", ptq, epochs + finetune),
                          ("QAT fine-tuned, int8", qat, epochs + finetune)):
        print(f"{label:<40} {n:>6} {row['bytes']:>8,} {row['accuracy']:>11.4f} {row['tflm_accuracy']:>10.4f}")
    print(f"QAT - post-training int8 at equal epochs: {qat['vs_equal_epochs_pp']:+.2f} pp")
    return 0


if __name__ == "__main__":
    sys.exit(main())
