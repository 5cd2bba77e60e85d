"""Export a Hugging Face classifier to Triton, serve a model repository, classify texts.

Every option can also be set by an environment variable, named in its help text and read only by
the command that runs (emotriton.settings). Subcommands import their heavy dependencies only when
they run, so `classify` works with the SDK alone.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from emoclient import EmotritonError

from .commands import Command, call, export, measure, serve, train
from .settings import Settings

COMMANDS: tuple[Command, ...] = (
    *export.COMMANDS,
    *train.COMMANDS,
    *call.COMMANDS,
    *serve.COMMANDS,
    *measure.COMMANDS,
)


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emotriton", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    for command in COMMANDS:
        subparser = commands.add_parser(
            command.name, help=command.help, description=command.description or command.help
        )
        command.options(subparser, settings.adder(subparser, command.name))
        subparser.set_defaults(command=command.name, run=command.run)
    return parser


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, completed from the running command's environment variables."""
    settings = Settings()
    args = build_parser(settings).parse_args(argv)
    settings.resolve(args.command, args)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 on success, 1 when the job ran and found failures, 2 on an error of use."""
    try:
        args = parse(argv)
        code: int = args.run(args)
        return code
    except EmotritonError as error:
        print(f"emotriton: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
