#!/usr/bin/env bash
# Starts a local Kubernetes control plane for the cluster tests, without a container engine:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (fake kubelets), all on
# 127.0.0.1, with its state, logs and pids in DIR. Then registers fake nodes and volumes:
#
#   gpu-a100-0  2 × nvidia.com/gpu, nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB
#   gpu-h100-0  2 × nvidia.com/gpu, nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3
#   gpu-t4-0    1 × nvidia.com/gpu, nvidia.com/gpu.product=Tesla-T4 (a GPU the chart's
#               examples/gpu-cluster.yaml does not ask for)
#   cpu-0, cpu-1  no GPU, no taint
# GPU nodes carry nvidia.com/gpu.present=true and the taint nvidia.com/gpu=present:NoSchedule, as
# NVIDIA's GPU operator / device plugin set them (what helm/metaloop's GPU values select and
# tolerate). Every node has 32 CPUs, 256 GiB and 110 pods. Four 20 GiB PersistentVolumes (class "",
# never mounted: no kubelet runs) let StatefulSets' claims bind.
#
#   scripts/kube-up.sh DIR      # prints KEY=value lines (also in DIR/env); stop with kube-down.sh DIR
#
# The API server: --bind-address=127.0.0.1, client certificates from an openssl CA made here,
# --authorization-mode=Node,RBAC, service-account tokens signed with a key made here (so
# `kubectl create token` works). DIR/admin.kubeconfig is cluster-admin (system:masters); the
# controller-manager and scheduler use their own certificates and RBAC identities; kwok (the fake
# kubelets) is system:masters. Requests of ServiceAccounts outside kube-system are audited (metadata)
# to DIR/logs/audit.jsonl. Ports: KUBE_ETCD_PORT, KUBE_ETCD_PEER_PORT, KUBE_APISERVER_PORT
# (default: free loopback ports). Binaries: scripts/kube-build.sh (built once, cached by version).
# Processes are stopped by the pids in DIR/pids (kube-down.sh); on a failed start this script stops
# what it started and prints the logs' tails.
set -euo pipefail

DIR="${1:-}"
[[ -n "$DIR" ]] || { echo "usage: $0 DIR  (state, logs and pids go into DIR)" >&2; exit 2; }
HERE="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
[[ ! -e "$DIR/pids" ]] || { echo "kube-up: $DIR already holds a cluster (pids/); run scripts/kube-down.sh $DIR first" >&2; exit 2; }
mkdir -p "$DIR/pids" "$DIR/logs" "$DIR/pki"

log() { echo "kube-up: $*" >&2; }

declare -A BIN
while read -r name path; do BIN[$name]="$path"; done < <(bash "$HERE/kube-build.sh")
for c in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok; do
  [[ -x "${BIN[$c]:-}" ]] || { log "FAILED: scripts/kube-build.sh gave no $c"; exit 1; }
done

on_fail() {
  local rc=$?
  log "FAILED (exit $rc); logs:"
  for f in "$DIR"/logs/*.log; do [[ -e "$f" ]] && { echo "--- $f (last 30 lines)" >&2; tail -n 30 "$f" >&2; }; done
  bash "$HERE/kube-down.sh" "$DIR" --keep >&2 || true
  exit "$rc"
}
trap on_fail ERR

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
ETCD_PORT="${KUBE_ETCD_PORT:-$(free_port)}"
ETCD_PEER_PORT="${KUBE_ETCD_PEER_PORT:-$(free_port)}"
API_PORT="${KUBE_APISERVER_PORT:-$(free_port)}"
SERVER="https://127.0.0.1:$API_PORT"

# ---- certificates (ECDSA P-256; the CA and every certificate live as long as this DIR: 2 days) ----
pki="$DIR/pki"
ossl() { openssl "$@" 2>>"$DIR/logs/openssl.log"; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=metaloop-test-ca" -keyout "$pki/ca.key" -out "$pki/ca.crt"
# cert NAME SUBJECT EXTENSIONS
cert() {
  ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$2" -keyout "$pki/$1.key" -out "$pki/$1.csr"
  printf '%s\n' "$3" >"$pki/$1.ext"
  ossl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 2 -extfile "$pki/$1.ext" -out "$pki/$1.crt"
}
client="keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
cert apiserver "/CN=kube-apiserver" "keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
cert admin "/O=system:masters/CN=metaloop-test-admin" "$client"
cert controller-manager "/CN=system:kube-controller-manager" "$client"
cert scheduler "/CN=system:kube-scheduler" "$client"
cert kwok "/O=system:masters/CN=kwok" "$client"
# Service-account token signing (the API server verifies with the public half).
ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key"
ossl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

kubeconfig() { # NAME -> DIR/NAME.kubeconfig with the client certificate pki/NAME.*
  cat >"$DIR/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: metaloop-test
    cluster: { server: "$SERVER", certificate-authority: "$pki/ca.crt" }
users:
  - name: $1
    user: { client-certificate: "$pki/$1.crt", client-key: "$pki/$1.key" }
contexts:
  - name: $1
    context: { cluster: metaloop-test, user: $1, namespace: default }
current-context: $1
EOF
}
for u in admin controller-manager scheduler kwok; do kubeconfig "$u"; done
KUBECTL=("${BIN[kubectl]}" --kubeconfig "$DIR/admin.kubeconfig")

start() { # NAME BINARY ARGS... : in the background, output to logs/NAME.log, pid to pids/NAME.pid
  local name="$1"; shift
  "$@" </dev/null >"$DIR/logs/$name.log" 2>&1 &
  echo $! >"$DIR/pids/$name.pid"
  echo "$name" >>"$DIR/pids/order"
}
alive() { kill -0 "$(cat "$DIR/pids/$1.pid")" 2>/dev/null || { log "$1 exited; see $DIR/logs/$1.log"; return 1; }; }
# until SECONDS WHAT PROCESS COMMAND...: retries COMMAND every 0.2 s while PROCESS lives
until_ok() {
  local limit=$1 what=$2 proc=$3 t0=$SECONDS; shift 3
  until "$@" >/dev/null 2>&1; do
    alive "$proc"
    (( SECONDS - t0 < limit )) || { log "timed out after ${limit}s waiting for $what"; return 1; }
    sleep 0.2
  done
}

# ---- etcd ----
start etcd "${BIN[etcd]}" --name=default --data-dir="$DIR/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="default=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level=warn
until_ok 30 "etcd on 127.0.0.1:$ETCD_PORT" etcd bash -c "exec 3<>/dev/tcp/127.0.0.1/$ETCD_PORT"

# ---- kube-apiserver ----
# Audit log of what ServiceAccounts outside kube-system do (one JSON line per request), so a test
# can show which API calls a component made, not only that it got what it wanted.
cat >"$DIR/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    userGroups: ["system:serviceaccounts:kube-system"]
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
EOF
start kube-apiserver "${BIN[kube-apiserver]}" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 --secure-port="$API_PORT" --advertise-address=127.0.0.1 \
  --endpoint-reconciler-type=none \
  --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
  --client-ca-file="$pki/ca.crt" \
  --authorization-mode=Node,RBAC \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
  --service-cluster-ip-range=10.96.0.0/16 \
  --audit-policy-file="$DIR/audit-policy.yaml" --audit-log-path="$DIR/logs/audit.jsonl" --audit-log-format=json \
  --allow-privileged=true --profiling=false --v=1
# /readyz includes poststarthook/rbac/bootstrap-roles: the controller-manager needs its bindings first.
until_ok 90 "kube-apiserver's /readyz" kube-apiserver "${KUBECTL[@]}" get --raw /readyz
until_ok 30 "the bootstrap RBAC binding of the controller-manager" kube-apiserver \
  "${KUBECTL[@]}" get clusterrolebinding system:kube-controller-manager

# ---- controller-manager, scheduler, kwok ----
start kube-controller-manager "${BIN[kube-controller-manager]}" \
  --kubeconfig="$DIR/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port=0 --leader-elect=false \
  --use-service-account-credentials=true \
  --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
  --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
  --profiling=false --v=1
start kube-scheduler "${BIN[kube-scheduler]}" \
  --kubeconfig="$DIR/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port=0 --leader-elect=false --profiling=false --v=1
# kwok fakes the kubelet of the nodes annotated kwok.x-k8s.io/node=fake (its default stages:
# nodes Ready with heartbeats, pods Running and Ready; pod IPs are made-up strings, nothing routes).
start kwok "${BIN[kwok]}" \
  --kubeconfig="$DIR/kwok.kubeconfig" \
  --manage-all-nodes=false \
  --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --manage-nodes-with-label-selector= \
  --cidr=10.0.0.1/24 --node-ip=10.0.0.1 --node-lease-duration-seconds=40 \
  --server-address=127.0.0.1:0

# ---- fake nodes and volumes ----
node_yaml() { # NAME GPUS PRODUCT
  local gpu_labels="" taints=" {}" gpu_cap=""
  if (( $2 > 0 )); then
    gpu_labels="
    nvidia.com/gpu.present: \"true\"
    nvidia.com/gpu.product: $3
    nvidia.com/gpu.count: \"$2\"
    metaloop.test/pool: gpu"
    taints="
  taints:
    - { key: nvidia.com/gpu, value: present, effect: NoSchedule }"
    gpu_cap="
    nvidia.com/gpu: \"$2\""
  else
    gpu_labels="
    metaloop.test/pool: cpu"
  fi
  cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $1
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: $1
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok$gpu_labels
spec:$taints
status:
  capacity: &cap
    cpu: "32"
    memory: 256Gi
    pods: "110"$gpu_cap
  allocatable: *cap
  nodeInfo: { architecture: amd64, operatingSystem: linux, kubeletVersion: fake, kubeProxyVersion: fake }
EOF
}
{
  node_yaml gpu-a100-0 2 NVIDIA-A100-SXM4-80GB
  node_yaml gpu-h100-0 2 NVIDIA-H100-80GB-HBM3
  node_yaml gpu-t4-0 1 Tesla-T4
  node_yaml cpu-0 0 ""
  node_yaml cpu-1 0 ""
  for i in 0 1 2 3; do cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata: { name: fake-pv-$i, labels: { type: kwok } }
spec:
  capacity: { storage: 20Gi }
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  hostPath: { path: /nonexistent/metaloop-fake-pv-$i }
EOF
  done
} >"$DIR/nodes.yaml"
"${KUBECTL[@]}" create -f "$DIR/nodes.yaml" >/dev/null
until_ok 60 "the fake nodes to be Ready (kwok)" kwok "${KUBECTL[@]}" wait --for=condition=Ready node --all --timeout=1s
# Pods need their namespace's `default` ServiceAccount (made by the controller-manager).
until_ok 60 "the default ServiceAccount (controller-manager)" kube-controller-manager "${KUBECTL[@]}" get serviceaccount default
for p in kube-scheduler kwok; do alive "$p"; done

cat >"$DIR/env" <<EOF
KUBECONFIG=$DIR/admin.kubeconfig
KUBE_SERVER=$SERVER
KUBE_CA=$pki/ca.crt
KUBECTL=${BIN[kubectl]}
KUBE_DIR=$DIR
KUBE_AUDIT_LOG=$DIR/logs/audit.jsonl
EOF
trap - ERR
log "control plane up at $SERVER in ${SECONDS}s (state in $DIR; stop with scripts/kube-down.sh $DIR)"
cat "$DIR/env"
