# Two images from one file (docker-compose.yml builds both):
#   --target api     python:3.11-slim without torch or any engine: the API never imports them
#                    (tests/test_compose.py checks that, so this image stays small).
#   --target worker  CUDA 12.8 + cuDNN runtime with torch==2.13.0 from PyTorch's CUDA index.
# The source tree lives in /app and is installed editable: `stt migrate` finds alembic.ini and
# migrations/ beside the code. Both images run as the unprivileged user `stt` (uid 10001).

ARG PYTHON_IMAGE=python:3.11-slim
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS api

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN useradd --system --uid 10001 --create-home --home-dir /home/stt stt \
    && install -d -o stt -g stt /opt/hustmedia/python/tts/wav2vec2

# Runtime dependencies first (a cached layer), minus the engines' packages the API never loads.
COPY pyproject.toml ./
RUN python -c "import tomllib; \
engines = ('torch', 'transformers', 'silero-vad', 'onnxruntime', 'pyctcdecode', 'faster-whisper', 'scipy'); \
deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
print('\n'.join(d for d in deps if not d.lower().startswith(engines)))" > /tmp/api-requirements.txt \
    && pip install -r /tmp/api-requirements.txt

COPY alembic.ini ./
COPY migrations ./migrations
COPY shared ./shared
COPY worker ./worker
COPY api ./api
COPY stt_cli ./stt_cli
RUN pip install --no-deps -e .

USER stt
ENV STT_HOST=0.0.0.0 \
    STT_PORT=8789 \
    STT_DATA_DIR=/opt/hustmedia/python/tts/wav2vec2 \
    STT_VAR_DIR=/opt/hustmedia/python/tts/wav2vec2/var
EXPOSE 8789
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8789/healthz', timeout=3)"
CMD ["stt", "api"]

# ---------------------------------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS worker

ARG TORCH_VERSION=2.13.0
# The wheel index must match a CUDA version the host driver supports (cu126, cu128, cu130 ...).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv \
    && useradd --system --uid 10001 --create-home --home-dir /home/stt stt \
    && install -d -o stt -g stt /opt/hustmedia/python/tts/wav2vec2 /cache /cache/huggingface

# torch from the CUDA index first: a plain `pip install .` would resolve PyPI's default build.
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"
WORKDIR /app
COPY pyproject.toml ./
RUN python -c "import tomllib; \
deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
print('\n'.join(d for d in deps if not d.lower().startswith('torch')))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# The Conformer CTC model, cut out of the pinned viet-asr wheel (shared/speech/models/conformer.py) at
# build time so the worker serves it without a download. It lives in /opt/vi-stt/models, not
# under /cache: the model-cache volume mounted at /cache hides what the image has there. Run it
# with STT_ENGINE=conformer STT_MODEL=/opt/vi-stt/models/viet-asr-conformer. Only the assembler's
# modules are copied first, so source edits elsewhere do not fetch the wheel again.
COPY shared/__init__.py shared/errors.py ./shared/
COPY shared/speech/__init__.py ./shared/speech/
COPY shared/speech/models ./shared/speech/models
RUN python -c "from pathlib import Path; from shared.speech.models.conformer import ensure_conformer; \
ensure_conformer(Path('/opt/vi-stt/models'))"

COPY alembic.ini ./
COPY migrations ./migrations
COPY shared ./shared
COPY worker ./worker
COPY api ./api
COPY stt_cli ./stt_cli
RUN pip install --no-deps -e .

USER stt
# Models download into the cache volume once and are reused by every later container.
ENV HF_HOME=/cache/huggingface \
    STT_MODEL_CACHE_DIR=/cache/vi-stt \
    STT_DATA_DIR=/opt/hustmedia/python/tts/wav2vec2 \
    STT_VAR_DIR=/opt/hustmedia/python/tts/wav2vec2/var \
    STT_WORKER_METRICS_HOST=0.0.0.0 \
    STT_WORKER_METRICS_PORT=9808
EXPOSE 9808
HEALTHCHECK --interval=30s --timeout=5s --start-period=900s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9808/metrics', timeout=3)"
CMD ["stt", "worker"]
