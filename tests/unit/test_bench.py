"""What `emotriton bench` classifies: texts read from go_emotions' TSV or a text file (the run
itself, on a toy model, is in tests/e2e/test_bench.py)."""

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
