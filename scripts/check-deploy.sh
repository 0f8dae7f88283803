#!/usr/bin/env bash
# Checks the deployment files: images, compose stack, NATS and Prometheus configs, Helm chart.
#
#   scripts/check-deploy.sh                     # everything that can run on this machine
#   scripts/check-deploy.sh --sync-chart-files  # copy deploy/'s rules + dashboard into helm/metaloop/files/
#   CHECK_DEPLOY_GPU_VARIANTS=1 scripts/check-deploy.sh   # also build the legacy CUDA 11 GPU worker image
#   CHECK_DEPLOY_GPU_RUNTIME=1 scripts/check-deploy.sh    # also assemble + check the GPU image's runtime
#                                                         # tree without Docker (scripts/assemble-gpu-runtime.sh)
#
# Where a Docker engine runs, it builds every image and runs `docker compose config`. Where none
# runs (our CI and dev machines) it says so and still checks what it can: the compose file's
# structure, the Dockerfiles' structure (and hadolint when installed), nats-server -t, promtool,
# helm lint/template. Each check prints OK, SKIPPED (with the reason) or FAILED; exit 1 on FAILED.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

sync_chart_files() {
  mkdir -p helm/metaloop/files
  cp deploy/prometheus/metaloop-rules.yaml helm/metaloop/files/metaloop-rules.yaml
  cp deploy/grafana/metaloop.json helm/metaloop/files/metaloop.json
  echo "copied deploy/prometheus/metaloop-rules.yaml and deploy/grafana/metaloop.json into helm/metaloop/files/"
}
if [[ "${1:-}" == "--sync-chart-files" ]]; then sync_chart_files; exit 0; fi

failed=0
n_ok=0; n_skipped=0; n_failed=0
ok()      { printf '  OK       %s\n' "$*"; n_ok=$((n_ok + 1)); }
skipped() { printf '  SKIPPED  %s\n' "$*"; n_skipped=$((n_skipped + 1)); }
fail()    { printf '  FAILED   %s\n' "$*"; failed=1; n_failed=$((n_failed + 1)); }
section() { printf '\n== %s\n' "$*"; }
export PATH="$PATH:/usr/sbin:/usr/local/go/bin"
LOG="$(mktemp -d)"
trap 'rm -rf "$LOG"' EXIT

IMAGES=(coordinator cli worker-cpu worker-gpu)

# ---------------------------------------------------------------- Docker engine
section "docker build / docker compose config"
if ! command -v docker >/dev/null 2>&1; then
  skipped "docker build of ${IMAGES[*]}: no docker client on this machine"
  docker_engine=0
elif ! docker info >/dev/null 2>"$LOG/docker-info"; then
  skipped "docker build of ${IMAGES[*]}: no Docker engine reachable ($(head -n1 "$LOG/docker-info"))"
  docker_engine=0
else
  docker_engine=1
  for img in "${IMAGES[@]}"; do
    if docker build -f "deploy/docker/$img.Dockerfile" -t "metaloop/$img:check" . >"$LOG/$img" 2>&1; then
      ok "docker build $img"
    else
      fail "docker build $img (last lines below)"; tail -n 20 "$LOG/$img"
    fi
  done
  if [[ "${CHECK_DEPLOY_GPU_VARIANTS:-0}" == 1 ]]; then
    if docker build -f deploy/docker/worker-gpu.Dockerfile --build-arg TF_RUNTIME=legacy-cuda11 \
        --build-arg CUDA_IMAGE=nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu20.04 \
        -t metaloop/worker-gpu:check-legacy-cu118 . >"$LOG/cu118" 2>&1; then
      ok "docker build worker-gpu (legacy tfjs-node-gpu variant, CUDA 11.8)"
    else
      fail "docker build worker-gpu (legacy tfjs-node-gpu variant, CUDA 11.8)"; tail -n 20 "$LOG/cu118"
    fi
  else
    skipped "worker-gpu legacy CUDA 11 variant (set CHECK_DEPLOY_GPU_VARIANTS=1)"
  fi
fi
# `compose config` needs the compose plugin (or docker-compose), not an engine.
if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  compose=()
fi
if [[ ${#compose[@]} -gt 0 ]]; then
  if "${compose[@]}" -f deploy/compose.yaml config -q >"$LOG/compose" 2>&1; then
    ok "${compose[*]} -f deploy/compose.yaml config"
  else
    fail "${compose[*]} -f deploy/compose.yaml config"; cat "$LOG/compose"
  fi
else
  skipped "docker compose config: neither the compose plugin nor docker-compose is installed"
fi
[[ $docker_engine == 0 ]] && echo "  (no engine: the images were NOT built here; the static checks below still run)"

# ---------------------------------------------------------------- static checks (node)
section "compose file and Dockerfiles (static)"
if node --input-type=module - >"$LOG/static" 2>&1 <<'EOF'
import { readFileSync, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
const problems = [];
const say = (m) => console.log(m);

// ---- compose
function interpolate(text) {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}/g, (_, name, op, dflt) => {
    const value = process.env[name];
    if (op === ':-') return value ? value : dflt;
    if (op === '-') return value !== undefined ? value : dflt;
    return value ?? '';
  });
}
const composeFile = 'deploy/compose.yaml';
const compose = parse(readFileSync(composeFile, 'utf8'), { merge: true });
const services = compose.services ?? {};
for (const need of ['nats', 'coordinator', 'worker-1', 'worker-2', 'prometheus', 'grafana']) {
  if (!services[need]) problems.push(`compose: service ${need} missing`);
}
const volumes = Object.keys(compose.volumes ?? {});
const base = path.dirname(composeFile);
for (const [name, svc] of Object.entries(services)) {
  if (!svc.image && !svc.build) problems.push(`compose: ${name} has neither image nor build`);
  if (svc.build) {
    const ctx = path.resolve(base, svc.build.context ?? '.');
    const df = path.resolve(ctx, svc.build.dockerfile ?? 'Dockerfile');
    if (!existsSync(df)) problems.push(`compose: ${name} dockerfile ${df} missing`);
  }
  for (const v of svc.volumes ?? []) {
    // Compose interpolates ${VAR}, ${VAR:-default} and ${VAR-default} before it reads a volume's
    // short syntax (source:target[:mode]); do the same, with this shell's environment, so that the
    // ':' of a default does not split the source.
    const spec = typeof v === 'string' ? interpolate(v) : null;
    const src = String(spec !== null ? spec.split(':')[0] : interpolate(String(v.source)));
    if (src.startsWith('.') || src.startsWith('/')) {
      if (!existsSync(path.resolve(base, src))) problems.push(`compose: ${name} mounts missing ${src}`);
    } else if (!volumes.includes(src)) problems.push(`compose: ${name} uses undeclared volume ${src}`);
  }
  const deps = Array.isArray(svc.depends_on) ? svc.depends_on : Object.keys(svc.depends_on ?? {});
  for (const d of deps) if (!services[d]) problems.push(`compose: ${name} depends on unknown service ${d}`);
  if (svc.healthcheck && !Array.isArray(svc.healthcheck.test)) problems.push(`compose: ${name} healthcheck.test should be a list`);
}
for (const w of ['worker-1', 'worker-2']) {
  const env = services[w]?.environment ?? {};
  if (env.METALOOP_NATS_USER !== 'worker' || !env.METALOOP_NATS_URL) problems.push(`compose: ${w} NATS env incomplete`);
}
const prom = parse(readFileSync('deploy/prometheus/prometheus.yml', 'utf8'));
const targets = prom.scrape_configs.flatMap((s) => s.static_configs.flatMap((c) => c.targets));
for (const t of ['coordinator:9400', 'worker-1:9401', 'worker-2:9401']) {
  if (!targets.includes(t)) problems.push(`prometheus.yml: no scrape target ${t}`);
}
say(`compose: ${Object.keys(services).length} services checked`);

// ---- Dockerfiles: stages, non-root final user, HEALTHCHECK, COPY sources present
const ignoreOf = (df) => existsSync(`${df}.dockerignore`);
for (const name of ['coordinator', 'cli', 'worker-cpu', 'worker-gpu']) {
  const df = `deploy/docker/${name}.Dockerfile`;
  const lines = readFileSync(df, 'utf8').replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const froms = lines.filter((l) => /^FROM\s/i.test(l));
  if (froms.length < 2) problems.push(`${df}: not multi-stage`);
  let lastFrom = lines.lastIndexOf(froms[froms.length - 1]);
  // `FROM final-${ARG}` (worker-gpu: TF_RUNTIME picks a variant): check the stage the ARG's default names.
  const pick = /^FROM\s+final-\$\{(\w+)\}\s*$/i.exec(lines[lastFrom]);
  if (pick) {
    const def = lines.map((l) => new RegExp(`^ARG\\s+${pick[1]}=(\\S+)`).exec(l)).find(Boolean)?.[1];
    const at = lines.findIndex((l) => new RegExp(`^FROM\\s.*\\sAS\\s+final-${def}\\s*$`, 'i').test(l));
    if (at < 0) problems.push(`${df}: no stage final-${def} for ${lines[lastFrom]}`);
    else lastFrom = at;
  }
  const nextFrom = lines.findIndex((l, i) => i > lastFrom && /^FROM\s/i.test(l));
  const final = lines.slice(lastFrom, nextFrom < 0 ? undefined : nextFrom);
  const user = final.filter((l) => /^USER\s/i.test(l)).pop();
  if (!user || /^USER\s+(root|0)(:|\s|$)/i.test(user)) problems.push(`${df}: final stage does not switch to a non-root USER`);
  const hc = final.find((l) => /^HEALTHCHECK\s/i.test(l));
  const port = name === 'coordinator' ? 9400 : 9401;
  // The CLI image runs one-shot commands: no server, no health check.
  if (name !== 'cli' && (!hc || !hc.includes(`:${port}/healthz`))) problems.push(`${df}: no HEALTHCHECK on :${port}/healthz`);
  for (const l of lines.filter((x) => /^COPY\s/i.test(x) && !/--from=/i.test(x))) {
    const parts = l.split(/\s+/).slice(1).filter((p) => !p.startsWith('--'));
    for (const src of parts.slice(0, -1)) {
      if (!existsSync(src)) problems.push(`${df}: COPY source ${src} missing in the repository`);
    }
  }
  if (!ignoreOf(df)) problems.push(`${df}: no ${df}.dockerignore`);
  if (name === 'worker-gpu') {
    for (const must of [
      // default variant: the wheel's libtensorflow + CUDA 12 wheels, by the scripts the assembly check runs
      'bash /build/gpu-runtime/install.sh /opt/tensorflow', 'bash /build/gpu-runtime/check-libs.sh /opt/tensorflow',
      'METALOOP_TF_SITE=/opt/tensorflow', 'LD_LIBRARY_PATH=${CUDA_LIBS}', 'ARG TF_RUNTIME=wheel',
      // legacy variant (--build-arg TF_RUNTIME=legacy-cuda11)
      'nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04', 'npm rebuild @tensorflow/tfjs-node-gpu',
      'TF_FORCE_GPU_ALLOW_GROWTH=true', 'CUDA_CACHE_MAXSIZE', 'CUDA_CACHE_PATH',
    ]) {
      if (!readFileSync(df, 'utf8').includes(must)) problems.push(`${df}: lacks ${must}`);
    }
  }
  say(`${df}: ${froms.length} stages, final ${user}`);
}
if (problems.length) { for (const p of problems) console.error(`PROBLEM ${p}`); process.exit(1); }
EOF
then
  ok "compose structure, prometheus.yml targets, Dockerfile structure"; sed 's/^/           /' "$LOG/static"
else
  fail "static checks"; cat "$LOG/static"
fi

if command -v hadolint >/dev/null 2>&1; then
  for img in "${IMAGES[@]}"; do
    if hadolint "deploy/docker/$img.Dockerfile" >"$LOG/hadolint-$img" 2>&1; then ok "hadolint $img"; else fail "hadolint $img"; cat "$LOG/hadolint-$img"; fi
  done
else
  skipped "hadolint: not installed (not packaged for Debian; the static checks above cover structure)"
fi

# ---------------------------------------------------------------- GPU runtime tree
section "GPU worker runtime tree (scripts/assemble-gpu-runtime.sh)"
# Opt-in: the first run downloads ~3.9 GB of TensorFlow + CUDA wheels (measured 10.5 min on our
# machines, under load), too long for every CI run; later runs reuse ~/.cache/metaloop/gpu-runtime.
if [[ "${CHECK_DEPLOY_GPU_RUNTIME:-0}" == 1 ]]; then
  if bash scripts/assemble-gpu-runtime.sh >"$LOG/gpu-runtime" 2>&1; then
    ok "GPU runtime tree: libraries resolve, libtensorflow opens CUDA 12 / cuDNN 9, worker on tensorflow with 'no GPU' trains Conv4"
    sed -n '/^assemble-gpu-runtime: OK/,$p' "$LOG/gpu-runtime" | sed 's/^/           /'
  else
    fail "scripts/assemble-gpu-runtime.sh (last lines below)"; tail -n 30 "$LOG/gpu-runtime"
  fi
else
  skipped "GPU runtime tree: set CHECK_DEPLOY_GPU_RUNTIME=1 (first run downloads ~3.9 GB of wheels, ~10 min; cached after)"
fi

# ---------------------------------------------------------------- NATS
section "NATS server config"
if command -v nats-server >/dev/null 2>&1; then
  if (cd deploy/nats && nats-server -c nats-test.conf -t) >"$LOG/nats-test" 2>&1; then ok "nats-server -t deploy/nats/nats-test.conf ($(nats-server --version))"; else fail "nats-server -t nats-test.conf"; cat "$LOG/nats-test"; fi
  if (cd deploy/nats && METALOOP_NATS_COORDINATOR_PASSWORD=x METALOOP_NATS_WORKER_PASSWORD=y METALOOP_NATS_CLI_PASSWORD=z \
      nats-server -c nats-server.conf -t) >"$LOG/nats-prod" 2>&1; then ok "nats-server -t deploy/nats/nats-server.conf (passwords from env)"; else fail "nats-server -t nats-server.conf"; cat "$LOG/nats-prod"; fi
else
  skipped "nats-server -t: nats-server not installed (apt-get install nats-server)"
fi

# ---------------------------------------------------------------- Prometheus
section "Prometheus config and rules"
if command -v promtool >/dev/null 2>&1; then
  if promtool check config deploy/prometheus/prometheus.yml >"$LOG/promtool" 2>&1; then ok "promtool check config deploy/prometheus/prometheus.yml (+ its rule file)"; else fail "promtool check config"; cat "$LOG/promtool"; fi
  if promtool test rules deploy/prometheus/metaloop-rules.test.yaml >"$LOG/promtool-test" 2>&1; then ok "promtool test rules deploy/prometheus/metaloop-rules.test.yaml"; else fail "promtool test rules"; cat "$LOG/promtool-test"; fi
else
  skipped "promtool: not installed (apt-get install prometheus)"
fi

# ---------------------------------------------------------------- Helm
section "Helm chart"
for pair in "deploy/prometheus/metaloop-rules.yaml:helm/metaloop/files/metaloop-rules.yaml" "deploy/grafana/metaloop.json:helm/metaloop/files/metaloop.json"; do
  src="${pair%%:*}"; dst="${pair#*:}"
  if [[ ! -e "$src" ]]; then skipped "$dst: $src does not exist yet"
  elif cmp -s "$src" "$dst"; then ok "$dst equals $src"
  else fail "$dst differs from $src (run scripts/check-deploy.sh --sync-chart-files)"; fi
done
# The official NATS chart, unpacked beside the clone (its chart repository is unreachable from our
# machines): shared/vendor/helm-charts/nats-<version>/ in the nearest parent folder (../shared in CI).
nats_vendor=""
d="$(dirname "$ROOT")"
while :; do
  if compgen -G "$d/shared/vendor/helm-charts/nats-*/Chart.yaml" >/dev/null; then nats_vendor="$d/shared/vendor/helm-charts"; break; fi
  [[ "$d" == / ]] && break
  d="$(dirname "$d")"
done
if HELM="$(scripts/install-helm.sh 2>"$LOG/helm-install")"; then
  tmpchart="$LOG/chart/metaloop"; mkdir -p "$LOG/chart"; cp -rL helm/metaloop "$tmpchart"
  # Unpack the newest release that Chart.yaml's version constraint accepts into charts/nats/, as
  # `helm dependency update` would; without one, lint without the dependency (external NATS).
  with_nats=""
  if [[ -n "$nats_vendor" ]]; then
    for c in $(ls -d "$nats_vendor"/nats-*/ | sort -V -r); do
      rm -rf "$tmpchart/charts"; mkdir -p "$tmpchart/charts"; cp -rL "$c" "$tmpchart/charts/nats"
      if "$HELM" dependency list "$tmpchart" 2>/dev/null | awk '$1 == "nats" { print $NF }' | grep -qx unpacked; then with_nats="$(basename "$c")"; break; fi
    done
    if [[ -n "$with_nats" ]]; then ok "NATS dependency: $with_nats (from $nats_vendor) satisfies helm/metaloop/Chart.yaml"
    else fail "no NATS chart in $nats_vendor satisfies the nats version of helm/metaloop/Chart.yaml"; rm -rf "$tmpchart/charts"; fi
  else
    skipped "helm with the NATS subchart: no shared/vendor/helm-charts/nats-*/ beside the clone (linted without it below)"
  fi
  if [[ -n "$with_nats" ]]; then
    ext=(); how="with $with_nats"
  else
    sed -i '/^dependencies:/,$d' "$tmpchart/Chart.yaml"
    ext=(--set nats.enabled=false --set externalNats.url=nats://nats:4222); how="without the NATS dependency"
  fi
  for values in "" helm/metaloop/examples/*.yaml; do
    label="${values:-default values}"
    if "$HELM" lint --strict "$tmpchart" "${ext[@]}" ${values:+-f "$values"} >"$LOG/lint" 2>&1 \
       && "$HELM" template metaloop "$tmpchart" "${ext[@]}" ${values:+-f "$values"} >/dev/null 2>"$LOG/tpl"; then
      ok "helm lint + template ($label, $how)"
    else
      fail "helm lint/template ($label, $how)"; cat "$LOG/lint" "$LOG/tpl" 2>/dev/null
    fi
  done
  echo "  (schema validation of every rendered object, the rendered nats.conf run in nats-server: npm test -w @metaloop/test, test/src/helm)"
else
  fail "helm could not be installed: $(tail -n 3 "$LOG/helm-install")"
fi

echo
# The last line is read by .ci/run (its closing line shows the counts and what was skipped).
if [[ $failed != 0 ]]; then echo "check-deploy: FAILED: $n_ok ok, $n_failed failed, $n_skipped skipped"; exit 1; fi
echo "check-deploy: all checks that can run here passed: $n_ok ok, $n_failed failed, $n_skipped skipped"
