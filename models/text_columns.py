"""The ``text`` column type: free text in a table (reviews, tickets, transaction descriptions).

A text column is encoded inside the model by Keras's ``TextVectorization``, made already
adapted from the training split's statistics (:class:`ColumnFacts`): its vocabulary is the
tokens by falling document frequency (the texts holding them), at most ``max_tokens``, and
for ``tf_idf`` each token's inverse document frequency as Keras computes it. So the saved
model scores raw text and nothing is adapted twice. ``output_mode``:

- ``multi_hot`` (default): 1 for each vocabulary token the text holds (the guide's IMDB model);
- ``count``: how many times the text holds each token;
- ``tf_idf``: the count weighted by the token's inverse document frequency.

Each gives ``(batch, 1 + vocabulary)`` floats (the first entry counts the tokens out of
vocabulary), which the builder receives beside the table's other columns. Token ids of a
fixed length for a sequence model (``int``) are refused: the builder receives one float
vector, where ids would be magnitudes (kerasflow has no builder that embeds them).

A missing text is the empty text (no token), not a category of its own. Statistics split
a text into tokens by :func:`text_tokens`, which does what ``TextVectorization``'s
``lower_and_strip_punctuation`` and ``whitespace`` split do (ASCII letters lowered, ASCII
punctuation removed, split on ASCII whitespace), so the vocabulary counted is the one the
layer looks up. Registered when models/column_types.py is imported; Keras is imported only
when a model is built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kerasflow.models.column_type_registry import ColumnFacts, register_column_type

__all__ = ["MAX_VOCABULARY", "OUTPUT_MODES", "TEXT_TYPE", "check_text_params", "text_tokens"]

TEXT_TYPE = "text"
OUTPUT_MODES = ("multi_hot", "count", "tf_idf")
# The most tokens a text column's statistics count (by document frequency), and so its largest vocabulary.
MAX_VOCABULARY = 20_000
DEFAULT_MAX_TOKENS = 10_000

# TextVectorization's lower_and_strip_punctuation: tf.strings.lower (ASCII letters only), then
# this pattern (keras/src/layers/preprocessing/text_vectorization.py) removed.
_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
# tf.strings.split without a separator: ASCII whitespace only (not U+00A0, U+2003 ...), runs as one.
_WHITESPACE = re.compile(r"[ \t\n\x0b\x0c\r]+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# The vocabulary of a column whose training texts hold no token: it cannot be a token (brackets are stripped).
_NO_TOKEN = "[no token]"


def text_tokens(text: str) -> list[str]:
    """The tokens ``TextVectorization(standardize="lower_and_strip_punctuation", split="whitespace")`` sees.

    Args:
        text: one text; the empty text has no token.

    Examples:
        >>> text_tokens("Refund NOT received, order #123!")
        ['refund', 'not', 'received', 'order', '123']
    """
    return [token for token in _WHITESPACE.split(_PUNCTUATION.sub("", text.translate(_ASCII_LOWER))) if token]


def check_text_params(column: str, params: Mapping[str, Any]) -> None:
    """Refuse params a ``text`` column cannot be encoded with.

    Args:
        column: the column's name, for the message.
        params: the column's params over the type's defaults (``output_mode``, ``max_tokens``).

    Raises:
        ValueError: an unknown ``output_mode`` (``int`` with the reason and the alternative), or ``max_tokens``
            past :data:`MAX_VOCABULARY`.
    """
    mode = params.get("output_mode")
    if mode == "int":
        raise ValueError(
            f"received output_mode='int' for text column {column!r}, expected one of {list(OUTPUT_MODES)}: token ids "
            "of a fixed length need a builder that embeds them, and a table's builder receives its columns as one "
            "float vector, where ids would be magnitudes. Use multi_hot or tf_idf (a bag of words into Dense "
            "layers, the guide's IMDB model); a sequence model trains on text from TFDS (data.source: tfds) with "
            "its own builder"
        )
    if mode not in OUTPUT_MODES:
        raise ValueError(
            f"received output_mode={mode!r} for text column {column!r}, expected one of {list(OUTPUT_MODES)}"
        )
    max_tokens = params.get("max_tokens")
    if not isinstance(max_tokens, int) or not 1 <= max_tokens <= MAX_VOCABULARY:
        raise ValueError(
            f"received max_tokens={max_tokens!r} for text column {column!r}, expected 1 to {MAX_VOCABULARY} (the "
            "tokens a text column's statistics count)"
        )


@register_column_type(
    TEXT_TYPE,
    storage="string",
    params={"output_mode": "multi_hot", "max_tokens": DEFAULT_MAX_TOKENS},
    check=check_text_params,
)
def _text(x, *, column: str, facts: ColumnFacts, output_mode: str, max_tokens: int) -> tuple[Any, list[str]]:
    import keras

    vocabulary = [str(token) for token in facts.vocabulary[:max_tokens]]
    idf = [float(w) for w in facts.idf[: len(vocabulary)]]
    if not vocabulary or (output_mode == "tf_idf" and len(idf) != len(vocabulary)):
        # No token in training (every text empty), or statistics without document counts: one entry that never
        # matches, so the model is still built and scores (every text out of vocabulary).
        vocabulary, idf = [_NO_TOKEN], [1.0]
    layer = keras.layers.TextVectorization(
        standardize="lower_and_strip_punctuation",
        split="whitespace",
        vocabulary=vocabulary,
        output_mode=output_mode,
        idf_weights=idf if output_mode == "tf_idf" else None,
    )
    encoded = layer(x)
    if output_mode != "tf_idf":  # multi_hot and count come out as int64; the encoding is one float vector
        encoded = keras.layers.Rescaling(1.0)(encoded)
    return encoded, [f"{column}[(other)]", *(f"{column}[{token}]" for token in vocabulary)]
