"""emoclient against nothing listening: both clients, both protocols, say the server is
unavailable and name its URL; a call of no texts sends nothing."""

from __future__ import annotations

import asyncio

import pytest

from emoclient import AsyncClient, Client, RetryPolicy, ServerUnavailableError
from emoserve.config import free_port

PROTOCOLS = ["grpc", "http"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stopped_server_raises_unavailable_naming_the_url(protocol: str) -> None:
    url = f"127.0.0.1:{free_port()}"
    quick = RetryPolicy(attempts=2, backoff=0.05)
    with (
        Client(url, protocol=protocol, retry=quick) as client,
        pytest.raises(ServerUnavailableError, match=url),
    ):
        client.classify("hello", model="go_emotions")

    async def run() -> None:
        async with AsyncClient(url, protocol=protocol, retry=quick) as client:
            await client.classify("hello", model="go_emotions")

    with pytest.raises(ServerUnavailableError, match=url):
        asyncio.run(run())


def test_empty_call_makes_no_request() -> None:
    with Client(f"127.0.0.1:{free_port()}") as nobody:  # nothing listens there
        assert nobody.classify([], model="anything") == []


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_server_down_names_the_url(protocol: str) -> None:
    url = f"127.0.0.1:{free_port()}"
    with (
        Client(url, protocol=protocol, timeout=5) as client,
        pytest.raises(ServerUnavailableError, match=url),
    ):
        client.classify("hello", model="go_emotions")
