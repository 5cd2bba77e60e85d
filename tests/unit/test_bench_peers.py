"""The peers `emotriton bench` drives: reading their real output, and finding them (a missing
one skipped is in tests/e2e/test_bench_peers.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emoload.bench import find_peer
from emoload.errors import PeerUnavailableError
from emoload.infinity import min_cosine, parse_embeddings
from emoload.perf_analyzer import PerfAnalyzer, environment, input_data, parse_output

SAMPLES = Path(__file__).with_name("peer_outputs")


def test_perf_analyzer_client_figures_are_read_from_its_report() -> None:
    # perf_analyzer 2.51.0 over gRPC, concurrency 8, on the served default model.
    stdout = (SAMPLES / "perf_analyzer_grpc_concurrency8.txt").read_text()
    measured = parse_output(stdout)
    assert measured.requests == 669
    assert measured.texts_per_s == 111.0
    assert measured.p50_ms == pytest.approx(72.758)
    assert measured.p95_ms == pytest.approx(124.114)  # the client's, not a composing model's


def test_perf_analyzer_output_without_a_measurement_is_an_error() -> None:
    with pytest.raises(PeerUnavailableError, match="no client measurement"):
        parse_output("Request concurrency: 8\nThis protocol is restricted, expecting header\n")


def test_perf_analyzer_gets_one_text_per_step_and_no_key_on_its_command_line(
    tmp_path: Path,
) -> None:
    """It reads the model statistics, which are open (they say what /metrics says), so `ps`
    shows no admin key while it runs (its -H took one before)."""
    assert input_data(["a", "b"]) == {"data": [{"TEXT": ["a"]}, {"TEXT": ["b"]}]}
    seen = tmp_path / "argv"
    fake = tmp_path / "perf_analyzer"
    sample = SAMPLES / "perf_analyzer_grpc_concurrency8.txt"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {seen}\ncat {sample}\n')
    fake.chmod(0o755)
    measured = PerfAnalyzer(fake, "127.0.0.1:1", "m", ["a", "b"]).measure(8, 1)
    assert measured.requests == 669
    argv = seen.read_text().splitlines()
    assert "-H" not in argv and not [a for a in argv if "admin" in a.lower()], argv


def test_perf_analyzer_finds_the_cuda_runtime_of_its_own_venv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = tmp_path / "lib/python3.11/site-packages/nvidia/cuda_runtime/lib"
    lib.mkdir(parents=True)
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/other")
    env = environment(tmp_path / "bin" / "perf_analyzer")
    assert env["LD_LIBRARY_PATH"] == f"{lib}:/opt/other"
    elsewhere = environment(tmp_path / "elsewhere" / "bin" / "perf_analyzer")
    assert elsewhere["LD_LIBRARY_PATH"] == "/opt/other"


def test_infinity_embeddings_are_read_in_input_order() -> None:
    # infinity-emb 0.0.78 answering /embeddings for ["I love this!", "ok"].
    answer = json.loads((SAMPLES / "infinity_embeddings_two_texts.json").read_text())
    embeddings = parse_embeddings(json.dumps(answer).encode())
    assert embeddings.shape == (2, 384) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    answer["data"].reverse()
    np.testing.assert_array_equal(parse_embeddings(json.dumps(answer).encode()), embeddings)


def test_min_cosine_is_the_worst_row() -> None:
    reference = np.array([[1.0, 0.0], [0.0, 2.0]])
    assert min_cosine(reference, reference) == pytest.approx(1.0)
    assert min_cosine(np.array([[1.0, 0.0], [1.0, 1.0]]), reference) == pytest.approx(0.5**0.5)


def test_a_peer_is_found_where_asked_then_in_the_peers_venv_then_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    on_path, installed = tmp_path / "path", tmp_path / ".venv-peers/bin"
    for folder in (on_path, installed):
        folder.mkdir(parents=True)
        (folder / "perf_analyzer").write_text("#!/bin/sh\n")
        (folder / "perf_analyzer").chmod(0o755)
    assert find_peer("perf_analyzer", None) == installed / "perf_analyzer"
    assert find_peer("perf_analyzer", on_path / "perf_analyzer") == on_path / "perf_analyzer"
    (installed / "perf_analyzer").unlink()
    assert find_peer("perf_analyzer", None) == on_path / "perf_analyzer"
    with pytest.raises(PeerUnavailableError, match="make bench-peers"):
        find_peer("infinity_emb", None)
    with pytest.raises(PeerUnavailableError, match="no file"):
        find_peer("perf_analyzer", tmp_path / "missing")
