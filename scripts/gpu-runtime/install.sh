#!/usr/bin/env bash
# Installs the GPU worker's TensorFlow + CUDA user space into a prefix: the `tensorflow` wheel (its
# libtensorflow_cc / libtensorflow_framework, built with CUDA 12.5.1 for sm_60..sm_90) and the
# nvidia-* CUDA 12 / cuDNN 9 wheels, exactly the versions of requirements.txt beside this script.
# The ONE install step of deploy/docker/worker-gpu.Dockerfile and scripts/assemble-gpu-runtime.sh.
#
#   scripts/gpu-runtime/install.sh <prefix>
#
# Result: <prefix>/tensorflow/*.so.2 (+ include/ for the addon build) and <prefix>/nvidia/<lib>/lib;
# the library directories the image puts on LD_LIBRARY_PATH are <prefix>/nvidia/*/lib. Idempotent:
# a prefix already holding this requirements.txt (by sha256) is reused. Every nvidia pin is checked
# against the ranges the wheel's own METADATA gives for `tensorflow[and-cuda]`.
# Environment: PYTHON (default python3).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REQ="$HERE/requirements.txt"
PY=${PYTHON:-python3}
PREFIX=${1:?usage: install.sh <prefix>}
log() { echo "[gpu-runtime/install +${SECONDS}s] $*" >&2; }
die() { echo "[gpu-runtime/install] ERROR: $*" >&2; exit 1; }

"$PY" -m pip --version >/dev/null 2>&1 || die "$PY -m pip does not work: install Python 3 with pip (or set PYTHON=...)"
KEY=$(sha256sum "$REQ" | cut -c1-16)
if [ -f "$PREFIX/.metaloop-complete" ] && [ "$(cat "$PREFIX/.metaloop-complete")" = "$KEY" ]; then
  log "reusing $PREFIX (requirements $KEY)"
  exit 0
fi
rm -rf "$PREFIX.partial"
log "pip install --no-deps of $(grep -c '==' "$REQ") wheels (tensorflow + CUDA 12; ~3.9 GB download, ~6 GB unpacked) into $PREFIX"
# --no-deps: the C libraries need none of tensorflow's Python dependencies; the CUDA wheels are
# listed explicitly (pip would drop the [and-cuda] extra under --no-deps).
if ! "$PY" -m pip install --no-deps --no-compile --only-binary=:all: --disable-pip-version-check \
    --target "$PREFIX.partial" -r "$REQ" >&2; then
  rm -rf "$PREFIX.partial"
  die "pip install -r $REQ failed (PyPI unreachable, or no wheel of a pinned version for $("$PY" -V) on this platform)"
fi
log "pip done; checking the pins against tensorflow's own [and-cuda] requirements"
"$PY" - "$PREFIX.partial" "$REQ" <<'PYEOF'
import glob, re, sys
from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.version import Version
prefix, req = sys.argv[1], sys.argv[2]
pins = {}
for line in open(req):
    line = line.split('#')[0].strip()
    if line:
        name, ver = line.split('==')
        pins[name.strip().lower().replace('_', '-')] = Version(ver.strip())
meta = glob.glob(f'{prefix}/tensorflow-*.dist-info/METADATA')
if len(meta) != 1: sys.exit(f'no tensorflow METADATA in {prefix}')
problems, checked = [], 0
for line in open(meta[0]):
    if not line.startswith('Requires-Dist:'): continue
    r = Requirement(line.split(':', 1)[1].strip())
    if r.marker is None or 'and-cuda' not in str(r.marker): continue
    name = r.name.lower().replace('_', '-')
    checked += 1
    if name not in pins: problems.append(f'{name}{r.specifier} (tensorflow[and-cuda]) is not pinned in {req}')
    elif pins[name] not in r.specifier: problems.append(f'{name}=={pins[name]} is outside tensorflow\'s range {r.specifier}')
    else: print(f'  {name}=={pins[name]} within {r.specifier}', file=sys.stderr)
if problems: sys.exit('\n'.join(problems))
print(f'  {checked} tensorflow[and-cuda] requirements, all pinned within range', file=sys.stderr)
PYEOF
[ -f "$PREFIX.partial/tensorflow/libtensorflow_cc.so.2" ] || die "the tensorflow wheel has no tensorflow/libtensorflow_cc.so.2"
ls -d "$PREFIX.partial"/nvidia/*/lib >/dev/null 2>&1 || die "no nvidia/*/lib directories after pip install"
rm -rf "$PREFIX"
mv "$PREFIX.partial" "$PREFIX"
echo "$KEY" > "$PREFIX/.metaloop-complete"
log "installed: $(du -sh "$PREFIX/tensorflow" | cut -f1) tensorflow, $(du -sh "$PREFIX/nvidia" | cut -f1) nvidia ($(ls "$PREFIX/nvidia" | grep -v __ | tr '\n' ' '))"
