"""The watchdog's rule for a dead backend process, without a server: the process and Triton's
repository API are stand-ins for the Supervised and ModelControl protocols."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from emoserve import supervisor
from emoserve.supervisor import Supervisor


class Models:
    """Triton's repository API: every model ready; unload and load recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.loaded = lambda: None

    def states(self) -> dict[str, str]:
        return {"m_encoder": "READY", "m_tokenizer": "READY"}

    def unload(self, model: str) -> None:
        self.calls.append(("unload", model))

    def load(self, model: str) -> None:
        self.calls.append(("load", model))
        self.loaded()


def running_process() -> SimpleNamespace:
    return SimpleNamespace(pid=100, shm_prefix="x", returncode=lambda: None)


def test_a_stub_missing_from_a_snapshot_is_reloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stub 101 is missing from the third snapshot (the first is taken at start). Reading each
    known pid's state and then taking a new list lost a stub that died between the two (a
    zombie by then, never listed)."""
    snapshots = iter([{101: "m_encoder", 102: "m_tokenizer"}] * 2 + [{102: "m_tokenizer"}])
    monkeypatch.setattr(supervisor, "POLL_SECS", 0.0)
    monkeypatch.setattr(supervisor.shared_memory, "restrict", lambda prefix: None)
    models = Models()
    stopped: list[bool] = []
    watchdog = Supervisor(running_process(), models, lambda: stopped.append(True))  # type: ignore[arg-type]
    models.loaded = watchdog.stopping.set
    monkeypatch.setattr(supervisor, "backend_processes", lambda pid: next(snapshots, {}))
    watchdog._watch()
    assert models.calls == [("unload", "m_encoder"), ("load", "m_encoder")]
    assert [(r.action, r.subject) for r in watchdog.recoveries] == [("reload", "m_encoder")]
    assert stopped == []  # stopping is run()'s, after the watch


def test_the_watch_ends_in_on_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    """`on_stop` (drain and stop the server) runs in the supervisor's thread once it stops."""
    monkeypatch.setattr(supervisor, "POLL_SECS", 0.0)
    monkeypatch.setattr(supervisor, "backend_processes", lambda pid: {})
    stopped: list[bool] = []
    watchdog = Supervisor(running_process(), Models(), lambda: stopped.append(True))  # type: ignore[arg-type]
    watchdog.start()
    watchdog.stop()
    assert stopped == [True] and not watchdog.is_alive()


def test_a_round_that_cannot_read_proc_declares_nothing_dead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Out of file descriptors, /proc reads fail: the round is skipped, not taken for a list of
    no stubs (which used to reload every model at once)."""
    snapshots = iter([{101: "m_encoder"}, "unreadable", {101: "m_encoder"}])

    def snapshot(pid: int) -> dict[int, str]:
        taken = next(snapshots, None)
        if taken is None:
            watchdog.stopping.set()
            return {101: "m_encoder"}
        if taken == "unreadable":
            raise supervisor.ProcUnreadable(24, "Too many open files")
        return taken  # type: ignore[return-value]

    monkeypatch.setattr(supervisor, "POLL_SECS", 0.0)
    monkeypatch.setattr(supervisor.shared_memory, "restrict", lambda prefix: None)
    monkeypatch.setattr(supervisor, "backend_processes", snapshot)
    models = Models()
    watchdog = Supervisor(running_process(), models, lambda: None)  # type: ignore[arg-type]
    watchdog._watch()
    assert models.calls == []


def test_proc_that_cannot_be_read_is_not_an_empty_list(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_descriptors(self: object) -> bytes:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(supervisor.Path, "read_bytes", no_descriptors)
    with pytest.raises(supervisor.ProcUnreadable):
        supervisor.backend_processes(1)


def test_a_stub_that_keeps_dying_is_reloaded_then_the_server_restarted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reloaded MAX_RELOADS times (after growing delays, unready meanwhile), then the server is
    killed, for the restart path to start it afresh."""
    deaths = supervisor.MAX_RELOADS + 1
    snapshots = iter([s for n in range(deaths) for s in ({n + 1: "m_encoder"}, {})])
    monkeypatch.setattr(supervisor, "POLL_SECS", 0.0)
    monkeypatch.setattr(supervisor, "MAX_DELAY_SECS", 0.0)
    monkeypatch.setattr(supervisor.shared_memory, "restrict", lambda prefix: None)
    monkeypatch.setattr(supervisor, "backend_processes", lambda pid: next(snapshots, {}))
    process = running_process()
    process.kill = lambda: watchdog.stopping.set()
    models = Models()
    watchdog = Supervisor(process, models, lambda: None)  # type: ignore[arg-type]
    watchdog._watch()
    reloads = [("unload", "m_encoder"), ("load", "m_encoder")] * supervisor.MAX_RELOADS
    assert models.calls == reloads
    assert watchdog.stopping.is_set()  # killed, not reloaded a fourth time


def test_a_restart_that_fails_to_start_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tritonserver that could not even be spawned (OSError) used to end the watchdog."""
    monkeypatch.setattr(supervisor, "POLL_SECS", 0.0)
    monkeypatch.setattr(supervisor, "MAX_DELAY_SECS", 0.0)
    monkeypatch.setattr(supervisor.shared_memory, "restrict", lambda prefix: None)
    monkeypatch.setattr(supervisor, "backend_processes", lambda pid: {})
    tries: list[str] = []
    state = {"code": 1}

    def restart(cancel: object) -> None:
        tries.append("restart")
        if len(tries) == 1:
            raise OSError(12, "Cannot allocate memory")
        state["code"] = None
        watchdog.stopping.set()

    process = SimpleNamespace(pid=100, shm_prefix="x", returncode=lambda: state["code"],
                              restart=restart)  # fmt: skip
    watchdog = Supervisor(process, Models(), lambda: None)  # type: ignore[arg-type]
    watchdog._watch()
    assert tries == ["restart", "restart"] and watchdog.exit_code is None
