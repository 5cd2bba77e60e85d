"""`emotriton loadtest`: Locust headless, one run per number of users, and a plot of them all.

Locust runs as a child process (it monkey-patches the interpreter with gevent), in a session of
its own that dies with the runner: Linux kills it if the runner's process ends, however it ends,
and the runner ends it on any way out of `LoadTest.run`, Ctrl-C included.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from emoclient import Client, RetryPolicy
from emoexport.options import option
from emoserve.process import interrupts_deferred, spawn

from .corpus import DEFAULT_CORPUS, read_corpus
from .errors import LoadTestError, require_positive
from .summary import HTML_REPORT, LOG_FILE, LoadSummary

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
USER_CLASSES = {"grpc": "GrpcUser", "http": "HttpUser"}
BULK_USER_CLASS = "BulkGrpcUser"
DEPENDENCIES = ("locust", "matplotlib")  # the `loadtest` extra
PLOT_FILE = "loadtest.png"
STOP_TIMEOUT_S = 10  # at the end, users finish the request they are in
START_AND_REPORT_S = 30  # Locust's start-up and report writing, on a busy machine
CHECK_TIMEOUT_S = 30.0  # a refused connection fails at once; a first inference may be slow
WARM_UP_TEXT = "Thank you so much, this made my day!"


@dataclass(frozen=True)
class LoadTest:
    """A load test of `model`: one Locust run of `seconds` per entry of `users`, each into
    `out/users-N/`, and `out/loadtest.png` across them."""

    model: str
    protocol: Literal["grpc", "http"] = "grpc"
    users: tuple[int, ...] = option(
        (4,),
        "concurrent Locust users; several numbers run one test each",
        type=int,
        nargs="+",
        action="extend",
    )
    spawn_rate: float = option(4.0, "users started per second", type=float)
    seconds: int = 30  # --duration
    batch_size: int = option(16, "texts in a batch request", type=int)
    bulk_users: int = option(
        0,
        "bulk jobs beside the users (gRPC), each one call of --bulk-texts after another",
        type=int,
    )
    bulk_texts: int = option(1000, "texts in each bulk call", type=int)
    corpus: Path = option(DEFAULT_CORPUS, "texts, one per line", type=Path)
    out: Path = option(Path("build/loadtest"), "folder for the reports", type=Path)

    def __post_init__(self) -> None:
        if self.protocol not in USER_CLASSES:
            raise LoadTestError(f"protocol must be grpc or http, not {self.protocol!r}")
        require_positive(
            {
                "users": min(self.users, default=0),
                "spawn rate": self.spawn_rate,
                "duration": self.seconds,
                "batch size": self.batch_size,
                "bulk texts": self.bulk_texts,
            }
        )
        if self.bulk_users < 0:
            raise LoadTestError(f"bulk users must not be negative, not {self.bulk_users}")

    @property
    def plot_path(self) -> Path:
        return self.out / PLOT_FILE

    def folder(self, users: int) -> Path:
        return self.out / f"users-{users}"

    def check(self) -> None:
        """What can be wrong before any server is involved: dependencies and the corpus."""
        missing = [name for name in DEPENDENCIES if importlib.util.find_spec(name) is None]
        if missing:
            raise LoadTestError(
                f"the load test needs {', '.join(missing)}: pip install 'emotriton[loadtest]'"
            )
        read_corpus(self.corpus)

    def run(
        self, url: str, progress: Callable[[LoadSummary], None] | None = None
    ) -> list[LoadSummary]:
        """Check, run every step (calling `progress` after each), plot; the steps' summaries."""
        from .plot import plot_steps  # matplotlib: checked by check()

        self.check()
        check_served(url, self.protocol, self.model)
        steps = []
        for users in self.users:
            steps.append(self._step(url, users))
            if progress is not None:
                progress(steps[-1])
        plot_steps(steps, self.plot_path, f"{self.model}, {self.protocol}")
        return steps

    def _step(self, url: str, users: int) -> LoadSummary:
        folder = self.folder(users)
        folder.mkdir(parents=True, exist_ok=True)
        host = url if self.protocol == "grpc" else f"http://{url}"
        bulk = [BULK_USER_CLASS] if self.bulk_users else []
        command = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), USER_CLASSES[self.protocol],
            *bulk, "--headless", "--users", str(users + self.bulk_users),
            "--spawn-rate", str(self.spawn_rate),
            "--run-time", f"{self.seconds}s", "--stop-timeout", str(STOP_TIMEOUT_S),
            "--host", host, "--only-summary", "--exit-code-on-error", "0",
            "--html", str(folder / HTML_REPORT), "--report-dir", str(folder),
            "--model", self.model, "--batch-size", str(self.batch_size),
            "--corpus", str(self.corpus), "--bulk-users", str(self.bulk_users),
            "--bulk-texts", str(self.bulk_texts),
        ]  # fmt: skip
        log = folder / LOG_FILE
        limit = self.seconds + STOP_TIMEOUT_S + START_AND_REPORT_S
        code = run_child(command, log, limit)
        try:
            return LoadSummary.read(folder)
        except FileNotFoundError:
            raise LoadTestError(
                f"locust exited with code {code} and no summary: {last_error(log)} (log: {log})"
            ) from None


def check_served(url: str, protocol: Literal["grpc", "http"], model: str) -> None:
    """Fail at once, in the SDK's words, if nothing answers at `url`, or it does not serve
    `model`, or the model cannot classify: Locust would only count the same failure over and
    over. The request also warms the model up, so the first run does not measure that."""
    retry = RetryPolicy(attempts=1)
    with Client(url, protocol=protocol, timeout=CHECK_TIMEOUT_S, retry=retry) as client:
        client.classify(WARM_UP_TEXT, model=model)


def run_child(command: list[str], log: Path, limit: float) -> int:
    """Run `command` with its output in `log`; its exit code. Whatever happens, Ctrl-C
    included, it is gone when this returns, and it dies if this process does."""
    with log.open("wb") as output:
        process = None
        try:
            with interrupts_deferred():
                process = spawn(
                    command,
                    death_signal=signal.SIGKILL,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            return process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            raise LoadTestError(
                f"locust still running {limit:.0f} s after it started: {last_error(log)} "
                f"(log: {log})"
            ) from None
        finally:
            if process is not None:
                _end(process)


def last_error(log: Path) -> str:
    """The last line of `log` that names an exception, else its last line."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    named = [line for line in lines if re.match(r"\s*[\w.]*(Error|Exception)\b", line)]
    return (named or lines or ["no output"])[-1].strip()


def _end(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (Locust stops its users and writes its reports), then SIGKILL the session."""
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT_S)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
