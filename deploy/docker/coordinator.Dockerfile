# syntax=docker/dockerfile:1
# Metaloop coordinator (`metaloop coordinator`); the image also carries the `metaloop` CLI:
#
#   docker build -f deploy/docker/coordinator.Dockerfile -t metaloop/coordinator:dev .
#   docker run --rm -e METALOOP_NATS_URL=... metaloop/coordinator:dev submit /specs/sinusoid.yaml
#
# Build context: the repository root (BuildKit reads coordinator.Dockerfile.dockerignore).

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: compile the TypeScript workspaces with turbo ----
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc turbo.json tsconfig.base.json ./
COPY shared/package.json shared/
COPY worker/package.json worker/
COPY coordinator/package.json coordinator/
COPY test/package.json test/
COPY testing/package.json testing/
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY shared/ shared/
COPY worker/ worker/
COPY coordinator/ coordinator/
RUN npx turbo run build --filter=@metaloop/coordinator... --output-logs=errors-only

# ---- runtime deps: production node_modules; no native tfjs (the coordinator does no training,
# `metaloop local` inside this image falls back to the wasm/cpu backends) ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY shared/package.json shared/
COPY worker/package.json worker/
COPY coordinator/package.json coordinator/
COPY test/package.json test/
COPY testing/package.json testing/
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/@tensorflow/tfjs-node node_modules/@tensorflow/tfjs-node-gpu node_modules/.cache \
 && npm cache clean --force

# ---- final image ----
FROM ${NODE_IMAGE}
ARG METALOOP_UID=10001
LABEL org.opencontainers.image.title="metaloop-coordinator" \
      org.opencontainers.image.description="Metaloop coordinator and CLI" \
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
CMD ["coordinator"]
