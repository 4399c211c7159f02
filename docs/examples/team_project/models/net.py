"""The team's own digits model: a builder and a custom layer, registered under this package's name."""

import keras


@keras.saving.register_keras_serializable(package="models")
class ScaledResidual(keras.layers.Layer):
    """x + scale * relu(W x): a residual block with a learned scale."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = keras.layers.Dense(units, activation="relu")

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.scale = self.add_weight(shape=(), initializer="zeros", name="scale")

    def call(self, x):
        return x + self.scale * self.dense(x)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def build(*, input_spec, filters: int = 16, dropout: float = 0.3) -> keras.Model:
    """kerasflow calls this with the input spec of the data (8x8x1 digits, ten classes)."""
    inputs = keras.Input(shape=input_spec.feature_shape)
    x = keras.layers.Rescaling(1.0 / 16.0)(inputs)
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    x = ScaledResidual(64)(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(input_spec.num_outputs, activation=input_spec.output_activation)(x)  # softmax here
    return keras.Model(inputs, outputs, name="team_digits")
