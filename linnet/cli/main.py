"""The `linnet` command: one argparse parser, one module per command group.

Each module in ``COMMAND_MODULES`` (``linnet/cli/<name>.py``) exposes ``register(subparsers)``, which adds
its sub-commands and sets ``func`` on each. Commands return an exit code (or None for 0).
Every command also takes ``--verbose`` (TensorFlow's logs and warnings shown); without it, `linnet.cli.quiet`
keeps TensorFlow quiet. ``linnet --version`` prints the version.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys

from linnet.cli.quiet import quiet_tensorflow
from linnet.errors import LinnetError

COMMAND_MODULES = [
    "taxonomy",
    "data",
    "evaluate",
    "train",
    "embed",
    "export",
    "predict",
    "serve_client",
    "demo",
    "sessions",
    "beam",
    "spark",
]


_USER_FILE_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
                     errno.EISDIR, errno.ENAMETOOLONG}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linnet",
        description="Sort e-commerce products into a category tree.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}",
                        help="print the version and exit")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's C++ logs and warnings (hidden by default)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"linnet.cli.{name}").register(subparsers)
    for command in _leaf_parsers(parser):
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="show TensorFlow's C++ logs and warnings (hidden by default)")
    return parser


def _version() -> str:
    from linnet import __version__

    return __version__


def _leaf_parsers(parser: argparse.ArgumentParser):
    """Every parser that runs a command (those without sub-commands of their own), depth first. A command
    registered with a ``help`` line and no ``description`` gets the help line as its ``--help`` description."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                child.description = child.description or helps.get(name)
            for child in dict.fromkeys(action.choices.values()):  # aliases share one parser
                children = list(_leaf_parsers(child))
                yield from children or [child]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.verbose:
        quiet_tensorflow()
    try:
        code = args.func(args)
    except LinnetError as error:
        print(f"linnet {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as error:  # a read-only or full --out, a path through a file: the user's to fix
        if error.errno not in _USER_FILE_ERRORS:
            raise
        where = f" {error.filename}" if error.filename else ""
        print(f"linnet {args.command}: error: cannot write or read{where}: {error.strerror}", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
