"""The launcher's pieces that need no server: an installed Triton tree is found, or refused
(tests/e2e/test_launcher.py starts and stops the real one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from emoserve import LauncherError
from emoserve.distribution import TritonDistribution


def test_an_installed_triton_runs_from_its_own_tree(tmp_path: Path) -> None:
    """`--triton-home` (the NGC image's /opt/tritonserver): its binary, libraries and own
    backends, with nothing assembled; an incomplete tree is refused."""
    home = tmp_path / "tritonserver"
    with pytest.raises(LauncherError, match="tritonserver"):
        TritonDistribution.find(home)
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "tritonserver").touch()
    (home / "backends" / "onnxruntime").mkdir(parents=True)
    found = TritonDistribution.find(home)
    assert found.libraries == home / "lib"
    assert found.backend_directory(tmp_path / "scratch") == home / "backends"
    assert not (tmp_path / "scratch").exists()
