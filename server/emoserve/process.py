"""One tritonserver process: spawned, waited for until ready, terminated, killed.

The process runs in a session of its own, with its python-backend stubs in its process group,
so stopping it takes the stubs with it. It is asked to die with the thread that started it
(Linux's PR_SET_PDEATHSIG), so that no server outlives a launcher that was killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from . import shared_memory
from .admin import ADMIN_KEY_VARIABLE
from .config import EXIT_TIMEOUT_SECS, ServerConfig, has_nvidia_gpu
from .distribution import TritonDistribution
from .errors import LauncherError
from .ports import holders

READY_POLL_SECS = 0.1
NOT_STARTED = -255  # returncode() of a process that is not running: the watchdog starts it
KILL_MARGIN_SECS = 5  # after the exit timeout, before SIGKILL
# What Triton 2.51 logs at error level at every start on a machine without an NVIDIA GPU, and
# is not an error there: the launcher logs these lines at info level ("I" for "E").
HARMLESS_WITHOUT_GPU = (
    b"CudaDriverHelper has not been initialized",
    b"CUDA driver version is insufficient for CUDA runtime version",
)


_PR_SET_PDEATHSIG = 1
_prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)  # Linux; found before fork
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is done, then act as they would have.

    Around a `spawn` whose result is stored in the block: a KeyboardInterrupt raised inside
    subprocess.Popen after the fork, or before the result is stored, would leave a child that
    nobody ends. Signal handlers can only be swapped in the main thread; elsewhere the block
    runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    handlers = {n: signal.signal(n, lambda number, _: caught.append(number)) for n in _STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
        for arrived in caught:
            previous = handlers[signal.Signals(arrived)]
            if callable(previous):
                previous(arrived, None)
            elif previous == signal.SIG_DFL:
                signal.raise_signal(arrived)


def spawn(command: list[str], death_signal: int | None, **options: Any) -> subprocess.Popen[bytes]:
    """Popen(command, **options) in a session of its own (a Ctrl-C at the terminal reaches only
    its parent, which ends it). With `death_signal`, Linux sends the child that signal when the
    thread that started it ends: only a thread that lives as long as the child should ask."""

    def in_child() -> None:
        if _prctl is not None and death_signal is not None:
            _prctl(_PR_SET_PDEATHSIG, death_signal)

    return subprocess.Popen(command, start_new_session=True, preexec_fn=in_child, **options)


def environment(distribution: TritonDistribution) -> dict[str, str]:
    """The server's environment: its bundled libraries, and this interpreter's packages.

    The python backend stub embeds libpython and finds its prefix through the first `python3`
    on PATH, so putting this interpreter's bin directory first makes the stub see the same
    virtual environment (tokenizers, numpy, onnxruntime) as the launcher.
    """
    env = dict(os.environ)
    env.pop(ADMIN_KEY_VARIABLE, None)  # the key reaches Triton as a flag, and no model
    libraries = [str(distribution.libraries), env.get("LD_LIBRARY_PATH", "")]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in libraries if p)
    env["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), env.get("PATH", "")])
    return env


def _pump(lines: IO[bytes], sink: IO[bytes]) -> None:
    """Copy Triton's output to `sink` line by line, until it closes, with its CUDA errors at
    info level where there is no GPU."""
    harmless = () if has_nvidia_gpu() else HARMLESS_WITHOUT_GPU
    with lines:
        for line in lines:
            if line.startswith(b"E") and any(text in line for text in harmless):
                line = b"I" + line[1:]
            sink.write(line)
            sink.flush()


class TritonProcess:
    """tritonserver on `config`, started in `workdir` with its output in `log` (None: the
    console). `start` may be called again once the process is gone."""

    def __init__(
        self,
        config: ServerConfig,
        distribution: TritonDistribution,
        workdir: Path,
        log: IO[bytes] | None,
        log_path: Path | None,
    ) -> None:
        self.config = config
        self.distribution = distribution
        self.workdir = workdir
        self.backends = distribution.backend_directory(workdir / "backends")
        self.log = log
        self.log_path = log_path
        self.shm_prefix = ""
        self._popen: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Lock()

    @property
    def pid(self) -> int:
        return self._running().pid

    def returncode(self) -> int | None:
        """None while it runs; its exit code once it has exited, or NOT_STARTED's when it is
        not running at all (a start that failed)."""
        if self._popen is None:
            return NOT_STARTED
        return self._popen.poll()

    def _running(self) -> subprocess.Popen[bytes]:
        if self._popen is None:
            raise LauncherError("tritonserver is not started")
        return self._popen

    def start(self, cancel: threading.Event, die_with_thread: bool) -> None:
        """Spawn tritonserver and wait until it is ready, or `cancel` is set. With
        `die_with_thread` it dies with the calling thread: only a thread that lives as long as
        the server should ask that."""
        self.shm_prefix = shared_memory.new_prefix()
        with interrupts_deferred():  # the caller's stop ends what was started
            self._popen = spawn(
                self.config.command(self.distribution, self.backends, self.shm_prefix),
                death_signal=signal.SIGTERM if die_with_thread else None,
                env=environment(self.distribution),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        assert self._popen.stdout is not None
        sink = self.log if self.log is not None else sys.stderr.buffer
        threading.Thread(
            target=_pump, args=(self._popen.stdout, sink), name="emoserve-triton-log", daemon=True
        ).start()
        self._wait_ready(cancel)
        shared_memory.restrict(self.shm_prefix)

    def restart(self, cancel: threading.Event) -> None:
        """Replace a server that died, from the thread that will stop it (the supervisor's);
        one that does not become ready is stopped, so that the next try starts afresh."""
        self.terminate()
        try:
            self.start(cancel, die_with_thread=True)
        except BaseException:
            self.terminate()
            raise

    def kill(self) -> None:
        """SIGKILL the server and its stubs at once (nothing when it is not started)."""
        process = self._popen
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def terminate(self, drain: Callable[[float], None] | None = None) -> None:
        """`drain` (given the monotonic deadline) while it runs, then SIGTERM, wait, kill what
        is left and remove its shared memory; nothing when it is not started. One thread at a
        time: the supervisor's and the caller's stops may meet."""
        with self._stopping:
            process = self._popen
            if process is None:
                return
            deadline = time.monotonic() + EXIT_TIMEOUT_SECS
            if process.poll() is None:
                if drain is not None:
                    drain(deadline)
                process.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=max(deadline - time.monotonic(), 0) + KILL_MARGIN_SECS)
            self.kill()  # the stubs are in its process group; none may outlive it
            shared_memory.remove(self.shm_prefix)
            self._popen = None

    def _wait_ready(self, cancel: threading.Event) -> None:
        url = f"http://{self.config.triton_http_url}/v2/health/ready"
        deadline = time.monotonic() + self.config.startup_timeout
        while time.monotonic() < deadline and not cancel.is_set():
            code = self._running().poll()
            if code is not None:
                raise LauncherError(
                    f"tritonserver exited with code {code} while starting{self._log_tail()}"
                )
            with (
                contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
                urllib.request.urlopen(url, timeout=1) as response,
            ):
                if response.status == 200 and self._holds_its_ports():
                    return
            time.sleep(READY_POLL_SECS)
        if not cancel.is_set():
            raise LauncherError(
                f"tritonserver not ready after {self.config.startup_timeout:.0f}s{self._log_tail()}"
            )

    def _holds_its_ports(self) -> bool:
        """True once Triton listens on every port it was told to (it binds them one after
        another); LauncherError where another process holds one: whoever took it before
        Triton bound it would get the launcher's admin calls and the clients' texts."""
        config = self.config
        ports = [config.triton_http_port, config.endpoints.grpc_port, config.triton_metrics_port]
        held = holders(self.pid, ports)
        taken = [str(port) for port, holder in held.items() if holder == "other"]
        if taken:
            self.kill()
            raise LauncherError(
                f"port(s) {', '.join(taken)} are held by another process, not by the "
                "tritonserver started here: refusing to serve through them"
            )
        return all(holder == "ours" for holder in held.values())

    def _log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n--- last lines of the server log ---\n" + "\n".join(tail)
