"""Imports inside functions are the listed few that keep imports light (tests/deferred_imports.py)."""

from __future__ import annotations

from tests.deferred_imports import CYCLES, ROOT, deferred_imports, page


def test_every_import_inside_a_function_defers_a_heavy_package_or_breaks_a_listed_cycle():
    needless = [
        f"{d.importer} line {d.line}: {d.imported}"
        for d in deferred_imports()
        if not d.defers and (d.importer, d.imported) not in CYCLES
    ]
    assert needless == [], "these defer nothing: import them at the top of the module"


def test_the_listed_cycles_are_still_there():
    found = {(d.importer, d.imported) for d in deferred_imports()}
    assert set(CYCLES) <= found, "a cycle in CYCLES is gone: remove it from the list"


def test_the_list_in_the_docs_is_current():
    assert (ROOT / "docs" / "reference" / "deferred-imports.md").read_text() == page(), "run `make reference`"


def test_no_package_binds_one_of_its_modules_names_to_something_else():
    """``from .launch import launch`` in a package hides its module: ``import pkg.launch.x as x`` then fails."""
    import ast

    shadowed = []
    for init in sorted(p for folder in ("flows", "tasks", "models") for p in (ROOT / folder).rglob("__init__.py")):
        package = init.parent
        modules = {p.stem for p in package.glob("*.py")}
        modules |= {d.name for d in package.iterdir() if (d / "__init__.py").exists()}
        for node in ast.parse(init.read_text()).body:
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    bound = alias.asname or alias.name
                    if bound in modules and not (node.module or "").endswith(package.name) and node.level == 0:
                        shadowed.append(f"{init.relative_to(ROOT)}: {bound} from {node.module}")
    assert shadowed == []
