"""The docker-compose deployment against the real server: the image's Triton is the local
server's, and the dashboard queries only metrics Triton exposes."""

from __future__ import annotations

import json
import re
import urllib.request

import tritonclient.http as httpclient

from emoserve import LocalServer

from ..support import ROOT


def triton_version_of_ngc_tag(tag: str) -> str:
    """NGC YY.MM → Triton 2.N: 24.01 was 2.42, one minor version a month."""
    year, month = (int(part) for part in tag.split("-")[0].split("."))
    return f"2.{42 + (year - 24) * 12 + (month - 1)}.0"


def test_the_image_runs_the_same_triton_as_the_local_server(server: LocalServer) -> None:
    base = re.search(
        r"^FROM nvcr.io/nvidia/tritonserver:(\S+)$",
        (ROOT / "deploy/triton.Dockerfile").read_text(),
        re.M,
    )
    assert base, "the Triton image must be NGC's tritonserver"
    metadata = httpclient.InferenceServerClient(server.endpoints.http_url).get_server_metadata()
    assert triton_version_of_ngc_tag(base.group(1)) == metadata["version"] == "2.51.0"


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
