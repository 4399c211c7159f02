"""Reading a recipe's YAML within bounds: its size, and its size with every alias expanded.

YAML aliases let a few hundred bytes stand for billions of values (an alias bomb), so a
document is composed first (aliases are shared nodes, cheap) and counted with every alias
expanded before any Python object is built. Used by tasks/config/__init__.py for recipe files and
``--set`` values.
"""

from __future__ import annotations

from typing import Any

import yaml

from kerasflow.tasks.failures import ConfigError

# A recipe is a small tree of settings. Bounds on what one may hold, checked before it is
# built: YAML aliases let a few hundred bytes stand for billions of values (an alias bomb).
MAX_RECIPE_BYTES = 1 << 20
MAX_RECIPE_VALUES = 100_000


def safe_yaml(text: str, *, source: str) -> Any:
    """``yaml.safe_load`` of ``text``, refusing (ConfigError) a document that expands past
    MAX_RECIPE_VALUES values; a syntax error is ``yaml.YAMLError`` as from ``safe_load``.

    The document is composed first (aliases are shared nodes, so that is cheap) and its
    size counted with every alias expanded, before any Python object is built.

    Args:
        text: the YAML text.
        source: names the text in the error (``recipe file digits.yaml``, ``--set training.epochs``).

    Returns:
        The document's value; None for an empty document.

    Raises:
        ConfigError: the document expands past ``MAX_RECIPE_VALUES`` values.
        yaml.YAMLError: the text is not valid YAML.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_size(node) > MAX_RECIPE_VALUES:
            raise ConfigError(
                f"{source} is refused: with its YAML aliases (*name) expanded it holds more than "
                f"{MAX_RECIPE_VALUES:,} values, far more than any recipe (an alias bomb?); write the values out "
                "without nested aliases"
            )
        return loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


def _expanded_size(root: yaml.Node) -> int:
    """Values under ``root`` with every alias expanded (capped past the bound); linear in the nodes."""
    limit = MAX_RECIPE_VALUES + 1
    sizes: dict[int, int] = {}  # id of a node -> its expanded size
    on_path = {id(root)}
    stack = [(root, iter(_children(root)))]
    while stack:  # depth-first without recursion: a deep document cannot exhaust the Python stack
        node, pending = stack[-1]
        child = next(pending, None)
        if child is None:
            stack.pop()
            on_path.discard(id(node))
            sizes[id(node)] = min(limit, 1 + sum(sizes[id(c)] for c in _children(node)))
        elif id(child) in on_path:
            return limit  # a recursive alias (&a [*a]) expands without end
        elif id(child) not in sizes:
            on_path.add(id(child))
            stack.append((child, iter(_children(child))))
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []
