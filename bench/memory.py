"""RAM side by side in one run: TFLM's own memory planner against tinydeploy's offline plan, for every benchmark
model (bench/models.py: MobileNetV1-0.25 at 96x96, a DS-CNN keyword net, a ResNet-8-style CIFAR net, the study's
families, the bundled example), each built as a user builds it and measured on the emulated Cortex-M4.

For each model, three builds (`tinydeploy build --arena measured`, then `tinydeploy emulate`): TFLM's planner and the
library's kernels (`--memory-plan tflm`), tinydeploy's offline plan (`--memory-plan offline`, the default), and the
plan with tinydeploy's kernels (`--kernels tinydeploy`: per-channel requantization parameters in flash); the first and
the last also with build's default arena (the host estimate and its margin), for the RAM a default build links:
  bound      the arena head's lower bound (analyze's `memory`: the most activation bytes live at one operator,
             16-byte aligned; kernels' scratch not included), with TFLM's lifetimes, and with the input kept to the end
             as the offline plan keeps it
  head       the head the plan places activations in: TFLM's greedy planner as the TFLM host interpreter's recording
             allocator reports it, or the offline plan's own extent (the host interpreter, which honours the plan,
             reports the same head: checked below)
  arena      the firmware's arena_used_bytes() on the emulated Cortex-M4 (head, kernels' scratch and TFLM's
             persistent tail), exact
  shared     what the planned firmware's one copy of each distinct builtin data struct saves
             (firmware/td_builtin_data.h): the arena of the last build again with TD_SHARE_BUILTIN_DATA 0, less its own
  floor      what the interpreter itself allocates around the planned head, whatever the kernels: a TfLiteEvalTensor
             for every tensor of the deployed model, a NodeAndRegistration for every node and a TfLiteTensor for every
             graph input and output, at their sizes on the device (tflm_runtime.json's interpreter_structs, checked
             against the pinned headers by tests/test_interpreter_structs.py), plus the planned head; target: issue
             #21's 1.10 x bound* + 2 KB, which a model whose floor exceeds it cannot meet under TFLM's interpreter
  RAM        the linked firmware's .data + .bss (the arena as `--arena measured` sizes it, the input copy where
             there is one, everything else), exact
  flash      the linked firmware's .text + .data
Every build passes its golden vectors on the emulator; each planned model's outputs equal the unplanned model's on
20 random inputs in the host TFLM interpreter (the plan the library's kernels get: the host's TFLM cannot run a
depthwise node in place) and on the emulated firmware (with either kernels; tinydeploy's with its nodes in place).

    python bench/memory.py [--tflm DIR] [MODEL.tflite ...]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from models import benchmark_models  # noqa: E402

EXAMPLE = HERE.parent / "host" / "tinydeploy" / "examples" / "fashion_cnn_int8.tflite"
# name: (memory plan, kernels)
CONFIGS = {"tflm": ("tflm", "cmsis-nn"), "offline": ("offline", "cmsis-nn"), "flash": ("offline", "tinydeploy")}
DEFAULT_ARENA = ("tflm", "flash")  # also built with the default arena, for the RAM a default build links


def target(bound: int) -> int:
    """Issue #21's criterion for the planned arena: 1.10 x the lower bound + 2 KB."""
    return int(1.10 * bound + 2048)


def tinydeploy(*args: str) -> dict:
    r = subprocess.run([sys.executable, "-m", "tinydeploy", *args, "--json", "-"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"tinydeploy {' '.join(args)}: {r.stderr.strip().splitlines()[-1:]}")
    return json.loads(r.stdout)


def device_outputs(elf: Path, x: np.ndarray) -> np.ndarray:
    from tinydeploy.device.link import Link
    from tinydeploy.device.runner import device_outputs as outputs
    from tinydeploy.emulate.qemu import QemuSession

    with QemuSession(elf) as q, Link.open(url=q.url) as link:
        got, _ = outputs(link, x)
    return np.asarray(got)


def main() -> int:
    from tinydeploy import tflm_host
    from tinydeploy.analyze.runtime import pinned
    from tinydeploy.plan import deployed

    from tinydeploy.tflite_model import TFLiteModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--tflm", help="the Arduino_TensorFlowLite folder (default: $TINYDEPLOY_TFLM_DIR)")
    args = ap.parse_args()
    runtime = pinned()
    tflm = ["--tflm", args.tflm] if args.tflm else []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = args.models or [EXAMPLE, *benchmark_models(Path(tmp), study=True)]
        for path in models:
            model = TFLiteModel.from_file(path)
            shape = tuple(model.input_tensors[0].shape)
            x = np.random.default_rng(5).integers(-128, 128, size=(20, *shape[1:])).astype(np.int8)
            r = {"model": path.stem}
            host = {}
            for name, (plan, kernels) in CONFIGS.items():
                d = deployed(model, plan, kernels)  # with tinydeploy's kernels, depthwise nodes in place
                if plan not in host:
                    host[plan] = tflm_host.reference_outputs(d.model.data, x.reshape((len(x), *shape)), timeout=900)
                out = Path(tmp) / f"{path.stem}-{name}"
                opts = ["--memory-plan", plan, "--kernels", kernels, *tflm]
                b = tinydeploy("build", str(path), "-o", str(out), "--no-compile", "--arena", "measured", *opts)["metadata"]
                e = tinydeploy("emulate", str(out), *tflm)
                if not all(g["pass"] for g in e["golden"]):
                    raise SystemExit(f"{path.name} ({name}): golden vectors failed on the emulator")
                fw = e["emulation"]["firmware"]
                mem = b["analysis"]["memory"]
                rec = tflm_host.record_arena(d.model.data)
                if plan == "offline" and rec["host_head_bytes"] != d.plan.head_bytes:
                    raise SystemExit(f"{path.name}: the host interpreter's head ({rec['host_head_bytes']} B) is not "
                                     f"the plan's ({d.plan.head_bytes} B)")
                floor = runtime.interpreter_floor_bytes(len(d.model.tensors), len(d.model.operators),
                                                        len(d.model.inputs) + len(d.model.outputs))
                r[name] = {"bound": mem["lower_bound_bytes"], "floor": rec["host_head_bytes"] + floor,
                           "head": rec["host_head_bytes"], "arena": e["arena"]["used"],
                           "ram": fw["ram_bytes"], "flash": fw["flash_bytes"], "method": b["memory_plan"].get("method"),
                           "dev": device_outputs(Path(fw["elf"]), x.reshape(len(x), -1))}
                if name == "flash":  # the same firmware with each node's own builtin data (TD_SHARE_BUILTIN_DATA 0)
                    apart = Path(str(out) + "-apart")
                    shutil.copytree(out, apart)
                    cfg = apart / "src" / "model_config.h"
                    text = cfg.read_text()
                    if "#define TD_SHARE_BUILTIN_DATA 1" not in text:
                        raise SystemExit(f"{path.name}: the planned build does not share builtin data")
                    text = text.replace("#define TD_SHARE_BUILTIN_DATA 1", "#define TD_SHARE_BUILTIN_DATA 0")
                    # the measured arena fits the shared structs: 4 KB more room for each node's own
                    text = re.sub(r"#define TD_ARENA_BYTES (\d+)u", lambda g: f"#define TD_ARENA_BYTES {int(g[1]) + 4096}u", text)
                    cfg.write_text(text)
                    ea = tinydeploy("emulate", str(apart), *tflm)
                    if not all(g["pass"] for g in ea["golden"]):
                        raise SystemExit(f"{path.name} (builtin data apart): golden vectors failed on the emulator")
                    r[name]["arena_apart"] = ea["arena"]["used"]
                if name in DEFAULT_ARENA:  # the same options with build's default arena (host estimate + margin)
                    tinydeploy("build", str(path), "-o", str(out) + "-default", "--no-compile", *opts)
                    ed = tinydeploy("emulate", str(out) + "-default", *tflm)
                    if not all(g["pass"] for g in ed["golden"]):
                        raise SystemExit(f"{path.name} ({name}, default arena): golden vectors failed on the emulator")
                    r[name]["ram_default"] = ed["emulation"]["firmware"]["ram_bytes"]
            if not np.array_equal(host["tflm"], host["offline"]):
                raise SystemExit(f"{path.name}: the planned model's host outputs differ from the unplanned model's")
            for name in ("offline", "flash"):
                if not np.array_equal(r["tflm"]["dev"], r[name]["dev"]) or not np.array_equal(
                        r[name]["dev"].reshape(len(x), -1), host["offline"].reshape(len(x), -1)):
                    raise SystemExit(f"{path.name}: the {name} firmware's outputs differ (from the unplanned "
                                     "firmware's or from the host's)")
            rows.append(r)
            t, o, f = r["tflm"], r["offline"], r["flash"]
            print(f"{path.stem}: bound {t['bound']:,} B (input kept: {o['bound']:,}); head TFLM {t['head']:,} -> plan "
                  f"{o['head']:,} ({o['method']}); arena {t['arena']:,} -> {o['arena']:,} -> {f['arena']:,} (params in "
                  f"flash; {f['arena_apart']:,} with each node's own builtin data); RAM {t['ram']:,} -> {o['ram']:,} -> {f['ram']:,}; flash {t['flash']:,} -> {o['flash']:,} -> "
                  f"{f['flash']:,}; RAM with the default arena {t['ram_default']:,} -> {f['ram_default']:,}; outputs "
                  f"identical on {len(x)} inputs", flush=True)
    print()
    print(f"{'model':<24} {'bound':>8} {'bound*':>8} {'head':>8} {'head*':>8} {'arena':>8} {'arena*':>8} {'arena+':>8}"
          f" {'shared':>6} {'floor+':>8} {'target':>8}"
          f" {'+/bnd*':>6} {'RAM':>8} {'RAM*':>8} {'RAM+':>8} {'RAM+/RAM':>8} {'RAMd':>8} {'RAMd+':>8} {'RAMd+/RAMd':>10}"
          f" {'flash*-flash':>12} {'flash+-flash':>12}")
    for r in rows:
        t, o, f = r["tflm"], r["offline"], r["flash"]
        print(f"{r['model']:<24} {t['bound']:>8,} {o['bound']:>8,} {t['head']:>8,} {o['head']:>8,} {t['arena']:>8,} "
              f"{o['arena']:>8,} {f['arena']:>8,} {f['arena_apart'] - f['arena']:>6,} {f['floor']:>8,} {target(o['bound']):>8,} {f['arena'] / max(o['bound'], 1):>6.3f} {t['ram']:>8,} {o['ram']:>8,} "
              f"{f['ram']:>8,} {f['ram'] / t['ram']:>8.3f} {t['ram_default']:>8,} {f['ram_default']:>8,} "
              f"{f['ram_default'] / t['ram_default']:>10.3f} {o['flash'] - t['flash']:>+12,} {f['flash'] - t['flash']:>+12,}")
    print("Plain: TFLM's greedy planner and the library's kernels (--memory-plan tflm); *: tinydeploy's offline plan "
          "(input kept, no input copy); +: the offline plan with tinydeploy's kernels (--kernels tinydeploy: per-channel "
          "parameters in flash; shared: the arena bytes its sharing of equal builtin data saves, against the same firmware with "
          "TD_SHARE_BUILTIN_DATA 0; floor+: the planned head and the interpreter's own structures, which no kernel or plan "
          "changes; target: 1.10 x bound* + 2 KB). Bytes; arena, RAM and flash measured on the emulated Cortex-M4 (exact), heads by the "
          "TFLM host interpreter; builds with --arena measured, RAMd with build's default arena (host estimate + margin).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
