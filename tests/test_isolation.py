"""proxyd must stay standalone: nothing under proxyd/ may import the control plane. And its layers
point one way: every import counts (top level, inside functions, under TYPE_CHECKING); a module may
import its own layer or a lower one (docs/architecture.md, "proxyd layers"); the three strategies
(relay, cache, split) share a layer but never import each other; no import cycle at all; no private
name (`_x`) of one module used in another."""

import ast
import pathlib

import pytest

FORBIDDEN = {"django", "appliance", "rest_framework", "celery", "channels", "channels_redis", "psycopg"}
PROXYD = pathlib.Path(__file__).resolve().parent.parent / "proxyd"


def imported_top_level_modules(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_proxyd_imports_no_control_plane_module():
    offenders = {
        str(path.relative_to(PROXYD.parent)): sorted(imported_top_level_modules(path) & FORBIDDEN)
        for path in PROXYD.rglob("*.py")
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}


def test_detector_sees_a_forbidden_import(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import os\nfrom django.db import models\nimport celery.app\n")
    assert imported_top_level_modules(sample) & FORBIDDEN == {"django", "celery"}


# --- layers, cycles, private names ------------------------------------------------------------
# Lowest first. A module belongs to the first entry whose prefix names it (package or module).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("proxyd", "proxyd.log", "proxyd.config", "proxyd.routing", "proxyd.rtsp", "proxyd.rtp",
              "proxyd.wm", "proxyd.net", "proxyd.control", "proxyd.metrics")),
    ("origin", ("proxyd.origin",)),
    ("serving", ("proxyd.serving",)),
    ("wmext", ("proxyd.wmext",)),
    ("strategies", ("proxyd.relay", "proxyd.cache", "proxyd.split")),
    ("player", ("proxyd.player",)),
    # proxyd.metrics: its counters sit below every layer; what reads the ProxyServer is app level
    ("app", ("proxyd.app", "proxyd.__main__", "proxyd.metrics.collect", "proxyd.metrics.http")),
]
SIBLINGS_APART = "strategies"  # packages of this layer never import one another


def module_name(path: pathlib.Path, root: pathlib.Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(tree: ast.AST, name: str, is_package: bool) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def import_graph(root: pathlib.Path) -> dict[str, set[str]]:
    """module -> the package modules it imports (names that are not modules are dropped)."""
    trees = {}
    for path in sorted(root.rglob("*.py")):
        trees[module_name(path, root)] = (ast.parse(path.read_text(), str(path)), path.name == "__init__.py")
    graph = {}
    for name, (tree, is_package) in trees.items():
        graph[name] = {m for m in imported_modules(tree, name, is_package) if m in trees and m != name}
    return graph


def layer_of(module: str) -> tuple[int, str]:
    best = (-1, "", "")
    for index, (layer, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best[2]):
                best = (index, layer, prefix)
    if best[0] < 0:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")
    return best[0], best[2]


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, imports in sorted(graph.items()):
        level, package = layer_of(module)
        for imported in sorted(imports):
            other_level, other_package = layer_of(imported)
            if other_level > level:
                found.append(f"{module} imports {imported} (layer {LAYERS[other_level][0]} is above "
                             f"{LAYERS[level][0]})")
            elif other_level == level and LAYERS[level][0] == SIBLINGS_APART and other_package != package:
                found.append(f"{module} imports {imported} (strategies never import each other)")
    return found


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def private_names_used_elsewhere(root: pathlib.Path) -> list[str]:
    """`from m import _x` and `obj._x` where `_x` is not defined in the using module."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        own = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                own.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                own.add(node.attr)
        where = path.relative_to(root.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                found += [f"{where}:{node.lineno} imports {a.name}" for a in node.names if is_private(a.name)]
            elif isinstance(node, ast.Attribute) and is_private(node.attr) and node.attr not in own:
                found.append(f"{where}:{node.lineno} uses {ast.unparse(node)}")
    return found


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_proxyd_layers_point_one_way():
    assert layer_violations(import_graph(PROXYD)) == []


def test_proxyd_has_no_import_cycle():
    assert import_cycles(import_graph(PROXYD)) == []


def test_no_private_name_crosses_a_module():
    assert private_names_used_elsewhere(PROXYD) == []


@pytest.fixture
def sample_package(tmp_path):
    def make(files: dict[str, str]) -> pathlib.Path:
        root = tmp_path / "proxyd"
        for name, text in {"__init__.py": "", **files}.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
            for parent in (root / name).parents:
                if parent == root:
                    break
                (parent / "__init__.py").touch()
        return root
    return make


def test_the_checks_catch_an_upward_a_sideways_and_a_cyclic_import(sample_package):
    root = sample_package({
        "rtsp/events.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from proxyd.player import connection\n",
        "player/connection.py": "from proxyd.rtsp import events\n",
        "cache/strategy.py": "def f():\n    from proxyd.split import hub\n",
        "split/hub.py": "",
        "wmext/gci.py": "from proxyd.serving.contracts import X\n",
        "serving/contracts.py": "X = 1\n",
    })
    graph = import_graph(root)
    assert layer_violations(graph) == [  # a package's __init__ runs too: it counts as imported
        "proxyd.cache.strategy imports proxyd.split (strategies never import each other)",
        "proxyd.cache.strategy imports proxyd.split.hub (strategies never import each other)",
        "proxyd.rtsp.events imports proxyd.player (layer player is above core)",
        "proxyd.rtsp.events imports proxyd.player.connection (layer player is above core)",
    ]
    assert import_cycles(graph) == [["proxyd.player.connection", "proxyd.rtsp.events"]]


def test_the_check_catches_a_private_name_used_in_another_module(sample_package):
    root = sample_package({
        "net/udp.py": "_sendmmsg = None\n",
        "net/burst.py": "from proxyd.net.udp import _sendmmsg\n",
        "player/connection.py": "def f(player):\n    return player._session\n",
        "rtsp/events.py": "class H:\n    def __init__(self):\n        self._items = ()\n"
                          "    def __eq__(self, other):\n        return self._items == other._items\n",
    })
    assert private_names_used_elsewhere(root) == [
        "proxyd/net/burst.py:1 imports _sendmmsg",
        "proxyd/player/connection.py:2 uses player._session",
    ]


def module_map_entries(doc: str) -> set[str]:
    """Paths the module map of docs/architecture.md names (its indented tree, folders ending in /)."""
    text = doc[doc.index("## proxyd module map"):]
    tree = text[text.index("```\nproxyd/") + 4:]
    tree = tree[:tree.index("```")]
    paths, stack = set(), []
    for line in tree.splitlines()[1:]:
        stripped = line.lstrip()
        if not stripped or line[:2] != "  " or line.startswith("     " * 4):
            continue  # continuation lines of a description
        depth = (len(line) - len(stripped)) // 2 - 1
        name = stripped.split()[0]
        if not (name.endswith("/") or name.endswith(".py")):
            continue
        stack = stack[:depth] + [name.rstrip("/")]
        paths.add("/".join(stack))
    return paths


def test_the_architecture_module_map_matches_the_tree():
    doc = (PROXYD.parent / "docs" / "architecture.md").read_text()
    named = module_map_entries(doc)
    modules = {str(p.relative_to(PROXYD)) for p in PROXYD.rglob("*.py") if p.name != "__init__.py"}
    folders = {str(p.relative_to(PROXYD)) for p in PROXYD.iterdir() if (p / "__init__.py").exists()}
    assert sorted(modules - named) == [], "modules missing from docs/architecture.md"
    assert sorted(folders - named) == [], "packages missing from docs/architecture.md"
    assert sorted(named - modules - folders) == [], "docs/architecture.md names what does not exist"
