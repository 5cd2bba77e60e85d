"""The local server launcher: binding, readiness, clean shutdown, failures that explain why."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from emoclient import Client
from emoclient.protocol import ADMIN_HEADER
from emoserve import LauncherError, LocalServer, config
from emoserve.config import EXIT_TIMEOUT_SECS, free_port, free_ports

from ..support import EMOTRITON
from .traffic import KEY


def listening_addresses(port: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Local addresses with a listening TCP socket on `port`, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                # The kernel prints each 32-bit word of the address in host (little-endian) order.
                words = [bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, len(address), 8)]
                found.add(ipaddress.ip_address(b"".join(words)))
    return found


def is_loopback(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...); None if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields


def live_processes() -> dict[int, list[str]]:
    stats = {int(e.name): _stat(int(e.name)) for e in Path("/proc").iterdir() if e.name.isdigit()}
    return {pid: fields for pid, fields in stats.items() if fields is not None}


def processes_in_group(group: int) -> list[int]:
    return [pid for pid, fields in live_processes().items() if int(fields[2]) == group]


def descendants(root: int) -> list[int]:
    processes = live_processes()
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, fields in processes.items() if int(fields[1]) == parent]
        found += children
        frontier += children
    return found


def test_binds_loopback_and_stops_with_all_its_processes(repository: Path) -> None:
    server = LocalServer(repository).start()
    try:
        group = server.process.pid
        assert len(processes_in_group(group)) > 1  # tritonserver and its python backend stubs
        for port in (
            server.endpoints.http_port,  # the guards'
            server.endpoints.metrics_port,
            server.config.triton_http_port,  # Triton's own, behind the guards
            server.config.triton_metrics_port,
            server.endpoints.grpc_port,
        ):
            addresses = listening_addresses(port)
            assert addresses and all(map(is_loopback, addresses)), addresses
        # Through the guards: Triton's stop waits for open HTTP connections, so the guards must
        # hold none to it (pooled ones made every stop wait out the exit timeout).
        for url in (
            f"http://{server.endpoints.http_url}/v2/health/ready",
            server.endpoints.metrics_url,
        ):
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.status == 200
    finally:
        stopping = time.monotonic()
        server.stop()
    assert time.monotonic() - stopping < EXIT_TIMEOUT_SECS / 2
    assert processes_in_group(group) == []


def test_a_broken_repository_fails_with_the_servers_reason(tmp_path: Path) -> None:
    model = tmp_path / "broken"
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text('backend: "no_such_backend"\nmax_batch_size: 1\n')
    with pytest.raises(LauncherError) as caught:
        LocalServer(tmp_path, startup_timeout=60).start()
    assert "no_such_backend" in str(caught.value)


def test_serve_command_serves_the_json_api_and_stops_cleanly_on_sigterm(repository: Path) -> None:
    ports = [str(port) for port in free_ports(4)]
    serve = subprocess.Popen(
        [
            *EMOTRITON,
            "serve",
            "--repository",
            str(repository),
            "--http-port",
            ports[0],
            "--grpc-port",
            ports[1],
            "--metrics-port",
            ports[2],
            "--api-port",
            ports[3],
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        banner = ""
        deadline = time.monotonic() + 120
        while "Ctrl-C stops it." not in banner and time.monotonic() < deadline:
            line = serve.stdout.readline()
            if not line:
                break
            banner += line
        assert "go_emotions" in banner and f"127.0.0.1:{ports[1]}" in banner
        api = f"http://127.0.0.1:{ports[3]}"
        assert api in banner  # and it answers as soon as the banner says so
        request = urllib.request.Request(
            f"{api}/classify",
            json.dumps({"texts": ["so happy"], "model": "emotion"}).encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert json.load(answer)["results"][0]["index"] == 0
        server_processes = descendants(serve.pid)
        assert len(server_processes) > 2  # the API, tritonserver and its python backend stubs
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=60) == 0
        assert [pid for pid in server_processes if _stat(pid) is not None] == []
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)


def test_a_port_taken_before_triton_binds_it_gets_nothing(
    toy_repository: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The launcher picks Triton's loopback ports free and Triton binds them a moment later: a
    local user who takes one in between and answers "ready" would get the launcher's admin calls
    (with the key) and clients' texts. The launcher serves only through ports its own
    tritonserver holds: it refuses to start, and the squatter sees no key."""
    seen: list[dict[str, str]] = []

    class Squatter(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    squatter = ThreadingHTTPServer(("127.0.0.1", 0), Squatter)
    threading.Thread(target=squatter.serve_forever, daemon=True).start()
    squatted = squatter.server_address[1]
    pick = config.free_ports

    def squatted_first(count: int, host: str = "127.0.0.1", taken: tuple = ()) -> list[int]:
        return [squatted, *pick(count - 1, host, (*taken, squatted))]  # Triton's HTTP port

    server = LocalServer(toy_repository, admin_key=KEY, grpc_port=free_port())
    monkeypatch.setattr(config, "free_ports", squatted_first)
    try:
        with pytest.raises(LauncherError, match=f"{squatted}|exited"):
            server.start()
        assert server.config.triton_http_port == squatted  # Triton was told the squatter's port
    finally:
        server.stop()
        squatter.shutdown()
        squatter.server_close()
    assert not [headers for headers in seen if ADMIN_HEADER in {h.lower() for h in headers}]
    assert KEY not in str(seen)


def test_what_a_killed_export_leaves_does_not_stop_the_server(
    toy_repository: Path, tmp_path: Path
) -> None:
    """An export stages its folders inside the repository and moves them in when they pass its
    gates; one killed meanwhile leaves the staging folder, without a config of its own. Triton's
    `--load-model=*` took it for a model and failed to start ("failed to load all models")."""
    repository = tmp_path / "repository"
    shutil.copytree(toy_repository, repository)
    left = repository / ".staging-k1ll3d" / "go_emotions_tokenizer"
    shutil.copytree(toy_repository / "go_emotions_tokenizer", left)
    (repository / "backup-of-nothing").mkdir()
    with LocalServer(repository) as server, Client(server.endpoints.grpc_url) as client:
        assert client.classify("it works", model="go_emotions")[0].scores
