"""Keras 3 side of Metaloop's round-trip tests (test/src/keras/): load a .keras file and answer one
request, a JSON file named by the first argument, as JSON on stdout (arrays: little-endian
float32, base64).

    {"model": "m.keras", "x": {"shape": [N, ...], "data": "<b64>"}, "want": ["predict", "training", "weights"]}

predict:  model.predict(x)          inference: batch norm uses its moving statistics
training: model(x, training=True)   batch norm uses the batch's statistics (MAML's transductive BN)
weights:  every layer's variables in Keras' order {layer name: [{shape, data}, ...]}

Needs `pip install keras h5py jax` (the JAX CPU backend: KERAS_BACKEND=jax); see
.ci/before-test.d/40-keras.sh and test/python/requirements.txt.
"""
import base64
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import keras  # noqa: E402


def encode(a) -> dict:
    a = np.asarray(a, dtype="<f4")
    return {"shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


def decode(d: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(d["data"]), dtype="<f4").reshape(d["shape"])


def main() -> None:
    with open(sys.argv[1]) as f:
        req = json.load(f)
    model = keras.saving.load_model(req["model"])
    out = {"keras": keras.__version__, "backend": keras.backend.backend()}
    want = req.get("want", ["predict"])
    if "x" in req:
        x = decode(req["x"])
        if "predict" in want:
            out["predict"] = encode(model.predict(x, verbose=0, batch_size=len(x)))
        if "training" in want:
            out["training"] = encode(keras.ops.convert_to_numpy(model(x, training=True)))
    if "weights" in want:
        out["weights"] = {l.name: [encode(keras.ops.convert_to_numpy(v)) for v in l.weights] for l in model.layers if l.weights}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
