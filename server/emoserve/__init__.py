"""The local Triton server: the binary from nvidia-pytriton, with an assembled backend directory."""

from .launcher import Endpoints, GrpcTls, LocalServer, ServerError

__all__ = ["Endpoints", "GrpcTls", "LocalServer", "ServerError"]
