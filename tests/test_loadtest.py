"""A short headless Locust run against the local server, over both protocols."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import EMOTRITON

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_short_load_test_has_no_failures(server, protocol: str, tmp_path: Path) -> None:
    url = server.endpoints.grpc_url if protocol == "grpc" else server.endpoints.http_url
    out = tmp_path / "report"
    run = subprocess.run(
        [*EMOTRITON, "loadtest", "--model", "emotion", "--url", url, "--protocol", protocol,
         "--users", "3", "--spawn-rate", "3", "--duration", "8", "--batch-size", "8",
         "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failures"] == 0
    assert summary["requests"] > 20
    assert summary["texts"] > summary["requests"]  # batches carry several texts
    assert (out / "report.html").stat().st_size > 0
    assert "texts/s" in run.stdout and f"{protocol} 3 users" in run.stdout
