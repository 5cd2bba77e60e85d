"""The load test's own error, under the project's one root."""

from __future__ import annotations

from emoclient.errors import EmotritonError


class LoadTestError(EmotritonError):
    """The load test cannot run as asked (an option, the corpus, a missing dependency), or
    Locust itself failed."""


class PeerUnavailableError(LoadTestError):
    """A peer `emotriton bench` compares with (perf_analyzer, infinity-emb) is not installed,
    cannot run, or answers wrongly: bench reports it skipped, with this reason."""
