"""The local server's HTTP front door: what deploy/proxy/nginx.conf does in compose and Kubernetes.

Triton 2.51's HTTP servers (libevhtp: the HTTP front end, and the metrics server too) die with
SIGSEGV on a form-urlencoded POST larger than about half a thread stack (~4 MiB): libevhtp parses
the body as a query string into two body-sized buffers on the stack. Triton has no option to cap
a body or to skip form parsing. So the launcher binds them to loopback ports and puts this proxy
on the public ones: it refuses form bodies (415) and bodies over the largest request a client
needs (413) before Triton reads a byte, and forwards everything else as it is. gRPC's front end
has no such crash and is not proxied.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .errors import LauncherError

# deploy/proxy/nginx.conf's client_max_body_size (a test holds them equal): 64 texts (max batch)
# of at most 1 MiB each, plus the KServe framing.
MAX_BODY_BYTES = 72 * 2**20
# The content types whose bodies libevhtp parses as a form (nginx.conf's $form_body), compared
# as case-insensitive prefixes so that parameters (charset, boundary) make no difference. Triton
# reads JSON, its binary-tensor extension and protobuf; never forms.
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/")
# Each hop's own headers (RFC 9110, 7.6.1), never forwarded; Host and Content-Length are the
# session's to set for the forwarded request, and Expect was answered here.
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
NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "expect"}
# Headers aiohttp's client adds when a request lacks them: a client's request goes to Triton with
# its own headers only (an added Accept-Encoding would get it a compressed answer it never asked).
NOT_ADDED = ("Accept", "Accept-Encoding", "Content-Type", "User-Agent")
CONNECT_TIMEOUT_SECS = 5.0  # Triton's port is on this host: a refused connection comes at once


def refusal(content_types: Iterable[str], length: int | None) -> tuple[int, str] | None:
    """(status, reason) for a request the guard answers itself, from its Content-Type headers
    and declared length (None when chunked); None for a request it forwards. nginx's order:
    the size first."""
    if length is not None and length > MAX_BODY_BYTES:
        return 413, f"request body of {length} bytes is over the {MAX_BODY_BYTES}-byte limit"
    for content_type in content_types:
        if content_type.strip().lower().startswith(FORM_TYPES):
            kind = content_type.split(";")[0].strip()
            return 415, (
                f"{kind} bodies are refused (Triton's HTTP front end crashes on large ones): "
                "send JSON as application/json"
            )
    return None


def forwarded(headers: CIMultiDictProxy[str], dropped: frozenset[str]) -> CIMultiDict[str]:
    """`headers` without `dropped` and the headers their Connection header names, duplicates
    and order kept."""
    connection = headers.getall("Connection", [])
    named = {name.strip().lower() for value in connection for name in value.split(",")}
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in dropped | named)


def error(status: int, message: str) -> web.Response:
    """An answer of the guard's own, in Triton's error shape (tritonclient reads `error`)."""
    return web.json_response({"error": message}, status=status)


class HttpGuard:
    """Serves HOST:PORT and forwards to one of Triton's HTTP servers at `upstream` (HOST:PORT).

    It runs in a thread of its own with its own event loop, so the launcher stays synchronous.
    Each forwarded request has a connection to Triton of its own (none is left idle to hold up
    Triton's stop); clients get HTTP/1.1 keep-alive. While Triton is down (a restart), every
    request is answered 503 at once, which the SDK retries.
    """

    def __init__(self, host: str, port: int, upstream: str) -> None:
        self.host = host
        self.port = port
        self.upstream = f"http://{upstream}"
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
        except OSError as error:
            self.stop()
            raise LauncherError(f"cannot serve HTTP on {self.host}:{self.port}: {error}") from None
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
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.Response:
        refused = refusal(request.headers.getall("Content-Type", []), request.content_length)
        if refused:
            return error(*refused)
        try:
            body = await request.read()  # a chunked body over client_max_size stops here
        except web.HTTPRequestEntityTooLarge:
            return error(413, f"request body over the {MAX_BODY_BYTES}-byte limit")
        assert self._session is not None
        try:
            async with self._session.request(
                request.method,
                URL(self.upstream + request.rel_url.raw_path_qs, encoded=True),
                headers=forwarded(request.headers, NOT_FORWARDED),
                data=body if request.body_exists else None,
                allow_redirects=False,
            ) as answer:
                payload = await answer.read()
        except aiohttp.ClientError as failure:
            detail = str(failure) or type(failure).__name__
            return error(503, f"Triton's HTTP front end is not answering (restarting?): {detail}")
        headers = forwarded(answer.headers, HOP_BY_HOP | {"content-length"})
        return web.Response(
            status=answer.status, reason=answer.reason, headers=headers, body=payload
        )
