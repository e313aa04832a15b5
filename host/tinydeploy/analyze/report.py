"""Render an Analysis for people (rich tables)."""

from __future__ import annotations

from rich.table import Table

from ..console import console, human, kib
from . import Analysis


def render(a: Analysis, repairs=()) -> None:
    """``repairs``: what tinydeploy.repair rewrote to make the analyzed model (shown with the op support)."""
    t = Table(title=f"{a.source} on {a.board.name}", title_justify="left")
    for col, just in (("#", "right"), ("op", "left"), ("output", "left"), ("params", "right"),
                      ("MACs", "right"), ("live act.", "right")):
        t.add_column(col, justify=just)
    for o in a.ops:
        t.add_row(str(o.index), o.op, "x".join(map(str, o.output_shape)), f"{o.params:,}", f"{o.macs:,}", kib(o.live_bytes))
    t.add_section()
    t.add_row("", "total", "", f"{a.total_params:,}", f"{a.total_macs:,}", "")
    console.print(t)

    if a.type_issues:
        console.print(f"[bold red]int8 check: {len(a.type_issues)} tensors are not int8[/]")
        for i in a.type_issues[:10]:
            console.print(f"  - {i.message}")
        if len(a.type_issues) > 10:
            console.print(f"  ... and {len(a.type_issues) - 10} more (see --json)")
    else:
        console.print("[green]int8 check: every tensor is int8 (biases and shape constants int32)[/]")

    sup = ", ".join(f"{n}{'*' if n in a.runtime.cmsis_nn else ''}" for n in a.op_names)
    if a.support_issues:
        console.print(f"[bold red]op support ({a.runtime.commit}):[/] {sup}")
        for i in a.support_issues:
            console.print(f"  - [red]{i.message}[/]")
    else:
        console.print(f"[green]op support:[/] all {len(a.op_names)} ops in TFLM {a.runtime.commit} ({sup}; * = CMSIS-NN kernel)")
    if repairs:
        console.print(f"[yellow]{len(repairs)} ops hit a known gap of TFLM {a.runtime.commit} and will be rewritten "
                      f"exactly by `tinydeploy build`[/] (the figures here are those of the rewritten model, "
                      f"{kib(a.model_bytes)}):")
        for r in repairs:
            console.print(f"  - {r.what}")

    if a.arena:
        ar = a.arena
        console.print(f"tensor arena: {kib(ar.device_bytes)} on the 32-bit device (host TFLM recorded "
                      f"{kib(ar.host_total_bytes)} on 64-bit: head {kib(ar.host_head_bytes)}, tail "
                      f"{kib(ar.host_tail_bytes)}); correction: {ar.method}")
        n = a.arena_need
        console.print(f"arena build allocates ({n.kernels} kernels): {kib(n.allocated_bytes)} = "
                      + (f"head {kib(n.head_bytes)} (the offline plan, exact) + tail {kib(n.tail_bytes)} (estimated)"
                         if n.planned else f"{kib(n.needed_bytes)} (estimated)")
                      + (f", {kib(n.flash_bytes)} of parameters and op data in flash instead" if n.flash_bytes else "")
                      + " + margin")
    else:
        console.print("tensor arena: not measured")
    mem = a.memory
    bound = mem["lower_bound_bytes"]
    head = a.arena.host_head_bytes if a.arena else None
    console.print(f"arena head: lower bound {kib(bound)} (the most activation bytes live at one op"
                  + (", the input kept to the end" if mem["input_kept"] else "") + "; kernels' scratch not included; "
                  f"with the CMSIS-NN kernels' scratch {kib(mem['lower_bound_with_scratch_bytes'])})"
                  + (f", head {kib(head)} = {head / max(bound, 1):.2f}x the bound" if head else "")
                  + ("; offline memory plan, no input copy" if mem["input_kept"] else ""))
    f = a.flash
    console.print(f"flash (estimate): {kib(f.total_bytes)} = model {kib(f.model_bytes)} + TFLM framework "
                  f"{kib(f.framework_bytes)} + {len(f.kernel_bytes)} kernels {kib(sum(f.kernel_bytes.values()))}")
    _verdict(a)


def _verdict(a: Analysis) -> None:
    v = a.fit
    b = a.board
    fl, ram = v.flash, v.ram
    console.print(f"board budget: flash {kib(b.app_flash_bytes)} for the application ({kib(b.flash_bytes)} - bootloader "
                  f"{kib(b.bootloader_flash_bytes)} - core reserve {kib(b.reserve_flash_bytes)}), RAM {kib(b.app_ram_bytes)} "
                  f"({kib(b.ram_bytes)} - core reserve {kib(b.reserve_ram_bytes)}; reserve is {b.reserve_kind})")
    peak = v.peak_op
    if peak:
        console.print(f"peak activation memory: op {peak.index} {peak.op} ({kib(peak.live_bytes)} live)")
    if v.largest_weights:
        console.print("largest weights: " + ", ".join(f"op {o.index} {o.op} {kib(o.weight_bytes)}"
                                                      for o in v.largest_weights))
    over = v.overruns()
    flag = lambda k: f" ([red]over by {kib(over[k])}[/])" if k in over else ""
    parts = [f"flash {kib(fl.need_bytes)} of {kib(fl.available_bytes)}" + flag("flash")]
    if ram.need_bytes is not None:
        parts.append(f"RAM {kib(ram.need_bytes)} (arena + margin + firmware {kib(v.firmware_bytes)}, "
                     f"{v.firmware_kind}) of {kib(ram.available_bytes)}" + flag("RAM"))
    if a.type_issues or a.support_issues:
        console.print("[bold red]verdict: cannot be deployed[/] - " + (a.type_issues or a.support_issues)[0].message)
    elif v.fits is True:
        console.print("[bold green]verdict: fits[/] - " + "; ".join(parts))
    elif v.fits is False:
        console.print("[bold red]verdict: does not fit[/] - " + "; ".join(parts))
    else:
        console.print("[yellow]verdict: unknown (arena not measured)[/] - " + "; ".join(parts))
    console.print(f"MACs {human(a.total_macs)}, params {human(a.total_params)}, model {kib(a.model_bytes)}")
