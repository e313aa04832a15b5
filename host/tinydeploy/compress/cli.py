"""`tinydeploy train` and `tinydeploy compress` (these import TensorFlow)."""

from __future__ import annotations

from pathlib import Path

from ..cliargs import bounded_float, bounded_int
from .names import FAMILIES, RECIPES, VARIANTS

SAVE_SUFFIXES = (".keras", ".h5")  # what tf_keras's Model.save writes as one file


def _add_data(p):
    p.add_argument("--dataset", default="fashion-mnist",
                   help="fashion-mnist[:DIR], pneumonia[:PATH], ham10000[:DIR], a MedMNIST .npz, or a class-folder tree")
    p.add_argument("--size", type=bounded_int(8, 1024), help="resize images to SIZE x SIZE once, before training (8 to 1024)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="convert images to 1 or 3 channels")
    p.add_argument("--subset", type=bounded_int(10, 10**8), metavar="N",
                   help="use N training and N/5 test images (quick runs; at least 10)")
    p.add_argument("--seed", type=int, default=0)


def _add_model(p):
    p.add_argument("--model", default="custom_cnn",
                   help=f"{' | '.join(FAMILIES)}, or a .keras/.h5/SavedModel to start from")
    p.add_argument("--alpha", type=bounded_float(0.05, 4.0),
                   help="width multiplier (MobileNets: alpha; the others: width), 0.05 to 4")
    p.add_argument("--epochs", type=bounded_int(1, 10_000), default=3, help="training epochs (default 3)")
    p.add_argument("--recipe", choices=RECIPES, default="plain",
                   help="plain: constant-LR Adam; field: augmentation, cosine LR schedule, early stopping with the best "
                        "weights (default plain)")
    p.add_argument("--batch-size", type=bounded_int(1, 65_536), default=128, help="default 128")


def add_parsers(sub, add_board, add_json) -> None:
    t = sub.add_parser("train", help="train one of the study's model families on a dataset")
    _add_data(t)
    _add_model(t)
    t.add_argument("-o", "--output", required=True, help="where to save the Keras model (.keras or .h5)")
    t.add_argument("--force", action="store_true")
    add_json(t)
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("compress", help="prune and quantize a model; evaluate every variant")
    _add_data(c)
    _add_model(c)
    add_board(c)
    c.add_argument("-o", "--output", required=True, help="output directory")
    c.add_argument("--force", action="store_true", help="replace a non-empty output directory")
    c.add_argument("--name", help="file name stem (default: the model family or file stem)")
    c.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated: {','.join(VARIANTS)}")
    c.add_argument("--quantize", choices=("int8",), help="shorthand for --variants int8")
    c.add_argument("--prune", default="", help="comma-separated target sparsities, e.g. 0.5,0.75 (each adds a pruned int8 model)")
    c.add_argument("--prune-filters", default="", metavar="FRACTIONS",
                   help="comma-separated fractions of filters to remove, e.g. 0.5 (structured pruning: each adds a "
                        "smaller int8 model, rebuilt and fine-tuned)")
    c.add_argument("--finetune-epochs", type=bounded_int(1, 10_000), default=2,
                   help="epochs of pruning and QAT fine-tuning (default 2)")
    c.add_argument("--qat", action="store_true", help="also make an int8 model by quantization-aware training, "
                                                      "compared with post-training int8 after the same epochs")
    c.add_argument("--rep-samples", type=bounded_int(1, 100_000), default=200,
                   help="representative training samples for calibration (default 200)")
    c.add_argument("--no-tflm-eval", action="store_true", help="skip evaluating int8 models with the TFLM host interpreter")
    add_json(c)
    c.set_defaults(func=cmd_compress)


def _model_file(spec: str) -> Path | None:
    """The user's own model (.keras, .h5, or a SavedModel directory), or None for a family name."""
    p = Path(spec)
    return p if p.suffix in (".keras", ".h5") or p.is_dir() else None


def _dataset(args):
    from ..console import err_console
    from .datasets import load_dataset
    from .models import min_input_size

    family = None if _model_file(args.model) else args.model
    size = args.size
    if family and size is None and min_input_size(family) > 28 and args.dataset.split(":")[0] in ("fashion-mnist", "pneumonia", "ham10000"):
        size = 32
    ds = load_dataset(args.dataset, size=size, channels=args.channels, seed=args.seed)
    if args.subset:
        ds = ds.subset(args.subset, max(args.subset // 5, 50), seed=args.seed)
    err_console.print(f"dataset {ds.name}: {len(ds.y_train)} train, {len(ds.y_val)} val, {len(ds.y_test)} test, "
                      f"input {'x'.join(map(str, ds.input_shape))}")
    return ds


def _model(args, ds, before_training=None):
    """The user's model, or a family's trained; ``before_training(model)`` checks the model first (seconds, not
    minutes: a lever that cannot apply to it fails before training)."""
    from ..console import err_console
    from .models import build, load_keras_model, train
    from .tfenv import seed_everything

    seed_everything(args.seed)
    p = _model_file(args.model)
    if p is not None:
        m = load_keras_model(args.model)
        if before_training:
            before_training(m)
        return m, p.stem
    kw = {}
    if args.alpha is not None:
        if args.model == "vgg16":
            from ..errors import TinyDeployError

            raise TinyDeployError("vgg16 is the plain VGG16 and takes no --alpha", "Use vgg_style --alpha W for a narrower VGG")
        kw["alpha" if args.model.startswith("mobilenet") else "width"] = args.alpha
    m = build(args.model, ds.input_shape, ds.num_classes, **kw)
    if before_training:
        before_training(m)
    err_console.print(f"training {args.model} ({m.count_params():,} parameters) for {args.epochs} epochs ...")
    train(m, ds, epochs=args.epochs, batch_size=args.batch_size, class_weight=ds.imbalanced, recipe=args.recipe)
    return m, args.model


def cmd_train(args) -> int:
    from ..console import console, write_json
    from ..fsutil import check_output_file
    from .datasets import normalize

    from .tfenv import require_training_extra

    require_training_extra("train")
    out = check_output_file(args.output, args.force)
    if out.suffix not in SAVE_SUFFIXES:
        from ..errors import TinyDeployError

        raise TinyDeployError(f"-o {out}: a Keras model is saved as .keras (or .h5)", f"Name it {out.stem}.keras")
    _check_model_input(args)
    ds = _dataset(args)
    m, _ = _model(args, ds)
    loss, acc = m.evaluate(normalize(ds.x_test), ds.y_test, verbose=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    try:
        m.save(tmp)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    console.print(f"[green]saved[/] {out}: test accuracy {acc:.4f}")
    write_json(args.json, {"model": str(out), "test_accuracy": acc, "dataset": ds.summary()})
    return 0


def _fractions(flag: str, text: str) -> tuple[float, ...]:
    from ..errors import TinyDeployError

    try:
        out = tuple(float(s) for s in text.split(",") if s)
    except ValueError:
        raise TinyDeployError(f"{flag} takes fractions like 0.5,0.75, not {text!r}") from None
    if any(not 0 < s < 1 for s in out):
        raise TinyDeployError(f"{flag} fractions must be between 0 and 1 (exclusive)")
    if len(set(out)) != len(out):
        raise TinyDeployError(f"{flag} names a fraction twice ({text})", "Name each fraction once")
    return out


def _check_model_input(args) -> None:
    """A model file named with --model exists (a name that is neither a family nor a file is a typo)."""
    from ..errors import TinyDeployError

    if args.model in FAMILIES:
        return
    p = Path(args.model)
    if not p.exists():
        raise TinyDeployError(f"--model {args.model}: no such model family or file",
                              f"Families: {', '.join(FAMILIES)}; or a .keras/.h5 file or SavedModel directory")


def cmd_compress(args) -> int:
    import time

    from ..boards import from_args as load_board
    from ..console import write_json
    from ..fsutil import check_output_dir
    from .pipeline import CompressOptions, FineTune, compress, render

    from .tfenv import require_training_extra

    started = time.monotonic()
    require_training_extra("compress")
    _check_model_input(args)
    inputs = [args.model, args.dataset.partition(":")[2] or None]
    check_output_dir(args.output, args.force, inputs=inputs)  # before minutes of training, not after
    variants = ("int8",) if args.quantize else tuple(v for v in args.variants.split(",") if v)
    from ..errors import TinyDeployError

    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise TinyDeployError(f"unknown variant {bad[0]!r}", f"Choose from {', '.join(VARIANTS)}")
    prune = _fractions("--prune", args.prune)
    prune_filters = _fractions("--prune-filters", args.prune_filters)
    ds = _dataset(args)

    def check(m):
        from .filters import prune_filters as rebuild_smaller

        for f in prune_filters:  # a model structured pruning cannot handle is refused before training
            rebuild_smaller(m, f)

    model, stem = _model(args, ds, before_training=check if prune_filters else None)
    opts = CompressOptions(variants=variants, prune=prune, prune_filters=prune_filters, qat=args.qat,
                           finetune=FineTune(epochs=args.finetune_epochs, batch_size=args.batch_size),
                           rep_samples=args.rep_samples, tflm_eval=not args.no_tflm_eval,
                           board=load_board(args))
    report = compress(model, ds, args.name or stem, Path(args.output), opts, force=args.force, started=started)
    render(report)
    write_json(args.json, report)
    return 0
