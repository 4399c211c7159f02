"""The upstream bugs kerasflow works around, reproduced with plain Keras in a process of their own.

Run as ``python -m tests.models.upstream_cases``; prints one JSON object: for each case,
``"trained"`` or the error Keras raised. A process of its own: a collective that aborts
leaves TensorFlow's collective state unusable ("Restart your program to reset").
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402

from kerasflow.models import private_apis  # noqa: E402

DEVICES = ["/cpu:0", "/cpu:1"]


def _outcome(fit) -> str:
    try:
        fit()
    except Exception as error:  # noqa: BLE001 - the error is the finding
        return f"{type(error).__name__}: {error}"[:500]
    return "trained"


def _string_model():
    inputs = keras.Input(shape=(1,), dtype="string")
    encoded = keras.layers.StringLookup(vocabulary=["a", "b"], output_mode="one_hot")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(encoded)))
    model.compile(optimizer="sgd", loss="mse")
    return model


def _strings() -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices((tf.constant([["a"], ["b"]] * 8), tf.zeros((16, 1)))).batch(4)


def string_inputs(workaround: bool) -> str:
    """``fit`` under two replicas on a string input, with or without build_before_fit."""
    with private_apis.mirrored_strategy(DEVICES).scope():
        model = _string_model()
    if workaround:
        private_apis.build_before_fit(model, _strings().element_spec)
    return _outcome(lambda: model.fit(_strings(), epochs=1, verbose=0))


def two_strategies(make_strategy) -> list[str]:
    """Two models of different sizes, each under a MirroredStrategy of its own, one after the other."""
    outcomes = []
    for units in (3, 7):
        with make_strategy(DEVICES).scope():
            inputs = keras.Input(shape=(units,))
            model = keras.Model(inputs, keras.layers.Dense(units)(inputs))
            model.compile(optimizer="sgd", loss="mse")
        x, y = tf.random.normal((16, units)), tf.random.normal((16, units))
        outcomes.append(_outcome(lambda: model.fit(x, y, batch_size=4, epochs=1, verbose=0)))  # noqa: B023
    return outcomes


if __name__ == "__main__":
    # The workaround's cases first: the plain second strategy below aborts the collectives.
    print(
        json.dumps(
            {
                "strings_with_workaround": string_inputs(workaround=True),
                "strings_plain": string_inputs(workaround=False),
                "two_strategies_with_workaround": two_strategies(private_apis.mirrored_strategy),
                "two_strategies_plain": two_strategies(tf.distribute.MirroredStrategy),
            }
        )
    )
