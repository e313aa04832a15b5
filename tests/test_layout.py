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
    # the pipeline runs one way: generate renders what emulate runs, never the other way round
    assert "emulate" not in stages.get("generate", set()) and "generate" in stages["emulate"]


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
