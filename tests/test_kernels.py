"""tinydeploy's own kernels (firmware/kernels/: DEPTHWISE_CONV_2D, CONV_2D on the matrix product and for first
layers, FULLY_CONNECTED, ADD, MEAN, MAX_POOL_2D), bit-exact: each configuration is a one-op (or few-layer) int8 model converted by the
real TFLite converter, run on the emulated Cortex-M4 three ways, all against the pinned TFLM library: with
tinydeploy's kernel (`--kernels tinydeploy`), with the library's CMSIS-NN kernel, and with TFLM's portable reference
kernel (bench/reference_kernels.cpp). On 20 random inputs each, tinydeploy's outputs must equal the reference's bit for
bit; the host TFLM interpreter (a newer TFLM) is within 1, the known drift between the two TFLM versions. (The
library's CMSIS-NN kernel equals the reference on these too: bench/kernels.py checks that on every model it times.)
Not covered: dilation (the TFLite converter turns a dilated DepthwiseConv2D into SPACE_TO_BATCH_ND around an
undilated one), which the kernel handles by its tap strides."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from conftest import ROOT, emulated_outputs, without_add_tables

pytestmark = pytest.mark.slow  # converts models with TensorFlow

# (name, input HxWxC, kernel, strides, padding, dilation, depth multiplier, activation, per-channel weight spread)
CASES = [
    ("k3_s2_same_c4_big", (21, 21, 4), 3, 2, "same", 1, 1, None, 1.0),  # 121 output pixels, rows of 11 (odd)
    ("k3_s2_valid_c16", (11, 14, 16), 3, 2, "valid", 1, 1, None, 1.0),  # rows of 6, the image's last column unread
    ("k3_s1_same_c5_relu6", (7, 7, 5), 3, 1, "same", 1, 1, "relu6", 1.0),  # a group of 4 and a tail of 1
    ("k5_s1_same_c12_relu", (6, 6, 12), 5, 1, "same", 1, 1, "relu", 1.0),
    ("k3_s1_same_c64_spread", (3, 3, 64), 3, 1, "same", 1, 1, None, 1e3),  # per-channel scales over 3 decades
    ("k7_s1_same_c4", (6, 6, 4), 7, 1, "same", 1, 1, None, 1.0),  # 49 taps: most of them padded
    ("k3_s1_same_c4_m2", (6, 6, 4), 3, 1, "same", 1, 2, None, 1.0),  # multiplier 2: the library's kernel
    ("k3_s1_same_c4_wide", (2, 40, 4), 3, 1, "same", 1, 1, None, 1.0),  # rows longer than a chunk of accumulators
    # relu6 outputs of widely spread weights: some channels' multipliers of 1 or more (TFLM shifts those left)
    ("k3_s1_same_c16_relu6_mult_above_1", (6, 6, 16), 3, 1, "same", 1, 1, "relu6", 1e4),
    # tall, narrow maps, which the window loops run transposed (along columns: TALL_CASES): a keyword net's 25x5 (one
    # tile of 5 rows of 25, odd: each row's last output by the column loop), stride 2 with an odd column of 11, an even
    # one of 8 with relu6, a single column
    ("k3_s1_same_c4_tall_transposed", (25, 5, 4), 3, 1, "same", 1, 1, None, 1.0),
    ("k3_s2_same_c4_tall_transposed", (21, 4, 4), 3, 2, "same", 1, 1, None, 1.0),
    ("k3_s2_same_c6_tall_relu6_transposed", (16, 5, 6), 3, 2, "same", 1, 1, "relu6", 1.0),
    ("k3_s1_valid_c5_column_transposed", (12, 3, 5), 3, 1, "valid", 1, 1, None, 1.0),
    # a tall map whose channels take both forms: the window loops' groups (transposed) and a group of multipliers of 1
    # or more and a tail, which the planes run (as the map is)
    ("k3_s1_same_c7_tall_relu6_mult_above_1_transposed", (20, 4, 7), 3, 1, "same", 1, 1, "relu6", 1e4),
    # single output pixels (Taps): a MobileNet's last depthwise layer on a 1x1 map (one tap inside the image); a
    # 2x2 map at stride 2 (four taps), 13 channels (three groups and a tail, the planes'), relu6, per-channel scales
    # over three decades; a 5x5 filter over a 5x5 map (25 taps)
    ("k3_s1_same_c24_1x1", (1, 1, 24), 3, 1, "same", 1, 1, None, 1.0),
    ("k3_s2_same_c13_one_pixel_relu6_spread", (2, 2, 13), 3, 2, "same", 1, 1, "relu6", 1e3),
    ("k5_s1_valid_c6_one_pixel", (5, 5, 6), 5, 1, "valid", 1, 1, None, 1.0),
    # the planes in bands (585 outputs, under the firmware's 600): 15 rows of 39 in bands of 8 and 7, one channel, relu
    ("k3_s1_same_c1_bands_relu", (15, 39, 1), 3, 1, "same", 1, 1, "relu", 1.0),
    # 3x3 at stride 3 on 9 output pixels: neither the planes (16 or more), the window (stride 1 or 2) nor Taps
    # takes it by default, CMSIS-NN's wrapper would run it by its 3x3 function
    ("k3_s3_same_c8_3x3_cmsis", (9, 9, 8), 3, 3, "same", 1, 1, None, 1.0),
    # strides 2 down and 1 across, 1 down and 2 across: the window loops take equal strides only, so the planes run
    # these
    ("k3_s2x1_same_c8", (9, 10, 8), 3, (2, 1), "same", 1, 1, "relu6", 1.0),
    ("k3_s1x2_valid_c8", (7, 11, 8), 3, (1, 2), "valid", 1, 1, None, 1.0),
]

# The smallest maps, which Taps runs by its list of each pixel's taps inside the image (the single pixels above run it
# in every build): a 2x2 map at stride 1 (4 taps a pixel) with per-channel scales over three decades; stride 2 from
# 4x4 (9, 6, 6 and 4 taps); a 1x4 map with 7 channels (a group and a tail of 3, which the planes run). The same form
# as CASES; run by Taps alone (the planes' and the window loops' cases above cover their maps).
TAPS_CASES = [
    ("k3_s1_same_c20_2x2_spread", (2, 2, 20), 3, 1, "same", 1, 1, "relu6", 1e3),
    ("k3_s2_same_c12_4x4_to_2x2", (4, 4, 12), 3, 2, "same", 1, 1, None, 1.0),
    ("k3_s1_same_c7_1x4", (1, 4, 7), 3, 1, "same", 1, 1, None, 1.0),
]

# The window loops' tiles, built with a buffer of 8 input rows (TD_DW_TILE_ROWS; 20 in a firmware) so that maps the
# firmware's 600 outputs allow take several tiles of rows: at stride 2, 9 x 16 outputs in 3 x 2 tiles (3 x 8 outputs,
# each with padding on one side or more; the first column of tiles starts with a lead pixel); at stride 1, 9 x 16 in
# two tiles of rows (5 and 4). Two tiles of columns at stride 1 (29 at most): k3_s1_same_c4_wide.
TILE_CASES = [
    ("k3_s2_same_c4_tiles", (17, 31, 4), 3, 2, "same", 1, 1, None, 1.0),
    ("k3_s1_same_c4_tiles", (9, 16, 4), 3, 1, "same", 1, 1, "relu6", 1.0),
]
TILE_ROWS = 8


# CONV_2D with few input channels (first layers): (name, input HxWxC, kernel, strides, padding, filters, activation,
# per-channel weight spread)
CONV_CASES = [
    ("conv_k3_s1_same_c1_f16_relu", (6, 6, 1), 3, 1, "same", 16, "relu", 1.0),  # the bundled example's first layer
    ("conv_k3_s2_same_c3_f8", (8, 8, 3), 3, 2, "same", 8, None, 1.0),
    ("conv_k3_s1_valid_c4_f20_spread", (6, 6, 4), 3, 1, "valid", 20, None, 1e3),
    ("conv_k3_s2_valid_c1_f40", (7, 7, 1), 3, 2, "valid", 40, "relu", 1.0),  # two blocks of output channels
    # 1,080 values under the filter, more than the matrix product takes: the library's CMSIS-NN function on
    # tinydeploy's op data, its parameters from flash (as the multiplier-2 depthwise case above)
    ("conv_k3_s1_same_c120_f8_cmsis", (5, 5, 120), 3, 1, "same", 8, None, 1.0),
]


# The matrix-product kernels (td_kernel_matmul.cpp), several layers in one model to cover many shapes with one
# firmware: (name, op, input shape, [(outputs, activation[, kernel, stride, padding])], per-channel weight spread).
# Pointwise CONV_2D (1x1,
# stride 1): input channels (each layer's K) 5, 7, 13 and 16 cover every remainder of K mod 4 and 8 and the loop of
# 8; odd filter counts leave a last channel alone, 25 pixels a last pixel alone. FULLY_CONNECTED (per-tensor, one
# batch: four channels at a time, FcRow's assembly): K 40 and 37, 37 outputs leave one channel to the one-channel path
# (the last layer's 10 outputs run the CMSIS-NN function on tinydeploy's op data, which is faster there).
MATMUL_CASES = [
    ("pw_chain_c5_25px", "CONV_2D", (5, 5, 5), [(7, None), (13, "relu6"), (16, "relu"), (9, None)], 1.0),
    ("pw_c64_f48_9px_spread", "CONV_2D", (3, 3, 64), [(48, None)], 1e3),
    ("fc_k40_37_10", "FULLY_CONNECTED", (40,), [(37, "relu"), (10, None)], 1.0),
    # the one-row loop (td_kernel_matmul.cpp's FcRow): K 64 (four quadruple steps), then K 24 (one and a double step);
    # relu6 clamps each packed byte at both ends, the last layer the full range
    ("fc_k64_24_16_relu6", "FULLY_CONNECTED", (64,), [(24, "relu6"), (16, None)], 1.0),
    # general convolutions, each pixel's values gathered under the filter: (filters, activation, kernel, stride,
    # padding); K = 54, 72, 300 (a remainder of 2, 0, 0), padded borders, stride 2, a 1x1 at stride 2
    ("conv_chain_c6", "CONV_2D", (9, 9, 6), [(8, "relu", 3, 1, "same"), (12, None, 3, 2, "valid"),
                                             (16, "relu6", 5, 1, "same"), (7, None, 1, 2, "valid")], 1.0),
    # three input channels (K = 27: a remainder of 3), the first layer of a color net, then 8 channels
    ("conv_c3_first_spread", "CONV_2D", (8, 8, 3), [(8, None, 3, 2, "same"), (10, "relu", 3, 1, "same")], 1e3),
    # relu6 outputs of widely spread weights: 6 of the middle layer's 24 channels have a multiplier of 1 or more (TFLM
    # shifts those left, without rounding), the rest below 1, in one block
    ("pw_relu6_multipliers_above_1", "CONV_2D", (6, 6, 16), [(16, "relu6"), (24, "relu6"), (8, None)], 1e3),
    # pointwise layers from 8 and 16 channels (SmallK's two rows against one channel at a time): K = 8 to 40 channels
    # (two blocks of constants, 32 and 8), K = 40, then K = 16 to 8; 25 pixels leave a last row to OneRow
    ("pw_k8_k16_blocks", "CONV_2D", (5, 5, 8), [(40, None), (16, None), (8, None)], 1.0),
    # pointwise layers on a 1x1 map (a MobileNet's last layers): one row against blocks of 32 and 4 channels (K = 24),
    # 12 channels and a last one (K = 40), K = 36 and 13 (remainders of K mod 4 and 8); per-channel scales over a decade
    ("pw_1x1_map_per_channel", "CONV_2D", (1, 1, 24), [(36, "relu6"), (40, None), (13, "relu"), (16, None)], 10.0),
    # the same loop with channels its shortcut does not take (multipliers of 1 or more among the relu6 layers'
    # channels: TFLM's arithmetic for those, over what the blocks wrote), K = 16 and 24
    ("pw_1x1_map_above_1", "CONV_2D", (1, 1, 16), [(16, "relu6"), (24, "relu6"), (8, None)], 1e3),
]


def _stack_model(shape, layers, spread, seed):
    from tinydeploy.compress.quantize import convert
    from tinydeploy.compress.tfenv import import_tf

    _, keras = import_tf()
    L = keras.layers
    keras.utils.set_random_seed(seed)
    def make(f, a, k=1, s=1, pad="valid"):
        return L.Conv2D(f, k, strides=s, padding=pad, activation=a) if len(shape) == 3 else L.Dense(f, activation=a)

    m = keras.Sequential([L.Input(shape), *(make(*spec) for spec in layers)])
    rng = np.random.default_rng(seed)
    weights = []
    for w in m.get_weights():
        if w.ndim > 1:
            scale = np.geomspace(1.0, spread, w.shape[-1])
            weights.append((rng.normal(0, 0.3, w.shape) * scale).astype(np.float32))
        else:
            weights.append(rng.normal(0, 0.5, w.shape).astype(np.float32))
    m.set_weights(weights)
    rep = rng.integers(0, 256, (32, *shape), dtype=np.uint8)
    return convert(m, "int8", rep, 32)


def _residual_model(seed, shape=(6, 6, 8)):
    """ADD of two tensors of one shape, twice: x + conv(x) with a fused relu, then that + conv(x) (the pointwise
    convolution runs tinydeploy's kernel too, and is compared with the reference's in the same outputs). 6x6x8: 288
    elements, by the build's tables in flash; 4x4x8: 128, run without them (tests/conftest.py's without_add_tables),
    the CMSIS-NN function on tinydeploy's op data (test_add_tables.py covers the per-call tables' path)."""
    from tinydeploy.compress.quantize import convert
    from tinydeploy.compress.tfenv import import_tf

    _, keras = import_tf()
    L = keras.layers
    keras.utils.set_random_seed(seed)
    x = L.Input(shape)
    c = L.Conv2D(8, 1)(x)
    a = L.ReLU()(L.Add()([x, c]))
    m = keras.Model(x, L.Add()([a, c]))
    rep = np.random.default_rng(seed).integers(0, 256, (32, *shape), dtype=np.uint8)
    return convert(m, "int8", rep, 32)


def _broadcast_add_model(seed):
    """x + mean(x) over the pixels: an int8 ADD whose second input broadcasts (1x1x8 to 6x6x8), which tinydeploy's
    ADD does not take."""
    from tinydeploy.compress.quantize import convert
    from tinydeploy.compress.tfenv import import_tf

    tf, keras = import_tf()
    L = keras.layers
    keras.utils.set_random_seed(seed)
    x = L.Input((6, 6, 8))
    c = L.Conv2D(8, 1)(x)
    m = keras.Model(x, L.Lambda(lambda t: t + tf.reduce_mean(t, axis=[1, 2], keepdims=True))(c))
    rep = np.random.default_rng(seed).integers(0, 256, (32, 6, 6, 8), dtype=np.uint8)
    return convert(m, "int8", rep, 32)


def _mean_model(seed, shape, keepdims):
    """MEAN over the pixels of a convolution's output (the converter gives it its own scale and zero point): the
    convolution runs tinydeploy's kernel too, and is compared with the reference's in the same outputs."""
    from tinydeploy.compress.quantize import convert
    from tinydeploy.compress.tfenv import import_tf

    tf, keras = import_tf()
    L = keras.layers
    keras.utils.set_random_seed(seed)
    x = L.Input(shape)
    c = L.Conv2D(shape[-1], 1)(x)
    m = keras.Model(x, L.Lambda(lambda t: tf.reduce_mean(t, axis=[1, 2], keepdims=keepdims))(c))
    rep = np.random.default_rng(seed).integers(0, 256, (32, *shape), dtype=np.uint8)
    return convert(m, "int8", rep, 32)


def _pool_model(seed, shape):
    """MAX_POOL_2D twice after a pointwise convolution: 3x3 at stride 2 with same padding (windows the border cuts),
    a relu6 after it (which the converter fuses into the pool: an activation range narrower than int8's), then 2x2
    at stride 2."""
    from tinydeploy.compress.quantize import convert
    from tinydeploy.compress.tfenv import import_tf

    _, keras = import_tf()
    L = keras.layers
    keras.utils.set_random_seed(seed)
    x = L.Input(shape)
    c = L.Conv2D(shape[-1], 1)(x)
    a = L.ReLU(6.0)(L.MaxPool2D(3, 2, padding="same")(c))
    m = keras.Model(x, L.MaxPool2D(2, 2)(a))
    rep = np.random.default_rng(seed).integers(0, 256, (32, *shape), dtype=np.uint8)
    return _narrow_activation(convert(m, "int8", rep, 32))


def _softmax_model(seed, shape, classes):
    """SOFTMAX along the last axis of a pointwise convolution's output: one row a pixel (3x3: 9 rows of `classes`),
    logits spread wide (weights of std 1 on an input of 8 channels), so that rows hold values the exponent's range
    cuts off (diff_min) beside close ones."""
    from tinydeploy.compress.quantize import convert
    from tinydeploy.compress.tfenv import import_tf

    _, keras = import_tf()
    L = keras.layers
    keras.utils.set_random_seed(seed)
    m = keras.Sequential([L.Input(shape), L.Conv2D(classes, 1), L.Softmax()])
    rng = np.random.default_rng(seed)
    m.set_weights([rng.normal(0, 1.0, w.shape).astype(np.float32) for w in m.get_weights()])
    rep = rng.integers(0, 256, (32, *shape), dtype=np.uint8)
    return convert(m, "int8", rep, 32)


def _dead_channels_model(seed):
    """A MobileNet's last layers on a 1x1 map with dead channels: a filter of zeros and a bias, whose int8 bias the
    converter makes 2^30 (as in the study's MobileNets), outside the requantization's 32-bit shortcut: channels 21 and
    50 of a pointwise layer from 16 to 72 channels (PerChannelRow), channel 70 of a depthwise layer (Taps, whose
    groups 68-71 the planes run), then a pointwise layer from 72 to 8 channels reading them.
    The first layer's relu6 output is given the scale 6 / 127.5 and the zero point -100, so that its activation range,
    [-100, 28], is narrower than int8's (PerChannelRow's clamp; the converter gives a relu6 output the whole range)."""
    from tinydeploy.compress.quantize import convert
    from tinydeploy.compress.tfenv import import_tf
    from tinydeploy.tflite_edit import Editor

    _, keras = import_tf()
    L = keras.layers
    keras.utils.set_random_seed(seed)
    m = keras.Sequential([L.Input((1, 1, 16)), L.Conv2D(72, 1, activation="relu6"), L.DepthwiseConv2D(3, padding="same"),
                          L.Conv2D(8, 1)])
    rng = np.random.default_rng(seed)
    w1, b1, w2, b2, w3, b3 = (rng.normal(0, 0.3 if w.ndim > 1 else 0.5, w.shape).astype(np.float32)
                              for w in m.get_weights())
    for c in (21, 50):
        w1[..., c], b1[c] = 0.0, 2.0
    w2[..., 70, 0], b2[70] = 0.0, 2.0
    m.set_weights([w1, b1, w2, b2, w3, b3])
    rep = rng.integers(0, 256, (32, 1, 1, 16), dtype=np.uint8)
    ed = Editor(convert(m, "int8", rep, 32))
    first = ed.g.tensors[int(ed.g.operators[0].outputs[0])]
    first.quantization = ed.quant(np.asarray([6.0 / 127.5], np.float32), [-100])
    return ed.pack()


def _narrow_depthwise_model(seed, shape=(9, 11, 10)):
    """Two 3x3 depthwise layers with relu6 whose outputs are given the scale 6 / 127.5 and the zero point -100, so that
    both clamp to [-100, 28] inside int8's range (the converter gives a relu6 output the whole range; quantization-aware
    training gives narrower ones): stride 1 on a 9x11 map (the window: each row's pairs and its last column), then
    stride 2 on to 5x6 (the window's pairs and last column); 10 channels: two groups of 4 and a group of 2 (the planes,
    which run every group in a build with TD_DW_WINDOW=0). With shape
    (2, 2, 12): a 2x2 map, then a single pixel (Taps, which clamps each pixel's word), three groups of 4."""
    from tinydeploy.compress.quantize import convert
    from tinydeploy.compress.tfenv import import_tf
    from tinydeploy.tflite_edit import Editor

    _, keras = import_tf()
    L = keras.layers
    keras.utils.set_random_seed(seed)
    m = keras.Sequential([L.Input(shape), L.DepthwiseConv2D(3, padding="same", activation="relu6"),
                          L.DepthwiseConv2D(3, strides=2, padding="same", activation="relu6")])
    rng = np.random.default_rng(seed)
    m.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in m.get_weights()])
    ed = Editor(convert(m, "int8", rng.integers(0, 256, (32, *shape), dtype=np.uint8), 32))
    for op in ed.g.operators:
        ed.g.tensors[int(op.outputs[0])].quantization = ed.quant(np.asarray([6.0 / 127.5], np.float32), [-100])
    return ed.pack()


def _narrow_activation(data: bytes) -> bytes:
    """The convolution's and both pools' outputs given twice the first pool's scale and the zero point -100 (a pool's
    input and output must share them), so that the fused relu6 clamps to [-100, 28] inside int8 (the converter gives
    a relu6 output the activation's range: no clamp at all). The convolution requantizes to the new scale."""
    from tinydeploy.tflite_edit import Editor

    ed = Editor(data)
    code = ed.S.BuiltinOperator.MAX_POOL_2D
    pools = [o for o in ed.g.operators if ed.m.operatorCodes[o.opcodeIndex].builtinCode == code]
    scale = np.asarray(ed.g.tensors[int(pools[0].outputs[0])].quantization.scale) * 2
    for t in {int(pools[0].inputs[0]), *(int(o.outputs[0]) for o in pools)}:
        ed.g.tensors[t].quantization = ed.quant(scale, [-100])
    return ed.pack()


def _requantized_mean(data: bytes, scale: float, shift: int) -> bytes:
    """The model with its MEAN's output given SCALE times the input's scale and the zero point SHIFT above the input's
    (quantization-aware training gives a global pooling's output quantization of its own)."""
    from tinydeploy.tflite_edit import Editor

    ed = Editor(data)
    mean = ed.S.BuiltinOperator.MEAN
    (op,) = [o for o in ed.g.operators if ed.m.operatorCodes[o.opcodeIndex].builtinCode == mean]
    x, y = ed.g.tensors[int(op.inputs[0])], ed.g.tensors[int(op.outputs[0])]
    y.quantization = ed.quant(np.asarray(x.quantization.scale) * scale, np.asarray(x.quantization.zeroPoint) + shift)
    return ed.pack()


def _same_quantization_mean(data: bytes) -> bytes:
    """The model with its MEAN's output given the input's scale and zero point: TFLM's integer path (a sum divided
    in integers), which the converter writes only for 1x1 maps."""
    from tinydeploy.tflite_edit import Editor

    ed = Editor(data)
    mean = ed.S.BuiltinOperator.MEAN
    (op,) = [o for o in ed.g.operators if ed.m.operatorCodes[o.opcodeIndex].builtinCode == mean]
    x, y = ed.g.tensors[int(op.inputs[0])], ed.g.tensors[int(op.outputs[0])]
    y.quantization = ed.quant(x.quantization.scale, x.quantization.zeroPoint)
    return ed.pack()


def _model(shape, k, s, pad, dil, mult, act, spread, seed, filters=None):
    from tinydeploy.compress.quantize import convert
    from tinydeploy.compress.tfenv import import_tf

    _, keras = import_tf()
    L = keras.layers
    keras.utils.set_random_seed(seed)
    layer = L.Conv2D(filters, k, strides=s, padding=pad, activation=act) if filters else \
        L.DepthwiseConv2D(k, strides=s, padding=pad, dilation_rate=dil, depth_multiplier=mult, activation=act)
    m = keras.Sequential([L.Input(shape), layer])
    rng = np.random.default_rng(seed)
    w, b = m.get_weights()
    # spread over the output channels: Conv2D's are the last axis, DepthwiseConv2D's the last two (channel, multiplier)
    outs = w.shape[3] if filters else w.shape[2] * w.shape[3]
    scale = np.geomspace(1.0, spread, outs).reshape((1, 1, 1, outs) if filters else (1, 1, w.shape[2], w.shape[3]))
    m.set_weights([(rng.normal(0, 0.3, w.shape) * scale).astype(np.float32), rng.normal(0, 0.5, b.shape).astype(np.float32)])
    # inputs that are all positive push the input zero point to its extreme (-128)
    rep = rng.integers(0, 256, (32, *shape), dtype=np.uint8)
    return convert(m, "int8", rep, 32)


@pytest.fixture(scope="module")
def case_models(tmp_path_factory):
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    d = tmp_path_factory.mktemp("kernels")
    out = {}
    for i, (name, shape, k, s, pad, dil, mult, act, spread) in enumerate(CASES + TAPS_CASES + TILE_CASES):
        p = d / f"{name}.tflite"
        p.write_bytes(_model(shape, k, s, pad, dil, mult, act, spread, seed=10 + i))
        out[name] = p
    for i, (name, shape, k, s, pad, filters, act, spread) in enumerate(CONV_CASES):
        p = d / f"{name}.tflite"
        p.write_bytes(_model(shape, k, s, pad, 1, 1, act, spread, seed=50 + i, filters=filters))
        out[name] = p
    for i, (name, _, shape, layers, spread) in enumerate(MATMUL_CASES):
        p = d / f"{name}.tflite"
        p.write_bytes(_stack_model(shape, layers, spread, seed=70 + i))
        out[name] = p
    p = d / "add_residual_relu.tflite"
    p.write_bytes(_residual_model(seed=90))
    out["add_residual_relu"] = p
    p = d / "add_residual_small.tflite"
    p.write_bytes(_residual_model(seed=92, shape=(4, 4, 8)))
    out["add_residual_small"] = p
    # 400 pixels: sums beyond a 16-bit lane's 256 (the extreme inputs overflow one); 6 channels: a group of 4 and a
    # tail of 2. 5x5x13 with the kept dimensions: three groups and a tail of 1.
    for name, seed, shape, keep in (("mean_20x20x6", 93, (20, 20, 6), False), ("mean_5x5x13_keepdims", 94, (5, 5, 13), True)):
        p = d / f"{name}.tflite"
        p.write_bytes(_mean_model(seed, shape, keep))
        out[name] = p
    # 6 channels: a group of 4 and a tail of 2; 10 channels: two groups and a tail of 2 on odd map sizes
    for name, seed, shape in (("maxpool_9x9x6", 96, (9, 9, 6)), ("maxpool_11x7x10", 97, (11, 7, 10))):
        p = d / f"{name}.tflite"
        p.write_bytes(_pool_model(seed, shape))
        out[name] = p
    p = d / "mean_2x2x64_qat.tflite"  # a 2x2 map, the output's scale 0.958 of the input's and its zero point 5 above
    p.write_bytes(_requantized_mean(_mean_model(98, (2, 2, 64), False), 0.958, 5))
    out["mean_2x2x64_qat"] = p
    p = d / "mean_2x2x64_ties.tflite"  # the output's scale twice the input's: sum / 4 * 0.5 lands on halves
    p.write_bytes(_requantized_mean(_mean_model(97, (2, 2, 64), False), 2.0, 3))
    out["mean_2x2x64_ties"] = p
    p = d / "mean_9x9x7_integer.tflite"  # 81 pixels, integer division of negative and positive sums
    p.write_bytes(_same_quantization_mean(_mean_model(95, (9, 9, 7), False)))
    out["mean_9x9x7_integer"] = p
    p = d / "add_broadcast.tflite"
    p.write_bytes(_broadcast_add_model(seed=91))
    out["add_broadcast"] = p
    p = d / "softmax_3x3x37.tflite"
    p.write_bytes(_softmax_model(98, (3, 3, 8), 37))
    out["softmax_3x3x37"] = p
    p = d / "dead_channels_1x1.tflite"
    p.write_bytes(_dead_channels_model(99))
    out["dead_channels_1x1"] = p
    p = d / "depthwise_narrow_relu6.tflite"
    p.write_bytes(_narrow_depthwise_model(100))
    out["depthwise_narrow_relu6"] = p
    p = d / "depthwise_narrow_relu6_2x2.tflite"
    p.write_bytes(_narrow_depthwise_model(101, (2, 2, 12)))
    out["depthwise_narrow_relu6_2x2"] = p
    return out


def _multipliers(model):
    """Each node's effective requantization multipliers (input scale x weight scale / output scale)."""
    out = []
    for op in model.operators:
        q = [model.tensors[i].quantization.scales for i in (op.inputs[0], op.inputs[1], op.outputs[0])]
        out.append(np.ravel(q[0])[0] * np.asarray(q[1]) / np.ravel(q[2])[0])
    return out


def _every_shape(project, window=0, taps=0, tile_rows=None):
    """Let tinydeploy's kernels take every shape they cover (in production the library's kernels run the shapes where
    they measured faster): the tests check all of them. window: which depthwise loops run a 3x3 node at stride 1 or 2
    (0 the planes, 1 the window loops, as a build does); taps: 1 for Taps on every map of more than one pixel its list
    takes, 0 for none (a single output pixel runs Taps either way); tile_rows: the window loops' buffer rows."""
    ini = project / "platformio.ini"
    text = ini.read_text()
    assert "build_flags =\n" in text
    rows = f"    -DTD_DW_TILE_ROWS={tile_rows}\n" if tile_rows else ""
    ini.write_text(text.replace("build_flags =\n", f"build_flags =\n    -DTD_DW_MIN_OUTPUT_PIXELS=1\n"
                                                    f"    -DTD_DW_WINDOW={window}\n"
                                                    f"    -DTD_DW_TAPS={taps}\n{rows}"
                                                    "    -DTD_CONV_ALL_SHAPES=1\n", 1))


def _inputs(shape, seed=1):
    """20 random int8 inputs of the model's input shape, the first two at the extremes (where the input offset
    matters most)."""
    x = np.random.default_rng(seed).integers(-128, 128, size=(20, int(np.prod(shape)))).astype(np.int8)
    x[0] = -128
    x[1] = 127
    return x


def _reference_outputs(path, x, tflm_dir, tmp_path):
    """The outputs for x of the model's firmware with TFLM's reference kernels (its `--kernels cmsis-nn` build linked
    with bench/reference_kernels.cpp), run on the emulated Cortex-M4: built and run once per model and inputs in a
    test session, kept in a folder the session's workers share (the window cases and the mutations run the same
    models and inputs as the cases before them). Written atomically; two workers that both miss compute the same."""
    import hashlib

    from tinydeploy.boards import load
    from tinydeploy.emulate.firmware import build_firmware
    from tinydeploy.emulate.tflm_library import TflmLibrary
    from conftest import run_cli

    # tmp_path is <the session's basetemp>/<test>; pytest-xdist gives each worker its basetemp under one root
    shared = tmp_path.parent.parent if os.environ.get("PYTEST_XDIST_WORKER") else tmp_path.parent
    cache = shared / "reference-outputs"
    cache.mkdir(exist_ok=True)
    key = hashlib.sha256(path.read_bytes() + x.tobytes() + repr(x.shape).encode()).hexdigest()[:24]
    hit = cache / f"{key}.npy"
    if hit.is_file():
        return np.load(hit)
    theirs = tmp_path / "theirs"
    run_cli("build", path, "-o", theirs, "--no-compile", "--kernels", "cmsis-nn", check=0)
    assert "td::kernels" not in (theirs / "src" / "model_ops.h").read_text()
    elf = build_firmware(theirs, TflmLibrary.locate(str(tflm_dir)), load("nano33ble"), out_dir=tmp_path / "e-ref",
                         extra_sources=(ROOT / "bench" / "reference_kernels.cpp",)).elf
    out = np.asarray(emulated_outputs(elf, x))
    part = cache / f"{key}.{os.getpid()}.npy"
    np.save(part, out)
    os.replace(part, hit)
    return out


def _bit_exact(path, op, tflm_dir, tmp_path, every_shape, also=(), edit=None):
    from tinydeploy.boards import load
    from tinydeploy.emulate.firmware import build_firmware
    from tinydeploy.emulate.tflm_library import TflmLibrary
    from tinydeploy.tflite_model import TFLiteModel
    from tinydeploy.tflm_host import reference_outputs
    from conftest import run_cli

    model = TFLiteModel.from_file(path)
    if "above_1" in path.name:  # the case is what its name says: multipliers on both sides of 1 in one node
        assert any((m >= 1).any() and (m < 1).any() for m in _multipliers(model))
    assert op in {o.opname for o in model.operators} <= {op, *also}
    board, lib = load("nano33ble"), TflmLibrary.locate(str(tflm_dir))
    ours = tmp_path / "ours"
    run_cli("build", path, "-o", ours, "--no-compile", "--kernels", "tinydeploy", check=0)
    # every CONV_2D / DEPTHWISE_CONV_2D node has its parameters in flash, every FULLY_CONNECTED node is int8
    # per-tensor, every ADD int8 of one shape: the registration without the library's kernel
    # (generate/registration.py), which refuses a node it does not take, so the case's every node runs tinydeploy's
    assert re.search(rf"td::kernels::Register_{op}_INT8\(\)", (ours / "src" / "model_ops.h").read_text())
    if every_shape:
        _every_shape(ours)
    if edit:
        edit(ours)
    shape = tuple(model.input_tensors[0].shape)
    x = _inputs(shape)
    got = emulated_outputs(build_firmware(ours, lib, board, out_dir=tmp_path / "e-ours").elf, x)
    ref = _reference_outputs(path, x, tflm_dir, tmp_path)
    assert np.array_equal(got, ref), f"{int((got != ref).sum())} of {got.size} outputs differ from TFLM's reference"
    host = reference_outputs(model.data, x.reshape((len(x),) + shape)).reshape(len(x), -1)
    assert np.abs(got.astype(np.int16) - host).max() <= 1
    assert len(np.unique(got)) > 8  # the outputs vary: the comparison says something


# The tall maps the window loops run transposed, left out of the planes' sweep (which run them as they are, by the
# same loop as the other maps')
TALL_CASES = [c[0] for c in CASES if c[0].endswith("_transposed")]


@pytest.mark.parametrize("name", [c[0] for c in CASES if c[0] not in TALL_CASES])
def test_depthwise_is_bit_exact_with_tflm_reference_on_the_device(case_models, tflm_dir, tmp_path, name):
    # the big case runs with the kernel's own choice of shapes (the window loops); the others on every shape the
    # planes cover
    _bit_exact(case_models[name], "DEPTHWISE_CONV_2D", tflm_dir, tmp_path, every_shape=not name.endswith("_big"))


# The depthwise cases the window loops (td_kernel_depthwise.cpp's Window3x3PairsS1/S2 and Window3x3Column, in tiles)
# can take, run by them: stride 2 with SAME padding on an odd map (a lead pixel, two tiles of rows) and VALID on
# another, relu6 with a tail channel left to the planes, per-channel scales over three decades, a wide map (two tiles
# of columns), multipliers on both sides of 1 (those groups left to the planes), the tall maps (transposed) and
# TILE_CASES
WINDOW_CASES = ["k3_s2_same_c4_big", "k3_s2_valid_c16", "k3_s1_same_c5_relu6", "k3_s1_same_c64_spread",
                "k3_s1_same_c4_wide", "k3_s1_same_c16_relu6_mult_above_1", *TALL_CASES,
                *(c[0] for c in TILE_CASES)]


def _tile_rows(name):
    """The window loops' buffer rows a case builds with: TILE_ROWS for TILE_CASES, the firmware's otherwise."""
    return TILE_ROWS if name in {c[0] for c in TILE_CASES} else None


@pytest.mark.parametrize("name", WINDOW_CASES)
def test_depthwise_window_loops_are_bit_exact_with_tflm_reference_on_the_device(case_models, tflm_dir, tmp_path, name):
    _bit_exact(case_models[name], "DEPTHWISE_CONV_2D", tflm_dir, tmp_path, every_shape=False,
               edit=lambda project: _every_shape(project, window=1, tile_rows=_tile_rows(name)))


@pytest.mark.parametrize("name", [c[0] for c in TAPS_CASES])
def test_depthwise_taps_are_bit_exact_with_tflm_reference_on_the_device(case_models, tflm_dir, tmp_path, name):
    _bit_exact(case_models[name], "DEPTHWISE_CONV_2D", tflm_dir, tmp_path, every_shape=False,
               edit=lambda project: _every_shape(project, taps=1))


@pytest.mark.parametrize("name", [c[0] for c in CONV_CASES])
def test_first_layer_conv_is_bit_exact_with_tflm_reference_on_the_device(case_models, tflm_dir, tmp_path, name):
    # the example's first layer with the kernel's own choice; the others on every shape it covers
    _bit_exact(case_models[name], "CONV_2D", tflm_dir, tmp_path, every_shape="c1_f16" not in name)


@pytest.mark.parametrize("name, op", [c[:2] for c in MATMUL_CASES])
def test_matmul_kernels_are_bit_exact_with_tflm_reference_on_the_device(case_models, tflm_dir, tmp_path, name, op):
    _bit_exact(case_models[name], op, tflm_dir, tmp_path, every_shape=False)


@pytest.mark.parametrize("name", ["add_residual_relu", "add_residual_small"])
def test_add_is_bit_exact_with_tflm_reference_on_the_device(case_models, tflm_dir, tmp_path, name):
    _bit_exact(case_models[name], "ADD", tflm_dir, tmp_path, every_shape=False, also=("CONV_2D",),
               edit=without_add_tables if name.endswith("_small") else None)


@pytest.mark.parametrize("name", ["mean_20x20x6", "mean_5x5x13_keepdims", "mean_9x9x7_integer"])
def test_mean_is_bit_exact_with_tflm_reference_on_the_device(case_models, tflm_dir, tmp_path, name):
    if name.endswith("_integer"):  # the case is what its name says: TFLM's integer path
        from tinydeploy.tflite_model import TFLiteModel

        m = TFLiteModel.from_file(case_models[name])
        (op,) = [o for o in m.operators if o.opname == "MEAN"]
        assert m.tensors[op.inputs[0]].quantization == m.tensors[op.outputs[0]].quantization
    _bit_exact(case_models[name], "MEAN", tflm_dir, tmp_path, every_shape=False, also=("CONV_2D",))


def test_the_host_reference_computes_mean_as_the_pinned_library(case_models, tflm_dir, tmp_path):
    """tflm_host.reference_outputs (golden vectors, every host comparison) computes int8 MEAN as the pinned library
    does, which the host's current TFLM does not (it rounds where the pinned one divides toward zero, and uses integer
    multipliers where the pinned one computes in float32): on a 2x2 map of 64 channels whose MEAN output has its own
    scale and zero point (as quantization-aware training gives it) and on the two paths' cases, the device's outputs
    (tinydeploy's kernel, equal to the pinned reference kernel's: test above) equal it exactly, while the host's TFLM
    alone differs on many (the segmented run is what makes them equal); on a MEAN whose output scale is twice its
    input's, many outputs land on halves, which the device rounds away from zero (std::round) and halves to even
    would not."""
    from tinydeploy.boards import load
    from tinydeploy.emulate.firmware import build_firmware
    from tinydeploy.emulate.tflm_library import TflmLibrary
    from tinydeploy.tflite_model import TFLiteModel
    from tinydeploy import tflm_host
    from conftest import run_cli

    board, lib = load("nano33ble"), TflmLibrary.locate(str(tflm_dir))
    for name in ("mean_2x2x64_qat", "mean_2x2x64_ties", "mean_9x9x7_integer", "mean_20x20x6"):
        path = case_models[name]
        model = TFLiteModel.from_file(path)
        assert [op.opname for op in tflm_host.int8_means(model)] == ["MEAN"]
        shape = tuple(model.input_tensors[0].shape)
        x = _inputs(shape)
        out = tmp_path / name
        run_cli("build", path, "-o", out, "--no-compile", check=0)
        got = emulated_outputs(build_firmware(out, lib, board, out_dir=tmp_path / f"e-{name}").elf, x)
        want = tflm_host.reference_outputs(model.data, x.reshape((len(x),) + shape)).reshape(len(x), -1)
        assert np.array_equal(got, want), f"{name}: {int((got != want).sum())} of {got.size} differ"
        if name == "mean_2x2x64_qat":
            (alone,) = tflm_host.host_outputs(model.data, [x.reshape((len(x),) + shape)], 1, 120)
            assert (alone != want).sum() > 50
        if name == "mean_2x2x64_ties":  # std::round's halves away from zero, which halves to even would miss
            half_even = _mean_halves_to_even(model, x.reshape((len(x),) + shape))
            assert (half_even != got).sum() > 20


def _mean_halves_to_even(model, x):
    """A _mean_model's output for x as the pinned library's float path would give it with its halves rounded to even
    (np.round), not away from zero as std::round does: the convolution's outputs from the host's TFLM (the model cut
    before its MEAN), then the same float32 arithmetic as tflm_host.pinned_mean."""
    from tinydeploy import tflm_host
    from tinydeploy.tflite_edit import Editor

    (mean,) = tflm_host.int8_means(model)
    ed = Editor(model.data)
    ed.g.operators = ed.g.operators[:mean.index]
    ed.g.outputs = np.asarray([mean.inputs[0]], np.int32)
    (conv,) = tflm_host.host_outputs(ed.pack(), [x], 1, 120)
    xt, yt = model.tensors[mean.inputs[0]], model.tensors[mean.outputs[0]]
    s = conv.astype(np.int64).reshape(len(x), -1, xt.shape[-1]).sum(axis=1)
    n = xt.shape[1] * xt.shape[2]
    scale = np.float32(xt.quantization.scales[0]) / np.float32(yt.quantization.scales[0])
    bias = np.float32(-xt.quantization.zero_points[0]) * scale
    r = tflm_host.fma_f32(s.astype(np.float32) / np.float32(n), scale, bias).astype(np.float64)
    assert (np.abs(r) % 1 == 0.5).sum() > 20  # the case is what it says: many halves
    return np.clip(np.round(r) + yt.quantization.zero_points[0], -128, 127).astype(np.int8)


@pytest.mark.parametrize("name", ["maxpool_9x9x6", "maxpool_11x7x10"])
def test_max_pool_is_bit_exact_with_tflm_reference_on_the_device(case_models, tflm_dir, tmp_path, name):
    from tinydeploy.tflite_model import TFLiteModel

    m = TFLiteModel.from_file(case_models[name])
    pools = [o for o in m.operators if o.opname == "MAX_POOL_2D"]
    # the cases are what they say: the relu6 fused into the first pool, windows cut by the border
    assert len(pools) == 2 and pools[0].options["fused_activation"] == 3  # RELU6
    assert m.tensors[pools[0].outputs[0]].quantization.zero_points == (-100,)
    _bit_exact(case_models[name], "MAX_POOL_2D", tflm_dir, tmp_path, every_shape=False, also=("CONV_2D",))


def test_softmax_is_bit_exact_with_tflm_reference_on_the_device(case_models, tflm_dir, tmp_path):
    """td_kernel_softmax.cpp (the CMSIS-NN function on 16 bytes of op data) against TFLM's reference softmax
    (bench/reference_kernels.cpp), 9 rows of 37 classes."""
    _bit_exact(case_models["softmax_3x3x37"], "SOFTMAX", tflm_dir, tmp_path, every_shape=False, also=("CONV_2D",))


def test_channels_outside_the_shortcut_among_others_are_bit_exact(case_models, tflm_dir, tmp_path):
    """The build writes, and Prepare finds again, the range of channels that may fall outside the requantization's
    shortcut (the one and two dead channels' own, in the middle of the layers); the loops on a single pixel test only
    those (PerChannelRow) or leave their groups to the planes (Taps), and compute them by TFLM's arithmetic (mutations
    pc-row-range and taps-range break that)."""
    from tinydeploy.analyze.requant import channel_params
    from tinydeploy.tflite_model import TFLiteModel

    path = case_models["dead_channels_1x1"]
    params = channel_params(TFLiteModel.from_file(path))
    assert [p.outside for p in params] == [(21, 51), (70, 71), (0, 0)], params
    assert params[0].activation == (-100, 28)  # the first layer clamps inside int8's range
    _bit_exact(path, "CONV_2D", tflm_dir, tmp_path, every_shape=False, also=("DEPTHWISE_CONV_2D",))


@pytest.mark.parametrize("name, window, taps", [("depthwise_narrow_relu6", 0, 0), ("depthwise_narrow_relu6", 1, 0),
                                                ("depthwise_narrow_relu6_2x2", 0, 1)])
def test_depthwise_clamps_a_narrower_activation_range_bit_exact(case_models, tflm_dir, tmp_path, name, window, taps):
    """Both depthwise layers clamp to [-100, 28]: the window loops to int8's range, then ClampPixels over the group's
    outputs (mutation window-clamp leaves that out); the planes (BandAny) clamp each output (band-clamp leaves that
    out); Taps clamps each pixel's word (taps-clamp leaves that out)."""
    from tinydeploy.analyze.requant import channel_params
    from tinydeploy.tflite_model import TFLiteModel

    path = case_models[name]
    assert [p.activation for p in channel_params(TFLiteModel.from_file(path))] == [(-100, 28)] * 2
    _bit_exact(path, "DEPTHWISE_CONV_2D", tflm_dir, tmp_path, every_shape=False,
               edit=lambda project: _every_shape(project, window=window, taps=taps))


def test_an_op_no_node_of_which_tinydeploys_kernel_takes_is_registered_as_the_library_builds_it(case_models, tmp_path):
    """generate/registration.py: an ADD that broadcasts (which td_kernel_add.cpp's Applies refuses) gets the library's
    own registration, the line `--kernels cmsis-nn` writes, so it runs no hand-over; a model of same-shape ADDs only
    gets tinydeploy's without the library's kernel."""
    from conftest import run_cli

    ops = {}
    for name, kernels in (("add_broadcast", "tinydeploy"), ("add_broadcast", "cmsis-nn"), ("add_residual_relu", "tinydeploy")):
        out = tmp_path / f"{name}-{kernels}"
        run_cli("build", case_models[name], "-o", out, "--no-compile", "--kernels", kernels, check=0)
        ops[name, kernels] = [line for line in (out / "src" / "model_ops.h").read_text().splitlines() if "AddAdd" in line]
    assert ops["add_broadcast", "tinydeploy"] == ops["add_broadcast", "cmsis-nn"] and len(ops["add_broadcast", "cmsis-nn"]) == 1
    assert "td::kernels" not in ops["add_broadcast", "tinydeploy"][0]
    assert "td::kernels::Register_ADD_INT8()" in ops["add_residual_relu", "tinydeploy"][0]


@pytest.mark.parametrize("name, flag", [("conv_k3_s1_same_c120_f8_cmsis", "-DTD_CMSIS_CONV=0"),
                                        ("k3_s1_same_c4_m2", "-DTD_CMSIS_DEPTHWISE=2")])
def test_a_build_without_the_cmsis_function_refuses_a_node_that_needs_it(case_models, tflm_dir, tmp_path, name, flag):
    """generate/project.py leaves the CMSIS-NN convolution out (-DTD_CMSIS_CONV=0) only where tinydeploy's loops take
    every CONV_2D node: not for a node of 1,080 values under the filter, which the CMSIS-NN function runs; and keeps
    only CMSIS-NN's 3x3 depthwise function (-DTD_CMSIS_DEPTHWISE=2) only where every node left to CMSIS-NN is one its
    wrapper runs by it: not a depth multiplier of 2. Forced into such a project, the firmware refuses to start with
    one line instead of computing anything."""
    from conftest import run_cli

    project = tmp_path / "p"
    run_cli("build", case_models[name], "-o", project, "--no-compile", check=0)
    ini = project / "platformio.ini"
    text = ini.read_text()
    assert flag[2:].split("=")[0] not in text and "build_flags =\n" in text
    ini.write_text(text.replace("build_flags =\n", f"build_flags =\n    {flag}\n", 1))
    r = run_cli("emulate", project, "--tflm", tflm_dir, "--runs", "1", timeout=600)
    assert r.returncode == 3 and "AllocateTensors() failed" in r.stderr, r.stderr
    assert "left out the CMSIS-NN function" in r.stderr and "rebuild it" in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr


def test_a_small_depthwise_map_links_cmsis_nns_3x3_function_alone(case_models, tflm_dir, tmp_path):
    """A 3x3 map at stride 3 (9 output pixels: under the planes' 16, a stride the window loops do not take, not a single
    pixel, Taps' own) goes to CMSIS-NN, whose wrapper would run it by arm_depthwise_conv_3x3_s8: the build says
    -DTD_CMSIS_DEPTHWISE=2, the firmware calls that function directly, the wrapper's two others are not linked, and the
    outputs are the reference's, bit for bit."""
    import subprocess

    name = "k3_s3_same_c8_3x3_cmsis"
    _bit_exact(case_models[name], "DEPTHWISE_CONV_2D", tflm_dir, tmp_path, every_shape=False)
    assert "    -DTD_CMSIS_DEPTHWISE=2\n" in (tmp_path / "ours" / "platformio.ini").read_text()
    symbols = subprocess.run(["arm-none-eabi-nm", str(tmp_path / "e-ours" / "firmware.elf")], capture_output=True,
                             text=True, check=True).stdout.split()
    assert "arm_depthwise_conv_3x3_s8" in symbols
    assert "arm_depthwise_conv_s8_opt" not in symbols and "arm_depthwise_conv_s8" not in symbols


MUTATIONS = {  # file -> (text, broken text)
    # the kernels' requantization with its final rounding dropped: it truncates
    "truncating-shift": ("td_kernel_util.h", "return (dsp::smmlar(acc2, mult, add) + (acc2 >> 31)) >> right;",
                         "return (dsp::smmlar(acc2, mult, add - (1 << (right - 1))) + (acc2 >> 31)) >> right;"),
    # MEAN's 16-bit lanes widened only every 512 pixels: a sum of 400 extreme values overflows them
    "lanes-overflow": ("td_kernel_mean.cpp", "constexpr int kLanePixels = 256;", "constexpr int kLanePixels = 512;"),
    # MAX_POOL_2D's activation range left out: the relu6 fused into the pool not applied
    "pool-no-clamp": ("td_kernel_pool.cpp", "const bool full = lo <= -128 && hi >= 127;", "const bool full = true;"),
    # the first layer's gathered pairs: (q1, q2) built from q0 and q2 (GatherFive's halfword packing)
    "five-gather": ("td_kernel_conv.cpp", "(static_cast<uint32_t>(oq) & 0xffffu)",
                    "(static_cast<uint32_t>(eq) & 0xffffu)"),
    # DotFive's second pair against the third weight word
    "five-tap": ("td_kernel_conv.cpp", "smlad lr, r5, r9, lr", "smlad lr, r5, r10, lr"),
    # Taps' channel 1 taking channel 0's input
    "taps-lanes": ("td_kernel_depthwise.cpp", '"smlabb r5, r10, r11, r5\\n\\t"', '"smlabb r5, r8, r11, r5\\n\\t"'),
    # Taps' rounding constant made with the right shift, not one less (the zero point doubled)
    "taps-const": ("td_kernel_depthwise.cpp", '"mvn r8, r6\\n\\t"', '"rsb r8, r6, #0\\n\\t"'),
    # Taps' list leaving out each pixel's taps in the image's last column
    "taps-list": ("td_kernel_depthwise.cpp", "|| ix < 0 || ix >= m.in_w) continue;", "|| ix < 0 || ix >= m.in_w - 1) continue;"),
    # Taps' words not clamped to a narrower activation range's bottom
    "taps-clamp": ("td_kernel_depthwise.cpp", '"sel r7, r7, r3\\n\\t"', '"nop\\n\\t"'),
    # the window loops' pairs at stride 1: the second output's first tap taking the first's input (x_j, not x_j+1)
    "window-tap": ("td_kernel_depthwise.cpp", '"smlatb " B ", r9, r11, " B "\\n\\t"',
                   '"smlabb " B ", r9, r11, " B "\\n\\t"'),
    # the window loops' pairs at stride 2: the second output's last tap reading x_j+2, not x_j+4
    "window-s2-tap": ("td_kernel_depthwise.cpp", "TD_XSTR(256 * R + 64 * C + 8)", "TD_XSTR(256 * R + 64 * C + 4)"),
    # an odd width's last column: every row's output stored over the first row's
    "window-column": ("td_kernel_depthwise.cpp", '"add r5, r8\\n\\t"', '"nop\\n\\t"'),
    # the copy's odd pixel pair: the second pixel's channels 2 and 3 taken from the first
    "window-copy": ("td_kernel_depthwise.cpp", '"pkhtb r12, r12, r11, asr #16\\n\\t"',
                    '"pkhtb r12, r11, r11, asr #16\\n\\t"'),
    # the copy's two pairs a step: channel 2's words stored in channel 3's row
    "window-copy-quad": ("td_kernel_depthwise.cpp", '"strd r5, r8, [r10, #128]\\n\\t"',
                         '"strd r5, r8, [r10, #192]\\n\\t"'),
    # the copy not stepping over the image's pixels beside the windows to the next row's first
    "window-copy-row": ("td_kernel_depthwise.cpp", '"add r1, r9\\n\\t"', '"nop\\n\\t"'),
    # the copy's lead pixel (an odd first column): channel 0 given channel 1's value
    "window-copy-lead": ("td_kernel_depthwise.cpp", '"lsl lr, r12, #16\\n\\t"', '"lsl lr, r11, #16\\n\\t"'),
    # the padding rows above the image not 0 (a padded tap would add w * 257, where the reference adds nothing)
    "window-pad": ("td_kernel_depthwise.cpp", "if (t.ya > 0) memset(buf, 0, t.ya * kTileRowBytes);",
                   "if (t.ya > 0) memset(buf, 1, t.ya * kTileRowBytes);"),
    # the padding words right of the image not 0
    "window-pad-right": ("td_kernel_depthwise.cpp", "for (int k = right; k < end; ++k) row[k] = 0;",
                         "for (int k = right; k < end; ++k) row[k] = 0x10001;"),
    # a group's outputs not clamped to a narrower activation range after the window loops (which clamp to int8's)
    "window-clamp": ("td_kernel_depthwise.cpp", "if (!full && windowed) {", "if (false) {"),
    # the window's weights: each filter row's (w1, w2) word given (w1, w1)
    "window-weights": ("td_kernel_depthwise.cpp", "w[1] = dsp::pack_bottoms(e1, e2)",
                       "w[1] = dsp::pack_bottoms(e1, e1)"),
    # every tile's copy starting at the map's first column (a second column of tiles computed from the first's input)
    "window-tiles": ("td_kernel_depthwise.cpp", "(t.ix + t.xa) * st.col", "t.xa * st.col"),
    # a tall map run transposed with its filter read untransposed
    "window-transposed": ("td_kernel_depthwise.cpp", "Steps{c, m.in_w * c, c, m.out_w * c, 3 * c, c}",
                          "Steps{c, m.in_w * c, c, m.out_w * c, c, 3 * c}"),
    # the planes' outputs (BandAny) clamped to int8's range only, not to a narrower activation range
    "band-clamp": ("td_kernel_depthwise.cpp", "return util::Clamp(v, ch.lo, ch.hi);",
                   "return util::Clamp(v, -128, 127);"),
    # SmallK's second product of each row against the first widened weight word
    "small-k-dot": ("td_kernel_matmul.cpp", '"smlad " acc ", r5, r9, "', '"smlad " acc ", r5, r8, "'),
    # the single-pixel loop's channels each taking the next one's shift (the distance from a multiplier 4 bytes long)
    "pc-row-shift": ("td_kernel_matmul.cpp", "reinterpret_cast<intptr_t>(m.mult)) - 4;",
                     "reinterpret_cast<intptr_t>(m.mult));"),
    # the single-pixel loop's first channel of the range outside the shortcut not looked at
    "pc-row-range": ("td_kernel_matmul.cpp", "m.outside.begin, end)", "m.outside.begin + 1, end)"),
    # the one-row loops' clamp to a narrower activation range skipped
    "pc-row-clamp": ("td_kernel_matmul.cpp", '"cbz r5, 4f\\n\\t"', '"b 4f\\n\\t"'),
    # Taps running the groups of the range outside the shortcut by the shortcut too
    "taps-range": ("td_kernel_depthwise.cpp", ": (c0 >= outside.end ? channels : c0);", ": channels;"),
    # the single-pixel loop's channels outside the shortcut left as its blocks wrote them, not computed again
    "pc-row-fixup": ("td_kernel_matmul.cpp", "RowChannel(m, xw, j);", "(void)0;"),
    # the one-row loops' (FcBlocks', FcBlocksPerChannel's) channel 3 given channel 1's weights
    "row-step": ("td_kernel_matmul.cpp", '"ldr r10, [r3, r2]\\n\\t"', '"ldr r10, [r1, r2]\\n\\t"'),
    # the one-row loops entered at their third step where K = 0 mod 16 (the first two steps of the row left out)
    "row-entry": ("td_kernel_matmul.cpp", '"adr.w r9, 1f\\n\\t"', '"adr.w r9, 3f\\n\\t"'),
    # the single-pixel loop's last one to three channels (the block over the last four) left out
    "pc-row-last": ("td_kernel_matmul.cpp", "if (m.cols & 3) {", "if (false) {"),
    # SOFTMAX's rows taken as one: the first row alone computed
    "softmax-rows": ("td_kernel_softmax.cpp", "op.rows = row_size > 0 ? static_cast<int32_t>(tflite::NumElements(in)) / row_size : 0;",
                     "op.rows = 1;"),
    # MEAN's integer path dividing rounded down, not to zero as C++ (and TFLM) does
    "floor-division": ("td_kernel_mean.cpp", "return static_cast<int8_t>(sum / integer_count);",
                       "return static_cast<int8_t>((sum - (sum < 0 ? integer_count - 1 : 0)) / integer_count);"),
}


@pytest.mark.parametrize("name, mutation", [("k3_s1_same_c64_spread", "truncating-shift"),
                                            ("conv_k3_s1_valid_c4_f20_spread", "truncating-shift"),
                                            ("mean_20x20x6", "lanes-overflow"),
                                            ("mean_9x9x7_integer", "floor-division"),
                                            ("maxpool_9x9x6", "pool-no-clamp"),
                                            ("softmax_3x3x37", "softmax-rows"),
                                            ("pw_1x1_map_per_channel", "pc-row-shift"),
                                            ("pw_1x1_map_per_channel", "pc-row-last"),
                                            ("pw_1x1_map_per_channel", "row-step"),
                                            ("fc_k40_37_10", "row-step"),
                                            ("fc_k64_24_16_relu6", "row-entry"),
                                            ("dead_channels_1x1", "row-entry"),
                                            ("pw_1x1_map_above_1", "pc-row-fixup"),
                                            ("dead_channels_1x1", "pc-row-range"),
                                            ("dead_channels_1x1", "taps-range"),
                                            ("dead_channels_1x1", "pc-row-clamp"),
                                            ("conv_k3_s1_same_c1_f16_relu", "five-gather"),
                                            ("conv_k3_s1_same_c1_f16_relu", "five-tap"),
                                            ("pw_k8_k16_blocks", "small-k-dot"),
                                            ("k3_s1_same_c16_relu6_mult_above_1", "window-tap"),
                                            ("k3_s2_valid_c16", "window-s2-tap"),
                                            ("k3_s1_same_c5_relu6", "window-column"),
                                            ("k3_s1_same_c5_relu6", "window-copy"),
                                            ("k3_s1_same_c4_wide", "window-copy-quad"),
                                            ("k3_s2_valid_c16", "window-copy-row"),
                                            ("k3_s2_same_c4_big", "window-copy-lead"),
                                            ("k3_s1_same_c5_relu6", "window-pad"),
                                            ("k3_s1_same_c64_spread", "window-pad-right"),
                                            ("depthwise_narrow_relu6", "window-clamp"),
                                            ("depthwise_narrow_relu6", "band-clamp"),
                                            ("k3_s1_same_c64_spread", "window-weights"),
                                            ("k3_s2_same_c4_tiles", "window-tiles"),
                                            ("k3_s1_same_c4_tall_transposed", "window-transposed"),
                                            ("k3_s2_same_c13_one_pixel_relu6_spread", "taps-lanes"),
                                            ("k3_s1_same_c20_2x2_spread", "taps-const"),
                                            ("k3_s2_same_c12_4x4_to_2x2", "taps-list"),
                                            ("depthwise_narrow_relu6_2x2", "taps-clamp")])
def test_a_wrong_kernel_would_be_caught(case_models, tflm_dir, tmp_path, name, mutation):
    """The comparison can fail: each kernel broken as MUTATIONS says (e.g. a requantization that truncates instead of
    rounding) gives outputs that differ from the reference build's on the bit-exact tests' inputs (subtler changes,
    negative ties or a truncated high multiply, were caught on some of these models while the kernels were written,
    but not on every draw of weights)."""
    from tinydeploy.boards import load
    from tinydeploy.emulate.firmware import build_firmware
    from tinydeploy.emulate.tflm_library import TflmLibrary
    from tinydeploy.tflite_model import TFLiteModel
    from conftest import run_cli

    path = case_models[name]
    ours = tmp_path / "ours"
    run_cli("build", path, "-o", ours, "--no-compile", "--kernels", "tinydeploy", check=0)
    _every_shape(ours, window=1 if mutation.startswith("window") else 0, taps=1 if mutation.startswith("taps") else 0,
                 tile_rows=_tile_rows(name))
    file, good, bad = MUTATIONS[mutation]
    src = ours / "src" / file
    text = src.read_text()
    broken = text.replace(good, bad)
    assert broken != text
    src.write_text(broken)
    board, lib = load("nano33ble"), TflmLibrary.locate(str(tflm_dir))
    x = _inputs(tuple(TFLiteModel.from_file(path).input_tensors[0].shape))  # the bit-exact tests' inputs
    got = emulated_outputs(build_firmware(ours, lib, board, out_dir=tmp_path / "e").elf, x)
    assert not np.array_equal(got, _reference_outputs(path, x, tflm_dir, tmp_path))
