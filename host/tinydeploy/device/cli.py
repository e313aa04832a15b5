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
    b.add_argument("--runs", type=int, default=20, help="timed inferences (default 20, at most 100)")
    b.add_argument("--warmup", type=int, default=2, help="warm-up inferences (default 2)")
    b.add_argument("--timeout", type=float, default=120.0, help="seconds for the whole report (default 120)")
    b.add_argument("--idle-timeout", type=float, default=10.0, help="seconds of silence that end the report (default 10)")
    b.add_argument("--accuracy", metavar="SAMPLES.npz", help="also stream these test inputs (x, y) and report on-device accuracy")
    b.add_argument("--limit", type=int, default=200, help="at most this many --accuracy samples (default 200)")
    add_json(b)
    b.set_defaults(func=cmd_bench)


def cmd_ports(args) -> int:
    from rich.table import Table

    from ..cli import write_json
    from ..console import console
    from .ports import list_ports

    ports = list_ports()
    if args.json != "-":
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
    from ..cli import write_json
    from ..console import console
    from .flash import flash

    r = flash(Path(args.project), args.port, args.board)
    console.print(f"[green]flashed[/] {r['project']} via {r['port']}; bench it with: tinydeploy bench --port "
                  f"{(r['ports_after'][0]['device'] if r['ports_after'] else r['port'])}")
    write_json(args.json, r)
    return 0


def cmd_bench(args) -> int:
    from ..cli import write_json
    from ..console import console
    from .bench import DeviceErrorWithReport, run_bench
    from .link import Link
    from .report import render

    link = Link.open(port=args.port, url=args.url)
    with link:
        try:
            report = run_bench(link, runs=args.runs, warmup=args.warmup, timeout=args.timeout, idle_timeout=args.idle_timeout)
        except DeviceErrorWithReport as e:
            write_json(args.json, e.report.to_dict())  # keep what was read
            raise
        d = report.to_dict()
        if args.accuracy:
            d["accuracy"] = _accuracy(link, args)
    if args.json != "-":
        render(d)
        if "accuracy" in d:
            a = d["accuracy"]
            line = f"on-device accuracy: {a['device']['accuracy']:.4f} on {a['device']['n']} samples"
            if a["host"]["accuracy"] is not None:
                line += f" (host TFLM: {a['host']['accuracy']:.4f}; predictions agree on {a['agreement']:.4f})"
            console.print(line)
    write_json(args.json, d)
    golden = d.get("golden") or []
    return 0 if all(g["pass"] for g in golden) else 1


def _accuracy(link, args) -> dict:
    import numpy as np

    from ..console import progress
    from ..errors import DatasetError
    from .runner import device_accuracy

    try:
        with np.load(args.accuracy) as z:
            x, y = z["x"][: args.limit], z["y"][: args.limit]
            host_pred = z["host_pred"][: args.limit] if "host_pred" in z else None
    except (OSError, KeyError, ValueError) as e:
        raise DatasetError(f"cannot read {args.accuracy} ({e})", "Pass an .npz with int8 inputs x and labels y") from None
    link.drain(0.2)
    with progress() as prog:
        task = prog.add_task("on-device inference", total=len(x))
        dev = device_accuracy(link, x, y, progress=lambda i: prog.update(task, completed=i))
    y = np.asarray(y).reshape(-1)
    host = {"n": len(y), "accuracy": float((np.asarray(host_pred) == y).mean()) if host_pred is not None else None}
    agree = float((np.asarray(dev["predictions"]) == np.asarray(host_pred)).mean()) if host_pred is not None else None
    return {"device": dev, "host": host, "agreement": agree}
