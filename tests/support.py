"""What both test layers use: the project's paths and datasets, the installed command, its
one-line errors, the README's code blocks, the running processes, and Triton's side of the
Python models. Nothing here imports torch, transformers or a server."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import json_format, text_format
from google.protobuf.message import Message
from tritonclient.grpc import model_config_pb2 as mc

ROOT = Path(__file__).resolve().parents[1]  # the repository
EMOTRITON = [sys.executable, "-m", "emotriton"]  # the CLI, as installed
# The shared datasets (go_emotions, emotion), beside the repository unless told otherwise.
DATA = Path(os.environ.get("EMOTRITON_SHARED_DATA", ROOT.parent / "shared" / "data"))
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"no datasets at {DATA}")


# --- the command line's errors ----------------------------------------------------------------


def assert_one_line(code: int, stderr: str, says: str) -> None:
    """Exit code 2, and one `emotriton: error:` line that says `says`, last, no traceback."""
    assert code == 2, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("emotriton: error: ")]
    assert len(errors) == 1 and says in errors[0], stderr
    assert stderr.rstrip().endswith(errors[0])  # the last word, nothing after it


# --- processes --------------------------------------------------------------------------------


def processes_mentioning(text: str) -> list[str]:
    """Command lines of the running processes (this one aside) that contain `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in command:
            found.append(command)
    return found


# --- the README's code blocks -----------------------------------------------------------------

README = ROOT / "README.md"
NOT_RUN = re.compile(r"<!-- not run by tests: (.+?) -->")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)
RUNNABLE = {"python", "bash"}


@dataclass(frozen=True)
class Block:
    line: int
    language: str
    code: str
    skipped_because: str | None

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.language})"


def readme_blocks() -> list[Block]:
    """The README's python and bash blocks, each with the reason it is not run, if it says one
    (`<!-- not run by tests: REASON -->` on the line above it)."""
    text = README.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        language, code = match.group(1), match.group(2)
        if language not in RUNNABLE:
            continue  # output, diagrams, config excerpts
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        reason = NOT_RUN.search(before)
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(line, language, code, reason.group(1) if reason else None))
    return blocks


# --- Triton's side of the Python models (with tests/fake_pb_utils.py) --------------------------


def triton_args(model_directory: Path, config: mc.ModelConfig | None = None) -> dict[str, str]:
    """The `args` Triton passes to initialize(), from a config as export wrote it."""
    if config is None:
        config = text_format.Parse((model_directory / "config.pbtxt").read_text(), mc.ModelConfig())
    as_json = json_format.MessageToJson(config, preserving_proto_field_name=True)
    return {"model_config": as_json, "model_repository": str(model_directory), "model_version": "1"}


def texts_tensor(*texts: str | bytes) -> np.ndarray:
    """A BYTES tensor [n, 1], as the TEXT input arrives."""
    return np.array([[t.encode() if isinstance(t, str) else t] for t in texts], dtype=object)


# --- model configs across Triton versions ----------------------------------------------------

# Fields of tritonclient's ModelConfig (2.73) that Triton 2.51, the local server, does not know:
# a config that sets one loads on the production image and fails on 2.51 (protobuf's own diff of
# model_config.proto, r24.10 → r26.09).
NEWER_THAN_2_51 = frozenset(
    {("ModelConfig", "model_metrics"), ("ModelEnsembling", "max_inflight_requests")}
)


def fields_used(message: Message) -> set[tuple[str, str]]:
    """(message type, field name) of every field set anywhere in `message`."""
    used: set[tuple[str, str]] = set()
    pending = [message]
    while pending:
        current = pending.pop()
        for descriptor, value in current.ListFields():
            used.add((current.DESCRIPTOR.name, descriptor.name))
            if descriptor.message_type is None:
                continue
            if descriptor.message_type.GetOptions().map_entry:
                values = value.values()
                if descriptor.message_type.fields_by_name["value"].message_type is None:
                    continue
            else:
                values = value if descriptor.is_repeated else [value]
            pending.extend(values)
    return used
