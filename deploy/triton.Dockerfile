# NGC Triton 24.10 = Triton 2.51.0, the binary `emotriton serve` runs from nvidia-pytriton.
# Its Python (3.10) runs the tokenizer and postprocess models; they need tokenizers, which the
# image lacks (numpy is there). The encoder runs on the image's native onnxruntime backend.
# The container runs the launcher (`emotriton serve --triton-home /opt/tritonserver`): the same
# supervisor, drain, admin-API lock and flags as a local server (docs/reliability.md).
FROM nvcr.io/nvidia/tritonserver:24.10-py3
RUN pip install --no-cache-dir "tokenizers==0.23.3" "numpy<2"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY client client
COPY export export
COPY server server
COPY loadtest loadtest
COPY cli cli
COPY train train
RUN pip install --no-cache-dir . && rm -rf /src
WORKDIR /
# Not root: the image's own unprivileged user (created if a later image lacks it).
RUN id -u triton-server >/dev/null 2>&1 || useradd --uid 1000 --create-home triton-server
USER 1000:1000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s \
  CMD curl -fsS http://localhost:8000/v2/health/ready || exit 1
