"""The names of the model families the zoo builds, without importing Keras.

The config validates ``model.family`` against these, so commands that only read a
recipe (``kerasflow k8s render``, a refused config) do not pay Keras's import.
``models/zoo.py`` maps each name to its builder and checks it has exactly these.
"""

FAMILIES = ("cifar10_cnn", "digits_cnn", "fraud_tabular", "image_cnn", "imdb_text", "mnist_mlp", "tabular_mlp")
