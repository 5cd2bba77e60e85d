"""`emotriton loadtest`: short headless runs against the test server, and the ways it must
fail or stop: in one line, leaving no process or folder behind. The failures that need no
server are in tests/unit/test_loadtest.py."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from emoload.runner import STOP_TIMEOUT_S
from emoserve import LocalServer
from emoserve.config import EXIT_TIMEOUT_SECS
from emoserve.process import KILL_MARGIN_SECS

from ..support import EMOTRITON, processes_mentioning

DURATION = 3
SLACK_S = 15  # Python, Locust and the SDK start; a busy 2-core machine


def loadtest(*options: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*EMOTRITON, "loadtest", "--duration", str(DURATION), *options],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def url_of(server: LocalServer, protocol: str) -> str:
    return server.endpoints.grpc_url if protocol == "grpc" else server.endpoints.http_url


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_short_load_test_reports_agree(server, protocol: str, tmp_path: Path) -> None:
    out = tmp_path / "report"
    run = loadtest(
        "--model", "emotion", "--url", url_of(server, protocol), "--protocol", protocol,
        "--users", "1", "2", "--spawn-rate", "2", "--batch-size", "8", "--out", str(out),
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    for users in (1, 2):
        folder = out / f"users-{users}"
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["users"] == users
        assert summary["failures"] == 0
        assert summary["requests"] > 10
        assert summary["texts"] > summary["requests"]  # batches carry several texts
        assert f"{protocol} {users} users: {summary['requests']} requests" in run.stdout
        with (folder / "locust_stats.csv").open() as file:
            rows = list(csv.DictReader(file))
        requests = [row for row in rows if row["Type"] not in ("TEXTS", "")]
        (texts,) = [row for row in rows if row["Type"] == "TEXTS"]
        assert sum(int(row["Request Count"]) for row in requests) == summary["requests"]
        assert sum(int(row["Failure Count"]) for row in requests) == 0
        assert int(texts["Request Count"]) == summary["texts"]
        assert (folder / "report.html").stat().st_size > 0
    assert (out / "loadtest.png").read_bytes().startswith(b"\x89PNG")
    assert not processes_mentioning(str(out))


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_model_not_served_fails_in_one_line(server, protocol: str, tmp_path: Path) -> None:
    out = tmp_path / "report"
    run = loadtest(
        "--model", "nope", "--url", url_of(server, protocol), "--protocol", protocol,
        "--out", str(out),
    )  # fmt: skip
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.count("\n") == 1 and "model 'nope' is not served" in run.stderr
    assert not processes_mentioning(str(out))


def test_a_bulk_user_runs_beside_the_others_and_is_counted_apart(server, tmp_path: Path) -> None:
    out = tmp_path / "report"
    run = loadtest(
        "--model", "emotion", "--url", server.endpoints.grpc_url, "--users", "2",
        "--spawn-rate", "3", "--bulk-users", "1", "--bulk-texts", "100", "--out", str(out),
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    folder = out / "users-2"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["users"] == 3 and summary["failures"] == 0
    with (folder / "locust_stats.csv").open() as file:
        rows = {row["Name"]: row for row in csv.DictReader(file)}
    assert int(rows["bulk"]["Request Count"]) >= 1 and int(rows["bulk"]["Failure Count"]) == 0
    assert int(rows["single"]["Request Count"]) > 0


@pytest.fixture
def small_repository(repository: Path, tmp_path: Path) -> Path:
    """The `emotion` ensemble alone, for a local server that starts quickly."""
    small = tmp_path / "repository"
    for name in ("emotion", "emotion_tokenizer", "emotion_encoder", "emotion_postprocess"):
        shutil.copytree(repository / name, small / name)
    return small


def as_in_a_terminal() -> None:
    """Ctrl-C as a foreground command gets it. A shell starts background jobs (`make test &`,
    nohup) with SIGINT ignored, which their children inherit, and Python keeps it so."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_load_test_leaves_nothing_behind(
    small_repository: Path, stop: signal.Signals, tmp_path: Path
) -> None:
    """Killing the CLI ends its Locust and its local server, and removes the server's folder."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out = tmp_path / "report"
    process = subprocess.Popen(
        [*EMOTRITON, "loadtest", "--model", "emotion", "--repository", str(small_repository),
         "--duration", "60", "--out", str(out)],
        env={**os.environ, "TMPDIR": str(scratch)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=as_in_a_terminal,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not processes_mentioning(f"--report-dir {out}"):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "locust never started"
        time.sleep(0.2)
    assert any(scratch.glob("emotriton-server-*"))
    time.sleep(1)
    process.send_signal(stop)
    # Within what the CLI itself allows its parts: Locust to stop its users, then Triton to
    # drain and exit before it is killed.
    limit = STOP_TIMEOUT_S + EXIT_TIMEOUT_SECS + KILL_MARGIN_SECS + SLACK_S
    _, stderr = process.communicate(timeout=limit)
    assert process.returncode == 130, stderr
    assert stderr.strip().endswith("emotriton: loadtest interrupted")
    assert not processes_mentioning(str(out))
    assert not processes_mentioning(str(small_repository))
    assert not list(scratch.glob("emotriton-server-*"))  # (bash, which starts Triton's stubs,
    # may leave a file of its own there)
