"""Run the Triton 2.51 binary from the nvidia-pytriton wheel on a model repository.

The wheel carries only the python backend. The launcher assembles a backend directory from it
(the python backend with the stub for the running interpreter) and adds `onnxruntime` as a
Python-based backend, so an unchanged `backend: "onnxruntime"` config serves here as it does in
the NGC image.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from emoclient.errors import EmotritonError

from . import shared_memory
from .admin import (
    ADMIN_KEY_VARIABLE,
    HOLDING_STATES,
    AdminApi,
    AdminApiError,
    restriction_flags,
)
from .admin import admin_key as generated_admin_key
from .http_guard import HttpGuard
from .supervisor import Supervisor

ONNXRUNTIME_BACKEND = Path(__file__).with_name("onnxruntime_backend.py")

# Seconds a stopping server gives its requests in flight: the launcher's drain and Triton's own
# exit timeout share them (deployments allow a little more: docs/reliability.md).
EXIT_TIMEOUT_SECS = 30
# How every deployment starts Triton, whatever the image: the local server, docker-compose and
# Kubernetes all run the launcher, which passes exactly these (`server_flags`).
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


def server_flags(admin_key: str, shm_prefix: str) -> tuple[str, ...]:
    """SERVER_FLAGS, with the admin APIs behind `admin_key` and the python backend's regions
    named by `shm_prefix`."""
    return (
        *SERVER_FLAGS,
        *restriction_flags(admin_key),
        f"--backend-config=python,shm-region-prefix-name={shm_prefix}",
    )


class LauncherError(EmotritonError):
    """The local Triton server could not be started or stopped."""


@dataclass(frozen=True)
class TritonDistribution:
    """Where the pieces of a Triton 2.51 installation live: the nvidia-pytriton wheel's (here and
    in CI), or an installed tree such as the NGC image's /opt/tritonserver (in containers)."""

    binary: Path
    libraries: Path
    backends: Path  # the python backend only (wheel), or every backend (installed tree)
    stub: Path | None = None  # the wheel's python backend stub for this interpreter

    @classmethod
    def find(cls, home: Path | None = None) -> TritonDistribution:
        """The installed tree at `home`, or the wheel's when `home` is None."""
        if home is not None:
            found = cls(home / "bin" / "tritonserver", home / "lib", home / "backends")
            paths: tuple[Path, ...] = (found.binary, found.backends)
        else:
            found = cls._wheel()
            paths = (found.binary, found.backends, found.stub)
        for path in paths:
            if not path.exists():
                raise LauncherError(f"no {path} in the Triton distribution")
        return found

    @classmethod
    def _wheel(cls) -> TritonDistribution:
        try:
            from pytriton.utils import distribution
        except ImportError as error:
            raise LauncherError(
                "the local server needs the nvidia-pytriton wheel: pip install 'emotriton[server]'"
                " (or --triton-home for an installed Triton)"
            ) from error
        root = distribution.get_root_module_path() / "tritonserver"
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        return cls(
            binary=root / "bin" / "tritonserver",
            libraries=distribution.get_libs_path(),
            backends=root / "backends",
            stub=distribution.get_stub_path(version),
        )

    def backend_directory(self, scratch: Path) -> Path:
        """An installed tree's own backends; for the wheel, a directory assembled under `scratch`
        with `python/` and the Python-based `onnxruntime/` backend."""
        if self.stub is None:
            return self.backends
        # Copies, not links: Triton refuses a backend library that resolves outside the folder.
        python = scratch / "python"
        python.mkdir(parents=True)
        for item in (self.backends / "python").iterdir():
            if item.is_file():
                shutil.copy2(item, python / item.name)
        shutil.copy2(self.stub, python / "triton_python_backend_stub")
        onnxruntime = scratch / "onnxruntime"
        onnxruntime.mkdir()
        shutil.copy2(ONNXRUNTIME_BACKEND, onnxruntime / "model.py")
        return scratch


LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it when the launcher dies, so no server is orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _child_setup() -> Callable[[], None] | None:
    """PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, so it is armed
    only from the main thread, whose end is the launcher's end; a server started from another
    thread lives until `stop()`."""
    here = threading.current_thread()
    armed = here is threading.main_thread() or isinstance(here, Supervisor)
    return _die_with_parent if armed else None


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


# On a machine without an NVIDIA GPU: no pinned or CUDA memory pools and no GPU metrics, which
# Triton would otherwise try to set up and log errors about at every start.
CPU_ONLY_FLAGS = (
    "--allow-gpu-metrics=false",
    "--pinned-memory-pool-byte-size=0",
    "--cuda-memory-pool-byte-size=0:0",
)


def has_nvidia_gpu() -> bool:
    return Path("/dev/nvidiactl").exists()


# Triton's own defaults: what `emotriton serve` binds unless told otherwise.
STANDARD_ENDPOINTS = Endpoints(host=LOOPBACK, http_port=8000, grpc_port=8001, metrics_port=8002)


class LocalServer:
    """A supervised Triton server on a model repository; a context manager.

    A backend process that dies is replaced and a server that dies is started again (see
    `supervisor`); `stop()` drains the requests in flight before the server exits. The admin
    APIs answer only requests that carry `admin_key` (EMOTRITON_ADMIN_KEY, or a random key).
    Ports left as None are picked free, which is what tests want. Logs go to `log_path` (a file
    in the server's scratch directory) unless `stream_logs` sends them to the console.

    With `http_guard` (the default) the HTTP and metrics ports are `HttpGuard`s, which refuse
    the request bodies that crash Triton's HTTP servers (the metrics one is libevhtp too), and
    Triton's own listen on loopback ports (`triton_http_url`). Turn it off only where a proxy
    that does the same is in front (deploy/proxy/nginx.conf in compose and Kubernetes).
    """

    def __init__(
        self,
        repository: str | os.PathLike[str],
        *,
        host: str = STANDARD_ENDPOINTS.host,
        http_port: int | None = None,
        grpc_port: int | None = None,
        metrics_port: int | None = None,
        log_verbose: int = 0,
        stream_logs: bool = False,
        startup_timeout: float = 180.0,
        grpc_tls: GrpcTls | None = None,
        triton_home: Path | None = None,
        admin_key: str | None = None,
        http_guard: bool = True,
    ) -> None:
        location = os.fspath(repository)
        # s3://, gs:// and as:// repositories Triton reads itself (its cloud credentials).
        self.repository: str | Path = location if "://" in location else Path(location).resolve()
        if isinstance(self.repository, Path) and not self.repository.is_dir():
            raise LauncherError(f"model repository {self.repository} is not a directory")
        self.endpoints = Endpoints(
            host=host,
            http_port=http_port or free_port(),
            grpc_port=grpc_port or free_port(),
            metrics_port=metrics_port or free_port(),
        )
        self.log_verbose = log_verbose
        self.stream_logs = stream_logs
        self.startup_timeout = startup_timeout
        self.grpc_tls = grpc_tls
        self.triton_home = triton_home
        self.admin_key = admin_key or generated_admin_key()
        # Where Triton's HTTP servers listen: behind the guards, loopback ports of their own.
        self.triton_host = LOOPBACK if http_guard else host
        self.triton_http_port = free_port() if http_guard else self.endpoints.http_port
        self.triton_metrics_port = free_port() if http_guard else self.endpoints.metrics_port
        guarded = (
            ((self.endpoints.http_port, self.triton_http_port),
             (self.endpoints.metrics_port, self.triton_metrics_port))
            if http_guard else ()
        )  # fmt: skip
        self.guards = tuple(
            HttpGuard(host, public, f"{LOOPBACK}:{triton}") for public, triton in guarded
        )
        # The launcher's own calls (readiness, the admin API) go to Triton's HTTP front end
        # directly: they ask about Triton itself, not the way in, and never send a form.
        self.admin = AdminApi(self.triton_http_url, self.admin_key)
        self.shm_prefix = ""
        self.supervisor: Supervisor | None = None
        self._distribution: TritonDistribution | None = None
        self._backends: Path | None = None
        self._workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def log_path(self) -> Path | None:
        return None if self._workdir is None or self.stream_logs else self._workdir / "triton.log"

    @property
    def triton_http_url(self) -> str:
        """HOST:PORT of Triton's own HTTP front end: behind the guard, a loopback port that only
        the guard and the launcher use."""
        return f"{client_host(self.triton_host)}:{self.triton_http_port}"

    @property
    def pid(self) -> int:
        assert self._process is not None, "server not started"
        return self._process.pid

    def command(self, backend_directory: Path, binary: Path) -> list[str]:
        endpoints = self.endpoints
        return [
            str(binary),
            f"--model-repository={self.repository}",
            f"--backend-directory={backend_directory}",
            f"--http-address={self.triton_host}",
            f"--http-port={self.triton_http_port}",
            f"--grpc-address={endpoints.host}",
            f"--grpc-port={endpoints.grpc_port}",
            f"--metrics-address={self.triton_host}",
            f"--metrics-port={self.triton_metrics_port}",
            f"--log-verbose={self.log_verbose}",
            *server_flags(self.admin_key, self.shm_prefix),
            *(() if has_nvidia_gpu() else CPU_ONLY_FLAGS),
            *(self.grpc_tls.arguments() if self.grpc_tls else []),
        ]

    def environment(self, distribution: TritonDistribution) -> dict[str, str]:
        """The server's environment: its bundled libraries, and this interpreter's packages.

        The python backend stub embeds libpython and finds its prefix through the first
        `python3` on PATH, so putting this interpreter's bin directory first makes the stub see
        the same virtual environment (tokenizers, numpy, onnxruntime) as the launcher.
        """
        env = dict(os.environ)
        env.pop(ADMIN_KEY_VARIABLE, None)  # the key reaches Triton as a flag, and no model
        libraries = [str(distribution.libraries), env.get("LD_LIBRARY_PATH", "")]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in libraries if p)
        scripts = sysconfig.get_path("scripts")
        env["PATH"] = os.pathsep.join([scripts, env.get("PATH", "")])
        return env

    def start(self) -> LocalServer:
        if self._process is not None:
            raise LauncherError("server already started")
        shared_memory.remove_stale()
        self._distribution = TritonDistribution.find(self.triton_home)
        self._workdir = Path(tempfile.mkdtemp(prefix="emotriton-server-"))
        self._backends = self._distribution.backend_directory(self._workdir / "backends")
        if not self.stream_logs:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in shutdown)
        try:
            for guard in self.guards:
                self._start_guard(guard)
            self._spawn(threading.Event())
        except BaseException:
            self.shutdown()
            raise
        self.supervisor = Supervisor(self)
        self.supervisor.start()
        return self

    def _start_guard(self, guard: HttpGuard) -> None:
        """Before Triton, so that a taken HTTP port fails the start at once, not after loading
        the models; it answers 503 until Triton listens."""
        try:
            guard.start()
        except OSError as error:
            address = f"{guard.host}:{guard.port}"
            raise LauncherError(f"cannot serve HTTP on {address}: {error}") from None

    def _spawn(self, cancel: threading.Event) -> None:
        """Start tritonserver and wait until it is ready, or `cancel` is set."""
        assert self._distribution is not None and self._backends is not None
        self.shm_prefix = shared_memory.new_prefix()
        self._process = subprocess.Popen(
            self.command(self._backends, self._distribution.binary),
            env=self.environment(self._distribution),
            cwd=self._workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log else None,
            start_new_session=True,
            preexec_fn=_child_setup(),
        )
        self._wait_ready(cancel)
        shared_memory.restrict(self.shm_prefix)

    def respawn(self, cancel: threading.Event) -> None:
        """Replace a server that died (the supervisor's restart); one that does not become
        ready is killed, so that the next round tries again."""
        self._terminate(drain=False)
        try:
            self._spawn(cancel)
        except BaseException:
            self.kill()
            raise

    def returncode(self) -> int | None:
        assert self._process is not None, "server not started"
        return self._process.poll()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self._process.wait()

    def _wait_ready(self, cancel: threading.Event) -> None:
        url = f"http://{self.triton_http_url}/v2/health/ready"
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline and not cancel.is_set():
            assert self._process is not None
            if self._process.poll() is not None:
                raise LauncherError(
                    f"tritonserver exited with code {self._process.returncode} while starting"
                    f"{self._log_tail()}"
                )
            with (
                contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
                urllib.request.urlopen(url, timeout=1) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.1)
        if not cancel.is_set():
            raise LauncherError(
                f"tritonserver not ready after {self.startup_timeout:.0f}s{self._log_tail()}"
            )

    def _log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n--- last lines of the server log ---\n" + "\n".join(tail)

    def wait(self) -> int:
        """Block until the supervisor gives up on a server that cannot start; its exit code."""
        assert self.supervisor is not None, "server not started"
        while self.supervisor.is_alive():
            self.supervisor.join(timeout=1)  # a timeout keeps the main thread's signals handled
        return self.supervisor.exit_code or 1

    def drain(self, deadline: float) -> None:
        """Stop taking requests and let those in flight finish, until `deadline` (monotonic).

        Unloading the ensembles makes the server unready and refuses new calls at once, while
        their requests in flight finish on composing models that still run. A SIGTERM alone
        would stop every model at once and fail the later steps of those requests.
        """
        with contextlib.suppress(AdminApiError):
            ready = [model for model, state in self.admin.states().items() if state == "READY"]
            ensembles = [model for model in ready if self.admin.is_ensemble(model)]
            for model in ensembles:
                self.admin.unload(model)
            while time.monotonic() < deadline and any(
                self.admin.states().get(model) in HOLDING_STATES for model in ensembles
            ):
                time.sleep(0.05)

    def _terminate(self, drain: bool) -> None:
        """Drain (if asked and alive), SIGTERM, wait, kill what is left, remove its regions."""
        process = self._process
        if process is None:
            return
        deadline = time.monotonic() + EXIT_TIMEOUT_SECS
        if process.poll() is None:
            if drain:
                self.drain(deadline)
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(deadline - time.monotonic(), 0) + 5)
        # The stubs are in the server's process group; none may outlive it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        shared_memory.remove(self.shm_prefix)
        self._process = None

    def shutdown(self) -> None:
        """Drain and stop the server, then the guards, and remove what they leave; safe to call
        again."""
        self._terminate(drain=True)
        for guard in self.guards:
            guard.stop()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def stop(self) -> None:
        """Drain the requests in flight (up to EXIT_TIMEOUT_SECS), then stop."""
        if self.supervisor is not None:
            self.supervisor.stop()  # it shuts the server down, from its own thread
        self.shutdown()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
