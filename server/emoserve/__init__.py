"""The local Triton server: the binary from nvidia-pytriton, with an assembled backend directory."""

from .launcher import Endpoints, GrpcTls, LauncherError, LocalServer

__all__ = ["Endpoints", "GrpcTls", "LauncherError", "LocalServer"]
