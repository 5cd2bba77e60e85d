"""The HTTP guard (emoserve.http_guard) in front of a plain recording HTTP server: what passes
arrives as a plain request, answers come back as they were sent, what the rules refuse never
arrives, and one client cannot hold more than its share. The rules themselves are
tests/unit/test_http_rules.py; the guard in front of the real Triton is
tests/e2e/test_front_door.py."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from emoclient import Client, RetryPolicy, ServerUnavailableError
from emoclient.protocol import ADMIN_HEADER
from emoserve import http_guard
from emoserve.config import free_port
from emoserve.http_guard import HttpGuard
from emoserve.http_rules import MAX_BODY_BYTES


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
    empty: bool = False  # answer 200 with an empty body, as Triton's health endpoints do

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
                if upstream.empty:
                    reply = b""
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


@contextlib.contextmanager
def running(guard: HttpGuard) -> Iterator[HttpGuard]:
    guard.start()
    try:
        yield guard
    finally:
        guard.stop()


@pytest.fixture()
def guard(upstream: Upstream) -> Iterator[HttpGuard]:
    with running(HttpGuard("127.0.0.1", free_port(), f"127.0.0.1:{upstream.port}")) as started:
        yield started


def connect(guard: HttpGuard) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(guard.host, guard.port, timeout=30)


def binary_request() -> tuple[bytes, int]:
    """An inference request in Triton's binary extension: (body, length of its JSON part)."""
    data = struct.pack("<I", 4) + b"abcd"
    header = json.dumps(
        {"inputs": [{"name": "TEXT", "datatype": "BYTES", "shape": [1, 1],
                     "parameters": {"binary_data_size": len(data)}}]}
    ).encode()  # fmt: skip
    return header + data, len(header)


def test_a_request_and_its_answer_pass_unchanged(guard: HttpGuard, upstream: Upstream) -> None:
    body, length = binary_request()
    headers = {
        "Content-Type": "application/octet-stream",
        "emotriton-admin-key": "k",
        "Inference-Header-Content-Length": str(length),
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
    chunks = [b'["' + b"a" * 70_000, b"b" * 5, b"c" * 300_000 + b'"]']
    for _ in range(3):  # one connection
        connection.request("POST", "/v2", iter(chunks), {"Content-Type": "application/json"})
        answer = connection.getresponse()
        assert answer.read() == str(sum(map(len, chunks))).encode()
        assert not answer.will_close
    assert [seen.body for seen in upstream.seen] == [b"".join(chunks)] * 3


def test_the_largest_body_passes_whole(guard: HttpGuard, upstream: Upstream) -> None:
    connection = connect(guard)
    largest = b'"' + b"x" * (MAX_BODY_BYTES - 2) + b'"'  # a JSON document, the size of the limit
    connection.request("POST", "/v2", largest, {"Content-Type": "application/json"})
    assert connection.getresponse().read() == str(MAX_BODY_BYTES).encode()
    assert len(upstream.seen[0].body) == MAX_BODY_BYTES


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/x-www-form-urlencoded", b"a" * (5 * 2**20), 415),
        ("multipart/form-data; boundary=x", b"a", 415),
        ("application/json", b"a" * (MAX_BODY_BYTES + 1), 413),
        ("application/json", b'{"inputs": [', 400),
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


def test_compressed_bodies_arrive_inflated_and_form_labelled_json_as_json(
    guard: HttpGuard, upstream: Upstream
) -> None:
    """Triton would answer a compressed body it cannot inflate as an empty one: it gets the
    body plain, without the Content-Encoding; and JSON that curl -d labels a form, as JSON."""
    document = json.dumps({"inputs": [{"name": "TEXT", "datatype": "BYTES", "shape": [1, 1],
                                       "data": ["hi"]}]}).encode()  # fmt: skip
    connection = connect(guard)
    packed = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    connection.request("POST", "/v2/models/m/infer", gzip.compress(document), packed)
    assert connection.getresponse().read() == str(len(document)).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    connection.request("POST", "/v2/models/m/infer", document, form)
    assert connection.getresponse().read() == str(len(document)).encode()
    inflated, relabelled = upstream.seen
    assert inflated.body == relabelled.body == document
    assert "Content-Encoding" not in dict(inflated.headers)
    assert dict(relabelled.headers)["Content-Type"] == "application/json"


def test_health_answers_get_their_kserve_body(guard: HttpGuard, upstream: Upstream) -> None:
    """The recording server answers "0" (not empty): only an empty answer gets a body."""
    upstream.empty = True
    connection = connect(guard)
    connection.request("GET", "/v2/health/live")
    answer = connection.getresponse()
    assert (answer.status, json.loads(answer.read())) == (200, {"live": True})


def test_the_index_is_readable_without_the_key(upstream: Upstream) -> None:
    with running(HttpGuard("127.0.0.1", free_port(), f"127.0.0.1:{upstream.port}",
                           index_key="secret")) as guard:  # fmt: skip
        connection = connect(guard)
        for path in ("/v2/repository/index", "/v2/repository/models/m/load"):
            connection.request("POST", path, b"{}", {"Content-Type": "application/json"})
            connection.getresponse().read()
    index, load = upstream.seen
    assert dict(index.headers)[ADMIN_HEADER] == "secret"
    assert ADMIN_HEADER not in dict(load.headers)  # loading a model still needs the key


def test_the_metrics_port_serves_get_metrics_only(upstream: Upstream) -> None:
    with running(HttpGuard("127.0.0.1", free_port(), f"127.0.0.1:{upstream.port}",
                           metrics=True)) as guard:  # fmt: skip
        connection = connect(guard)
        for method, path, status in (("GET", "/metrics", 200), ("POST", "/metrics", 405),
                                     ("GET", "/v2/health/ready", 404)):  # fmt: skip
            connection.request(method, path)
            answer = connection.getresponse()
            answer.read()
            assert answer.status == status
    assert [seen.path for seen in upstream.seen] == ["/metrics"]


def test_connections_beyond_the_cap_are_told_to_retry(upstream: Upstream) -> None:
    with running(HttpGuard("127.0.0.1", free_port(), f"127.0.0.1:{upstream.port}",
                           max_connections=2)) as guard:  # fmt: skip
        held = [socket.create_connection((guard.host, guard.port)) for _ in range(2)]
        time.sleep(0.2)  # let the guard accept them
        extra = connect(guard)
        extra.request("GET", "/v2/health/ready")
        answer = extra.getresponse()
        assert answer.status == 503 and b"too many connections" in answer.read()
        for connection in held:
            connection.close()


def test_a_body_not_sent_in_time_is_408(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_guard, "BODY_TIMEOUT_SECS", 0.5)
    guard = HttpGuard("127.0.0.1", free_port(), f"127.0.0.1:{upstream.port}")
    with running(guard), socket.create_connection((guard.host, guard.port), timeout=30) as slow:
        slow.sendall(b"POST /v2 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        assert slow.recv(4096).startswith(b"HTTP/1.1 408")
    assert upstream.seen == []


def test_bodies_beyond_the_memory_budget_are_told_to_retry(upstream: Upstream) -> None:
    with running(HttpGuard("127.0.0.1", free_port(), f"127.0.0.1:{upstream.port}",
                           buffered_bytes=1000)) as guard:  # fmt: skip
        connection = connect(guard)
        connection.request("POST", "/v2", b'"' + b"x" * 2000 + b'"',
                           {"Content-Type": "application/json"})  # fmt: skip
        answer = connection.getresponse()
        assert answer.status == 503 and b"retry" in answer.read()
        connection.request("POST", "/v2", b'"small"', {"Content-Type": "application/json"})
        assert connection.getresponse().status == 200  # the budget was given back
