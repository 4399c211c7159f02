"""Every zoo builder: build, one training step, save and load back in safe mode."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasflow.models import builders, io, zoo
from kerasflow.models.input_spec import InputSpec
from kerasflow.tasks.learning.learning_tasks import TASKS
from kerasflow.tasks.train.build import make_input_spec, needs_adapting

rng = np.random.default_rng(0)


def spec(shape, classes=10, dtype="float32", task=None, target_stats=None) -> InputSpec:
    names = tuple(str(i) for i in range(classes))
    chosen = TASKS[task or ("binary" if classes == 2 else "multiclass")]
    return make_input_spec(
        feature_shape=shape, feature_dtype=dtype, class_names=names, task=chosen, target_stats=target_stats
    )


def compiled(model, input_spec: InputSpec):
    """Compiled with the task's default loss and metrics, as training compiles it."""
    loss, metrics = TASKS[input_spec.task].training_objects(
        label_smoothing=0.0, one_hot=False, output_width=int(model.output_shape[-1])
    )
    return zoo.compile_model(model, loss=loss, metrics=metrics)


def adapted(model, x):
    """The model with its un-adapted preprocessing adapted to ``x``, as training does."""
    for layer in model.layers:
        if needs_adapting(layer):
            layer.adapt(x)
    return model


TEXTS = ["a good film", "bad", "great great film", "terrible"]
CASES = {
    "digits_cnn": (spec((8, 8, 1)), lambda n: rng.uniform(0, 16, (n, 8, 8, 1))),
    "mnist_mlp": (spec((28, 28, 1)), lambda n: rng.integers(0, 255, (n, 28, 28, 1))),
    "cifar10_cnn": (spec((32, 32, 3)), lambda n: rng.integers(0, 255, (n, 32, 32, 3))),
    "image_cnn": (spec((40, 30, 3), classes=3), lambda n: rng.integers(0, 255, (n, 40, 30, 3))),
    "fraud_tabular": (spec((5,), classes=2), lambda n: rng.normal(size=(n, 5))),
    "tabular_mlp": (spec((5,), classes=3), lambda n: rng.normal(size=(n, 5))),
    # Strings reach the model as tf.string tensors, as the tf.data pipeline feeds them.
    "imdb_text": (spec((), classes=2, dtype="string"), lambda n: tf.constant(TEXTS * (n // 4))),
}


@pytest.mark.parametrize("family", sorted(CASES))
def test_build_train_save_load(family, tmp_path):
    input_spec, make_x = CASES[family]
    num_classes = input_spec.num_classes
    x = make_x(8)
    model = compiled(adapted(builders.resolve(family)(input_spec=input_spec), x), input_spec)
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
    seq = zoo.build_mnist_mlp(input_spec=spec((28, 28, 1)), api="sequential")
    fun = zoo.build_mnist_mlp(input_spec=spec((28, 28, 1)), api="functional")
    assert isinstance(seq, keras.Sequential) and not isinstance(fun, keras.Sequential)
    assert [type(layer).__name__ for layer in seq.layers] == [type(layer).__name__ for layer in fun.layers[1:]]
    assert seq.count_params() == fun.count_params() == 784 * 128 + 128 + 128 * 10 + 10


def test_guide_architectures():
    mlp = zoo.build_mnist_mlp(input_spec=spec((28, 28, 1)))
    assert [type(layer).__name__ for layer in mlp.layers] == ["Rescaling", "Flatten", "Dense", "Dropout", "Dense"]
    cnn = zoo.build_cifar10_cnn(input_spec=spec((32, 32, 3)))
    names = [type(layer).__name__ for layer in cnn.layers]
    assert names.count("Conv2D") == 4 and names.count("MaxPooling2D") == 2
    assert any(type(layer).__name__ == "Dense" and layer.units == 512 for layer in cnn.layers)
    fraud = zoo.build_fraud_tabular(input_spec=spec((4,), classes=2))
    assert [layer.units for layer in fraud.layers if type(layer).__name__ == "Dense"] == [64, 1]


def test_text_model_uses_word_identity_not_id_magnitude():
    model = zoo.build_imdb_text(input_spec=spec((), classes=2, dtype="string"))
    vectorize = next(layer for layer in model.layers if isinstance(layer, keras.layers.TextVectorization))
    vectorize.adapt(np.array(["alpha beta", "gamma"]))
    encoded = np.asarray(vectorize(tf.constant(["gamma alpha"])))
    assert set(np.unique(encoded)) <= {0.0, 1.0}, "multi-hot, not scaled token ids"


def test_unknown_family_and_api():
    with pytest.raises(builders.BuilderError, match=r"expected one of .*'digits_cnn'"):
        builders.resolve("nope")
    with pytest.raises(ValueError, match="expected 'sequential' or 'functional'"):
        zoo.build_digits_cnn(input_spec=spec((8, 8, 1)), api="subclass")


def test_safe_mode_refuses_a_lambda_layer(tmp_path):
    inputs = keras.Input((2,))
    outputs = keras.layers.Lambda(lambda t: t * 2)(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ValueError, match=r"(?i)unsafe|safe_mode|lambda"):
        io.load_model(path)


def test_the_default_image_cnn_keeps_its_size_whatever_the_images_size():
    # The guide's CIFAR-10 model flattens its feature maps: 126M weights at data.image_size's default 256x256.
    small = builders.resolve("image_cnn")(input_spec=spec((32, 32, 3), classes=5))
    large = builders.resolve("image_cnn")(input_spec=spec((256, 256, 3), classes=5))
    grayscale = builders.resolve("image_cnn")(input_spec=spec((300, 17, 1), classes=5))
    assert small.count_params() == large.count_params() < 100_000
    assert grayscale.output_shape == (None, 5)
