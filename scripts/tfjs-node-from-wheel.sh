#!/usr/bin/env bash
# Builds @tensorflow/tfjs-node 4.22 (the `tensorflow` backend) against the TensorFlow C
# library shipped in PyPI's `tensorflow` wheel, for machines that cannot reach the
# hosts tfjs-node's installer normally downloads from. See docs/tfjs-node-from-wheel.md.
#
# usage: scripts/tfjs-node-from-wheel.sh [--force] [--ops] [--check] [--diagnose]
#   (no flag)   make node_modules/@tensorflow/tfjs-node load with backend 'tensorflow'
#               (idempotent: a second run only re-checks it), then check it
#   --force     rebuild the addon even if the current one passes the check
#   --ops       also compare conv2d / Conv2DBackpropFilter / maxPool (+grad) / nested
#               grads against the cpu backend and list kernels (MaxPoolWithArgmax, ...)
#   --check     only run the check (exit 1 if tfjs-node does not load)
#   --diagnose  install the wheel and report C API symbols and ABI needs; build nothing
#
# Run it AFTER `npm ci` (npm ci deletes node_modules, and with it the addon).
# Environment: METALOOP_CACHE (default ~/.cache/metaloop), METALOOP_TF_VERSION (default: the
# tensorflow pin of scripts/gpu-runtime/requirements.txt, the GPU image's), PYTHON (default python3),
# TF_CPP_MIN_LOG_LEVEL (check default 2), METALOOP_TF_SITE (build against the tensorflow wheel
# already installed in that pip --target prefix, e.g. by scripts/gpu-runtime/install.sh, instead
# of installing one into the cache: the GPU image and scripts/assemble-gpu-runtime.sh use it).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE="$ROOT/scripts/tfjs-node"
TF_VERSION=${METALOOP_TF_VERSION:-$(sed -n 's/^tensorflow==//p' "$ROOT/scripts/gpu-runtime/requirements.txt")}
[ -n "$TF_VERSION" ] || { echo "[tfjs-node-from-wheel] ERROR: no tensorflow==<version> line in scripts/gpu-runtime/requirements.txt (or set METALOOP_TF_VERSION)" >&2; exit 1; }
CACHE=${METALOOP_CACHE:-$HOME/.cache/metaloop}
BASE="$CACHE/tf-wheel/$TF_VERSION"
SITE=${METALOOP_TF_SITE:-$BASE/site}   # pip install --target (the wheel, no Python deps)
LAYOUT="$BASE/libtensorflow"       # lib/ + include/ the way libtensorflow tarballs are
TARBALL="$BASE/libtensorflow-wheel-$TF_VERSION-linux-x86_64.tar.gz"
LOGS="$CACHE/tf-wheel/logs"
PY=${PYTHON:-python3}
PKG="$ROOT/node_modules/@tensorflow/tfjs-node"
GPU_PKG="$ROOT/node_modules/@tensorflow/tfjs-node-gpu"
STAMP="$PKG/deps/.metaloop-tf-wheel"

MODE=build FORCE=0 OPS=()
for a in "$@"; do
  case "$a" in
    --force) FORCE=1 ;;
    --ops) OPS=(--ops) ;;
    --check) MODE=check ;;
    --diagnose) MODE=diagnose ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $a (see --help)" >&2; exit 2 ;;
  esac
done

T0=$SECONDS
log() { echo "[tfjs-node-from-wheel +$((SECONDS - T0))s] $*" >&2; }
die() { echo "[tfjs-node-from-wheel] ERROR: $*" >&2; exit 1; }
tail_log() { echo "----- last lines of $1 -----" >&2; tail -n "${2:-25}" "$1" >&2 || true; echo "-----" >&2; }
mkdir -p "$LOGS"

run_check() { TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2} node "$HERE/check.cjs" "$ROOT" "$@"; }

if [ "$MODE" = check ]; then run_check "${OPS[@]}"; exit $?; fi

# ---------------------------------------------------------------- preflight
[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || die "only Linux x86-64 is handled (PyPI's wheel layout differs elsewhere)"
command -v node >/dev/null || die "node not found"
command -v npm >/dev/null || die "npm not found"
"$PY" -m pip --version >/dev/null 2>&1 || die "$PY -m pip does not work: install Python 3 with pip (or set PYTHON=...)"
for t in nm readelf ldd tar; do command -v $t >/dev/null || die "$t not found (apt-get install binutils libc-bin tar)"; done
if [ "$MODE" = build ]; then
  command -v g++ >/dev/null || die "no C++ compiler: node-gyp needs g++ and make (apt-get install g++ make)"
  command -v make >/dev/null || die "make not found: node-gyp needs g++ and make (apt-get install g++ make)"
fi

# Fast path: already built from this wheel and it works.
if [ "$MODE" = build ] && [ "$FORCE" = 0 ] && [ -f "$STAMP" ] && grep -qx "tf=$TF_VERSION" "$STAMP" && grep -qx "site=$SITE" "$STAMP"; then
  if run_check "${OPS[@]}"; then log "already built against tensorflow $TF_VERSION; nothing to do"; exit 0; fi
  log "existing build fails the check; rebuilding"
fi

# ---------------------------------------------------------------- 1. the wheel
if [ -n "${METALOOP_TF_SITE:-}" ]; then
  [ -d "$SITE"/tensorflow-"$TF_VERSION".dist-info ] || die "METALOOP_TF_SITE=$SITE holds no tensorflow $TF_VERSION (found: $(cd "$SITE" 2>/dev/null && ls -d tensorflow-*.dist-info 2>/dev/null || echo nothing)); install it with scripts/gpu-runtime/install.sh $SITE"
  log "using the tensorflow $TF_VERSION wheel installed in $SITE (METALOOP_TF_SITE)"
elif [ -f "$SITE/.metaloop-complete" ]; then
  log "reusing tensorflow $TF_VERSION wheel in $SITE"
else
  log "pip install tensorflow==$TF_VERSION (no deps; ~570 MB download, ~2 GB unpacked) into $SITE"
  rm -rf "$SITE.partial"
  if ! "$PY" -m pip install --no-deps --no-compile --only-binary=:all: --disable-pip-version-check \
      --target "$SITE.partial" "tensorflow==$TF_VERSION" > "$LOGS/pip-$TF_VERSION.log" 2>&1; then
    tail_log "$LOGS/pip-$TF_VERSION.log"
    rm -rf "$SITE.partial"
    if grep -qiE 'No matching distribution|Could not find a version' "$LOGS/pip-$TF_VERSION.log"; then
      die "PyPI has no tensorflow==$TF_VERSION wheel for $("$PY" -V) on this platform; $("$PY" -m pip index versions tensorflow 2>/dev/null | grep -i available || echo "versions: ?"). Set METALOOP_TF_VERSION or PYTHON."
    fi
    die "pip could not install tensorflow==$TF_VERSION: PyPI unreachable? (see $LOGS/pip-$TF_VERSION.log)"
  fi
  mv "$SITE.partial" "$SITE"
  touch "$SITE/.metaloop-complete"
fi

# ---------------------------------------------------------------- 2. libtensorflow layout
TFDIR="$SITE/tensorflow"
CC_LIB="$TFDIR/libtensorflow_cc.so.2"
FW_LIB="$TFDIR/libtensorflow_framework.so.2"
INC="$TFDIR/include"
[ -f "$CC_LIB" ] || die "wheel has no tensorflow/libtensorflow_cc.so.2 (found: $(cd "$TFDIR" && ls ./*.so* 2>/dev/null | tr '\n' ' '))"
[ -f "$FW_LIB" ] || die "wheel has no tensorflow/libtensorflow_framework.so.2"
[ -f "$INC/tensorflow/c/c_api.h" ] && [ -f "$INC/tensorflow/c/eager/c_api.h" ] || die "wheel has no C API headers under $INC/tensorflow/c"

# Symlinks, not copies (the libraries are ~1.3 GB): the addon's rpath points at
# node_modules/@tensorflow/tfjs-node/deps/lib, whose entries point here.
rm -rf "$LAYOUT"; mkdir -p "$LAYOUT/lib"
for n in libtensorflow_cc.so.2 libtensorflow.so.2 libtensorflow.so; do ln -s "$CC_LIB" "$LAYOUT/lib/$n"; done
for n in libtensorflow_framework.so.2 libtensorflow_framework.so; do ln -s "$FW_LIB" "$LAYOUT/lib/$n"; done
ln -s "$INC" "$LAYOUT/include"
tar -czf "$TARBALL" -C "$LAYOUT" lib include
log "laid out $LAYOUT (lib/ and include/ are symlinks into the wheel)"

# ---------------------------------------------------------------- 3. the npm package (no scripts)
if [ ! -f "$PKG/package.json" ]; then
  gpu_before=0; [ -e "$GPU_PKG" ] && gpu_before=1
  log "npm install --no-save --ignore-scripts (puts back tfjs-node, whose install failed under npm ci)"
  if ! (cd "$ROOT" && npm install --no-save --ignore-scripts --no-audit --no-fund) > "$LOGS/npm-install.log" 2>&1; then
    tail_log "$LOGS/npm-install.log"; die "npm install failed (npm registry unreachable?)"
  fi
  [ -f "$PKG/package.json" ] || die "npm install did not put @tensorflow/tfjs-node in $ROOT/node_modules (is it still an optionalDependency of worker/?)"
  if [ "$gpu_before" = 0 ] && [ -e "$GPU_PKG" ] && ! ls "$GPU_PKG"/lib/napi-v*/tfjs_binding.node >/dev/null 2>&1; then
    # Same state as after npm ci: a tfjs-node-gpu without its addon would only throw at require.
    rm -rf "$GPU_PKG"
  fi
fi
PKG_VERSION=$(node -p "require('$PKG/package.json').version")
log "@tensorflow/tfjs-node $PKG_VERSION in $PKG"

# ---------------------------------------------------------------- 4. diagnosis: C API symbols and ABI
# Functions the binding calls: TF_/TFE_ identifiers used with "(" in binding/, minus the
# binding's own classes and the static inline TF_TString_* helpers from the headers.
need_syms() {
  grep -ohE '\bTFE?_[A-Za-z0-9_]+[[:space:]]*\(' "$PKG"/binding/*.cc "$PKG"/binding/*.h | sed -E 's/[[:space:](]+$//' | sort -u |
  while read -r s; do
    grep -qE "(class|struct)[[:space:]]+$s\b" "$PKG"/binding/*.h && continue
    grep -rqE "inline[^;]*\b$s[[:space:]]*\(" "$INC/tensorflow/c" "$INC/tensorflow/core/platform" "$INC/tsl/platform" 2>/dev/null && continue
    echo "$s"
  done
}
defined_syms() { nm -D --defined-only "$1" | awk '{print $3}' | sed 's/@.*//' | grep -E '^TFE?_' | sort -u; }
need_syms > "$BASE/needed-symbols.txt"
{ defined_syms "$CC_LIB"; defined_syms "$FW_LIB"; } | sort -u > "$BASE/exported-symbols.txt"
MISSING=$(comm -23 "$BASE/needed-symbols.txt" "$BASE/exported-symbols.txt" | tr '\n' ' ')
log "C API: binding calls $(wc -l < "$BASE/needed-symbols.txt") TF_/TFE_ functions; the wheel's libraries export $(wc -l < "$BASE/exported-symbols.txt") TF_/TFE_ symbols; missing: ${MISSING:-none}"
readelf -V "$CC_LIB" "$FW_LIB" | grep -oE '(GLIBC|GLIBCXX|CXXABI)_[0-9][0-9.]*' | sort -uV > "$BASE/needed-versions.txt"
max_ver() { grep -E "^$1_" "$BASE/needed-versions.txt" | tail -1; }
host_glibc=$(ldd --version 2>&1 | sed -n 1p | grep -oE '[0-9]+\.[0-9]+$')
log "ABI: wheel needs up to $(max_ver GLIBC), $(max_ver GLIBCXX), $(max_ver CXXABI); host glibc $host_glibc"
LDD_PROBLEMS=$(ldd "$LAYOUT/lib/libtensorflow_cc.so.2" 2>&1 | grep -E 'not found' || true)
[ -z "$LDD_PROBLEMS" ] || log "ABI problems (ldd):"$'\n'"$LDD_PROBLEMS"
if [ "$MODE" = diagnose ]; then
  [ -z "$MISSING" ] && [ -z "$LDD_PROBLEMS" ] && log "diagnosis: nothing blocks a build" && exit 0
  die "diagnosis: blocked (see above)"
fi
[ -z "$MISSING" ] || die "tensorflow $TF_VERSION does not export C API functions the tfjs-node $PKG_VERSION binding calls: $MISSING (try METALOOP_TF_VERSION=2.15.1 or see docs/tfjs-node-from-wheel.md)"
[ -z "$LDD_PROBLEMS" ] || die "the wheel's libraries do not load on this system (see ldd output above)"

# ---------------------------------------------------------------- 5. build the addon via tfjs-node's installer
# node-gyp must find Node's headers locally (it would download them otherwise).
NODE_VER=$(node -p process.versions.node)
headers_in() { [ -f "$1/include/node/node_api.h" ] && [ -f "$1/include/node/common.gypi" ]; }
NODEDIR=$(npm config get nodedir 2>/dev/null || true)
if [ -n "$NODEDIR" ] && [ "$NODEDIR" != undefined ] && [ "$NODEDIR" != null ] && headers_in "$NODEDIR"; then
  :
elif headers_in "$HOME/.cache/node-gyp/$NODE_VER"; then
  NODEDIR="$HOME/.cache/node-gyp/$NODE_VER"
else
  NODEDIR=""
  for d in "$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")" /usr /usr/local; do
    if headers_in "$d"; then NODEDIR="$d"; break; fi
  done
  [ -n "$NODEDIR" ] || die "Node.js headers not found (looked for include/node/node_api.h and common.gypi in npm's nodedir, ~/.cache/node-gyp/$NODE_VER, the node prefix, /usr, /usr/local); node-gyp would try to download them. Install the headers of your Node package (e.g. Nodesource's nodejs ships them in /usr/include/node)."
fi
log "node-gyp will use Node headers from $NODEDIR"

PORT_FILE="$BASE/serve.port"; rm -f "$PORT_FILE"
node "$HERE/serve-file.mjs" "$TARBALL" "$PORT_FILE" 900 &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; rm -f "$PKG/scripts/custom-binary.json"' EXIT
for _ in $(seq 50); do [ -s "$PORT_FILE" ] && break; sleep 0.1; done
[ -s "$PORT_FILE" ] || die "loopback file server did not start"
URL="http://127.0.0.1:$(cat "$PORT_FILE")/$(basename "$TARBALL")"
# custom-binary.json with only tf-lib: install.js downloads tf-lib into deps/ and runs
# `node-pre-gyp install --build-from-source` (never fetches a prebuilt addon).
printf '{ "tf-lib": "%s" }\n' "$URL" > "$PKG/scripts/custom-binary.json"
rm -rf "$PKG/deps" "$PKG/lib" "$PKG/build"
log "building the addon: npm rebuild @tensorflow/tfjs-node (tf-lib from $URL)"
if ! (cd "$ROOT" && npm_config_nodedir="$NODEDIR" npm rebuild @tensorflow/tfjs-node --foreground-scripts) > "$LOGS/build.log" 2>&1; then
  tail_log "$LOGS/build.log" 40; die "building the tfjs-node addon failed (full log: $LOGS/build.log)"
fi
ADDON=$(ls "$PKG"/lib/napi-v*/tfjs_binding.node 2>/dev/null | head -1 || true)
if [ -z "$ADDON" ]; then tail_log "$LOGS/build.log" 40; die "build finished but no lib/napi-v*/tfjs_binding.node (full log: $LOGS/build.log)"; fi
# napi_* come from the node executable itself; anything else unresolved is a real problem.
UNRESOLVED=$(ldd -r "$ADDON" 2>&1 | grep -E 'undefined symbol|not found' | grep -v 'undefined symbol: napi_' || true)
[ -z "$UNRESOLVED" ] || { echo "$UNRESOLVED" >&2; die "the addon has unresolved symbols or libraries"; }
printf 'tf=%s\nsite=%s\n' "$TF_VERSION" "$SITE" > "$STAMP"
log "built $ADDON"
kill "$SERVER_PID" 2>/dev/null || true

# ---------------------------------------------------------------- 6. check
run_check "${OPS[@]}"
log "done in $((SECONDS - T0))s"
