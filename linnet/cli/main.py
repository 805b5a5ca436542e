"""The `linnet` command: one argparse parser, one module per command group.

Each module in ``COMMAND_MODULES`` (``linnet/cli/<name>.py``) exposes ``register(subparsers)``, which adds
its sub-commands and sets ``func`` on each. Commands return an exit code (or None for 0).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys

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
]


_USER_FILE_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
                     errno.EISDIR, errno.ENAMETOOLONG}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linnet",
        description="Sort e-commerce products into a category tree.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"linnet.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
