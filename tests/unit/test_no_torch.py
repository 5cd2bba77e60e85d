"""The unit layer imports neither torch nor transformers, so that it runs in seconds where
neither is installed. Collecting it imports every unit module and conftest; tests/unit/
conftest.py also fails a unit-only session that imported them while running."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..support import ROOT

UNIT = Path(__file__).parent
COLLECT = f"""
import sys, pytest
code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", {str(UNIT)!r}])
print("heavy:", [name for name in ("torch", "transformers") if name in sys.modules])
sys.exit(code)
"""


def test_the_unit_layer_imports_no_torch(unit_session) -> None:
    if unit_session.alone and set(UNIT.glob("test_*.py")) <= unit_session.files:
        # This session collected, so imported, every unit module and nothing else.
        assert unit_session.heavy() == []
        return
    # Another session (the whole suite, or a part of tests/unit): collect tests/unit alone.
    run = subprocess.run(
        [sys.executable, "-c", COLLECT], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "heavy: []" in run.stdout.splitlines(), run.stdout
    assert "test_no_torch.py::test_the_unit_layer_imports_no_torch" in run.stdout
