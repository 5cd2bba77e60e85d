"""What `emotriton bench` classifies (texts from go_emotions' TSV or a text file, a replay with
repeats) and what it reads and reports (Triton's counters, the mix's phases); the runs, on a toy
model, are in tests/e2e/test_bench.py."""

from __future__ import annotations

from pathlib import Path

from emoload.corpus import read_texts


def test_texts_come_from_go_emotions_tsv_or_a_text_file(tmp_path: Path) -> None:
    (tmp_path / "test.tsv").write_text("first text\t3\tid1\nsecond\t0,1\tid2\n")
    assert read_texts(tmp_path, 5) == ["first text", "second"]
    lines = tmp_path / "texts.txt"
    lines.write_text("a\n\nb\nc\n")
    assert read_texts(lines, 2) == ["a", "b"]
    assert len(read_texts(None, 1000)) > 100  # the loadtest corpus


def test_the_replay_repeats_its_share_of_earlier_requests_and_sends_the_rest_in_order() -> None:
    from emoload.repeats import replay

    texts = [f"text {i}" for i in range(10_000)]
    sent = replay(texts, 0.3)
    assert len(sent) == len(texts)
    seen: set[str] = set()
    repeats = 0
    fresh = []
    for text in sent:
        repeats += text in seen
        if text not in seen:
            fresh.append(text)
        seen.add(text)
    assert 0.28 < repeats / len(sent) < 0.32
    assert fresh == texts[: len(fresh)]  # the rest: the data's next texts, in order
    assert replay(texts, 0.3) == sent  # the same replay every run
    assert replay(texts, 0.0) == texts


def test_the_cache_hit_rate_is_read_from_the_ensembles_counters() -> None:
    from emoload.served import cache_hit_rate

    hits, misses = "nv_cache_num_hits_per_model", "nv_cache_num_misses_per_model"
    before = {(hits, "go"): 10.0, (misses, "go"): 10.0}
    after = {(hits, "go"): 40.0, (misses, "go"): 80.0}
    assert cache_hit_rate(before, after, "go") == 0.3
    assert cache_hit_rate(before, before, "go") is None  # nothing looked up: no cache
    assert cache_hit_rate({}, {}, "go") is None


def test_metrics_lines_of_the_cache_and_of_inference_are_read(monkeypatch) -> None:
    import io

    from emoload import served

    page = (
        'nv_inference_count{model="go_encoder",version="1"} 12\n'
        'nv_cache_num_hits_per_model{model="go",version="2"} 3\n'
        "nv_cache_num_entries 7\n"
    )
    monkeypatch.setattr(served.urllib.request, "urlopen", lambda *a, **k: io.BytesIO(page.encode()))
    assert served.read_metrics("http://metrics") == {
        ("nv_inference_count", "go_encoder"): 12.0,
        ("nv_cache_num_hits_per_model", "go"): 3.0,
    }


def test_counters_are_read_once_triton_has_counted_every_answer_it_sent(monkeypatch) -> None:
    """Triton counts a request just after answering it, and a batch's texts after its requests:
    the reading waits for both late counts, and a count that never comes is an error, not a
    silently wrong figure."""
    import pytest

    from emoload import served
    from emoload.errors import LoadTestError

    success, texts = "nv_inference_request_success", "nv_inference_count"
    since = {(success, "go"): 5.0, (success, "go_encoder"): 5.0, (texts, "go_encoder"): 20.0}
    readings = iter(
        [
            # the encoder's last request: not yet
            {(success, "go"): 8.0, (success, "go_encoder"): 7.0, (texts, "go_encoder"): 26.0},
            # every request, but not the last batch's texts
            {(success, "go"): 8.0, (success, "go_encoder"): 8.0, (texts, "go_encoder"): 26.0},
            {(success, "go"): 8.0, (success, "go_encoder"): 8.0, (texts, "go_encoder"): 29.0},
        ]
    )
    monkeypatch.setattr(served, "read_metrics", lambda url: next(readings))
    answered, inferred = {"go": 3, "go_encoder": 3}, {"go_encoder": 9}
    reading = served.counted_metrics("http://metrics", since, answered, inferred)
    assert reading[(texts, "go_encoder")] == 29
    monkeypatch.setattr(served, "read_metrics", lambda url: since)
    with pytest.raises(LoadTestError, match="nv_inference_request_success of go': 3"):
        served.counted_metrics("http://metrics", since, answered, timeout=0.0)


def test_the_mix_reports_each_phase_and_the_ratios_against_alone() -> None:
    from emoload.mix import BULK_ALONE, INTERACTIVE_ALONE, MIXED, MixReport, Phase

    report = MixReport("go", "2 CPUs", 8, 5.0, 8)
    report.phases = [
        Phase(INTERACTIVE_ALONE, 20.0, 800, {}, 10.0, 20.0),
        Phase(BULK_ALONE, 25.0, bulk_texts=10_000, bulk_texts_per_s=400.0),
        Phase(MIXED, 28.0, 900, {}, 12.0, 40.0, 10_000, None, 360.0, 0.01),
    ]
    assert report.ratios() == {
        "interactive p99, mixed / alone": 2.0,
        "bulk texts/s, mixed / alone": 0.9,
    }
    table = report.to_markdown()
    assert "| mixed | 900 | 12.0 | 40.0 | 0 | 360 | completed | 1.0% |" in table
    assert "- interactive p99, mixed / alone: 2.00x" in table
