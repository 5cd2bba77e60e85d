"""Where a Triton installation's pieces live: the nvidia-pytriton wheel's, or an installed tree.

The wheel carries only the python backend. For it, a backend directory is assembled (the python
backend with the stub for the running interpreter) and `onnxruntime` is added as a Python-based
backend, so an unchanged `backend: "onnxruntime"` config serves here as it does in the NGC image.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import LauncherError

ONNXRUNTIME_BACKEND = Path(__file__).with_name("onnxruntime_backend.py")
# The Triton that nvidia-pytriton 0.7.0 (the pinned wheel) embeds; an installed tree says its own
# in TRITON_VERSION, as NGC's images do.
WHEEL_VERSION = (2, 51, 0)
VERSION_FILE = "TRITON_VERSION"
Version = tuple[int, ...]


@dataclass(frozen=True)
class TritonDistribution:
    """The nvidia-pytriton wheel's Triton (here and in CI), or an installed tree such as the NGC
    image's /opt/tritonserver (in containers)."""

    binary: Path
    libraries: Path
    backends: Path  # the python backend only (wheel), or every backend (installed tree)
    stub: Path | None = None  # the wheel's python backend stub for this interpreter
    version: Version = WHEEL_VERSION

    @property
    def caches(self) -> Path:
        """Where the cache libraries are (caches/local/libtritoncache_local.so)."""
        return self.binary.parent.parent / "caches"

    @classmethod
    def find(cls, home: Path | None = None) -> TritonDistribution:
        """The installed tree at `home`, or the wheel's when `home` is None."""
        if home is not None:
            found = cls(
                home / "bin" / "tritonserver",
                home / "lib",
                home / "backends",
                version=_installed_version(home),
            )
        else:
            found = cls._wheel()
        for path in (found.binary, found.backends, found.stub):
            if path is not None and not path.exists():
                raise LauncherError(f"no {path} in the Triton distribution")
        return found

    @classmethod
    def _wheel(cls) -> TritonDistribution:
        try:
            from pytriton.utils import distribution
        except ImportError as error:
            raise LauncherError(
                "the local server needs the nvidia-pytriton wheel: pip install 'emotriton[server]'"
                " (or --triton-home for an installed Triton)"
            ) from error
        root = distribution.get_root_module_path() / "tritonserver"
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        return cls(
            binary=root / "bin" / "tritonserver",
            libraries=distribution.get_libs_path(),
            backends=root / "backends",
            stub=distribution.get_stub_path(version),
        )

    def backend_directory(self, scratch: Path) -> Path:
        """An installed tree's own backends; for the wheel, a directory assembled under `scratch`
        with `python/` and the Python-based `onnxruntime/` backend."""
        if self.stub is None:
            return self.backends
        # Copies, not links: Triton refuses a backend library that resolves outside the folder.
        python = scratch / "python"
        python.mkdir(parents=True)
        for item in (self.backends / "python").iterdir():
            if item.is_file():
                shutil.copy2(item, python / item.name)
        shutil.copy2(self.stub, python / "triton_python_backend_stub")
        onnxruntime = scratch / "onnxruntime"
        onnxruntime.mkdir()
        shutil.copy2(ONNXRUNTIME_BACKEND, onnxruntime / "model.py")
        return scratch


def _installed_version(home: Path) -> Version:
    """The version in `home`'s TRITON_VERSION (2.51.0 where there is none: its flags only)."""
    try:
        text = (home / VERSION_FILE).read_text().strip()
    except OSError:
        return WHEEL_VERSION
    numbers = text.split("dev")[0].rstrip(".").split(".")
    try:
        return tuple(int(number) for number in numbers)
    except ValueError:
        raise LauncherError(f"{home / VERSION_FILE} holds {text!r}, not a version") from None
