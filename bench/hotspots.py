"""Where a model's instructions go on the emulated Cortex-M4, per firmware function: the tool for kernel work.

Builds MODEL's firmware (`--kernels tinydeploy` unless told), runs it on QEMU with the cycle plugin's profile
(emulate/cycles_plugin.c, `profile=`: every translated block's instructions and executions, written when QEMU
exits), sends INPUTS random inputs, and sums the executed instructions per function of the ELF's symbol table
(arm-none-eabi-nm). Counts are exact; they include start-up and the serial protocol, which the per-op counts of
`emulate` do not.

    python bench/hotspots.py MODEL.tflite [--kernels tinydeploy|cmsis-nn] [--inputs N] [--top N] [--json F]
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import dataclasses
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# Where the firmware waits for the host (its main loop polling the UART) and its start-up: left out of the shares
IDLE = ("loop()", "UartSerial::available()", "Reset_Handler")


def symbols(elf: Path) -> tuple[list[int], list[str]]:
    """Function start addresses (sorted, Thumb bit off) and their demangled names."""
    out = subprocess.run(["arm-none-eabi-nm", "-C", "-n", "--defined-only", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    starts, names = [], []
    for line in out.splitlines():
        addr, _, rest = line.partition(" ")
        kind, _, name = rest.partition(" ")
        if kind.lower() in ("t", "w") and name:
            starts.append(int(addr, 16) & ~1)
            names.append(name)
    return starts, names


def per_function(profile: Path, elf: Path) -> dict[str, int]:
    starts, names = symbols(elf)
    totals: dict[str, int] = {}
    for line in profile.read_text().splitlines():
        addr, insns, runs = line.split()
        i = bisect.bisect_right(starts, int(addr, 16)) - 1
        name = names[i] if i >= 0 else "?"
        totals[name] = totals.get(name, 0) + int(insns) * int(runs)
    return totals


def main() -> int:
    from tinydeploy.boards import load
    from tinydeploy.device.link import Link
    from tinydeploy.device.runner import device_outputs
    from tinydeploy.emulate.cycles import CycleProbe
    from tinydeploy.emulate.firmware import EmulatedTarget, build_firmware
    from tinydeploy.emulate.qemu import QemuSession
    from tinydeploy.emulate.tflm_library import TflmLibrary
    from tinydeploy.tflite_model import TFLiteModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--kernels", default="tinydeploy", choices=("tinydeploy", "cmsis-nn"))
    ap.add_argument("--inputs", type=int, default=1, help="random inputs to run (default 1)")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--tflm", help="the Arduino_TensorFlowLite folder (default: $TINYDEPLOY_TFLM_DIR)")
    ap.add_argument("--json", type=Path, help="write {function: instructions} here")
    ap.add_argument("--keep", type=Path, help="keep the project, the ELF and the raw profile in this new folder")
    args = ap.parse_args()
    lib = TflmLibrary.locate(args.tflm)
    if args.keep:
        args.keep.mkdir(parents=True)
    with (contextlib.nullcontext(str(args.keep)) if args.keep else tempfile.TemporaryDirectory()) as tmp:
        project = Path(tmp) / "project"
        subprocess.run([sys.executable, "-m", "tinydeploy", "build", str(args.model), "-o", str(project), "--no-compile",
                        "--kernels", args.kernels], check=True, capture_output=True)
        image = build_firmware(project, lib, load("nano33ble"), out_dir=Path(tmp) / "emu")
        profile = Path(tmp) / "profile.txt"
        probe = CycleProbe.for_elf(image.elf, Path(tmp) / "cycles.log", profile)
        target = EmulatedTarget.load()
        target = dataclasses.replace(target, qemu_args=(*target.qemu_args, *probe.qemu_args()))
        shape = tuple(TFLiteModel.from_file(project / "model.tflite").input_tensors[0].shape)
        x = np.random.default_rng(0).integers(-128, 128, size=(args.inputs, int(np.prod(shape)))).astype(np.int8)
        with QemuSession(image.elf, target) as q, Link.open(url=q.url) as link:
            device_outputs(link, x)
            q.proc.terminate()  # SIGTERM: QEMU exits cleanly and its plugin writes the profile (the session kills)
            q.proc.wait(timeout=30)
        if not profile.is_file() or not profile.read_text():
            raise SystemExit("QEMU wrote no profile (did it exit before its plugins' exit callbacks?)")
        totals = per_function(profile, image.elf)
    idle = sum(totals.get(k, 0) for k in IDLE)
    total = sum(totals.values()) - idle
    print(f"{args.model.name} ({args.kernels} kernels, {args.inputs} input(s)): {total:,} instructions, set-up and "
          f"the serial protocol included, {idle:,} more waiting for the host ({', '.join(IDLE)})")
    work = {k: v for k, v in totals.items() if k not in IDLE}
    for name, n in sorted(work.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"  {n:>12,}  {100 * n / total:5.1f} %  {name[:110]}")
    if args.json:
        args.json.write_text(json.dumps(totals, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
