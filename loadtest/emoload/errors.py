"""The load test's own error, under the project's one root."""

from __future__ import annotations

from collections.abc import Mapping

from emoclient.errors import EmotritonError


class LoadTestError(EmotritonError):
    """The load test cannot run as asked (an option, the corpus, a missing dependency), or
    Locust itself failed."""


def require_positive(numbers: Mapping[str, float]) -> None:
    """LoadTestError naming the first of `numbers` (name → value) that is not positive."""
    for name, value in numbers.items():
        if value <= 0:
            raise LoadTestError(f"the {name} must be positive, not {value}")


class PeerUnavailableError(LoadTestError):
    """A peer `emotriton bench` compares with (perf_analyzer, infinity-emb) is not installed,
    cannot run, or answers wrongly: bench reports it skipped, with this reason."""
