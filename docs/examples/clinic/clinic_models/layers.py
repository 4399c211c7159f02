"""A custom layer, registered with Keras so a saved model names it as ``clinic_models>GatedResidual``."""

import keras


@keras.saving.register_keras_serializable(package="clinic_models")
class GatedResidual(keras.layers.Layer):
    """x + sigmoid(W_g x) * relu(W_h x): a gated residual block for tabular features."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.project = keras.layers.Dense(units)
        self.hidden = keras.layers.Dense(units, activation="relu")
        self.gate = keras.layers.Dense(units, activation="sigmoid")

    def build(self, input_shape):
        for layer in (self.project, self.hidden, self.gate):
            layer.build(input_shape)

    def call(self, x):
        return self.project(x) + self.gate(x) * self.hidden(x)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}
