"""Shape computations folded into a constant (a step of the offline plan's deployment, TF-free).

A Keras Reshape or Flatten in a model converted with an unknown batch size becomes SHAPE -> STRIDED_SLICE -> PACK ->
RESHAPE: the batch size read at every inference to build the RESHAPE's target shape. The model TFLM runs has static
shapes (TFLM's RESHAPE takes its output's dimensions from the output tensor, not from that input), yet each op of the
chain is a node of the interpreter (a NodeAndRegistration: 32 B of the arena on the device, and its builtin data) and
each of its tensors a TfLiteEvalTensor (12 B), the constants too. ``fold_shapes`` gives such a RESHAPE a constant shape
(its output's dimensions), then drops the ops of the chain whose outputs nothing reads any more and every tensor no
op, graph input or output and no signature refers to (their buffers stay: a few bytes of flash). RESHAPE copies the
same bytes either way, so every output bit is the same (tests/test_fold.py runs both on the host TFLM).

A classifier's head ends ... -> RESHAPE -> SOFTMAX where the RESHAPE only drops the 1-sized axes a 1x1 convolution's
output has (1x1x1xN -> 1xN): SOFTMAX works along the last axis, row by row, so it computes the same bytes from the
RESHAPE's input. Where the RESHAPE keeps the last axis and its output is read by that SOFTMAX alone (and the SOFTMAX's
output by nothing but the graph), the SOFTMAX reads the RESHAPE's input and its output takes that input's shape
(1x1x1xN: the same N values in the same order), and the RESHAPE is dropped: a node, its builtin data, two tensors and
a copy fewer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..tflite_model import TFLiteModel

SHAPE_OPS = ("SHAPE", "STRIDED_SLICE", "PACK")  # the ops a folded chain may drop (no side effects, shape only)
ROW_OPS = ("SOFTMAX",)  # ops whose output is a function of each last-axis row of their input alone


@dataclass(frozen=True)
class Folded:
    model: TFLiteModel
    reshapes: int  # RESHAPEs given a constant shape
    reshapes_dropped: int  # RESHAPEs into a SOFTMAX dropped (the SOFTMAX reading the RESHAPE's input)
    ops_removed: int
    tensors_removed: int  # fewer than the model had (the constant shapes added counted against them)

    def to_dict(self) -> dict:
        return {"reshapes": self.reshapes, "reshapes_dropped": self.reshapes_dropped, "ops_removed": self.ops_removed,
                "tensors_removed": self.tensors_removed}


def _producers(g) -> dict[int, int]:
    return {int(t): i for i, op in enumerate(g.operators) for t in op.outputs if int(t) >= 0}


def _dims(t) -> list[int]:
    return [int(d) for d in t.shape] if t.shape is not None else []


def _drop_reshapes_into_rows(ed, names: dict[int, int]) -> int:
    """Each RESHAPE whose output only a row op (ROW_OPS) reads, keeping the last axis, dropped: the row op reads the
    RESHAPE's input and its output, read by nothing but the graph, takes that input's shape. Returns how many."""
    g, S = ed.g, ed.S
    reshape, rows = S.BuiltinOperator.RESHAPE, {getattr(S.BuiltinOperator, n) for n in ROW_OPS}
    graph_io = {int(t) for t in np.concatenate([g.inputs, g.outputs])}
    for sig in ed.m.signatureDefs or []:
        graph_io |= {int(tm.tensorIndex) for tm in (sig.inputs or []) + (sig.outputs or [])}
    dropped = 0
    for r in list(g.operators):
        if names[r.opcodeIndex] != reshape or r.inputs is None or len(r.outputs) != 1:
            continue
        x, y = int(r.inputs[0]), int(r.outputs[0])
        readers = [op for op in g.operators if op.inputs is not None and y in {int(t) for t in op.inputs}]
        if len(readers) != 1 or y in graph_io or x < 0:
            continue
        row = readers[0]
        if names[row.opcodeIndex] not in rows or [int(t) for t in row.inputs] != [y] or len(row.outputs) != 1:
            continue
        z = int(row.outputs[0])
        if any(op.inputs is not None and z in {int(t) for t in op.inputs} for op in g.operators):
            continue
        xd, yd = _dims(g.tensors[x]), _dims(g.tensors[y])
        if not xd or not yd or min(xd + yd) < 1 or xd[-1] != yd[-1] or int(np.prod(xd)) != int(np.prod(yd)):
            continue
        zt, xt = g.tensors[z], g.tensors[x]
        zt.shape = np.asarray(xd, np.int32)
        zt.shapeSignature = None if xt.shapeSignature is None else np.asarray(xt.shapeSignature, np.int32)
        row.inputs = np.asarray([x], np.int32)
        g.operators = [op for op in g.operators if op is not r]
        dropped += 1
    return dropped


def fold_shapes(model: TFLiteModel) -> Folded:
    """``model`` with every RESHAPE whose shape an op computes given a constant one, each RESHAPE into a SOFTMAX that
    keeps the last axis dropped, the chain's ops nothing reads dropped and the tensors nothing refers to removed; the
    model itself where there is none."""
    from ..tflite_edit import Editor, name_of

    ed = Editor(model.data)
    if len(ed.m.subgraphs) != 1:  # control flow: other subgraphs refer to tensors by index too; left as it is
        return Folded(model, 0, 0, 0, 0)
    g, S = ed.g, ed.S
    names = {i: max(oc.builtinCode, oc.deprecatedBuiltinCode) for i, oc in enumerate(ed.m.operatorCodes)}
    code = {n: getattr(S.BuiltinOperator, n) for n in ("RESHAPE", *SHAPE_OPS)}
    producers = _producers(g)
    reshapes = 0
    for op in g.operators:
        if names[op.opcodeIndex] != code["RESHAPE"] or op.inputs is None or len(op.inputs) < 2:
            continue
        shape_in, out = int(op.inputs[1]), g.tensors[int(op.outputs[0])]
        dims = _dims(out)
        if shape_in < 0 or shape_in not in producers or not dims or min(dims) < 1:
            continue
        inputs = [int(t) for t in op.inputs]
        inputs[1] = ed.const_shape(f"{name_of(out)}/td_shape", dims)
        op.inputs = np.asarray(inputs, np.int32)
        reshapes += 1
    ops_before = len(g.operators)
    dropped = _drop_reshapes_into_rows(ed, names)
    if not reshapes and not dropped:
        return Folded(model, 0, 0, 0, 0)

    # the shape ops whose outputs nothing reads any more, until none is left
    kept_outputs = {int(t) for t in g.outputs}
    shape_codes = {code[n] for n in SHAPE_OPS}
    while True:
        read = kept_outputs | {int(t) for op in g.operators for t in (op.inputs if op.inputs is not None else [])}
        dead = {i for i, op in enumerate(g.operators)
                if names[op.opcodeIndex] in shape_codes and not any(int(t) in read for t in op.outputs)}
        if not dead:
            break
        g.operators = [op for i, op in enumerate(g.operators) if i not in dead]

    # the tensors nothing refers to, removed and the rest renumbered
    signatures = ed.m.signatureDefs or []
    used = {int(t) for t in np.concatenate([g.inputs, g.outputs]) if int(t) >= 0}
    for op in g.operators:
        for field in (op.inputs, op.outputs, op.intermediates):
            used |= {int(t) for t in (field if field is not None else []) if int(t) >= 0}
    for sig in signatures:
        used |= {int(tm.tensorIndex) for tm in (sig.inputs or []) + (sig.outputs or [])}
    new = {old: i for i, old in enumerate(sorted(used))}

    def remap(field):
        return None if field is None else np.asarray([new[int(t)] if int(t) >= 0 else int(t) for t in field], np.int32)

    g.tensors = [t for i, t in enumerate(g.tensors) if i in new]
    g.inputs, g.outputs = remap(g.inputs), remap(g.outputs)
    for op in g.operators:
        op.inputs, op.outputs, op.intermediates = remap(op.inputs), remap(op.outputs), remap(op.intermediates)
    for sig in signatures:
        for tm in (sig.inputs or []) + (sig.outputs or []):
            tm.tensorIndex = new[int(tm.tensorIndex)]
    folded = TFLiteModel.from_bytes(ed.pack(), source=model.source)
    return Folded(folded, reshapes, dropped, ops_before - len(g.operators), len(model.tensors) - len(folded.tensors))
