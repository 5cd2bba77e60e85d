"""The admin key: hard to guess, and unable to change the Triton flag it travels in; and the
API categories it locks."""

from __future__ import annotations

import pytest

from emoserve import LocalServer
from emoserve.admin import ADMIN_APIS, AdminApiError, admin_key, checked_key, restriction_flags


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("short", "has 5 characters: use 24 or more"),
        ("x" * 23, "use 24 or more"),
        ("a" * 30 + ":model-repository", "letters, digits and - _ . ~ only"),
        ("a" * 30 + ",logging", "only"),
        ("a" * 30 + "=b", "only"),
        ("a" * 30 + " b", "only"),
    ],
)
def test_weak_or_breaking_keys_are_refused(key: str, says: str, tmp_path) -> None:
    """A `:`, `,` or `=` would end the key early in `--http-restricted-api=<apis>:<h>=<key>`."""
    with pytest.raises(AdminApiError, match=says):
        checked_key(key)
    with pytest.raises(AdminApiError, match=says):
        LocalServer(tmp_path, admin_key=key)


def test_the_variable_is_checked_and_unset_means_random(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMOTRITON_ADMIN_KEY", "too-short")
    with pytest.raises(AdminApiError):
        admin_key()
    monkeypatch.setenv("EMOTRITON_ADMIN_KEY", "K" * 40)
    assert admin_key() == "K" * 40
    monkeypatch.delenv("EMOTRITON_ADMIN_KEY")
    first, second = admin_key(), admin_key()
    assert first != second and len(first) >= 24


def test_statistics_are_open_and_loading_is_locked() -> None:
    assert "statistics" not in ADMIN_APIS
    assert {"model-repository", "shared-memory", "logging", "trace"} == set(ADMIN_APIS)
    (http, grpc) = restriction_flags("k" * 24)
    assert http.startswith("--http-restricted-api=model-repository,")
    assert grpc.endswith(":emotriton-admin-key=" + "k" * 24)
