"""The command line's errors of use: one line naming the mistake, exit code 2, no traceback;
and each command reads only its own environment variables. In-process, but for the installed
command itself; the errors of an export that loads a model are in tests/e2e/test_cli.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from emotriton.cli import main, parse
from emotriton.commands import measure

from ..support import EMOTRITON, assert_one_line

UNREACHABLE = "127.0.0.1:9"  # the discard port: nothing answers there


@pytest.fixture(autouse=True)
def no_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    """`bench` quiets transformers' logging before it reads the repository, which imports
    transformers; the unit layer imports neither it nor torch (tests/unit/conftest.py)."""
    monkeypatch.setattr(measure, "quiet_transformers", lambda: None)


def set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


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
        (["train-head", "--data", "d", "--out", "o"], {"EMOTRITON_TRAIN_HEAD_SEED": "x"}, "SEED"),
        (["eval", "--model", "m", "--data", "d"], {"EMOTRITON_URL": UNREACHABLE}, "not a dir"),
        (["classify", "--model", "m", "--url", UNREACHABLE, "hi"], {}, "no Triton server"),
        (["bench", "--model", "x", "--repository", "."], {}, ". has no model 'x'"),
        (["overload", "--model", "x", "--repository", "."], {}, ". has no model 'x'"),
        (["bench", "--repository", "."], {}, "--model is required (or EMOTRITON_MODEL)"),
        (["overload", "--repository", "."], {}, "--model is required (or EMOTRITON_MODEL)"),
        (["serve", "--repository", "."], {"EMOTRITON_ADMIN_KEY": "letmein"}, "use 24 or more"),
        (["serve", "--repository", "."], {"EMOTRITON_ADMIN_KEY": "k" * 30 + ":x"}, "only"),
        (["classify", "--model", "x", "--threshold", "1.5", "hi"], {}, "from 0 to 1"),
        (["api"], {}, "--model is required (or EMOTRITON_MODEL)"),
        (["api", "--model", "go"], {"EMOTRITON_API_KEYS": "short"}, "at least 24 characters"),
        (["api", "--model", "go", "--cors-origin", "*"], {}, "list the origins"),
        (["api", "--model", "go", "--api-keys-file", "missing.keys"], {}, "--api-keys-file"),
        (["serve", "--grpc-tls-cert", "c", "--grpc-tls-key", "k"], {}, "add --api-port 0"),
    ],
)
def test_errors_of_use_are_one_line_and_exit_2(
    args, env, says, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_env(monkeypatch, env)
    code = main(args)
    assert_one_line(code, capsys.readouterr().err, says)


def test_the_installed_command_prints_no_traceback() -> None:
    run = subprocess.run(
        [*EMOTRITON, "classify", "--model", "x", "hi"],
        capture_output=True,
        text=True,
        env={**os.environ, "EMOTRITON_CLASSIFY_TIMEOUT": "soon"},
        timeout=120,
    )
    assert_one_line(run.returncode, run.stderr, "EMOTRITON_CLASSIFY_TIMEOUT='soon'")


def test_a_bad_variable_of_one_command_leaves_the_others_alone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_env(monkeypatch, {"EMOTRITON_TRAIN_HEAD_SEED": "abc", "EMOTRITON_SERVE_REPOSITORY": "/srv"})
    for help_of in (["--help"], ["classify", "--help"]):
        with pytest.raises(SystemExit) as exited:
            main(help_of)
        assert exited.value.code == 0, help_of
    capsys.readouterr()
    assert main(["classify", "--model", "m", "--url", UNREACHABLE, "hi"]) == 2
    err = capsys.readouterr().err
    assert "no Triton server reachable" in err  # got as far as calling the server


def test_variables_are_per_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMOTRITON_SERVE_REPOSITORY", "/srv/models")
    monkeypatch.setenv("EMOTRITON_MODEL", "go_emotions")
    monkeypatch.setenv("EMOTRITON_CLASSIFY_THRESHOLD", "joy=0.2, anger=0.7")
    assert parse(["serve"]).repository == Path("/srv/models")
    loadtest = parse(["loadtest", "--url", "localhost:8001"])
    assert loadtest.repository is None and loadtest.model == "go_emotions"
    assert parse(["classify", "hi"]).threshold == ["joy=0.2", "anger=0.7"]
    assert parse(["classify", "--threshold", "0.3", "hi"]).threshold == ["0.3"]


@pytest.mark.parametrize("command", ["bench", "overload"])
def test_bench_and_overload_take_the_model_and_url_from_the_variables(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """EMOTRITON_MODEL and EMOTRITON_URL, as for every command that calls a served model: the
    measurement looks for that model in --repository (none here), not for model None."""
    monkeypatch.setenv("EMOTRITON_MODEL", "go_emotions")
    args = parse([command, "--repository", str(tmp_path)])
    assert args.model == "go_emotions" and args.url is None  # None: a local server
    monkeypatch.setenv("EMOTRITON_URL", UNREACHABLE)
    args = parse([command, "--repository", str(tmp_path)])
    assert args.url == UNREACHABLE and args.repository == tmp_path
    assert parse([command, "--repository", str(tmp_path), "--model", "m"]).model == "m"
    code = main([command, "--repository", str(tmp_path)])
    assert_one_line(code, capsys.readouterr().err, f"{tmp_path} has no model 'go_emotions'")


def test_defaults_come_from_the_library() -> None:
    from emoexport.options import DEFAULT_TOLERANCE, ExportOptions
    from emotrain.settings import HeadSettings

    export = parse(["export", "x", "--name", "n"])
    assert export.tolerance == DEFAULT_TOLERANCE
    assert (
        export.max_batch_size == ExportOptions(name="n", repository=Path()).batching.max_batch_size
    )
    assert parse(["train-head", "--data", "d", "--out", "o"]).hidden == HeadSettings().hidden


@pytest.mark.parametrize("field", ["duration", "multiple", "rate", "timeout", "capacity_clients"])
def test_overload_refuses_numbers_that_are_not_positive(field: str) -> None:
    from emoload.errors import LoadTestError
    from emoload.overload import OverloadOptions

    with pytest.raises(LoadTestError, match="must be positive"):
        OverloadOptions("m", "", "", [], ["hi"], **{field: 0})


def test_serve_waits_as_long_as_it_is_told() -> None:
    """A TensorRT engine build takes minutes: the pods' startup probe allows 10, and so may
    the launcher."""
    assert parse(["serve"]).startup_timeout == 180.0
    assert parse(["serve", "--startup-timeout", "600"]).startup_timeout == 600.0
