"""One trial: sample a candidate, reject it in seconds when its int8 model cannot fit the board, else train it,
compress it, convert it to int8, and measure validation accuracy and latency.

Objectives: validation accuracy of the int8 model (balanced accuracy where classes are imbalanced), maximized; latency
per inference, minimized: instructions on the emulated Cortex-M4 at one per cycle at the board's clock when the
emulator is available, else the cycle model's estimate (each trial records which).

Early stopping of trials that train badly: Optuna refuses ``Trial.report`` in multi-objective studies, so each epoch's
validation accuracy is stored as a user attribute and Optuna's own ``MedianPruner`` is asked through a
single-objective view of the study. That view holds only the completed trials that are at least as fast as this one
(by the cycle model, known before training): a slow model is stopped when it is less accurate than the median of
faster ones at the same epoch, while a fast, less accurate model, which may belong on the Pareto front, is not.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..boards import Board
from .space import Candidate, build_model, compressed, suggest


class Rejected(Exception):
    """The candidate does not fit the board (found before training, or after, for the model as deployed)."""


@dataclass
class SearchConfig:
    board: Board
    epochs: int = 3
    finetune_epochs: int = 1
    batch_size: int = 128
    tflm: str | None = None  # the library for emulated latency; None: the cycle model
    emulate: bool = True
    startup_trials: int = 3  # completed trials before the pruner stops any


def _single_objective_view(study, faster_than: float):
    """What Optuna's pruners read of a study (``direction`` and ``get_trials``), restricted to the completed trials
    whose cycle-model latency is at most ``faster_than``, each with its stored validation curve."""
    import optuna
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    class View:
        direction = StudyDirection.MAXIMIZE

        @staticmethod
        def get_trials(deepcopy=False, states=None):
            out = []
            for t in study.get_trials(deepcopy=False, states=states):
                curve = t.user_attrs.get("val_curve")
                if curve and t.user_attrs.get("latency_estimate_ms", float("inf")) <= faster_than:
                    out.append(optuna.trial.create_trial(state=TrialState.COMPLETE, value=0.0,
                                                         intermediate_values=dict(enumerate(curve))))
            return out

    return View()


def _pruning_callback(trial, keras, estimate_ms: float, startup: int):
    import optuna

    class Prune(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.curve = []

        def on_epoch_end(self, epoch, logs=None):
            self.curve.append(float((logs or {}).get("val_accuracy", 0.0)))
            trial.set_user_attr("val_curve", self.curve)
            pruner = optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=0)
            me = optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, value=0.0,
                                           intermediate_values=dict(enumerate(self.curve)))
            if pruner.prune(_single_objective_view(trial.study, estimate_ms), me):
                raise optuna.TrialPruned(f"validation accuracy {self.curve[-1]:.3f} after epoch {epoch + 1} is below "
                                         "the median of faster completed trials")

    return Prune()


class Objective:
    """Called by Optuna once per trial, in each worker. The dataset is loaded once per worker; resized copies are
    kept per resolution."""

    def __init__(self, ds, cfg: SearchConfig):
        self.ds = ds
        self.cfg = cfg
        self._sized = {ds.input_shape[0]: ds}

    def data(self, resolution: int):
        if resolution not in self._sized:
            from ..compress.datasets import prepare

            self._sized[resolution] = prepare(self.ds, size=resolution)
        return self._sized[resolution]

    def deployed_keras(self, c: Candidate, model):
        """The Keras model that would be deployed before any training: structured pruning shrinks it first."""
        from ..compress.filters import prune_filters

        return prune_filters(model, c.filter_fraction) if c.filter_fraction else model

    def check(self, data: bytes, name: str, untrained: bool = False) -> dict:
        """Analyze an int8 model (TF-free: flash with the runtime, arena by the TFLM host interpreter, firmware RAM);
        raise Rejected when it does not fit. ``untrained``: an untrained model's softmax input may barely vary, which
        TFLM refuses (analyze says so); that says nothing about the trained model, so it is not held against it."""
        from ..analyze import SOFTMAX_SCALE, analyze_or_graph
        from ..analyze.cycle_model import estimate_ms
        from ..plan import deployed as as_deployed
        from ..tflite_model import TFLiteModel

        # refused, e.g. for an untrained model's softmax: judge what the graph shows now, the rest after training
        deployed = as_deployed(TFLiteModel.from_bytes(data, source=name)).model  # repaired, memory planned
        a, _ = analyze_or_graph(deployed, self.cfg.board)
        issues = [i for i in a.support_issues if not (untrained and i.code == SOFTMAX_SCALE)]
        if issues:
            raise Rejected(issues[0].message)
        over = a.fit.overruns()
        if a.arena is None:  # not measured: a lower bound, the firmware's own RAM and the largest live activations
            lower = a.fit.firmware_bytes + max((o.live_bytes for o in a.ops), default=0)
            if lower > a.fit.ram.available_bytes:
                over["RAM"] = lower - a.fit.ram.available_bytes
        if over:
            raise Rejected("does not fit: " + ", ".join(f"{k} +{n / 1024:.1f} KiB" for k, n in over.items()))
        return {"model_bytes": len(data), "arena_bytes": a.arena.device_bytes if a.arena else None,
                "macs": a.total_macs, "params": a.total_params, "flash_need_bytes": a.fit.flash.need_bytes,
                "ram_need_bytes": a.fit.ram.need_bytes,
                "latency_estimate_ms": estimate_ms(a.ops, "int8", self.cfg.board), "analysis": a, "deployed": deployed}

    def __call__(self, trial):
        import optuna

        from ..compress.evaluate import metrics, predict_tflite
        from ..compress.quantize import convert
        from ..compress.tfenv import import_tf

        _, keras = import_tf()
        t0 = time.monotonic()
        c = suggest(trial, self.ds.input_shape[0])
        trial.set_user_attr("candidate", c.to_json())
        same = next((t for t in trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                     if t.params == trial.params and "duplicate_of" not in t.user_attrs), None)
        if same is not None:  # the sampler proposed a finished candidate again: its figures, not a second training
            trial.set_user_attr("duplicate_of", same.number)
            return tuple(same.values)
        ds = self.data(c.resolution)
        model = build_model(c, ds.input_shape[-1], ds.num_classes)
        # the hard constraints, before any training: the untrained int8 model as it would be deployed
        rep = np.random.default_rng(0).integers(0, 256, (8, *ds.input_shape), dtype=np.uint8)
        try:
            pre = self.check(convert(self.deployed_keras(c, model), "int8", rep, 8), f"trial {trial.number}",
                             untrained=True)
        except Rejected as e:
            trial.set_user_attr("rejected", f"before training: {e}")
            trial.set_user_attr("seconds", round(time.monotonic() - t0, 2))
            raise optuna.TrialPruned(f"rejected before training: {e}") from None
        trial.set_user_attr("latency_estimate_ms", pre["latency_estimate_ms"])

        from ..compress.models import train
        from ..compress.pipeline import FineTune

        cb = _pruning_callback(trial, keras, pre["latency_estimate_ms"], self.cfg.startup_trials)
        train(model, ds, epochs=self.cfg.epochs, batch_size=self.cfg.batch_size, class_weight=ds.imbalanced,
              callbacks=[cb])
        model = compressed(c, model, ds, FineTune(epochs=self.cfg.finetune_epochs, batch_size=self.cfg.batch_size))
        data = convert(model, "int8", ds.x_train)
        try:
            post = self.check(data, f"trial {trial.number}")
        except Rejected as e:
            trial.set_user_attr("rejected", f"after training: {e}")
            raise optuna.TrialPruned(f"rejected after training: {e}") from None
        m = metrics(ds.y_val, predict_tflite(data, ds.x_val), ds.num_classes)
        headline = m["balanced_accuracy"] if ds.imbalanced else m["accuracy"]
        latency, kind, instructions = post["latency_estimate_ms"], "estimated", None
        if self.cfg.emulate:
            from ..emulate.measure import measure

            e = measure(post["deployed"], post["analysis"], tflm=self.cfg.tflm, runs=1, name=f"trial{trial.number}")
            instructions = e.instructions
            latency, kind = self.cfg.board.ms(instructions), "emulated"
            post["arena_bytes"] = e.arena_used_bytes
        for k, v in post.items():
            if k not in ("analysis", "deployed"):
                trial.set_user_attr(k, v)
        trial.set_user_attr("val_accuracy", m["accuracy"])
        trial.set_user_attr("val_balanced_accuracy", m["balanced_accuracy"])
        trial.set_user_attr("metric", "balanced_accuracy" if ds.imbalanced else "accuracy")
        trial.set_user_attr("latency_kind", kind)
        trial.set_user_attr("instructions", instructions)
        trial.set_user_attr("tflite_b64", base64.b64encode(data).decode("ascii"))
        trial.set_user_attr("seconds", round(time.monotonic() - t0, 2))
        return headline, latency


def model_bytes(trial) -> bytes:
    """The int8 .tflite a completed trial made (kept in the storage, so any worker's machine can export it)."""
    return base64.b64decode(trial.user_attrs["tflite_b64"])


def candidate(trial) -> Candidate:
    return Candidate.from_json(trial.user_attrs["candidate"])


def save_front_model(trial, ds, out: Path) -> dict:
    """Write a front trial's int8 model with the sidecars `tinydeploy build` reads (labels, test samples with the host
    interpreter's predictions) and its test-split metrics."""
    from ..compress.datasets import prepare
    from ..compress.evaluate import metrics, predict_tflite, predict_tflm, quantize_inputs_int8
    from ..samples import Samples

    c = candidate(trial)
    data = model_bytes(trial)
    sized = prepare(ds, size=c.resolution) if c.resolution != ds.input_shape[0] else ds
    stem = f"trial{trial.number}_{c.family}_int8"
    (out / f"{stem}.tflite").write_bytes(data)
    (out / f"{stem}.labels.txt").write_text("\n".join(ds.class_names) + "\n")
    n = 16
    Samples(quantize_inputs_int8(data, sized.x_test[:n]), sized.y_test[:n], predict_tflm(data, sized.x_test[:n])).save(
        out / f"{stem}.samples.npz")
    (out / f"{stem}.candidate.json").write_text(c.to_json() + "\n")
    return {"file": f"{stem}.tflite", **metrics(sized.y_test, predict_tflite(data, sized.x_test), ds.num_classes)}
