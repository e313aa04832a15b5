"""Structured pruning on full Fashion-MNIST (`tinydeploy compress --prune-filters 0.5`), side by side in one run:
the parent trains E epochs; the parent trained F more epochs is the equal-epoch baseline; the filter-pruned copy
(half the filters of every convolution and hidden layer removed) is fine-tuned F epochs. All three are int8.
Then each int8 model runs on the emulated Cortex-M4 (firmware compiled against the pinned TFLM, QEMU mps2-an386):
instructions per inference and the arena the firmware really used.

    python bench/prune_filters.py [EPOCHS] [FINETUNE_EPOCHS] [FAMILY]      (default 5, 2, custom_cnn)

Needs the emulator (gcc-arm-none-eabi, qemu-system-arm) and the pinned library in $TINYDEPLOY_TFLM_DIR; without them
the instruction columns say "-" and the latency is the cycle model's estimate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def emulated(path: Path) -> dict | None:
    from tinydeploy import boards
    from tinydeploy.analyze import analyze
    from tinydeploy.emulate.measure import measure
    from tinydeploy.errors import TinyDeployError
    from tinydeploy.tflite_model import TFLiteModel

    from tinydeploy.repair import repair

    model = repair(TFLiteModel.from_file(path)).model
    a = analyze(model, boards.load("nano33ble"))
    try:
        return measure(model, a, tflm=os.environ.get("TINYDEPLOY_TFLM_DIR"), runs=1, name=path.stem).to_dict()
    except TinyDeployError as e:
        print(f"(not emulated: {e})", file=sys.stderr)
        return None


def main() -> int:
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    finetune = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    family = sys.argv[3] if len(sys.argv) > 3 else "custom_cnn"
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "tinydeploy", "compress", "--dataset", "fashion-mnist", "--model",
                            family, "--epochs", str(epochs), "--finetune-epochs", str(finetune), "--variants", "int8",
                            "--prune-filters", "0.5", "-o", f"{tmp}/out", "--json", "-"], capture_output=True, text=True)
        seconds = time.monotonic() - t0
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            return r.returncode
        rows = {x["name"]: x for x in json.loads(r.stdout)["rows"]}
        names = (family, f"{family}_plus{finetune}ep", f"{family}_filters50")
        em = {n: emulated(Path(tmp) / "out" / f"{n}_int8.tflite") for n in names}
    print(f"Fashion-MNIST, {family}, full training set, 10,000 test images; compress {seconds:.0f} s on this machine")
    print(f"{'model (int8)':<28} {'epochs':>6} {'MACs':>10} {'params':>7} {'bytes':>7} {'arena':>7} "
          f"{'instructions':>12} {'accuracy':>8}")
    for n, ep in zip(names, (epochs, epochs + finetune, epochs + finetune)):
        x, e = rows[n], em[n]
        print(f"{n:<28} {ep:>6} {x['macs']:>10,} {x['params']:>7,} {x['bytes']:>7,} "
              f"{(e['arena_used_bytes'] if e else x['arena_bytes']):>7,} {(format(e['instructions'], ',') if e else '-'):>12} "
              f"{x['accuracy']:>8.4f}")
    p, s = rows[family], rows[f"{family}_filters50"]
    ep, es = em[family], em[f"{family}_filters50"]
    print(f"filters50 / parent: MACs {s['macs'] / p['macs']:.3f}x, bytes {s['bytes'] / p['bytes']:.3f}x, "
          f"params {s['params'] / p['params']:.3f}x"
          + (f", arena {es['arena_used_bytes'] / ep['arena_used_bytes']:.3f}x, instructions "
             f"{es['instructions'] / ep['instructions']:.3f}x (emulated)" if ep and es else
             f", latency {s['latency_ms_estimate'] / p['latency_ms_estimate']:.3f}x (cycle-model estimate)"))
    print(f"accuracy against the parent trained as many epochs ({epochs + finetune}): {s['vs_equal_epochs_pp']:+.2f} pp")
    ok = s["macs"] <= 0.55 * p["macs"] and s["bytes"] <= 0.55 * p["bytes"]
    print("target (<= 0.55x MACs and bytes): " + ("met" if ok else "not met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
