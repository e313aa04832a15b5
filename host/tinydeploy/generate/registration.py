"""Which registration the generated op resolver uses for an op tinydeploy has kernels for (firmware/kernels/
kernels.json), from the nodes the build predicts its kernel takes.

The firmware decides node by node in Prepare (each kernel's ``Applies``); the host predicts that choice from the
model, to pick one of three registrations per op:

- every node taken, and the op has a ``register_every_node`` function: that one, which links no library kernel;
- no node taken: the library's own registration, exactly as ``--kernels cmsis-nn`` builds it, so that such an op
  runs the same instructions as there (tinydeploy's registration would add its hand-over on every call);
- otherwise tinydeploy's registration, which hands each node it does not take to the library's kernel.

A wrong prediction is never wrong output: "every node" where the firmware would refuse one stops it in Prepare with
one line (tests/test_kernels.py builds every case with this choice); "no node" where it would take some only runs
the library's kernel there.
"""

from __future__ import annotations

import numpy as np

from ..tflite_model import Operator, TFLiteModel


def _tensor(model: TFLiteModel, index: int):
    return model.tensors[index] if 0 <= index < len(model.tensors) else None


def _int8(*tensors) -> bool:
    return all(t is not None and t.dtype == "INT8" for t in tensors)


def _fully_connected(model: TFLiteModel, op: Operator, _params: set[int]) -> bool:
    """td_kernel_fully_connected.cpp's Applies: int8, a 2-D filter with zero point 0, an int32 bias or none, an
    output of 2 to 4 dimensions."""
    if len(op.inputs) < 2 or len(op.outputs) != 1:
        return False
    x, w, y = _tensor(model, op.inputs[0]), _tensor(model, op.inputs[1]), _tensor(model, op.outputs[0])
    b = _tensor(model, op.inputs[2]) if len(op.inputs) > 2 else None
    return (_int8(x, w, y) and len(w.shape) == 2 and not any(w.quantization.zero_points)
            and 2 <= len(y.shape) <= 4 and (b is None or b.dtype == "INT32"))


def _add(model: TFLiteModel, op: Operator, _params: set[int]) -> bool:
    """td_kernel_add.cpp's Applies: int8, both inputs of the output's shape."""
    if len(op.inputs) != 2 or len(op.outputs) != 1:
        return False
    a, b, y = (_tensor(model, i) for i in (*op.inputs, op.outputs[0]))
    return _int8(a, b, y) and tuple(a.shape) == tuple(b.shape) == tuple(y.shape)


def _mean(model: TFLiteModel, op: Operator, _params: set[int]) -> bool:
    """td_kernel_mean.cpp's Applies: int8, a 4-D input reduced over axes 1 and 2 (a constant axis tensor of two),
    an output of batch x channels elements."""
    if len(op.inputs) != 2 or len(op.outputs) != 1:
        return False
    x, axis, y = _tensor(model, op.inputs[0]), _tensor(model, op.inputs[1]), _tensor(model, op.outputs[0])
    if not (_int8(x, y) and len(x.shape) == 4 and axis is not None and axis.dtype == "INT32" and axis.is_constant
            and len(axis.data) == 8 and y.num_elements == x.shape[0] * x.shape[3]):
        return False
    return sorted(int(a) % 4 for a in np.frombuffer(axis.data, "<i4")) == [1, 2]


def _max_pool(model: TFLiteModel, op: Operator, _params: set[int]) -> bool:
    """td_kernel_pool.cpp's Applies: int8, a 4-D input and output of the same batch and channels."""
    if not op.inputs or len(op.outputs) != 1:
        return False
    x, y = _tensor(model, op.inputs[0]), _tensor(model, op.outputs[0])
    return _int8(x, y) and len(x.shape) == len(y.shape) == 4 and (x.shape[0], x.shape[3]) == (y.shape[0], y.shape[3])


def _softmax(model: TFLiteModel, op: Operator, _params: set[int]) -> bool:
    """td_kernel_softmax.cpp's Applies: int8 in and out, as many output values as input values."""
    if len(op.inputs) != 1 or len(op.outputs) != 1:
        return False
    x, y = _tensor(model, op.inputs[0]), _tensor(model, op.outputs[0])
    return _int8(x, y) and len(x.shape) >= 1 and x.num_elements == y.num_elements


def _conv(_model: TFLiteModel, op: Operator, params: set[int]) -> bool:
    """td_kernel_cmsis.h's TakesConvNode: every node whose parameters the build wrote into model_params.cpp (every
    int8 node; its own loops or the CMSIS-NN function run it)."""
    return op.index in params


TAKES = {"CONV_2D": _conv, "DEPTHWISE_CONV_2D": _conv, "FULLY_CONNECTED": _fully_connected, "ADD": _add,
         "MEAN": _mean, "MAX_POOL_2D": _max_pool, "SOFTMAX": _softmax}


def registration(model: TFLiteModel, kernel: dict | None, op: str, params: set[int]) -> str | None:
    """The function that registers tinydeploy's kernel for ``op`` (``kernel``: its kernels.json entry), or None for
    the library's registration. ``params``: the operators whose parameters are in model_params.cpp."""
    if kernel is None:
        return None
    takes = TAKES[op]
    taken = [takes(model, o, params) for o in model.operators if o.opname == op]
    if taken and all(taken) and "register_every_node" in kernel:
        return kernel["register_every_node"]
    if not any(taken):
        return None
    return kernel["register"]
