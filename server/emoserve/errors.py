"""The local server's own error."""

from __future__ import annotations

from emoclient.errors import EmotritonError


class LauncherError(EmotritonError):
    """The local Triton server could not be started or stopped."""
