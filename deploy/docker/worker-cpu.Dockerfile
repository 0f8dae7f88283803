# syntax=docker/dockerfile:1
# Metaloop worker on CPUs: @tensorflow/tfjs-node 4.22 (libtensorflow 2.9.1, CPU build).
#
#   docker build -f deploy/docker/worker-cpu.Dockerfile -t metaloop/worker-cpu:dev .
#
# Build context: the repository root (BuildKit reads worker-cpu.Dockerfile.dockerignore).

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: compile the TypeScript workspaces with turbo ----
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc turbo.json tsconfig.base.json ./
COPY shared/package.json shared/
COPY client/package.json client/
COPY worker/package.json worker/
COPY coordinator/package.json coordinator/
COPY cli/package.json cli/
COPY test/package.json test/
COPY testing/package.json testing/
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY shared/ shared/
COPY worker/ worker/
RUN npx turbo run build --filter=@metaloop/worker... --output-logs=errors-only

# ---- runtime deps: production node_modules with tfjs-node's install script run ----
FROM ${NODE_IMAGE} AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY shared/package.json shared/
COPY client/package.json client/
COPY worker/package.json worker/
COPY coordinator/package.json coordinator/
COPY cli/package.json cli/
COPY test/package.json test/
COPY testing/package.json testing/
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm rebuild @tensorflow/tfjs-node \
 && rm -rf node_modules/@tensorflow/tfjs-node-gpu node_modules/.cache \
 && npm cache clean --force

# ---- final image ----
FROM ${NODE_IMAGE}
ARG METALOOP_UID=10001
LABEL org.opencontainers.image.title="metaloop-worker-cpu" \
      org.opencontainers.image.description="Metaloop worker (tfjs-node, CPU)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid ${METALOOP_UID} metaloop \
 && useradd --system --uid ${METALOOP_UID} --gid metaloop --home-dir /app --shell /usr/sbin/nologin metaloop
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/package.json ./
COPY --from=build /src/shared/package.json ./shared/
COPY --from=build /src/shared/dist ./shared/dist
COPY --from=build /src/shared/proto ./shared/proto
COPY --from=build /src/worker/package.json ./worker/
COPY --from=build /src/worker/dist ./worker/dist
ENV NODE_ENV=production \
    TF_CPP_MIN_LOG_LEVEL=1 \
    METALOOP_NATS_URL=nats://nats:4222
USER metaloop:metaloop
EXPOSE 9401
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9401/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/worker/dist/cli.js"]
