"""Keeps a Triton server serving without a person: the launcher's watchdog.

Triton 2.51's python backend never replaces a stub process that died (SIGKILL, out of memory),
and the server stays ready meanwhile: every request to the model fails for good. The watchdog
sees the stub die and reloads its model through the repository API: unloading takes readiness
down at once (strict readiness), loading starts a new stub. A stub that keeps dying is reloaded
after a growing delay, unready meanwhile, and past MAX_RELOADS in a window the whole server is
restarted instead. A tritonserver that dies (the HTTP front end's SIGSEGV) is started again, at
once after a stable run, then with a growing delay so that a crash loop does not spin.
docs/reliability.md has the measurements behind the choice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import shared_memory
from .admin import AdminApiError

log = logging.getLogger(__name__)

POLL_SECS = 0.2  # how often the watchdog looks: readiness goes false within this and a request
STABLE_SECS = 60.0  # a server up this long crashed by accident, not in a loop: restart at once
MAX_DELAY_SECS = 30.0
MAX_FAILED_STARTS = 5  # starts in a row that never became ready: give up, exit, let the
#                        orchestrator (compose's restart policy, Kubernetes) take over
MAX_RELOADS = 3  # reloads of one model within STABLE_SECS; one more restarts the server


class ProcUnreadable(OSError):
    """/proc could not be read (out of file descriptors, say): no process can be told dead."""


def _read(path: Path) -> bytes:
    """A /proc file; FileNotFoundError when its process is gone, ProcUnreadable otherwise."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as error:
        raise ProcUnreadable(error.errno, f"cannot read {path}: {error.strerror}") from error


def _alive(pid: int) -> bool:
    """A process that runs (a zombie does not: Triton does not reap its dead stubs)."""
    try:
        state = _read(Path(f"/proc/{pid}/stat")).rsplit(b")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != b"Z"


def backend_processes(server_pid: int) -> dict[int, str]:
    """The live python-backend stubs of a tritonserver, each with the model it serves;
    ProcUnreadable when /proc cannot be read, rather than a list that would look empty.

    A stub's first argument is the model file, `<repository>/<model>/<version>/<file>`.
    """
    try:
        children = _read(Path(f"/proc/{server_pid}/task/{server_pid}/children")).split()
    except FileNotFoundError:
        return {}  # the server is gone: its exit code says so
    found = {}
    for pid in map(int, children):
        try:
            arguments = _read(Path(f"/proc/{pid}/cmdline")).split(b"\0")
        except FileNotFoundError:
            continue
        if arguments[0].endswith(b"triton_python_backend_stub") and _alive(pid):
            found[pid] = Path(arguments[1].decode()).parents[1].name
    return found


@dataclass(frozen=True)
class Recovery:
    """One thing the watchdog repaired, and how long it took."""

    action: str  # "reload" (a model whose backend process died) or "restart" (the server)
    subject: str  # the model, or the server's exit code
    seconds: float


class Supervised(Protocol):
    """The server process the watchdog keeps running (emoserve.process.TritonProcess)."""

    @property
    def pid(self) -> int: ...

    @property
    def shm_prefix(self) -> str: ...

    def returncode(self) -> int | None: ...

    def kill(self) -> None: ...

    def restart(self, cancel: threading.Event) -> None: ...


class ModelControl(Protocol):
    """Triton's repository API, as the watchdog uses it (emoserve.admin.AdminApi)."""

    def states(self) -> dict[str, str]: ...

    def unload(self, model: str) -> None: ...

    def load(self, model: str) -> None: ...


class Supervisor(threading.Thread):
    """Watches one server process until `stop()`, then calls `on_stop` (drain and stop it) from
    this thread.

    The server's processes are children of this thread while it runs (a restarted server is
    started here, and dies with this thread), so stopping happens here too.
    """

    def __init__(
        self, process: Supervised, models: ModelControl, on_stop: Callable[[], None]
    ) -> None:
        super().__init__(name="emoserve-supervisor", daemon=True)
        self.process = process
        self.models = models
        self.on_stop = on_stop
        self.recoveries: list[Recovery] = []
        self.exit_code: int | None = None  # set when it gave up on a server that cannot start
        self.stopping = threading.Event()
        # Set when `run` has returned. Waited on rather than join(timeout): on Python 3.11 a
        # join interrupted by KeyboardInterrupt marks a running thread as stopped.
        self.finished = threading.Event()
        self._crashes = 0  # in a row, each within STABLE_SECS of the last start
        self._failed_starts = 0
        self._ready_at = time.monotonic()
        self._reloads: dict[str, list[float]] = {}  # model → when it was reloaded, recently

    def stop(self) -> None:
        """Stop watching, and return once `on_stop` has run (at once if never started)."""
        self.stopping.set()
        if self.ident is not None:
            self.finished.wait()

    def run(self) -> None:
        try:
            self._watch()
        finally:
            try:
                self.on_stop()
            finally:
                self.finished.set()

    def _watch(self) -> None:
        stubs: dict[int, str] | None = None  # None: not known since the last (re)start
        while not self.stopping.wait(POLL_SECS):
            code = self.process.returncode()
            if code is not None:
                if not self._restart(code):
                    return
                stubs = None
                continue
            shared_memory.restrict(self.process.shm_prefix)
            try:
                # A stub is dead when it is missing from one snapshot: checking each known stub
                # and then taking a new list missed a stub that died in between (CI caught it).
                live = backend_processes(self.process.pid)
            except ProcUnreadable as error:
                log.warning("%s: cannot tell which backend processes live this round", error)
                continue
            if stubs is None:
                stubs = live
                continue
            dead = {model for pid, model in stubs.items() if pid not in live}
            if dead and not self._reload(dead):
                self.process.kill()  # the next round restarts it
                continue
            stubs = None if dead else live

    def _reload(self, models: set[str]) -> bool:
        """Reload each model whose stub died and that Triton still calls ready; False when
        reloading failed.

        The unload of a model whose stub is dead never completes (its instance waits for the
        stub), so the load does not wait for it: it starts a new instance beside the old one.
        """
        admin = self.models
        started = time.monotonic()
        try:
            states = admin.states()
            for model in sorted(m for m in models if states.get(m) == "READY"):
                recent = [t for t in self._reloads.get(model, []) if started - t < STABLE_SECS]
                if len(recent) >= MAX_RELOADS:
                    log.error("%s died %d times in %.0f s: restarting the server", model,
                              len(recent) + 1, STABLE_SECS)  # fmt: skip
                    self._reloads.clear()
                    return False
                delay = min(2.0 ** len(recent) - 1, MAX_DELAY_SECS)
                log.warning("the backend process of %s died: reloading it in %.0f s", model, delay)
                admin.unload(model)  # the model, its ensembles and the server: unready
                if self.stopping.wait(delay):
                    return True
                admin.load(model)  # and the ensembles that use it
                self._reloads[model] = [*recent, time.monotonic()]
                self.recoveries.append(Recovery("reload", model, time.monotonic() - started))
                log.warning("%s serves again after %.1f s", model, time.monotonic() - started)
        except AdminApiError as error:
            log.error("reloading failed (%s): restarting the server", error)
            return False
        return True

    def _restart(self, code: int) -> bool:
        """Start the server again, after a delay that grows while it keeps dying; False when it
        failed to start MAX_FAILED_STARTS times in a row."""
        crashed = time.monotonic()
        if crashed - self._ready_at > STABLE_SECS:
            self._crashes = 0
        delay = min(2.0 ** (self._crashes - 1), MAX_DELAY_SECS) if self._crashes else 0.0
        self._crashes += 1
        log.error("tritonserver exited with code %s: starting it again in %.0f s", code, delay)
        if self.stopping.wait(delay):
            return True
        try:
            self.process.restart(self.stopping)
        except Exception as error:  # any failure to start counts
            self._failed_starts += 1
            log.error("restart failed: %s", error)
            if self._failed_starts < MAX_FAILED_STARTS:
                return True
            self.exit_code = code
            return False
        if self.stopping.is_set():
            return True
        self._failed_starts = 0
        self._ready_at = time.monotonic()
        self.recoveries.append(Recovery("restart", str(code), self._ready_at - crashed))
        log.warning("tritonserver serves again after %.1f s", self._ready_at - crashed)
        return True
