"""The built wheel, as a user installs it (after tflite-micro's whl_test.sh): a virtualenv WITHOUT system site
packages, the wheel and its declared dependencies only, commands run from another directory. What the checkout has
and the wheel lacks (a package, a template, a firmware file) fails here."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

PACKAGE = ROOT / "host" / "tinydeploy"


def _source_packages() -> set[str]:
    """Every folder of the source tree that holds an __init__.py, links to firmware/ and templates/ followed."""
    out = set()
    for dirpath, _, files in os.walk(PACKAGE, followlinks=True):
        if "__init__.py" in files and "__pycache__" not in dirpath:
            out.add(".".join(Path(dirpath).relative_to(PACKAGE.parent).parts))
    return out


def _source_files(package_dir: Path, suffixes) -> set[str]:
    return {p.relative_to(package_dir).as_posix() for p in package_dir.rglob("*") if p.suffix in suffixes
            and "example_model" not in p.parts}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT),
                        "-w", str(dist)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (whl,) = dist.glob("tinydeploy-*.whl")
    return whl


def test_the_wheel_holds_every_package_and_data_file_of_the_tree(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {n[:-len("/__init__.py")].replace("/", ".") for n in names if n.endswith("/__init__.py")}
    assert packages == _source_packages()
    assert {"tinydeploy.search", "tinydeploy.firmware", "tinydeploy.templates"} <= packages
    fw = {n[len("tinydeploy/firmware/"):] for n in names if n.startswith("tinydeploy/firmware/")}
    assert _source_files(ROOT / "firmware", {".cpp", ".h", ".ld"}) <= fw
    tpl = {n[len("tinydeploy/templates/"):] for n in names if n.startswith("tinydeploy/templates/")}
    assert _source_files(ROOT / "templates", {".j2"}) <= tpl
    data = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.json")} | \
           {p.relative_to(PACKAGE).as_posix() for p in (PACKAGE / "examples").iterdir()}
    assert {f"tinydeploy/{d}" for d in data} <= names


def test_a_clean_virtualenv_runs_the_commands_from_elsewhere(wheel, tmp_path):
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # no --system-site-packages
    py, exe = venv / "bin" / "python", venv / "bin" / "tinydeploy"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
                       capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()

    def run(*args):
        return subprocess.run([str(exe), *map(str, args)], cwd=work, capture_output=True, text=True, timeout=300, env=env)

    where = subprocess.run([str(py), "-c", "import tinydeploy, tinydeploy.sources as s; print(tinydeploy.__file__, "
                            "s.firmware_dir())"], cwd=work, capture_output=True, text=True, check=True, env=env).stdout
    assert str(ROOT) not in where and where.count(str(venv)) == 2, where  # the installed copy, not the checkout
    for args in (("--help",), ("search", "--help"), ("study", "--help"), ("compress", "--help")):
        r = run(*args)
        assert r.returncode == 0 and "usage: tinydeploy" in r.stdout, (args, r.stderr)
    example = subprocess.run([str(py), "-c", "from tinydeploy.sources import EXAMPLE_MODEL; print(EXAMPLE_MODEL)"],
                             cwd=work, capture_output=True, text=True, check=True, env=env).stdout.strip()
    r = run("analyze", example)
    assert r.returncode == 0 and "verdict: fits" in r.stdout, r.stderr
    # a command that needs TensorFlow says which extra to install, in one line
    r = run("train", "--dataset", "fashion-mnist", "-o", "m.keras")
    assert r.returncode == 3 and "tinydeploy[train]" in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr
    r = run("build", "--board", "nano33ble", "-o", "X", "--no-compile")
    assert r.returncode == 0, r.stderr
    ref = tmp_path / "ref"
    run_cli("build", "--board", "nano33ble", "-o", ref, "--no-compile", check=0)
    installed = sorted(p.relative_to(work / "X") for p in (work / "X").rglob("*") if p.is_file())
    assert installed == sorted(p.relative_to(ref) for p in ref.rglob("*") if p.is_file())
    for rel in installed:
        if rel.name != "tinydeploy.json":  # it records the analysis, whose model path differs
            assert (work / "X" / rel).read_bytes() == (ref / rel).read_bytes(), rel
