"""Every zoo builder: build, one training step, save and load back in safe mode."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasflow.models import io, zoo

rng = np.random.default_rng(0)

CASES = {
    "digits_cnn": (lambda: zoo.build_digits_cnn(), lambda n: rng.uniform(0, 16, (n, 8, 8, 1)), 10),
    "mnist_mlp": (lambda: zoo.build_mnist_mlp(), lambda n: rng.integers(0, 255, (n, 28, 28, 1)), 10),
    "cifar10_cnn": (lambda: zoo.build_cifar10_cnn(), lambda n: rng.integers(0, 255, (n, 32, 32, 3)), 10),
    "fraud_tabular": (
        lambda: zoo.build_fraud_tabular(num_features=5, mean=[0.0] * 5, variance=[1.0] * 5),
        lambda n: rng.normal(size=(n, 5)),
        2,
    ),
    "imdb_text": (
        lambda: zoo.build_imdb_text(vocabulary=zoo.text_vocabulary(np.array(["good film", "bad film", "great"]))),
        # Strings reach the model as tf.string tensors, as the tf.data pipeline feeds them.
        lambda n: tf.constant(["a good film", "bad", "great great film", "terrible"] * (n // 4)),
        2,
    ),
}


@pytest.mark.parametrize("family", sorted(CASES))
def test_build_train_save_load(family, tmp_path):
    build, make_x, num_classes = CASES[family]
    model = zoo.compile_model(build(), num_classes=num_classes)
    x = make_x(8)
    y = rng.integers(0, num_classes, (8,))
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"])
    expected = model.predict(x, verbose=0)
    sha = io.save_model(model, tmp_path / "m.keras")
    loaded = io.load_model(tmp_path / "m.keras", expected_sha256=sha)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    width = 1 if num_classes == 2 else num_classes
    assert expected.shape == (8, width)


def test_sequential_and_functional_build_the_same_stack():
    seq = zoo.build_mnist_mlp(api="sequential")
    fun = zoo.build_mnist_mlp(api="functional")
    assert isinstance(seq, keras.Sequential) and not isinstance(fun, keras.Sequential)
    assert [type(layer).__name__ for layer in seq.layers] == [type(layer).__name__ for layer in fun.layers[1:]]
    assert seq.count_params() == fun.count_params() == 784 * 128 + 128 + 128 * 10 + 10


def test_guide_architectures():
    mlp = zoo.build_mnist_mlp()
    assert [type(layer).__name__ for layer in mlp.layers] == ["Rescaling", "Flatten", "Dense", "Dropout", "Dense"]
    cnn = zoo.build_cifar10_cnn()
    names = [type(layer).__name__ for layer in cnn.layers]
    assert names.count("Conv2D") == 4 and names.count("MaxPooling2D") == 2
    assert any(type(layer).__name__ == "Dense" and layer.units == 512 for layer in cnn.layers)
    fraud = zoo.build_fraud_tabular(num_features=4)
    assert [layer.units for layer in fraud.layers if type(layer).__name__ == "Dense"] == [64, 1]


def test_text_model_uses_word_identity_not_id_magnitude():
    vocab = zoo.text_vocabulary(np.array(["alpha beta", "gamma"]))
    model = zoo.build_imdb_text(vocabulary=vocab)
    vectorize = next(layer for layer in model.layers if isinstance(layer, keras.layers.TextVectorization))
    encoded = np.asarray(vectorize(tf.constant(["gamma alpha"])))
    assert set(np.unique(encoded)) <= {0.0, 1.0}, "multi-hot, not scaled token ids"


def test_unknown_family_and_api():
    with pytest.raises(ValueError, match="expected one of"):
        zoo.build("nope")
    with pytest.raises(ValueError, match="expected 'sequential' or 'functional'"):
        zoo.build_digits_cnn(api="subclass")


def test_safe_mode_refuses_a_lambda_layer(tmp_path):
    inputs = keras.Input((2,))
    outputs = keras.layers.Lambda(lambda t: t * 2)(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ValueError, match=r"(?i)unsafe|safe_mode|lambda"):
        io.load_model(path)
