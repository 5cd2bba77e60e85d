"""The python backend's shared-memory regions in /dev/shm: named after their launcher, readable by
the server's user only, and removed when their server is gone.

The backend names each region `<prefix><uuid>` (its `shm-region-prefix-name` setting) and sets
it to mode 0644 itself, whatever the umask; a region outlives a server killed with SIGKILL or
SIGSEGV. A prefix that holds the launcher's pid and start time tells whose region it is and
whether that launcher still runs.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from pathlib import Path

SHM = Path("/dev/shm")
_MARK = "emotriton"
_OWNED = re.compile(rf"^{_MARK}_(\d+)_(\d+)_")
_servers = itertools.count()


def _start_time(pid: int) -> str | None:
    """A process's start time in clock ticks since boot: with its pid, names it uniquely."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def new_prefix() -> str:
    """A region prefix for one server of this launcher."""
    return f"{_MARK}_{os.getpid()}_{_start_time(os.getpid())}_{next(_servers)}_"


def regions(prefix: str) -> list[Path]:
    return [path for path in SHM.glob(f"{prefix}*") if path.is_file()]


def restrict(prefix: str) -> None:
    """Mode 0600 on the regions of `prefix`: the texts the tokenizer holds are the server's."""
    for path in regions(prefix):
        with contextlib.suppress(OSError):
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)


def remove(prefix: str) -> None:
    for path in regions(prefix):
        with contextlib.suppress(OSError):
            path.unlink()


def remove_stale() -> list[Path]:
    """Remove the regions of launchers that no longer run (killed runs); what was removed."""
    removed = []
    for path in SHM.glob(f"{_MARK}_*"):
        owner = _OWNED.match(path.name)
        if owner and _start_time(int(owner.group(1))) != owner.group(2):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed
