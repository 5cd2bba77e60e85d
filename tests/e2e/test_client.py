"""emoclient against the real server: both clients, both protocols, overrides, errors, retries."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from emoclient import (
    AsyncClient,
    Client,
    Health,
    InferenceTimeoutError,
    InvalidInputError,
    ModelNotFoundError,
    PermissionDeniedError,
    RetryPolicy,
)
from emoclient._base_client import translate
from emoserve import LocalServer
from emoserve.config import free_port

from ..support import ROOT
from .models import SERVED

TEXTS = ["Thank you so much!", "", "I am furious about this", "what a lovely day " * 30]
PROTOCOLS = ["grpc", "http"]


def url_for(server: LocalServer, protocol: str) -> str:
    return server.endpoints.grpc_url if protocol == "grpc" else server.endpoints.http_url


def classify_async(url: str, protocol: str, texts, **options):
    async def run():
        async with AsyncClient(url, protocol=protocol) as client:
            return await client.classify(texts, **options)

    return asyncio.run(run())


@pytest.mark.parametrize("model", ["go_emotions", "emotion", "minilm"])
def test_both_clients_and_both_protocols_agree(server: LocalServer, model: str) -> None:
    results = {}
    for protocol in PROTOCOLS:
        url = url_for(server, protocol)
        with Client(url, protocol=protocol) as client:
            results[("sync", protocol)] = client.classify(TEXTS, model=model)
        results[("async", protocol)] = classify_async(url, protocol, TEXTS, model=model)
    reference = results[("sync", "grpc")]
    for combination, got in results.items():
        assert [r.index for r in got] == list(range(len(TEXTS))), combination
        assert [r.labels for r in got] == [r.labels for r in reference], combination
        for a, b in zip(got, reference):
            assert a.scores == pytest.approx(b.scores, abs=1e-6), combination


def test_ten_thousand_texts_in_one_async_call(server: LocalServer) -> None:
    texts = [f"message {i}: " + "so happy " * (i % 23) for i in range(10_000)]
    url = server.endpoints.grpc_url
    results = classify_async(url, "grpc", texts, model="emotion")
    assert len(results) == 10_000
    assert [r.index for r in results] == list(range(10_000))
    with Client(url) as client:
        for index in range(0, 10_000, 997):
            (alone,) = client.classify(texts[index], model="emotion")
            assert results[index].labels == alone.labels
            assert results[index].scores == pytest.approx(alone.scores, abs=1e-5)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_threshold_and_top_k_override_the_served_decision(
    server: LocalServer, protocol: str
) -> None:
    with Client(url_for(server, protocol), protocol=protocol) as client:
        (served,) = client.classify("Thank you so much!", model="go_emotions")
        (everything,) = client.classify("Thank you so much!", model="go_emotions", threshold=0.0)
        assert len(everything.labels) == 28
        assert list(everything.labels) == [label for label, _ in everything.top(28)]
        (three,) = client.classify(
            "Thank you so much!", model="go_emotions", threshold=0.0, top_k=3
        )
        assert three.labels == everything.labels[:3]
        best = served.top(1)[0][0]
        (without_best,) = client.classify(
            "Thank you so much!", model="go_emotions", threshold={best: 1.0}
        )
        assert set(without_best.labels) == set(served.labels) - {best}
        (single,) = client.classify("hello", model="emotion", threshold=0.0)
        assert len(single.labels) == 6  # an argmax model decides by thresholds when given one
        with pytest.raises(InvalidInputError, match="argmax"):
            client.classify("hello", model="emotion", threshold={"joy": 0.2})
        with pytest.raises(InvalidInputError, match="unknown labels"):
            client.classify("hello", model="go_emotions", threshold={"bliss": 0.2})


def test_health(server: LocalServer) -> None:
    with Client(server.endpoints.grpc_url, admin_key=server.admin_key) as operator:
        health = operator.health()
    assert health.live and health.ready
    assert all(health.models[name] for name in SERVED)
    assert health.models["go_emotions_tokenizer"]
    # Without the key the model list is the operator's: the server's own health still shows.
    with Client(server.endpoints.grpc_url) as client:
        assert client.health() == Health(live=True, ready=True, models={})
        with pytest.raises(PermissionDeniedError, match="admin_key"):
            client.models()
        with pytest.raises(ModelNotFoundError) as unknown:
            client.classify("hi", model="nope")
        assert unknown.value.available is None
    with Client(f"127.0.0.1:{free_port()}", protocol="http") as nobody:
        assert not nobody.health().live


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unknown_model_names_the_served_ones_in_both_clients(
    server: LocalServer, protocol: str
) -> None:
    async def run() -> None:
        url = url_for(server, protocol)
        async with AsyncClient(url, protocol=protocol, admin_key=server.admin_key) as client:
            await client.classify("hello", model="nope")

    with pytest.raises(ModelNotFoundError) as caught:
        asyncio.run(run())
    assert set(caught.value.available) == set(SERVED)


def test_bad_input_names_the_index(server: LocalServer) -> None:
    with Client(server.endpoints.grpc_url, max_text_bytes=1000) as client:
        with pytest.raises(InvalidInputError) as too_long:
            client.classify(["ok", "x" * 1001], model="emotion")
        assert too_long.value.index == 1 and "1000-byte limit" in str(too_long.value)
        with pytest.raises(InvalidInputError, match="top_k"):
            client.classify("ok", model="emotion", top_k=0)

    async def run() -> None:
        async with AsyncClient(server.endpoints.grpc_url) as client:
            await client.classify(["fine", None], model="emotion")  # type: ignore[list-item]

    with pytest.raises(InvalidInputError) as not_text:
        asyncio.run(run())
    assert not_text.value.index == 1


def test_malformed_request_json_is_the_requests_fault(server: LocalServer) -> None:
    """Triton's HTTP front end answers unparsable JSON with 500 (TritonJson's parse errors are
    INTERNAL); the front door answers 400, saying what is wrong, and the SDK reports it as the
    request's fault, not the server's."""
    request = urllib.request.Request(
        f"http://{server.endpoints.http_url}/v2/models/emotion/infer",
        data=b"{",
        headers={"Content-Type": "application/json"},  # not urllib's default, a form
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=10)
    message = json.loads(answer.value.read())["error"]
    error = translate(str(answer.value.code), message, server.endpoints.http_url, 10)
    assert answer.value.code == 400 and isinstance(error, InvalidInputError), message
    assert message.startswith("malformed JSON")


SLOW_SUFFIX = """

import time as _time

_execute = TritonPythonModel.execute


def _slow_execute(self, requests):
    _time.sleep(3.0)
    return _execute(self, requests)


TritonPythonModel.execute = _slow_execute
"""


@pytest.fixture(scope="module")
def slow_server(
    repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalServer]:
    """The toy go_emotions ensemble as `slow`, whose postprocess sleeps 3 s per batch."""
    slow = tmp_path_factory.mktemp("slow-repository")
    for part in ("", "_tokenizer", "_encoder", "_postprocess"):
        target = slow / f"slow{part}"
        shutil.copytree(repository / f"go_emotions{part}", target)
        config = target / "config.pbtxt"
        config.write_text(config.read_text().replace('"go_emotions', '"slow'))
    model = slow / "slow_postprocess" / "1" / "model.py"
    model.write_text(model.read_text() + SLOW_SUFFIX)
    with LocalServer(slow) as running:
        yield running


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_timeout_against_a_slow_model(slow_server: LocalServer, protocol: str) -> None:
    url = url_for(slow_server, protocol)
    with Client(url, protocol=protocol, timeout=5) as patient:
        patient.model("slow")  # configs answer fast; only inference is slow
    with Client(url, protocol=protocol, timeout=1) as client, pytest.raises(InferenceTimeoutError):
        client.classify("hello", model="slow")

    async def run() -> None:
        async with AsyncClient(url, protocol=protocol, timeout=1) as client:
            await client.classify("hello", model="slow")

    with pytest.raises(InferenceTimeoutError):
        asyncio.run(run())


def emotion_only(repository: Path, target: Path) -> Path:
    """A repository of the toy `emotion` ensemble alone, which starts fastest."""
    for part in ("", "_tokenizer", "_encoder", "_postprocess"):
        shutil.copytree(repository / f"emotion{part}", target / f"emotion{part}")
    return target


def test_a_call_made_while_the_server_starts_is_retried_until_it_answers(
    repository: Path, tmp_path: Path
) -> None:
    server = LocalServer(emotion_only(repository, tmp_path / "repository"))
    failures: list[BaseException] = []

    def start() -> None:
        time.sleep(1.0)
        try:
            server.start()
        except BaseException as error:
            failures.append(error)

    starter = threading.Thread(target=start)
    starter.start()
    try:
        patient = RetryPolicy(attempts=60, backoff=0.25, max_backoff=0.5)
        with Client(server.endpoints.grpc_url, retry=patient) as client:
            started = time.monotonic()
            (result,) = client.classify("hello", model="emotion")
        assert result.labels and time.monotonic() - started > 0.5  # it did wait for the server
    finally:
        starter.join()
        server.stop()
    assert not failures


def test_calls_across_a_server_restart_are_retried_until_answered(
    repository: Path, tmp_path: Path
) -> None:
    """Both protocols keep calling while the server stops and starts again on the same ports.
    A request cut by the restart (over HTTP, a connection closed before the answer) is retried
    like a refused one, so every call is answered."""
    patient = RetryPolicy(attempts=240, backoff=0.25, max_backoff=0.5)
    answered = dict.fromkeys(PROTOCOLS, 0)
    failures: list[BaseException] = []
    done = threading.Event()
    with LocalServer(emotion_only(repository, tmp_path / "repository")) as server:

        def keep_calling(protocol: str) -> None:
            try:
                with Client(url_for(server, protocol), protocol=protocol, retry=patient) as client:
                    while not done.is_set():
                        client.classify("hello", model="emotion")
                        answered[protocol] += 1
                        time.sleep(0.02)
            except BaseException as error:
                failures.append(error)

        callers = [threading.Thread(target=keep_calling, args=(p,)) for p in PROTOCOLS]
        for caller in callers:
            caller.start()
        time.sleep(1.0)
        server.stop()
        before_restart = dict(answered)
        server.start()
        time.sleep(1.0)
        done.set()
        for caller in callers:
            caller.join()
    assert not failures, failures
    assert all(answered[p] > before_restart[p] > 0 for p in PROTOCOLS), answered


def test_the_client_installs_and_imports_without_the_heavy_dependencies(tmp_path: Path) -> None:
    """A clean virtual environment, `pip install` of the project without extras."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "-c",
            str(ROOT / "constraints.txt"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    check = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util, sys, emoclient\n"
            "from emoclient import AsyncClient, Client\n"
            "heavy = [m for m in ('torch', 'transformers', 'onnxruntime', 'tokenizers', 'pytriton')"
            " if importlib.util.find_spec(m)]\n"
            "print(heavy)\n"
            "sys.exit(1 if heavy else 0)",
        ],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_results_are_plain_data(server: LocalServer) -> None:
    with Client(server.endpoints.grpc_url) as client:
        (result,) = client.classify("Thank you so much!", model="emotion")
    assert result.to_dict() == {
        "index": 0,
        "labels": list(result.labels),
        "scores": dict(result.scores),
    }
    assert repr(result).startswith("Classification(index=0, labels=[") and len(repr(result)) < 200
    assert np.isclose(sum(result.scores.values()), 1.0, atol=1e-5)
