"""The firmware's object cache (emulate/objcache.py) with the real arm-none-eabi compiler: a source compiles once for
every project it is in, and never comes back stale when anything it includes changes, when a define or a flag
changes, or when the compile printed a warning."""

from __future__ import annotations

import shutil

import pytest

from conftest import missing

FLAGS = dict(cpu=("-mcpu=cortex-m4", "-mthumb"), defines=("SCALE=3",), c_std="c11", cxx_std="c++17", optimize="-Os")


@pytest.fixture
def tools(tmp_path, monkeypatch):
    if shutil.which("arm-none-eabi-g++") is None:
        missing("arm-none-eabi-g++ is missing: apt-get install gcc-arm-none-eabi")
    monkeypatch.setenv("TINYDEPLOY_CACHE", str(tmp_path / "cache"))
    from tinydeploy.emulate.toolchain import ArmToolchain

    return ArmToolchain.find()


def _project(root, header="#define OFFSET 1\n", body="int f(int x) { return x * SCALE + OFFSET; }\n"):
    src = root / "src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "k.h").write_text(header)
    (src / "k.cpp").write_text('#include "k.h"\nconst char *where() { return __FILE__; }\n' + body)
    return src


def _compile(tc, src, **flags):
    from tinydeploy.emulate.objcache import compile_cached
    from tinydeploy.emulate.tflm_library import CompileFlags

    obj = src / "k.o"
    r, hit = compile_cached(tc, CompileFlags(**{**FLAGS, **flags}), src / "k.cpp", obj, [src])
    assert r.returncode == 0, r.stderr
    return obj.read_bytes(), hit


def test_one_compile_serves_every_project_and_nothing_stale(tools, tmp_path):
    a = _project(tmp_path / "a")
    first, hit = _compile(tools, a)
    assert not hit
    b = _project(tmp_path / "b")  # the same files in another folder (__FILE__ is made relative)
    again, hit = _compile(tools, b)
    assert hit and again == first
    (b / "k.h").write_text("#define OFFSET 2\n")  # a header changed: compiled anew, another object
    changed, hit = _compile(tools, b)
    assert not hit and changed != first
    other_define, hit = _compile(tools, a, defines=("SCALE=5",))
    assert not hit and other_define != first
    # a define the source does not read (another model's operator count): the same text, the same object
    unread, hit = _compile(tools, a, defines=("SCALE=3", "TD_MAX_OPS=7"))
    assert hit and unread == first
    other_opt, hit = _compile(tools, a, optimize="-O0")  # a flag that changes code, not the preprocessed text
    assert not hit and other_opt != first
    assert _compile(tools, a) == (first, True)


def test_a_compile_that_warns_is_not_kept(tools, tmp_path):
    src = _project(tmp_path / "w", body="int f(int x) { int unused; return x; }\n")
    from tinydeploy.emulate.objcache import compile_cached
    from tinydeploy.emulate.tflm_library import CompileFlags

    for _ in range(2):  # the warning is printed every time, never hidden behind a kept object
        r, hit = compile_cached(tools, CompileFlags(**FLAGS), src / "k.cpp", src / "k.o", [src], extra=("-Wall",))
        assert "warning:" in r.stderr and not hit
