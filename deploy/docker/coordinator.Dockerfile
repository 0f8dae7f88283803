# syntax=docker/dockerfile:1
# Metaloop coordinator server (`metaloop-coordinator`, @metaloop/coordinator): built from a workspace
# pruned to the coordinator and what it depends on (`turbo prune --docker`: @metaloop/shared and
# @metaloop/client, the command-line frame its bin shares with the CLI), so the
# image holds no @tensorflow/*, no worker and no CLI (the `metaloop` CLI has its own image,
# cli.Dockerfile). test/src/deploy/coordinator-image.test.ts renders this image's file list by the
# same steps, without Docker.
#
#   docker build -f deploy/docker/coordinator.Dockerfile -t metaloop/coordinator:dev .
#   docker run --rm -e METALOOP_NATS_URL=nats://nats:4222 metaloop/coordinator:dev --metrics-port 9400
#
# Build context: the repository root (BuildKit reads coordinator.Dockerfile.dockerignore).

ARG NODE_IMAGE=node:20-bookworm-slim
ARG TURBO_VERSION=2.11.11

# ---- prune: json/ = the manifests and the pruned lockfile, full/ = their sources ----
FROM ${NODE_IMAGE} AS prune
ARG TURBO_VERSION
WORKDIR /src
COPY . .
RUN npx --yes "turbo@${TURBO_VERSION}" prune @metaloop/coordinator --docker --out-dir /out

# ---- build: compile @metaloop/shared, @metaloop/client and @metaloop/coordinator with turbo ----
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY --from=prune /out/json/ ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY --from=prune /out/full/ ./
COPY tsconfig.base.json ./
RUN npx turbo run build --filter=@metaloop/coordinator... --output-logs=errors-only

# ---- runtime deps: production node_modules of the pruned workspace ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY --from=prune /out/json/ ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/.cache \
 && npm cache clean --force

# ---- final image ----
FROM ${NODE_IMAGE}
ARG METALOOP_UID=10001
LABEL org.opencontainers.image.title="metaloop-coordinator" \
      org.opencontainers.image.description="Metaloop coordinator server (metaloop-coordinator)" \
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
COPY --from=build /src/coordinator/package.json ./coordinator/
COPY --from=build /src/coordinator/dist ./coordinator/dist
ENV NODE_ENV=production \
    METALOOP_NATS_URL=nats://nats:4222
USER metaloop:metaloop
EXPOSE 9400
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9400/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/coordinator/dist/cli.js"]
