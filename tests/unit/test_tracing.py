"""Tracing's settings: what Triton and the JSON API are told, from one option, and what is
refused (tests/e2e/test_json_api.py follows one request's trace through both)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from emoapi.process import ApiProcess
from emoapi.tracing import traced
from emoserve import LauncherError, LocalServer, Tracing
from emoserve.distribution import TritonDistribution
from emotriton.cli import parse
from emotriton.commands.serve import tracing_of

COLLECTOR = "http://collector:4318/v1/traces"


def triton_command(server: LocalServer, tmp_path: Path) -> list[str]:
    binary = tmp_path / "bin" / "tritonserver"
    distribution = TritonDistribution(binary, tmp_path / "lib", tmp_path, version=(2, 51, 0))
    return server.config.command(distribution, tmp_path, "emotriton_test")


def test_triton_traces_in_opentelemetry_mode_to_the_collector(tmp_path: Path) -> None:
    """Rate 0: Triton traces only the requests that carry a sampled context."""
    flags = triton_command(LocalServer(tmp_path, tracing=Tracing(COLLECTOR, rate=0)), tmp_path)
    assert "--trace-config=mode=opentelemetry" in flags
    assert f"--trace-config=opentelemetry,url={COLLECTOR}" in flags
    assert "--trace-config=rate=0" in flags and "--trace-config=level=TIMESTAMPS" in flags
    untraced = triton_command(LocalServer(tmp_path), tmp_path)
    assert not [flag for flag in untraced if flag.startswith("--trace")]


def test_the_json_api_samples_as_triton_does() -> None:
    tracing = Tracing(COLLECTOR, rate=1000)
    api = ApiProcess("localhost:8001", "127.0.0.1", 8080, ["go_emotions"], tracing)
    assert f"--trace-url={COLLECTOR}" in api.command and "--trace-rate=1000" in api.command
    provider = traced(FastAPI(), tracing)
    try:
        # A sampled parent is followed; 1 in 1000 of the requests without one is traced.
        assert "TraceIdRatioBased{0.001}" in provider.sampler.get_description()
        assert provider.sampler.get_description().startswith("ParentBased")
    finally:
        provider.shutdown()
    assert Tracing(COLLECTOR, rate=0).ratio == 0.0


@pytest.mark.parametrize("url", ["collector:4318", "grpc://collector:4317", "http://"])
def test_a_url_that_is_not_an_otlp_http_endpoint_is_refused(url: str) -> None:
    with pytest.raises(LauncherError, match="OTLP/HTTP"):
        Tracing(url)
    with pytest.raises(LauncherError, match="negative"):
        Tracing(COLLECTOR, rate=-1)


def test_serve_traces_when_its_variable_names_a_collector(monkeypatch) -> None:
    """Compose passes the variable through, empty when tracing is off."""
    monkeypatch.setenv("EMOTRITON_SERVE_TRACE_URL", "")
    assert tracing_of(parse(["serve"])) is None
    monkeypatch.setenv("EMOTRITON_SERVE_TRACE_URL", COLLECTOR)
    monkeypatch.setenv("EMOTRITON_SERVE_TRACE_RATE", "10")
    assert tracing_of(parse(["serve"])) == Tracing(COLLECTOR, rate=10)
    assert tracing_of(parse(["api", "--model", "go_emotions"])) is None  # serve's, not api's
