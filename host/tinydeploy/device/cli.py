"""Device subcommands: ports, flash, bench. None imports TensorFlow."""

from __future__ import annotations

from pathlib import Path


def add_parsers(sub, add_board, add_json) -> None:
    from ..cliargs import add_bench_options

    p = sub.add_parser("ports", help="list serial ports and recognise connected boards")
    add_json(p)
    p.set_defaults(func=cmd_ports)

    f = sub.add_parser("flash", help="upload a generated project with PlatformIO")
    f.add_argument("project", help="the directory written by `tinydeploy build`")
    f.add_argument("--port", help="serial port (default: the one connected board)")
    f.add_argument("--board", default="nano33ble")
    add_json(f)
    f.set_defaults(func=cmd_flash)

    b = sub.add_parser("bench", help="read the firmware's on-device benchmark report over serial")
    g = b.add_mutually_exclusive_group()
    g.add_argument("--port", help="serial port (default: the one connected board)")
    g.add_argument("--url", help="a pyserial URL: socket://HOST:PORT, rfc2217://HOST:PORT, loop://")
    add_bench_options(b)
    add_json(b)
    b.set_defaults(func=cmd_bench)


def cmd_ports(args) -> int:
    from rich.table import Table

    from ..console import write_json
    from ..console import console
    from .ports import list_ports

    ports = list_ports()
    t = Table(title="serial ports", title_justify="left")
    for c in ("port", "description", "VID:PID", "board"):
        t.add_column(c)
    for p in ports:
        vp = f"{p.vid:04x}:{p.pid:04x}" if p.vid is not None else "-"
        t.add_row(p.device, p.description, vp, f"{p.board} ({p.mode})" if p.board else "")
    console.print(t if ports else "no serial ports found")
    write_json(args.json, [p.to_dict() for p in ports])
    return 0


def cmd_flash(args) -> int:
    from ..console import write_json
    from ..console import console
    from .flash import flash

    r = flash(Path(args.project), args.port, args.board)
    console.print(f"[green]flashed[/] {r['project']} via {r['port']}; bench it with: tinydeploy bench --port "
                  f"{(r['ports_after'][0]['device'] if r['ports_after'] else r['port'])}")
    write_json(args.json, r)
    return 0


def cmd_bench(args) -> int:
    from .link import Link
    from .session import BenchOptions, bench_link, finish

    inputs = _inputs(args)  # a bad file is refused before the device is touched
    link = Link.open(port=args.port, url=args.url)
    with link:
        d = bench_link(link, BenchOptions.from_args(args), json_path=args.json)
        if inputs is not None:
            d["accuracy"] = _accuracy(link, *inputs)
    return finish(d, args.json)


def _inputs(args):
    """--accuracy's int8 inputs and the samples they came from (None without --accuracy)."""
    from ..samples import Samples

    if not args.accuracy:
        return None
    samples = Samples.load(args.accuracy, args.limit)
    return samples.int8_inputs(), samples  # no model here: the samples must be int8 inputs (compress writes them so)


def _accuracy(link, x, samples) -> dict:
    from ..console import progress
    from .runner import accuracy_report

    link.drain(0.2)
    with progress() as prog:
        task = prog.add_task("on-device inference", total=len(x))
        return accuracy_report(link, x, samples.y, host_pred=samples.host_pred,
                               progress=lambda i: prog.update(task, completed=i))
