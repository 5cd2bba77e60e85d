"""Which process listens on a TCP port, from /proc: the launcher trusts a port only once the
tritonserver it started holds it.

A port picked free is bound by Triton a moment later, and any local user can take it in between:
Triton then fails to bind it, but whoever holds it would have received the launcher's readiness
question, its admin calls (with the key), and clients' texts. Asking the kernel who owns the
listening socket closes that door.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column
_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


def listening_inodes(port: int) -> set[int]:
    """The socket inodes listening on `port`, any address."""
    found: set[int] = set()
    for table in _TABLES:
        try:
            rows = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            if state == _LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                found.add(inode)
    return found


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets process `pid` holds open."""
    found: set[int] = set()
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return found
    for descriptor in descriptors:
        try:
            target = os.readlink(descriptor)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found


def holders(pid: int, ports: list[int]) -> dict[int, str]:
    """Each of `ports`: "ours" where `pid` listens on it, "other" where only another process
    does, "nobody" where none does yet.

    The listening sockets are read before the process's own: a socket `pid` binds between the
    two readings is then "nobody" (asked again later), never a socket it does not hold."""
    listening = {port: listening_inodes(port) for port in ports}
    owned = socket_inodes(pid)
    return {
        port: "ours" if inodes & owned else ("other" if inodes else "nobody")
        for port, inodes in listening.items()
    }


def raise_open_file_limit() -> int:
    """The soft limit on open files raised to the hard one (the usual 1,024 is exhausted by a
    few hundred idle clients of the guards); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard if hard != resource.RLIM_INFINITY else 1 << 20
