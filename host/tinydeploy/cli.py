"""The ``tinydeploy`` command line. Each subcommand imports only what it needs: analyze, build,
ports, flash and bench never import TensorFlow."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .cliargs import bounded_int
from .errors import EXIT_BAD_INPUT, EXIT_INTERNAL, TinyDeployError


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line like every other error (exit 2)."""

    def error(self, message):
        print(f"error: {self.prog}: {message}. Run `{self.prog} --help` for the options.", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def _add_json(p):
    p.add_argument("--json", metavar="FILE", help="also write the result as JSON to FILE ('-' for stdout)")


def _add_board(p):
    p.add_argument("--board", default="nano33ble", help="board profile (default: nano33ble)")
    p.add_argument("--reserve-flash", type=bounded_int(0, 1 << 30), metavar="BYTES",
                   help="flash taken by the Arduino core (overrides the board profile)")
    p.add_argument("--reserve-ram", type=bounded_int(0, 1 << 30), metavar="BYTES",
                   help="RAM taken by the Arduino core (overrides the board profile)")


def _stage_clis():
    from .compress import cli as compress_cli
    from .device import cli as device_cli
    from .deploy import cli as deploy_cli
    from .emulate import cli as emulate_cli
    from .search import cli as search_cli
    from .study import cli as study_cli

    return [compress_cli, deploy_cli, device_cli, emulate_cli, study_cli, search_cli]


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tinydeploy", description="From a Keras image classifier to a measured "
                                "TFLite Micro firmware on a microcontroller: compress, analyze, build, flash, bench, study.")
    p.add_argument("--version", action="version", version=f"tinydeploy {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    a = sub.add_parser("analyze", help="ops, params, MACs, arena, flash and fit verdict of a .tflite model")
    a.add_argument("model", help="an int8 .tflite file")
    _add_board(a)
    a.add_argument("--allow-float", action="store_true", help="analyze a model that is not full-integer int8 (no arena measurement)")
    a.add_argument("--no-arena", action="store_true", help="skip the TFLM host interpreter run")
    from .analyze.requant import DEFAULT_KERNELS, KERNELS

    a.add_argument("--kernels", choices=KERNELS, default=DEFAULT_KERNELS,
                   help="the kernels `build --kernels` registers, whose arena the RAM verdict counts (default: "
                        f"{DEFAULT_KERNELS})")
    _add_json(a)

    # Each stage registers its own subcommands (their handlers import lazily).
    for module in _stage_clis():
        module.add_parsers(sub, _add_board, _add_json)
    return p


def cmd_analyze(args) -> int:
    from .analyze import analyze, require_deployable, require_fit
    from .boards import from_args as load_board
    from .console import write_json
    from .analyze.report import render
    from .plan import as_deployed
    from .repair import repair
    from .tflite_model import TFLiteModel

    model = TFLiteModel.from_file(args.model)
    board = load_board(args)
    repaired = repair(model)
    # the model as `build` deploys it (its offline memory plan) where it deploys; else as it is, repairs done
    target = as_deployed(repaired, board)
    result = analyze(target, board, measure_arena=not args.no_arena, kernels=args.kernels)
    render(result, repaired.repairs)
    write_json(args.json, {**result.to_dict(), "repairs": repaired.to_dict(), "original_model_bytes": len(model.data)})
    if result.support_issues or not (result.is_int8 or args.allow_float):
        require_deployable(result)
    require_fit(result)
    return 0


COMMANDS = {"analyze": cmd_analyze}


def main(argv: list[str] | None = None) -> int:
    import os

    from .signals import Interrupted, signals_as_exceptions

    with signals_as_exceptions():
        try:
            parser = build_parser()
            args = parser.parse_args(argv)
            if getattr(args, "json", None) == "-":
                from .console import humans_to_stderr

                humans_to_stderr()  # stdout carries the JSON document alone
            elif getattr(args, "json", None):
                from .fsutil import check_writable_file

                check_writable_file(args.json, "--json")  # before the work, not after it
            return int(args.func(args) if hasattr(args, "func") else COMMANDS[args.command](args))
        except TinyDeployError as e:
            from rich.text import Text

            from .console import err_console

            # the message as plain text: a model or file name with [brackets] is not markup
            err_console.print(Text.assemble(("error:", "bold red"), " ", str(e)), soft_wrap=True)
            return e.exit_code
        except Interrupted as e:  # SIGTERM, SIGHUP: children ended and temporaries removed on the way out
            print(f"interrupted by {e.name}", file=sys.stderr)
            return 128 + e.signum
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except Exception as e:  # a bug in tinydeploy, not the user's input: one line, exit 4
            if os.environ.get("TINYDEPLOY_DEBUG"):
                raise
            first = str(e).splitlines()[0] if str(e) else ""
            print(f"internal error: {type(e).__name__}: {first} (a bug in tinydeploy; run again with TINYDEPLOY_DEBUG=1 "
                  f"for the traceback and report it)", file=sys.stderr)
            return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
