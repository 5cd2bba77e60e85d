"""The toy ensemble the fault tests serve (tests/e2e/conftest.py's toy_repository and
toy_server), and client threads that keep classifying beside a fault: each request's start,
end and outcome."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from emoclient import Client
from emoserve import LocalServer

MODEL = "go_emotions"
TEXT = "I cannot believe how well this went, thank you!"
KEY = "test-admin-key-0123456789abcdef"  # toy_server's admin key


@dataclass
class Load:
    """Client threads classifying in a loop; each request's start, end and outcome."""

    url: str
    texts: list[str]
    expected: np.ndarray
    clients: int = 2
    protocol: str = "grpc"
    pause: float = 0.0  # seconds between a client's requests
    outcomes: list[tuple[float, float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(self.clients)]

    def _run(self) -> None:
        with Client(self.url, protocol=self.protocol) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    results = client.classify(self.texts, model=MODEL)
                    scores = np.array([list(result.scores.values()) for result in results])
                    outcome = "ok" if np.allclose(scores, self.expected, atol=1e-4) else "wrong"
                except Exception as error:  # every failure is counted, whatever its kind
                    outcome = f"failed: {error}"
                    time.sleep(0.05)
                self.outcomes.append((started, time.monotonic(), outcome))
                time.sleep(self.pause)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def failed(self) -> list[tuple[float, float, str]]:
        return [o for o in self.outcomes if o[2] != "ok"]

    def wrong(self) -> int:
        return sum(o[2] == "wrong" for o in self.outcomes)


def load_on(
    server: LocalServer,
    texts: list[str],
    clients: int = 2,
    protocol: str = "grpc",
    pause: float = 0.0,
) -> Load:
    with Client(server.endpoints.grpc_url) as client:
        results = client.classify(texts, model=MODEL)
    expected = np.array([list(result.scores.values()) for result in results])
    endpoints = server.endpoints
    url = endpoints.grpc_url if protocol == "grpc" else endpoints.http_url
    return Load(url, texts, expected, clients, protocol, pause)
