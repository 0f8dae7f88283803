#!/usr/bin/env bash
# Installs the helm CLI the chart tests use, built from source through the Go module proxy
# (no other download site is reachable from our machines). Prints the binary's path on stdout.
#
#   scripts/install-helm.sh            # -> $METALOOP_TOOLS_DIR/helm (default ~/.cache/metaloop/bin)
#
# The binary is cached: when $METALOOP_TOOLS_DIR/helm already reports the wanted version nothing
# is built. Environment: HELM_VERSION (default v3.22.0), METALOOP_TOOLS_DIR, GO (default: `go` on
# PATH, else /usr/local/go/bin/go).
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
TOOLS_DIR="${METALOOP_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/metaloop/bin}"
HELM_BIN="$TOOLS_DIR/helm"

log() { echo "install-helm: $*" >&2; }

if [[ -x "$HELM_BIN" ]]; then
  have="$("$HELM_BIN" version --template '{{.Version}}' 2>/dev/null || true)"
  if [[ "$have" == "$HELM_VERSION" ]]; then
    log "cached $HELM_BIN is $have"
    echo "$HELM_BIN"
    exit 0
  fi
  log "cached $HELM_BIN reports '${have:-nothing}', want $HELM_VERSION: rebuilding"
fi

GO="${GO:-}"
if [[ -z "$GO" ]]; then
  if command -v go >/dev/null 2>&1; then GO="$(command -v go)"; else GO=/usr/local/go/bin/go; fi
fi
if [[ ! -x "$GO" ]]; then
  log "FAILED: no Go toolchain at '$GO' (set GO=/path/to/go); helm is built with 'go install'"
  exit 1
fi

mkdir -p "$TOOLS_DIR"
# Helm's release build (its Makefile) stamps the version and the Kubernetes version that
# .Capabilities.KubeVersion defaults to (client-go's minor + 1.x) with -ldflags; a plain
# `go install` would report "v3.22" and pretend to be Kubernetes v1.20. Do the same here.
gomod="$(cd "$TOOLS_DIR" && GO111MODULE=on "$GO" mod download -json "helm.sh/helm/v3@${HELM_VERSION}" \
  | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
k8s_minor="$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod" | sed -n 1p)"
if [[ -z "$k8s_minor" ]]; then
  log "FAILED: could not read k8s.io/client-go's version from helm's go.mod ($gomod)"
  exit 1
fi
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
for pkg in pkg/lint/rules pkg/chartutil; do
  ldflags+=" -X helm.sh/helm/v3/${pkg}.k8sVersionMajor=1 -X helm.sh/helm/v3/${pkg}.k8sVersionMinor=${k8s_minor}"
done
log "building helm $HELM_VERSION (Kubernetes 1.${k8s_minor}) with $("$GO" version) into $TOOLS_DIR (minutes on 2 cores)"
# nice: the machine is shared; -trimpath as in helm's own release build.
if ! GOBIN="$TOOLS_DIR" CGO_ENABLED=0 nice -n 10 \
    "$GO" install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2; then
  log "FAILED: go install helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
  exit 1
fi

have="$("$HELM_BIN" version --template '{{.Version}}' 2>/dev/null || true)"
if [[ "$have" != "$HELM_VERSION" ]]; then
  # `go install` builds without the release ldflags, so helm may report a different version string.
  log "note: built binary reports '${have:-nothing}' (expected $HELM_VERSION)"
fi
echo "$HELM_BIN"
