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
