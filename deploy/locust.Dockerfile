# The official Locust image, plus emoclient for the gRPC user (tritonclient and numpy only).
# The locustfile is also at /mnt/locust, where docker-compose mounts the working copy over it
# and Kubernetes (deploy/kubernetes/loadtest) runs it as built.
# checkov:skip=CKV_DOCKER_2:workers serve no endpoint; compose and Kubernetes watch the process
FROM locustio/locust:2.47.0
COPY --chown=locust pyproject.toml constraints.txt README.md /tmp/emotriton/
COPY --chown=locust client /tmp/emotriton/client
COPY --chown=locust export /tmp/emotriton/export
COPY --chown=locust server /tmp/emotriton/server
COPY --chown=locust loadtest /tmp/emotriton/loadtest
COPY --chown=locust cli /tmp/emotriton/cli
COPY --chown=locust loadtest/emoload /mnt/locust
RUN pip install --no-cache-dir /tmp/emotriton
USER locust
