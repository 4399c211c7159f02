"""The digits job written the Keras guide's way, with no kerasflow: the benchmark baseline.

Same data, split, model, optimizer, batch size and epochs as `kerasflow train` on the
digits recipe with early stopping off: load, fit, evaluate, save.

    python bench/plain_keras_digits.py EPOCHS SPLIT.npz

SPLIT.npz holds the row indices of kerasflow's own split of digits (``train``,
``validation``, ``test``; bench/overhead.py writes it), so that both sides train and
evaluate on the same rows without this script importing kerasflow or Prefect.
"""

import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from sklearn.datasets import load_digits

if len(sys.argv) != 3:
    sys.exit(__doc__)
epochs = int(sys.argv[1])
keras.utils.set_random_seed(0)
digits = load_digits()
x = digits.images.astype("float32")[..., None]
y = digits.target.astype("int64")
split = np.load(sys.argv[2])
train, val, test = split["train"], split["validation"], split["test"]

model = keras.Sequential(
    [
        keras.Input((8, 8, 1)),
        keras.layers.Rescaling(1 / 16),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(10, activation="softmax"),
    ]
)
model.compile(optimizer=keras.optimizers.Adam(0.002), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x[train], y[train], batch_size=32, epochs=epochs, validation_data=(x[val], y[val]), verbose=0)
loss, accuracy = model.evaluate(x[test], y[test], verbose=0)
model.save(os.path.join(tempfile.mkdtemp(), "model.keras"))
print(f"plain keras: test accuracy {accuracy:.4f}")
