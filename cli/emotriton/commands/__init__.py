"""The subcommands, a module per group: export, serve, call (classify, eval), train (finetune,
train-head), measure (loadtest, bench, overload)."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

from ..settings import Add


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, what it says in --help, its options and what it runs."""

    name: str
    options: Callable[[argparse.ArgumentParser, Add], None]
    run: Callable[[argparse.Namespace], int]
    help: str
    description: str | None = None  # --help's paragraph; the help line when None


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def quiet_transformers() -> None:
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """SIGTERM ends a long-running command as Ctrl-C does: its cleanup runs."""
    signal.signal(signal.SIGTERM, _interrupt)
