"""No module of ``connector/`` or ``adapters/`` imports itself through others.

The import graph is grimp's, built from the source (its circles found by scipy's strongly
connected components): every ``import`` and ``from ... import``
statement, including those under ``if TYPE_CHECKING:`` (a circle a type checker needs is
still two modules that cannot be understood, or split, apart) and those inside functions.
``from package import submodule`` is an import of the submodule, as Python resolves it, so a
package's ``__init__`` that imports a submodule importing its siblings is no circle.

Run as a script (``python tests/test_imports.py``) to print every circle with its imports.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp
import pytest
from scipy.sparse import csr_array
from scipy.sparse.csgraph import connected_components

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("connector", "adapters")


def import_graph(*packages: str) -> grimp.ImportGraph:
    """The graph of imports among the modules of ``packages`` (as found on ``sys.path``)."""
    return grimp.build_graph(*packages, exclude_type_checking_imports=False, cache_dir=None)


def circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every set of modules that import each other (strongly connected components of more
    than one module, or one importing itself), each sorted, in order of their first module."""
    modules = sorted(graph.modules)
    index = {module: i for i, module in enumerate(modules)}
    edges = [(index[a], index[b]) for a in modules for b in _imported(graph, a)]
    importers, imported = zip(*edges, strict=True) if edges else ((), ())
    matrix = csr_array(([1] * len(edges), (importers, imported)), shape=(len(modules),) * 2)
    _, labels = connected_components(matrix, directed=True, connection="strong")
    components: dict[int, list[str]] = {}
    for module, label in zip(modules, labels, strict=True):
        components.setdefault(int(label), []).append(module)
    return sorted(
        members
        for members in components.values()
        if len(members) > 1 or members[0] in _imported(graph, members[0])
    )


def _imported(graph: grimp.ImportGraph, module: str) -> list[str]:
    return sorted(graph.find_modules_directly_imported_by(module))


def describe(graph: grimp.ImportGraph, circle: list[str]) -> str:
    """One circle and the import lines that close it, for a failure message."""
    members = set(circle)
    lines = [" <-> ".join(circle)]
    for importer in circle:
        for imported in _imported(graph, importer):
            if imported in members:
                for detail in graph.get_import_details(importer=importer, imported=imported):
                    where = f"{importer}:{detail['line_number']}"
                    lines.append(f"    {where}: {detail['line_contents']}")
    return "\n".join(lines)


def test_no_module_of_connector_or_adapters_imports_itself_through_others() -> None:
    import adapters
    import connector

    for package in (connector, adapters):  # the graph is of this checkout, not an install
        assert Path(package.__file__ or "").resolve().is_relative_to(REPO)
    graph = import_graph(*PACKAGES)
    found = circles(graph)
    assert not found, "import circles:\n" + "\n".join(describe(graph, c) for c in found)


def test_a_circle_through_type_checking_imports_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "circled"
    package.mkdir()
    (package / "__init__.py").write_text("from circled import store\n")
    (package / "store.py").write_text("from circled import common\n")
    (package / "common.py").write_text("X = 1\n")
    (package / "engine.py").write_text("from circled.hosting import Host\n")
    (package / "hosting.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "class Host: ...\n"
        "if TYPE_CHECKING:\n"
        "    from circled.engine import Engine\n"
    )
    (package / "alone.py").write_text("import circled.alone\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = import_graph("circled")
    # The package importing a submodule that imports a sibling is no circle; the rest are.
    assert circles(graph) == [["circled.alone"], ["circled.engine", "circled.hosting"]]
    assert describe(graph, ["circled.engine", "circled.hosting"]).splitlines() == [
        "circled.engine <-> circled.hosting",
        "    circled.engine:1: from circled.hosting import Host",
        "    circled.hosting:4: from circled.engine import Engine",
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    graph = import_graph(*PACKAGES)
    found = circles(graph)
    print("\n".join(describe(graph, c) for c in found) or "no import circles")
    raise SystemExit(1 if found else 0)
