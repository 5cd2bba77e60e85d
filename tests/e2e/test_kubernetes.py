"""The Kubernetes manifests against the real server: the metrics the autoscaler's rule queries are
Triton's, and the probes' paths answer."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import jsonschema

from emoserve import LocalServer

from ..manifests import ADAPTER, health_probes
from ..support import ROOT


def test_the_adapter_rule_queries_metrics_triton_exposes(server: LocalServer) -> None:
    (rule,) = ADAPTER["rules"]["custom"]
    used = set(re.findall(r"\bnv_\w+", rule["seriesQuery"] + rule["metricsQuery"]))
    assert used == {"nv_inference_queue_duration_us", "nv_inference_request_success"}
    with urllib.request.urlopen(server.endpoints.metrics_url, timeout=10) as response:
        exposed = set(re.findall(r"^(nv_\w+)", response.read().decode(), re.M))
    assert used <= exposed, used - exposed


def test_the_local_server_answers_the_probes(tmp_path: Path) -> None:
    """Triton answers every probe's path, through the guard too (an empty repository is
    enough)."""
    with LocalServer(tmp_path) as server:
        for where, (path, _) in health_probes().items():
            for address in (server.endpoints.http_url, server.config.triton_http_url):
                with urllib.request.urlopen(f"http://{address}{path}", timeout=5) as response:
                    assert response.status == 200, where


def test_the_custom_resources_schemas_are_json_schemas() -> None:
    """The CRD schemas the unit layer validates KServe's and the Prometheus Operator's objects
    against (tests/unit/schemas/custom-resources.json): large, so checked here, once."""
    schemas = json.loads((ROOT / "tests/unit/schemas/custom-resources.json").read_text())
    resources = {k: v for k, v in schemas.items() if not k.startswith("$")}
    assert resources
    for schema in resources.values():
        jsonschema.validators.validator_for(schema).check_schema(schema)
