"""Build a small residual conv net with Keras 3 and save it as a .keras file for Metaloop.

    pip install keras==3.15.1 jax[cpu]==0.10.2 h5py==3.16.0   # any Keras 3 backend will do
    KERAS_BACKEND=jax python examples/keras/make_model.py --out examples/keras/model.keras

The model takes the task's images (NHWC) and gives one logit per class: conv-BN-ReLU, a residual
block of two conv-BN with an identity shortcut, 2x2 max-pooling, global average pooling, a Dense
head. `examples/keras/spec.yaml` meta-trains it (kind: keras, init: weights: θ₀ = these weights).
"""
import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
from keras import layers  # noqa: E402


def residual_model(image_size: int, channels: int, classes: int, filters: int) -> keras.Model:
    inp = keras.Input((image_size, image_size, channels), name="image")
    x = layers.Conv2D(filters, 3, padding="same", name="conv0")(inp)
    x = layers.BatchNormalization(name="bn0")(x)
    x = layers.ReLU(name="relu0")(x)
    y = layers.Conv2D(filters, 3, padding="same", name="conv1")(x)
    y = layers.BatchNormalization(name="bn1")(y)
    y = layers.ReLU(name="relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name="conv2")(y)
    y = layers.BatchNormalization(name="bn2")(y)
    x = layers.Add(name="join")([x, y])
    x = layers.ReLU(name="relu2")(x)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    out = layers.Dense(classes, name="head")(x)
    return keras.Model(inp, out, name="residual")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="model.keras")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--classes", type=int, default=5)
    p.add_argument("--filters", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    keras.utils.set_random_seed(a.seed)
    model = residual_model(a.image_size, a.channels, a.classes, a.filters)
    model.save(a.out)
    print(f"saved {a.out}: {model.count_params()} parameters, Keras {keras.__version__} ({keras.backend.backend()})")


if __name__ == "__main__":
    main()
