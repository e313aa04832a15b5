"""Per-operator figures computed from the graph alone: output shape, parameters, MACs, live memory."""

from __future__ import annotations

from dataclasses import dataclass

from ..tflite_model import TFLiteModel


@dataclass
class OpStats:
    index: int
    op: str
    output_shape: tuple[int, ...]
    params: int  # elements of constant inputs (weights, biases)
    weight_bytes: int  # bytes of constant inputs
    macs: int
    live_bytes: int  # activation bytes alive while this op runs (inputs, outputs, and tensors waiting)

    def to_dict(self) -> dict:
        return {"index": self.index, "op": self.op, "output_shape": list(self.output_shape), "params": self.params,
                "weight_bytes": self.weight_bytes, "macs": self.macs, "live_bytes": self.live_bytes}


WEIGHT_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"})


def macs_of(model: TFLiteModel, op) -> int:
    """Multiply-accumulates of one operator, counted from the tensor shapes.

    CONV_2D: out_elements * kh * kw * cin; DEPTHWISE_CONV_2D: out_elements * kh * kw;
    FULLY_CONNECTED: out_elements * in_features; TRANSPOSE_CONV: in_elements * kh * kw * cout.
    Other operators count no MACs.
    """
    t = model.tensors
    if not op.outputs or op.outputs[0] < 0:
        return 0
    out = t[op.outputs[0]]
    if op.opname == "CONV_2D" and len(op.inputs) >= 2:
        w = t[op.inputs[1]].shape  # [cout, kh, kw, cin]
        return out.num_elements * w[1] * w[2] * w[3] if len(w) == 4 else 0
    if op.opname == "DEPTHWISE_CONV_2D" and len(op.inputs) >= 2:
        w = t[op.inputs[1]].shape  # [1, kh, kw, cout]
        return out.num_elements * w[1] * w[2] if len(w) == 4 else 0
    if op.opname == "FULLY_CONNECTED" and len(op.inputs) >= 2:
        w = t[op.inputs[1]].shape  # [units, in_features]
        return out.num_elements * w[-1] if w else 0
    if op.opname == "TRANSPOSE_CONV" and len(op.inputs) >= 3:
        w = t[op.inputs[1]].shape  # [cout, kh, kw, cin]
        return t[op.inputs[2]].num_elements * w[0] * w[1] * w[2] if len(w) == 4 else 0
    return 0


def live_bytes_per_op(model: TFLiteModel) -> list[int]:
    """Bytes of the arena head's tensors live while each operator runs, as TFLM sizes and counts them
    (tinydeploy.lifetimes): their maximum is the lower bound of the head."""
    from ..lifetimes import lifetimes, live_bytes

    n = len(model.operators)
    return live_bytes(lifetimes(model), n)[1:n + 1]  # scope k + 1 is operator k


def op_stats(model: TFLiteModel) -> list[OpStats]:
    live = live_bytes_per_op(model)
    stats = []
    for op in model.operators:
        consts = [model.tensors[i] for i in op.inputs if i >= 0 and model.tensors[i].is_constant]
        if op.opname not in WEIGHT_OPS:  # shape/axis/paddings constants are not parameters
            consts = [c for c in consts if c.dtype not in ("INT32", "INT64")]
        out_shape = model.tensors[op.outputs[0]].shape if op.outputs and op.outputs[0] >= 0 else ()
        stats.append(OpStats(
            index=op.index, op=op.opname, output_shape=out_shape,
            params=sum(c.num_elements for c in consts),
            weight_bytes=sum(len(c.data) for c in consts),
            macs=macs_of(model, op), live_bytes=live[op.index],
        ))
    return stats
