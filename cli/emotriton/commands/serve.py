"""`emotriton serve`: the local Triton server on a model repository, and the JSON API in front
of it, until Ctrl-C or SIGTERM; `emotriton api`: the JSON API alone, in front of a Triton."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..settings import MODEL_VARIABLE, URL_VARIABLE, Add, UsageError
from . import Command, stop_on_sigterm
from .export import REPOSITORY

if TYPE_CHECKING:
    from emoserve.tracing import Tracing

API_PORT = 8080
API_KEYS_VARIABLE = "EMOTRITON_API_KEYS"


def _options(parser: argparse.ArgumentParser, add: Add) -> None:
    from emoserve.config import DEFAULT_CACHE_BYTES, STANDARD_ENDPOINTS

    add("--repository", type=Path, default=REPOSITORY, help="Triton model repository")
    add(
        "--host",
        default=STANDARD_ENDPOINTS.host,
        help="bind address (0.0.0.0 exposes the server)",
    )
    add("--http-port", type=int, default=STANDARD_ENDPOINTS.http_port, help="HTTP/REST port")
    add("--grpc-port", type=int, default=STANDARD_ENDPOINTS.grpc_port, help="gRPC port")
    add(
        "--metrics-port",
        type=int,
        default=STANDARD_ENDPOINTS.metrics_port,
        help="Prometheus metrics port",
    )
    add(
        "--api-port",
        type=int,
        default=API_PORT,
        help="port of the HTTP JSON API in front of Triton (0: none); see `emotriton api`",
    )
    add("--log-verbose", type=int, default=0, help="Triton log verbosity (0 = info)")
    add(
        "--cache-mib",
        type=int,
        default=DEFAULT_CACHE_BYTES // 2**20,
        help="MiB of Triton's response cache, which answers a repeated request (0: none; "
        "see the README on the outputs a request asks for)",
    )
    add(
        "--startup-timeout",
        type=float,
        default=180.0,
        help="seconds Triton may take to load every model and become ready (a TensorRT engine "
        "build takes minutes)",
    )
    _tracing_options(add)
    add("--grpc-tls-cert", type=Path, help="PEM server certificate: serve gRPC over TLS")
    add("--grpc-tls-key", type=Path, help="PEM key of --grpc-tls-cert")
    add("--grpc-tls-client-ca", type=Path, help="PEM CA that client certificates must chain to")
    add(
        "--triton-home",
        type=Path,
        help="an installed Triton to run, such as /opt/tritonserver in NGC images "
        "(default: the nvidia-pytriton wheel's)",
    )


def _tracing_options(add: Add) -> None:
    from emoserve.tracing import DEFAULT_TRACE_RATE

    add(
        "--trace-url",
        help="an OTLP/HTTP endpoint that takes OpenTelemetry spans of Triton and the JSON API, "
        "such as http://localhost:4318/v1/traces (default: no tracing)",
    )
    add(
        "--trace-rate",
        type=int,
        default=DEFAULT_TRACE_RATE,
        help="with --trace-url: trace 1 request in N of those that come without a W3C trace "
        "context (0: none); a request with a sampled context is always traced",
    )


def tracing_of(args: argparse.Namespace) -> Tracing | None:
    from emoserve.tracing import Tracing

    return Tracing(args.trace_url, args.trace_rate) if args.trace_url else None


def _run(args: argparse.Namespace) -> int:
    """The admin key comes from EMOTRITON_ADMIN_KEY only, never an option of this command;
    unset, a random key that nobody else knows locks the admin APIs."""
    from emoclient import Client
    from emoserve import ADMIN_HEADER, ADMIN_KEY_VARIABLE, GrpcTls, LocalServer

    tls = None
    if args.grpc_tls_cert or args.grpc_tls_key:
        if not (args.grpc_tls_cert and args.grpc_tls_key):
            raise UsageError("--grpc-tls-cert and --grpc-tls-key go together")
        if args.api_port:
            raise UsageError("the JSON API connects to Triton without TLS: add --api-port 0")
        tls = GrpcTls(args.grpc_tls_cert, args.grpc_tls_key, args.grpc_tls_client_ca)
    stop_on_sigterm()
    logging.basicConfig(format="emotriton: %(message)s")
    server = LocalServer(
        args.repository,
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        log_verbose=args.log_verbose,
        startup_timeout=args.startup_timeout,
        cache_bytes=args.cache_mib * 2**20,
        stream_logs=True,
        grpc_tls=tls,
        triton_home=args.triton_home,
        tracing=tracing_of(args),
    )
    from emoapi.process import ApiProcess

    api: ApiProcess | None = None
    try:
        server.start()
        endpoints = server.endpoints
        admin = {ADMIN_HEADER: server.admin_key}
        with Client(endpoints.http_url, protocol="http", headers=admin) as client:
            names = [info.name for info in client.models()]
        key = "from " + ADMIN_KEY_VARIABLE if os.environ.get(ADMIN_KEY_VARIABLE) else "random"
        api_line = ""
        if args.api_port and names:
            api = ApiProcess(endpoints.grpc_url, args.host, args.api_port, names, tracing_of(args))
            api.start()
            api_line = f"  JSON    {api.url}  (docs: /docs)\n"
        print(
            f"\nemotriton: serving {', '.join(names) or 'no emotion models'} "
            f"from {server.config.repository}\n"
            f"  gRPC    {endpoints.grpc_url}\n  HTTP    http://{endpoints.http_url}\n"
            f"{api_line}"
            f"  metrics {endpoints.metrics_url}\n"
            f"  response cache {args.cache_mib} MiB\n"
            f"  admin APIs need the header {ADMIN_HEADER} ({key} key)\nCtrl-C stops it.",
            flush=True,
        )
        code = server.wait()
        print(f"emotriton: tritonserver kept failing to start (exit code {code})", file=sys.stderr)
        return code or 1
    except KeyboardInterrupt:
        print("\nemotriton: stopping", file=sys.stderr)
        return 0
    finally:
        if api is not None:
            api.stop()
        server.stop()


def _api_options(parser: argparse.ArgumentParser, add: Add) -> None:
    from emoapi.settings import DEFAULT_MAX_TEXTS

    add(
        "--model",
        action="append",
        required=True,
        env=MODEL_VARIABLE,
        help="a served ensemble, repeated for each; the first is the default (/predict)",
    )
    add("--url", default="localhost:8001", env=URL_VARIABLE, help="Triton's gRPC HOST:PORT")
    add("--host", default="127.0.0.1", help="bind address (0.0.0.0 exposes the API)")
    add("--port", type=int, default=API_PORT, help="HTTP port")
    add(
        "--cors-origin",
        action="append",
        help="a browser origin allowed to call the API (https://app.example.com), repeated for "
        "each; none by default",
    )
    add("--max-texts", type=int, default=DEFAULT_MAX_TEXTS, help="texts per request at most")
    add(
        "--api-keys-file",
        type=Path,
        help=f"a file of API keys, one per line, that inference requests must bear; or the keys, "
        f"comma-separated, in {API_KEYS_VARIABLE} (default: no key needed)",
    )
    _tracing_options(add)


def _api_keys(path: Path | None) -> frozenset[str]:
    """From a file or the environment, never from the command line (`ps` shows that)."""
    if path is not None:
        try:
            return frozenset(line.strip() for line in path.read_text().splitlines() if line.strip())
        except OSError as error:
            raise UsageError(f"--api-keys-file {path}: {error.strerror}") from None
    raw = os.environ.get(API_KEYS_VARIABLE, "")
    return frozenset(key.strip() for key in raw.split(",") if key.strip())


def _run_api(args: argparse.Namespace) -> int:
    import uvicorn

    from emoapi import ApiSettings, create_app

    settings = ApiSettings(
        triton_url=args.url,
        models=tuple(args.model),
        api_keys=_api_keys(args.api_keys_file),
        cors_origins=tuple(args.cors_origin or ()),
        max_texts=args.max_texts,
        tracing=tracing_of(args),
    )
    # No access log, no proxy headers (nothing reads a client's address), no Server header:
    # each is work on every request, measured at 0.04 ms of a single text's latency.
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )
    return 0


COMMANDS = (
    Command(
        "serve",
        _options,
        _run,
        help="run the local Triton server on a model repository",
        description="Run Triton 2.51 (from the nvidia-pytriton wheel) on a model repository "
        "until Ctrl-C or SIGTERM. The admin APIs (loading models, logging, trace, shared "
        "memory) need the key in EMOTRITON_ADMIN_KEY (24 characters or more; random when "
        "unset). Triton takes that key only on its command line, so on this host `ps` shows it "
        "in tritonserver's: where other users share the host, mount /proc with hidepid=2.",
    ),
    Command(
        "api",
        _api_options,
        _run_api,
        help="run the HTTP JSON API in front of a Triton server",
        description="Plain JSON in front of Triton's gRPC: POST /classify, the Hugging Face "
        "text-classification task at POST /models/<model>, text-embeddings-inference's POST "
        "/predict, GET /models and /health; OpenAPI at /openapi.json, its page at /docs. "
        f"With keys ({API_KEYS_VARIABLE} or --api-keys-file), each inference request must bear "
        "`Authorization: Bearer <key>`.",
    ),
)
