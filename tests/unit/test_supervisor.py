"""The watchdog's rule for a dead backend process, without a server."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from emoserve import supervisor
from emoserve.supervisor import Supervisor


def test_a_stub_missing_from_a_snapshot_is_reloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stub 101 is missing from the third snapshot (the first is taken at start). Reading each
    known pid's state and then taking a new list lost a stub that died between the two (a
    zombie by then, never listed)."""
    snapshots = iter([{101: "m_encoder", 102: "m_tokenizer"}] * 2 + [{102: "m_tokenizer"}])
    monkeypatch.setattr(supervisor, "POLL_SECS", 0.0)
    monkeypatch.setattr(supervisor.shared_memory, "restrict", lambda prefix: None)
    server = SimpleNamespace(pid=100, shm_prefix="x", returncode=lambda: None)
    watchdog = Supervisor(server)  # type: ignore[arg-type]
    reloaded = []

    def reload(models: set[str]) -> bool:
        reloaded.append(models)
        watchdog.stopping.set()
        return True

    monkeypatch.setattr(watchdog, "_reload", reload)
    monkeypatch.setattr(supervisor, "backend_processes", lambda pid: next(snapshots, {}))
    watchdog._watch()
    assert reloaded == [{"m_encoder"}]
