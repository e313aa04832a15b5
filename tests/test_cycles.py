"""The cycle estimate beside the emulator's instruction counts (host/tinydeploy/emulate/cycles_plugin.c, a QEMU TCG
plugin). Its cost model is checked against the Cortex-M4 Technical Reference Manual's table 3-1 on instructions the
real assembler encodes (arm-none-eabi-as: an encoder independent of the plugin's decoder), each class of the model
at least once; a decoder that took any of them for another class would fail. On the emulator, `tinydeploy emulate`
reports the estimate only where the plugin's own instruction counts of every op equal the firmware's, so the two
mechanisms check each other."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import ROOT

# (instruction, cycles by the TRM, with P = 2 for a pipeline refill); loads and stores after another load or store
# single pipeline to 1
STREAM = [
    ("adds r0, r1, r2", 1),
    ("ldr r0, [r1]", 2),
    ("ldr r2, [r3, #4]", 1),          # after a load: pipelined
    ("str r2, [r3, #8]", 1),          # after a load: pipelined
    ("mul r0, r1, r2", 1),
    ("str.w r0, [r1, #256]", 2),      # a 32-bit store, not after a load or store
    ("ldrd r0, r1, [r2]", 3),
    ("smlad r0, r1, r2, r3", 1),
    ("smmlar r0, r1, r2, r3", 1),
    ("sxtb16 r0, r1, ror #8", 1),
    ("ssat r0, #8, r1", 1),
    ("sdiv r0, r1, r2", 7),           # 2-12: the middle
    ("push {r4, r5, r6, r7, lr}", 6),  # 1 + N
    ("ldmia r0!, {r1, r2}", 3),       # 16-bit LDM: 1 + N
    ("ldmia.w r0!, {r4, r5, r6, r7, r8}", 6),
    ("vldr s0, [r0]", 2),
    ("vadd.f32 s0, s1, s2", 1),
    ("vdiv.f32 s0, s1, s2", 14),
    ("vpush {s16, s17, s18, s19}", 5),
    ("beq 1f", 1),                    # not taken (taken: + P, known when the next block starts)
    ("cbz r0, 1f", 1),
    ("1: b.w 2f", 3),                 # taken: 1 + P
    ("2: bl 3f", 3),
    ("3: bx lr", 3),
    ("pop {r4, r5, r6, r7, pc}", 8),  # 1 + N + P
]


@pytest.fixture(scope="module")
def cost_model(tmp_path_factory):
    for tool in ("gcc", "arm-none-eabi-as", "arm-none-eabi-objcopy"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is required (apt-get install gcc gcc-arm-none-eabi)")
    d = tmp_path_factory.mktemp("cycles")
    exe = d / "cycles"
    subprocess.run(["gcc", "-O1", "-Wall", "-Werror", str(ROOT / "tests" / "native" / "cycles_main.c"), "-o", str(exe)],
                   check=True)
    return exe


def _costs(cost_model, tmp_path, lines):
    src = tmp_path / "s.S"
    src.write_text(".syntax unified\n.thumb\n" + "\n".join(lines) + "\n")
    obj, raw = tmp_path / "s.o", tmp_path / "s.bin"
    subprocess.run(["arm-none-eabi-as", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mthumb", str(src), "-o", str(obj)],
                   check=True)
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "-j", ".text", str(obj), str(raw)], check=True)
    out = subprocess.run([str(cost_model)], input=raw.read_bytes(), capture_output=True, check=True).stdout.decode()
    return [int(line.split()[1]) for line in out.splitlines()]


def test_cost_model_matches_the_cortex_m4_manual(cost_model, tmp_path):
    got = _costs(cost_model, tmp_path, [s for s, _ in STREAM])
    assert len(got) == len(STREAM)  # one cost per instruction: the sizes were decoded right
    wrong = [(s, want, g) for (s, want), g in zip(STREAM, got) if g != want]
    assert not wrong, wrong


def test_emulate_reports_cycles_whose_instruction_counts_are_the_firmwares(example_project, tflm_dir):
    from conftest import emulate

    proc, d = emulate(example_project, tflm_dir, "--runs", "2")
    assert proc.returncode == 0, proc.stderr
    c = d["cycles_estimate"]
    assert c and "estimate" in c["method"]
    assert [o["tag"] for o in c["ops"]] == [o["tag"] for o in d["ops"]]
    # the plugin's count of the inference's instructions is the firmware's (to the counter's 40-instruction tick and
    # the timer calls' own few dozen)
    assert abs(c["instructions_per_inference"] - d["latency"]["instructions"]["median"]) <= 200
    # every op costs at least one cycle per instruction, and loads and branches cost more
    assert all(o["cycles"] >= o["instructions"] - 40 for o in c["ops"])
    # the plugin's exact count of each op is within the counter's tick of the firmware's, and not a multiple of it
    # everywhere (a tick-rounded copy would be)
    assert all(abs(o["instructions_exact"] - o["instructions"]) <= 40 for o in c["ops"])
    assert any(o["instructions_exact"] % 40 for o in c["ops"])
    assert 1.0 < c["cycles_per_instruction"] < 3.0
    assert sum(o["cycles"] for o in c["ops"]) <= c["cycles_per_inference"]
    assert "per inference" in proc.stderr


def test_no_cycles_skips_the_estimate(example_project, tflm_dir):
    from conftest import emulate

    proc, d = emulate(example_project, tflm_dir, "--runs", "1", "--no-cycles")
    assert proc.returncode == 0, proc.stderr
    assert d["cycles_estimate"] is None and "--no-cycles" in proc.stderr
