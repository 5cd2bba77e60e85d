"""infinity-emb, a peer embedding server, on the same sentence-transformers encoder.

Its optimum engine serves a top-level `model.onnx` (the bare transformer, last_hidden_state) and
pools it itself, CLS unless told otherwise: bench exports the encoder with the optimum-cli of
infinity's own venv and asks for mean pooling, as the sentence-transformers model declares.
It tokenises up to the model's max_position_embeddings (512 for MiniLM) where
sentence-transformers stops at max_seq_length (256): texts longer than that embed differently.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import PeerUnavailableError

TOOL = "infinity_emb"
SERVED_NAME = "emotriton-bench"
_HOST = "127.0.0.1"
_START_TIMEOUT_S = 300.0
_EXPORT_TIMEOUT_S = 600


def parse_embeddings(body: bytes) -> np.ndarray:
    """[texts, dim] from its OpenAI-style /embeddings answer, in the order of the input."""
    data = json.loads(body)["data"]
    ordered = sorted(data, key=lambda item: item["index"])
    return np.asarray([item["embedding"] for item in ordered], dtype=np.float32)


def export_model(binary: Path, source: Path, folder: Path) -> Path:
    """`folder` as infinity's optimum engine reads it: model.onnx, config and tokenizer."""
    optimum_cli = binary.parent / "optimum-cli"
    command = [str(optimum_cli), "export", "onnx", "--model", str(source),
               "--task", "feature-extraction", str(folder)]  # fmt: skip
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=_EXPORT_TIMEOUT_S,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PeerUnavailableError(f"{optimum_cli} cannot export {source}: {error}") from None
    if done.returncode != 0 or not (folder / "model.onnx").is_file():
        tail = " / ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        raise PeerUnavailableError(f"{optimum_cli} failed on {source}: {tail}")
    return folder


@contextmanager
def serving(binary: Path, model: Path, port: int, log: Path) -> Iterator[str]:
    """infinity_emb v2 on `model` (a folder from export_model), on a loopback port; yields its
    host:port once it answers /health.

    It runs inside the model folder and is given `.` as the model: infinity 0.0.78 names the
    ONNX file by the path it globbed, which optimum 2 accepts only relative to the model. Its
    cache of optimised graphs sits beside the folder (HF_HUB_CACHE), not shared between runs.
    """
    command = [
        str(binary), "v2", "--model-id", ".", "--served-model-name", SERVED_NAME,
        "--engine", "optimum", "--pooling-method", "mean", "--device", "cpu",
        "--onnx-do-not-prefer-quantized", "--host", _HOST, "--port", str(port),
    ]  # fmt: skip
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(model.parent / "hub-cache"),
        "DO_NOT_TRACK": "1",
        "INFINITY_ANONYMOUS_USAGE_STATS": "0",
    }
    address = f"{_HOST}:{port}"
    with log.open("wb") as output:
        try:
            process = subprocess.Popen(
                command, cwd=model, env=env, stdout=output, stderr=subprocess.STDOUT
            )
        except OSError as error:
            raise PeerUnavailableError(f"{TOOL} cannot start: {error}") from None
        try:
            _wait_healthy(process, address, log)
            yield address
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_healthy(process: subprocess.Popen, address: str, log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = " / ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
            raise PeerUnavailableError(f"{TOOL} exited ({process.returncode}): {tail}")
        connection = http.client.HTTPConnection(address, timeout=5)
        try:
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(1.0)
    raise PeerUnavailableError(f"{TOOL} did not answer /health within {_START_TIMEOUT_S:.0f} s")


def min_cosine(embeddings: np.ndarray, reference: np.ndarray) -> float:
    """The lowest cosine similarity between matching rows."""
    dots = (embeddings * reference).sum(axis=1)
    norms = np.linalg.norm(embeddings, axis=1) * np.linalg.norm(reference, axis=1)
    return float((dots / norms).min())


class EmbeddingClient:
    """One kept-alive HTTP connection to infinity's /embeddings."""

    def __init__(self, address: str) -> None:
        self.connection = http.client.HTTPConnection(address, timeout=60)

    def embed(self, texts: list[str]) -> np.ndarray:
        body = json.dumps({"model": SERVED_NAME, "input": texts})
        self.connection.request("POST", "/embeddings", body, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        answer = response.read()
        if response.status != 200:
            raise PeerUnavailableError(f"{TOOL} answered {response.status}: {answer[:300]!r}")
        return parse_embeddings(answer)

    def close(self) -> None:
        self.connection.close()
