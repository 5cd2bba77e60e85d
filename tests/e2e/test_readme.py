"""Every code block of the README runs as printed, against a served toy model, so the docs
cannot drift from the code. A block that cannot run here (it needs the hub, Docker, a cluster,
or it is this test suite's own command) says why, in a comment on the line above it:
`<!-- not run by tests: REASON -->` (tests/unit/test_readme.py checks that each does)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from emoserve import ADMIN_KEY_VARIABLE, LocalServer

from ..support import ROOT, Block, readme_blocks

BLOCKS = readme_blocks()


def as_printed(code: str, server: LocalServer, json_api: str) -> str:
    """The block with the README's default addresses and repository pointing at the test
    server's (the session's toy models: go_emotions is a 28-label go_emotions classifier) and
    its JSON API's."""
    return (
        code.replace("localhost:8080", json_api.removeprefix("http://"))
        .replace("localhost:8001", server.endpoints.grpc_url)
        .replace("localhost:8000", server.endpoints.http_url)
        .replace('"model_repository"', f'"{server.config.repository}"')
    )


def commands_of(code: str) -> list[str]:
    """The shell commands of a bash block: its lines without comments, continuations joined."""
    joined = code.replace("\\\n", " ")
    lines = [line.split(" #", 1)[0].strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.skipped_because is None], ids=str)
def test_block_runs_as_printed(
    block: Block, server: LocalServer, json_api: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "EMOTRITON_URL": server.endpoints.grpc_url,
        ADMIN_KEY_VARIABLE: server.admin_key,
    }
    code = as_printed(block.code, server, json_api)
    if block.language == "python":
        script = tmp_path / "block.py"
        script.write_text(code)
        runs = [[sys.executable, str(script)]]
    else:
        runs = [["bash", "-c", command] for command in commands_of(code)]
    for argv in runs:
        run = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, f"{block}: {shlex.join(argv)}\n{run.stdout}\n{run.stderr}"
