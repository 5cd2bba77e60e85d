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


def test_the_cache_counts_of_an_interval_give_its_hit_rate_and_cost() -> None:
    from emoload.served import CacheCounts

    before = CacheCounts(hits=10, misses=10, hit_ns=1_000, miss_ns=9_000)
    after = CacheCounts(hits=40, misses=80, hit_ns=4_000, miss_ns=56_000)
    interval = after - before
    assert interval == CacheCounts(30, 70, 3_000, 47_000)
    assert interval.hit_rate == 0.3
    assert interval.us_per_lookup == 0.5  # 50 µs over 100 lookups
    nothing = before - before  # nothing looked up: no cache
    assert nothing.hit_rate is nothing.us_per_lookup is None


def test_alternating_sends_each_item_through_both_calls_each_first_in_turn() -> None:
    from emoload.bench import alternating

    sent: list[tuple[str, str]] = []
    calls = (lambda texts: sent.append(("a", texts[0])), lambda texts: sent.append(("b", texts[0])))
    first, second = alternating(("A", "B"), [["x"], ["y"], ["z"]], calls)
    assert sent == [("a", "x"), ("b", "x"), ("b", "y"), ("a", "y"), ("a", "z"), ("b", "z")]
    assert (first.contender, first.texts, second.contender, second.texts) == ("A", 3, "B", 3)
    assert first.p50_ms is not None and second.p50_ms is not None
