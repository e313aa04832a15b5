"""The study's model families, built with tf_keras and weights=None (no downloads).

custom_cnn      a small CNN for 28x28 inputs (the bundled example)
bn_cnn          three Conv-BatchNorm-ReLU-MaxPool blocks flattened into the classifier (the `field` recipe's model)
vgg_style       VGG16's block structure (2-2-3-3-3 convs, 64..512 filters) scaled by a width
                multiplier and a number of blocks, for microcontroller sizes
vgg16           plain VGG16 (include_top, weights=None): the row that does not fit
mobilenet_v1    keras.applications.MobileNet with alpha (width) and input resolution
mobilenet_v2    keras.applications.MobileNetV2 with alpha and input resolution
"""

from __future__ import annotations

from ..errors import TinyDeployError
from .names import FAMILIES
from .tfenv import import_tf


def custom_cnn(input_shape, num_classes, width: float = 1.0):
    _, keras = import_tf()
    L = keras.layers
    w = lambda n: max(4, int(n * width))
    return keras.Sequential([
        L.Input(input_shape),
        L.Conv2D(w(16), 3, padding="same", activation="relu"),
        L.MaxPool2D(),
        L.Conv2D(w(32), 3, padding="same", activation="relu"),
        L.MaxPool2D(),
        L.Conv2D(w(32), 3, padding="same", activation="relu"),
        L.MaxPool2D(),
        L.Flatten(),
        L.Dense(w(64), activation="relu"),
        L.Dropout(0.2),
        L.Dense(num_classes, activation="softmax"),
    ], name="custom_cnn")


def bn_cnn(input_shape, num_classes, width: float = 1.0):
    """Three Conv-BatchNorm-ReLU-MaxPool blocks (BatchNorm folds into the convolutions at conversion), flattened
    into one Dense layer: 83 K parameters at width 1 on 28x28x1 (int8 .tflite about 92 KB). The flattened 3x3 map
    keeps where a feature is, which global pooling loses (full Fashion-MNIST, `python bench/recipe.py`: int8 test
    accuracy 0.9242 after 12 epochs of the field recipe; the global-pooling version of this family reached 0.892 after
    15 epochs with shifts)."""
    _, keras = import_tf()
    L = keras.layers
    w = lambda n: max(4, int(n * width))
    x = inp = L.Input(input_shape)
    for f in (32, 64, 96):
        x = L.Conv2D(w(f), 3, padding="same", use_bias=False)(x)
        x = L.BatchNormalization(momentum=0.9)(x)
        x = L.ReLU()(x)
        x = L.MaxPool2D()(x)
    x = L.Dropout(0.3)(L.Flatten()(x))
    return keras.Model(inp, L.Dense(num_classes, activation="softmax")(x), name="bn_cnn")


_VGG16_BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


def vgg_style(input_shape, num_classes, width: float = 0.125, blocks: int = 3, dense: int = 64):
    """VGG16's conv blocks (first ``blocks`` of 5) with filters x ``width``, then a small head. He-normal
    initialization (He et al. 2015, made for deep plain ReLU nets like VGG): with Keras's default Glorot init and no
    batch normalization, the 7-conv net sat at chance on HAM10000 at 64x64 for all its 12 epochs (loss ln 7)."""
    _, keras = import_tf()
    L = keras.layers
    x = inp = L.Input(input_shape)
    for b, (n, f) in enumerate(_VGG16_BLOCKS[:blocks]):
        for i in range(n):
            x = L.Conv2D(max(4, int(f * width)), 3, padding="same", activation="relu", kernel_initializer="he_normal",
                         name=f"block{b + 1}_conv{i + 1}")(x)
        x = L.MaxPool2D(name=f"block{b + 1}_pool")(x)
    x = L.Flatten()(x)
    x = L.Dense(dense, activation="relu", kernel_initializer="he_normal")(x)
    out = L.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inp, out, name=f"vgg_style_w{width:g}_b{blocks}")


def vgg16(input_shape, num_classes):
    _, keras = import_tf()
    return keras.applications.VGG16(weights=None, input_shape=input_shape, classes=num_classes,
                                    classifier_activation="softmax")


# keras.applications builds its MobileNets' BatchNormalization with momentum 0.999, meant for long
# ImageNet runs. Trained from scratch for a few hundred steps, the moving statistics barely leave
# their initial values and the model predicts one class at inference (measured: pneumonia,
# MobileNetV2 alpha 0.35, 3 epochs: test accuracy 0.625 = all 'pneumonia' with 0.999, 0.838 with 0.9).
BN_MOMENTUM = 0.9


def _from_scratch_batchnorm(model):
    _, keras = import_tf()
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
    return model


def mobilenet_v1(input_shape, num_classes, alpha: float = 0.25):
    _, keras = import_tf()
    return _from_scratch_batchnorm(keras.applications.MobileNet(
        weights=None, input_shape=input_shape, classes=num_classes, alpha=alpha, dropout=0.1,
        classifier_activation="softmax"))


def mobilenet_v2(input_shape, num_classes, alpha: float = 0.35):
    _, keras = import_tf()
    return _from_scratch_batchnorm(keras.applications.MobileNetV2(
        weights=None, input_shape=input_shape, classes=num_classes, alpha=alpha, classifier_activation="softmax"))


def build(family: str, input_shape, num_classes, **kw):
    fns = {"custom_cnn": custom_cnn, "bn_cnn": bn_cnn, "vgg_style": vgg_style, "vgg16": vgg16, "mobilenet_v1": mobilenet_v1,
           "mobilenet_v2": mobilenet_v2}
    if family not in fns:
        raise TinyDeployError(f"unknown model family {family!r}", f"Choose one of {', '.join(FAMILIES)}")
    return fns[family](tuple(input_shape), num_classes, **kw)


def min_input_size(family: str) -> int:
    """keras.applications' MobileNets and VGG16 need at least 32x32 inputs."""
    return 32 if family in ("mobilenet_v1", "mobilenet_v2", "vgg16") else 1


def load_keras_model(path: str):
    """A user's .keras, .h5 or SavedModel directory."""
    from pathlib import Path

    _, keras = import_tf()
    p = Path(path)
    if not p.exists():
        raise TinyDeployError(f"model {p} does not exist", "Check the path, or train one with `tinydeploy train`")
    try:
        return keras.models.load_model(p, compile=False)
    except Exception as e:  # keras raises many kinds on a bad file
        raise TinyDeployError(f"cannot load Keras model {p} ({type(e).__name__}: {str(e).splitlines()[0][:120]})",
                              "Pass a .keras, .h5 or SavedModel directory saved by tf_keras") from None


def train(model, ds, *, epochs: int, batch_size: int = 128, lr: float = 1e-3, class_weight: bool = False,
          verbose: int = 0, callbacks=(), recipe: str = "plain", patience: int | None = None, start_from_epoch: int = 0):
    """Compile and fit on a Dataset (uint8 images normalized to [0, 1]). ``recipe`` (names.RECIPES): "plain" is
    constant-LR Adam; "field" adds label-preserving augmentation (shifts where the dataset's images are not centred by
    construction; horizontal flips where the dataset allows them), a cosine schedule from 2x ``lr`` over ``epochs``,
    and early stopping (patience 4 unless ``patience`` says otherwise).

    ``patience``: stop when the validation metric (balanced accuracy where the classes are imbalanced, else accuracy)
    has not improved for that many epochs, not before ``start_from_epoch``, and keep the best epoch's weights;
    ``epochs`` is then the cap. How many epochs ran is ``model.history.epoch`` (Keras keeps the last fit's history)."""
    import numpy as np

    from .datasets import normalize

    tf, keras = import_tf()
    x, y = normalize(ds.x_train), ds.y_train
    xv = normalize(ds.x_val)
    cbs = [EpochLine(keras), *callbacks]
    opt = keras.optimizers.Adam(lr)
    data = x
    if recipe == "field":
        steps = epochs * int(np.ceil(len(y) / batch_size))
        opt = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2 * lr, max(steps, 1)))
        patience = 4 if patience is None else patience
        shift = ds.shift_fraction
        aug = keras.Sequential(([keras.layers.RandomTranslation(shift, shift, fill_mode="constant")] if shift else [])
                               + ([keras.layers.RandomFlip("horizontal")] if ds.flips_keep_labels else []))
        data = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y), seed=0).batch(batch_size)
                .map(lambda a, b: (aug(a, training=True), b), num_parallel_calls=tf.data.AUTOTUNE).prefetch(2))
    elif recipe != "plain":
        raise TinyDeployError(f"unknown training recipe {recipe!r}", "Choose plain or field")
    if patience is not None:
        monitor = "val_accuracy"
        if ds.imbalanced:  # the headline metric: accuracy rewards predicting the majority class
            monitor = "val_balanced_accuracy"
            cbs.insert(0, ValBalancedAccuracy(keras, xv, ds.y_val, ds.num_classes))  # before anything reads the logs
        cbs.append(keras.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=patience,
                                                 restore_best_weights=True, start_from_epoch=start_from_epoch))
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cw = None
    if class_weight:
        counts = np.bincount(ds.y_train, minlength=ds.num_classes).astype(np.float64)
        cw = {i: float(len(ds.y_train) / (ds.num_classes * max(c, 1))) for i, c in enumerate(counts)}
    fit_kw = dict(batch_size=batch_size) if data is x else {}
    model.fit(data, y if data is x else None, validation_data=(xv, ds.y_val), epochs=epochs,
              verbose=verbose, class_weight=cw, callbacks=cbs, **fit_kw)
    return model


def epochs_run(model) -> int:
    """Epochs the model's last fit ran (fewer than its cap where it stopped early)."""
    h = getattr(model, "history", None)
    return len(h.epoch) if h is not None and hasattr(h, "epoch") else 0


def ValBalancedAccuracy(keras, x_val, y_val, num_classes: int):
    """A Keras callback that adds ``val_balanced_accuracy`` (mean per-class recall on the validation split) to each
    epoch's logs, for early stopping on imbalanced data."""
    import numpy as np

    from .evaluate import metrics

    class _ValBalancedAccuracy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            pred = np.argmax(self.model.predict(x_val, batch_size=512, verbose=0), axis=1)
            if logs is not None:
                logs["val_balanced_accuracy"] = metrics(y_val, pred, num_classes)["balanced_accuracy"]

    return _ValBalancedAccuracy()


def EpochLine(keras):
    """A Keras callback that prints one line per epoch on stderr: loss, validation accuracy, time."""
    import time

    from ..console import err_console

    class _EpochLine(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            bal = logs.get("val_balanced_accuracy")
            err_console.print(f"  epoch {epoch + 1}/{self.params.get('epochs', '?')}: loss {logs.get('loss', float('nan')):.4f}, "
                              f"val accuracy {logs.get('val_accuracy', float('nan')):.4f}"
                              + ("" if bal is None else f", val balanced accuracy {bal:.4f}")
                              + f", {time.monotonic() - self.t0:.1f} s")

    return _EpochLine()
