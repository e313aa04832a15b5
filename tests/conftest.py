"""Shared fixtures: real TensorFlow models converted to int8, generated projects, the firmware's
device code compiled for the host, and pseudo-terminal pairs."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
import tty
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# Under pytest-xdist each test process gets a temporary folder of its own, so that a test that checks what a command
# left in the temporary folder sees only its own process's commands, not those of a test running beside it.
if os.environ.get("PYTEST_XDIST_WORKER"):
    import atexit
    import tempfile

    _worker_tmp = Path(tempfile.gettempdir()) / f"pytest-xdist-{os.environ['PYTEST_XDIST_WORKER']}-{os.getpid()}"
    _worker_tmp.mkdir()
    os.environ["TMPDIR"] = str(_worker_tmp)
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again
    atexit.register(shutil.rmtree, _worker_tmp, True)
# The tests name their data explicitly: ../shared/datasets beside the checkout, unless the caller chose.
os.environ.setdefault("TINYDEPLOY_DATA", str(ROOT.parent / "shared" / "datasets"))
FIRMWARE = ROOT / "firmware"
EXAMPLE = ROOT / "host" / "tinydeploy" / "examples" / "fashion_cnn_int8.tflite"


def run_cli(*args, check=None, timeout=120, env=None):
    """Run the real `tinydeploy` console entry point in a child process."""
    proc = subprocess.run([sys.executable, "-m", "tinydeploy", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    if check is not None:
        assert proc.returncode == check, proc.stdout + proc.stderr
    return proc


def _keras_macs(model) -> int:
    """An independent MAC count from Keras layer shapes (not from the .tflite)."""
    import tf_keras as keras

    total = 0
    for layer in model.layers:
        out = layer.output_shape
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            total += int(np.prod(out[1:])) * kh * kw
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            total += int(np.prod(out[1:])) * kh * kw * layer.input_shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += int(np.prod(out[1:])) * layer.input_shape[-1]
    return total


def random_int8_model(build, shape, seed: int, weight_std: float) -> bytes:
    """An int8 .tflite of the Keras model ``build(keras)`` returns, its weights drawn from N(0, weight_std) and
    calibrated on 16 random uint8 inputs of ``shape`` (untrained weights: for runtime tests, not accuracy)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from tinydeploy.compress.quantize import convert
    from tinydeploy.compress.tfenv import import_tf

    _, keras = import_tf()
    keras.utils.set_random_seed(seed)
    m = build(keras)
    rng = np.random.default_rng(seed)
    m.set_weights([rng.normal(0, weight_std, size=w.shape).astype(np.float32) for w in m.get_weights()])
    return convert(m, "int8", rng.integers(0, 256, size=(16, *shape), dtype=np.uint8), 16)


def _build_models():
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from tinydeploy.compress.quantize import convert
    from tinydeploy.compress.tfenv import import_tf

    _, keras = import_tf()
    keras.utils.set_random_seed(1)
    L = keras.layers
    rng = np.random.default_rng(0)
    x_rep = rng.integers(0, 256, size=(32, 32, 32, 3), dtype=np.uint8)

    plain = keras.Sequential([L.Input((32, 32, 3)), L.Conv2D(8, 3, activation="relu"), L.MaxPool2D(),
                              L.Conv2D(16, 3, strides=2, padding="same", activation="relu"), L.Flatten(),
                              L.Dense(10, activation="softmax")], name="plain_cnn")
    dw = keras.Sequential([L.Input((32, 32, 3)), L.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
                           L.DepthwiseConv2D(3, padding="same", activation="relu"), L.Conv2D(16, 1, activation="relu"),
                           L.AveragePooling2D(), L.Flatten(), L.Dense(4, activation="softmax")], name="depthwise")
    inp = L.Input((32, 32, 3))
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu6")(inp)
    y = L.Conv2D(48, 1, activation="relu6")(x)  # MobileNetV2 inverted residual block: expand, depthwise, project, add
    y = L.DepthwiseConv2D(3, padding="same", activation="relu6")(y)
    y = L.Conv2D(16, 1)(y)
    x = L.Add()([x, y])
    x = L.GlobalAveragePooling2D()(x)
    res = keras.Model(inp, L.Dense(5, activation="softmax")(x), name="mbv2_block")
    out = {}
    for m in (plain, dw, res):
        # untrained biases are zero and the converter drops zero dense biases: use non-zero weights
        m.set_weights([rng.normal(0, 0.2, size=w.shape).astype(np.float32) for w in m.get_weights()])
        out[m.name] = (convert(m, "int8", x_rep, 32), _keras_macs(m), m)
    float_model = convert(plain, "float32")
    return out, float_model


@pytest.fixture(scope="session")
def tf_models(tmp_path_factory):
    """{name: (path to int8 .tflite, keras MAC count)} for a plain CNN, a depthwise-separable CNN and a
    residual MobileNetV2 block; plus 'float' -> a float32 .tflite."""
    d = tmp_path_factory.mktemp("models")
    built, float_bytes = _build_models()
    out = {}
    for name, (data, macs, _) in built.items():
        p = d / f"{name}.tflite"
        p.write_bytes(data)
        out[name] = (p, macs)
    fp = d / "float32.tflite"
    fp.write_bytes(float_bytes)
    out["float"] = (fp, None)
    return out


@pytest.fixture(scope="session")
def example_project(tmp_path_factory):
    out = tmp_path_factory.mktemp("proj") / "example"
    run_cli("build", "--board", "nano33ble", "-o", out, "--no-compile", check=0)
    return out


DEVICE_SOURCES = ["td_device.cpp", "td_report.cpp", "td_stats.cpp"]


def compile_host_device(project: Path, out: Path, extra_flags=()) -> Path:
    src = project / "src"
    cmd = ["g++", "-std=c++11", "-O1", "-Wall", "-Wextra", "-Werror", *extra_flags, f"-I{src}", f"-I{FIRMWARE}",
           str(ROOT / "tests" / "native" / "host_device.cpp"), *(str(FIRMWARE / s) for s in DEVICE_SOURCES),
           str(src / "model_data.cpp"), str(src / "golden_data.cpp"), "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


@pytest.fixture(scope="session")
def host_device(example_project, tmp_path_factory):
    if shutil.which("g++") is None:
        pytest.fail("g++ is required (apt-get install g++)")
    return compile_host_device(example_project, tmp_path_factory.mktemp("bin") / "host_device")


class PtyDevice:
    """The host-compiled firmware on the master side of a pseudo-terminal; the host opens the slave."""

    def __init__(self, binary: Path, *args: str):
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.proc = subprocess.Popen([str(binary), *args], stdin=self.master, stdout=self.master, stderr=subprocess.DEVNULL)
        os.close(self.master)  # the child holds it now

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)
        try:
            os.close(self.slave)
        except OSError:
            pass


@pytest.fixture
def pty_device(host_device):
    made = []

    def start(*args, binary=None):
        d = PtyDevice(binary or host_device, *args)
        made.append(d)
        return d

    yield start
    for d in made:
        d.close()


# ---- the emulated Cortex-M4 (tinydeploy emulate) --------------------------------------------------

IN_CI = os.environ.get("CI", "").lower() == "true"
SHARED_TFLM = ROOT.parent / "shared" / "tflm" / "Arduino_TensorFlowLite-7948b85"


def missing(what: str):
    """Under CI=true a missing part fails the test (it would prove nothing by skipping); elsewhere it skips."""
    (pytest.fail if IN_CI else pytest.skip)(what)


@pytest.fixture(scope="session")
def tflm_dir() -> Path:
    d = Path(os.environ.get("TINYDEPLOY_TFLM_DIR") or SHARED_TFLM)
    if not (d / "src" / "tensorflow" / "lite" / "micro" / "micro_interpreter.h").is_file():
        missing(f"the pinned TFLM library is not at {d} (set TINYDEPLOY_TFLM_DIR)")
    from tinydeploy.emulate.toolchain import APT_PACKAGES, emulator_available

    if not emulator_available():
        missing(f"the emulator toolchain is missing: apt-get install {APT_PACKAGES}")
    return d


def arm_syntax_check(tflm_dir: Path, src: Path, extra=()) -> subprocess.CompletedProcess:
    """arm-none-eabi-g++ -fsyntax-only on ``src`` with the board's flags (boards/nano33ble.json: CPU, defines, standard,
    code generation) against the pinned library's headers, as the firmware's sources compile."""
    import json

    if shutil.which("arm-none-eabi-g++") is None:
        missing("arm-none-eabi-g++ is required (apt-get install gcc-arm-none-eabi)")
    board = json.loads((ROOT / "host" / "tinydeploy" / "boards" / "nano33ble.json").read_text())
    flags = [*board["gcc_flags"], *(f"-D{d}" for d in board["compile"]["defines"]), f"-std={board['compile']['cxx_std']}",
             *board["compile"]["codegen"]]
    return subprocess.run(["arm-none-eabi-g++", *flags, *extra, "-fsyntax-only", f"-I{tflm_dir / 'src'}",
                           f"-I{tflm_dir / 'src' / 'third_party' / 'flatbuffers' / 'include'}", str(src)],
                          capture_output=True, text=True)


def sizes_source(tmp_path: Path, header: str, sizes: dict[str, int]) -> Path:
    """A C++ file that compiles only where sizeof(type) == n for every type: n of ``sizes``, after ``header``."""
    src = tmp_path / "sizes.cpp"
    src.write_text(f'#include "{header}"\n' + "".join(f'static_assert(sizeof({t}) == {n}, "{t}");\n'
                                                      for t, n in sizes.items()))
    return src


def emulate(project: Path, tflm: Path, *args, timeout=900):
    """`tinydeploy emulate PROJECT ... --json F` in a child process: (process, JSON or None)."""
    out = project.parent / f"{project.name}.emulate.json"
    out.unlink(missing_ok=True)
    r = run_cli("emulate", project, "--tflm", tflm, "--json", out, *args, timeout=timeout)
    import json

    return r, (json.loads(out.read_text()) if out.exists() else None)


def without_add_tables(project) -> None:
    """A generated project's model_params.cpp with no ADD tables: its ADD nodes run the per-call tables (or the
    CMSIS-NN function), the paths for nodes the build cannot write tables for."""
    src = Path(project) / "src" / "model_params.cpp"
    text = src.read_text()
    start = text.index("const AddTables kAddTables[] = {")
    end = text.index("    {-1, {}, nullptr, nullptr},", start)
    src.write_text(text[:start] + "const AddTables kAddTables[] = {\n" + text[end:])


def emulated_outputs(elf, x):
    """The firmware's outputs for each input row of x (int8), run on the emulated Cortex-M4 over the serial protocol."""
    from tinydeploy.device.link import Link
    from tinydeploy.device.runner import device_outputs
    from tinydeploy.emulate.qemu import QemuSession

    with QemuSession(elf) as q, Link.open(url=q.url) as link:
        out, _ = device_outputs(link, x)
    return out
