"""`streamtag completion bash|zsh|fish`: the scripts complete commands, flags and their values in real shells,
and follow the parser (a new command or flag is offered without touching the generator)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys

import pytest

from streamtag.cli import build_parser
from streamtag.commands.completion import script
from tests.conftest import REPO

SUBCOMMANDS = ("live", "serve", "tag", "devices", "doctor", "taste", "train", "evaluate", "bench", "completion")


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory):
    """What `streamtag completion bash` prints, as a file."""
    out = subprocess.run([sys.executable, "-m", "streamtag", "completion", "bash"], capture_output=True, text=True,
                         cwd=REPO, timeout=120, check=True)
    path = tmp_path_factory.mktemp("completion") / "streamtag.bash"
    path.write_text(out.stdout)
    return path


def bash_completes(script_path, line: str, *, cwd=None) -> list[str]:
    """What bash offers at the end of ``line``: the words set up as readline does (``--flag=`` split at the
    ``=``, as COMP_WORDBREAKS splits it), then the function that `complete -p streamtag` names."""
    words = line.replace("=", " = ").split(" ")
    setup = (f"source {shlex.quote(str(script_path))}\n"
             f"COMP_LINE={shlex.quote(line)}; COMP_POINT=${{#COMP_LINE}}\n"
             f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
             "function=$(complete -p streamtag | sed -n 's/.*-F \\([^ ]*\\) .*/\\1/p')\n"
             '"$function" streamtag "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"\n'
             'printf "%s\\n" "${COMPREPLY[@]}"\n')
    out = subprocess.run(["bash", "--norc", "--noprofile", "-c", setup], capture_output=True, text=True, cwd=cwd,
                         timeout=30, check=True)
    return sorted(filter(None, out.stdout.splitlines()))


@pytest.mark.parametrize(("line", "offered"), [
    ("streamtag ta", ["tag", "taste"]),
    ("streamtag live --so", ["--source"]),
    ("streamtag live --source l", ["loopback"]),
    ("streamtag tag --provider ", ["auto", "cpu", "cuda"]),
    ("streamtag tag --provider=c", ["cpu", "cuda"]),
    ("streamtag evaluate --subset ", ["all", "test", "train", "valid"]),
    ("streamtag taste l", ["learn"]),
    ("streamtag taste learn --l", ["--like"]),
    ("streamtag -q tag --j", ["--json"]),
    ("streamtag tag -v --no", ["--no-taste"]),  # -v and -q are taken after the command too
    ("streamtag completion ", ["bash", "fish", "zsh"]),
    ("streamtag live --hop ", []),  # a number: nothing to offer, and no file names either
])
def test_bash_completes_commands_flags_and_their_values(bash_script, line, offered):
    assert bash_completes(bash_script, line) == offered


def test_bash_completes_file_names_where_a_path_goes(bash_script, tmp_path):
    (tmp_path / "song.flac").touch()
    (tmp_path / "music").mkdir()
    assert bash_completes(bash_script, "streamtag tag so", cwd=tmp_path) == ["song.flac"]
    assert bash_completes(bash_script, "streamtag taste learn --like m", cwd=tmp_path) == ["music"]
    assert bash_completes(bash_script, "streamtag live --source ", cwd=tmp_path) == [
        "demo", "loopback", "mic", "music", "song.flac"]
    assert bash_completes(bash_script, "streamtag s", cwd=tmp_path) == ["serve"]  # a command, not song.flac


def test_the_bash_script_registers_itself(bash_script):
    out = subprocess.run(["bash", "--norc", "-c", f"source {shlex.quote(str(bash_script))}; complete -p streamtag"],
                         capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == "complete -F _streamtag streamtag"


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_name_every_command_and_flag(shell):
    text = script(build_parser(), shell)
    flags = ("--source", "--live-s") if shell == "zsh" else ("-l source", "-l live-s")  # fish: -l for a long flag
    for name in (*SUBCOMMANDS, "learn", "rebuild", *flags, "auto cpu cuda", "mic loopback demo"):
        assert name in text, name
    if shell == "zsh":
        assert text.startswith("#compdef streamtag\n")  # compinit reads it only as the first line
        assert "'--source[what to tag]:source:{compadd -- mic loopback demo; _files}'" in text
    else:
        assert "-l provider -r -f -a 'auto cpu cuda' -d 'execution provider'" in text


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_script_is_valid_for_its_shell(shell, tmp_path):
    if not shutil.which(shell):
        pytest.skip(f"{shell} is not installed")
    path = tmp_path / f"streamtag.{shell}"
    path.write_text(script(build_parser(), shell))
    checked = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True, timeout=30,
                             check=False)
    assert checked.returncode == 0, checked.stderr


def test_fish_completes_commands_and_flags(tmp_path):
    if not shutil.which("fish"):
        pytest.skip("fish is not installed")
    path = tmp_path / "streamtag.fish"
    path.write_text(script(build_parser(), "fish"))

    def offered(line: str) -> list[str]:
        out = subprocess.run(["fish", "--no-config", "-c", f"source {path}; complete -C {shlex.quote(line)}"],
                             capture_output=True, text=True, timeout=30, check=True)
        return sorted(row.split("\t")[0] for row in out.stdout.splitlines())

    assert offered("streamtag ta") == ["tag", "taste"]
    assert offered("streamtag live --so") == ["--source"]
    assert offered("streamtag tag --provider ") == ["auto", "cpu", "cuda"]
    assert offered("streamtag taste learn --l") == ["--like"]


def test_a_command_added_to_the_parser_is_offered(tmp_path):
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    extra = subparsers.add_parser("export-all", help="a command that is not there yet")
    extra.add_argument("--format", choices=("csv", "json"))
    path = tmp_path / "streamtag.bash"
    path.write_text(script(parser, "bash"))
    assert bash_completes(path, "streamtag exp") == ["export-all"]
    assert bash_completes(path, "streamtag export-all --format ") == ["csv", "json"]


def test_a_command_with_subcommands_and_a_flag_with_a_value_is_refused():
    """The writers find the command from the words alone; such a flag's value could be read as a subcommand."""
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    subparsers.choices["taste"].add_argument("--profile")
    with pytest.raises(ValueError, match="streamtag taste has subcommands and flags with values \\(--profile\\)"):
        script(parser, "bash")
