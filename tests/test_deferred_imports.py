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
