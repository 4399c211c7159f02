"""The one idiom of kerasflow's extension points: things of one kind, by name, that a team can add to.

Builders, column types, learning tasks, launchers and task runners are each a
:class:`PluginRegistry`. A name is found, in this order:

1. registered in code (``register_builder("my_net")(build)``, or the registry's own decorator);
2. built in: kerasflow's own, imported from the module that registers them the first time
   one of them is asked for, so the registry never imports its implementations (no
   import cycle, and a run pays only for what it uses);
3. from an installed package: an entry point of the registry's group (``kerasflow.builders``,
   ``kerasflow.launchers``, ...) whose name is the name asked for. Loading it imports its
   module, which registers it; or its value is the thing itself, registered as loaded.

An unknown name is one error naming the setting, what was received and every name
there is ("received model.family='resnet', expected one of [...]").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

__all__ = ["PluginRegistry"]

T = TypeVar("T")


class PluginRegistry(Generic[T]):
    """Things of one kind by name: registered in code, built in, or from installed packages.

    Args:
        setting: the recipe key or option that names them, for error messages (``model.family``).
        group: the entry point group installed packages register under (``kerasflow.builders``).
        built_in: name -> the module that registers it when imported.
        error: the exception an unknown name raises, built from the message.
        accepts: whether an object loaded from an entry point is the thing itself (then it is
            registered under the entry point's name); by default nothing is.
    """

    def __init__(
        self,
        *,
        setting: str,
        group: str,
        built_in: Mapping[str, str] | None = None,
        error: Callable[[str], Exception] = ValueError,
        accepts: Callable[[Any], bool] | None = None,
    ):
        self.setting = setting
        self.group = group
        self.built_in = dict(built_in or {})
        self.error = error
        self.accepts = accepts
        self.items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        """Make ``item`` nameable as ``name``; returns it.

        Args:
            name: the name it is found by.
            item: the thing; it replaces what ``name`` named before.
        """
        self.items[name] = item
        return item

    def entry_points(self) -> dict[str, Any]:
        """The entry points of installed packages in this registry's group, by name."""
        return {point.name: point for point in entry_points(group=self.group)}

    def names(self) -> list[str]:
        """Every name there is: registered, built in, or from an installed package."""
        return sorted({*self.items, *self.built_in, *self.entry_points()})

    def find(self, name: str) -> T | None:
        """The thing named ``name``, importing a built-in or an entry point first; None if there is none."""
        if name not in self.items:
            if name in self.built_in:
                importlib.import_module(self.built_in[name])
            elif (point := self.entry_points().get(name)) is not None:
                loaded = point.load()
                if name not in self.items and self.accepts is not None and self.accepts(loaded):
                    self.items[name] = loaded
        return self.items.get(name)

    def get(self, name: str) -> T:
        """The thing named ``name``.

        Raises:
            The registry's error: "received <setting>=<name>, expected one of [...]".
        """
        found = self.find(name)
        if found is None:
            raise self.error(f"received {self.setting}={name!r}, expected one of {self.names()}")
        return found

    def load_all(self) -> dict[str, T]:
        """Every thing there is, each imported: for listings (``kerasflow recipes --families``)."""
        for name in self.names():
            self.find(name)
        return dict(sorted(self.items.items()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
