"""The pipeline's shape: stages import each other one way only (lazy imports inside functions included)."""

from __future__ import annotations

import ast

from conftest import ROOT

PACKAGE = ROOT / "host" / "tinydeploy"


def _import_graph() -> dict[str, set[str]]:
    mods = {}
    for f in PACKAGE.rglob("*.py"):
        rel = f.relative_to(PACKAGE.parent).with_suffix("")
        mods[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = f
    graph = {m: set() for m in mods}
    for m, f in mods.items():
        pkg = m if f.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = pkg
                for _ in range(node.level - 1):
                    base = base.rsplit(".", 1)[0]
                target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
                for alias in node.names:
                    t = f"{target}.{alias.name}" if f"{target}.{alias.name}" in mods else target
                    if t in mods and t != m:
                        graph[m].add(t)
            elif isinstance(node, ast.Import):
                graph[m].update(a.name for a in node.names if a.name in mods and a.name != m)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                return stack[stack.index(v):] + [v]
            if v not in state and (c := visit(v)):
                return c
        state[u] = 2
        stack.pop()
        return None

    for u in sorted(graph):
        if u not in state and (c := visit(u)):
            return c
    return None


def test_no_import_cycles_between_modules_or_stages():
    graph = _import_graph()
    assert _cycle(graph) is None
    stage = lambda m: m.split(".")[1] if m.count(".") else m  # tinydeploy.<stage or module>
    stages: dict[str, set[str]] = {}
    for a, bs in graph.items():
        for b in bs:
            if stage(a) != stage(b) and stage(a) != "cli" and stage(a) != "__main__":  # the root CLI wires every stage
                stages.setdefault(stage(a), set()).add(stage(b))
    assert _cycle(stages) is None, stages
    # the pipeline runs one way: generate renders what emulate runs, never the other way round; deploy is the
    # one step that puts them together (build --arena measured)
    assert "emulate" not in stages.get("generate", set()) and "generate" in stages["emulate"]
    assert {"generate", "emulate", "repair", "analyze"} <= stages["deploy"]


def test_no_stage_uses_another_stages_command_line_module():
    """A stage's cli.py is its command line: only the root CLI imports it; what two commands share is a library."""
    graph = _import_graph()
    for a, bs in graph.items():
        for b in bs:
            if b.endswith(".cli") and b != "tinydeploy.cli" and a != "tinydeploy.cli":
                assert a.rsplit(".", 1)[0] == b.rsplit(".", 1)[0], f"{a} imports {b}"


def test_one_definition_of_each_shared_fact():
    """instructions -> ms, the Pareto front, the output-directory guard and the cache root are defined once."""
    import re

    defs = {"cycles_to_ms": r"def cycles_to_ms\(", "pareto": r"def (pareto|_?front|pareto_front)\(",
            "output guard": r"def (_?check_output(_dir)?|_foreign)\(", "cache root": r"def cache_root\(",
            "png": r"\.savefig\(", "emulator check": r"def (why_not_emulated|_emulator_missing|_emulation)\("}
    text = {f: f.read_text() for f in PACKAGE.rglob("*.py")}
    counts = {k: sum(len(re.findall(rx, t)) for t in text.values()) for k, rx in defs.items()}
    # the search's and the study's `_foreign` only say which files are theirs; the guard itself is one
    assert counts["cycles_to_ms"] == 1 and counts["cache root"] == 1 and counts["png"] == 1, counts
    assert sum(len(re.findall(r"def check_output_dir\(", t)) for t in text.values()) == 1
    assert sum(len(re.findall(r"def _check_output\(", t)) for t in text.values()) == 0
    assert sum(len(re.findall(r"def pareto\(", t)) for t in text.values()) == 1
    assert sum(len(re.findall(r" / 1e3|\* 1e3|/ \(.*cpu_mhz", t)) for f, t in text.items()
               if f.name != "bench.py" and f.parent.name != "boards") == 0  # no second conversion of counts to ms
    assert counts["emulator check"] == 2  # why_not_emulated, and the search's --no-emulate wrapper around it


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
