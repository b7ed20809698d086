"""Defaults for every command's flags from a TOML file, and a few from the environment; the command line wins.

    ~/.config/streamtag/config.toml      (the platform's user config folder; $STREAMTAG_CONFIG names another)

    [live]                               # one table per command, keys are the flags without "--"
    source = "loopback"
    ws = "127.0.0.1:8765"
    mqtt = "mqtt://homeassistant.local/streamtag"
    no_taste = true                      # flags that take no value are true or false

    [tag]
    provider = "cpu"

Environment variables override the file for the settings a service most often changes: STREAMTAG_SOURCE,
STREAMTAG_DEVICE, STREAMTAG_MODEL and STREAMTAG_WS (for every command that has the flag).
"""

from __future__ import annotations

import argparse
import os
import tomllib
from pathlib import Path

from streamtag.errors import StreamtagError

CONFIG_ENV = "STREAMTAG_CONFIG"
# environment variable -> the flag's destination it sets
ENVIRONMENT = {"STREAMTAG_SOURCE": "source", "STREAMTAG_DEVICE": "device", "STREAMTAG_MODEL": "model",
               "STREAMTAG_WS": "ws"}


def config_path() -> Path:
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    from platformdirs import user_config_dir

    return Path(user_config_dir("streamtag")) / "config.toml"


def apply_defaults(subparsers: dict[str, argparse.ArgumentParser], *, path: Path | None = None) -> Path | None:
    """Set each command's defaults from the file at ``path`` (or ``config_path()``) and the environment; return
    the file read, or None where there is none. Unknown commands or keys are an error that lists the known ones."""
    path = path or config_path()
    tables = _read(path) if path.is_file() else {}
    for command, table in tables.items():
        if command not in subparsers:
            raise StreamtagError(f"{path}: no command [{command}]; the commands are {', '.join(sorted(subparsers))}")
        if not isinstance(table, dict):
            raise StreamtagError(f"{path}: [{command}] must be a table of flags, e.g. [{command}] provider = \"cpu\"")
        _set(subparsers[command], table, where=f"{path} [{command}]")
    for variable, dest in ENVIRONMENT.items():
        value = os.environ.get(variable)
        if value:
            for parser in subparsers.values():
                if dest in _dests(parser):
                    parser.set_defaults(**{dest: value})
    return path if tables else None


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise StreamtagError(f"{path}: cannot read the config file ({exc}); fix it, or move it away") from exc


def _dests(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {action.dest: action for action in parser._actions if action.option_strings and action.dest != "help"}


def _set(parser: argparse.ArgumentParser, table: dict, *, where: str) -> None:
    known = _dests(parser)
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise StreamtagError(f"{where}: unknown settings {unknown}; the flags are {', '.join(sorted(known))}")
    values = {}
    for key, value in table.items():
        action = known[key]
        if isinstance(action, argparse._StoreTrueAction) and not isinstance(value, bool):
            raise StreamtagError(f"{where}: {key} is a flag without a value: write {key} = true or false")
        # argparse converts a string default with the option's type (paths, numbers) as if it were typed
        values[key] = str(value) if action.type is not None and not isinstance(value, bool) else value
    parser.set_defaults(**values)
