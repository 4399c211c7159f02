"""The team's builder: kerasflow calls ``build(input_spec=..., **model.params)``."""

import keras

from clinic_models.layers import GatedResidual


def build(*, input_spec, units: int = 32, dropout: float = 0.2) -> keras.Model:
    """Normalization (adapted by kerasflow on the training split) -> GatedResidual -> sigmoid.

    The input spec says what the data is: ``feature_shape`` (the table's 30 columns,
    encoded by kerasflow: ``input_spec.columns`` names each entry, ``input_spec.column_types``
    the raw columns) and the task. The saved model takes the raw columns.
    """
    inputs = keras.Input(shape=input_spec.feature_shape, name="features")
    x = keras.layers.Normalization()(inputs)
    x = GatedResidual(units)(x)
    x = keras.layers.Dropout(dropout)(x)
    # The task says what the output is: one sigmoid for this binary screening.
    outputs = keras.layers.Dense(input_spec.num_outputs, activation=input_spec.output_activation)(x)
    return keras.Model(inputs, outputs, name="clinic_screening")
