"""Command-line entry point: argument parsing and dispatch only; the work lives in the command modules."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from streamtag import __version__
from streamtag.config_file import apply_defaults
from streamtag.errors import StreamtagError

# Subcommand modules under streamtag.commands, in the order `streamtag --help` lists them. A module whose
# imports fail (the [train] extra missing, say) is left out of the parser and reported when asked for.
_COMMANDS = ("live", "serve", "tag", "devices", "doctor", "taste", "train", "evaluate", "bench", "completion")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamtag", description="Live genre, mood and taste tags for music.")
    parser.add_argument("--version", action="version", version=f"streamtag {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log debug messages to stderr (also after the command: streamtag tag -v FILE)")
    parser.add_argument("-q", "--quiet", action="store_true", help="log errors only (also after the command)")
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


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The commands' parsers by name."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _add_unavailable(subparsers, name: str, exc: ModuleNotFoundError) -> None:
    """A subcommand whose optional dependency is missing still appears, and says how to install it."""
    sub = subparsers.add_parser(name, help=f"(needs: pip install 'streamtag[train]'; missing {exc.name})")

    def run(_args: argparse.Namespace) -> int:
        raise StreamtagError(
            f"'streamtag {name}' needs the training extra (missing module {exc.name!r}): "
            "pip install torch==2.13.0 && pip install 'streamtag[train]'"
        )

    sub.set_defaults(run=run)


# Accepted anywhere on the line, as people type them: before the command or after it (completion offers them
# after every command too).
VERBOSITY = {"-v": "verbose", "--verbose": "verbose", "-q": "quiet", "--quiet": "quiet"}


def _split_verbosity(argv: list[str]) -> tuple[list[str], set[str]]:
    """``argv`` without the verbosity flags (up to a ``--``), and which of them were given."""
    end = argv.index("--") if "--" in argv else len(argv)
    given = {VERBOSITY[a] for a in argv[:end] if a in VERBOSITY}
    return [a for a in argv[:end] if a not in VERBOSITY] + argv[end:], given


def main(argv: list[str] | None = None) -> int:
    # A file name that is not UTF-8 reaches Python with its odd bytes as surrogates: print them back as those
    # bytes, as ls does, in every locale (Python's default in a UTF-8 one is to raise).
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="surrogateescape")
    parser = build_parser()
    argv, verbosity = _split_verbosity(sys.argv[1:] if argv is None else list(argv))
    try:
        apply_defaults(_subparsers(parser))
    except StreamtagError as exc:
        print(f"streamtag: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if {"verbose", "quiet"} <= verbosity:
        parser.error("-v and -q say opposite things; give one")
    # The flags were taken out before parsing, so the parser's own values are always False: the commands read these
    # (-q also silences progress).
    args.verbose, args.quiet = "verbose" in verbosity, "quiet" in verbosity
    level = logging.DEBUG if "verbose" in verbosity else logging.ERROR if "quiet" in verbosity else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
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
    except BrokenPipeError:
        # The reader went away (`streamtag tag --json ... | head`): stop quietly, as other filters do. stdout is
        # pointed at /dev/null so that Python's own flush at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13  # SIGPIPE's status


if __name__ == "__main__":
    sys.exit(main())
