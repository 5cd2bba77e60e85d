"""End to end: toy models exported, served by the real Triton binary, called through emoclient."""

from __future__ import annotations

import json
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from emoclient import Client, InvalidInputError, ModelNotFoundError
from emoexport.inprocess import ExportedEnsemble
from emoload.served import composing_models, counted_metrics, model_stats, settled_metrics

from ..support import EMOTRITON
from .models import MAX_LENGTH, SERVED

TEXTS = [
    "Thank you so much!",
    "I am not having a great day",
    "",
    "   \t ",
    "Ugh. Why does this keep happening to me?? 😤",
    "C'est la vie — ça arrive, même aux meilleurs.",
    "i didnt feel humiliated",
    "What a relief, the tests came back negative. " * 40,  # far beyond max_length
    "I love this song so much. " * 12,  # just beyond max_length
]
# A score this close to its threshold may fall on either side within float32 noise.
TIE = 1e-5


def expected_labels(
    probabilities: np.ndarray, labels: tuple[str, ...], thresholds: np.ndarray | None
) -> list[list[str]]:
    """The source's decision rule on in-process probabilities: each label's score against its
    threshold (best first), or the argmax when the model is single-label."""
    if thresholds is None:
        return [[labels[int(row.argmax())]] for row in probabilities]
    return [
        [labels[i] for i in np.argsort(-row, kind="stable") if row[i] >= thresholds[i]]
        for row in probabilities
    ]


@pytest.mark.parametrize("model", SERVED)
def test_served_probabilities_equal_in_process(client: Client, served_models, model: str) -> None:
    """Classifiers against PyTorch; encoder + head models against sentence-transformers' encode
    and the head in onnxruntime. Decisions follow the source's rule on every text."""
    results = client.classify(TEXTS, model=model)
    source = served_models[model]
    reference = source.probabilities(TEXTS)
    thresholds = source.thresholds()
    info = client.model(model)

    assert [r.index for r in results] == list(range(len(TEXTS)))
    served = np.array([[r.scores[label] for label in info.labels] for r in results])
    assert np.abs(served - reference).max() <= 1e-4
    expected = expected_labels(reference, info.labels, thresholds)
    for result, probabilities, labels in zip(results, reference, expected):
        near_threshold = thresholds is not None and np.abs(probabilities - thresholds).min() < TIE
        if not near_threshold:
            assert list(result.labels) == labels


def test_long_texts_are_truncated_not_rejected(client: Client) -> None:
    beyond, far_beyond = client.classify(
        ["word " * MAX_LENGTH, "word " * (MAX_LENGTH * 50)], model="go_emotions"
    )
    # Both keep only their first max_length tokens, which are the same tokens.
    assert beyond.scores == pytest.approx(far_beyond.scores, abs=1e-6)


def test_grpc_and_http_give_equal_results(server) -> None:
    with (
        Client(server.endpoints.grpc_url) as grpc,
        Client(server.endpoints.http_url, protocol="http") as http,
    ):
        for model in SERVED:
            a, b = grpc.classify(TEXTS, model=model), http.classify(TEXTS, model=model)
            assert [r.labels for r in a] == [r.labels for r in b]
            for x, y in zip(a, b):
                assert x.scores == pytest.approx(y.scores, abs=1e-6)


def test_results_keep_their_order_across_split_requests(server) -> None:
    texts = [f"text number {i} " + "happy " * (i % 17) for i in range(150)]  # > max_batch_size (64)
    with Client(server.endpoints.grpc_url) as client:
        together = client.classify(texts, model="emotion")
        alone = [client.classify(text, model="emotion")[0] for text in texts[::37]]
    assert [r.index for r in together] == list(range(150))
    for single, index in zip(alone, range(0, 150, 37)):
        assert together[index].labels == single.labels
        assert together[index].scores == pytest.approx(single.scores, abs=1e-5)


def test_concurrent_requests_of_different_lengths_merge_into_fewer_encoder_runs(
    server, served_models, repository
) -> None:
    """Many single-text clients at once, every text of another length: the encoder's ragged
    batching runs them in fewer executions than requests, and none of them mixes."""
    texts = [("so " * n) + "happy" for n in range(40)]
    reference = served_models["go_emotions"].probabilities(texts)
    ensemble = ExportedEnsemble(repository, "go_emotions")
    in_process = np.concatenate([ensemble.classify([text])[0] for text in texts])
    start = threading.Barrier(16)

    def classify(text: str) -> list[float]:
        with Client(server.endpoints.grpc_url) as client:
            with suppress(threading.BrokenBarrierError):
                start.wait(timeout=5)  # the first 16 requests leave together
            (result,) = client.classify(text, model="go_emotions")
            return list(result.scores.values())

    before = settled_metrics(server.endpoints.metrics_url)
    with ThreadPoolExecutor(max_workers=16) as pool:
        served = np.array(list(pool.map(classify, texts)))
    models = composing_models(repository, "go_emotions")
    answered = dict.fromkeys(["go_emotions", *models], len(texts))
    inferred = dict.fromkeys(models, len(texts))
    after = counted_metrics(server.endpoints.metrics_url, before, answered, inferred)
    encoder = model_stats(before, after, models)[models.index("go_emotions_encoder")]
    assert encoder.texts == len(texts)
    assert encoder.executions < len(texts)
    assert np.abs(served - reference).max() <= 1e-4
    np.testing.assert_allclose(served, in_process, atol=1e-5)


def test_result_shape(client: Client) -> None:
    (result,) = client.classify("Thank you so much!", model="emotion")
    assert set(result.scores) == {"sadness", "joy", "love", "anger", "fear", "surprise"}
    assert len(result.labels) == 1  # single-label: exactly the argmax
    assert result.top(1)[0][0] == result.labels[0]
    assert [score for _, score in result.top(6)] == sorted(result.scores.values(), reverse=True)
    assert json.loads(result.to_json())["labels"] == list(result.labels)


def test_models_are_published_by_the_server(client: Client, served_models) -> None:
    models = {info.name: info for info in client.models()}
    assert set(models) == set(SERVED)
    go = models["go_emotions"]
    assert len(go.labels) == 28 and go.labels[-1] == "neutral"
    assert go.thresholds == dict.fromkeys(go.labels, 0.5)
    assert go.max_length == MAX_LENGTH
    assert models["emotion"].thresholds is None
    minilm = models["minilm"]  # the head's thresholds.json: its labels, order and thresholds
    assert minilm.activation == "none" and minilm.max_length == 256
    assert minilm.thresholds == dict(zip(minilm.labels, served_models["minilm"].thresholds()))


def test_unknown_model_names_the_served_ones(client: Client) -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        client.classify("hello", model="no_such_model")
    assert set(caught.value.available) == set(SERVED)
    assert "go_emotions" in str(caught.value)


def test_client_rejects_what_cannot_be_sent(client: Client) -> None:
    with pytest.raises(InvalidInputError) as not_text:
        client.classify(["fine", 42], model="emotion")  # type: ignore[list-item]
    assert not_text.value.index == 1
    with pytest.raises(InvalidInputError) as surrogate:
        client.classify(["fine", "also fine", "\ud800"], model="emotion")
    assert surrogate.value.index == 2


def send_raw(raw: grpcclient.InferenceServerClient, model: str, payload: bytes) -> str:
    """One text's raw bytes straight to Triton, as a client other than emoclient may send
    them; "ok", or the server's error."""
    text = grpcclient.InferInput("TEXT", [1, 1], "BYTES")
    text.set_data_from_numpy(np.array([[payload]], dtype=object))
    try:
        raw.infer(model, [text])
        return "ok"
    except Exception as error:  # tritonclient's InferenceServerException
        return str(error)


def test_invalid_utf8_fails_alone_and_the_server_stays_healthy(server) -> None:
    """Raw bytes from another client: that request gets INVALID_ARGUMENT, the others succeed."""
    raw = grpcclient.InferenceServerClient(server.endpoints.grpc_url)

    def send(payload: bytes) -> str:
        return send_raw(raw, "go_emotions", payload)

    payloads = [
        b"\xff\xfe not utf-8" if i % 4 == 0 else f"fine text {i}".encode() for i in range(32)
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(send, payloads))
    for payload, outcome in zip(payloads, outcomes):
        if payload.startswith(b"\xff"):
            assert "INVALID_ARGUMENT" in outcome and "UTF-8" in outcome
        else:
            assert outcome == "ok"
    assert raw.is_server_live() and raw.is_server_ready()


def emotriton(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EMOTRITON, *args], capture_output=True, text=True)


def test_cli_classify_prints_json_lines(server) -> None:
    url = server.endpoints.grpc_url
    run = emotriton("classify", "--model", "go_emotions", "--url", url, "Thank you so much!", "")
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["text"] for line in lines] == ["Thank you so much!", ""]
    assert all(len(line["scores"]) == 28 for line in lines)


def test_cli_reports_errors_without_a_traceback(server) -> None:
    run = emotriton("classify", "--model", "nope", "--url", server.endpoints.grpc_url, "x")
    assert run.returncode == 2
    assert run.stderr.startswith("emotriton: error: model 'nope' is not served")
    assert "Traceback" not in run.stderr


def test_cli_reads_stdin_and_prints_a_table(server) -> None:
    url = server.endpoints.grpc_url
    run = subprocess.run(
        [*EMOTRITON, "classify", "--model", "emotion", "--url", url, "--format", "table"],
        input="first text\nsecond text\n",
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    rows = run.stdout.splitlines()
    assert [row.split()[:3] for row in rows] == [["0", "first", "text"], ["1", "second", "text"]]


def test_cli_file_threshold_and_top_k(server, tmp_path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("Thank you so much!\nI am furious\n")
    url = server.endpoints.grpc_url
    common = ["classify", "--model", "go_emotions", "--url", url, "--file", str(texts)]
    everything = [
        json.loads(line) for line in emotriton(*common, "--threshold", "0").stdout.splitlines()
    ]
    assert [len(line["labels"]) for line in everything] == [28, 28]
    top = [
        json.loads(line)
        for line in emotriton(*common, "--threshold", "0", "--top-k", "2").stdout.splitlines()
    ]
    assert [line["labels"] for line in top] == [line["labels"][:2] for line in everything]
    run = emotriton(*common, "--threshold", "joy=0", "--threshold", "anger=1")
    for line in map(json.loads, run.stdout.splitlines()):
        assert "joy" in line["labels"] and "anger" not in line["labels"]


def test_a_huge_text_from_another_client_is_refused_alone(server) -> None:
    """2 MiB of text sent straight to Triton: refused before tokenising, others unaffected."""
    raw = grpcclient.InferenceServerClient(server.endpoints.grpc_url)

    def send(payload: bytes) -> str:
        return send_raw(raw, "emotion", payload)

    payloads = [b"word " * (2 << 18) if i == 0 else b"a short text" for i in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        huge, *others = pool.map(send, payloads)
    assert "INVALID_ARGUMENT" in huge and "byte limit" in huge
    assert others == ["ok"] * 7
