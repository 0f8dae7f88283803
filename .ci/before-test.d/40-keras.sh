# Keras 3 with the JAX CPU backend for the Keras round-trip tests (test/src/keras/, issue 24): a
# virtual environment of its own (so nothing else's Python packages change) at
# $METALOOP_KERAS_VENV (default ~/.cache/metaloop/keras-venv), the versions pinned in
# test/python/requirements.txt. Kept when it already holds exactly those versions.
set -euo pipefail
VENV=${METALOOP_KERAS_VENV:-$HOME/.cache/metaloop/keras-venv}
REQ=test/python/requirements.txt
PY=${PYTHON:-python3}
want=$(grep -vE '^\s*(#|$)' "$REQ" | tr '[:upper:]_' '[:lower:]-' | sort)
have=$([ -x "$VENV/bin/pip" ] && "$VENV/bin/pip" freeze --disable-pip-version-check 2>/dev/null | tr '[:upper:]_' '[:lower:]-' | sort || true)
start=$SECONDS
if [ "$want" != "$have" ]; then
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$REQ"
  echo "installed $REQ into $VENV in $((SECONDS - start)) s"
else
  echo "$VENV already holds $REQ"
fi
KERAS_BACKEND=jax "$VENV/bin/python" -c 'import keras, jax, h5py; print("keras", keras.__version__, "backend", keras.backend.backend(), "jax", jax.__version__, "h5py", h5py.__version__)'
