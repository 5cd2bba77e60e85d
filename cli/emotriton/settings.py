"""The command line's one settings layer: every option of every command, from the command line,
an environment variable, or a default, in that order.

Each option may be set by EMOTRITON_<COMMAND>_<OPTION>, read only when its command runs; the
options that name the served model (--model, --url, --protocol) share one variable across the
commands that call a model. Defaults of library settings come from the library's dataclasses
(emoexport.options.option), so they have one source.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emoclient import DEFAULT_URLS, EmotritonError

MODEL_VARIABLE = "EMOTRITON_MODEL"
URL_VARIABLE = "EMOTRITON_URL"
PROTOCOL_VARIABLE = "EMOTRITON_PROTOCOL"
_BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


class UsageError(EmotritonError):
    """A command line or environment variable that cannot be used as it is."""


@dataclass(frozen=True)
class Setting:
    """An option that an environment variable may also set."""

    action: argparse.Action
    variable: str
    default: Any
    required: bool

    def resolve(self, args: argparse.Namespace) -> None:
        """Command line first, then the variable, then the default."""
        if getattr(args, self.action.dest) is not None:
            return
        raw = os.environ.get(self.variable)
        value = self.default if raw is None else self._parse(raw)
        if value is None and self.required:
            raise UsageError(f"{self.action.option_strings[0]} is required (or {self.variable})")
        setattr(args, self.action.dest, value)

    def _parse(self, raw: str) -> Any:
        if isinstance(self.action, argparse._StoreTrueAction):
            if raw.lower() not in _BOOLEANS:
                raise UsageError(f"{self.variable}={raw!r}: use one of {', '.join(_BOOLEANS)}")
            return _BOOLEANS[raw.lower()]
        if isinstance(self.action, argparse._AppendAction) or self.action.nargs == "+":
            return [self._convert(item.strip()) for item in raw.split(",") if item.strip()]
        return self._convert(raw)

    def _convert(self, raw: str) -> Any:
        try:
            value = (self.action.type or str)(raw)  # type: ignore[operator]
        except (TypeError, ValueError):
            kind = getattr(self.action.type, "__name__", "value")
            raise UsageError(f"{self.variable}={raw!r}: not a valid {kind}") from None
        if self.action.choices is not None and value not in self.action.choices:
            choices = ", ".join(map(str, self.action.choices))
            raise UsageError(f"{self.variable}={raw!r}: choose from {choices}")
        return value


Add = Callable[..., argparse.Action]


class Settings:
    """Every command's settings, registered as its options are added."""

    def __init__(self) -> None:
        self.by_command: dict[str, list[Setting]] = {}

    def adder(self, parser: argparse.ArgumentParser, command: str) -> Add:
        """`add_argument` for `command`'s options: each also reads a variable (`env` names a
        shared one), and shows it in its help."""
        registered = self.by_command.setdefault(command, [])

        def add(
            *flags: str,
            default: Any = None,
            required: bool = False,
            env: str | None = None,
            help: str = "",
            **options: Any,
        ) -> argparse.Action:
            dest = options.get("dest") or flags[-1].lstrip("-").replace("-", "_")
            variable = env or f"EMOTRITON_{command}_{dest}".upper().replace("-", "_")
            shown = " (required)" if required else ""
            if not required and default not in (None, False):
                shown = f" (default: {default})"
            action = parser.add_argument(
                *flags, default=None, help=f"{help}{shown} [env: {variable}]", **options
            )
            registered.append(Setting(action, variable, default, required))
            return action

        return add

    def resolve(self, command: str, args: argparse.Namespace) -> None:
        for setting in self.by_command[command]:
            setting.resolve(args)


def add_model(add: Add) -> None:
    add("--model", required=True, env=MODEL_VARIABLE, help="served ensemble name")


def add_connection(add: Add) -> None:
    """--model, --url and --protocol: the same options, and variables, in every command that
    talks to a served model."""
    add_model(add)
    add(
        "--url",
        env=URL_VARIABLE,
        help="server address, HOST:PORT (default: localhost:8001, or :8000 for http)",
    )
    add(
        "--protocol",
        choices=list(DEFAULT_URLS),
        default="grpc",
        env=PROTOCOL_VARIABLE,
        help="wire protocol",
    )


def default_of(owner: type, name: str) -> Any:
    """The default of dataclass field `name`: one source for the library and the CLI."""
    found = next(f for f in dataclasses.fields(owner) if f.name == name)
    if found.default_factory is not dataclasses.MISSING:
        return found.default_factory()
    return found.default


def add_fields(add: Add, settings: type) -> None:
    """An option for each field of a library dataclass that declares one (emoexport.options.
    option): its default is the field's, its help and type the field's metadata."""
    for each in dataclasses.fields(settings):
        if "help" in each.metadata:
            add("--" + each.name.replace("_", "-"), default=each.default, **each.metadata)


def from_options(settings: type, args: argparse.Namespace, **others: Any) -> Any:
    """A library dataclass from the options named as its fields (a field with no option keeps
    its default), and `others`."""
    names = {f.name for f in dataclasses.fields(settings)} - set(others)
    return settings(**others, **{name: getattr(args, name) for name in names if name in args})


def number(option: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{option}: {text!r} is not a number") from None
