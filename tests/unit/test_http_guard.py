"""The local server's HTTP guard (emoserve.http_guard): deploy/proxy/nginx.conf's rules, and what
it forwards arrives unchanged, both ways. The upstream here is a plain recording HTTP server; the
guard in front of the real Triton is in tests/e2e/test_reliability.py."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from emoclient import Client, RetryPolicy, ServerUnavailableError
from emoserve.config import free_port
from emoserve.http_guard import FORM_TYPES, MAX_BODY_BYTES, HttpGuard, refusal

from ..support import ROOT

NGINX = (ROOT / "deploy/proxy/nginx.conf").read_text()


def test_the_rules_are_the_compose_proxys() -> None:
    (megabytes,) = re.findall(r"client_max_body_size (\d+)m;", NGINX)
    assert int(megabytes) * 2**20 == MAX_BODY_BYTES
    assert tuple(re.findall(r'"~\*\^([^"]+)" 1;', NGINX)) == FORM_TYPES


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        "Application/X-WWW-Form-URLEncoded",
        " application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "MULTIPART/mixed",
    ],
)
def test_form_bodies_are_refused_whatever_their_case_and_parameters(content_type: str) -> None:
    assert refusal([content_type], 10)[0] == 415
    assert refusal([content_type], None)[0] == 415  # chunked
    assert refusal(["application/json", content_type], 10)[0] == 415  # a second header


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/octet-stream", "text/plain", "application"]
)
def test_other_bodies_pass_up_to_the_limit(content_type: str) -> None:
    assert refusal([content_type], MAX_BODY_BYTES) is None
    assert refusal([content_type], None) is None  # chunked: counted as it is read
    assert refusal([], 0) is None
    assert refusal([content_type], MAX_BODY_BYTES + 1)[0] == 413


@dataclass
class Seen:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Upstream:
    """A recording HTTP/1.1 server: it answers `/status/N` with N, `/gzip` with a gzipped body
    (Content-Encoding: gzip), anything else 200 with the length of the body it read; every
    answer carries X-Answer twice. `stop()` closes its connections too, as a dying Triton."""

    port: int
    seen: list[Seen] = field(default_factory=list)
    connections: list[socket.socket] = field(default_factory=list)

    def start(self) -> Upstream:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                upstream.connections.append(self.connection)

            def answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                upstream.seen.append(Seen(self.command, self.path, self.headers.items(), body))
                status, reply, headers = 200, str(len(body)).encode(), []
                if self.path.startswith("/status/"):
                    status = int(self.path.rsplit("/", 1)[1])
                    headers = [("Location", "/elsewhere")]
                elif self.path == "/gzip":
                    reply, headers = gzip.compress(b"x" * 1000), [("Content-Encoding", "gzip")]
                self.send_response(status)
                for name, value in [*headers, ("X-Answer", "1"), ("X-Answer", "2")]:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_GET = do_POST = do_PUT = do_DELETE = answer

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


@pytest.fixture()
def upstream() -> Iterator[Upstream]:
    running = Upstream(free_port()).start()
    yield running
    running.stop()


@pytest.fixture()
def guard(upstream: Upstream) -> Iterator[HttpGuard]:
    running = HttpGuard("127.0.0.1", free_port(), f"127.0.0.1:{upstream.port}").start()
    yield running
    running.stop()


def connect(guard: HttpGuard) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(guard.host, guard.port, timeout=30)


def test_a_request_and_its_answer_pass_unchanged(guard: HttpGuard, upstream: Upstream) -> None:
    body = b'{"inputs": []}' + bytes(range(256))
    headers = {
        "Content-Type": "application/json",
        "emotriton-admin-key": "k",
        "Inference-Header-Content-Length": "14",
        "User-Agent": "test",
    }
    connection = connect(guard)
    connection.putrequest("POST", "/v2/models/m/infer?a=1&b=%2F%20x", skip_accept_encoding=True)
    for name, value in [*headers.items(), ("Content-Length", str(len(body)))]:
        connection.putheader(name, value)
    connection.endheaders(body)
    answer = connection.getresponse()
    assert (answer.status, answer.read()) == (200, str(len(body)).encode())
    assert answer.headers.get_all("X-Answer") == ["1", "2"]
    (seen,) = upstream.seen
    assert (seen.method, seen.path, seen.body) == ("POST", "/v2/models/m/infer?a=1&b=%2F%20x", body)
    sent = {name.lower(): value for name, value in seen.headers}
    assert headers.items() <= {name: sent[name.lower()] for name in headers}.items()
    # Nothing the client did not send (aiohttp would add Accept-Encoding, and get gzip).
    # Host, Content-Length and Connection are the guard's own connection's: it closes each one.
    assert set(sent) == {name.lower() for name in headers} | {
        "host",
        "content-length",
        "connection",
    }
    assert sent["connection"] == "close"


def test_statuses_and_encodings_come_back_as_triton_sent_them(guard: HttpGuard) -> None:
    connection = connect(guard)
    for status in (302, 404, 500):
        connection.request("GET", f"/status/{status}")
        answer = connection.getresponse()
        answer.read()
        assert (answer.status, answer.headers["Location"]) == (status, "/elsewhere")
    connection.request("GET", "/gzip", headers={"Accept-Encoding": "gzip"})
    answer = connection.getresponse()
    assert answer.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(answer.read()) == b"x" * 1000


def test_keep_alive_and_chunked_bodies(guard: HttpGuard, upstream: Upstream) -> None:
    connection = connect(guard)
    chunks = [b"a" * 70_000, b"b" * 5, b"c" * 300_000]
    for _ in range(3):  # one connection
        connection.request("POST", "/v2", iter(chunks), {"Content-Type": "application/json"})
        answer = connection.getresponse()
        assert answer.read() == str(sum(map(len, chunks))).encode()
        assert not answer.will_close
    assert [seen.body for seen in upstream.seen] == [b"".join(chunks)] * 3


def test_the_largest_body_passes_whole(guard: HttpGuard, upstream: Upstream) -> None:
    connection = connect(guard)
    connection.request("POST", "/v2", b"x" * MAX_BODY_BYTES, {"Content-Type": "application/json"})
    assert connection.getresponse().read() == str(MAX_BODY_BYTES).encode()
    assert len(upstream.seen[0].body) == MAX_BODY_BYTES


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/x-www-form-urlencoded", b"a" * (5 * 2**20), 415),
        ("multipart/form-data; boundary=x", b"a", 415),
        ("application/json", b"a" * (MAX_BODY_BYTES + 1), 413),
    ],
)
@pytest.mark.parametrize("chunked", [False, True])
def test_refused_bodies_never_reach_triton(
    guard: HttpGuard, upstream: Upstream, content_type: str, body: bytes, status: int, chunked: bool
) -> None:
    connection = connect(guard)
    sent = iter([body[i : i + 2**20] for i in range(0, len(body), 2**20)]) if chunked else body
    connection.request("POST", "/v2/health/ready", sent, {"Content-Type": content_type})
    answer = connection.getresponse()
    assert answer.status == status
    assert answer.headers["Content-Type"].startswith("application/json")
    assert b'"error"' in answer.read()
    connection.request("GET", "/v2/health/ready")  # the connection still serves
    assert connection.getresponse().status == 200
    assert [seen.path for seen in upstream.seen] == ["/v2/health/ready"]


def test_a_restart_behind_it_is_a_retryable_503(guard: HttpGuard, upstream: Upstream) -> None:
    """While Triton restarts, answers come at once, 503 in Triton's error shape, which the SDK
    raises as ServerUnavailableError (and retries); then it forwards again, same port."""
    url = f"{guard.host}:{guard.port}"
    connection = connect(guard)
    connection.request("GET", "/v2/health/ready")
    assert connection.getresponse().read() == b"0"  # forwarded
    upstream.stop()
    started = time.monotonic()
    connection.request("GET", "/v2/health/ready")
    answer = connection.getresponse()
    assert answer.status == 503 and b"not answering" in answer.read()
    assert time.monotonic() - started < 1
    with (
        Client(url, protocol="http", retry=RetryPolicy(attempts=1)) as client,
        pytest.raises(ServerUnavailableError),
    ):
        client.classify("text", model="go_emotions")
    restarted = Upstream(upstream.port).start()
    try:
        connection.request("GET", "/v2/health/ready")
        assert connection.getresponse().status == 200
    finally:
        restarted.stop()
