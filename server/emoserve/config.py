"""What a local Triton server is told: its endpoints, TLS, flags and command line.

Every deployment starts Triton the same way: the local server, docker-compose and Kubernetes all
run the launcher, which passes SERVER_FLAGS whatever the image.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from .admin import restriction_flags
from .distribution import TritonDistribution, Version
from .errors import LauncherError
from .http_rules import MAX_BODY_BYTES

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
    # ensembles first; the repository API that does it is behind the admin key.
    "--model-control-mode=explicit",
    "--load-model=*",
)
# On a machine without an NVIDIA GPU: no pinned or CUDA memory pools and no GPU metrics, which
# Triton would otherwise try to set up and log errors about at every start.
CPU_ONLY_FLAGS = (
    "--allow-gpu-metrics=false",
    "--pinned-memory-pool-byte-size=0",
    "--cuda-memory-pool-byte-size=0:0",
)
LOOPBACK = "127.0.0.1"


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


def has_nvidia_gpu() -> bool:
    return Path("/dev/nvidiactl").exists()


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def client_host(bound: str) -> str:
    """The address a client on this machine reaches a server bound to `bound` at."""
    return LOOPBACK if bound in ("0.0.0.0", "") else bound


@dataclass(frozen=True)
class Endpoints:
    host: str
    http_port: int
    grpc_port: int
    metrics_port: int

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
    log_verbose: int = 0
    grpc_tls: GrpcTls | None = None
    startup_timeout: float = 180.0

    @classmethod
    def create(
        cls,
        repository: str | os.PathLike[str],
        endpoints: Endpoints,
        *,
        admin_key: str,
        log_verbose: int = 0,
        grpc_tls: GrpcTls | None = None,
        startup_timeout: float = 180.0,
    ) -> ServerConfig:
        """Triton's HTTP servers on free loopback ports, behind the guards on `endpoints`."""
        return cls(
            repository=repository_location(repository),
            endpoints=endpoints,
            triton_host=LOOPBACK,
            triton_http_port=free_port(),
            triton_metrics_port=free_port(),
            admin_key=admin_key,
            log_verbose=log_verbose,
            grpc_tls=grpc_tls,
            startup_timeout=startup_timeout,
        )

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
            *(() if has_nvidia_gpu() else CPU_ONLY_FLAGS),
            *(self.grpc_tls.arguments() if self.grpc_tls else []),
        ]
