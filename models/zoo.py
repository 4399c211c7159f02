"""Model builders for the cases of the Keras guide, registered by name.

Each follows the builder contract of :mod:`builders` (``build(*, input_spec, **params)``),
exactly as a team's own builder does: the input shape and the number of outputs come from
the input spec, and learned preprocessing (the text model's ``TextVectorization``) is
left un-adapted for kerasflow to adapt on the training split; a table's builders receive
its columns encoded (kerasflow/models/column_types.py). Each returns an *uncompiled*
``keras.Model`` with its preprocessing inside, so a saved ``model.keras`` scores raw inputs. Compilation lives in
:func:`compile_model` so the multi-worker loop can reuse the same optimizer, loss and
metrics without calling ``fit``; what a task's loss and metrics are is decided in
tasks/learning/learning_tasks.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import keras

from kerasflow.models.builders import BUILDERS, register_builder
from kerasflow.models.families import FAMILIES
from kerasflow.models.input_spec import InputSpec

Api = Literal["sequential", "functional"]


@register_builder("digits_cnn")
def build_digits_cnn(
    *,
    input_spec: InputSpec,
    rescale: float = 1.0 / 16.0,
    filters: int = 32,
    dropout: float = 0.3,
    api: Api = "functional",
) -> keras.Model:
    """A small CNN for scikit-learn's 8x8 digits (the quickstart).

    Args:
        input_spec: the data's shapes, classes and task (models/input_spec.py).
        rescale: the factor pixels are multiplied by (1/16 takes the digits' 0 to 16 to 0 to 1).
        filters: filters of the first Conv2D; the second has twice as many.
        dropout: the dropout rate before the output layer.
        api: the Keras API the model is assembled with: ``sequential`` or ``functional``.
    """
    layers = [
        keras.layers.Rescaling(rescale),
        keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(filters * 2, 3, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dropout(dropout),
        *_output(input_spec),
    ]
    return _assemble(layers, input_shape=input_spec.feature_shape, api=api, name="digits_cnn")


@register_builder("mnist_mlp")
def build_mnist_mlp(
    *,
    input_spec: InputSpec,
    rescale: float = 1.0 / 255.0,
    units: int = 128,
    dropout: float = 0.5,
    api: Api = "sequential",
) -> keras.Model:
    """The guide's MNIST MLP: Dense(128, relu) -> Dropout(0.5) -> Dense(10, softmax).

    Args:
        input_spec: the data's shapes, classes and task (models/input_spec.py).
        rescale: the factor pixels are multiplied by (1/255 takes 0 to 255 to 0 to 1).
        units: units of the hidden Dense layer.
        dropout: the dropout rate after it.
        api: the Keras API the model is assembled with: ``sequential`` or ``functional``.
    """
    layers = [
        keras.layers.Rescaling(rescale),
        keras.layers.Flatten(),
        keras.layers.Dense(units, activation="relu"),
        keras.layers.Dropout(dropout),
        *_output(input_spec),
    ]
    return _assemble(layers, input_shape=input_spec.feature_shape, api=api, name="mnist_mlp")


@register_builder("cifar10_cnn")
def build_cifar10_cnn(*, input_spec: InputSpec, rescale: float = 1.0 / 255.0, api: Api = "functional") -> keras.Model:
    """The guide's two-block Conv2D/MaxPooling/Dropout CNN with Dense(512).

    Args:
        input_spec: the data's shapes, classes and task (models/input_spec.py).
        rescale: the factor pixels are multiplied by (1/255 takes 0 to 255 to 0 to 1).
        api: the Keras API the model is assembled with: ``sequential`` or ``functional``.
    """
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
        *_output(input_spec),
    ]
    return _assemble(layers, input_shape=input_spec.feature_shape, api=api, name="cifar10_cnn")


@register_builder("image_cnn")
def build_image_cnn(
    *,
    input_spec: InputSpec,
    rescale: float = 1.0 / 255.0,
    filters: int = 32,
    blocks: int = 3,
    dropout: float = 0.3,
    api: Api = "functional",
) -> keras.Model:
    """A small CNN for images of any size: ``blocks`` x (Conv2D, MaxPooling) -> global average -> output.

    The default for an image folder. Unlike the guide's CIFAR-10 model, whose ``Flatten``
    before ``Dense(512)`` grows with the pixels (126M weights at 256x256), the global
    average keeps its size the same whatever ``data.image_size`` is.

    Args:
        input_spec: the data's shapes, classes and task (models/input_spec.py).
        rescale: the factor pixels are multiplied by (1/255 takes 0 to 255 to 0 to 1).
        filters: filters of the first Conv2D; each block has twice the last one's.
        blocks: how many (Conv2D, MaxPooling2D) blocks there are.
        dropout: the dropout rate before the output layer.
        api: the Keras API the model is assembled with: ``sequential`` or ``functional``.
    """
    layers = [keras.layers.Rescaling(rescale)]
    for block in range(blocks):
        layers += [
            keras.layers.Conv2D(filters * 2**block, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2, padding="same"),
        ]
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dropout(dropout), *_output(input_spec)]
    return _assemble(layers, input_shape=input_spec.feature_shape, api=api, name="image_cnn")


@register_builder("imdb_text")
def build_imdb_text(
    *,
    input_spec: InputSpec,
    max_tokens: int = 10_000,
    units: int = 16,
    dropout: float = 0.5,
) -> keras.Model:
    """A multi-hot bag of the top ``max_tokens`` words into Dense layers, sigmoid output.

    The guide's version divides token ids by the dataset length, which turns word
    identity into a meaningless magnitude; a multi-hot encoding keeps one input per word.
    The vocabulary is learned from the training split: the ``TextVectorization`` is left
    un-adapted and kerasflow adapts it (tasks/train/preprocessing.py).

    For a table (reviews or tickets in CSV or Parquet, a ``text`` column in ``data.columns``)
    the text is already encoded in front of the model, by the column's ``output_mode`` and
    ``max_tokens`` (models/text_columns.py), so the same Dense layers take the table's encoded
    columns and ``max_tokens`` here is not used.

    Args:
        input_spec: the data's shapes, classes and task (models/input_spec.py).
        max_tokens: the vocabulary's size, and the width of the multi-hot encoding (text, not a table).
        units: units of each of the two hidden Dense layers.
        dropout: the dropout rate between them.
    """
    if input_spec.column_types is not None:  # a table: its columns arrive encoded, the text a bag of words
        inputs = keras.Input(shape=tuple(input_spec.feature_shape))
        x = inputs
    else:
        # pad_to_max_tokens: the multi-hot width is known before the vocabulary is, so Dense can be built.
        vectorize = keras.layers.TextVectorization(
            max_tokens=max_tokens, output_mode="multi_hot", pad_to_max_tokens=True
        )
        inputs = keras.Input(shape=tuple(input_spec.feature_shape), dtype="string", name="text")
        x = vectorize(inputs)
    x = keras.layers.Dense(units, activation="relu")(x)
    x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Dense(units, activation="relu")(x)
    for layer in _output(input_spec):
        x = layer(x)
    return keras.Model(inputs, x, name="imdb_text")


@register_builder("tabular_mlp")
def build_tabular_mlp(
    *, input_spec: InputSpec, units: int = 64, layers: int = 2, dropout: float = 0.1, api: Api = "functional"
) -> keras.Model:
    """A table's multilayer perceptron for any task: ``layers`` x (Dense, Dropout) -> output.

    It receives the table's encoded columns (numbers normalized, categories one-hot; see
    kerasflow/models/column_types.py), which kerasflow puts in front of it, so the saved
    model scores raw rows; for regression the output is on the target's scale (see ``_output``).

    Args:
        input_spec: the data's shapes, classes and task (models/input_spec.py).
        units: units of each hidden Dense layer.
        layers: how many (Dense, Dropout) pairs there are.
        dropout: the dropout rate after each Dense layer.
        api: the Keras API the model is assembled with: ``sequential`` or ``functional``.
    """
    stack: list = []
    for _ in range(layers):
        stack += [keras.layers.Dense(units, activation="relu"), keras.layers.Dropout(dropout)]
    return _assemble([*stack, *_output(input_spec)], input_shape=input_spec.feature_shape, api=api, name="tabular_mlp")


@register_builder("fraud_tabular")
def build_fraud_tabular(
    *, input_spec: InputSpec, units: int = 64, dropout: float = 0.5, api: Api = "functional"
) -> keras.Model:
    """The guide's user-behaviour / fraud classifier: Dense(64) -> Dropout(0.5) -> Dense(1).

    The guide standardizes the features before training; here the table's encoding does
    (kerasflow/models/column_types.py: numbers normalized with the training split's mean
    and deviation, categories one-hot), inside the saved model, so it scores raw rows.

    Args:
        input_spec: the data's shapes, classes and task (models/input_spec.py).
        units: units of the hidden Dense layer.
        dropout: the dropout rate after it.
        api: the Keras API the model is assembled with: ``sequential`` or ``functional``.
    """
    layers = [
        keras.layers.Dense(units, activation="relu"),
        keras.layers.Dropout(dropout),
        *_output(input_spec),
    ]
    return _assemble(layers, input_shape=input_spec.feature_shape, api=api, name="fraud_tabular")


def _output(spec: InputSpec) -> list[keras.layers.Layer]:
    """The output the task asks for (softmax over the classes, a sigmoid, a number), on the target's scale.

    A regression target far from 0 and 1 (a price, a dose) is learnt in standard units
    and rescaled by the training split's mean and deviation inside the model, so the
    saved model predicts in the target's own units and training starts at its mean.
    """
    layers = [keras.layers.Dense(spec.num_outputs, activation=spec.output_activation)]
    if spec.target_std is not None and spec.target_mean is not None:
        layers.append(keras.layers.Rescaling(spec.target_std or 1.0, offset=spec.target_mean, name="target_scale"))
    return layers


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


if set(FAMILIES) - set(BUILDERS):  # the families' names are listed without importing Keras
    raise ImportError(f"models/families.py lists {sorted(FAMILIES)} but the zoo builds {sorted(BUILDERS)}")


def compile_model(
    model: keras.Model,
    *,
    loss: Any,
    metrics: Sequence[Any] = (),
    optimizer: str | keras.optimizers.Optimizer = "adam",
    learning_rate: float = 1e-3,
    jit_compile: bool | str = "auto",
    steps_per_execution: int = 1,
) -> keras.Model:
    """Compile ``model`` with a loss and metrics (the task's defaults come from tasks/learning/learning_tasks.py).

    ``optimizer`` is a Keras optimizer or its name (then at ``learning_rate``);
    ``steps_per_execution`` training steps run per call into TensorFlow. One place,
    so single-host ``fit`` and the multi-worker loop compile the same way.

    Args:
        model: the Keras model, compiled in place.
        loss: a Keras loss, its name, or a loss function.
        metrics: Keras metrics or their names.
        optimizer: a Keras optimizer, or the name of one, built at ``learning_rate``.
        learning_rate: the learning rate of an optimizer given by name; unused otherwise.
        jit_compile: ``Model.compile``'s: True, False or ``"auto"``.
        steps_per_execution: training steps per call into TensorFlow.

    Returns:
        ``model``.
    """
    if isinstance(optimizer, str):
        optimizer = keras.optimizers.get({"class_name": optimizer, "config": {"learning_rate": learning_rate}})
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=list(metrics),
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model
