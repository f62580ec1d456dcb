# The reward service image (target `service`, the default) and a GPU trainer image (target `trainer`).
#
#   docker build -t reward-service:0.1.0 .
#   docker build --target trainer -t reward-trainer:0.1.0 .
#
# BASE_IMAGE is any Debian-like root with python3 (3.11) and its venv module: the official slim
# image by default; the tests build on a root made by debootstrap (no registry is reachable there,
# see tests/deploy/test_image.py). The service runs as uid 10001 and writes only to /tmp and to
# numba's cache, so it runs with a read-only root filesystem (k8s/base/deployment.yaml).

ARG BASE_IMAGE=python:3.11.11-slim-bookworm
# torch's CUDA wheels carry their own CUDA libraries; the base brings the NVIDIA container runtime's
# environment and the driver mount points. Ubuntu 24.04's python3 is 3.12.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-base-ubuntu24.04

# ---- service: dependencies, in a layer of their own (rebuilt only when pyproject.toml changes) ----
FROM ${BASE_IMAGE} AS service-deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml deploy/image/requirements.py ./
RUN python3 -m venv /opt/venv \
    && python3 requirements.py service > requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt

# ---- service: the code (.dockerignore lets only pyproject.toml, README.md and the packages in) ----
FROM service-deps AS service-build
COPY . .
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps . \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# ---- service: the runtime image, the venv alone on a clean base (no compilers, no torch) ----
FROM ${BASE_IMAGE} AS service
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="video-str-reward service" \
      org.opencontainers.image.description="Reward service for GRPO training of video LLMs (Video-STR relation-graph rewards)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Video-STR reward service team"
COPY --from=service-build /opt/venv /opt/venv
# numba compiles the graph kernels on first use and caches them; the package directory is not
# writable by the service user, so the cache goes here (an emptyDir on Kubernetes).
RUN mkdir -p /var/cache/numba && chown 10001:10001 /var/cache/numba
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/var/cache/numba \
    REWARD_SERVICE_PORT=8000
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000
# No curl in a slim image: the service's own Python asks /healthz (liveness: the process serves).
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('REWARD_SERVICE_PORT', '8000'), timeout=2)"]
# One `reward-service serve` per container; it forks one scoring process per CPU it may use, or
# REWARD_SERVICE_WORKERS of them (Kubernetes sets that from the CPU limit).
CMD ["reward-service", "serve", "--host", "0.0.0.0"]

# ---- trainer: GPU nodes (`grpo-train --engine vllm`), never built in CI (no CUDA base there) ----
FROM ${CUDA_IMAGE} AS trainer
# Ubuntu's own python3 and venv; the CUDA_IMAGE tag pins the Ubuntu release, and with it these.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /src
COPY pyproject.toml deploy/image/requirements.py ./
# vLLM pins its own torch (2.14.0), which [trainer]'s range admits: one resolve of both extras.
RUN python3 -m venv /opt/venv \
    && python3 requirements.py trainer vllm > requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt
COPY . .
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps .
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="video-str-reward trainer" \
      org.opencontainers.image.description="GRPO trainer for video LLMs, scored by the reward service (vLLM on GPU)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    HF_HOME=/tmp/hf
USER 10001:10001
WORKDIR /tmp
# The service URL and key come from the environment (REWARD_SERVICE_URL, REWARD_SERVICE_API_KEY).
ENTRYPOINT ["grpo-train"]
CMD ["--help"]
