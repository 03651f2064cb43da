"""The house plan of ARCHITECTURE.md holds: no import circle in gpuaug/, no upward import
between its layers, and pyproject.toml ships every package."""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Top to bottom, as in ARCHITECTURE.md; a module belongs to the layer of its longest prefix.
LAYERS = [
    ("tools", ["gpuaug", "gpuaug.__main__", "gpuaug.cli", "gpuaug.doctor", "gpuaug.preview", "gpuaug.scan",
               "gpuaug.corrupt"]),
    ("trainer", ["gpuaug.train"]),
    ("frontends", ["gpuaug.loader", "gpuaug.dali", "gpuaug.torch", "gpuaug.ffcv"]),
    ("core", ["gpuaug.methods", "gpuaug.mixing", "gpuaug.fractals", "gpuaug.ops", "gpuaug.gallery"]),
    ("executors", ["gpuaug.executors"]),
    ("base", ["gpuaug.catalogue", "gpuaug.data", "gpuaug.reference", "gpuaug._arrays", "gpuaug._progress",
              "gpuaug.normalization", "gpuaug.tolerance"]),
]


def _modules(root: pathlib.Path) -> dict[str, pathlib.Path]:
    mods = {}
    for path in (root / "gpuaug").rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return mods


def import_graph(root: pathlib.Path = ROOT) -> dict[str, set[str]]:
    """module -> the gpuaug modules it imports anywhere in its body (function-level too)."""
    mods, graph = _modules(root), {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != name:
                    graph[name].add(t)
    return graph


def layer_of(module: str) -> int:
    best = max(((len(p), i) for i, (_, prefixes) in enumerate(LAYERS) for p in prefixes
                if module == p or (module.startswith(p + ".") and p != "gpuaug")), default=None)
    assert best is not None, f"{module} is in no layer: place it in ARCHITECTURE.md and LAYERS"
    return best[1]


def find_problems(root: pathlib.Path = ROOT) -> list[str]:
    graph = import_graph(root)
    problems = [f"upward import: {a} ({LAYERS[layer_of(a)][0]}) -> {b} ({LAYERS[layer_of(b)][0]})"
                for a in sorted(graph) for b in sorted(graph[a]) if layer_of(a) > layer_of(b)]
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m, path):
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                problems.append("import circle: " + " -> ".join(path[path.index(n):] + [n]))
            elif n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return problems


def test_no_import_circle_and_no_upward_import():
    assert find_problems() == []


def test_pyproject_lists_every_package():
    text = (ROOT / "pyproject.toml").read_text()
    listed = set(re.findall(r'"([\w.]+)"', re.search(r"^packages = \[(.*)\]$", text, re.M).group(1)))
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "gpuaug").rglob("__init__.py")}
    assert listed == found | {"gpuaug.kernels"}
