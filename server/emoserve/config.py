"""What a local Triton server is told: its endpoints, TLS, flags and command line.

Every deployment starts Triton the same way: the local server, docker-compose and Kubernetes all
run the launcher, which passes SERVER_FLAGS whatever the image.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path

from .admin import restriction_flags
from .distribution import TritonDistribution, Version
from .errors import LauncherError
from .http_rules import MAX_BODY_BYTES
from .tracing import Tracing

# Seconds a stopping server gives its requests in flight: the launcher's drain and Triton's own
# exit timeout share them (deployments allow a little more: docs/reliability.md).
EXIT_TIMEOUT_SECS = 30
SERVER_FLAGS = (
    "--disable-auto-complete-config",  # a config is what export wrote, never what Triton guessed
    "--strict-readiness=true",  # ready only when every model is
    f"--exit-timeout-secs={EXIT_TIMEOUT_SECS}",
    # The python models' shared-memory pool starts at 16 MiB, sized for batches of 64 texts.
    "--backend-config=python,shm-default-byte-size=16777216",
    # The launcher reloads a model whose backend process died, and drains by unloading the
    # ensembles first; the repository API that does it is behind the admin key. Which models
    # load at start is `load_flags`.
    "--model-control-mode=explicit",
)
# On a machine without an NVIDIA GPU: no pinned or CUDA memory pools and no GPU metrics, which
# Triton would otherwise try to set up and log errors about at every start.
CPU_ONLY_FLAGS = (
    "--allow-gpu-metrics=false",
    "--pinned-memory-pool-byte-size=0",
    "--cuda-memory-pool-byte-size=0:0",
)
LOOPBACK = "127.0.0.1"
# No response cache unless asked (emotriton serve --cache-mib): Triton keys an entry by model,
# version and inputs, not by the outputs a request asked for, so a client that asks for SCORES
# alone leaves an entry without PREDICTED for every later client of the same texts (the SDK
# decides from SCORES then, as the server does; other clients get what was cached). A cached
# answer of one text is about 200 bytes: 256 MiB hold about a million.
DEFAULT_CACHE_BYTES = 0


# Triton 2.59 and later refuse HTTP inputs over 64 MB unless told (--http-max-input-size):
# allow the largest request the guards let through.
MAX_INPUT_SIZE_SINCE = (2, 59)


def server_flags(admin_key: str, shm_prefix: str, version: Version) -> tuple[str, ...]:
    """SERVER_FLAGS, with the admin APIs behind `admin_key`, the python backend's regions named
    by `shm_prefix`, and what Triton `version` needs besides."""
    newer = (f"--http-max-input-size={MAX_BODY_BYTES}",) if version >= MAX_INPUT_SIZE_SINCE else ()
    return (
        *SERVER_FLAGS,
        *restriction_flags(admin_key),
        f"--backend-config=python,shm-region-prefix-name={shm_prefix}",
        *newer,
    )


def load_flags(repository: str | Path) -> list[str]:
    """The models to load at start: each folder of a local repository that holds a config, by
    name; `*` for object storage, which Triton lists itself. A folder without a config (what a
    killed export leaves staged, a backup) would fail `--load-model=*`, and the server with it."""
    if isinstance(repository, str):
        return ["--load-model=*"]
    names = sorted(
        folder.name
        for folder in repository.iterdir()
        if not folder.name.startswith(".") and (folder / "config.pbtxt").is_file()
    )
    return [f"--load-model={name}" for name in names]


def has_nvidia_gpu() -> bool:
    return Path("/dev/nvidiactl").exists()


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that nothing listens on now (the OS picks it)."""
    (port,) = free_ports(1, host)
    return port


def free_ports(count: int, host: str = LOOPBACK, taken: Collection[int] = ()) -> list[int]:
    """`count` different TCP ports that nothing listens on now, none of them in `taken`
    (ports already promised, not bound yet): the OS picks each while the others are still
    bound, as one closed first could be picked again."""
    with contextlib.ExitStack() as probes:
        ports: list[int] = []
        while len(ports) < count:
            probe = probes.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind((host, 0))
            port = probe.getsockname()[1]
            if port not in taken:
                ports.append(port)
        return ports


def client_host(bound: str) -> str:
    """The address a client on this machine reaches a server bound to `bound` at."""
    return LOOPBACK if bound in ("0.0.0.0", "") else bound


@dataclass(frozen=True)
class Endpoints:
    host: str
    http_port: int
    grpc_port: int
    metrics_port: int

    @classmethod
    def picked(
        cls, host: str, http: int | None, grpc: int | None, metrics: int | None
    ) -> Endpoints:
        """The ports given, and free ones for those left as None: picked now, so that a client
        can be made before the server starts (one taken by then fails the start at once)."""
        free = iter(free_ports(3, host))
        return cls(host, *(port or next(free) for port in (http, grpc, metrics)))

    @property
    def grpc_url(self) -> str:
        return f"{client_host(self.host)}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"{client_host(self.host)}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{client_host(self.host)}:{self.metrics_port}/metrics"


# Triton's own defaults: what `emotriton serve` binds unless told otherwise.
STANDARD_ENDPOINTS = Endpoints(host=LOOPBACK, http_port=8000, grpc_port=8001, metrics_port=8002)


@dataclass(frozen=True)
class GrpcTls:
    """TLS on the gRPC port (Triton serves HTTP without it). With `client_ca`, clients must
    present a certificate that CA signed (mutual TLS)."""

    certificate: Path
    key: Path
    client_ca: Path | None = None

    def arguments(self) -> list[str]:
        mode = "--grpc-use-ssl-mutual=true" if self.client_ca else "--grpc-use-ssl=true"
        arguments = [
            mode,
            f"--grpc-server-cert={self.certificate}",
            f"--grpc-server-key={self.key}",
        ]
        if self.client_ca:
            arguments.append(f"--grpc-root-cert={self.client_ca}")
        return arguments


def repository_location(repository: str | os.PathLike[str]) -> str | Path:
    """A local repository as an absolute directory; s3://, gs:// and as:// as they are (Triton
    reads those itself, with its cloud credentials)."""
    location = os.fspath(repository)
    if "://" in location:
        return location
    path = Path(location).resolve()
    if not path.is_dir():
        raise LauncherError(f"model repository {path} is not a directory")
    return path


@dataclass(frozen=True)
class ServerConfig:
    """One server's settings. `endpoints` are where clients connect; Triton's own HTTP and
    metrics servers listen at `triton_host` (loopback) on `triton_http_port` and
    `triton_metrics_port`, behind the guards on the public ones."""

    repository: str | Path
    endpoints: Endpoints
    triton_host: str
    triton_http_port: int
    triton_metrics_port: int
    admin_key: str
    cache_bytes: int = DEFAULT_CACHE_BYTES  # Triton's local response cache; 0: none
    log_verbose: int = 0
    grpc_tls: GrpcTls | None = None
    startup_timeout: float = 180.0
    tracing: Tracing | None = None

    @classmethod
    def create(
        cls,
        repository: str | os.PathLike[str],
        endpoints: Endpoints,
        *,
        admin_key: str,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        log_verbose: int = 0,
        grpc_tls: GrpcTls | None = None,
        startup_timeout: float = 180.0,
        tracing: Tracing | None = None,
    ) -> ServerConfig:
        """Triton's HTTP servers on loopback, behind the guards on `endpoints`; ports of 0 are
        picked free once the guards hold theirs (with_free_ports)."""
        if cache_bytes < 0:
            raise LauncherError(f"the response cache's size must not be negative: {cache_bytes}")
        return cls(
            repository=repository_location(repository),
            endpoints=endpoints,
            triton_host=LOOPBACK,
            triton_http_port=0,
            triton_metrics_port=0,
            admin_key=admin_key,
            cache_bytes=cache_bytes,
            log_verbose=log_verbose,
            grpc_tls=grpc_tls,
            startup_timeout=startup_timeout,
            tracing=tracing,
        )

    def with_free_ports(self, endpoints: Endpoints) -> ServerConfig:
        """`endpoints` (the ports the guards bound), and free ports for what Triton binds
        itself: its loopback HTTP and metrics servers, and gRPC when none was asked."""
        http, metrics, grpc = free_ports(3, taken=(endpoints.grpc_port,))
        return replace(
            self,
            endpoints=replace(endpoints, grpc_port=endpoints.grpc_port or grpc),
            triton_http_port=http,
            triton_metrics_port=metrics,
        )

    def cache_flags(self, distribution: TritonDistribution) -> list[str]:
        """Triton's local response cache of `cache_bytes`: the ensembles enable it (export), and
        a repeated text is answered from it, the answer it got the first time."""
        if not self.cache_bytes:
            return []
        return [
            f"--cache-config=local,size={self.cache_bytes}",
            f"--cache-directory={distribution.caches}",
        ]

    @property
    def triton_http_url(self) -> str:
        """HOST:PORT of Triton's own HTTP front end (the launcher's calls go there directly)."""
        return f"{client_host(self.triton_host)}:{self.triton_http_port}"

    def command(
        self, distribution: TritonDistribution, backends: Path, shm_prefix: str
    ) -> list[str]:
        return [
            str(distribution.binary),
            f"--model-repository={self.repository}",
            f"--backend-directory={backends}",
            f"--http-address={self.triton_host}",
            f"--http-port={self.triton_http_port}",
            f"--grpc-address={self.endpoints.host}",
            f"--grpc-port={self.endpoints.grpc_port}",
            f"--metrics-address={self.triton_host}",
            f"--metrics-port={self.triton_metrics_port}",
            f"--log-verbose={self.log_verbose}",
            *server_flags(self.admin_key, shm_prefix, distribution.version),
            *load_flags(self.repository),
            *self.cache_flags(distribution),
            *(() if has_nvidia_gpu() else CPU_ONLY_FLAGS),
            *(self.grpc_tls.arguments() if self.grpc_tls else []),
            *(self.tracing.triton_flags() if self.tracing else []),
        ]
