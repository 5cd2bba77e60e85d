"""The JSON API as a process of its own, beside a Triton: its requests do not share the GIL of
the process that supervises Triton (`emotriton serve`) or that drives load (`emotriton bench`)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from emoclient import EmotritonError
from emoserve.config import client_host
from emoserve.tracing import Tracing

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


class ApiStartError(EmotritonError):
    """The JSON API exited or did not answer while it started."""


class ApiProcess:
    """`emotriton api` in front of the Triton at `grpc_url`, serving `models`, its spans sent as
    `tracing` says; started, it answers HTTP (503 on /health until Triton is ready)."""

    def __init__(
        self,
        grpc_url: str,
        host: str,
        port: int,
        models: Sequence[str],
        tracing: Tracing | None = None,
    ) -> None:
        self.command = [sys.executable, "-m", "emotriton", "api", "--url", grpc_url]
        self.command += ["--host", host, "--port", str(port)]
        self.command += [f"--model={name}" for name in models]
        if tracing is not None:
            self.command += [f"--trace-url={tracing.url}", f"--trace-rate={tracing.rate}"]
        self.url = f"http://{client_host(host)}:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise ApiStartError(f"the JSON API exited ({code}): is {self.url}'s port free?")
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=5).close()
                return
            except urllib.error.HTTPError:
                return  # it answers
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    message = f"the JSON API did not answer in {START_TIMEOUT_S:.0f} s"
                    raise ApiStartError(message) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> ApiProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
