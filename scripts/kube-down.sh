#!/usr/bin/env bash
# Stops the control plane that scripts/kube-up.sh DIR started, by the pids in DIR/pids: kwok,
# scheduler and controller-manager together, then the API server, then etcd; SIGTERM, then SIGKILL
# after 10 s.
# A pid is signalled only while /proc/<pid>/exe is still the binary that was started (a reused pid
# is left alone). Then removes DIR, unless --keep.
#
#   scripts/kube-down.sh DIR [--keep]
set -uo pipefail

DIR="${1:-}"
[[ -n "$DIR" ]] || { echo "usage: $0 DIR [--keep]" >&2; exit 2; }
KEEP="${2:-}"
[[ -d "$DIR" ]] || exit 0

order=()
[[ -f "$DIR/pids/order" ]] && mapfile -t order <"$DIR/pids/order"
declare -A pid
live=()
for ((i = ${#order[@]} - 1; i >= 0; i--)); do
  name="${order[i]}"
  p="$(cat "$DIR/pids/$name.pid" 2>/dev/null || true)"
  [[ "$p" =~ ^[0-9]+$ ]] || continue
  exe="$(readlink "/proc/$p/exe" 2>/dev/null || true)"
  # kube-up starts each binary under its own name: anything else now holds that pid.
  [[ "$exe" == */"$name" || "$exe" == */"$name (deleted)" ]] || continue
  pid[$name]="$p"
  live+=("$name")
done

# stop NAME...: SIGTERM to all, then wait (SIGKILL after 10 s).
stop() {
  local name
  for name in "$@"; do kill -TERM "${pid[$name]}" 2>/dev/null || true; done
  for name in "$@"; do
    for _ in $(seq 1 50); do kill -0 "${pid[$name]}" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "${pid[$name]}" 2>/dev/null; then
      echo "kube-down: $name (pid ${pid[$name]}) still running after 10 s: SIGKILL" >&2
      kill -KILL "${pid[$name]}" 2>/dev/null || true
    fi
  done
}
# CPU each component used (user + system, from /proc/<pid>/stat), printed on stderr.
tck="$(getconf CLK_TCK)"
cpu=""
for name in "${live[@]}"; do
  read -r -a st <"/proc/${pid[$name]}/stat" 2>/dev/null || continue
  # Fields 14 and 15 (utime, stime), counted after the command name's closing parenthesis.
  rest="${st[*]}"; rest="${rest##*) }"; read -r -a f <<<"$rest"
  cpu+=" $name=$(awk -v t="$(( f[11] + f[12] ))" -v h="$tck" 'BEGIN { printf "%.1f", t / h }')s"
done
[[ -z "$cpu" ]] || echo "kube-down: CPU used:$cpu" >&2
# The API server's clients together, then the API server, then its storage.
clients=()
for name in "${live[@]}"; do [[ "$name" == kube-apiserver || "$name" == etcd ]] || clients+=("$name"); done
(( ${#clients[@]} == 0 )) || stop "${clients[@]}"
for name in kube-apiserver etcd; do [[ -n "${pid[$name]:-}" ]] && stop "$name"; done
rm -f "$DIR"/pids/*.pid "$DIR/pids/order"
rmdir "$DIR/pids" 2>/dev/null || true
[[ "$KEEP" == --keep ]] || rm -rf "$DIR"
exit 0
