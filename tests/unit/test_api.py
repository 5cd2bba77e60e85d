"""The JSON API's routes, errors, keys, CORS and limits, over HTTP in process, with a stand-in for
the SDK's async client (tests/e2e/test_json_api.py runs it in front of a real Triton); and, with
the real client, against nothing listening."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.responses import Response

from emoapi import ApiSettings, create_app
from emoapi.route import JsonRoute
from emoclient import (
    Classification,
    ConfigurationError,
    Health,
    InvalidInputError,
    ModelInfo,
    OverloadedError,
    ServerUnavailableError,
)
from emoserve.config import free_port

LABELS = ("joy", "anger", "fear")
KEY = "k" * 32
INFO = ModelInfo(
    name="go",
    labels=LABELS,
    activation="sigmoid",
    decision="thresholds",
    thresholds=dict.fromkeys(LABELS, 0.5),
    threshold_profile=None,
    max_length=128,
    max_batch_size=64,
    bulk_batch_size=4,
)


class StandIn:
    """The SDK's answers for model "go": scores from each text's length; `failure` raised
    instead when set."""

    def __init__(self) -> None:
        self.failure: Exception | None = None
        self.calls: list[dict[str, Any]] = []

    async def model(self, name: str) -> ModelInfo:
        return INFO

    async def classify(self, texts: Sequence[str], **options: Any) -> list[Classification]:
        self.calls.append({"texts": list(texts), **options})
        if self.failure is not None:
            raise self.failure
        results = []
        for index, text in enumerate(texts):
            scores = dict(zip(LABELS, (0.9, len(text) / 100, 0.1)))
            labels = tuple(label for label, score in sorted(
                scores.items(), key=lambda item: -item[1]) if score >= 0.5)  # fmt: skip
            results.append(Classification(index, scores, labels[: options.get("top_k")]))
        return results

    async def health(self) -> Health:
        return Health(live=True, ready=self.failure is None, models={})


def served(**settings: Any) -> Iterator[tuple[TestClient, StandIn]]:
    app = create_app(ApiSettings(triton_url="127.0.0.1:1", models=("go",), **settings))
    stand_in = StandIn()
    with TestClient(app) as http:
        app.state.client = stand_in
        yield http, stand_in


@pytest.fixture
def api() -> Iterator[tuple[TestClient, StandIn]]:
    yield from served(max_texts=4, max_body_bytes=2000)


def test_each_route_answers_its_peers_json(api) -> None:
    http, stand_in = api
    answer = http.post("/classify", json={"texts": ["ab", "x" * 70], "top_k": 1})
    assert answer.status_code == 200
    assert answer.json() == {
        "model": "go",
        "results": [
            {"index": 0, "labels": ["joy"], "scores": {"joy": 0.9, "anger": 0.02, "fear": 0.1}},
            {"index": 1, "labels": ["joy"], "scores": {"joy": 0.9, "anger": 0.7, "fear": 0.1}},
        ],
    }
    assert stand_in.calls[-1] == {"texts": ["ab", "x" * 70], "model": "go", "top_k": 1,
                                  "threshold": None}  # fmt: skip
    # The Hugging Face task: a list per text, every label (or the top k), best first.
    task = http.post("/models/go", json={"inputs": "ab", "parameters": {"top_k": 2}})
    assert task.json() == [[{"label": "joy", "score": 0.9}, {"label": "fear", "score": 0.1}]]
    # TEI: one text, one list; a list of texts, a list of lists.
    one = http.post("/predict", json={"inputs": "ab"}).json()
    assert [item["label"] for item in one] == ["joy", "fear", "anger"]
    assert len(http.post("/predict", json={"inputs": ["a", "b"]}).json()) == 2
    assert http.get("/models").json()[0]["labels"] == list(LABELS)
    assert http.get("/models/go").json()["activation"] == "sigmoid"
    assert http.get("/health").json() == {"status": "ok", "live": True, "ready": True}


def test_thresholds_of_one_request_reach_the_sdk(api) -> None:
    http, stand_in = api
    http.post("/classify", json={"texts": "a", "threshold": {"joy": 0.95}, "model": "go"})
    assert stand_in.calls[-1]["threshold"] == {"joy": 0.95}
    assert http.post("/classify", json={"texts": "a", "threshold": 1.5}).status_code == 422


@pytest.mark.parametrize(
    ("path", "body", "status", "error_type", "says"),
    [
        ("/classify", {"texts": ["a"] * 5}, 413, "validation", "5 texts, over the limit of 4"),
        ("/classify", {"texts": ["a"], "modle": "go"}, 422, "validation", "modle: Extra inputs"),
        ("/classify", {"text": "a"}, 422, "validation", "texts: Field required"),
        ("/classify", {"texts": "a", "model": "other"}, 404, "not_found", "'other' is not served"),
        ("/models/other", {"inputs": "a"}, 404, "not_found", "'other' is not served"),
        ("/models/go", {"inputs": "a", "parameters": {"function_to_apply": "softmax"}}, 422,
         "validation", "go's scores are sigmoid probabilities"),
        ("/predict", {"inputs": "a", "raw_scores": True}, 422, "validation", "not logits"),
        ("/predict", {"inputs": "a", "truncation_direction": "left"}, 422, "validation", "first"),
        ("/predict", {"inputs": [["a", "b"]]}, 422, "validation", "inputs"),
        ("/predict", {"inputs": []}, 400, "empty", "cannot be empty"),
        ("/nowhere", {}, 404, "not_found", "Not Found"),
    ],
)  # fmt: skip
def test_a_request_that_cannot_be_served_gets_a_typed_json_error(
    api, path: str, body: dict[str, Any], status: int, error_type: str, says: str
) -> None:
    http, _ = api
    answer = http.post(path, json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error_type"] == error_type
    assert says in answer.json()["error"]


def test_malformed_json_and_a_wrong_method_get_the_same_error_shape(api) -> None:
    http, _ = api
    broken = http.post("/classify", content=b'{"texts": [', headers={"Content-Type": "x/json"})
    assert broken.status_code == 422 and broken.json()["error_type"] == "validation"
    wrong = http.get("/classify")
    assert wrong.status_code == 405 and set(wrong.json()) == {"error", "error_type"}
    form = http.post("/classify", data={"texts": "a"})  # what curl --data declares
    assert form.status_code == 415 and "not 'application/x-www-form-urlencoded'" in form.text
    undeclared = http.post("/classify", content=b'{"texts": "a"}')
    assert undeclared.status_code == 200


def test_a_json_route_refuses_an_endpoint_its_handler_cannot_serve() -> None:
    async def with_query(model: str, top: int = 1) -> Response:
        raise AssertionError("never called")

    with pytest.raises(TypeError, match="path parameters and one body"):
        JsonRoute("/models/{model}", with_query, methods=["POST"])


def test_a_body_over_the_limit_is_refused_declared_or_streamed(api) -> None:
    http, stand_in = api
    big = {"texts": ["x" * 3000]}
    assert http.post("/classify", json=big).status_code == 413  # Content-Length says so
    chunks = iter([b'{"texts": ["', b"x" * 3000, b'"]}'])
    streamed = http.post("/classify", content=chunks, headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert "2000-byte limit" in streamed.json()["error"]
    assert stand_in.calls == []


@pytest.mark.parametrize(
    ("failure", "status", "error_type"),
    [
        (OverloadedError("triton:8001", "queue full"), 429, "overloaded"),
        (ServerUnavailableError("triton:8001", "refused"), 503, "unhealthy"),
        (InvalidInputError("not UTF-8", 0), 422, "validation"),
    ],
)
def test_the_sdks_errors_keep_their_meaning(api, failure, status: int, error_type: str) -> None:
    http, stand_in = api
    stand_in.failure = failure
    answer = http.post("/classify", json={"texts": "a"})
    assert (answer.status_code, answer.json()["error_type"]) == (status, error_type)
    assert str(failure) == answer.json()["error"]
    if status in (429, 503):
        assert answer.headers["Retry-After"] == "1"
    assert http.get("/health").status_code == 503  # not ready while it fails


def test_with_keys_inference_needs_one_and_health_and_docs_do_not() -> None:
    for http, _ in served(api_keys=frozenset({KEY})):
        bare = http.post("/classify", json={"texts": "a"})
        assert bare.status_code == 401 and bare.headers["WWW-Authenticate"] == "Bearer"
        wrong = {"Authorization": "Bearer " + "x" * 32}
        assert http.post("/predict", json={"inputs": "a"}, headers=wrong).status_code == 401
        assert http.get("/models", headers=wrong).status_code == 401
        right = {"Authorization": f"Bearer {KEY}"}
        assert http.post("/models/go", json={"inputs": "a"}, headers=right).status_code == 200
        assert http.get("/health").status_code == 200
        assert http.get("/docs").status_code == 200


def test_cors_answers_only_the_listed_origins() -> None:
    for http, _ in served(cors_origins=("https://app.example",)):
        preflight = {"Access-Control-Request-Method": "POST"}
        allowed = http.options("/classify", headers={"Origin": "https://app.example", **preflight})
        assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
        other = http.options("/classify", headers={"Origin": "https://evil.example", **preflight})
        assert "Access-Control-Allow-Origin" not in other.headers
    for http, _ in served():  # none listed: no CORS headers at all
        answer = http.post("/classify", json={"texts": "a"}, headers={"Origin": "https://x.y"})
        assert "Access-Control-Allow-Origin" not in answer.headers


def test_the_openapi_document_validates_and_the_docs_page_needs_no_cdn(api) -> None:
    from openapi_spec_validator import validate

    http, _ = api
    document = http.get("/openapi.json").json()
    validate(document)
    assert {"/classify", "/models/{model}", "/predict", "/models", "/health"} <= set(
        document["paths"]
    )
    page = http.get("/docs").text
    assert "cdn" not in page.lower()
    script = next(line for line in page.splitlines() if "swagger-ui-bundle.js" in line)
    asset = script.split('src="')[1].split('"')[0]
    assert http.get(asset).status_code == 200


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"models": ()}, "at least one served model"),
        ({"api_keys": frozenset({"short"})}, "at least 24 characters"),
        ({"cors_origins": ("*",)}, "list the origins"),
    ],
)
def test_settings_that_cannot_be_served_are_refused(settings: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        ApiSettings(**{"triton_url": "127.0.0.1:1", "models": ("go",), **settings})


def test_with_triton_down_health_is_503_and_inference_names_it() -> None:
    url = f"127.0.0.1:{free_port()}"  # nothing listens there
    with TestClient(create_app(ApiSettings(triton_url=url, models=("go",)))) as http:
        assert http.get("/health").json()["status"] == "unavailable"
        answer = http.post("/classify", json={"texts": "a"})
        assert answer.status_code == 503 and url in answer.json()["error"]
