"""Real traffic through the real server: interactive requests ahead of bulk ones, the response
cache (identical answers, a key that covers what changes one), and models warmed up before
they are ready. The measurements (latency beside a bulk call, texts/s with repeats, cold
requests) are emotriton bench --mix / --repeats and scripts/cold_start.py."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient

from emoclient import Client
from emoclient import protocol as wire
from emoexport.exporter import ExportOptions, export_classifier
from emoload.corpus import read_texts
from emoload.served import read_metrics
from emoserve import LocalServer

from ..support import DATA, needs_data
from .traffic import KEY, MODEL

CACHE = 64 * 2**20  # the response cache is off unless asked
LONG_TEXT = "I honestly did not expect the evening to turn out this well, " * 20


def _pending(server: LocalServer, model: str) -> float:
    return read_metrics(server.endpoints.metrics_url).get(
        ("nv_inference_pending_request_count", model), 0.0
    )


def _outputs(results) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    scores = np.array([list(result.scores.values()) for result in results], dtype=np.float32)
    return scores, [result.labels for result in results]


def test_an_interactive_request_is_served_before_the_bulk_requests_queued_ahead_of_it(
    server: LocalServer,
) -> None:
    """Through the ensemble (Triton passes a request's priority to its steps) to the encoder's
    two priority levels: a text sent while bulk requests wait is computed before them."""
    url = server.endpoints.grpc_url
    finished: list[str] = []
    lock = threading.Lock()
    bulk_requests = 6

    def bulk(index: int) -> None:
        with Client(url) as client:
            client.classify([LONG_TEXT] * 64, model="minilm", priority="bulk")
        with lock:
            finished.append(f"bulk {index}")

    threads = [threading.Thread(target=bulk, args=(i,)) for i in range(bulk_requests)]
    for thread in threads:
        thread.start()
    with Client(url) as client:
        alone = client.classify("thank you!", model="minilm")
        deadline = time.monotonic() + 60
        while _pending(server, "minilm_encoder") < 3:  # bulk requests wait behind the one run
            assert time.monotonic() < deadline, "the bulk requests never queued"
            time.sleep(0.01)
        (served,) = client.classify("thank you!", model="minilm", priority="interactive")
        with lock:
            finished.append("interactive")
    for thread in threads:
        thread.join()
    assert served.labels == alone[0].labels
    # Behind at most the bulk request the encoder was running and the one it had batched next.
    assert finished.index("interactive") <= 2, finished


@needs_data
def test_cached_answers_are_the_computed_ones_bit_for_bit(
    toy_repository: Path, tmp_path: Path
) -> None:
    """Every text of go_emotions' test split, in one bulk call: computed by a server without a
    cache, computed and cached by one with, then answered from its cache."""
    texts = read_texts(DATA / "go_emotions", 10_000)
    assert len(texts) == 5427
    with (
        LocalServer(toy_repository, cache_bytes=0) as uncached,
        Client(uncached.endpoints.grpc_url) as client,
    ):
        computed = _outputs(client.classify(texts, model=MODEL))
    with (
        LocalServer(toy_repository, cache_bytes=CACHE) as cached,
        Client(cached.endpoints.grpc_url) as client,
    ):
        hits = ("nv_cache_num_hits_per_model", MODEL)
        first = _outputs(client.classify(texts, model=MODEL))
        before = read_metrics(cached.endpoints.metrics_url)[hits]
        again = _outputs(client.classify(texts, model=MODEL))
        answered_from_cache = read_metrics(cached.endpoints.metrics_url)[hits] - before
        requests = -(-len(texts) // client.model(MODEL).bulk_batch_size)
    assert answered_from_cache == requests  # every request of the second pass
    for outputs in (first, again):
        assert np.array_equal(outputs[0], computed[0]) and outputs[1] == computed[1]


def test_the_sdk_answers_rightly_from_an_entry_cached_for_the_scores_alone(
    toy_repository: Path, toy_server: LocalServer
) -> None:
    """Triton keys the cache by model and inputs, not by the outputs asked for: a client that
    asks for the scores alone leaves an entry without the decisions. The SDK then decides from
    the scores as the server does: the same answer as from a server without a cache."""
    text = "a text first asked for its scores alone"
    with Client(toy_server.endpoints.grpc_url) as client:  # no cache: computed
        (computed,) = client.classify(text, model=MODEL)
    with LocalServer(toy_repository, cache_bytes=CACHE) as cached:
        raw = grpcclient.InferenceServerClient(cached.endpoints.grpc_url)
        try:
            tensor = grpcclient.InferInput(wire.TEXT_INPUT, [1, 1], "BYTES")
            tensor.set_data_from_numpy(np.array([[text.encode()]], dtype=np.object_))
            scores_only = [grpcclient.InferRequestedOutput(wire.SCORES_OUTPUT)]
            raw.infer(MODEL, [tensor], outputs=scores_only)
            both = raw.infer(MODEL, [tensor])  # from the cache: what the first one asked for
            assert both.as_numpy(wire.PREDICTED_OUTPUT) is None
        finally:
            raw.close()
        with Client(cached.endpoints.grpc_url) as client:
            (result,) = client.classify(text, model=MODEL)
    assert result == computed


def test_a_reexport_is_not_answered_from_the_cache_of_the_one_it_replaced(
    toy_repository: Path, tmp_path: Path
) -> None:
    """Triton's cache keys an answer by model, version and inputs, and keeps it across a
    reload: a re-export goes in at the next version, so new thresholds apply at once."""
    repository = shutil.copytree(toy_repository, tmp_path / "repository")
    source = toy_repository.parent / "roberta"
    text = "the same text, before and after the thresholds change"
    with (
        LocalServer(repository, admin_key=KEY, cache_bytes=CACHE) as server,
        Client(server.endpoints.grpc_url) as client,
    ):
        (before,) = client.classify(text, model=MODEL)
        options = ExportOptions(name=MODEL, repository=repository, thresholds="0", overwrite=True)
        export_classifier(str(source), options)
        assert sorted(p.name for p in (repository / MODEL).iterdir() if p.is_dir()) == ["2"]
        server.admin.load(MODEL)
        (after,) = client.classify(text, model=MODEL)
    assert np.allclose(list(after.scores.values()), list(before.scores.values()), atol=1e-6)
    assert len(before.labels) < len(after.labels) == len(after.scores)  # every label, at 0
