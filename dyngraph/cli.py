"""The ``dyngraph`` command (also ``python -m dyngraph``).

Subcommands live in the subpackages: each module in ``_COMMAND_MODULES`` exposes
``register(subparsers)``, which adds its subcommand(s) and sets ``func`` (called with the
parsed ``argparse.Namespace``; its return value is the exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from dyngraph.errors import DyngraphError

__all__ = ["main", "build_parser"]

_COMMAND_MODULES: tuple[str, ...] = (
    "dyngraph.datasets.cli",
    "dyngraph.train.cli",
    "dyngraph.traffic.cli",
    "dyngraph.bilevel.cli",
    "dyngraph.nas.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The ``dyngraph`` argument parser with every available subcommand registered.

    A subsystem whose module fails to import is skipped with a warning on stderr, so the
    other subcommands keep working.
    """
    from dyngraph import __version__

    parser = argparse.ArgumentParser(
        prog="dyngraph",
        description="Learning on graphs that change over time, and learned graph solvers.",
    )
    parser.add_argument("--version", action="version", version=f"dyngraph {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            # one broken subsystem must not take the whole command line down with it
            print(f"dyngraph: warning: subcommands of {name} unavailable ({e})",
                  file=sys.stderr)
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dyngraph`` console script.

    Args:
        argv: arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        The exit code: the subcommand's, 1 on a :class:`~dyngraph.errors.DyngraphError`
        (printed as one line), 2 when no subcommand was given.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except DyngraphError as e:
        print(f"dyngraph {args.command}: error: {e}", file=sys.stderr)
        return 1
