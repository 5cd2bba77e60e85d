"""Triton's own load tool, perf_analyzer, against the served ensemble, on bench's texts.

The binary ships in the tritonclient wheel of the server's version (2.51.0; `make bench-peers`
installs it into .venv-peers); it loads libcudart (pip's nvidia-cuda-runtime-cu12, found beside
it) even against a CPU server, and Debian's libb64. It reads the server's model statistics,
an admin API: the admin key goes in a header, on perf_analyzer's command line (it has no other
way to take one), where `ps` on this machine shows it while it runs.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from emoclient.protocol import TEXT_INPUT

from .errors import PeerUnavailableError

TOOL = "perf_analyzer"
_TIMEOUT_S = 600
WINDOW_ROUNDS = 4  # fewer, and batch loads on a busy machine rarely give three agreeing windows

# Its stdout's client block: the figures of the stable measurement windows it settled on.
_CLIENT = re.compile(
    r"Client:\s*\n\s*Request count: (?P<requests>\d+)\s*\n"
    r"\s*Throughput: (?P<throughput>[0-9.]+) infer/sec\n"
    r"(?:.*\n)*?\s*p50 latency: (?P<p50>\d+) usec\n"
    r"(?:.*\n)*?\s*p95 latency: (?P<p95>\d+) usec"
)


@dataclass(frozen=True)
class Measurement:
    """perf_analyzer's client-side figures for one load."""

    requests: int
    texts_per_s: float  # its "infer/sec": texts, since each batch element is one text
    p50_ms: float
    p95_ms: float


def parse_output(stdout: str) -> Measurement:
    """The client block of perf_analyzer's report."""
    match = _CLIENT.search(stdout)
    if match is None:
        raise PeerUnavailableError(f"{TOOL} printed no client measurement:\n{stdout[-2000:]}")
    return Measurement(
        int(match["requests"]),
        float(match["throughput"]),
        int(match["p50"]) / 1e3,
        int(match["p95"]) / 1e3,
    )


def input_data(texts: list[str]) -> dict:
    """--input-data: one step per text, each a batch element of shape [1]."""
    return {"data": [{TEXT_INPUT: [text]} for text in texts]}


def environment(binary: Path) -> dict[str, str]:
    """The environment with the CUDA runtime of the binary's own venv on the library path."""
    env = dict(os.environ)
    cudart = sorted(binary.parent.parent.glob("lib/python3*/site-packages/nvidia/cuda_runtime/lib"))
    if cudart:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            [str(cudart[-1]), *filter(None, [env.get("LD_LIBRARY_PATH")])]
        )
    return env


class PerfAnalyzer:
    """Runs of one binary against one served model over gRPC, on a fixed list of texts."""

    def __init__(self, binary: Path, url: str, model: str, texts: list[str]) -> None:
        self.binary = binary
        self.url = url
        self.model = model
        self.texts = texts
        self.env = environment(binary)

    def measure(self, concurrency: int, batch_size: int) -> Measurement:
        """Requests of `batch_size` texts from `concurrency` synchronous clients. Each
        measurement window holds one pass over the texts, and at least WINDOW_ROUNDS requests
        per client; perf_analyzer repeats windows until three agree."""
        requests = max(math.ceil(len(self.texts) / batch_size), WINDOW_ROUNDS * concurrency)
        with tempfile.TemporaryDirectory(prefix="emotriton-perf-") as folder:
            data = Path(folder) / "input.json"
            data.write_text(json.dumps(input_data(self.texts)))
            command = [
                str(self.binary), "-m", self.model, "-u", self.url, "-i", "grpc",
                "--input-data", str(data), "-b", str(batch_size),
                "--concurrency-range", str(concurrency),
                "--measurement-mode", "count_windows",
                "--measurement-request-count", str(requests),
            ]  # fmt: skip
            try:
                done = subprocess.run(
                    command, capture_output=True, text=True, env=self.env, timeout=_TIMEOUT_S
                )
            except OSError as error:
                raise PeerUnavailableError(f"{TOOL} cannot start: {error}") from None
            except subprocess.TimeoutExpired:
                raise PeerUnavailableError(f"{TOOL} ran past {_TIMEOUT_S} s") from None
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip().splitlines()
            raise PeerUnavailableError(
                f"{TOOL} failed (exit {done.returncode}): " + " / ".join(output[-3:])
            )
        return parse_output(done.stdout)
