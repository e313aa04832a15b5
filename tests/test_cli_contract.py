"""The CLI contract scripts rely on: `--json -` puts one JSON document alone on stdout, errors are one line
with the documented exit code, outputs get the user's usual permissions."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

from conftest import EXAMPLE, run_cli


def test_json_dash_is_only_json_on_stdout(tmp_path):
    for args in (("analyze", EXAMPLE), ("build", "-o", tmp_path / "p", "--no-compile"), ("ports",)):
        r = run_cli(*args, "--json", "-")
        assert r.returncode == 0, r.stderr
        json.loads(r.stdout)  # nothing else on stdout
    r = run_cli("analyze", EXAMPLE)
    assert "verdict: fits" in r.stdout  # without --json -, people read stdout
    r = run_cli("flash", tmp_path / "no-project", "--json", "-")  # a failure: nothing but nothing on stdout
    assert r.returncode == 2 and r.stdout == "" and "not a PlatformIO project" in r.stderr


def test_internal_error_is_one_line_exit_4(tmp_path):
    code = ("import sys, tinydeploy.analyze as a\n"
            "def broken(*args, **kw): raise RuntimeError('simulated bug')\n"
            "a.analyze = broken\n"
            "from tinydeploy.cli import main\n"
            f"sys.exit(main(['analyze', {str(EXAMPLE)!r}]))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 4, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "internal error: RuntimeError: simulated bug" in r.stderr and "TINYDEPLOY_DEBUG=1" in r.stderr
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "TINYDEPLOY_DEBUG": "1"})
    assert "Traceback" in r.stderr


def test_outputs_have_the_users_permissions(tmp_path):
    out = tmp_path / "p"
    subprocess.run(["sh", "-c", f"umask 022 && {sys.executable} -m tinydeploy build -o {out} --no-compile "
                                f"--json {tmp_path / 'b.json'}"], check=True, capture_output=True)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "src" / "model_config.h").stat().st_mode) == 0o644
    assert stat.S_IMODE((out / "tinydeploy.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.json").stat().st_mode) == 0o644


def test_bad_inputs_are_one_line_exit_2_and_write_nothing(tmp_path):
    truncated = tmp_path / "samples.npz"
    truncated.write_bytes(EXAMPLE.with_name("fashion_cnn_int8.samples.npz").read_bytes()[:300])
    out = tmp_path / "out"
    cases = [
        (("bench", "--url", "foo://bar"), "not a serial port or pyserial URL"),
        (("build", "-o", out, "--no-compile", "--golden", "0"), "--golden"),
        (("build", "-o", out, "--no-compile", "--labels", tmp_path / "missing.txt"), "labels file"),
        (("build", "-o", out, "--no-compile", "--samples", truncated), "cannot read samples file"),
        (("analyze", EXAMPLE, "--reserve-flash", "-5"), "--reserve-flash"),
        (("emulate", tmp_path / "no-project"), "does not exist"),
        (("search", "--storage", "mysql://db/x", "-o", out), "unsupported storage"),
        (("search", "--trials", "0", "-o", out), "--trials"),
    ]
    for args, needle in cases:
        r = run_cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert needle in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert r.stderr.strip().count("\n") == 0, r.stderr
        assert not out.exists(), args


def test_build_checks_the_output_directory_before_working(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("the user's file")
    r = run_cli("build", "-o", out, "--no-compile", "--labels", tmp_path / "missing.txt")
    assert r.returncode == 2 and "labels file" in r.stderr
    r = run_cli("build", "-o", out, "--no-compile")
    assert r.returncode == 2 and "is not empty" in r.stderr and (out / "mine.txt").read_text() == "the user's file"
