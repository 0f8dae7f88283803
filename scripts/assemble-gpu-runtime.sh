#!/usr/bin/env bash
# Assembles the runtime tree of deploy/docker/worker-gpu.Dockerfile (default variant) here, without
# Docker, with the image's own steps, and checks it on this GPU-less machine:
#
#   1. TensorFlow + CUDA 12 / cuDNN 9 wheels: scripts/gpu-runtime/install.sh (the image's step) into
#      ${METALOOP_CACHE:-~/.cache/metaloop}/gpu-runtime/site; kept and reused (~3.9 GB download).
#   2. <out>/app: the deps stage (npm ci --omit=dev --ignore-scripts, tfjs-node-from-wheel.sh with
#      METALOOP_TF_SITE) and the build stage's dist/ (turbo build), as the image lays them out;
#      <out>/opt/tensorflow -> the prefix; LD_LIBRARY_PATH = the Dockerfile's CUDA_LIBS, rebased.
#   3. scripts/gpu-runtime/check-libs.sh: ldd of every library + the addon, and libtensorflow's own
#      loader opening the CUDA libraries (TensorFlow's log lines are printed).
#   4. `metaloop-worker --self-test` from the tree with TF_CPP_MIN_LOG_LEVEL=0: backend tensorflow,
#      "no GPU", a timed Conv4 MAML shard; TensorFlow's log must name only the driver as missing.
#   5. The worker from the tree serving a real run: nats-server + a coordinator, a 2-step Conv4 MAML
#      run (examples/glyphs-5w1s.yaml, workers.backend tensorflow) to `succeeded`, and
#      `metaloop workers` showing backend tensorflow and GPU "no GPU".
#
#   scripts/assemble-gpu-runtime.sh [--out DIR]     (default ${METALOOP_CACHE}/gpu-runtime/tree)
#
# Needs python3 + pip, g++, make, node/npm (as tfjs-node-from-wheel.sh), nats-server (PATH or
# /usr/sbin). Prints the time of each phase. Exit 1 on the first failed check. Processes it starts
# are stopped by pid on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${METALOOP_CACHE:-$HOME/.cache/metaloop}
PREFIX="$CACHE/gpu-runtime/site"
OUT="$CACHE/gpu-runtime/tree"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=${2:?--out needs a directory}; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
export PATH="$PATH:/usr/sbin"
T0=$SECONDS
TIMES=()
phase_start=$SECONDS
log() { echo "[assemble-gpu-runtime +$((SECONDS - T0))s] $*"; }
die() { echo "[assemble-gpu-runtime] FAILED: $*" >&2; exit 1; }
phase() { TIMES+=("$(printf '%-58s %5ss' "$1" "$((SECONDS - phase_start))")"); phase_start=$SECONDS; }
PIDS=()
TMP=$(mktemp -d)
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

# ---------------------------------------------------------------- 1. wheels
log "1. TensorFlow + CUDA wheels (scripts/gpu-runtime/requirements.txt) into $PREFIX"
if [ -f "$PREFIX/.metaloop-complete" ]; then cached_site=1; else cached_site=0; fi
bash "$ROOT/scripts/gpu-runtime/install.sh" "$PREFIX"
phase "1. pip install of the wheels ($([ $cached_site = 1 ] && echo 'cached' || echo 'download + unpack'))"

# ---------------------------------------------------------------- 2. the tree
DOCKERFILE="$ROOT/deploy/docker/worker-gpu.Dockerfile"
CUDA_LIBS=$(sed -n 's/^ARG CUDA_LIBS=//p' "$DOCKERFILE")
[ -n "$CUDA_LIBS" ] || die "no 'ARG CUDA_LIBS=' line in $DOCKERFILE"
mkdir -p "$OUT/opt"
ln -sfn "$PREFIX" "$OUT/opt/tensorflow"
export LD_LIBRARY_PATH="${CUDA_LIBS//\/opt\/tensorflow/$OUT/opt/tensorflow}"
log "2. runtime tree in $OUT (LD_LIBRARY_PATH: the Dockerfile's CUDA_LIBS under $OUT/opt/tensorflow)"
APP="$OUT/app"
mkdir -p "$APP"
# The deps stage's COPY lines: manifests and scripts/.
for f in package.json package-lock.json .npmrc shared/package.json client/package.json worker/package.json coordinator/package.json cli/package.json test/package.json testing/package.json; do
  mkdir -p "$APP/$(dirname "$f")"; cp "$ROOT/$f" "$APP/$f"
done
rm -rf "$APP/scripts"; cp -r "$ROOT/scripts" "$APP/scripts"
DEPS_KEY=$(cat "$ROOT/package-lock.json" "$ROOT/scripts/tfjs-node-from-wheel.sh" "$ROOT/scripts/gpu-runtime/requirements.txt" | sha256sum | cut -c1-16)
if [ -f "$APP/.metaloop-deps" ] && [ "$(cat "$APP/.metaloop-deps")" = "$DEPS_KEY" ] && ls "$APP"/node_modules/@tensorflow/tfjs-node/lib/napi-v*/tfjs_binding.node >/dev/null 2>&1; then
  log "node_modules and the addon are current (lockfile, build script and wheels unchanged)"
  phase "2a. npm ci --omit=dev --ignore-scripts (cached)"
else
  rm -f "$APP/.metaloop-deps"
  (cd "$APP" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund) > "$TMP/npm-ci.log" 2>&1 || { tail -20 "$TMP/npm-ci.log"; die "npm ci in $APP"; }
  rm -rf "$APP/node_modules/@tensorflow/tfjs-node-gpu"
  phase "2a. npm ci --omit=dev --ignore-scripts"
fi
log "tfjs-node built against the wheel's libtensorflow in the tree (scripts/tfjs-node-from-wheel.sh, METALOOP_TF_SITE)"
(cd "$APP" && METALOOP_TF_SITE="$OUT/opt/tensorflow" METALOOP_CACHE="$OUT/tfjs-build" bash scripts/tfjs-node-from-wheel.sh) 2>&1 | sed 's/^/  /'
[ "${PIPESTATUS[0]}" = 0 ] || die "tfjs-node-from-wheel.sh in $APP"
rm -rf "$APP/node_modules/@tensorflow/tfjs-node/build"
echo "$DEPS_KEY" > "$APP/.metaloop-deps"
phase "2b. tfjs-node addon build + check (tfjs-node-from-wheel.sh)"
# The build stage: turbo build in the repository, then the final stage's COPY lines.
(cd "$ROOT" && npx turbo run build --filter=@metaloop/worker... --filter=@metaloop/coordinator --output-logs=errors-only) > "$TMP/build.log" 2>&1 || { tail -30 "$TMP/build.log"; die "turbo build"; }
for d in shared/dist shared/proto worker/dist; do rm -rf "${APP:?}/$d"; cp -r "$ROOT/$d" "$APP/$d"; done
phase "2c. turbo build + copy of dist/"

# ---------------------------------------------------------------- 3. libraries
ADDON=$(ls "$APP"/node_modules/@tensorflow/tfjs-node/lib/napi-v*/tfjs_binding.node | head -1)
log "3. shared libraries (ldd) and libtensorflow's own loader"
bash "$ROOT/scripts/gpu-runtime/check-libs.sh" --via "$(dirname "$(dirname "$(dirname "$ADDON")")")/deps/lib" "$OUT/opt/tensorflow" "$ADDON" | sed 's/^/  /'
[ "${PIPESTATUS[0]}" = 0 ] || die "library checks"
readelf -d "$ADDON" | grep -E 'NEEDED|RUNPATH' | sed 's/^ */  addon: /'
for l in libtensorflow_cc.so.2 libtensorflow_framework.so.2; do
  echo "  addon deps/lib/$l -> $(readlink "$APP/node_modules/@tensorflow/tfjs-node/deps/lib/$l")"
done
phase "3. ldd + libtensorflow loader probe"

# ---------------------------------------------------------------- 4. self-test
IMAGE_ENV=(NODE_ENV=production TF_FORCE_GPU_ALLOW_GROWTH=true "LD_LIBRARY_PATH=$LD_LIBRARY_PATH")
log "4. metaloop-worker --self-test from the tree (TensorFlow's log: TF_CPP_MIN_LOG_LEVEL=0, VLOG 1 for dso_loader and cuda_*)"
set +e
# TF_CPP_VMODULE: the verbose lines of the modules that load CUDA and the driver (not every op's).
(cd "$APP" && env "${IMAGE_ENV[@]}" TF_CPP_MIN_LOG_LEVEL=0 TF_CPP_VMODULE=dso_loader=1,cuda_diagnostics=1,cuda_platform=1 \
  node worker/dist/cli.js --self-test --backend tensorflow --self-test-shards 2) >"$TMP/self.out" 2>"$TMP/self.err"
rc=$?
set -e
echo "  TensorFlow's log (GPU/CUDA lines):"
grep -E 'cuda|cuInit|dso_loader|GPU|gpu_device|kernel driver' "$TMP/self.err" | sed -E 's/^[IWE][0-9]{4} [0-9:.]+ +[0-9]+ //; s/; LD_LIBRARY_PATH: .*//; s/^/    /' | head -12
sed 's/^/  /' "$TMP/self.out"
[ $rc = 0 ] || { tail -20 "$TMP/self.err"; die "self-test exited $rc"; }
grep -q '^backend:  tensorflow, device cpu (libtensorflow, tfjs-node), libtensorflow 2\.21\.0$' "$TMP/self.out" || die "self-test: backend is not tensorflow on libtensorflow 2.21.0"
grep -qx 'gpu:      no GPU' "$TMP/self.out" || die "self-test: GPU line is not 'no GPU'"
grep -q 'failed call to cuInit' "$TMP/self.err" || die "TensorFlow did not try CUDA (no 'failed call to cuInit' line)"
grep -q "Could not load dynamic library 'libcuda.so.1'" "$TMP/self.err" || die "TensorFlow's loader lines are missing from its log (TF_CPP_VMODULE not honoured?): the check below would prove nothing"
MISSING=$(grep -oE "Could not load dynamic library '[^']+'|Cannot dlopen some GPU libraries" "$TMP/self.err" | grep -v "libcuda.so.1" || true)
[ -z "$MISSING" ] || die "TensorFlow says CUDA libraries are missing: $MISSING"
phase "4. --self-test (Conv4 MAML, 1 warm-up + 2 timed shards)"

# ---------------------------------------------------------------- 5. a real run
log "5. the worker from the tree on a real run (nats-server + coordinator + worker)"
command -v nats-server >/dev/null || die "nats-server not found (apt-get install nats-server)"
PORT=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
NATS="nats://127.0.0.1:$PORT"
nats-server -a 127.0.0.1 -p "$PORT" -js -sd "$TMP/js" >"$TMP/nats.log" 2>&1 & PIDS+=($!)
METALOOP=(node "$ROOT/coordinator/dist/cli.js" --nats "$NATS")
for _ in $(seq 100); do "${METALOOP[@]}" list >/dev/null 2>&1 && break; grep -q 'Server is ready' "$TMP/nats.log" && break; sleep 0.1; done
METALOOP_LOG_LEVEL=warn "${METALOOP[@]}" coordinator --metrics-port=-1 >"$TMP/coord.log" 2>&1 & PIDS+=($!)
(cd "$APP" && exec env "${IMAGE_ENV[@]}" TF_CPP_MIN_LOG_LEVEL=1 METALOOP_LOG_LEVEL=info node worker/dist/cli.js --nats "$NATS" --id gpu-image-w1 --metrics-port=-1) >"$TMP/worker.log" 2>&1 & PIDS+=($!)
WPID=${PIDS[-1]}
for _ in $(seq 600); do
  "${METALOOP[@]}" workers -o json 2>/dev/null | grep -q gpu-image-w1 && break
  kill -0 "$WPID" 2>/dev/null || { tail -20 "$TMP/worker.log"; die "the worker exited"; }
  sleep 0.2
done
grep -E '"?worker ready' "$TMP/worker.log" | sed 's/^/  worker log: /' | head -2
RUN=$("${METALOOP[@]}" submit "$ROOT/examples/glyphs-5w1s.yaml" --set outer.steps=2 --set eval.every=2 --set eval.tasks=4 --set checkpoint.every=2 --set workers.count=1 --set workers.backend=tensorflow)
log "submitted run $RUN (Conv4 5w1s MAML, 2 steps x 2 shards of 2 tasks)"
state=""
for _ in $(seq 600); do
  state=$("${METALOOP[@]}" status "$RUN" -o json | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(JSON.parse(s).state))")
  case "$state" in succeeded|failed|cancelled) break ;; esac
  kill -0 "$WPID" 2>/dev/null || { tail -20 "$TMP/worker.log"; die "the worker exited during the run"; }
  sleep 0.5
done
"${METALOOP[@]}" workers | sed 's/^/  /'
"${METALOOP[@]}" status "$RUN" | sed 's/^/  /' | head -8
[ "$state" = succeeded ] || { tail -20 "$TMP/worker.log" "$TMP/coord.log"; die "run $RUN ended $state"; }
W=$("${METALOOP[@]}" workers -o json)
node -e "
const w = JSON.parse(process.argv[1]).find((x) => x.id === 'gpu-image-w1');
if (!w) { console.error('gpu-image-w1 not in metaloop workers'); process.exit(1); }
if (w.backend !== 'tensorflow' || w.gpu !== 'no GPU' || !(w.tasksDone >= 8)) { console.error('unexpected: ' + JSON.stringify(w)); process.exit(1); }
console.log('  metaloop workers: backend ' + w.backend + ', device ' + w.device + ', GPU ' + w.gpu + ', ' + w.tasksDone + ' tasks done');
" "$W" || die "metaloop workers does not show the worker on tensorflow with 'no GPU'"
phase "5. real run (nats-server, coordinator, worker from the tree)"

echo
echo "assemble-gpu-runtime: OK ($((SECONDS - T0)) s)"
printf '  %s\n' "${TIMES[@]}"
echo "  disk: wheels prefix $(du -sh "$PREFIX" 2>/dev/null | cut -f1), app $(du -sh "$APP" 2>/dev/null | cut -f1)"
