"""The docker-compose deployment against the real server: the image's Triton is a patched
release newer than the local server's, and the dashboard queries only metrics Triton exposes."""

from __future__ import annotations

import json
import re
import urllib.request
from importlib.metadata import version

import tritonclient.http as httpclient

from emoserve import LocalServer
from emoserve.distribution import WHEEL_VERSION

from ..support import ROOT

# NGC release → the Triton it carries (TRITON_VERSION on each release branch of
# triton-inference-server/server): 25.07 was a patch release, so the months and the minor
# versions part there.
TRITON_OF_NGC = {"24.10-py3": "2.51.0", "25.07-py3": "2.59.1", "26.09-py3": "2.73.0"}


def test_the_image_runs_a_patched_triton_the_sdk_speaks(server: LocalServer) -> None:
    """Production runs Triton 2.73 (NGC 26.09), past 2.59.1 (25.07: the August 2025 bulletin's
    fixes), whose protos tritonclient's version matches; the local server is the wheel's 2.51,
    the version the launcher assumes for it."""
    base = re.search(
        r"^FROM nvcr.io/nvidia/tritonserver:(\S+)$",
        (ROOT / "deploy/triton.Dockerfile").read_text(),
        re.M,
    )
    assert base, "the Triton image must be NGC's tritonserver"
    production = TRITON_OF_NGC[base.group(1)]
    assert tuple(map(int, production.split("."))) >= (2, 59, 1)
    assert production == version("tritonclient")  # the configs are its ModelConfig messages
    metadata = httpclient.InferenceServerClient(server.endpoints.http_url).get_server_metadata()
    local = tuple(map(int, metadata["version"].split(".")))
    assert local == WHEEL_VERSION == (2, 51, 0)


def test_the_dashboard_uses_only_metrics_triton_exposes(server: LocalServer) -> None:
    """Every nv_* series the dashboard queries is on the real server's /metrics."""
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/emotriton.json").read_text())
    used = {
        metric
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for metric in re.findall(r"\bnv_\w+", target["expr"])
    }
    assert {"nv_inference_request_success", "nv_inference_queue_duration_us"} <= used
    with urllib.request.urlopen(server.endpoints.metrics_url, timeout=10) as response:
        exposed = set(re.findall(r"^(nv_\w+)", response.read().decode(), re.M))
    assert used <= exposed, used - exposed
