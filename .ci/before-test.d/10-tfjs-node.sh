# Build @tensorflow/tfjs-node against the TensorFlow C library of PyPI's tensorflow wheel
# (issue 10), so the tests also run on the `tensorflow` backend users run in production.
# Must run after `npm ci` (which removes the addon).
bash scripts/tfjs-node-from-wheel.sh
