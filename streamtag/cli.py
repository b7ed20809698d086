"""Command-line entry point: argument parsing and dispatch only; the work lives in the command modules."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from streamtag import __version__
from streamtag.errors import StreamtagError

# Subcommand modules under streamtag.commands, in the order `streamtag --help` lists them. A module whose
# imports fail (the [train] extra missing, say) is left out of the parser and reported when asked for.
_COMMANDS = ("live", "serve", "tag", "devices", "taste", "train", "evaluate", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamtag", description="Live genre, mood and taste tags for music.")
    parser.add_argument("--version", action="version", version=f"streamtag {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"streamtag.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("streamtag.commands"):
                continue  # not written yet on this branch
            _add_unavailable(subparsers, name, exc)
            continue
        module.register(subparsers)
    return parser


def _add_unavailable(subparsers, name: str, exc: ModuleNotFoundError) -> None:
    """A subcommand whose optional dependency is missing still appears, and says how to install it."""
    sub = subparsers.add_parser(name, help=f"(needs: pip install 'streamtag[train]'; missing {exc.name})")

    def run(_args: argparse.Namespace) -> int:
        raise StreamtagError(
            f"'streamtag {name}' needs the training extra (missing module {exc.name!r}): "
            "pip install torch==2.13.0 && pip install 'streamtag[train]'"
        )

    sub.set_defaults(run=run)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except StreamtagError as exc:
        print(f"streamtag: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
