"""The `linnet` command: one argparse parser, one module per command group.

Each module in ``COMMAND_MODULES`` (``linnet/cli/<name>.py``) exposes ``register(subparsers)``, which adds
its sub-commands and sets ``func`` on each. Commands return an exit code (or None for 0).
"""

from __future__ import annotations

import argparse
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
    "sessions",
    "beam",
    "spark",
]


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
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
