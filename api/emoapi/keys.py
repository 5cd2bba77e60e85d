"""API keys for inference: the Bearer scheme, documented by OpenAPI as HTTP bearer security."""

from __future__ import annotations

import hmac
from collections.abc import Set

from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from .errors import ApiError


class ApiKeys(HTTPBearer):
    """A route dependency that refuses a request without one of `keys` (401, and a Bearer
    challenge); the comparison takes the same time whichever key a guess nearly matches."""

    def __init__(self, keys: Set[str]) -> None:
        super().__init__(auto_error=False, description="an API key, when the operator set keys")
        self.keys = keys

    async def __call__(self, request: HTTPConnection) -> HTTPAuthorizationCredentials:
        credentials = await super().__call__(request)
        if credentials is None or not any(
            hmac.compare_digest(credentials.credentials, key) for key in self.keys
        ):
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <one of the API keys>")
        return credentials
