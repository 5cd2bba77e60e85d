"""The JSON API in front of the real server, through the clients its callers use:
huggingface_hub's InferenceClient, curl and requests. Each gets the SDK's scores bit for bit;
the multi-label model answers sigmoid scores and the single-label one softmax, as their cards
say; and what Triton refuses comes back as a typed JSON error."""

from __future__ import annotations

import json
import math
import secrets
import subprocess

import pytest
import requests
from huggingface_hub import InferenceClient

from emoapi.tracing import API_SERVICE
from emoclient import Client, protocol
from emoserve import LocalServer
from emoserve.tracing import TRITON_SERVICE

from .collector import Collector
from .conftest import API_MODELS

TEXTS = ["I love this so much", "this is awful", "", "what just happened?"]


@pytest.fixture(scope="module")
def sdk(server: LocalServer) -> dict[str, list[dict[str, float]]]:
    """The SDK's scores of TEXTS, per model, over gRPC."""
    with Client(server.endpoints.grpc_url) as client:
        return {
            name: [dict(r.scores) for r in client.classify(TEXTS, model=name)]
            for name in API_MODELS
        }


def ranked(scores: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(scores.items(), key=lambda item: item[1], reverse=True)


@pytest.mark.parametrize("model", API_MODELS)
def test_huggingface_hub_classifies_with_the_sdks_scores(json_api: str, sdk, model: str) -> None:
    hub = InferenceClient(base_url=f"{json_api}/models/{model}")
    for text, expected in zip(TEXTS, sdk[model]):
        answer = hub.text_classification(text)
        assert [(item.label, item.score) for item in answer] == ranked(expected)
    best = hub.text_classification(TEXTS[0], top_k=2)
    assert [(item.label, item.score) for item in best] == ranked(sdk[model][0])[:2]


def test_each_model_answers_its_cards_activation(json_api: str, sdk) -> None:
    """go_emotions (multi-label, sigmoid): scores that need not sum to 1; emotion (single-label,
    softmax): one distribution. TEI would apply softmax to both."""
    described = {m["name"]: m for m in requests.get(f"{json_api}/models", timeout=30).json()}
    assert described["go_emotions"]["activation"] == "sigmoid"
    assert described["emotion"]["activation"] == "softmax"
    assert all(math.isclose(sum(s.values()), 1.0, rel_tol=1e-5) for s in sdk["emotion"])
    assert not math.isclose(sum(sdk["go_emotions"][0].values()), 1.0, rel_tol=1e-3)
    wrong = requests.post(
        f"{json_api}/models/go_emotions",
        json={"inputs": "hi", "parameters": {"function_to_apply": "softmax"}},
        timeout=30,
    )
    assert wrong.status_code == 422 and "sigmoid" in wrong.json()["error"]


def test_curl_gets_the_sdks_answer_bit_for_bit(json_api: str, server: LocalServer) -> None:
    body = json.dumps({"texts": TEXTS, "model": "go_emotions", "threshold": 0.3})
    run = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "-H", "Content-Type: application/json",
         "-d", body, f"{json_api}/classify"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    with Client(server.endpoints.grpc_url) as client:
        expected = client.classify(TEXTS, model="go_emotions", threshold=0.3)
    assert json.loads(run.stdout) == {
        "model": "go_emotions",
        "results": [result.to_dict() for result in expected],
    }


def test_requests_gets_teis_predict_shape_with_the_sdks_scores(json_api: str, sdk) -> None:
    """/predict serves the default model, the first the front end was given."""
    one = requests.post(f"{json_api}/predict", json={"inputs": TEXTS[0]}, timeout=30)
    assert [(i["label"], i["score"]) for i in one.json()] == ranked(sdk[API_MODELS[0]][0])
    many = requests.post(f"{json_api}/predict", json={"inputs": TEXTS}, timeout=30).json()
    assert [[(i["label"], i["score"]) for i in answer] for answer in many] == [
        ranked(scores) for scores in sdk[API_MODELS[0]]
    ]


def test_what_triton_or_the_sdk_refuses_is_a_typed_json_error(json_api: str) -> None:
    huge = "x" * (protocol.MAX_TEXT_BYTES + 1)
    too_long = requests.post(f"{json_api}/classify", json={"texts": ["ok", huge]}, timeout=60)
    assert too_long.status_code == 422
    assert too_long.json()["error"].startswith("text 1:")
    unknown = requests.post(f"{json_api}/models/nope", json={"inputs": "hi"}, timeout=30)
    assert unknown.status_code == 404 and unknown.json()["error_type"] == "not_found"
    # Served by Triton, but not by this front end: a composing model is not an API.
    step = requests.post(f"{json_api}/models/emotion_encoder", json={"inputs": "x"}, timeout=30)
    assert step.status_code == 404
    assert requests.get(f"{json_api}/health", timeout=30).json()["status"] == "ok"


def test_one_request_is_one_trace_through_the_front_end_and_triton(
    json_api: str, trace_collector: Collector
) -> None:
    """A caller's sampled context: the front end's span is its child, and Triton's spans (the
    request's, the ensemble's and each step's) join the same trace under the front end's. An
    unsampled context is traced by neither: Triton traces any context it is given, so the SDK
    gives it only a sampled one."""
    sampled, unsampled = (f"{secrets.randbits(128) | 1:032x}" for _ in range(2))
    caller = f"{secrets.randbits(64) | 1:016x}"
    for trace_id, flags in ((unsampled, "00"), (sampled, "01")):
        answer = requests.post(
            f"{json_api}/classify",
            json={"texts": ["I love this so much"], "model": "go_emotions"},
            headers={"traceparent": f"00-{trace_id}-{caller}-{flags}"},
            timeout=30,
        )
        assert answer.status_code == 200
    spans = trace_collector.wait_for(sampled, {API_SERVICE, TRITON_SERVICE})
    front = [span for span in spans if span.service == API_SERVICE]
    triton = [span for span in spans if span.service == TRITON_SERVICE]
    (request,) = [span for span in front if span.parent_id == caller]
    assert request.name == "POST /classify"
    # Triton's tree hangs from the front end's request span, and from nothing else.
    assert {s.parent_id for s in triton} - {s.span_id for s in triton} == {request.span_id}
    assert not trace_collector.of_trace(unsampled)
