"""The packages' import lines: each job (export, serve, call, train, measure) may lean only on the
layers below it. The README's Development section draws the same picture."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "emoclient": ROOT / "client" / "emoclient",
    "emoexport": ROOT / "export" / "emoexport",
    "emoserve": ROOT / "server" / "emoserve",
    "emotrain": ROOT / "train" / "emotrain",
    "emoload": ROOT / "loadtest" / "emoload",
    "emotriton": ROOT / "cli" / "emotriton",
}
# What each package may import of the others. emoclient's contract and errors are the base every
# package shares; its clients are for the packages that call a server.
CONTRACT = {"emoclient", "emoclient.protocol", "emoclient.errors"}
ALLOWED = {
    "emoclient": set(),
    "emoexport": CONTRACT,
    "emoserve": CONTRACT,
    "emotrain": {"emoclient", "emoexport"},
    "emoload": {"emoclient", "emoexport", "emoserve"},
    "emotriton": set(PACKAGES),
}
# From `emoclient` itself, a package on the contract may take only these names.
CONTRACT_NAMES = {"protocol", "errors", "EmotritonError"}


def imports_of(path: Path) -> list[tuple[str, set[str]]]:
    """(module, names) for each absolute import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend((alias.name, set()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, {alias.name for alias in node.names}))
    return found


def crossings(package: str) -> list[str]:
    """Imports of `package` that cross a line the layering draws."""
    allowed = ALLOWED[package]
    wrong = []
    for path in sorted(PACKAGES[package].rglob("*.py")):
        for module, names in imports_of(path):
            top = module.split(".")[0]
            if top not in PACKAGES or top == package:
                continue
            on_contract_only = allowed == CONTRACT
            if top not in {m.split(".")[0] for m in allowed}:
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
            elif on_contract_only and (
                module not in CONTRACT or (module == "emoclient" and names - CONTRACT_NAMES)
            ):
                wrong.append(f"{path.relative_to(ROOT)} imports {module} {sorted(names)}")
    return wrong


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_follow_the_layers(package: str) -> None:
    assert crossings(package) == []


def test_the_check_catches_a_crossing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Export importing the client's Client is exactly what the layering forbids."""
    (tmp_path / "bad.py").write_text("from emoclient import Client\nimport emotrain\n")
    monkeypatch.setitem(PACKAGES, "emoexport", tmp_path)
    monkeypatch.setattr(
        "tests.test_layout.ROOT", tmp_path
    )  # report paths relative to the fake package
    assert crossings("emoexport") == [
        "bad.py imports emoclient ['Client']",
        "bad.py imports emotrain",
    ]
