"""The docker-compose deployment, checked as far as it can be without a Docker engine or a
server (tests/e2e/test_deploy.py checks it against a running server, and
tests/e2e/test_front_door.py runs compose's command for real)."""

from __future__ import annotations

import json
import re
import subprocess
import sysconfig
from pathlib import Path

import yaml

from emoserve import LocalServer
from emoserve.config import EXIT_TIMEOUT_SECS, SERVER_FLAGS, load_flags
from emoserve.distribution import TritonDistribution
from emoserve.http_rules import MAX_BODY_BYTES
from emotriton.cli import parse

from ..manifests import MONITORING, SERVICES, with_defaults
from ..support import ROOT


def test_compose_runs_the_launcher_on_the_images_triton(tmp_path: Path) -> None:
    """The container's process is `emotriton serve`, so its Triton gets SERVER_FLAGS from the
    same code as a local server's, the same supervisor and drain, and the same guards in
    front: Triton's HTTP and metrics servers on the container's loopback."""
    command = SERVICES["triton"]["command"]
    assert command[:2] == ["emotriton", "serve"]
    args = parse(command[1:])
    assert args.triton_home == Path("/opt/tritonserver") and args.repository == Path("/models")
    assert args.host == "0.0.0.0"  # the guards' and gRPC's address: the container's network
    home = args.triton_home
    server = LocalServer(tmp_path, host=args.host, triton_home=home)
    binary, backends = home / "bin" / "tritonserver", home / "backends"
    distribution = TritonDistribution(binary, home / "lib", backends, version=(2, 73, 0))
    flags = server.config.command(distribution, backends, "emotriton_test")
    assert flags[0] == str(binary) and f"--backend-directory={backends}" in flags
    start = flags.index(SERVER_FLAGS[0])
    assert tuple(flags[start : start + len(SERVER_FLAGS)]) == SERVER_FLAGS
    assert "--http-address=127.0.0.1" in flags and "--metrics-address=127.0.0.1" in flags
    assert "--grpc-address=0.0.0.0" in flags
    assert f"--http-max-input-size={MAX_BODY_BYTES}" in flags  # Triton 2.59 and later


def test_the_image_runs_a_patched_triton_under_an_init_process() -> None:
    """NGC 26.09 (Triton 2.73): the fixes of NVIDIA's 2025 and 2026 bulletins; tini as PID 1
    forwards SIGTERM to the launcher and reaps the stubs a dead tritonserver leaves."""
    dockerfile = (ROOT / "deploy/triton.Dockerfile").read_text()
    (tag,) = re.findall(r"^FROM nvcr\.io/nvidia/tritonserver:(\d\d\.\d\d)-py3$", dockerfile, re.M)
    assert tag >= "25.07"  # the August 2025 bulletin's fixes
    assert SERVICES["triton"]["image"] == f"emotriton/triton:{tag}"
    (entrypoint,) = re.findall(r"^ENTRYPOINT (.+)$", dockerfile, re.M)
    assert json.loads(entrypoint)[:2] == ["/usr/bin/tini", "--"]
    assert "init" not in SERVICES["triton"]  # the image's tini is PID 1


def test_triton_runs_unprivileged_and_has_time_to_drain() -> None:
    triton = SERVICES["triton"]
    assert not str(triton["user"]).startswith(("0", "root"))
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
    assert {with_defaults(p).split(":")[1] for p in SERVICES["triton"]["ports"]} == {
        "8000",
        "8001",
        "8002",
        "8080",  # the JSON API
    }
    assert "proxy" not in SERVICES  # the launcher's guards are the way in


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
    assert any(with_defaults(p).endswith(":8002") for p in SERVICES["triton"]["ports"])


def test_the_python_models_run_on_the_images_python() -> None:
    """The local server runs them on this interpreter (3.10 or later), NGC's images on theirs
    (3.10 in 24.10, later ones newer)."""
    vermin = Path(sysconfig.get_path("scripts")) / "vermin"
    run = subprocess.run(
        [str(vermin), "--target=3.10-", "--violations", "--no-tips",
         str(ROOT / "export/emoexport/triton_models")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


CONSOLES = {"prometheus": MONITORING, "grafana": MONITORING, "locust-master": SERVICES}


def test_consoles_stay_local_unless_asked_and_grafana_has_no_default_login() -> None:
    """Prometheus and the Locust UI have no login, Grafana had admin/admin and anonymous
    viewers: each binds to loopback unless EMOTRITON_CONSOLE_BIND says otherwise, apart from
    the serving ports' EMOTRITON_BIND, and Grafana's password is required."""
    for name, services in CONSOLES.items():
        for port in services[name]["ports"]:
            assert port.startswith("${EMOTRITON_CONSOLE_BIND:-127.0.0.1}:"), (name, port)
    grafana = MONITORING["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert "grafana" not in SERVICES  # `docker compose up triton` needs no password


def test_the_monitoring_file_extends_the_triton_service() -> None:
    assert MONITORING["prometheus"]["depends_on"] == ["triton"]
    for service in MONITORING.values():
        for volume in service.get("volumes", []):
            assert (ROOT / volume.split(":")[0]).exists(), volume


def test_only_folders_with_a_config_are_loaded(tmp_path: Path) -> None:
    for name in ("b", "a", ".staging-x", "no-config"):
        (tmp_path / name).mkdir()
    for name in ("a", "b", ".staging-x"):
        (tmp_path / name / "config.pbtxt").write_text("")
    assert load_flags(tmp_path) == ["--load-model=a", "--load-model=b"]
    assert load_flags("s3://bucket/models") == ["--load-model=*"]  # Triton lists those itself
