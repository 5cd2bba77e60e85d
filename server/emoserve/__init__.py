"""The local Triton server: the binary from nvidia-pytriton (or an installed Triton), supervised."""

from .admin import ADMIN_HEADER, ADMIN_KEY_VARIABLE
from .config import Endpoints, GrpcTls
from .errors import LauncherError
from .launcher import LocalServer
from .tracing import Tracing

__all__ = [
    "ADMIN_HEADER",
    "ADMIN_KEY_VARIABLE",
    "Endpoints",
    "GrpcTls",
    "LauncherError",
    "LocalServer",
    "Tracing",
]
