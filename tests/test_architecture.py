"""The package's imports run one way and close no cycle, so its layers stay what docs/ARCHITECTURE.md says they are.

Every `import` in `src/rewardlab` is read from the source (function-level and type-checking imports too, since they
are dependencies all the same), and two rules are checked:

1. Layers: a package or top-level module may import only from its own package or from a lower layer, never from
   a layer above nor from a neighbour in its own layer. The root `rewardlab/__init__.py` (the lazy public API) and
   `__main__.py` stand above everything, and nothing imports them.
2. No cycle between modules, counting the package `__init__` that importing a submodule runs first.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import rewardlab

PACKAGE = Path(rewardlab.__file__).parent

# Top to bottom. A new package or top-level module must be placed here: the test fails until it is.
LAYERS = [
    {"cli"},
    {"serve", "eval"},
    {"score", "train"},
    {"layout", "metrics"},
    {"model", "data", "losses"},
    {"config", "files", "cpu_threads"},
    {"choices", "errors", "_compat", "_version"},
]
FACE = {"__init__", "__main__"}


def module_name(path: Path) -> str:
    parts = ["rewardlab", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import of rewardlab in `path`."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names if alias.name.split(".")[0] == "rewardlab"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] == "rewardlab":
                found.append((target, [alias.name for alias in node.names], node.lineno))
    return found


def unit(module: str) -> str:
    """The layer unit of a module: its package (or top-level module) directly under rewardlab."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of(name: str) -> int:
    for depth, members in enumerate(LAYERS):
        if name in members:
            return depth
    raise AssertionError(f"rewardlab.{name} is in no layer: place it in LAYERS (and in docs/ARCHITECTURE.md)")


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_import_runs_down_the_layers():
    problems = []
    for module, path in all_modules().items():
        source = unit(module)
        if source in FACE:
            continue
        for target, _, line in imports_of(path):
            where = f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}"
            destination = unit(target)
            if destination == "__init__":
                problems.append(f"{where}: the root `rewardlab` (the public API) imports everything; import below it")
                continue
            if destination == source:
                continue
            if layer_of(destination) <= layer_of(source):
                problems.append(f"{where}: {source} (layer {layer_of(source)}) may not import {destination}")
    assert not problems, "\n".join(problems)


def test_no_import_cycle():
    modules = all_modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for target, names, _ in imports_of(path):
            # `from package import name` may take a submodule: then it depends on that submodule.
            targets = [f"{target}.{n}" if f"{target}.{n}" in modules else target for n in names] or [target]
            for t in targets:
                # Importing a.b.c runs a/__init__ and a/b/__init__ first, unless the importer is inside them.
                parts = t.split(".")
                for k in range(2, len(parts) + 1):
                    ancestor = ".".join(parts[:k])
                    if ancestor in modules and not module.startswith(ancestor + ".") and ancestor != module:
                        graph[module].add(ancestor)
    cycles = [scc for scc in strongly_connected(graph) if len(scc) > 1]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(sorted(c)) for c in cycles)


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components of a directed graph."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            components.append(component)

    for node in list(graph):
        if node not in index:
            visit(node)
    return components


def test_the_checks_catch_an_upward_import_and_a_cycle():
    # The rules themselves, on a made-up graph: without this, a walker that found no imports would pass.
    assert [c for c in strongly_connected({"a": {"b"}, "b": {"a"}, "c": {"a"}}) if len(c) > 1] == [{"a", "b"}]
    assert layer_of("cli") < layer_of("score") < layer_of("layout") < layer_of("data") < layer_of("errors")
    trainer = PACKAGE / "train" / "trainer.py"
    assert ("rewardlab.layout.choose", ["choose_layout"]) in [(t, n) for t, n, _ in imports_of(trainer)]
