"""Instructions per inference with the CMSIS-NN kernels against TFLM's portable reference kernels, side by
side in one run on the emulated Cortex-M4 (QEMU mps2-an386, -icount shift=0: exact, repeatable counts),
and instructions per multiply-accumulate in the convolution layers.

Both builds are the same generated firmware and the same pinned TFLM library; the reference build links
bench/reference_kernels.cpp, which registers the reference int8 CONV_2D and DEPTHWISE_CONV_2D in place of
the CMSIS-NN ones. Every other operator (pooling, fully connected, softmax, add) keeps its CMSIS-NN kernel
in both builds, so the totals compare the convolutions only. Both builds must pass their golden vectors.

    python bench/kernels.py [--tflm DIR] [MODEL.tflite ...]     (default: the bundled example)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "host" / "tinydeploy" / "examples" / "fashion_cnn_int8.tflite"
CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def run(elf: Path) -> dict:
    from tinydeploy.device.bench import run_bench
    from tinydeploy.device.link import Link
    from tinydeploy.emulate.qemu import QemuSession

    with QemuSession(elf) as q, Link.open(url=q.url) as link:
        d = run_bench(link, runs=3, warmup=1).to_dict()
    if not all(g["pass"] for g in d["golden"]):
        raise SystemExit(f"{elf}: golden vectors failed, the figures would mean nothing")
    return d


def main() -> int:
    from tinydeploy.analyze import analyze
    from tinydeploy.boards import load
    from tinydeploy.emulate.firmware import build_firmware
    from tinydeploy.emulate.tflm_library import TflmLibrary
    from tinydeploy.tflite_model import TFLiteModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path, default=[EXAMPLE])
    ap.add_argument("--tflm", help="the Arduino_TensorFlowLite folder (default: $TINYDEPLOY_TFLM_DIR)")
    args = ap.parse_args()
    lib = TflmLibrary.locate(args.tflm)
    board = load("nano33ble")
    print(f"TFLM: {lib.root}\n")
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.models:
            project = Path(tmp) / path.stem
            subprocess.run([sys.executable, "-m", "tinydeploy", "build", str(path), "-o", str(project), "--no-compile"],
                           check=True, capture_output=True)
            cmsis = run(build_firmware(project, lib, board, out_dir=project / ".emu-cmsis").elf)
            ref = run(build_firmware(project, lib, board, out_dir=project / ".emu-reference",
                                     extra_sources=(HERE / "reference_kernels.cpp",)).elf)
            ops = analyze(TFLiteModel.from_file(path), board, measure_arena=False).ops
            print(f"{path.name}: instructions per inference (median of 3 runs)")
            print(f"  {'#':>2}  {'op':<18} {'MACs':>10} {'CMSIS-NN':>11} {'reference':>11} {'ratio':>6} "
                  f"{'instr/MAC':>10} {'ref instr/MAC':>13}")
            conv_c = conv_r = conv_macs = 0
            for o, c, r in zip(ops, cmsis["ops"], ref["ops"]):
                assert o.op == c["tag"] == r["tag"], (o.op, c["tag"], r["tag"])
                line = f"  {o.index:>2}  {o.op:<18} {o.macs:>10,} {c['cycles']:>11,} {r['cycles']:>11,} " \
                       f"{r['cycles'] / max(c['cycles'], 1):>5.2f}x"
                if o.op in CONV_OPS and o.macs:
                    line += f" {c['cycles'] / o.macs:>10.2f} {r['cycles'] / o.macs:>13.2f}"
                    conv_c, conv_r, conv_macs = conv_c + c["cycles"], conv_r + r["cycles"], conv_macs + o.macs
                print(line)
            tc, tr = cmsis["latency"]["instructions"]["median"], ref["latency"]["instructions"]["median"]
            print(f"  total: CMSIS-NN {tc:,}, reference convolutions {tr:,} ({tr / tc:.2f}x); convolutions alone "
                  f"{conv_c / conv_macs:.2f} vs {conv_r / conv_macs:.2f} instructions per MAC ({conv_r / conv_c:.2f}x)\n")
            summary.append((path.name, tc, tr))
    print("model                          CMSIS-NN    reference   ratio")
    for name, tc, tr in summary:
        print(f"{name:<28} {tc:>11,} {tr:>11,}   {tr / tc:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
