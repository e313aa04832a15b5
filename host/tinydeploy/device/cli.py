"""Device subcommands: ports, flash, bench. None imports TensorFlow."""

from __future__ import annotations

from pathlib import Path


def add_parsers(sub, add_board, add_json) -> None:
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


def add_bench_options(b) -> None:
    """The options of a benchmark run, shared by `bench` (a board) and `emulate`; bounds are the firmware's."""
    from ..cliargs import bounded_int

    b.add_argument("--runs", type=bounded_int(1, 100), default=20, help="timed inferences (default 20, 1 to 100)")
    b.add_argument("--warmup", type=bounded_int(0, 1000), default=2, help="warm-up inferences (default 2, at most 1000)")
    b.add_argument("--timeout", type=float, default=120.0, help="seconds for the whole report (default 120)")
    b.add_argument("--idle-timeout", type=float, default=10.0, help="seconds of silence that end the report (default 10)")
    b.add_argument("--hello-tries", type=bounded_int(1, 100), default=5,
                   help="td-hello attempts before giving up (default 5; a board may still be enumerating)")
    b.add_argument("--hello-wait", type=float, default=2.0, help="seconds to wait for each td-hello answer (default 2)")
    b.add_argument("--accuracy", metavar="SAMPLES.npz", help="also stream these test inputs (x, y) and report on-device accuracy")
    b.add_argument("--limit", type=bounded_int(1, 100000), default=200, help="at most this many --accuracy samples (default 200)")


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

    inputs = _inputs(args)  # a bad file is refused before the device is touched
    link = Link.open(port=args.port, url=args.url)
    with link:
        d = bench_link(link, args)
        if inputs is not None:
            d["accuracy"] = _accuracy(link, *inputs)
    return report(d, args)


def bench_link(link, args, extra: dict | None = None) -> dict:
    """The benchmark report over an open link, as a dict; on failure the records read so far are written to --json."""
    from ..console import write_json
    from .bench import DeviceErrorWithReport, run_bench

    try:
        report_ = run_bench(link, runs=args.runs, warmup=args.warmup, timeout=args.timeout, idle_timeout=args.idle_timeout,
                            hello_tries=args.hello_tries, hello_wait=args.hello_wait)
    except DeviceErrorWithReport as e:
        write_json(args.json, {**e.report.to_dict(), **(extra or {})})  # keep what was read
        raise
    return {**report_.to_dict(), **(extra or {})}


def report(d: dict, args) -> int:
    """Show a bench dict, write --json; exit 0 when every golden vector passed, else 1."""
    from ..console import console, write_json
    from .report import render

    render(d)
    if "accuracy" in d:
        a = d["accuracy"]
        line = f"on-device accuracy: {a['device']['accuracy']:.4f} on {a['device']['n']} samples" \
            if a["device"]["accuracy"] is not None else f"ran {a['device']['n']} inputs on the device"
        if a["host"]["accuracy"] is not None:
            line += f" (host TFLM: {a['host']['accuracy']:.4f})"
        if a["agreement"] is not None:
            line += f"; predictions agree on {a['agreement']:.4f}"
        if "outputs" in a:
            line += f"; outputs identical on {a['outputs']['identical']} of {a['device']['n']} (max |diff| {a['outputs']['max_abs_diff']})"
        console.print(line)
    write_json(args.json, d)
    golden = d.get("golden") or []
    return 0 if all(g["pass"] for g in golden) else 1


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
