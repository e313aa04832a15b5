"""Instructions per inference and per operator with tinydeploy's own kernels, the pinned library's CMSIS-NN kernels
and TFLM's portable reference kernels, side by side in one run on the emulated Cortex-M4 (QEMU mps2-an386,
-icount shift=0: exact, repeatable counts), with instructions per multiply-accumulate, estimated Cortex-M4 cycles
beside them (emulate/cycles.py: the TRM's timings over the instruction stream; an estimate), each firmware's .text
and the arena it used.

Three builds of the same generated firmware against the same pinned TFLM library:
  tinydeploy  `build --kernels tinydeploy`: tinydeploy's kernels where it has them (firmware/kernels/kernels.json),
              the library's CMSIS-NN kernels for every other op and node;
  cmsis-nn    the default build: the library's kernels;
  reference   the default build linked with bench/reference_kernels.cpp: TFLM's reference CONV_2D and
              DEPTHWISE_CONV_2D in place of CMSIS-NN's (every other op keeps its CMSIS-NN kernel).
Every build must pass its golden vectors, and the tinydeploy build's outputs must equal the reference build's on
the same random inputs, or the figures would mean nothing.

Models (bench/models.py; untrained weights, calibrated on random data: enough for speed): the bundled Fashion-MNIST
CNN, a MobileNetV1-0.25-style net at 96x96x3, a DS-CNN-style keyword net (49x10x1, 64-channel depthwise-separable
blocks), a ResNet-8-style CIFAR-10 net (32x32x3, residual ADDs) and an FC autoencoder (640 inputs), with --study
the study's families too, or the .tflite files given.

    python bench/kernels.py [--tflm DIR] [--study] [--json F] [MODEL.tflite ...]

--json F writes the same figures for scripts (F "-": stdout, the tables then on stderr): per model its ops (MACs or
elements, instructions and estimated cycles per build), totals, .text, flash constants and arena; the op classes;
the ops slower than with the library's kernels.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from models import benchmark_models  # noqa: E402  (bench/models.py: the benchmark models)

EXAMPLE = HERE.parent / "host" / "tinydeploy" / "examples" / "fashion_cnn_int8.tflite"
BUILDS = ("tinydeploy", "cmsis-nn", "reference")


def op_class(model, index: int) -> str:
    """The issue's op classes: what an op's instructions per MAC (per output element for ADD/MUL) are judged by."""
    op = model.operators[index]
    if op.opname == "CONV_2D":
        _, kh, kw, cin = model.tensors[op.inputs[1]].shape
        if cin <= 4:
            return "CONV_2D first layer (1-4 ch)"
        if kh == kw == 1:
            if int(np.prod(model.tensors[op.outputs[0]].shape[:3])) == 1:
                return "FULLY_CONNECTED as 1x1 CONV_2D"  # a per-channel dense layer, as repair() rewrites it
            return "CONV_2D 1x1 from <= 16 ch" if cin <= 16 else "CONV_2D 1x1"
        return "CONV_2D other"
    return op.opname


PER_ELEMENT = ("ADD", "MUL")  # judged per output element, not per MAC
PER_INPUT = ("MEAN", "MAX_POOL_2D")  # no MACs: judged per input value they read


def unit(cls: str) -> str:
    return "output element" if cls in PER_ELEMENT else ("input value" if cls in PER_INPUT else "MAC")


def run(elf: Path, x: np.ndarray) -> tuple[dict, np.ndarray]:
    """The bench's report (with the cycle estimate's per-op figures as d["cycles_estimate"]) and the outputs for x."""
    import dataclasses

    from tinydeploy.device.bench import run_bench
    from tinydeploy.device.link import Link
    from tinydeploy.device.runner import device_outputs
    from tinydeploy.emulate.cycles import CycleProbe, estimate
    from tinydeploy.emulate.firmware import EmulatedTarget
    from tinydeploy.emulate.qemu import QemuSession

    with tempfile.TemporaryDirectory() as logs:
        probe = CycleProbe.for_elf(elf, Path(logs) / "cycles.log")
        target = EmulatedTarget.load()
        target = dataclasses.replace(target, qemu_args=(*target.qemu_args, *probe.qemu_args()))
        with QemuSession(elf, target) as q, Link.open(url=q.url) as link:
            d = run_bench(link, runs=3, warmup=1, timeout=1200, idle_timeout=600).to_dict()
            link.drain(0.2)
            outs, _ = device_outputs(link, x)
        d["cycles_estimate"] = estimate(probe.entries(), d["ops"])
    if not all(g["pass"] for g in d["golden"]):
        raise SystemExit(f"{elf}: golden vectors failed, the figures would mean nothing")
    if d["cycles_estimate"] is None:
        raise SystemExit(f"{elf}: the cycle plugin's log does not match the firmware's op counts")
    return d, outs


def flash_constants(emu_dir: Path) -> int:
    """Bytes of model_params.o (the per-channel parameters and op data the build wrote into flash) in a firmware
    build's folder: .text + .data as arm-none-eabi-size counts them, 0 where the build has none."""
    from tinydeploy.emulate.toolchain import ArmToolchain

    obj = emu_dir / "model_params.o"
    if not obj.exists():
        return 0
    # Berkeley format: an object's .rodata counts in text (emulate/firmware.py's _sizes reads a linked ELF's sections)
    out = subprocess.run([ArmToolchain.find().size, str(obj)], check=True, capture_output=True, text=True).stdout
    text, data = (int(v) for v in out.splitlines()[1].split()[:2])
    return text + data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--tflm", help="the Arduino_TensorFlowLite folder (default: $TINYDEPLOY_TFLM_DIR)")
    ap.add_argument("--study", action="store_true", help="the study's families too (bench/models.py)")
    ap.add_argument("--json", help="also write the figures as JSON to this file ('-': stdout, the tables to stderr)")
    args = ap.parse_args()
    with contextlib.redirect_stdout(sys.stderr) if args.json == "-" else contextlib.nullcontext():
        report = measure(args)
    if args.json == "-":
        sys.stdout.write(json.dumps(report, indent=1) + "\n")
    elif args.json:
        from tinydeploy.fsutil import write_json_atomic

        write_json_atomic(args.json, report)
    return 0


def measure(args) -> dict:
    """Builds, runs and prints everything; returns the figures for --json."""
    from tinydeploy.analyze import analyze
    from tinydeploy.boards import load
    from tinydeploy.emulate.firmware import build_firmware
    from tinydeploy.emulate.tflm_library import TflmLibrary
    from tinydeploy.tflite_model import TFLiteModel

    lib = TflmLibrary.locate(args.tflm)
    report: dict = {"tflm": str(lib.root), "builds": list(BUILDS), "models": {}, "classes": {}, "slower": []}
    board = load("nano33ble")
    print(f"TFLM: {lib.root}\n")
    summary = []
    all_classes: dict[str, list[int]] = {}  # op class: [MACs or elements, tinydeploy, CMSIS-NN, reference]
    slower: list[tuple] = []  # (model, op index, op, tinydeploy, CMSIS-NN): ops tinydeploy's build runs slower
    with tempfile.TemporaryDirectory() as tmp:
        models = args.models or [EXAMPLE, *benchmark_models(Path(tmp), study=args.study)]
        for path in models:
            projects = {}
            for k in ("tinydeploy", "cmsis-nn"):
                projects[k] = Path(tmp) / f"{path.stem}-{k}"
                subprocess.run([sys.executable, "-m", "tinydeploy", "build", str(path), "-o", str(projects[k]),
                                "--no-compile", "--kernels", k], check=True, capture_output=True)
            extra = {"reference": (HERE / "reference_kernels.cpp",)}
            model = TFLiteModel.from_file(projects["tinydeploy"] / "model.tflite")  # as deployed: repaired, folded
            shape = tuple(model.input_tensors[0].shape)
            x = np.random.default_rng(3).integers(-128, 128, size=(5, int(np.prod(shape)))).astype(np.int8)
            res, text, outs = {}, {}, {}
            for b in BUILDS:
                image = build_firmware(projects["tinydeploy" if b == "tinydeploy" else "cmsis-nn"], lib, board,
                                       out_dir=Path(tmp) / f"{path.stem}-emu-{b}", extra_sources=extra.get(b, ()))
                res[b], outs[b] = run(image.elf, x)
                text[b] = image.text_bytes
            consts = flash_constants(Path(tmp) / f"{path.stem}-emu-tinydeploy")
            if not np.array_equal(outs["tinydeploy"], outs["reference"]):
                raise SystemExit(f"{path.name}: tinydeploy's outputs differ from the reference kernels'")
            ops = analyze(model, board, measure_arena=False).ops
            print(f"{path.name}: instructions per op (exact, the cycle plugin's count) and per MAC")
            print(f"  {'#':>3}  {'op':<18} {'MACs':>10} {'tinydeploy':>11} {'CMSIS-NN':>11} {'reference':>11}"
                  f" {'td/MAC':>7} {'cmsis/MAC':>9} {'ref/MAC':>8} {'vs CMSIS':>8}")
            by_class: dict[str, list[int]] = {}
            cyc = {b: [o["cycles"] for o in res[b]["cycles_estimate"]["ops"]] for b in BUILDS}
            op_rows = []
            # per op: the cycle plugin's exact instruction counts (the firmware's own tick by 40)
            for o, *counts in zip(ops, *(res[b]["cycles_estimate"]["ops"] for b in BUILDS)):
                t, c, r = (x["instructions_exact"] for x in counts)
                slower.extend([(path.name, o.index, o.op, t, c)] if t > c else [])
                assert o.op == counts[0]["tag"] == counts[1]["tag"] == counts[2]["tag"]
                line = f"  {o.index:>3}  {o.op:<18} {o.macs:>10,} {t:>11,} {c:>11,} {r:>11,}"
                if o.op in PER_ELEMENT:
                    work = int(np.prod(o.output_shape))
                elif o.op in PER_INPUT:
                    work = int(np.prod(model.tensors[model.operators[o.index].inputs[0]].shape))
                else:
                    work = o.macs
                cls = op_class(model, o.index) if work else None
                if work:
                    line += f" {t / work:>7.2f} {c / work:>9.2f} {r / work:>8.2f}"
                    acc = by_class.setdefault(cls, [0] * 7)
                    for i, v in enumerate((work, t, c, r, cyc["tinydeploy"][o.index], cyc["cmsis-nn"][o.index],
                                           cyc["reference"][o.index])):
                        acc[i] += v
                else:
                    line += " " * 27
                print(line + f" {c / max(t, 1):>7.2f}x")
                op_rows.append({"index": o.index, "op": o.op, "class": cls, "work": work,
                                "unit": unit(cls) if cls else None,
                                "instructions": dict(zip(BUILDS, (t, c, r))),
                                "est_cycles": {b: cyc[b][o.index] for b in BUILDS}})
            tot = {b: res[b]["latency"]["instructions"]["median"] for b in BUILDS}
            ours_total = sum(x["instructions_exact"] for x in res["tinydeploy"]["cycles_estimate"]["ops"])
            for cls, vals in sorted(by_class.items()):
                work, t, c, r, tc, cc, rc = vals
                print(f"  {cls}: {t / work:.2f} (tinydeploy) vs {c / work:.2f} (CMSIS-NN) vs {r / work:.2f} "
                      f"(reference) instructions per {unit(cls)}, est. cycles {tc / work:.2f} / {cc / work:.2f} / "
                      f"{rc / work:.2f}; {t / ours_total:.0%} of tinydeploy's instructions")
                agg = all_classes.setdefault(cls, [0] * 7)
                for i, v in enumerate(vals):
                    agg[i] += v
            arena = {b: (res[b].get("arena") or {}).get("used", 0) for b in BUILDS}
            cycles = {b: res[b]["cycles_estimate"]["cycles_per_inference"] for b in BUILDS}
            print(f"  estimated cycles per inference: tinydeploy {cycles['tinydeploy']:,}, CMSIS-NN "
                  f"{cycles['cmsis-nn']:,} ({cycles['cmsis-nn'] / cycles['tinydeploy']:.2f}x), reference "
                  f"{cycles['reference']:,}")
            print(f"  arena used: tinydeploy {arena['tinydeploy']:,} B, CMSIS-NN {arena['cmsis-nn']:,} B, "
                  f"reference {arena['reference']:,} B")
            print(f"  total: tinydeploy {tot['tinydeploy']:,}, CMSIS-NN {tot['cmsis-nn']:,} "
                  f"({tot['cmsis-nn'] / tot['tinydeploy']:.2f}x tinydeploy's), reference {tot['reference']:,}; "
                  f".text {text['tinydeploy']:,} / {text['cmsis-nn']:,} / {text['reference']:,} B; outputs of the "
                  f"tinydeploy build identical to the reference build's on {len(x)} random inputs\n")
            summary.append((path.name, tot, text, arena, cycles, consts))
            report["models"][path.name] = {"instructions": tot, "est_cycles": cycles, "text_bytes": text,
                                           "flash_constants_bytes": consts, "arena_used_bytes": arena, "ops": op_rows}
    print("op classes over all models: instructions per MAC (per output element for ADD, MUL; per input value for MEAN, "
          "MAX_POOL_2D); estimated cycles the same")
    print(f"  {'class':<30} {'tinydeploy':>10} {'CMSIS-NN':>9} {'reference':>9}  CMSIS/td   est. cycles td / CMSIS-NN")
    for cls, (work, t, c, r, tc, cc, rc) in sorted(all_classes.items()):
        print(f"  {cls:<30} {t / work:>10.2f} {c / work:>9.2f} {r / work:>9.2f}  {c / t:>7.2f}x   "
              f"{tc / work:.2f} / {cc / work:.2f} ({cc / tc:.2f}x)")
        report["classes"][cls] = {"unit": unit(cls), "work": work, "instructions": dict(zip(BUILDS, (t, c, r))),
                                  "est_cycles": dict(zip(BUILDS, (tc, cc, rc))),
                                  "per_unit": {b: round(v / work, 4) for b, v in zip(BUILDS, (t, c, r))}}
    print()
    print(f"ops slower in tinydeploy's build than in the library's (exact instructions): {len(slower)}")
    for name, i, op, t, c in slower:
        print(f"  {name} #{i} {op}: {t:,} vs {c:,} (+{t - c:,})")
        report["slower"].append({"model": name, "index": i, "op": op, "tinydeploy": t, "cmsis-nn": c})
    print()
    print(f"{'model':<28} {'tinydeploy':>11} {'CMSIS-NN':>11} {'reference':>11}  CMSIS/td  est. cycles CMSIS/td"
          f"  .text td-CMSIS  (constants)  code td-CMSIS  arena td-CMSIS")
    for name, tot, text, arena, cycles, consts in summary:
        dt = text['tinydeploy'] - text['cmsis-nn']
        print(f"{name:<28} {tot['tinydeploy']:>11,} {tot['cmsis-nn']:>11,} {tot['reference']:>11,}  "
              f"{tot['cmsis-nn'] / tot['tinydeploy']:>7.2f}x  {cycles['cmsis-nn'] / cycles['tinydeploy']:>17.2f}x"
              f"  {dt:>+13,} B  {consts:>9,} B  {dt - consts:>+13,} B  {arena['tinydeploy'] - arena['cmsis-nn']:>+12,} B")
    print("(constants: model_params.o, what the build moved from the arena to flash: per-channel multipliers and shifts,"
          " op data; code: the rest of the .text difference)")
    return report


if __name__ == "__main__":
    sys.exit(main())
