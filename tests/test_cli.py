"""The command line's errors of use: one line naming the mistake, exit code 2, no traceback;
and each command reads only its own environment variables."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from emotrain import toy_models
from emotriton.cli import main, parse

from .conftest import EMOTRITON

UNREACHABLE = "127.0.0.1:9"  # the discard port: nothing answers there


def emotriton(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EMOTRITON, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=120
    )


def assert_one_line(code: int, stderr: str, says: str) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("emotriton: error: ")]
    assert len(errors) == 1 and says in errors[0], stderr
    assert stderr.rstrip().endswith(errors[0])  # the last word, nothing after it


def assert_usage_error(run: subprocess.CompletedProcess[str], says: str) -> None:
    assert_one_line(run.returncode, run.stderr, says)


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["classify", "--model", "x", "--threshold", "abc", "hi"], {}, "'abc' is not a number"),
        (["classify", "--model", "x", "--threshold", "joy=abc", "hi"], {}, "--threshold joy"),
        (["classify", "--model", "x", "--file", "missing.txt"], {}, "cannot read --file"),
        (["classify", "hi"], {}, "--model is required (or EMOTRITON_MODEL)"),
        (["classify", "--model", "x", "hi"], {"EMOTRITON_PROTOCOL": "udp"}, "choose from grpc"),
        (["classify", "--model", "x", "hi"], {"EMOTRITON_CLASSIFY_FORMAT": "yaml"}, "jsonl"),
        (["classify", "--model", "x", "hi"], {"EMOTRITON_CLASSIFY_TOP_K": "two"}, "valid int"),
        (["serve"], {"EMOTRITON_SERVE_GRPC_PORT": "abc"}, "EMOTRITON_SERVE_GRPC_PORT='abc'"),
        (["serve", "--grpc-tls-cert", "c.pem"], {}, "go together"),
        (["export", "x", "--name", "t"], {"EMOTRITON_EXPORT_DEVICE": "foo"}, "choose from auto"),
        (["export", "./no/such/model", "--name", "t"], {}, "no directory ./no/such/model"),
        (["export", "--name", "t"], {}, "export needs SOURCE and --name"),
        (["train-head", "--data", "d", "--out", "o"], {"EMOTRITON_TRAIN_HEAD_SEED": "x"}, "SEED"),
        (["eval", "--model", "m", "--data", "d"], {"EMOTRITON_URL": UNREACHABLE}, "not a dir"),
        (["classify", "--model", "m", "--url", UNREACHABLE, "hi"], {}, "no Triton server"),
        (["bench", "--model", "x", "--repository", "."], {}, ". has no model 'x'"),
        (["overload", "--model", "x", "--repository", "."], {}, ". has no model 'x'"),
    ],
)
def test_errors_of_use_are_one_line_and_exit_2(
    args, env, says, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(args)
    assert_one_line(code, capsys.readouterr().err, says)


def test_the_installed_command_prints_no_traceback() -> None:
    run = emotriton("classify", "--model", "x", "hi", EMOTRITON_CLASSIFY_TIMEOUT="soon")
    assert_usage_error(run, "EMOTRITON_CLASSIFY_TIMEOUT='soon'")


def test_a_bad_variable_of_one_command_leaves_the_others_alone() -> None:
    env = {"EMOTRITON_TRAIN_HEAD_SEED": "abc", "EMOTRITON_SERVE_REPOSITORY": "/srv/models"}
    assert emotriton("--help", **env).returncode == 0
    assert emotriton("classify", "--help", **env).returncode == 0
    run = emotriton("classify", "--model", "m", "--url", UNREACHABLE, "hi", **env)
    assert "no Triton server reachable" in run.stderr  # got as far as calling the server


def test_variables_are_per_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMOTRITON_SERVE_REPOSITORY", "/srv/models")
    monkeypatch.setenv("EMOTRITON_MODEL", "go_emotions")
    monkeypatch.setenv("EMOTRITON_CLASSIFY_THRESHOLD", "joy=0.2, anger=0.7")
    assert parse(["serve"]).repository == Path("/srv/models")
    loadtest = parse(["loadtest", "--url", "localhost:8001"])
    assert loadtest.repository is None and loadtest.model == "go_emotions"
    assert parse(["classify", "hi"]).threshold == ["joy=0.2", "anger=0.7"]
    assert parse(["classify", "--threshold", "0.3", "hi"]).threshold == ["0.3"]


def test_defaults_come_from_the_library() -> None:
    from emoexport.options import DEFAULT_TOLERANCE, ExportOptions
    from emotrain.settings import HeadSettings

    export = parse(["export", "x", "--name", "n"])
    assert export.tolerance == DEFAULT_TOLERANCE
    assert (
        export.max_batch_size == ExportOptions(name="n", repository=Path()).batching.max_batch_size
    )
    assert parse(["train-head", "--data", "d", "--out", "o"]).hidden == HeadSettings().hidden


@pytest.mark.e2e
def test_export_refuses_bad_thresholds_in_one_line(tmp_path: Path) -> None:
    model = toy_models.build("roberta-multilabel", tmp_path / "toy")
    run = emotriton(
        "export", str(model), "--name", "t", "--repository", str(tmp_path / "repo"),
        "--thresholds", "1.5",
    )  # fmt: skip
    assert_usage_error(run, "thresholds must lie in [0, 1]")
    assert not (tmp_path / "repo" / "t").exists()


def test_an_existing_export_is_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "repo" / "t_encoder").mkdir(parents=True)
    run = emotriton("export", "nowhere", "--name", "t", "--repository", str(tmp_path / "repo"))
    assert_usage_error(run, "t_encoder already in")
    assert "loading" not in run.stderr  # refused before the source was even looked at


@pytest.mark.parametrize("field", ["duration", "multiple", "rate", "timeout", "capacity_clients"])
def test_overload_refuses_numbers_that_are_not_positive(field: str) -> None:
    from emoload.errors import LoadTestError
    from emoload.overload import OverloadOptions

    with pytest.raises(LoadTestError, match="must be positive"):
        OverloadOptions("m", "", "", [], ["hi"], **{field: 0})
