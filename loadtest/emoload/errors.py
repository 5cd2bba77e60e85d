"""The load test's own error, under the project's one root."""

from __future__ import annotations

from emoclient.errors import EmotritonError


class LoadTestError(EmotritonError):
    """The load test cannot run as asked (an option, the corpus, a missing dependency), or
    Locust itself failed."""
