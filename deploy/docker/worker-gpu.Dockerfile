# syntax=docker/dockerfile:1
# Metaloop worker on NVIDIA GPUs: @tensorflow/tfjs-node-gpu 4.22 (libtensorflow 2.9.1, which
# loads libcudart.so.11.0 and libcudnn.so.8 at start).
#
#   docker build -f deploy/docker/worker-gpu.Dockerfile -t metaloop/worker-gpu:dev .
#   # CUDA 11.8 + cuDNN 8.9 variant (Hopper, newer Ampere): see deploy/README.md
#   docker build -f deploy/docker/worker-gpu.Dockerfile \
#     --build-arg CUDA_IMAGE=nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu20.04 -t metaloop/worker-gpu:dev-cu118 .
#   docker run --gpus all -e METALOOP_NATS_URL=nats://nats:4222 -v metaloop-cuda-cache:/var/cache/metaloop/cuda ...
#
# Build context: the repository root (BuildKit reads worker-gpu.Dockerfile.dockerignore).
#
# PTX JIT caveat: libtensorflow 2.9.1 ships GPU code up to sm_75 plus compute_80 PTX. On Ampere
# (sm_80/86/89) and Hopper (sm_90) the driver JIT-compiles that PTX when the process first runs
# a kernel: the first start can take minutes with the GPU looking idle. The result is kept in the
# CUDA compute cache (CUDA_CACHE_PATH, up to CUDA_CACHE_MAXSIZE bytes); mount a volume there so
# restarts skip the JIT. cuDNN 8.1 (the 11.2.2 image) predates Hopper: use the 11.8 variant there.

ARG CUDA_IMAGE=nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04
ARG NODE_IMAGE=node:20-bookworm-slim

# ---- Node 20 binaries to copy into the CUDA image (official builds need glibc >= 2.28) ----
FROM ${NODE_IMAGE} AS node

# ---- build: compile the TypeScript workspaces with turbo ----
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc turbo.json tsconfig.base.json ./
COPY shared/package.json shared/
COPY worker/package.json worker/
COPY coordinator/package.json coordinator/
COPY test/package.json test/
# No install scripts here: the native tfjs packages are built in the runtime-deps stage.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY shared/ shared/
COPY worker/ worker/
RUN npx turbo run build --filter=@metaloop/worker... --output-logs=errors-only

# ---- runtime deps: production node_modules, built on the runtime's own OS (glibc) ----
FROM ${CUDA_IMAGE} AS deps
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
COPY --from=node /usr/local/include/node /usr/local/include/node
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY shared/package.json shared/
COPY worker/package.json worker/
COPY coordinator/package.json coordinator/
COPY test/package.json test/
# Production deps without scripts, then run the install script of tfjs-node-gpu alone (it fetches
# libtensorflow-gpu 2.9.1 and the prebuilt binding, or builds it with the tools above); the CPU
# tfjs-node is not wanted here.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm rebuild @tensorflow/tfjs-node-gpu \
 && rm -rf node_modules/@tensorflow/tfjs-node node_modules/.cache \
 && npm cache clean --force

# ---- final image ----
FROM ${CUDA_IMAGE}
ARG METALOOP_UID=10001
LABEL org.opencontainers.image.title="metaloop-worker-gpu" \
      org.opencontainers.image.description="Metaloop worker (tfjs-node-gpu, CUDA)" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=node /usr/local/bin/node /usr/local/bin/node
RUN groupadd --system --gid ${METALOOP_UID} metaloop \
 && useradd --system --uid ${METALOOP_UID} --gid metaloop --home-dir /app --shell /usr/sbin/nologin metaloop \
 && mkdir -p /var/cache/metaloop/cuda \
 && chown metaloop:metaloop /var/cache/metaloop/cuda
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/package.json ./
COPY --from=build /src/shared/package.json ./shared/
COPY --from=build /src/shared/dist ./shared/dist
COPY --from=build /src/shared/proto ./shared/proto
COPY --from=build /src/worker/package.json ./worker/
COPY --from=build /src/worker/dist ./worker/dist
ENV NODE_ENV=production \
    TF_FORCE_GPU_ALLOW_GROWTH=true \
    TF_CPP_MIN_LOG_LEVEL=1 \
    CUDA_CACHE_PATH=/var/cache/metaloop/cuda \
    CUDA_CACHE_MAXSIZE=4294967296 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    METALOOP_NATS_URL=nats://nats:4222
VOLUME ["/var/cache/metaloop/cuda"]
USER metaloop:metaloop
EXPOSE 9401
# /healthz on the worker's metrics port (9401). The first start may JIT PTX for minutes (above):
# the start period is long on purpose.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10m --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9401/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/worker/dist/cli.js"]
