"""The unit layer imports neither torch nor transformers. In a session of tests/unit alone, a
test after which either is imported errors (at collection: every test), and the session fails
if either was imported by its end, even when it only collected. tests/unit/test_no_torch.py
says so where a reader looks."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent
HEAVY = ("torch", "transformers")
_outside: list[str] = []  # tests collected outside tests/unit this session
_files: set[Path] = set()  # the files of the tests collected in tests/unit


def heavy_modules() -> list[str]:
    return [name for name in HEAVY if name in sys.modules]


def unit_only() -> bool:
    """Whether this session collected tests/unit alone: the end-to-end layer imports both."""
    return not _outside


@pytest.hookimpl(tryfirst=True)  # before `-m` or `-k` deselects any
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            _files.add(item.path)
        else:
            _outside.append(item.nodeid)


@dataclass(frozen=True)
class UnitSession:
    alone: bool  # this session collected tests/unit alone
    files: frozenset[Path]  # the test files it collected there

    @staticmethod
    def heavy() -> list[str]:
        return heavy_modules()


@pytest.fixture
def unit_session() -> UnitSession:
    """What this session collected, and imported so far."""
    return UnitSession(unit_only(), frozenset(_files))


@pytest.fixture(autouse=True)
def imports_no_torch() -> Iterator[None]:
    yield
    if unit_only():
        heavy = heavy_modules()
        assert not heavy, f"{', '.join(heavy)} imported (by this test, or at collection)"


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    if not session.items or not unit_only() or not (heavy := heavy_modules()):
        return
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
    message = f"tests/unit imported {', '.join(heavy)}: the unit layer must import neither"
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        print(message, file=sys.stderr)
    else:
        reporter.ensure_newline()
        reporter.write_line(message, red=True, bold=True)
