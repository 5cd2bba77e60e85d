# NGC Triton 26.09 = Triton 2.73.0: a release with the fixes of NVIDIA's 2025 and 2026 security
# bulletins for Triton's HTTP front end and python backend (docs/reliability.md). Locally,
# `emotriton serve` runs 2.51.0 from nvidia-pytriton; the same model repository loads on both.
# Its Python runs the tokenizer and postprocess models; they need tokenizers, which the image
# lacks (numpy is there). The encoder runs on the image's native onnxruntime backend.
# The container runs the launcher (`emotriton serve --triton-home /opt/tritonserver`): the same
# supervisor, drain, admin-API lock, HTTP guards and flags as a local server, under tini, which
# forwards SIGTERM to it and reaps the backend processes a dead tritonserver leaves.
FROM nvcr.io/nvidia/tritonserver:26.09-py3
RUN apt-get update && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir --break-system-packages "tokenizers==0.23.3"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api api
COPY client client
COPY export export
COPY server server
COPY loadtest loadtest
COPY cli cli
COPY train train
RUN pip install --no-cache-dir --break-system-packages ".[api]" && rm -rf /src
WORKDIR /
# Not root: the image's own unprivileged user (created if a later image lacks it).
RUN id -u triton-server >/dev/null 2>&1 || useradd --uid 1000 --create-home triton-server
USER 1000:1000
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/nvidia/nvidia_entrypoint.sh"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s \
  CMD curl -fsS http://localhost:8000/v2/health/ready || exit 1
