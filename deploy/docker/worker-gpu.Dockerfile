# syntax=docker/dockerfile:1
# Metaloop worker on NVIDIA GPUs: @tensorflow/tfjs-node 4.22 built against the TensorFlow 2.21 C
# library of PyPI's `tensorflow` wheel (the binary CI tests on CPU: scripts/tfjs-node-from-wheel.sh),
# with CUDA 12 / cuDNN 9 from the nvidia-* wheels `tensorflow[and-cuda]` asks for. The CUDA user space
# lives in the image (/opt/tensorflow/nvidia); only the driver (libcuda.so.1, nvidia-smi) comes from
# the host through the NVIDIA container runtime. Base: node:20-bookworm-slim. Driver >= 525.60.13
# (CUDA 12); native GPU code for sm_60/70/80/89/90, PTX compute_90 for newer GPUs (docs/gpu.md).
#
#   docker build -f deploy/docker/worker-gpu.Dockerfile -t metaloop/worker-gpu:dev .
#   docker run --rm --gpus all metaloop/worker-gpu:dev --self-test --require-gpu      # check a node
#   docker run --gpus all -e METALOOP_NATS_URL=nats://nats:4222 metaloop/worker-gpu:dev
#
#   # Legacy: tfjs-node-gpu 4.22's own libtensorflow 2.9.1 (CUDA 11.2 / cuDNN 8.1, 2022) on an
#   # nvidia/cuda base, for hosts whose driver is older than CUDA 12's (R450-R515). See docs/gpu.md.
#   docker build -f deploy/docker/worker-gpu.Dockerfile --build-arg TF_RUNTIME=legacy-cuda11 -t metaloop/worker-gpu:dev-legacy-cu11 .
#
# Build context: the repository root (BuildKit reads worker-gpu.Dockerfile.dockerignore).
# The TensorFlow and CUDA versions are in scripts/gpu-runtime/requirements.txt, installed by
# scripts/gpu-runtime/install.sh; scripts/assemble-gpu-runtime.sh builds the same runtime tree
# without Docker (same scripts, same CUDA_LIBS) and checks it. Change them there, not here.

# `wheel` (default) or `legacy-cuda11`: selects the final stage below.
ARG TF_RUNTIME=wheel
ARG NODE_IMAGE=node:20-bookworm-slim
# cp311: the same tensorflow wheel file CI builds tfjs-node against.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# Legacy variant only: CUDA 11 base (11.8 + cuDNN 8.9 for Hopper with the legacy build).
ARG CUDA_IMAGE=nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04
# The CUDA library directories of install.sh's prefix; scripts/gpu-runtime/check-libs.sh fails the
# build if a nvidia/*/lib directory is missing here.
ARG CUDA_LIBS=/opt/tensorflow/nvidia/cublas/lib:/opt/tensorflow/nvidia/cuda_cupti/lib:/opt/tensorflow/nvidia/cuda_nvrtc/lib:/opt/tensorflow/nvidia/cuda_runtime/lib:/opt/tensorflow/nvidia/cudnn/lib:/opt/tensorflow/nvidia/cufft/lib:/opt/tensorflow/nvidia/curand/lib:/opt/tensorflow/nvidia/cusolver/lib:/opt/tensorflow/nvidia/cusparse/lib:/opt/tensorflow/nvidia/nccl/lib:/opt/tensorflow/nvidia/nvjitlink/lib
ARG METALOOP_UID=10001

# ---- Node 20 binaries to copy into the Python / CUDA images ----
FROM ${NODE_IMAGE} AS node

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
# No install scripts here: the native tfjs package is built in the deps stage.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY shared/ shared/
COPY worker/ worker/
RUN npx turbo run build --filter=@metaloop/worker... --output-logs=errors-only

# ---- deps (wheel): TensorFlow + CUDA wheels, production node_modules, tfjs-node built against them ----
FROM ${PYTHON_IMAGE} AS deps-wheel
ARG CUDA_LIBS
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
COPY --from=node /usr/local/include/node /usr/local/include/node
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates g++ make binutils \
 && rm -rf /var/lib/apt/lists/*
ENV LD_LIBRARY_PATH=${CUDA_LIBS} \
    PIP_NO_CACHE_DIR=1
COPY scripts/gpu-runtime/ /build/gpu-runtime/
RUN bash /build/gpu-runtime/install.sh /opt/tensorflow \
 && bash /build/gpu-runtime/check-libs.sh /opt/tensorflow
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY shared/package.json shared/
COPY client/package.json client/
COPY worker/package.json worker/
COPY coordinator/package.json coordinator/
COPY cli/package.json cli/
COPY test/package.json test/
COPY testing/package.json testing/
COPY scripts/ scripts/
# Production deps without scripts; then tfjs-node's addon is built by the script CI uses, against
# /opt/tensorflow (its deps/lib are symlinks to /opt/tensorflow/tensorflow/*.so.2), and checked;
# tfjs-node-gpu (libtensorflow 2.9.1) is not wanted in this variant.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/@tensorflow/tfjs-node-gpu \
 && METALOOP_TF_SITE=/opt/tensorflow METALOOP_CACHE=/tmp/tfjs-build bash scripts/tfjs-node-from-wheel.sh \
 && bash /build/gpu-runtime/check-libs.sh --via node_modules/@tensorflow/tfjs-node/deps/lib /opt/tensorflow node_modules/@tensorflow/tfjs-node/lib/napi-v*/tfjs_binding.node \
 && rm -rf /tmp/tfjs-build node_modules/.cache node_modules/@tensorflow/tfjs-node/build \
 && npm cache clean --force

# ---- final (wheel): slim Debian + Node, the two TensorFlow libraries, the CUDA wheels' libraries ----
FROM ${NODE_IMAGE} AS final-wheel
ARG METALOOP_UID
ARG CUDA_LIBS
LABEL org.opencontainers.image.title="metaloop-worker-gpu" \
      org.opencontainers.image.description="Metaloop worker (tfjs-node on TensorFlow 2.21, CUDA 12 / cuDNN 9 from PyPI)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid ${METALOOP_UID} metaloop \
 && useradd --system --uid ${METALOOP_UID} --gid metaloop --home-dir /app --shell /usr/sbin/nologin metaloop \
 && mkdir -p /var/cache/metaloop/cuda \
 && chown metaloop:metaloop /var/cache/metaloop/cuda
# Only the libraries: the wheel's headers (~430 MB) and Python code served the addon build.
COPY --from=deps-wheel /opt/tensorflow/tensorflow/libtensorflow_cc.so.2 /opt/tensorflow/tensorflow/libtensorflow_framework.so.2 /opt/tensorflow/tensorflow/THIRD_PARTY_NOTICES.txt /opt/tensorflow/tensorflow/
COPY --from=deps-wheel /opt/tensorflow/nvidia /opt/tensorflow/nvidia
WORKDIR /app
COPY --from=deps-wheel /app/node_modules ./node_modules
COPY --from=build /src/package.json ./
COPY --from=build /src/shared/package.json ./shared/
COPY --from=build /src/shared/dist ./shared/dist
COPY --from=build /src/shared/proto ./shared/proto
COPY --from=build /src/worker/package.json ./worker/
COPY --from=build /src/worker/dist ./worker/dist
# CUDA_CACHE_*: PTX JIT results (only GPUs without native code in the build, e.g. Blackwell) survive restarts.
ENV NODE_ENV=production \
    LD_LIBRARY_PATH=${CUDA_LIBS} \
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
HEALTHCHECK --interval=30s --timeout=5s --start-period=2m --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9401/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/worker/dist/cli.js"]

# ---- deps (legacy-cuda11): tfjs-node-gpu 4.22's own libtensorflow-gpu 2.9.1 on the CUDA base ----
FROM ${CUDA_IMAGE} AS deps-legacy-cuda11
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
COPY client/package.json client/
COPY worker/package.json worker/
COPY coordinator/package.json coordinator/
COPY cli/package.json cli/
COPY test/package.json test/
COPY testing/package.json testing/
# tfjs-node-gpu's install script fetches libtensorflow-gpu 2.9.1 and its prebuilt binding (internet).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm rebuild @tensorflow/tfjs-node-gpu \
 && rm -rf node_modules/@tensorflow/tfjs-node node_modules/.cache \
 && npm cache clean --force

# ---- final (legacy-cuda11) ----
FROM ${CUDA_IMAGE} AS final-legacy-cuda11
ARG METALOOP_UID
LABEL org.opencontainers.image.title="metaloop-worker-gpu" \
      org.opencontainers.image.description="Metaloop worker, legacy (tfjs-node-gpu, libtensorflow 2.9.1, CUDA 11)" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=node /usr/local/bin/node /usr/local/bin/node
RUN groupadd --system --gid ${METALOOP_UID} metaloop \
 && useradd --system --uid ${METALOOP_UID} --gid metaloop --home-dir /app --shell /usr/sbin/nologin metaloop \
 && mkdir -p /var/cache/metaloop/cuda \
 && chown metaloop:metaloop /var/cache/metaloop/cuda
WORKDIR /app
COPY --from=deps-legacy-cuda11 /app/node_modules ./node_modules
COPY --from=build /src/package.json ./
COPY --from=build /src/shared/package.json ./shared/
COPY --from=build /src/shared/dist ./shared/dist
COPY --from=build /src/shared/proto ./shared/proto
COPY --from=build /src/worker/package.json ./worker/
COPY --from=build /src/worker/dist ./worker/dist
# libtensorflow 2.9.1 has GPU code up to sm_75 plus compute_80 PTX: Ampere/Hopper JIT-compile it at
# first start (minutes); the cache volume keeps the result.
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
HEALTHCHECK --interval=30s --timeout=5s --start-period=10m --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9401/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/worker/dist/cli.js"]

# ---- the image: the variant TF_RUNTIME names ----
FROM final-${TF_RUNTIME}
