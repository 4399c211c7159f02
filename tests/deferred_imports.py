"""The imports of kerasflow's own modules made inside functions, and why each one is.

An import inside a function hides a dependency from a reader, so kerasflow keeps one only
where importing at the top would load a heavy package (TensorFlow, Keras, Prefect,
pandas, ...) that the importing module does not load already: ``kerasflow --help``, the
model file checks and a recipe's validation stay fast that way. Each such import is
listed, with the packages it defers, in docs/reference/deferred-imports.md, generated
here (``python -m tests.deferred_imports``; ``make reference``) and checked by
tests/test_deferred_imports.py, which fails on an import inside a function that defers
nothing.

The analysis is static: a module's imports at its top level (not under ``if
TYPE_CHECKING:``), followed through kerasflow's modules, the parent packages of each
included (importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("flows", "tasks", "models")
HEAVY = (
    "tensorflow", "keras", "tensorflow_datasets", "prefect", "pandas", "pyarrow", "matplotlib", "PIL", "sklearn",
    "s3fs", "fsspec", "numpy", "pydantic", "httpx", "typer", "yaml",
)  # fmt: skip
# Imports inside functions that break a cycle between a package and its own module: the
# package's function needs the module, which needs the package's names at its top.
CYCLES = {
    ("kerasflow.tasks.config", "kerasflow.tasks.config.reference"): (
        "the recipe reference walks TrainConfig's sections; TrainConfig's error messages name the closest key"
    ),
    ("kerasflow.tasks.config.reference", "kerasflow.tasks.config"): "see kerasflow.tasks.config",
}


class Deferred(NamedTuple):
    """One import of a kerasflow module inside a function."""

    importer: str
    imported: str
    line: int
    defers: tuple[str, ...]  # the heavy packages importing it at the top would add to the importer


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return "kerasflow." + ".".join(parts)


@functools.cache
def _modules() -> dict[str, Path]:
    return {_module_name(path): path for folder in FOLDERS for path in sorted((ROOT / folder).rglob("*.py"))}


def _targets(importer: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    module = node.module or ""
    if node.level:
        base = importer.split(".")
        if _modules()[importer].name != "__init__.py":
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        module = ".".join([*base, module] if module else base)
    return [f"{module}.{a.name}" if f"{module}.{a.name}" in _modules() else module for a in node.names]


def _imports(module: str) -> tuple[set[str], list[tuple[str, int]]]:
    """(what ``module`` imports at its top level, [(a kerasflow module imported in a function, line)])."""
    top: set[str] = set()
    inside: list[tuple[str, int]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                for target in _targets(module, child):
                    if not in_function:
                        top.add(target)
                    elif target.startswith("kerasflow."):
                        inside.append((target, child.lineno))
            visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    visit(ast.parse(_modules()[module].read_text()), False)
    return top, inside


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


@functools.cache
def heavy_packages(module: str) -> frozenset[str]:
    """The heavy packages that importing ``module`` loads, through kerasflow's modules' top-level imports."""
    seen: set[str] = set()
    heavy: set[str] = set()
    stack = [module]
    while stack:
        for name in _with_parents(stack.pop()):
            if name in seen or name not in _modules():
                continue
            seen.add(name)
            for target in _imports(name)[0]:
                if target.split(".")[0] in HEAVY:
                    heavy.add(target.split(".")[0])
                elif target.startswith("kerasflow."):
                    stack.append(target)
    return frozenset(heavy)


def deferred_imports() -> list[Deferred]:
    """Every import of a kerasflow module inside a function, with what it defers."""
    found = []
    for importer in _modules():
        for imported, line in _imports(importer)[1]:
            defers = heavy_packages(imported) - heavy_packages(importer) if imported in _modules() else frozenset()
            found.append(Deferred(importer, imported, line, tuple(sorted(defers))))
    return found


def page() -> str:
    """docs/reference/deferred-imports.md."""
    rows = {}
    for d in deferred_imports():
        reason = ", ".join(d.defers) if d.defers else f"a cycle: {CYCLES.get((d.importer, d.imported), '?')}"
        rows.setdefault((d.importer, d.imported), reason)
    lines = [
        "# Deferred imports",
        "",
        "<!-- Generated by `python -m tests.deferred_imports` (make reference); tests/test_deferred_imports.py",
        "     fails when it is stale or when an import inside a function defers nothing. -->",
        "",
        "kerasflow imports its own modules at the top of each module, except where that would load a",
        "heavy package the importing module does not load already (so `kerasflow --help`, the model",
        "file checks and a recipe's validation stay fast), or would close a cycle between a package",
        "and one of its own modules. These are all of them:",
        "",
        "| module | imports, inside a function | defers |",
        "|---|---|---|",
        *(f"| `{a}` | `{b}` | {reason} |" for (a, b), reason in sorted(rows.items())),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(page(), end="")
