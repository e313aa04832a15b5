"""Render a bench report for people."""

from __future__ import annotations

from rich.table import Table

from ..console import console, kib


def render(d: dict) -> None:
    dev = d.get("device") or {}
    emulated = d.get("counter") == "instructions"
    unit = "instructions" if emulated else "cycles"
    where = f"emulated {d.get('target')}" if emulated else d["port"]
    console.print(f"device: {dev.get('board', '?')} running {dev.get('model', '?')} (firmware {dev.get('fw', '?')}, "
                  f"protocol {dev.get('proto', '?')}) on {where}")
    if emulated:
        console.print("[yellow]emulated:[/] counts are instructions executed on QEMU's Cortex-M4, not board cycles; "
                      f"ms figures are an {d['ms_kind']}")
    lat = d.get("latency")
    if lat:
        t = Table(title=f"latency over {lat['runs']} runs (after {lat['warmup']} warm-up)", title_justify="left")
        for c in ("", "median", "p90", "min", "max"):
            t.add_column(c, justify="right")
        t.add_row(unit, *(f"{lat['cycles'][k]:,}" for k in ("median", "p90", "min", "max")))
        if lat["ms"]:
            t.add_row("ms (estimate)" if emulated else "ms", *(f"{lat['ms'][k]:.3f}" for k in ("median", "p90", "min", "max")))
        console.print(t)
    ar = d.get("arena")
    if ar:
        console.print(f"arena: used {kib(ar.get('used'))} of {kib(ar.get('allocated'))} allocated "
                      f"(planned for: {kib(ar.get('needed'))})")
    if d.get("ops"):
        total = sum(o["cycles"] for o in d["ops"]) or 1
        t = Table(title="per-op time (mean of timed runs)", title_justify="left")
        for c, j in (("#", "right"), ("op", "left"), (unit, "right"), ("ms (estimate)" if emulated else "ms", "right"),
                     ("share", "right")):
            t.add_column(c, justify=j)
        for o in d["ops"]:
            t.add_row(str(o["index"]), o["tag"], f"{o['cycles']:,}", "-" if o["ms"] is None else f"{o['ms']:.3f}",
                      f"{100 * o['cycles'] / total:.1f}%")
        console.print(t)
    g = d.get("golden") or []
    if g:
        ok = sum(x["pass"] for x in g)
        style = "green" if ok == len(g) else "bold red"
        console.print(f"[{style}]golden vectors: {ok}/{len(g)} match the host's TFLM outputs[/] "
                      f"(max |diff| {max(x['max_diff'] for x in g)}, tolerance {g[0]['tolerance']})")
    if d.get("rejected_lines"):
        console.print(f"[yellow]{len(d['rejected_lines'])} lines rejected (bad checksum or garbage)[/]")


def render_accuracy(a: dict) -> None:
    line = f"on-device accuracy: {a['device']['accuracy']:.4f} on {a['device']['n']} samples" \
        if a["device"]["accuracy"] is not None else f"ran {a['device']['n']} inputs on the device"
    if a["host"]["accuracy"] is not None:
        line += f" (host TFLM: {a['host']['accuracy']:.4f})"
    if a["agreement"] is not None:
        line += f"; predictions agree on {a['agreement']:.4f}"
    if "outputs" in a:
        line += f"; outputs identical on {a['outputs']['identical']} of {a['device']['n']} (max |diff| {a['outputs']['max_abs_diff']})"
    console.print(line)
