"""The local server's HTTP front door: the one way into Triton's HTTP and metrics servers, in
every deployment (the local server, compose and each Kubernetes pod run the launcher).

Triton's own HTTP servers listen on loopback; the guard serves the public ports, applies
emoserve.http_rules to each request, forwards what passes as plain requests (inflated, relabelled
JSON), and gives the KServe v2 health answers their body. gRPC is Triton's own port: its front
end has none of these faults.

It also bounds what one client can hold: connections (a cap per port), time (to send a body,
and idle between requests) and memory (the bodies being read, together).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler, RequestPayloadError
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from emoclient.protocol import ADMIN_HEADER

from . import http_rules
from .config import LOOPBACK, ServerConfig
from .errors import LauncherError
from .http_rules import MAX_BODY_BYTES, Refusal
from .ports import raise_open_file_limit

# Each hop's own headers (RFC 9110, 7.6.1), never forwarded; Host and Content-Length are the
# session's to set for the forwarded request, Expect was answered here, and the body is sent
# inflated (Content-Encoding) and, for a form that holds JSON, relabelled (Content-Type).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "expect", "content-encoding"}
# Headers aiohttp's client adds when a request lacks them: a client's request goes to Triton with
# its own headers only (an added Accept-Encoding would get it a compressed answer it never asked).
NOT_ADDED = ("Accept", "Accept-Encoding", "Content-Type", "User-Agent")
CONNECT_TIMEOUT_SECS = 5.0  # Triton's port is on this host: a refused connection comes at once
MAX_CONNECTIONS = 1024  # per port, within a quarter of the open-file limit; more get 503
BODY_TIMEOUT_SECS = 60.0  # to send a whole body: 72 MiB at 1.2 MB/s
IDLE_TIMEOUT_SECS = 75.0  # a kept-alive connection with no request in flight
BUFFERED_BYTES = 4 * MAX_BODY_BYTES  # the bodies being read at once, across connections
PARSE_IN_THREAD_BYTES = 1 << 20  # larger bodies are inflated and parsed off the event loop
METRICS_PATH = "/metrics"
INDEX_PATH = "/v2/repository/index"


def forwarded(headers: CIMultiDictProxy[str], dropped: frozenset[str]) -> CIMultiDict[str]:
    """`headers` without `dropped` and the headers their Connection header names, duplicates
    and order kept."""
    connection = headers.getall("Connection", [])
    named = {name.strip().lower() for value in connection for name in value.split(",")}
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in dropped | named)


def error(status: int, message: str, headers: Any = ()) -> web.Response:
    """An answer of the guard's own, in Triton's error shape (tritonclient reads `error`)."""
    return web.json_response({"error": message}, status=status, headers=dict(headers))


class _NotHttp(logging.Filter):
    """Drops aiohttp's traceback for a request that is not HTTP/1.1 (answered 400): any client
    can send one, and a flood of them must not flood the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, HttpProcessingError)


_CONNECTIONS = logging.getLogger(__name__ + ".connections")
_CONNECTIONS.addFilter(_NotHttp())


class _Budget:
    """Bytes of request bodies held at once; a body that would exceed it is refused with a
    retryable 503 rather than read."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, size: int) -> None:
        if self.held + size > self.limit:
            raise Refusal(503, "the server is reading too many request bodies: retry shortly")
        self.held += size

    def give(self, size: int) -> None:
        self.held -= size


class HttpGuard:
    """Serves HOST:PORT (port 0: a free one, `port` once started) and forwards to one of
    Triton's HTTP servers at `upstream` (HOST:PORT):
    its HTTP/REST front end, or with `metrics` its metrics server (GET /metrics only).

    With `index_key` (the admin key), anyone may read the repository index, which Triton keeps
    behind the key with model loading: clients learn which models are served, and nothing more.

    It runs in a thread of its own with its own event loop, so the launcher stays synchronous.
    Each forwarded request has a connection to Triton of its own (none is left idle to hold up
    Triton's stop); clients get HTTP/1.1 keep-alive. While Triton is down (a restart), every
    request is answered 503 at once, which the SDK retries.
    """

    def __init__(
        self,
        host: str,
        port: int,
        upstream: str,
        metrics: bool = False,
        index_key: str | None = None,
        max_connections: int = MAX_CONNECTIONS,
        buffered_bytes: int = BUFFERED_BYTES,
    ) -> None:
        self.host = host
        self.port = port
        self.upstream = f"http://{upstream}"
        self.metrics = metrics
        self.index_key = index_key
        self.max_connections = max_connections
        self._budget = _Budget(buffered_bytes)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> HttpGuard:
        """Listen and serve; LauncherError when the port cannot be bound."""
        with self._lock:
            if self._loop is not None:
                raise RuntimeError("HTTP guard already started")
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="emoserve-http-guard", daemon=True
            )
            self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._open(), self._loop).result()
        except OSError as failure:
            self.stop()
            raise LauncherError(
                f"cannot serve HTTP on {self.host}:{self.port}: {failure}"
            ) from None
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Close the port and the connections; safe to call again, from any thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    async def _open(self) -> None:
        self._session = aiohttp.ClientSession(
            # No limit of its own: as many connections to Triton as clients have requests. One
            # connection per request: Triton's stop waits (up to its exit timeout) for open HTTP
            # connections, so idle pooled ones held every stop for 30 s instead of 3.
            connector=aiohttp.TCPConnector(limit=0, force_close=True),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_SECS),
            auto_decompress=False,  # a compressed answer goes to the client as it came
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=NOT_ADDED,
        )
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{path:.*}", self._answer)
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=5,
            keepalive_timeout=IDLE_TIMEOUT_SECS,
            auto_decompress=False,  # http_rules.inflated, with its bound and its errors
            logger=_CONNECTIONS,
        )
        await self._runner.setup()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(
            _capped(server, self.max_connections), self.host, self.port, reuse_address=True
        )
        # Port 0: the kernel's choice, bound here at once, so nothing can take it in between.
        self.port = self._listener.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        listener = getattr(self, "_listener", None)
        if listener is not None:
            listener.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        # What cleanup leaves (a connection still lingering over an unread body) ends here,
        # not when the loop is gone.
        leftovers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._forward(request)
        except Refusal as refused:
            answer = error(refused.status, refused.message, refused.headers)
            if refused.close:
                answer.force_close()
            return answer

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if self.metrics and (request.method not in ("GET", "HEAD") or request.path != METRICS_PATH):
            raise Refusal(404 if request.path != METRICS_PATH else 405, "only GET /metrics")
        http_rules.check_headers(request.headers, request.content_length)
        body = await self._read(request)
        try:
            content_type = http_rules.content_type_of(request.headers, body)
            await self._off_loop(
                http_rules.check_body, request.method, request.path, request.headers, body
            )
            headers = forwarded(request.headers, NOT_FORWARDED)
            if content_type is not None:
                headers["Content-Type"] = content_type
            if self.index_key is not None and request.path == INDEX_PATH:
                headers.setdefault(ADMIN_HEADER, self.index_key)
            return await self._send(request, headers, body)
        finally:
            self._budget.give(len(body))

    async def _read(self, request: web.Request) -> bytes:
        """The body, inflated, within the body limit, the time limit and the memory budget."""
        declared = request.content_length or 0
        self._budget.take(declared)
        try:
            body = await asyncio.wait_for(request.read(), BODY_TIMEOUT_SECS)
        except web.HTTPRequestEntityTooLarge:
            raise Refusal(
                413, f"request body over the {MAX_BODY_BYTES}-byte limit", close=True
            ) from None
        except asyncio.TimeoutError:
            raise Refusal(
                408, f"the body was not sent within {BODY_TIMEOUT_SECS:.0f} s", close=True
            ) from None
        except RequestPayloadError as failure:  # a broken chunk
            raise Refusal(400, f"the body cannot be read: {failure}", close=True) from None
        finally:
            self._budget.give(declared)
        self._budget.take(len(body))
        try:
            plain = await self._off_loop(http_rules.inflated, request.headers, body)
        finally:
            self._budget.give(len(body))
        self._budget.take(len(plain))
        return plain

    async def _off_loop(self, work: Callable[..., Any], *args: Any) -> Any:
        """`work(*args)`, in a thread when its body is large: the event loop keeps serving."""
        body = args[-1]
        if len(body) <= PARSE_IN_THREAD_BYTES:
            return work(*args)
        return await asyncio.get_running_loop().run_in_executor(None, work, *args)

    async def _send(
        self, request: web.Request, headers: CIMultiDict[str], body: bytes
    ) -> web.Response:
        assert self._session is not None
        try:
            async with self._session.request(
                request.method,
                URL(self.upstream + request.rel_url.raw_path_qs, encoded=True),
                headers=headers,
                data=body if request.body_exists else None,
                allow_redirects=False,
            ) as answer:
                payload = await answer.read()
        except aiohttp.ClientError as failure:
            detail = str(failure) or type(failure).__name__
            raise Refusal(
                503, f"Triton's HTTP front end is not answering (restarting?): {detail}"
            ) from None
        health = http_rules.is_health(request.method, request.path)
        if health is not None and not payload:
            answered = http_rules.health_answer(health, answer.status)
            return web.json_response(answered, status=answer.status)
        status = answer.status
        if http_rules.blames_itself(status, payload):
            status = 400
        headers = forwarded(answer.headers, HOP_BY_HOP | {"content-length"})
        reason = answer.reason if status == answer.status else None
        return web.Response(status=status, reason=reason, headers=headers, body=payload)


class _Refuse(asyncio.Protocol):
    """A connection over the cap: told so, and closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        body = b'{"error": "too many connections: retry shortly"}'
        transport.write(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        transport.close()


def _capped(server: web.Server, cap: int) -> Callable[[], asyncio.Protocol]:
    """aiohttp's protocol factory, answering 503 to connections beyond `cap` open ones."""

    def connection() -> asyncio.Protocol:
        if len(server.connections) >= cap:
            return _Refuse()
        handler: RequestHandler = server()
        return handler

    return connection


def open_front_door(config: ServerConfig) -> tuple[list[HttpGuard], ServerConfig]:
    """Start the guards of the public HTTP and metrics ports (free ones where 0 is asked), pick
    Triton's own ports only then (so that none can be a port a guard just took), and point the
    guards at them: the started guards, and the config with every port settled."""
    host, public = config.endpoints.host, config.endpoints
    cap = min(MAX_CONNECTIONS, raise_open_file_limit() // 4)
    http = HttpGuard(host, public.http_port, "", index_key=config.admin_key, max_connections=cap)
    metrics = HttpGuard(host, public.metrics_port, "", metrics=True, max_connections=cap)
    started: list[HttpGuard] = []
    try:
        for guard in (http, metrics):
            started.append(guard.start())
    except BaseException:
        for guard in started:
            guard.stop()
        raise
    settled = config.with_free_ports(
        replace(public, http_port=http.port, metrics_port=metrics.port)
    )
    http.upstream = f"http://{LOOPBACK}:{settled.triton_http_port}"
    metrics.upstream = f"http://{LOOPBACK}:{settled.triton_metrics_port}"
    return started, settled
