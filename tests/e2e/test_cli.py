"""The command line's errors of use in commands that load a model (export imports torch): one
line naming the mistake, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from emotrain import toy_models
from emotriton.cli import main

from ..support import EMOTRITON, assert_one_line


def emotriton(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EMOTRITON, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["export", "./no/such/model", "--name", "t"], "no directory ./no/such/model"),
        (["export", "--name", "t"], "export needs SOURCE and --name"),
    ],
)
def test_errors_of_use_are_one_line_and_exit_2(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(args)
    assert_one_line(code, capsys.readouterr().err, says)


def test_export_refuses_bad_thresholds_in_one_line(tmp_path: Path) -> None:
    model = toy_models.build("roberta-multilabel", tmp_path / "toy")
    run = emotriton(
        "export", str(model), "--name", "t", "--repository", str(tmp_path / "repo"),
        "--thresholds", "1.5",
    )  # fmt: skip
    assert_one_line(run.returncode, run.stderr, "thresholds must lie in [0, 1]")
    assert not (tmp_path / "repo" / "t").exists()


def test_an_existing_export_is_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "repo" / "t_encoder").mkdir(parents=True)
    run = emotriton("export", "nowhere", "--name", "t", "--repository", str(tmp_path / "repo"))
    assert_one_line(run.returncode, run.stderr, "t_encoder already in")
    assert "loading" not in run.stderr  # refused before the source was even looked at
