"""Import TensorFlow with the legacy Keras (tf_keras) that tensorflow-model-optimization needs.

TF_USE_LEGACY_KERAS must be set before TensorFlow is first imported; importing takes seconds, so
only the training and conversion commands call this.
"""

from __future__ import annotations

import os


def import_tf():
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import warnings

    warnings.filterwarnings("ignore", message=r".*tf\.lite\.Interpreter is deprecated.*")
    import tensorflow as tf
    import tf_keras as keras

    tf.get_logger().setLevel("ERROR")
    return tf, keras


def seed_everything(seed: int) -> None:
    tf, keras = import_tf()
    keras.utils.set_random_seed(seed)
