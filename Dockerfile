# syntax=docker/dockerfile:1.7
# `mcga serve` in a small, non-root image with the bundled weights baked in.
#
#   docker build -t mcga:cpu .                                 # CPU (default): torch's CPU-only wheel
#   docker build --build-arg VARIANT=cuda -t mcga:cuda .       # CUDA: torch's CUDA wheel (CUDA libs bundled)
#
# The CUDA image needs only the NVIDIA driver on the host (nvidia-container-toolkit); `MCGA_DEVICE=auto`
# picks the GPU when one is visible. The build fails when model/weights/mcga_s2.pt is missing.

ARG PYTHON_VERSION=3.11
ARG VARIANT=cpu

# ---- build: one virtual environment with torch, the project and its weights ------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build-base
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

FROM build-base AS torch-cpu
ARG TORCH_VERSION=2.13.0
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}"

FROM build-base AS torch-cuda
ARG TORCH_VERSION=2.13.0
# PyPI's Linux wheel is the CUDA build (the nvidia-* runtime libraries come as its dependencies).
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}"

# hadolint ignore=DL3006
FROM torch-${VARIANT} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
# The dependencies in a layer of their own, so that a change to the sources does not reinstall them.
RUN python -c "import subprocess, sys, tomllib; \
deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--no-cache-dir', *deps])"
COPY model ./model
COPY service ./service
# A regular (non-editable) install: the weights travel as package data into site-packages, where
# Settings.weights points by default. Fail here, not at start-up, when they are missing; `-P` keeps
# /src off sys.path, so the check reads the installed package, not the sources beside it.
RUN pip install --no-cache-dir --no-deps . \
    && python -P -c "from service.settings import BUNDLED_WEIGHTS as w; assert w.is_file(), f'no weights at {w}'"

# ---- runtime: the virtual environment on a slim Python, as an unprivileged user --------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ARG VARIANT
LABEL org.opencontainers.image.title="mcga" \
      org.opencontainers.image.description="RGB-to-hyperspectral model server (REST + gRPC)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.mcga.variant="${VARIANT}"
RUN groupadd --system --gid 10001 mcga \
    && useradd --system --uid 10001 --gid mcga --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin mcga
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    MCGA_HOST=0.0.0.0 \
    MCGA_HTTP_PORT=8000 \
    MCGA_GRPC_PORT=50051 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000 50051
# Docker's health is readiness (weights loaded, warm-up done, Redis reachable when required): compose
# starts dependants on it. Kubernetes ignores it and probes /healthz and /readyz itself.
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('MCGA_HTTP_PORT', '8000'), timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["mcga"]
CMD ["serve"]
