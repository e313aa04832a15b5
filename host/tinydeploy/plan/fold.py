"""Shape computations folded into a constant (a step of the offline plan's deployment, TF-free).

A Keras Reshape or Flatten in a model converted with an unknown batch size becomes SHAPE -> STRIDED_SLICE -> PACK ->
RESHAPE: the batch size read at every inference to build the RESHAPE's target shape. The model TFLM runs has static
shapes (TFLM's RESHAPE takes its output's dimensions from the output tensor, not from that input), yet each op of the
chain is a node of the interpreter (a NodeAndRegistration: 44 B of the arena on the device, and its builtin data) and
each of its tensors a TfLiteEvalTensor (12 B), the constants too. ``fold_shapes`` gives such a RESHAPE a constant shape
(its output's dimensions), then drops the ops of the chain whose outputs nothing reads any more and every tensor no
op, graph input or output and no signature refers to (their buffers stay: a few bytes of flash). RESHAPE copies the
same bytes either way, so every output bit is the same (tests/test_fold.py runs both on the host TFLM).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..tflite_model import TFLiteModel

SHAPE_OPS = ("SHAPE", "STRIDED_SLICE", "PACK")  # the ops a folded chain may drop (no side effects, shape only)


@dataclass(frozen=True)
class Folded:
    model: TFLiteModel
    reshapes: int  # RESHAPEs given a constant shape
    ops_removed: int
    tensors_removed: int  # fewer than the model had (the constant shapes added counted against them)

    def to_dict(self) -> dict:
        return {"reshapes": self.reshapes, "ops_removed": self.ops_removed, "tensors_removed": self.tensors_removed}


def _producers(g) -> dict[int, int]:
    return {int(t): i for i, op in enumerate(g.operators) for t in op.outputs if int(t) >= 0}


def fold_shapes(model: TFLiteModel) -> Folded:
    """``model`` with every RESHAPE whose shape an op computes given a constant one, the chain's ops nothing reads
    dropped and the tensors nothing refers to removed; the model itself where there is none."""
    from ..repair import _Editor, _name

    ed = _Editor(model.data)
    if len(ed.m.subgraphs) != 1:  # control flow: other subgraphs refer to tensors by index too; left as it is
        return Folded(model, 0, 0, 0)
    g, S = ed.g, ed.S
    names = {i: max(oc.builtinCode, oc.deprecatedBuiltinCode) for i, oc in enumerate(ed.m.operatorCodes)}
    code = {n: getattr(S.BuiltinOperator, n) for n in ("RESHAPE", *SHAPE_OPS)}
    producers = _producers(g)
    reshapes = 0
    for op in g.operators:
        if names[op.opcodeIndex] != code["RESHAPE"] or op.inputs is None or len(op.inputs) < 2:
            continue
        shape_in, out = int(op.inputs[1]), g.tensors[int(op.outputs[0])]
        dims = [int(d) for d in out.shape] if out.shape is not None else []
        if shape_in < 0 or shape_in not in producers or not dims or min(dims) < 1:
            continue
        inputs = [int(t) for t in op.inputs]
        inputs[1] = ed.const_shape(f"{_name(out)}/td_shape", dims)
        op.inputs = np.asarray(inputs, np.int32)
        reshapes += 1
    if not reshapes:
        return Folded(model, 0, 0, 0)

    # the shape ops whose outputs nothing reads any more, until none is left
    kept_outputs = {int(t) for t in g.outputs}
    shape_codes = {code[n] for n in SHAPE_OPS}
    ops_before = len(g.operators)
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
    return Folded(folded, reshapes, ops_before - len(g.operators), len(model.tensors) - len(folded.tensors))
