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

ONNXRUNTIME_BACKEND = Path(__file__).with_name("onnxruntime_backend.py")

# Seconds Triton waits for requests in flight when asked to stop.
EXIT_TIMEOUT_SECS = 30
# How every deployment starts Triton, whatever the image: the local server, docker-compose and
# Kubernetes pass exactly these (tests/test_deploy.py compares them).
SERVER_FLAGS = (
    "--disable-auto-complete-config",  # a config is what export wrote, never what Triton guessed
    "--strict-readiness=true",  # ready only when every model is
    f"--exit-timeout-secs={EXIT_TIMEOUT_SECS}",
    # The python models' shared-memory pool starts at 16 MiB, sized for batches of 64 texts.
    "--backend-config=python,shm-default-byte-size=16777216",
)


class LauncherError(EmotritonError):
    """The local Triton server could not be started or stopped."""


@dataclass(frozen=True)
class TritonDistribution:
    """Where the pieces of the Triton server shipped in the nvidia-pytriton wheel live."""

    binary: Path
    libraries: Path
    python_backend: Path
    stub: Path

    @classmethod
    def find(cls) -> TritonDistribution:
        try:
            from pytriton.utils import distribution
        except ImportError as error:
            raise LauncherError(
                "the local server needs the nvidia-pytriton wheel: pip install 'emotriton[server]'"
            ) from error
        root = distribution.get_root_module_path() / "tritonserver"
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        found = cls(
            binary=root / "bin" / "tritonserver",
            libraries=distribution.get_libs_path(),
            python_backend=root / "backends" / "python",
            stub=distribution.get_stub_path(version),
        )
        for path in (found.binary, found.python_backend, found.stub):
            if not path.exists():
                raise LauncherError(f"nvidia-pytriton has no {path} (Python {version}?)")
        return found

    def assemble_backends(self, directory: Path) -> Path:
        """Lay out `python/` and the Python-based `onnxruntime/` backend under `directory`."""
        # Copies, not links: Triton refuses a backend library that resolves outside the folder.
        python = directory / "python"
        python.mkdir(parents=True)
        for item in self.python_backend.iterdir():
            if item.is_file():
                shutil.copy2(item, python / item.name)
        shutil.copy2(self.stub, python / "triton_python_backend_stub")
        onnxruntime = directory / "onnxruntime"
        onnxruntime.mkdir()
        shutil.copy2(ONNXRUNTIME_BACKEND, onnxruntime / "model.py")
        return directory


def free_port(host: str = "127.0.0.1") -> int:
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
    return _die_with_parent if threading.current_thread() is threading.main_thread() else None


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


@dataclass(frozen=True)
class Endpoints:
    host: str
    http_port: int
    grpc_port: int
    metrics_port: int

    @property
    def _client_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host

    @property
    def grpc_url(self) -> str:
        return f"{self._client_host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"{self._client_host}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self._client_host}:{self.metrics_port}/metrics"


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
STANDARD_ENDPOINTS = Endpoints(host="127.0.0.1", http_port=8000, grpc_port=8001, metrics_port=8002)


class LocalServer:
    """A Triton server process on a model repository; a context manager.

    Ports left as None are picked free, which is what tests want. Logs go to `log_path`
    (a file in the server's scratch directory) unless `stream_logs` sends them to the console.
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
    ) -> None:
        self.repository = Path(repository).resolve()
        if not self.repository.is_dir():
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
        self._workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def log_path(self) -> Path | None:
        return None if self._workdir is None or self.stream_logs else self._workdir / "triton.log"

    def command(self, backend_directory: Path, binary: Path) -> list[str]:
        endpoints = self.endpoints
        return [
            str(binary),
            f"--model-repository={self.repository}",
            f"--backend-directory={backend_directory}",
            f"--http-address={endpoints.host}",
            f"--http-port={endpoints.http_port}",
            f"--grpc-address={endpoints.host}",
            f"--grpc-port={endpoints.grpc_port}",
            f"--metrics-address={endpoints.host}",
            f"--metrics-port={endpoints.metrics_port}",
            f"--log-verbose={self.log_verbose}",
            *SERVER_FLAGS,
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
        libraries = [str(distribution.libraries), env.get("LD_LIBRARY_PATH", "")]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in libraries if p)
        scripts = sysconfig.get_path("scripts")
        env["PATH"] = os.pathsep.join([scripts, env.get("PATH", "")])
        return env

    def start(self) -> LocalServer:
        if self._process is not None:
            raise LauncherError("server already started")
        distribution = TritonDistribution.find()
        self._workdir = Path(tempfile.mkdtemp(prefix="emotriton-server-"))
        backends = distribution.assemble_backends(self._workdir / "backends")
        output = None
        if not self.stream_logs:
            self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
            output = self._log
        self._process = subprocess.Popen(
            self.command(backends, distribution.binary),
            env=self.environment(distribution),
            cwd=self._workdir,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
            preexec_fn=_child_setup(),
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        url = f"http://{self.endpoints.http_url}/v2/health/ready"
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
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
        raise LauncherError(
            f"tritonserver not ready after {self.startup_timeout:.0f}s{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n--- last lines of the server log ---\n" + "\n".join(tail)

    def wait(self) -> int:
        """Block until the server exits; its exit code."""
        assert self._process is not None, "server not started"
        return self._process.wait()

    def stop(self) -> None:
        """SIGTERM and wait (Triton unloads models and its stubs exit), then kill what is left."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=EXIT_TIMEOUT_SECS + 5)
            # The stubs are in the server's process group; none may outlive it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
