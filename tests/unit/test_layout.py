"""The packages' import lines: each job (export, serve, call, train, measure) may lean only on the
layers below it, and no module imports itself round a loop of others. The README's Development
section draws the same picture."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "emoapi": ROOT / "api" / "emoapi",
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
    "emoapi": {"emoclient", "emoserve"},  # a caller of the server, with its HTTP limits
    "emoclient": set(),
    "emoexport": CONTRACT,
    "emoserve": CONTRACT,
    "emotrain": {"emoclient", "emoexport"},
    "emoload": {"emoapi", "emoclient", "emoexport", "emoserve"},
    "emotriton": set(PACKAGES),
}
# From `emoclient` itself, a package on the contract may take only these names.
CONTRACT_NAMES = {"protocol", "errors", "EmotritonError"}


def module_name(path: Path, packages: dict[str, Path]) -> str:
    for package, folder in packages.items():
        if path.is_relative_to(folder):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise ValueError(f"{path} is in no package")


def imports_of(path: Path, module: str = "") -> list[tuple[str, set[str]]]:
    """(module, names) for each import in the file, relative ones resolved against `module`
    (the file's own dotted name), TYPE_CHECKING ones included."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend((alias.name, set()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.append((target, {alias.name for alias in node.names}))
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


def import_graph(packages: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the modules of `packages` it imports (`from p import m` counts p.m when m is a
    module of p)."""
    modules = {
        module_name(path, packages): path
        for folder in packages.values()
        for path in folder.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for target, names in imports_of(path, name):
            submodules = {f"{target}.{n}" for n in names if f"{target}.{n}" in modules}
            edges |= submodules
            if target in modules and target != name and (len(submodules) < len(names) or not names):
                edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import loops: each strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_follow_the_layers(package: str) -> None:
    assert crossings(package) == []


def test_the_check_catches_a_crossing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Export importing the client's Client is exactly what the layering forbids."""
    (tmp_path / "bad.py").write_text("from emoclient import Client\nimport emotrain\n")
    monkeypatch.setitem(PACKAGES, "emoexport", tmp_path)
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)  # paths relative to the fake package
    assert crossings("emoexport") == [
        "bad.py imports emoclient ['Client']",
        "bad.py imports emotrain",
    ]


def test_no_module_imports_itself_round_a_loop() -> None:
    assert cycles(import_graph(PACKAGES)) == []


def test_the_check_catches_a_loop_through_a_type_checking_import(tmp_path: Path) -> None:
    """The launcher and its supervisor once imported each other, one of them only for types."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "launcher.py").write_text("from .supervisor import Supervisor\n")
    (package / "supervisor.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .launcher import Server\n"
    )
    (package / "other.py").write_text("from . import launcher\n")
    assert cycles(import_graph({"pkg": package})) == [["pkg.launcher", "pkg.supervisor"]]


def test_the_launcher_stays_a_facade_over_its_parts() -> None:
    """Config, process, guards, admin and watchdog live in their own modules; LocalServer only
    composes them (it once was 284 lines doing all of it)."""
    launcher = ROOT / "server" / "emoserve" / "launcher.py"
    assert len(launcher.read_text().splitlines()) < 120
