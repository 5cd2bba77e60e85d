# NGC Triton 24.10 = Triton 2.51.0, the binary `emotriton serve` runs from nvidia-pytriton.
# Its Python (3.10) runs the tokenizer and postprocess models; they need tokenizers, which the
# image lacks (numpy is there). The encoder runs on the image's native onnxruntime backend.
FROM nvcr.io/nvidia/tritonserver:24.10-py3
RUN pip install --no-cache-dir "tokenizers==0.23.3" "numpy<2"
# The image's own non-root user (uid 1000); Kubernetes runs it as that uid too.
USER triton-server
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s \
  CMD curl -fsS http://localhost:8000/v2/health/ready || exit 1
