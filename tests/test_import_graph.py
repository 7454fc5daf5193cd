"""The import graph of ``mlpot/``: no cycle, and no module imports from a layer above its own.

Edges are read from the source with :mod:`ast`, not by importing. Every ``import mlpot.X`` and
``from mlpot.X import Y`` is an edge, at module level *and inside functions*: a function-level
import is how a cycle is usually hidden (it postpones the failure from import time to call time,
but the two modules still depend on each other). Only imports under ``if TYPE_CHECKING:`` are
left out, since they never run. ``from mlpot.pkg import name`` is an edge to the submodule
``mlpot.pkg.name`` when that is a module, else to ``mlpot.pkg``; the parent packages that Python
initialises on the way are not counted (every submodule would otherwise depend on its own
package's ``__init__``).

The layers, lowest first (a module may import its own layer and the ones below):

0. ``units``, ``files``, ``progress``, ``interrupts`` (shared utilities) and ``neighbors``, which
   needs only torch: ``data`` builds edges with it (``atomic_data_from_atoms(cutoff=...)``), so
   it sits below ``data`` although the data flow passes data to it;
1. ``data`` — the AtomicData contract, readers;
2. ``descriptors`` and ``nn`` (the e3nn building blocks of the equivariant model);
3. ``models`` — the potentials;
4. ``dynamics`` and ``training``;
5. ``analysis``;
6. the side packages ``hamiltonian``, ``quantum``, ``networks``, ``nonadiabatic`` and
   ``integrations``, which may import the core (layers 0–5), never the reverse;
7. the top: ``mlpot/__init__.py``, ``mlpot/cli.py``, every ``*/cli.py``, and the deprecated
   alias module ``mlpot/calculator.py`` may import anything.

Within a package any import is allowed (the cycle check still applies).
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1] / "mlpot"

#: Layer of each top-level package or module of mlpot (see the module docstring).
LAYERS = {
    "units": 0,
    "files": 0,
    "progress": 0,
    "interrupts": 0,
    "neighbors": 0,
    "data": 1,
    "descriptors": 2,
    "nn": 2,
    "models": 3,
    "dynamics": 4,
    "training": 4,
    "analysis": 5,
    "hamiltonian": 6,
    "quantum": 6,
    "networks": 6,
    "nonadiabatic": 6,
    "integrations": 6,
    "calculator": 7,
    "cli": 7,
}
TOP = 7


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The mlpot modules that ``name`` imports, at any depth of its code, except under TYPE_CHECKING."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "mlpot":
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                package = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] == "mlpot":
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    found.add(submodule if submodule in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    found.discard(name)
    return {m for m in found if m in modules}


def import_graph() -> nx.DiGraph:
    modules = all_modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        graph.add_edges_from((name, target) for target in imports_of(name, path, modules))
    return graph


def layer(module: str) -> int:
    parts = module.split(".")
    if module == "mlpot" or parts[-1] == "cli":
        return TOP
    return LAYERS[parts[1]]


def test_every_package_has_a_layer():
    missing = {m.split(".")[1] for m in all_modules() if m != "mlpot"} - set(LAYERS)
    assert not missing, f"give these packages a layer in LAYERS: {sorted(missing)}"


def test_the_graph_sees_function_level_imports_and_skips_type_checking(tmp_path):
    """The parser itself: a function-level import is an edge, a TYPE_CHECKING one is not."""
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from mlpot.models import Potential\n"
        "def f():\n    from mlpot.data import keys\n    import mlpot.neighbors\n"
    )
    modules = all_modules()
    assert imports_of("mlpot.probe", source, modules) == {"mlpot.data.keys", "mlpot.neighbors"}


def test_no_import_cycle():
    cycles = sorted(sorted(c) for c in nx.simple_cycles(import_graph()))
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


def test_no_module_imports_from_a_layer_above_its_own():
    graph = import_graph()
    upward = sorted(
        f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
        for a, b in graph.edges
        if a.split(".")[:2] != b.split(".")[:2] and layer(b) > layer(a)
    )
    assert not upward, "imports against the layering:\n" + "\n".join(upward)
