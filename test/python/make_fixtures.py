"""Write the small Keras 3 files the CLI's unit tests read (cli/src/keras/testdata/), with Keras
3.15.1 on the JAX backend (test/python/requirements.txt):

    KERAS_BACKEND=jax ~/.cache/metaloop/keras-venv/bin/python test/python/make_fixtures.py

residual.keras    examples/keras/make_model.py's model at 8x8x1, 2 filters, 3 classes, seed 0
sequential.keras  a Sequential MLP: Dense(5, relu), Dropout, Dense(2), on inputs of 6
"""
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
from keras import layers  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "keras"))
from make_model import residual_model  # noqa: E402

out = os.path.join(os.path.dirname(__file__), "..", "..", "cli", "src", "keras", "testdata")
os.makedirs(out, exist_ok=True)
keras.utils.set_random_seed(0)
residual_model(8, 1, 3, 2).save(os.path.join(out, "residual.keras"))
keras.utils.set_random_seed(1)
keras.Sequential([keras.Input((6,)), layers.Dense(5, activation="relu"), layers.Dropout(0.5), layers.Dense(2)], name="mlp").save(os.path.join(out, "sequential.keras"))
print("wrote", out)
