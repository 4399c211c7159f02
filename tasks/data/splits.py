"""Which split a row belongs to: decided by the row alone, so it never changes as data grows.

A seeded permutation of the whole table gives every row a new split whenever a partition
lands (n changes), and the production model is then evaluated on rows it trained on. Here,
as in TFX's ExampleGen, a row's split comes from a 64-bit hash of the row itself: its
content (feature values and class name), or the value of a key column (``data.split_key``,
e.g. a customer id, so all of one customer's rows share a split). The hash, mixed with
``data.seed``, is read as a number in [0, 1) and cut by ``data.fractions``: below
``test`` is test, below ``test + validation`` is validation, the rest is train.

The hash is defined here (splitmix64 over the float32 bit patterns, BLAKE2b of key text),
not borrowed from a library whose hash may change between versions. :data:`RULE` names
it in every dataset's identity; a change of rule must change that name.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

RULE = "row-hash-v1"
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def describe(*, key: str | None, seed: int, fractions: dict[str, float]) -> dict[str, Any]:
    """The split rule as recorded in a dataset's identity (and so in its fingerprint).

    Args:
        key: ``data.split_key``, the column whose value decides a row's split; None: the row's content does.
        seed: ``data.seed``.
        fractions: ``data.fractions``: ``validation`` and ``test`` -> share of the rows.
    """
    return {"rule": RULE, "by": f"column {key}" if key else "row content", "seed": seed, "fractions": fractions}


# Rows hashed at a time: the 64-bit words of a chunk are a transient copy four times the
# size of its float32 features (2M rows of 30 columns: 480 MB at once, 16 MB a chunk).
HASH_CHUNK_ROWS = 65_536


def content_hashes(
    features: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    *,
    seed: int,
    integers: np.ndarray | None = None,
    strings: np.ndarray | None = None,
) -> np.ndarray:
    """One uint64 per row from its values and its class name (not its class id), or its target number.

    ``features``: the float columns (or whole examples); a typed table's ``integers`` and
    ``strings`` columns are mixed in after them (text by a digest of each distinct value),
    so a table of numbers alone hashes as it always did.

    Args:
        features: the float columns (or whole examples), one row per example; any shape after the first axis.
        labels: class ids into ``class_names``, or a regression target's float numbers.
        class_names: the class names in class-id order.
        seed: ``data.seed``, mixed into every hash.
        integers: a typed table's ``(rows, k)`` integer columns.
        strings: a typed table's ``(rows, k)`` text columns.

    Returns:
        ``(rows,)`` uint64.
    """
    flat = features.reshape(len(features), -1)
    if labels.dtype.kind == "f":  # a regression target: its float32 bits, as the features'
        target = np.ascontiguousarray(labels, dtype=np.float32) + np.float32(0)
        label_words = mix64(target.view(np.uint32).astype(np.uint64) ^ np.uint64(seed))
    else:
        label_words = text_hashes(np.asarray(class_names, dtype=str), seed=seed)[labels]
    extra = _column_words(integers, strings, seed=seed)
    hashes = np.empty(len(flat), dtype=np.uint64)
    start_value = mix64(np.uint64(seed) ^ _GOLDEN)
    for start in range(0, len(flat), HASH_CHUNK_ROWS):
        chunk = slice(start, start + HASH_CHUNK_ROWS)
        rows = np.ascontiguousarray(flat[chunk], dtype=np.float32) + np.float32(0)  # -0.0 -> 0.0
        words = rows.view(np.uint32).astype(np.uint64)
        h = np.full(len(rows), start_value, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for column in range(words.shape[1]):
                h = mix64(h ^ (words[:, column] + np.uint64(column + 1) * _GOLDEN))
            for number, column_words in enumerate(extra, start=words.shape[1] + 1):
                h = mix64(h ^ (column_words[chunk] + np.uint64(number) * _GOLDEN))
            hashes[chunk] = mix64(h ^ label_words[chunk])
    return hashes


def _column_words(integers: np.ndarray | None, strings: np.ndarray | None, *, seed: int) -> list[np.ndarray]:
    """One uint64 per row for each integer column (its bits) and each text column (a digest of its value)."""
    words = []
    if integers is not None:
        words += [np.ascontiguousarray(integers[:, j]).view(np.uint64) for j in range(integers.shape[1])]
    if strings is not None:
        words += [key_hashes(strings[:, j], seed=seed) for j in range(strings.shape[1])]
    return words


def key_hashes(keys: np.ndarray, *, seed: int) -> np.ndarray:
    """One uint64 per row from the text of its key (equal keys, equal hashes, whatever the row).

    Args:
        keys: the key column's values, one per row, read as text.
        seed: ``data.seed``, mixed into every hash.
    """
    unique, inverse = np.unique(np.asarray(keys).astype(str), return_inverse=True)
    return text_hashes(unique, seed=seed)[inverse.reshape(-1)]


def text_hashes(values: np.ndarray, *, seed: int) -> np.ndarray:
    """One uint64 per value: the first 8 bytes, little-endian, of BLAKE2b of ``<seed>:<value>``.

    Args:
        values: the text values.
        seed: ``data.seed``.
    """
    digests = [hashlib.blake2b(f"{seed}:{v}".encode(), digest_size=8).digest() for v in values]
    return np.frombuffer(b"".join(digests), dtype="<u8").astype(np.uint64) if digests else np.zeros(0, np.uint64)


def assign(hashes: np.ndarray, *, validation: float, test: float, limit: int | None = None) -> dict[str, np.ndarray]:
    """Row indices per split (in row order); ``limit`` keeps the rows of lowest hash in each.

    Args:
        hashes: one uint64 per row (:func:`content_hashes`, :func:`key_hashes`).
        validation: the share of rows for validation, in [0, 1).
        test: the share of rows for test, in [0, 1).
        limit: the most rows a split keeps; None or 0: every row.

    Returns:
        ``train``, ``validation`` and ``test`` -> row indices, ascending.
    """
    position = (hashes >> np.uint64(11)).astype(np.float64) / float(1 << 53)  # uniform in [0, 1)
    roles = {
        "train": position >= test + validation,
        "validation": (position >= test) & (position < test + validation),
        "test": position < test,
    }
    parts = {}
    for role, member in roles.items():
        rows = np.flatnonzero(member)
        if limit:
            rows = np.sort(rows[np.argsort(position[rows], kind="stable")[:limit]])
        parts[role] = rows
    return parts


def mix64(z: np.ndarray | np.uint64) -> np.ndarray:
    """splitmix64's finalizer: every input bit affects every output bit.

    Args:
        z: uint64 values, an array or one.
    """
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))
