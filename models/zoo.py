"""Model builders for the cases of the Keras guide, selected by name.

Every builder is keyword-only, returns an *uncompiled* ``keras.Model`` and puts its
preprocessing (rescaling, normalisation, text vectorisation) inside the model, so a saved
``model.keras`` scores raw inputs and serving needs no copy of the training code.
Compilation lives in :func:`compile_model` so the multi-worker loop can reuse the same
optimizer, loss and metrics without calling ``fit``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import keras
import numpy as np

from kerasflow.models.families import FAMILIES

Api = Literal["sequential", "functional"]


def build_digits_cnn(
    *,
    input_shape: Sequence[int] = (8, 8, 1),
    num_classes: int = 10,
    rescale: float = 1.0 / 16.0,
    filters: int = 32,
    dropout: float = 0.3,
    api: Api = "functional",
) -> keras.Model:
    """A small CNN for scikit-learn's 8x8 digits (the quickstart)."""
    layers = [
        keras.layers.Rescaling(rescale),
        keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(filters * 2, 3, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dropout(dropout),
        keras.layers.Dense(num_classes, activation="softmax"),
    ]
    return _assemble(layers, input_shape=input_shape, api=api, name="digits_cnn")


def build_mnist_mlp(
    *,
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    rescale: float = 1.0 / 255.0,
    units: int = 128,
    dropout: float = 0.5,
    api: Api = "sequential",
) -> keras.Model:
    """The guide's MNIST MLP: Dense(128, relu) -> Dropout(0.5) -> Dense(10, softmax)."""
    layers = [
        keras.layers.Rescaling(rescale),
        keras.layers.Flatten(),
        keras.layers.Dense(units, activation="relu"),
        keras.layers.Dropout(dropout),
        keras.layers.Dense(num_classes, activation="softmax"),
    ]
    return _assemble(layers, input_shape=input_shape, api=api, name="mnist_mlp")


def build_cifar10_cnn(
    *,
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    rescale: float = 1.0 / 255.0,
    api: Api = "functional",
) -> keras.Model:
    """The guide's two-block Conv2D/MaxPooling/Dropout CNN with Dense(512)."""
    layers = [keras.layers.Rescaling(rescale)]
    for filters in (32, 64):
        layers += [
            keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(filters, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Dropout(0.25),
        ]
    layers += [
        keras.layers.Flatten(),
        keras.layers.Dense(512, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(num_classes, activation="softmax"),
    ]
    return _assemble(layers, input_shape=input_shape, api=api, name="cifar10_cnn")


def build_imdb_text(
    *,
    vocabulary: Sequence[str],
    max_tokens: int = 10_000,
    units: int = 16,
    dropout: float = 0.5,
) -> keras.Model:
    """A multi-hot bag of the top ``max_tokens`` words into Dense layers, sigmoid output.

    The guide's version divides token ids by the dataset length, which turns word
    identity into a meaningless magnitude; a multi-hot encoding keeps one input per word.
    The vocabulary is learned from the training split by the caller
    (:func:`text_vocabulary`) so that building the model stays cheap and deterministic.
    """
    vectorize = keras.layers.TextVectorization(
        max_tokens=max_tokens, output_mode="multi_hot", vocabulary=list(vocabulary)
    )
    inputs = keras.Input(shape=(), dtype="string", name="text")
    x = vectorize(inputs)
    x = keras.layers.Dense(units, activation="relu")(x)
    x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Dense(units, activation="relu")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="imdb_text")


def text_vocabulary(texts: Any, *, max_tokens: int = 10_000) -> list[str]:
    """The most frequent words of ``texts`` (a string dataset or array), as the model uses them."""
    layer = keras.layers.TextVectorization(max_tokens=max_tokens, output_mode="multi_hot")
    layer.adapt(texts)
    # The multi-hot vocabulary starts with the OOV token, which the layer adds back itself.
    return [token for token in layer.get_vocabulary() if token != "[UNK]"]


def build_fraud_tabular(
    *,
    num_features: int,
    mean: Sequence[float] | None = None,
    variance: Sequence[float] | None = None,
    units: int = 64,
    dropout: float = 0.5,
    api: Api = "functional",
) -> keras.Model:
    """The guide's user-behaviour / fraud classifier: Dense(64) -> Dropout(0.5) -> Dense(1).

    ``mean`` and ``variance`` are the training split's feature statistics; baking them
    into a Normalization layer keeps the saved model scoring raw rows.
    """
    if mean is not None and variance is not None:
        normalize = keras.layers.Normalization(
            mean=np.asarray(mean, "float32"), variance=np.asarray(variance, "float32")
        )
    else:
        normalize = keras.layers.Identity()
    layers = [
        normalize,
        keras.layers.Dense(units, activation="relu"),
        keras.layers.Dropout(dropout),
        keras.layers.Dense(1, activation="sigmoid"),
    ]
    return _assemble(layers, input_shape=(num_features,), api=api, name="fraud_tabular")


def _assemble(layers: list, *, input_shape: Sequence[int], api: Api, name: str) -> keras.Model:
    """The same stack of layers through either of the guide's two APIs."""
    if api == "sequential":
        return keras.Sequential([keras.Input(shape=tuple(input_shape)), *layers], name=name)
    if api == "functional":
        inputs = keras.Input(shape=tuple(input_shape))
        x = inputs
        for layer in layers:
            x = layer(x)
        return keras.Model(inputs, x, name=name)
    raise ValueError(f"received api={api!r}, expected 'sequential' or 'functional'")


BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "digits_cnn": build_digits_cnn,
    "mnist_mlp": build_mnist_mlp,
    "cifar10_cnn": build_cifar10_cnn,
    "imdb_text": build_imdb_text,
    "fraud_tabular": build_fraud_tabular,
}
if set(BUILDERS) != set(FAMILIES):  # the config validates against FAMILIES without importing this module
    raise ImportError(f"models/families.py lists {sorted(FAMILIES)} but the zoo builds {sorted(BUILDERS)}")


def build(family: str, **params: Any) -> keras.Model:
    """Build the model family ``family`` with ``params``."""
    try:
        builder = BUILDERS[family]
    except KeyError:
        raise ValueError(f"received model family {family!r}, expected one of {sorted(BUILDERS)}") from None
    return builder(**params)


def compile_model(
    model: keras.Model,
    *,
    num_classes: int,
    learning_rate: float = 1e-3,
    optimizer: str = "adam",
    jit_compile: bool | str = "auto",
) -> keras.Model:
    """Compile with the loss and metrics that fit the task: binary or multi-class.

    Multi-class labels are integer class ids (sparse categorical cross-entropy), so they
    need not be one-hot; binary tasks get precision, recall and AUC as the guide's fraud
    case does.
    """
    opt = keras.optimizers.get({"class_name": optimizer, "config": {"learning_rate": learning_rate}})
    if num_classes == 2 and model.output_shape[-1] == 1:
        loss = keras.losses.BinaryCrossentropy()
        metrics = [
            keras.metrics.BinaryAccuracy(name="accuracy"),
            keras.metrics.Precision(name="precision"),
            keras.metrics.Recall(name="recall"),
            keras.metrics.AUC(name="auc"),
        ]
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(optimizer=opt, loss=loss, metrics=metrics, jit_compile=jit_compile)
    return model
