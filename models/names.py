"""Names in the registry: model names, aliases, and ``NAME@ALIAS`` / ``NAME@VERSION`` references.

Names become path segments of the registry on any fsspec URL, so anything that could
escape the root or confuse a URL is refused here. Re-exported by models/registry.py.
"""

from __future__ import annotations

import re

from kerasflow.models.errors import ConfigError

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def validate_name(value: str, *, what: str = "model name") -> str:
    """Refuse names that could escape the registry root or confuse a URL.

    Args:
        value: the name.
        what: what the name is, for the error (``alias``).

    Returns:
        ``value``, unchanged.

    Raises:
        ConfigError: ``value`` is not 1 to 64 lowercase letters, digits, '.', '_' or '-' starting with a
            letter or digit, or holds ``..``.
    """
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value) or ".." in value:
        raise ConfigError(
            f"received {what} {value!r}, expected lowercase letters, digits, '.', '_' or '-' "
            "(at most 64, starting with a letter or digit, no '..')"
        )
    return value


def parse_model_ref(ref: str, *, default_alias: str = "production") -> tuple[str, str]:
    """``NAME``, ``NAME@ALIAS`` or ``NAME@VERSION`` -> (name, alias or version number as text).

    Args:
        ref: the reference as given.
        default_alias: the alias ``NAME`` alone means.

    Raises:
        ConfigError: ``ref`` has nothing after its ``@``.
    """
    name, at, selector = ref.partition("@")
    if at and not selector:
        raise ConfigError(
            f"received model reference {ref!r} with nothing after '@', expected NAME, NAME@ALIAS or NAME@VERSION "
            f"(NAME alone means NAME@{default_alias})"
        )
    return name, selector or default_alias
