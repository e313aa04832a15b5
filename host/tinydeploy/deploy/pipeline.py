"""`tinydeploy build` as steps over typed artifacts: Repaired -> Analysis -> Deployed (memory plan) -> Golden ->
ArenaPlan -> a project."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..analyze import Analysis, analyze, require_deployable, require_fit
from ..analyze.requant import DEFAULT_KERNELS
from ..boards import Board
from ..errors import ModelError, TinyDeployError
from ..fsutil import check_output_dir
from ..generate.golden import Golden, make_golden, samples_path_for
from ..generate.project import ArenaPlan, build_context, host_arena_plan, measured_arena_plan, render_project
from ..plan import Deployed, plan_memory
from ..repair import Repaired, repair
from ..tflite_model import TFLiteModel


@dataclass(frozen=True)
class BuildRequest:
    model_path: Path
    board: Board
    output: Path
    force: bool = False
    samples: Path | None = None  # None: MODEL.samples.npz beside the model if it exists, else random inputs
    labels: Path | None = None  # None: MODEL.labels.txt beside the model if it exists
    golden_count: int = 3
    arena: str = "host"  # "host" | "measured"
    tflm: str | None = None  # with arena="measured": the TFLM library folder
    kernels: str = DEFAULT_KERNELS  # analyze/requant.py's KERNELS
    memory_plan: str = "offline"  # plan.MEMORY_PLANS
    command: str = "tinydeploy build"  # recorded in the generated files


@dataclass(frozen=True)
class BuiltProject:
    path: Path
    repaired: Repaired
    deployed: Deployed
    analysis: Analysis  # of the model as deployed
    golden: Golden
    arena: ArenaPlan
    metadata: dict


def read_labels(path: Path | None, model_path: Path) -> list[str]:
    """--labels, else MODEL.labels.txt beside the model, else none."""
    if path is not None and not path.is_file():
        raise TinyDeployError(f"labels file {path} does not exist", "Check the path, or leave --labels out")
    p = path or model_path.with_name(model_path.stem + ".labels.txt")
    if not p.is_file():
        return []
    try:
        return [l.strip() for l in p.read_text().splitlines() if l.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise TinyDeployError(f"cannot read labels file {p} ({e})", "One class name per line, UTF-8") from None


def check_request(req: BuildRequest) -> tuple[TFLiteModel, list[str], Path]:
    """Every input and the output directory, before any work: (model, labels, samples path)."""
    model = TFLiteModel.from_file(req.model_path)
    labels = read_labels(req.labels, req.model_path)
    n_out = model.output_tensors[0].num_elements if len(model.outputs) == 1 else None
    if labels and n_out is not None and len(labels) != n_out:
        raise TinyDeployError(f"{len(labels)} labels for a model with {n_out} outputs",
                              "One class name per line, one line per class, in the order of the model's outputs")
    samples = req.samples or samples_path_for(req.model_path)
    if req.samples is not None and not samples.exists():
        raise ModelError(f"samples file {samples} does not exist", "Check the path, or leave --samples out")
    beside = [req.model_path, samples, req.labels or req.model_path.with_name(req.model_path.stem + ".labels.txt")]
    check_output_dir(req.output, req.force, inputs=beside)
    return model, labels, samples


def build_project(req: BuildRequest) -> BuiltProject:
    model, labels, samples = check_request(req)
    repaired = repair(model)
    require_deployable(analyze(repaired.model, req.board, measure_arena=False))
    dep = plan_memory(repaired, req.memory_plan, req.kernels)
    analysis = analyze(dep.model, req.board, kernels=req.kernels)  # the model as deployed: its arena with the plan
    require_fit(analysis)
    # The golden outputs come from the model as given; the firmware runs the deployed model (repaired, planned), so
    # the device checks the rewrite and the plan too.
    try:
        golden = make_golden(model, samples=samples, count=req.golden_count)
    except ModelError:
        if repaired.model is model:
            raise
        # the host interpreter cannot run the original either (it crashes on a DEPTHWISE_CONV_2D without bias)
        golden = make_golden(repaired.model, samples=samples, count=req.golden_count)
    name = req.model_path.stem
    plan = host_arena_plan(analysis, dep.model, req.kernels)
    if req.arena == "measured":
        from ..emulate.measure import measure

        m = measure(dep.model, analysis, tflm=req.tflm, runs=1, golden=golden, labels=labels, name=name,
                    command=req.command, kernels=req.kernels)
        plan = measured_arena_plan(analysis, dep.model, m.arena_used_bytes, m.target)
    ctx = build_context(dep.model, analysis, golden, labels, name=name, command=req.command, arena_plan=plan,
                        kernels=req.kernels)
    metadata = {
        "schema": "tinydeploy.build/1",
        "model": req.model_path.name, "model_sha256": ctx["model"]["sha256"], "board": req.board.id,
        "runtime": ctx["runtime"], "ops": [o["name"] for o in ctx["ops"]], "arena": ctx["arena"],
        "kernels": {"choice": req.kernels, "tinydeploy": [o["name"] for o in ctx["ops"] if o["kernel"]]},
        "golden": {"count": golden.count, "source": golden.source, "tolerance": golden.tolerance,
                   "labels": None if golden.labels is None else golden.labels.reshape(-1).tolist()},
        "repairs": repaired.to_dict(),
        "memory_plan": {"choice": req.memory_plan, **(dep.plan.to_dict() if dep.plan else {}),
                        **({"folded": dep.folded.to_dict()} if dep.folded else {})},
        "analysis": analysis.to_dict(),
    }
    render_project(ctx, req.output, force=req.force, metadata=metadata, model_data=dep.model.data)
    return BuiltProject(req.output, repaired, dep, analysis, golden, plan, metadata)
