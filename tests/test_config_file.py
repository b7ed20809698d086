"""Defaults from the config file and the environment; the command line wins; bad files say what is wrong."""

from __future__ import annotations

import pytest

from streamtag.cli import _subparsers, build_parser
from streamtag.config_file import apply_defaults, config_path
from streamtag.errors import StreamtagError
from tests.conftest import ISOLATED_HOME


def _parse(argv, path, monkeypatch, **env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    parser = build_parser()
    apply_defaults(_subparsers(parser), path=path)
    return parser.parse_args(argv)


def test_the_file_sets_defaults_and_the_command_line_wins(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text('[tag]\nprovider = "cpu"\nhop = 3\n\n[live]\nno_taste = true\nws = "127.0.0.1:9000"\n')
    args = _parse(["tag", "a.flac"], path, monkeypatch)
    assert (args.provider, args.hop) == ("cpu", 3.0)  # the string "3" went through --hop's type
    assert _parse(["tag", "a.flac", "--provider", "auto"], path, monkeypatch).provider == "auto"
    live = _parse(["live"], path, monkeypatch)
    assert live.no_taste is True and live.ws == "127.0.0.1:9000"


def test_the_environment_overrides_the_file(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text('[live]\nsource = "mic"\n')
    args = _parse(["live"], path, monkeypatch, STREAMTAG_SOURCE="loopback", STREAMTAG_WS="127.0.0.1:9100")
    assert (args.source, args.ws) == ("loopback", "127.0.0.1:9100")
    assert _parse(["live", "--source", "demo"], path, monkeypatch, STREAMTAG_SOURCE="loopback").source == "demo"


@pytest.mark.parametrize("text, message", [
    ("[tagg]\nhop = 1\n", r"no command \[tagg\]; the commands are .*tag"),
    ('[tag]\nvolume = 3\n', r"\[tag\]: unknown settings \['volume'\]; the flags are .*hop"),
    ('[live]\nno_taste = "yes"\n', "no_taste is a flag without a value: write no_taste = true or false"),
    ("[tag\n", "cannot read the config file"),
    ('tag = 3\n', r"\[tag\] must be a table of flags"),
])
def test_a_bad_file_says_what_is_wrong(tmp_path, monkeypatch, text, message):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(StreamtagError, match=message):
        _parse(["tag", "x"], path, monkeypatch)


def test_the_config_lives_in_the_user_config_folder_and_tests_never_read_the_users(monkeypatch):
    monkeypatch.delenv("STREAMTAG_CONFIG", raising=False)
    assert config_path().is_relative_to(ISOLATED_HOME) and config_path().name == "config.toml"
    monkeypatch.setenv("STREAMTAG_CONFIG", "/somewhere/else.toml")
    assert str(config_path()) == "/somewhere/else.toml"
