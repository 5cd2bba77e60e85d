"""`LocalServer`: a supervised Triton server on a model repository, behind its HTTP guards.

A facade over pieces that each do one thing: the config (flags, endpoints, TLS), the process
(spawn, readiness, stop), the HTTP guards, the admin API and the watchdog.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from functools import partial
from pathlib import Path
from typing import IO

from . import shared_memory
from .admin import AdminApi, drain
from .admin import admin_key as chosen_admin_key
from .config import DEFAULT_CACHE_BYTES, STANDARD_ENDPOINTS, Endpoints, GrpcTls, ServerConfig
from .distribution import TritonDistribution
from .errors import LauncherError
from .http_guard import HttpGuard, open_front_door
from .process import TritonProcess
from .supervisor import Supervisor
from .tracing import Tracing


class LocalServer:
    """Triton on `repository`, supervised, behind its HTTP guards; a context manager. Ports
    left as None are picked free; the admin APIs need `admin_key` (EMOTRITON_ADMIN_KEY, or a
    random key); logs go to the scratch folder unless `stream_logs`."""

    def __init__(
        self,
        repository: str | Path,
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
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        tracing: Tracing | None = None,
    ) -> None:
        endpoints = Endpoints.picked(host, http_port, grpc_port, metrics_port)
        key = chosen_admin_key(admin_key)
        self.config = config = ServerConfig.create(
            repository, endpoints, admin_key=key, cache_bytes=cache_bytes, tracing=tracing,
            log_verbose=log_verbose, grpc_tls=grpc_tls, startup_timeout=startup_timeout,
        )  # fmt: skip
        self.endpoints, self.admin_key = endpoints, key
        self.guards: list[HttpGuard] = []
        self.admin = AdminApi(config.triton_http_url, config.admin_key)
        self.triton_home, self.stream_logs = triton_home, stream_logs
        self.process: TritonProcess | None = None
        self.supervisor: Supervisor | None = None
        self._workdir: Path | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> LocalServer:
        if self._workdir is not None:
            raise LauncherError("server already started")
        shared_memory.remove_stale()
        self._workdir = workdir = Path(tempfile.mkdtemp(prefix="emotriton-server-"))
        log_path = None if self.stream_logs else workdir / "triton.log"
        try:
            self._log = None if log_path is None else log_path.open("ab")
            distribution = TritonDistribution.find(self.triton_home)
            # The guards first: a taken port fails at once, not after the models load.
            self.guards, self.config = open_front_door(self.config)
            self.endpoints = self.config.endpoints
            self.admin = AdminApi(self.config.triton_http_url, self.admin_key)
            self.process = TritonProcess(self.config, distribution, workdir, self._log, log_path)
            main = threading.current_thread() is threading.main_thread()
            self.process.start(threading.Event(), die_with_thread=main)
            self.supervisor = Supervisor(self.process, self.admin, self._shutdown)
            self.supervisor.start()
        except BaseException:
            self._shutdown()
            raise
        return self

    def wait(self) -> int:
        """Block until the supervisor gives up on a server that cannot start; its exit code."""
        assert self.supervisor is not None, "server not started"
        while not self.supervisor.finished.wait(timeout=1):  # the main thread's signals act
            pass
        return self.supervisor.exit_code or 1

    def _shutdown(self) -> None:
        """Drain and stop Triton, then the guards; remove what they leave. Safe to call again."""
        if self.process is not None:
            self.process.terminate(partial(drain, self.admin))
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
        self._shutdown()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
