"""The docker-compose deployment, checked as far as it can be without a Docker engine or a
server: its files, and its nginx proxy with nothing behind it where nginx is installed
(tests/e2e/test_deploy.py checks it against a running server, and
tests/e2e/test_reliability.py the proxy in front of one)."""

from __future__ import annotations

import json
import subprocess
import sysconfig
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from emoclient import Client, RetryPolicy, ServerUnavailableError
from emoserve import LocalServer
from emoserve.config import EXIT_TIMEOUT_SECS, SERVER_FLAGS, free_port
from emotriton.cli import parse

from ..manifests import PROXY, SERVICES, compose_proxy, needs_nginx, upstreams, with_defaults
from ..support import ROOT


def test_compose_runs_the_launcher_on_the_images_triton(tmp_path: Path) -> None:
    """The container's process is `emotriton serve`, so its Triton gets SERVER_FLAGS from the
    same code as a local server's, and the same supervisor and drain."""
    command = SERVICES["triton"]["command"]
    assert command[:2] == ["emotriton", "serve"]
    args = parse(command[1:])
    assert args.triton_home == Path("/opt/tritonserver") and args.repository == Path("/models")
    assert args.no_http_guard  # the proxy stands in front (test_the_proxy_is_the_way_in)
    home = args.triton_home
    server = LocalServer(tmp_path, triton_home=home)
    binary, backends = home / "bin" / "tritonserver", home / "backends"
    flags = server.config.command(binary, backends, "emotriton_test")
    assert flags[0] == str(binary) and f"--backend-directory={backends}" in flags
    start = flags.index(SERVER_FLAGS[0])
    assert tuple(flags[start : start + len(SERVER_FLAGS)]) == SERVER_FLAGS


def test_the_proxy_is_the_way_in() -> None:
    """nginx, on deploy/proxy/nginx.conf, forwards to Triton's three ports: the compose upstreams
    name the triton service on the ports its launcher gives Triton, on every address."""
    proxy = SERVICES["proxy"]
    mounts = dict(volume.rsplit(":", 1)[0].split(":") for volume in proxy["volumes"])
    assert mounts == {
        "./deploy/proxy/nginx.conf": "/etc/nginx/nginx.conf",
        "./deploy/proxy/upstreams-compose.conf": "/etc/nginx/upstreams.conf",
    }
    config = (PROXY / "nginx.conf").read_text()
    assert "include upstreams.conf;" in config
    for name in ("http://triton_http", "grpc://triton_grpc", "http://triton_metrics"):
        assert f"_pass {name};" in config
    args = parse(SERVICES["triton"]["command"][1:])
    assert args.host == "0.0.0.0"
    assert upstreams(PROXY / "upstreams-compose.conf") == {
        "triton_http": f"triton:{args.http_port}",
        "triton_grpc": f"triton:{args.grpc_port}",
        "triton_metrics": f"triton:{args.metrics_port}",
    }


def test_triton_runs_unprivileged_and_has_time_to_drain() -> None:
    triton = SERVICES["triton"]
    assert not str(triton["user"]).startswith(("0", "root"))
    assert triton["init"] is True
    grace = int(triton["stop_grace_period"].removesuffix("s"))
    assert grace > EXIT_TIMEOUT_SECS
    assert "EMOTRITON_ADMIN_KEY" in triton["environment"]


def test_mounted_paths_exist() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    assert "./model_repository:/models:ro" in SERVICES["triton"]["volumes"]


def test_ports_bind_to_loopback_by_default() -> None:
    published = [port for service in SERVICES.values() for port in service.get("ports", [])]
    assert published
    for port in published:
        assert with_defaults(port).startswith("127.0.0.1:"), port
    assert "ports" not in SERVICES["triton"]  # reached through the proxy only
    assert {with_defaults(p).split(":")[1] for p in SERVICES["proxy"]["ports"]} == {
        "8000",
        "8001",
        "8002",
    }


def test_triton_is_health_checked_and_has_shared_memory() -> None:
    triton = SERVICES["triton"]
    assert "/v2/health/ready" in " ".join(triton["healthcheck"]["test"])
    assert triton["shm_size"]


def test_the_gpu_override_reserves_devices() -> None:
    override = yaml.safe_load((ROOT / "docker-compose.gpu.yml").read_text())
    (device,) = override["services"]["triton"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]


def test_prometheus_scrapes_tritons_metrics_port() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    targets = [
        t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    ]
    assert targets == ["triton:8002"]
    assert any(with_defaults(p).endswith(":8002") for p in SERVICES["proxy"]["ports"])


def test_the_python_models_run_on_the_images_python() -> None:
    """NGC 24.10 runs python-backend models with its Python 3.10."""
    vermin = Path(sysconfig.get_path("scripts")) / "vermin"
    run = subprocess.run(
        [str(vermin), "--target=3.10-", "--violations", "--no-tips",
         str(ROOT / "export/emoexport/triton_models")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


@needs_nginx
def test_the_compose_proxy_says_unavailable_while_triton_is_down(tmp_path: Path) -> None:
    """With nothing behind it (Triton restarting), the proxy answers a JSON 503, as Triton and
    the local guard do, and the SDK raises the retryable ServerUnavailableError."""
    dead = f"127.0.0.1:{free_port()}"
    with compose_proxy(tmp_path, dead, dead, dead) as ports:
        request = urllib.request.Request(f"http://127.0.0.1:{ports[8000]}/v2/health/ready")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 503 and "error" in json.loads(refused.value.read())
        once = RetryPolicy(attempts=1)
        client = Client(f"127.0.0.1:{ports[8000]}", protocol="http", retry=once)
        with client, pytest.raises(ServerUnavailableError):
            client.classify("I am so glad", model="go_emotions")
