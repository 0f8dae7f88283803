# syntax=docker/dockerfile:1
# The `metaloop` CLI (@metaloop/cli) for one-shot commands (compose's `cli` service): submit, list,
# watch, export, report, evaluate. Built from a workspace pruned to the CLI and what it depends on
# (`turbo prune --docker`: client, coordinator, worker, shared); no native tfjs (`evaluate` and `export`
# fall back to the wasm/cpu backends).
#
#   docker build -f deploy/docker/cli.Dockerfile -t metaloop/cli:dev .
#   docker run --rm -e METALOOP_NATS_URL=nats://nats:4222 metaloop/cli:dev list
#
# Build context: the repository root (BuildKit reads cli.Dockerfile.dockerignore).

ARG NODE_IMAGE=node:20-bookworm-slim
ARG TURBO_VERSION=2.11.11

# ---- prune: json/ = the manifests and the pruned lockfile, full/ = their sources ----
FROM ${NODE_IMAGE} AS prune
ARG TURBO_VERSION
WORKDIR /src
COPY . .
RUN npx --yes "turbo@${TURBO_VERSION}" prune @metaloop/cli --docker --out-dir /out

# ---- build ----
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY --from=prune /out/json/ ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY --from=prune /out/full/ ./
COPY tsconfig.base.json ./
RUN npx turbo run build --filter=@metaloop/cli... --output-logs=errors-only

# ---- runtime deps: production node_modules without the native tfjs addons ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY --from=prune /out/json/ ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/@tensorflow/tfjs-node node_modules/@tensorflow/tfjs-node-gpu node_modules/.cache \
 && npm cache clean --force

# ---- final image ----
FROM ${NODE_IMAGE}
ARG METALOOP_UID=10001
LABEL org.opencontainers.image.title="metaloop-cli" \
      org.opencontainers.image.description="Metaloop CLI (metaloop)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid ${METALOOP_UID} metaloop \
 && useradd --system --uid ${METALOOP_UID} --gid metaloop --home-dir /app --shell /usr/sbin/nologin metaloop
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/package.json ./
COPY --from=build /src/shared/package.json ./shared/
COPY --from=build /src/shared/dist ./shared/dist
COPY --from=build /src/shared/proto ./shared/proto
COPY --from=build /src/client/package.json ./client/
COPY --from=build /src/client/dist ./client/dist
COPY --from=build /src/worker/package.json ./worker/
COPY --from=build /src/worker/dist ./worker/dist
COPY --from=build /src/coordinator/package.json ./coordinator/
COPY --from=build /src/coordinator/dist ./coordinator/dist
COPY --from=build /src/cli/package.json ./cli/
COPY --from=build /src/cli/dist ./cli/dist
ENV NODE_ENV=production \
    METALOOP_NATS_URL=nats://nats:4222
USER metaloop:metaloop
ENTRYPOINT ["node", "/app/cli/dist/cli.js"]
CMD ["--help"]
