#!/usr/bin/env bash
# Builds the binaries of the local Kubernetes control plane the cluster tests start
# (scripts/kube-up.sh): kube-apiserver, kube-controller-manager, kube-scheduler and kubectl of
# Kubernetes $KUBE_VERSION, the etcd server that this Kubernetes release pins in its go.mod, and
# kwok $KWOK_VERSION, all from the Go module proxy (no other download site is reachable from our
# machines). Go is a test tool here, like helm; nothing of this ships.
#
#   scripts/kube-build.sh      # prints one line per tool: `<name> <path>`, on stdout
#
# Cached by version under $METALOOP_KUBE_CACHE (default ~/.cache/metaloop/kube):
#   kubernetes-<v>/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubectl,etcd}
#   kwok-<v>/bin/kwok
# An entry whose binaries report the wanted version is not rebuilt. A build writes into a temporary
# folder beside the entry and renames it when every binary is there, so an interrupted build leaves
# nothing that looks complete. One build at a time per cache (flock): a second caller waits.
#
# How Kubernetes is built from the module proxy: k8s.io/kubernetes@v1.X.Y is a module whose go.mod
# points its 31 staging modules (k8s.io/api, k8s.io/client-go, ...) at ./staging/src/k8s.io/*,
# folders its module zip leaves out (nested modules never ship in their parent's zip). The copy made
# here points each of them at the published k8s.io/<name> v0.X.Y instead (the same code, released
# from that staging folder), drops vendor/ and go.work*, and builds the four commands in one
# `go build` with the version stamped as Kubernetes' release build does. etcd: Kubernetes' go.mod
# already requires go.etcd.io/etcd/server/v3 (3.6.x), so a five-line main package calling
# etcdmain.Main is added to that copy and built in the same `go build`: same dependency versions,
# so it shares nearly every compiled package (~20 CPU-s, against ~150 as a module of its own).
# etcd 3.6 is needed: with 3.4 (Debian's) kwok's watches fail (no RequestWatchProgress).
#
# Environment: KUBE_VERSION (v1.34.2), KWOK_VERSION (v0.7.0), METALOOP_KUBE_CACHE, GO (default `go`
# on PATH, else /usr/local/go/bin/go), KUBE_BUILD_P (go build -p, default 2: the machines have 2
# cores; the kube-apiserver link peaks at ~1.9 GB), and the usual GOMODCACHE / GOCACHE / GOPROXY.
# CPU-heavy: runs under `nice -n 10`.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.34.2}"
KWOK_VERSION="${KWOK_VERSION:-v0.7.0}"
CACHE="${METALOOP_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/metaloop/kube}"
P="${KUBE_BUILD_P:-2}"

log() { echo "kube-build: $*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

GO="${GO:-}"
if [[ -z "$GO" ]]; then
  if command -v go >/dev/null 2>&1; then GO="$(command -v go)"; else GO=/usr/local/go/bin/go; fi
fi
[[ -x "$GO" ]] || fail "no Go toolchain at '$GO' (set GO=/path/to/go); the control plane is built with go build"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -buildvcs=false" GOTOOLCHAIN=local

[[ "$KUBE_VERSION" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || fail "KUBE_VERSION must look like v1.34.2, got '$KUBE_VERSION'"
KUBE_MINOR="${BASH_REMATCH[1]}"
STAGING_VERSION="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"

mkdir -p "$CACHE"
exec 9>"$CACHE/.build.lock"
if ! flock -n 9; then
  log "another kube-build.sh is building into $CACHE; waiting for it"
  flock 9
fi

# reports BINARY WANT ARGS...: the first line `BINARY ARGS...` prints contains WANT.
reports() { [[ -x "$1" ]] || return 1; local out; out="$("$1" "${@:3}" 2>/dev/null | head -n 1 || true)"; [[ "$out" == *"$2"* ]]; }

# A fresh staging folder beside the cache entry $1; removed on exit unless renamed into place.
TMPDIRS=()
trap 'for d in "${TMPDIRS[@]}"; do [[ -d "$d" ]] && { chmod -R u+w "$d" 2>/dev/null || true; rm -rf "$d"; }; done' EXIT
staging() { mktemp -d "$1.tmp.XXXXXX"; }

timed() { local t0=$SECONDS; "$@"; log "  ($(( SECONDS - t0 )) s)"; }

build_kwok() {
  local entry="$CACHE/kwok-$KWOK_VERSION"
  if reports "$entry/bin/kwok" "$KWOK_VERSION" --version; then log "cached kwok $KWOK_VERSION in $entry/bin"; return; fi
  local tmp
  tmp="$(staging "$entry")"; TMPDIRS+=("$tmp")
  mkdir -p "$tmp/bin"
  log "kwok $KWOK_VERSION: go install sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  (cd "$tmp" && GOBIN="$tmp/bin" timed nice -n 10 "$GO" install -p "$P" -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION") || fail "go install kwok $KWOK_VERSION"
  reports "$tmp/bin/kwok" "$KWOK_VERSION" --version || fail "the built kwok does not report $KWOK_VERSION: $("$tmp/bin/kwok" --version 2>&1 | head -n 1)"
  rm -rf "$entry"; mv "$tmp" "$entry"
  log "  kwok $KWOK_VERSION built into $entry/bin"
}

ETCD_MAIN='// The etcd server, from the go.etcd.io/etcd/server/v3 that Kubernetes pins (scripts/kube-build.sh).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }'

build_kubernetes() {
  local entry="$CACHE/kubernetes-$KUBE_VERSION" cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  local ok=1 c
  for c in "${cmds[@]}"; do
    if [[ "$c" == kubectl ]]; then reports "$entry/bin/$c" "$KUBE_VERSION" version --client || ok=0
    else reports "$entry/bin/$c" "Kubernetes $KUBE_VERSION" --version || ok=0; fi
  done
  reports "$entry/bin/etcd" "etcd Version: 3.6." --version || ok=0
  if (( ok )); then log "cached Kubernetes $KUBE_VERSION and etcd in $entry/bin"; return; fi

  local tmp src dir
  tmp="$(staging "$entry")"; TMPDIRS+=("$tmp")
  src="$tmp/src"
  log "Kubernetes $KUBE_VERSION: go mod download k8s.io/kubernetes@$KUBE_VERSION"
  dir="$(cd "$tmp" && "$GO" mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -n "$dir" && -f "$dir/go.mod" ]] || fail "go mod download k8s.io/kubernetes@$KUBE_VERSION gave no module folder"
  cp -r "$dir" "$src"
  chmod -R u+w "$src"
  rm -rf "$src/vendor" "$src/go.work" "$src/go.work.sum"
  local replaces=() m
  while read -r m; do replaces+=("-replace=$m=$m@$STAGING_VERSION"); done < <(
    sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/src/k8s\.io/.*#\1#p' "$src/go.mod")
  (( ${#replaces[@]} > 20 )) || fail "found only ${#replaces[@]} ./staging replaces in k8s.io/kubernetes@$KUBE_VERSION's go.mod (expected ~31)"
  (cd "$src" && "$GO" mod edit "${replaces[@]}")
  local etcd_version
  etcd_version="$(sed -n 's#^[[:space:]]*go\.etcd\.io/etcd/server/v3 \(v3\.6\.[0-9]*\).*#\1#p' "$src/go.mod" | head -n 1)"
  [[ -n "$etcd_version" ]] || fail "k8s.io/kubernetes@$KUBE_VERSION's go.mod requires no go.etcd.io/etcd/server/v3 v3.6.x"
  mkdir -p "$src/cmd/metaloop-etcd"
  printf '%s\n' "$ETCD_MAIN" >"$src/cmd/metaloop-etcd/main.go"
  log "  ${#replaces[@]} staging modules pointed at $STAGING_VERSION, etcd $etcd_version; downloading the dependencies"
  (cd "$src" && timed nice -n 10 "$GO" mod download) || fail "go mod download of Kubernetes' dependencies"
  local ldflags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$KUBE_MINOR"
    ldflags+=" -X $pkg.gitCommit=unknown -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  mkdir -p "$tmp/bin"
  log "  go build -p $P ${cmds[*]} etcd (~13 CPU-minutes from cold caches; ~1.9 GB at the kube-apiserver link)"
  (cd "$src" && GOFLAGS="$GOFLAGS -mod=mod" timed nice -n 10 "$GO" build -p "$P" -trimpath -ldflags "$ldflags" -o "$tmp/bin/" \
    ./cmd/kube-apiserver ./cmd/kube-controller-manager ./cmd/kube-scheduler ./cmd/kubectl ./cmd/metaloop-etcd) || fail "go build of Kubernetes $KUBE_VERSION"
  mv "$tmp/bin/metaloop-etcd" "$tmp/bin/etcd"
  grep -q "go.etcd.io/etcd/server/v3 $etcd_version" "$src/go.mod" || fail "building etcd moved go.etcd.io/etcd/server/v3 off $etcd_version"
  reports "$tmp/bin/kube-apiserver" "Kubernetes $KUBE_VERSION" --version || fail "the built kube-apiserver does not report $KUBE_VERSION"
  reports "$tmp/bin/etcd" "etcd Version: ${etcd_version#v}" --version || fail "the built etcd does not report ${etcd_version#v}"
  chmod -R u+w "$src"; rm -rf "$src"
  rm -rf "$entry"; mv "$tmp" "$entry"
  log "  Kubernetes $KUBE_VERSION and etcd $etcd_version built into $entry/bin ($(du -sh "$entry/bin" | cut -f1))"
}

log "with $("$GO" version), cache $CACHE"
build_kwok
build_kubernetes

k="$CACHE/kubernetes-$KUBE_VERSION/bin"
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl etcd; do echo "$c $k/$c"; done
echo "kwok $CACHE/kwok-$KWOK_VERSION/bin/kwok"
