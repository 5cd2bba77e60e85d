"""Who holds a listening port, read from /proc: the launcher serves only through ports its own
tritonserver holds."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from emoserve.ports import holders, raise_open_file_limit


def test_a_port_is_held_by_the_process_that_listens_on_it() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert holders(os.getpid(), [port]) == {port: "ours"}
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            assert holders(other.pid, [port]) == {port: "other"}  # a squatter's, not ours
        finally:
            other.kill()
            other.wait()
    assert holders(os.getpid(), [port]) == {port: "nobody"}  # closed: nobody listens


def test_a_port_bound_while_it_is_asked_about_is_not_taken_for_a_squatters(monkeypatch) -> None:
    """Triton binds its ports one after another while the launcher asks: a socket it binds
    just after its own sockets were read is "nobody" yet, never another process's."""
    import emoserve.ports

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    late = socket.socket()
    read_sockets = emoserve.ports.socket_inodes

    def then_bind(pid: int) -> set[int]:
        found = read_sockets(pid)
        late.bind(("127.0.0.1", port))
        late.listen()
        return found

    monkeypatch.setattr(emoserve.ports, "socket_inodes", then_bind)
    with late:
        assert holders(os.getpid(), [port]) == {port: "nobody"}
        monkeypatch.setattr(emoserve.ports, "socket_inodes", read_sockets)
        assert holders(os.getpid(), [port]) == {port: "ours"}


def test_the_open_file_limit_is_raised_to_the_hard_one() -> None:
    import resource

    limit = raise_open_file_limit()
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] in (limit, resource.RLIM_INFINITY)
    assert limit >= 1024


def test_ports_picked_together_are_different_and_none_is_promised_already() -> None:
    from emoserve.config import free_ports

    promised = free_ports(1)
    for _ in range(50):
        picked = free_ports(3, taken=promised)
        assert len(set(picked)) == 3 and not set(picked) & set(promised)


def test_endpoints_keep_the_ports_given_and_pick_free_ones_for_the_rest() -> None:
    from emoserve.config import Endpoints, free_port

    given = free_port()
    endpoints = Endpoints.picked("127.0.0.1", None, given, None)
    assert endpoints.grpc_port == given
    picked = {endpoints.http_port, endpoints.metrics_port}
    assert len(picked) == 2 and given not in picked and 0 not in picked
