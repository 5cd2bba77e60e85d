# `emotriton export` without a local Python: docker compose run --rm export [ARGS]
# checkov:skip=CKV_DOCKER_2:a one-shot command, not a service: nothing to health-check
# checkov:skip=CKV_DOCKER_3:compose runs it on a bind-mounted host folder whose owner it cannot know; Kubernetes runs it as uid 10001
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY client client
COPY export export
COPY server server
COPY loadtest loadtest
COPY cli cli
COPY train train
# The committed default model, which the Kubernetes export Job exports from /src.
COPY models models
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install --no-cache-dir -c constraints.txt ".[export]"
WORKDIR /work
ENTRYPOINT ["emotriton"]
