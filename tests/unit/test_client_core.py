"""The client core without a server: options, TLS files, payloads, decisions, model info, result
assembly, error translation and the retry loops. Nothing here exports or serves a model."""

from __future__ import annotations

import asyncio
import gc
import json
import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from geventhttpclient.response import HTTPConnectionClosed, HTTPParseError
from tritonclient.grpc import InferResult, service_pb2
from tritonclient.utils import InferenceServerException

from emoclient import (
    DEFAULT_URLS,
    AsyncClient,
    Client,
    ConfigurationError,
    EmotritonError,
    Health,
    InferenceTimeoutError,
    InvalidInputError,
    ModelInfo,
    ModelNotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RetryableError,
    RetryPolicy,
    ServerError,
    ServerUnavailableError,
    UnsupportedModelError,
    WrongProtocolError,
)
from emoclient import protocol as wire
from emoclient._base_client import (
    Decision,
    Progress,
    Tls,
    checked_threshold,
    chunks,
    connection_errors,
    connection_options,
    encode_texts,
    health_of,
    ready_names,
    sdk_error,
    translate,
)

URL = "127.0.0.1:1"  # nothing listens there; building a client connects to nothing
LABELS = ("joy", "anger", "fear")


def config(
    name: str = "toy",
    thresholds: tuple[float, ...] | None = (0.5, 0.3, 0.9),
    max_batch_size: int = 4,
) -> dict:
    """A model config in Triton's JSON form, as `emotriton export` publishes it."""
    parameters = {
        wire.PARAM_KIND: wire.CONTRACT_VERSION,
        wire.PARAM_LABELS: json.dumps(LABELS),
        wire.PARAM_ACTIVATION: "sigmoid" if thresholds else "softmax",
        wire.PARAM_DECISION: "thresholds" if thresholds else "argmax",
        wire.PARAM_MAX_LENGTH: "128",
    }
    if thresholds:
        parameters[wire.PARAM_THRESHOLDS] = json.dumps(list(thresholds))
    return {
        "name": name,
        "max_batch_size": max_batch_size,
        "parameters": {key: {"string_value": value} for key, value in parameters.items()},
    }


MULTI_LABEL = ModelInfo.from_config(config())
ARGMAX = ModelInfo.from_config(config("single", thresholds=None))


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(URL) as built:
        yield built


# Model info


def test_model_info_reads_the_published_config() -> None:
    assert MULTI_LABEL.name == "toy" and MULTI_LABEL.labels == LABELS
    assert MULTI_LABEL.thresholds == {"joy": 0.5, "anger": 0.3, "fear": 0.9}
    assert (MULTI_LABEL.activation, MULTI_LABEL.decision) == ("sigmoid", "thresholds")
    assert MULTI_LABEL.max_length == 128 and MULTI_LABEL.max_batch_size == 4
    assert ARGMAX.thresholds is None and ARGMAX.decision == "argmax"


def test_a_model_without_batching_takes_one_text_per_request() -> None:
    assert ModelInfo.from_config(config(max_batch_size=0)).max_batch_size == 1


def test_a_model_not_exported_by_emotriton_is_unsupported() -> None:
    plain = {"name": "toy_tokenizer", "parameters": {"max_length": {"string_value": "64"}}}
    with pytest.raises(UnsupportedModelError, match="toy_tokenizer"):
        ModelInfo.from_config(plain)


# Payloads and requests


def test_texts_become_a_bytes_tensor_of_utf8() -> None:
    payload = encode_texts(["hi", "", "été"])
    assert payload.shape == (3, 1) and payload.dtype == object
    assert payload[:, 0].tolist() == [b"hi", b"", "été".encode()]


@pytest.mark.parametrize(
    ("texts", "index", "message"),
    [
        (["fine", None], 1, "expected str, got NoneType"),
        ([b"bytes"], 0, "expected str, got bytes"),
        (["ok", "ok", "\ud800"], 2, "not encodable as UTF-8"),
    ],
)
def test_a_bad_text_is_named_by_its_index(texts: list, index: int, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as caught:
        encode_texts(texts)
    assert caught.value.index == index and str(caught.value).startswith(f"text {index}: ")


def test_the_byte_limit_counts_utf8_bytes() -> None:
    encode_texts(["é" * 5], max_text_bytes=10)  # 10 bytes: at the limit
    with pytest.raises(InvalidInputError, match="11 bytes, over the 10-byte limit") as caught:
        encode_texts(["short", "é" * 5 + "x"], max_text_bytes=10)
    assert caught.value.index == 1


@pytest.mark.parametrize(
    ("total", "size", "expected"),
    [(10, 4, [(0, 4), (4, 8), (8, 10)]), (4, 4, [(0, 4)]), (1, 64, [(0, 1)]), (0, 4, [])],
)
def test_chunks_cover_every_text_once_in_order(total: int, size: int, expected: list) -> None:
    assert [(part.start, part.stop) for part in chunks(total, size)] == expected


def test_a_call_is_split_at_the_smaller_of_batch_size_and_the_models(client: Client) -> None:
    payload = encode_texts([f"text {i}" for i in range(10)])
    assert len(client._plan(MULTI_LABEL, payload, None, None).requests) == 3  # 4, 4, 2
    with Client(URL, batch_size=3) as small:
        assert len(small._plan(MULTI_LABEL, payload, None, None).requests) == 4
    with Client(URL, batch_size=100) as large:
        assert len(large._plan(MULTI_LABEL, payload, None, None).requests) == 3


def test_a_call_of_one_request_is_interactive_and_of_more_is_bulk(client: Client) -> None:
    def levels(texts: int, **priority: str) -> set[int]:
        call = client._plan(MULTI_LABEL, encode_texts(["t"] * texts), None, None, **priority)
        return {request.keywords["priority"] for request in call.requests}

    assert levels(4) == {wire.PRIORITY_INTERACTIVE}
    assert levels(5) == {wire.PRIORITY_BULK}
    assert levels(1, priority="bulk") == {wire.PRIORITY_BULK}
    assert levels(9, priority="interactive") == {wire.PRIORITY_INTERACTIVE}
    assert client._plan(MULTI_LABEL, encode_texts(["t"]), None, None).progress is None
    assert client._plan(MULTI_LABEL, encode_texts(["t"] * 5), None, None).progress is not None
    bulk_of_two = config()
    bulk_of_two["parameters"][wire.PARAM_BULK_BATCH_SIZE] = {"string_value": "2"}
    info = ModelInfo.from_config(bulk_of_two)
    parts = client._plan(info, encode_texts(["t"] * 5), None, None).parts
    assert [p.stop - p.start for p in parts] == [2, 2, 1]
    assert len(client._plan(info, encode_texts(["t"] * 4), None, None).parts) == 1
    with pytest.raises(InvalidInputError, match="'interactive' or 'bulk', not 'urgent'"):
        client._plan(MULTI_LABEL, encode_texts(["t"]), None, None, priority="urgent")


# Decisions and results


SCORES = np.array([[0.6, 0.35, 0.1], [0.2, 0.1, 0.95]], dtype=np.float32)


def served_results(decision: Decision, predicted: list[list[bool]], info: ModelInfo = MULTI_LABEL):
    return decision.results(info, SCORES, np.array(predicted), offset=10)


def test_the_served_decision_is_kept_and_labels_come_best_first() -> None:
    decision = Decision.for_call(MULTI_LABEL, None, None)
    first, second = served_results(decision, [[True, True, False], [False, False, True]])
    assert (first.index, second.index) == (10, 11)
    assert first.labels == ("joy", "anger") and second.labels == ("fear",)
    assert list(first.scores) == list(LABELS)
    assert first.scores["anger"] == pytest.approx(0.35)


def test_one_threshold_replaces_every_served_one() -> None:
    decision = Decision.for_call(MULTI_LABEL, 0.15, None)
    first, second = served_results(decision, [[False] * 3, [False] * 3])
    assert first.labels == ("joy", "anger") and second.labels == ("fear", "joy")


def test_thresholds_by_label_override_the_served_ones_for_those_labels() -> None:
    decision = Decision.for_call(MULTI_LABEL, {"joy": 0.7}, None)
    assert decision.thresholds.tolist() == pytest.approx([0.7, 0.3, 0.9])
    first, second = served_results(decision, [[True] * 3, [True] * 3])
    assert first.labels == ("anger",) and second.labels == ("fear",)


def test_top_k_keeps_the_best_predicted_labels() -> None:
    decision = Decision.for_call(MULTI_LABEL, 0.0, 2)
    first, _ = served_results(decision, [[False] * 3, [False] * 3])
    assert first.labels == ("joy", "anger")
    with pytest.raises(InvalidInputError, match="top_k must be at least 1, not 0"):
        Decision.for_call(MULTI_LABEL, None, 0)


def test_an_argmax_model_takes_one_number_or_a_threshold_for_every_label() -> None:
    (first, _) = served_results(
        Decision.for_call(ARGMAX, 0.3, None), [[True, False, False]] * 2, ARGMAX
    )
    assert first.labels == ("joy", "anger")
    everything = dict.fromkeys(LABELS, 0.5)
    assert Decision.for_call(ARGMAX, everything, None).thresholds.tolist() == [0.5] * 3
    with pytest.raises(InvalidInputError, match="single decides by argmax"):
        Decision.for_call(ARGMAX, {"joy": 0.2}, None)


def test_unknown_labels_are_named_with_the_models_labels() -> None:
    with pytest.raises(InvalidInputError, match=r"unknown labels \['bliss'\]; toy has"):
        Decision.for_call(MULTI_LABEL, {"bliss": 0.2, "joy": 0.1}, None)


def infer_result(scores: np.ndarray, predicted: np.ndarray) -> InferResult:
    """tritonclient's result of a gRPC ModelInfer answer carrying these outputs."""
    response = service_pb2.ModelInferResponse(model_name="toy")
    for name, array, datatype in (
        (wire.SCORES_OUTPUT, scores, "FP32"),
        (wire.PREDICTED_OUTPUT, predicted, "BOOL"),
    ):
        response.outputs.add(name=name, datatype=datatype, shape=list(array.shape))
        response.raw_output_contents.append(array.tobytes())
    return InferResult(response)


def test_a_call_assembles_the_results_of_its_parts_in_order(client: Client) -> None:
    payload = encode_texts([f"text {i}" for i in range(6)])
    call = client._plan(MULTI_LABEL, payload, None, 1)
    rows = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]]
    responses = [infer_result(rows[part], rows[part] > 0.5) for part in call.parts]
    results = call.results(responses)
    assert [result.index for result in results] == list(range(6))
    assert [result.labels for result in results] == [(LABELS[i % 3],) for i in range(6)]


# Errors


def server_exception(message: str, status: str) -> InferenceServerException:
    return InferenceServerException(msg=message, status=status)


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        ("StatusCode.UNAVAILABLE", "Socket closed", ServerUnavailableError),
        ("", "failed to connect to all addresses", ServerUnavailableError),
        ("503", "Server not ready", ServerUnavailableError),
        ("502", "<html><head><title>502 Bad Gateway</title></head></html>", ServerUnavailableError),
        (
            "StatusCode.NOT_FOUND",
            "Request for unknown model: 'toy' has no available versions",
            ServerUnavailableError,
        ),
        ("StatusCode.UNAVAILABLE", "Exceeds maximum queue size", OverloadedError),
        (
            "StatusCode.UNAVAILABLE",
            "This protocol is restricted, expecting header 'triton-grpc-protocol-x'",
            PermissionDeniedError,
        ),
        ("403", "This API is restricted, expecting header 'x'", PermissionDeniedError),
        ("503", "Request timeout expired", OverloadedError),
        ("StatusCode.DEADLINE_EXCEEDED", "Deadline Exceeded", InferenceTimeoutError),
        ("StatusCode.INVALID_ARGUMENT", "text 0 is not valid UTF-8", InvalidInputError),
        ("400", "unexpected shape for input 'TEXT'", InvalidInputError),
        ("500", "failed to parse the request JSON buffer: Invalid value. at 0", InvalidInputError),
        ("500", "onnxruntime session failed", ServerError),
        ("StatusCode.INTERNAL", "python model crashed", ServerError),
    ],
)
def test_triton_statuses_become_the_sdks_errors(status: str, message: str, expected: type) -> None:
    error = translate(status, message, "triton:8001", 5.0)
    assert type(error) is expected
    if expected in (ServerUnavailableError, OverloadedError):
        assert "triton:8001" in str(error) and message in str(error)
        assert isinstance(error, RetryableError)
    if expected is InferenceTimeoutError:
        assert str(error) == "no answer from triton:8001 within 5.0s"
    if expected is ServerError:
        assert error.message == message and error.status == status


@pytest.mark.parametrize("status", ["StatusCode.NOT_FOUND", "404", "400"])
def test_an_unknown_model_is_left_to_the_client_to_name(client: Client, status: str) -> None:
    """A ModelNotFoundError without the served models' names: the client adds them, which
    takes a request of its own."""
    unknown = server_exception("Request for unknown model: 'nope' is not found", status)
    for error in (
        translate(status, unknown.message(), URL, 1.0, "nope"),
        client._sdk_error(unknown, "nope"),
    ):
        assert isinstance(error, ModelNotFoundError), error
        assert (error.model, error.available) == ("nope", None)
    # Not a model's request: the server's error, as it said it.
    for error in (translate(status, unknown.message(), URL, 1.0), client._sdk_error(unknown, None)):
        assert isinstance(error, ServerError) and "unknown model: 'nope'" in str(error), error


@pytest.mark.parametrize(
    ("protocol", "asynchronous"), [("grpc", False), ("http", False), ("http", True)]
)
def test_connections_refused_or_closed_are_unavailable(protocol: str, asynchronous: bool) -> None:
    lost = {
        ("grpc", False): ConnectionRefusedError(111, "Connection refused"),
        ("http", False): HTTPConnectionClosed("connection closed."),
        ("http", True): aiohttp.ServerDisconnectedError(),
    }[(protocol, asynchronous)]
    error = sdk_error(lost, URL, 1.0, connection_errors(protocol, asynchronous))
    assert isinstance(error, ServerUnavailableError) and URL in str(error)


def test_timeouts_are_timeouts_and_anything_else_is_raised_as_it_is() -> None:
    for timeout in (TimeoutError(), asyncio.TimeoutError()):
        assert isinstance(sdk_error(timeout, URL, 2.0), InferenceTimeoutError)
    with pytest.raises(KeyError):
        sdk_error(KeyError("a bug, not the server's answer"), URL, 2.0)


# Health


def test_health_and_ready_models_from_either_protocols_index() -> None:
    entries = [{"name": "toy", "state": "READY"}, {"name": "broken", "state": "UNAVAILABLE"}]
    for index, protocol in (({"models": entries}, "grpc"), (entries, "http")):
        health = health_of(True, True, index, protocol)
        assert health.live and health.ready and health.models == {"toy": True, "broken": False}
        assert ready_names(index, protocol) == ["toy"]
    assert health_of(True, False, {}, "grpc").models == {}


# Retries


def flaky(failures: int, answer: object = "answer"):
    """A request refused `failures` times, then answered."""
    calls = []

    def request() -> object:
        calls.append(None)
        if len(calls) <= failures:
            raise ConnectionRefusedError(111, "Connection refused")
        return answer

    return request, calls


def test_retry_delays_double_up_to_the_cap() -> None:
    assert RetryPolicy().delays() == pytest.approx([0.2, 0.4])
    assert RetryPolicy(attempts=5, backoff=0.5, max_backoff=1.5).delays() == [0.5, 1.0, 1.5, 1.5]
    assert RetryPolicy(attempts=1).delays() == []
    with pytest.raises(ConfigurationError, match="attempts"):
        RetryPolicy(attempts=0)


def test_the_client_retries_while_unavailable_then_gives_up(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr("emoclient.client.time.sleep", slept.append)
    request, calls = flaky(failures=2)
    assert client._send(request) == "answer" and len(calls) == 3 and slept == [0.2, 0.4]
    request, calls = flaky(failures=3)
    with pytest.raises(ServerUnavailableError, match="Connection refused"):
        client._send(request)
    assert len(calls) == 3


def test_the_async_client_retries_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr("emoclient.async_client.asyncio.sleep", sleep)

    async def run() -> tuple[object, int]:
        async with AsyncClient(URL, retry=RetryPolicy(attempts=4, backoff=0.1)) as client:
            request, calls = flaky(failures=3)

            async def answer():
                return request()

            return await client._send(answer), len(calls)

    assert asyncio.run(run()) == ("answer", 4)
    assert slept == pytest.approx([0.1, 0.2, 0.4])


def test_a_shed_request_is_retried_with_backoff(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr("emoclient.client.time.sleep", slept.append)
    calls = []

    def request() -> str:
        calls.append(None)
        if len(calls) < 3:
            raise server_exception("Exceeds maximum queue size", "StatusCode.UNAVAILABLE")
        return "answer"

    assert client._send(request, "toy") == "answer" and slept == [0.2, 0.4]


def shed_then_answer(sheds: int):
    calls: list[None] = []

    def request() -> str:
        calls.append(None)
        if len(calls) <= sheds:
            raise server_exception("Request timeout expired", "StatusCode.UNAVAILABLE")
        return "answer"

    return request, calls


def test_a_bulk_calls_shed_request_is_sent_again_while_the_call_progresses(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond the retry policy's attempts: the server sheds what it cannot take yet, and the
    bulk call waits its turn, backing off up to the cap."""
    slept: list[float] = []
    monkeypatch.setattr("emoclient.client.time.sleep", slept.append)
    request, calls = shed_then_answer(sheds=6)
    progress = Progress(patience=60.0)
    assert client._send(request, "toy", progress) == "answer" and len(calls) == 7
    assert slept == pytest.approx([0.2, 0.4, 0.8, 1.6, 2.0, 2.0])
    request, calls = shed_then_answer(sheds=6)
    with pytest.raises(OverloadedError):  # an interactive request: the retry policy alone
        client._send(request, "toy")
    assert len(calls) == 3


def test_a_bulk_call_that_nothing_answers_for_its_patience_gives_up(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("emoclient.client.time.sleep", lambda _: None)
    stalled = Progress(patience=5.0)
    stalled.last -= 6.0  # no request of the call answered for 6 s
    request, calls = shed_then_answer(sheds=100)
    with pytest.raises(OverloadedError):
        client._send(request, "toy", stalled)
    assert len(calls) == 3  # then the retry policy's attempts, and no more
    patient = Progress(patience=None)
    patient.last -= 3600.0
    request, calls = shed_then_answer(sheds=20)
    assert client._send(request, "toy", patient) == "answer" and len(calls) == 21


def test_an_answer_to_any_request_of_a_bulk_call_is_its_progress(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("emoclient.client.time.sleep", lambda _: None)
    progress = Progress(patience=5.0)
    progress.last -= 4.0
    assert client._send(lambda: "answer", "toy", progress) == "answer"
    assert not progress.stalled() and time.monotonic() - progress.last < 1.0


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_the_timeout_travels_as_the_requests_deadline(protocol: str) -> None:
    """Half of it as the request's own, in microseconds, which a model's queue policy enforces
    (the other half is for the compute); the whole of it as gRPC's call deadline."""
    with Client(DEFAULT_URLS[protocol], protocol=protocol, timeout=2.5) as timed:
        options = timed._infer_request("toy", encode_texts(["hi"]), 1).keywords
        assert options["timeout"] == 1_250_000
        assert options.get("client_timeout") == (2.5 if protocol == "grpc" else None)
    with Client(DEFAULT_URLS[protocol], protocol=protocol, timeout=None) as patient:
        assert "timeout" not in patient._infer_request("toy", encode_texts(["hi"]), 1).keywords


def test_errors_that_a_retry_cannot_fix_are_raised_at_once(client: Client) -> None:
    calls = []

    def request() -> None:
        calls.append(None)
        raise server_exception("text 0 is not valid UTF-8", "StatusCode.INVALID_ARGUMENT")

    with pytest.raises(InvalidInputError):
        client._send(request, "toy")
    assert len(calls) == 1


# Options


def test_default_urls_are_public_and_read_only() -> None:
    assert DEFAULT_URLS == {"grpc": "localhost:8001", "http": "localhost:8000"}
    with pytest.raises(TypeError):
        DEFAULT_URLS["grpc"] = "elsewhere:1"  # type: ignore[index]
    with Client(protocol="http") as http:
        assert http.url == "localhost:8000"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"protocol": "udp"}, "protocol must be 'grpc' or 'http', not 'udp'"),
        ({"url": "http://localhost:8000"}, "url is HOST:PORT, without a scheme"),
        ({"timeout": 0}, "timeout must be positive or None"),
        ({"batch_size": 0}, "batch_size must be at least 1"),
        ({"max_text_bytes": 0}, "max_text_bytes must be at least 1"),
        ({"root_certificates": "ca.pem"}, "root_certificates need ssl=True"),
    ],
)
def test_invalid_options_are_configuration_errors(options: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        Client(**{"url": URL, **options})
    assert isinstance(caught.value, EmotritonError) and isinstance(caught.value, ValueError)


def test_the_async_client_needs_room_for_one_request() -> None:
    with pytest.raises(ConfigurationError, match="max_concurrency must be at least 1, not 0"):
        AsyncClient(URL, max_concurrency=0)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize("client_class", [Client, AsyncClient])
def test_a_missing_certificate_is_a_configuration_error_and_nothing_else(
    protocol: str, client_class: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: FileNotFoundError, then tritonclient's `__del__` printing an AttributeError."""
    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    missing = tmp_path / "ca.pem"
    with pytest.raises(ConfigurationError, match=f"root_certificates: cannot read '{missing}'"):
        client_class(URL, protocol=protocol, ssl=True, root_certificates=str(missing))
    key = tmp_path / "client.key"
    key.write_text("")
    with pytest.raises(ConfigurationError, match="certificate_chain: cannot read"):
        Client(URL, ssl=True, private_key=str(key), certificate_chain=str(tmp_path))
    gc.collect()
    assert unraisable == []


def test_tls_options_reach_each_tritonclient_client(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    tls = Tls(True, root_certificates=str(ca))
    retry = RetryPolicy()
    grpc = connection_options("grpc", True, 5.0, retry, tls)
    assert grpc["ssl"] and grpc["root_certificates"] == str(ca) and grpc["private_key"] is None
    assert ("grpc.max_reconnect_backoff_ms", 2000) in grpc["channel_args"]
    http = connection_options("http", False, 5.0, retry, tls)
    assert http == {
        "ssl": True,
        "ssl_options": {"ca_certs": str(ca)},
        "connection_timeout": 5.0,
        "network_timeout": 5.0,
    }
    plain = connection_options("http", True, None, retry, Tls(False))
    assert plain == {"ssl": False, "ssl_context": None, "conn_timeout": None}
    with pytest.raises(ConfigurationError, match="TLS files not usable"):
        connection_options("http", True, 5.0, retry, tls)  # an empty file is no certificate
    context = connection_options("http", True, 5.0, retry, Tls(True))["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    ("protocol", "header"),
    [("grpc", "triton-grpc-protocol-emotriton-admin-key"), ("http", "emotriton-admin-key")],
)
def test_the_admin_key_travels_in_the_header_triton_reads(protocol: str, header: str) -> None:
    with Client(DEFAULT_URLS[protocol], protocol=protocol, admin_key="k") as keyed:
        assert keyed.headers == {header: "k"}
        assert keyed._index_request().keywords["headers"] == {header: "k"}


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_sampled_span_travels_to_triton_as_its_w3c_trace_context(protocol: str) -> None:
    """Triton's spans of the request join the caller's trace. Only a sampled span's: Triton
    traces every request that carries a context, whatever its flags."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

    with Client(DEFAULT_URLS[protocol], protocol=protocol, admin_key="k") as client:

        def headers() -> dict[str, str]:
            return client._infer_request("toy", encode_texts(["hi"]), 1).keywords["headers"]

        assert headers() == client.headers  # no span
        tracer = TracerProvider(sampler=ALWAYS_ON).get_tracer("caller")
        with tracer.start_as_current_span("call") as span:
            context = span.get_span_context()
            sent = headers()
        version, trace_id, span_id, flags = sent.pop("traceparent").split("-")
        assert version == "00"
        assert sent == client.headers
        assert (trace_id, span_id) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
        assert int(flags, 16) & 1  # sampled
        with TracerProvider(sampler=ALWAYS_OFF).get_tracer("caller").start_as_current_span("x"):
            assert headers() == client.headers


def test_without_the_index_health_lists_no_model_and_not_found_names_none() -> None:
    assert health_of(True, True, None, "grpc") == Health(live=True, ready=True, models={})
    error = ModelNotFoundError("nope", None)
    assert str(error).startswith("model 'nope' is not served (the served ones are listed over")
    assert error.available is None


@pytest.mark.parametrize("threshold", [1.5, -0.1, "abc", ["joy"], True, {"joy": 2.0}, {"joy": "x"}])
def test_a_threshold_is_a_probability(threshold: object) -> None:
    """1.5 or -0.1 would predict every label or none, and a str used to be read as label
    names ("abc" → a, b, c): each is the caller's mistake, said before anything is sent."""
    with pytest.raises(InvalidInputError, match="must be"):
        checked_threshold(threshold)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (HTTPParseError("Expected HTTP/, RTSP/ or ICE/", 8), "does not answer HTTP/1.1"),
        (
            InferenceServerException(
                "failed to connect to all addresses; last error: INTERNAL: Failed parsing HTTP/2"
                " (Trying to connect an http1.x server (HTTP status 400))",
                status="StatusCode.UNAVAILABLE",
            ),
            "answers HTTP/1.1, not gRPC",
        ),
    ],
)
def test_a_client_at_the_other_protocols_port_is_told_so_and_not_retried(error, says) -> None:
    translated = sdk_error(error, URL, 5.0, connection_errors("http", False))
    assert isinstance(translated, WrongProtocolError) and says in str(translated)
    assert not isinstance(translated, RetryableError)
