"""`emotriton loadtest`'s failures that need no server, in-process: a dead server fails at once,
a missing corpus before anything starts; each in one line, leaving no process or folder
behind (the runs against a server are in tests/e2e/test_loadtest.py)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emoserve.config import free_port
from emotriton.cli import main

from ..support import processes_mentioning

DURATION = 3
SLACK_S = 15  # the SDK's first connection; a busy 2-core machine


@pytest.fixture(autouse=True)
def sigterm_handler_kept() -> Iterator[None]:
    """The command ends on SIGTERM as on Ctrl-C; the test session's own handler comes back."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def loadtest(*options: str) -> int:
    return main(["loadtest", "--duration", str(DURATION), *options])


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_dead_server_fails_at_once_in_one_line(
    protocol: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """On the file descriptors: whatever the gRPC core or Locust would print counts too."""
    out = tmp_path / "report"
    started = time.monotonic()
    code = loadtest(
        "--model", "emotion", "--url", f"127.0.0.1:{free_port()}", "--protocol", protocol,
        "--out", str(out),
    )  # fmt: skip
    assert time.monotonic() - started < DURATION + SLACK_S
    printed = capfd.readouterr()
    assert code == 2, printed.out + printed.err
    assert printed.err.count("\n") == 1 and "no Triton server reachable" in printed.err
    assert "Connection refused" in printed.err
    assert not processes_mentioning(str(out))


def test_a_missing_corpus_fails_before_starting(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code = loadtest(
        "--model", "emotion", "--corpus", str(tmp_path / "missing.txt"),
        "--repository", str(tmp_path),  # no server is started for a test that cannot run
        "--out", str(tmp_path / "report"),
    )  # fmt: skip
    printed = capfd.readouterr()
    assert code == 2, printed.out + printed.err
    assert printed.err == f"emotriton: error: corpus {tmp_path / 'missing.txt'}: " + (
        "No such file or directory\n"
    )
    assert not (tmp_path / "report").exists()
