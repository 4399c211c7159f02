"""A text column's statistics: its tokens per text, as a number column's, and each token's document frequency.

A text is split into tokens as the model's ``TextVectorization`` splits it
(models/text_columns.py: ``text_tokens``). The length of each text in tokens is counted as a
number column's values (tasks/data/numeric_statistics.py: mean, deviation, min, max and the
fixed-bucket histogram), so the statistics page, drift and skew describe and compare a text
column by its length: a table whose tickets got twice as long has drifted. Beside it, the
texts holding each token: the vocabulary (by falling document frequency) and the inverse
document frequencies of the column's encoding come from them.

Tokens are counted one by one up to twice :data:`MAX_VOCABULARY`; past that the rarest
are dropped down to :data:`MAX_VOCABULARY`, so memory and ``statistics.json`` stay bounded
whatever the texts, and a token first seen after many rarer ones were dropped is counted
from then on (the most frequent tokens, the vocabulary, are the ones kept exactly).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from kerasflow.models.text_columns import MAX_VOCABULARY, text_tokens
from kerasflow.tasks.data.numeric_statistics import NumericStats

__all__ = ["MAX_VOCABULARY", "TextStats"]


@dataclass
class TextStats(NumericStats):
    """A text column's statistics: its texts' lengths in tokens (a number column's statistics) and tokens' texts.

    ``count`` is the texts (a missing text is the empty text: a text of no token, so ``missing``
    stays 0); ``mean``, ``std``, ``min``, ``max``, ``buckets`` and :meth:`quantiles` are of the
    tokens per text.

    Args:
        kind: the tag of the JSON form.
        empty: texts without a token (missing, blank, or punctuation only).
        documents: token -> texts holding it; at most twice :data:`MAX_VOCABULARY` tokens.
    """

    kind: Literal["text"] = "text"  # type: ignore[assignment]
    empty: int = 0
    documents: Counter = field(default_factory=Counter)

    def add(self, values: np.ndarray) -> None:
        """Count ``values``' tokens: each text's length, and the texts each token is in.

        Args:
            values: texts, any shape; None or NaN is the empty text.
        """
        texts = np.asarray(values, dtype=object).reshape(-1)
        lengths = np.empty(len(texts), dtype=np.float64)
        for i, text in enumerate(texts):
            tokens = text_tokens(text) if isinstance(text, str) else []
            lengths[i] = len(tokens)
            self.documents.update(set(tokens))
        self.empty += int((lengths == 0).sum())
        super().add(lengths)
        self._cap()

    def merge(self, other: NumericStats) -> None:
        """Add ``other``'s counts to these."""
        super().merge(other)
        if isinstance(other, TextStats):
            self.empty += other.empty
            self.documents.update(other.documents)
            self._cap()

    def _cap(self) -> None:
        if len(self.documents) > 2 * MAX_VOCABULARY:
            self.documents = Counter(dict(self.top(MAX_VOCABULARY)))

    def top(self, k: int | None = None) -> list[tuple[str, int]]:
        """The ``k`` tokens in most texts, with the texts each is in (ties by token, so the order is stable)."""
        ranked = sorted(self.documents.items(), key=lambda item: (-item[1], item[0]))
        return ranked[:k] if k is not None else ranked

    def idf(self, tokens: list[str]) -> list[float]:
        """Each token's inverse document frequency, as Keras's ``TextVectorization`` adapts it.

        ``log(1 + texts / (1 + texts holding the token))``.

        Args:
            tokens: the vocabulary.
        """
        texts = self.count + self.missing
        return [math.log(1 + texts / (1 + self.documents.get(token, 0))) for token in tokens]

    def to_json(self) -> dict[str, Any]:
        return {
            **super().to_json(),
            "kind": "text",
            "empty": self.empty,
            "documents": dict(self.top(MAX_VOCABULARY)),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> TextStats:
        """The statistics of a :meth:`to_json` form.

        Args:
            raw: the mapping :meth:`to_json` returns, or the same parsed from JSON.
        """
        stats = super().from_json(raw)
        assert isinstance(stats, TextStats)
        stats.empty = int(raw.get("empty", 0))
        stats.documents = Counter({str(k): int(v) for k, v in raw.get("documents", {}).items()})
        return stats
