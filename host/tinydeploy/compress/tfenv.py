"""Import TensorFlow with the legacy Keras (tf_keras) that tensorflow-model-optimization needs.

TF_USE_LEGACY_KERAS must be set before TensorFlow is first imported; importing takes seconds, so
only the training and conversion commands call this.
"""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager

_imported = False

# What the training commands import, by the name pip knows it under (the `train` extra of pyproject.toml).
TRAINING_MODULES = {"tensorflow": "tensorflow", "tf_keras": "tf-keras",
                    "tensorflow_model_optimization": "tensorflow-model-optimization", "matplotlib": "matplotlib",
                    "PIL": "pillow"}


def require_training_extra(command: str) -> None:
    """A one-line error before any work when the `train` extra is not installed (checked without importing it)."""
    import importlib.util

    from ..errors import ToolchainError

    missing = [pkg for mod, pkg in TRAINING_MODULES.items() if importlib.util.find_spec(mod) is None]
    if missing:
        raise ToolchainError(f"tinydeploy {command} needs {', '.join(missing)}, which is not installed",
                             "pip install 'tinydeploy[train]'")


@contextmanager
def native_stderr_quiet():
    """Keep what TensorFlow's C++ writes straight to file descriptor 2 (absl's start-up lines, the CUDA probe on
    a machine without a GPU, the converter's statistics) off the terminal, where newcomers read it as
    failures. If the block fails, that output is shown after all, since it may say why."""
    if os.environ.get("TINYDEPLOY_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read()[-4000:].decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_tf():
    global _imported
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import warnings

    warnings.filterwarnings("ignore", message=r".*tf\.lite\.Interpreter is deprecated.*")
    warnings.filterwarnings("ignore", message=r".*Statistics for quantized inputs were expected.*")
    with native_stderr_quiet():
        import tensorflow as tf
        import tf_keras as keras

        if not _imported:
            tf.config.list_physical_devices()  # the CUDA probe happens here, quietly, not at the first layer
            _imported = True
    tf.get_logger().setLevel("ERROR")
    return tf, keras


def seed_everything(seed: int) -> None:
    tf, keras = import_tf()
    keras.utils.set_random_seed(seed)
