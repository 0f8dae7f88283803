#!/usr/bin/env bash
# Checks, without a GPU, that the GPU worker's libraries load as the image sets them up: run it with
# the image's LD_LIBRARY_PATH (deploy/docker/worker-gpu.Dockerfile, ARG CUDA_LIBS).
#
#   scripts/gpu-runtime/check-libs.sh [--via DIR] <prefix> [more .so/.node files to ldd]
#
# --via DIR: link the probe through DIR (tfjs-node's deps/lib: symlinks to <prefix>/tensorflow), the
# way the addon finds libtensorflow. Then $ORIGIN in libtensorflow's RUNPATH is DIR, not the wheel's
# directory, and only LD_LIBRARY_PATH can lead it to the CUDA libraries: exactly the image's case.
#
# 1. every <prefix>/nvidia/*/lib directory is on LD_LIBRARY_PATH;
# 2. `ldd` resolves every shared library of <prefix>/tensorflow, <prefix>/nvidia/*/lib and the extra
#    files, except the driver's (libcuda.so.1, libnvidia-ml.so.1: the host provides them);
# 3. probe.cc asks libtensorflow's own loader to open the CUDA libraries; TensorFlow's log must say
#    "Successfully opened dynamic library" for each (a missing driver is expected and allowed).
# Needs g++ (for the probe). Exit 1 on any failure, with the lines that show it.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VIA=""
if [ "${1:-}" = --via ]; then VIA=${2:?--via needs a directory}; shift 2; fi
PREFIX=${1:?usage: check-libs.sh [--via DIR] <prefix> [files...]}
shift
LINK=${VIA:-$PREFIX/tensorflow}
say() { echo "[gpu-runtime/check-libs] $*"; }
die() { echo "[gpu-runtime/check-libs] FAILED: $*" >&2; exit 1; }
HOST_LIBS='libcuda.so.1|libnvidia-ml.so.1'

# 1. LD_LIBRARY_PATH covers every CUDA library directory
for d in "$PREFIX"/nvidia/*/lib; do
  case ":${LD_LIBRARY_PATH:-}:" in *":$d:"*) ;; *) die "$d is not on LD_LIBRARY_PATH (add it to CUDA_LIBS in deploy/docker/worker-gpu.Dockerfile)";; esac
done
say "LD_LIBRARY_PATH holds all $(ls -d "$PREFIX"/nvidia/*/lib | wc -l) nvidia/*/lib directories"

# 2. ldd
mapfile -t libs < <(ls "$PREFIX"/tensorflow/*.so.2 "$PREFIX"/nvidia/*/lib/*.so* 2>/dev/null; for f in "$@"; do echo "$f"; done)
bad=""; host=""
for f in "${libs[@]}"; do
  out=$(ldd "$f" 2>&1 || true)
  nf=$(grep 'not found' <<<"$out" | awk '{print $1}' | sort -u | tr '\n' ' ' || true)
  [ -z "$nf" ] && continue
  real=$(tr ' ' '\n' <<<"$nf" | grep -vxE "$HOST_LIBS" | tr '\n' ' ' | xargs || true)
  if [ -n "$real" ]; then bad+="  $f: $real"$'\n'; else host+="$(basename "$f") "; fi
done
[ -z "$bad" ] || die "ldd: unresolved libraries:"$'\n'"$bad"
say "ldd: ${#libs[@]} shared libraries, every dependency resolves${host:+ (libcuda.so.1 of the driver comes from the host; needed by $host)}"

# 3. libtensorflow's own loader
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
g++ -O1 -o "$tmp/probe" "$HERE/probe.cc" -L"$LINK" -l:libtensorflow_framework.so.2 -Wl,-rpath,"$LINK" \
  || die "could not compile probe.cc against $LINK/libtensorflow_framework.so.2 (g++ installed?)"
echo "  probe: libtensorflow_framework.so.2 loaded from $LINK"
set +e
TF_CPP_MIN_LOG_LEVEL=0 TF_CPP_MAX_VLOG_LEVEL=1 "$tmp/probe" >"$tmp/out" 2>"$tmp/tflog"
rc=$?
set -e
echo "  TensorFlow's log (TF_CPP_MIN_LOG_LEVEL=0 TF_CPP_MAX_VLOG_LEVEL=1):"
grep -E 'dso_loader|cudart_stub|cuda_' "$tmp/tflog" | sed -E 's/^[IWE][0-9]{4} [0-9:.]+ +[0-9]+ //; s/; LD_LIBRARY_PATH: .*//; s/^/    /'
sed 's/^/  /' "$tmp/out"
missing=$(grep -oE "Could not load dynamic library '[^']+'" "$tmp/tflog" | grep -vE "$HOST_LIBS" || true)
opened=$(grep -c 'Successfully opened dynamic library' "$tmp/tflog" || true)
[ "$rc" = 0 ] && [ -z "$missing" ] || die "libtensorflow could not open CUDA libraries: ${missing:-see above}"
say "libtensorflow opened the CUDA libraries itself ($opened 'Successfully opened dynamic library' lines; no user-space library missing)"
