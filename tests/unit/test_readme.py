"""The README's code blocks: each is run as printed (tests/e2e/test_readme.py), or says why not
in a comment on the line above it: `<!-- not run by tests: REASON -->`."""

from __future__ import annotations

from ..support import readme_blocks


def test_every_block_is_run_or_says_why_not() -> None:
    blocks = readme_blocks()
    assert blocks, "the README has no code blocks?"
    for block in blocks:
        assert block.skipped_because is None or len(block.skipped_because) > 10, block
