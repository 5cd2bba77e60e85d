"""The JSON API in front of the real server, through the clients its callers use:
huggingface_hub's InferenceClient, curl and requests. Each gets the SDK's scores bit for bit;
the multi-label model answers sigmoid scores and the single-label one softmax, as their cards
say; and what Triton refuses comes back as a typed JSON error."""

from __future__ import annotations

import json
import math
import subprocess

import pytest
import requests
from huggingface_hub import InferenceClient

from emoclient import Client, protocol
from emoserve import LocalServer

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
