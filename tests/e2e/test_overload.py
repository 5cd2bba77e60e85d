"""`emotriton overload` against the real server: open-loop load above capacity, every request
accounted for, the excess shed at once, and nothing computed for callers that had gone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from emoload.overload import SERVED, SHED, OverloadOptions, run_overload
from emoload.served import composing_models
from emoserve import LocalServer

from .traffic import MODEL, TEXT


def test_open_loop_overload_is_shed_at_once_and_accounted_for(
    toy_repository: Path, tmp_path: Path
) -> None:
    """The toy encoder is too fast to be the bottleneck on its own: a 20 ms batching window and
    a queue of 4 requests make it one, as a real encoder is under real load."""
    repository = shutil.copytree(toy_repository, tmp_path / "repository")
    path = repository / f"{MODEL}_encoder" / "config.pbtxt"
    config = text_format.Parse(path.read_text(), mc.ModelConfig())
    config.dynamic_batching.max_queue_delay_microseconds = 20_000
    config.dynamic_batching.default_queue_policy.max_queue_size = 4
    del config.dynamic_batching.preferred_batch_size[:]  # or preferred batches skip the window
    path.write_text(text_format.MessageToString(config))
    texts = [f"{TEXT} ({i}) " * 6 for i in range(50)]
    with LocalServer(repository) as server:
        options = OverloadOptions(
            model=MODEL,
            url=server.endpoints.grpc_url,
            metrics_url=server.endpoints.metrics_url,
            models=composing_models(repository, MODEL),
            texts=texts,
            multiple=2.0,
            duration=4.0,
            timeout=10.0,
            capacity_clients=16,
            capacity_seconds=3.0,
        )
        report = run_overload(options, log=print)
    print(report.to_markdown())
    assert report.capacity_rps and report.rate_rps == pytest.approx(
        2 * report.capacity_rps, abs=0.2
    )
    # The open loop sends exactly int(rate * duration) requests, at the exact (unrounded) rate.
    assert report.sent == int(report.rate_rps * options.duration) == sum(report.outcomes.values())
    assert set(report.outcomes) <= {SERVED, SHED}, report.outcomes  # nothing else went wrong
    assert report.outcomes.get(SHED) and report.shed_p50_ms < 100  # shed at once
    # Within the queue's 1 s and the batch after it, far inside the deadline.
    assert report.served_max_ms < 5000
    encoder = f"{MODEL}_encoder"
    assert report.computed_for_nobody()[encoder] == 0
    assert json.loads(report.to_json())["computed_for_nobody"][encoder] == 0
