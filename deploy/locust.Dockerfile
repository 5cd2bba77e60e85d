# The official Locust image, plus emoclient for the gRPC user (tritonclient and numpy only).
FROM locustio/locust:2.47.0
COPY --chown=locust pyproject.toml constraints.txt README.md /tmp/emotriton/
COPY --chown=locust client /tmp/emotriton/client
COPY --chown=locust export /tmp/emotriton/export
COPY --chown=locust server /tmp/emotriton/server
COPY --chown=locust loadtest /tmp/emotriton/loadtest
COPY --chown=locust cli /tmp/emotriton/cli
RUN pip install --no-cache-dir /tmp/emotriton
