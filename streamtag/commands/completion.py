"""`streamtag completion bash|zsh|fish`: a completion script for the shell, generated from the argument parser,
so the commands and flags it offers are the ones this streamtag has (docs/completion.md says where each goes).

The parser is read into a small tree (`command_tree`): each command's flags, what their values can be (the
parser's choices, the literal words of a metavar such as ``mic|loopback|demo|FILE``, or a path), its positionals
and its subcommands. Each shell's writer turns that tree into its own script.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from streamtag import __version__
from streamtag.cli import VERBOSITY, build_parser

SHELLS = ("bash", "zsh", "fish")
# Upper-case words in a metavar that say a path fits there.
_PATH_WORDS = ("FILE", "PATH", "DIR")


def register(subparsers) -> None:
    p = subparsers.add_parser("completion", help="print a completion script for bash, zsh or fish",
                              description="Print a shell completion script on stdout. Install it with e.g. "
                                          "streamtag completion bash > ~/.local/share/bash-completion/completions/"
                                          "streamtag (docs/completion.md has zsh and fish).")
    p.add_argument("shell", choices=SHELLS)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(script(build_parser(), args.shell))
    return 0


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    writer = {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell]
    header = f"# {shell} completion for streamtag {__version__}, written by `streamtag completion {shell}`\n"
    return writer(command_tree(parser), header)


@dataclass(frozen=True)
class Value:
    """What an option's value or a positional can be: literal words to offer, and whether a path fits."""

    words: tuple[str, ...] = ()
    files: bool = False


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    help: str
    value: Value | None  # None: a flag that takes no value
    repeats: bool = False


@dataclass
class Command:
    path: tuple[str, ...]  # () for streamtag itself, ("taste", "learn") for a subcommand's subcommand
    help: str = ""
    options: list[Option] = field(default_factory=list)
    positionals: list[tuple[str, Value, bool]] = field(default_factory=list)  # (name, value, takes several)
    commands: dict[str, Command] = field(default_factory=dict)

    def walk(self):
        yield self
        for sub in self.commands.values():
            yield from sub.walk()


def command_tree(parser: argparse.ArgumentParser) -> Command:
    """The parser as a tree of commands. The verbosity flags, which streamtag takes anywhere on the line, are
    offered after every command as well.

    A command with subcommands must take only plain flags: the writers find the command on the line by its
    words alone, and a flag's value that happened to be a subcommand's name would be taken for it."""
    root = _command(parser, (), "")
    for command in root.walk():
        valued = [o.flags[0] for o in command.options if command.commands and o.value is not None]
        if valued:
            raise ValueError(f"streamtag {' '.join(command.path)} has subcommands and flags with values "
                             f"({', '.join(valued)}): teach the completion writers to skip those values")
    verbosity = [o for o in root.options if set(o.flags) <= set(VERBOSITY)]
    for command in root.walk():
        if command is not root:
            command.options += verbosity
    return root


def _command(parser: argparse.ArgumentParser, path: tuple[str, ...], help_text: str) -> Command:
    command = Command(path, help_text)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                command.commands[name] = _command(sub, (*path, name), helps.get(name, ""))
        elif action.help == argparse.SUPPRESS:
            continue
        elif action.option_strings:
            value = None if action.nargs == 0 else _value(action)
            command.options.append(Option(tuple(action.option_strings), _short_help(action.help),
                                          value, isinstance(action, argparse._AppendAction)))
        else:
            name = action.metavar if isinstance(action.metavar, str) else action.dest
            command.positionals.append((name, _value(action), action.nargs in ("*", "+")))
    return command


def _value(action: argparse.Action) -> Value:
    if action.choices:
        return Value(words=tuple(map(str, action.choices)))
    metavar = action.metavar if isinstance(action.metavar, str) else ""
    words = tuple(w for w in metavar.split("|") if re.fullmatch(r"[a-z][a-z0-9-]*", w))
    files = action.type is Path or any(w in re.split(r"[^A-Z]+", metavar) for w in _PATH_WORDS)
    return Value(words, files)


def _short_help(text: str | None) -> str:
    """The first clause of a help text: what a completion menu has room for."""
    return re.split(r"; |\(", text or "", maxsplit=1)[0].strip()


def _arms(entries: dict[str, list[str]], *, indent: str) -> str:
    """``case`` arms for bash: each body once, after all the patterns that share it."""
    return "".join(f"{indent}{'|'.join(map(shlex.quote, patterns))}) {body} ;;\n" for body, patterns in entries.items())


def _bash(root: Command, header: str) -> str:
    """One function: it walks the words typed so far to find the (sub)command, then offers that command's
    flags, the values of the flag before the cursor, or its subcommands or positionals."""
    enters: dict[str, list[str]] = {}
    values: dict[str, list[str]] = {}
    flags: dict[str, list[str]] = {}
    positionals: dict[str, list[str]] = {}
    for command in root.walk():
        where = " ".join(command.path)
        for name, sub in command.commands.items():
            enters.setdefault(f"command={shlex.quote(' '.join(sub.path))}", []).append(f"{where}/{name}")
        for option in command.options:
            if option.value is not None:
                values.setdefault(_bash_offer(option.value), []).extend(f"{where}/{flag}" for flag in option.flags)
        flags.setdefault(f"words={shlex.quote(' '.join(f for o in command.options for f in o.flags))}", []).append(where)
        if command.commands:
            positionals.setdefault(f"words={shlex.quote(' '.join(command.commands))}", []).append(where)
        elif command.positionals:
            positionals.setdefault(_bash_offer(_merged(command.positionals)), []).append(where)
    return header + f"""_streamtag() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}} command="" words="" files=0 i
    # bash splits --flag=value into three words: --flag, = and value
    if [[ $cur == "=" ]]; then
        cur=""
    elif [[ $prev == "=" ]]; then
        prev=${{COMP_WORDS[COMP_CWORD-2]}}
    fi
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "$command/${{COMP_WORDS[i]}}" in
{_arms(enters, indent=" " * 12)}        esac
    done
    case "$command/$prev" in
{_arms(values, indent=" " * 8)}        *)
            if [[ $cur == -* ]]; then
                case "$command" in
{_arms(flags, indent=" " * 20)}                esac
            else
                case "$command" in
{_arms(positionals, indent=" " * 20)}                esac
            fi ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
    if ((files)); then
        compopt -o filenames 2>/dev/null  # slashes after folders, names quoted as needed
        local IFS=$'\\n'
        COMPREPLY+=($(compgen -f -- "$cur"))
    fi
}}
complete -F _streamtag streamtag
"""


def _bash_offer(value: Value) -> str:
    return f"words={shlex.quote(' '.join(value.words))} files={int(value.files)}"


def _merged(positionals: list[tuple[str, Value, bool]]) -> Value:
    """All of a command's positionals as one: bash's completer does not count which one the cursor is at."""
    return Value(tuple(w for _, v, _ in positionals for w in v.words), any(v.files for _, v, _ in positionals))


def _zsh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _zsh_function(path: tuple[str, ...]) -> str:
    return "_streamtag" + "".join("_" + re.sub(r"\W", "_", part) for part in path)


def _zsh_action(value: Value) -> str:
    if value.words and value.files:
        return "{compadd -- " + " ".join(value.words) + "; _files}"
    if value.words:
        return "(" + " ".join(value.words) + ")"
    return "_files" if value.files else " "


def _zsh_continued(words: list[str]) -> str:
    """``words`` one per line, as the continued lines of a call."""
    return "".join(f"\\\n        {word} " for word in words).rstrip()


def _zsh(root: Command, header: str) -> str:
    """One function per command, each an ``_arguments`` call; a command with subcommands hands the rest of the
    line to the chosen one's function, as zsh's own completions for git and docker do (``-A "-*"``: its own flags
    end at the subcommand, so that ``streamtag tag -v --j`` is the tag command's line)."""
    functions = []
    for command in root.walk():
        specs = []
        for option in command.options:
            described = re.sub(r"([\[\]\\])", r"\\\1", option.help)
            for flag in option.flags:
                spec = ("*" if option.repeats else "") + f"{flag}[{described}]"
                if option.value is not None:
                    spec += f":{flag.lstrip('-')}:{_zsh_action(option.value)}"
                specs.append(_zsh_quote(spec))
        name = _zsh_function(command.path)
        if command.commands:
            specs += ["': :->command'", "'*:: :->argument'"]
            listed = " ".join(_zsh_quote(f"{sub}:{_short_help(c.help)}") for sub, c in command.commands.items())
            dispatch = "".join(f"                {sub}) {_zsh_function(c.path)} ;;\n"
                               for sub, c in command.commands.items())
            body = f"""    local curcontext=$curcontext state line
    typeset -A opt_args
    _arguments -C -A "-*" -s {_zsh_continued(specs)}
    case $state in
        command)
            local -a commands=({listed})
            _describe -t commands command commands ;;
        argument)
            case $words[1] in
{dispatch}            esac ;;
    esac"""
        else:
            for positional, value, several in command.positionals:
                specs.append(_zsh_quote(f"{'*' if several else ''}:{positional}:{_zsh_action(value)}"))
            body = f"    _arguments -s {_zsh_continued(specs)}"
        functions.append(f"{name}() {{\n{body}\n}}\n")
    # compinit reads the #compdef line only as a file's first line
    return f"#compdef streamtag\n{header}\n" + "\n".join(functions) + '\n_streamtag "$@"\n'


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish(root: Command, header: str) -> str:
    """``complete`` lines, each under the condition that the line so far names its command: a helper walks the
    words typed, as the bash completer does, and says which (sub)command they are in."""
    enters = [f"            case {_fish_quote(' '.join(c.path[:-1]) + '/' + c.path[-1])}\n"
              f"                set command {_fish_quote(' '.join(c.path))}\n" for c in root.walk() if c.path]
    lines = [
        header.rstrip("\n"),
        "function __streamtag_command --description 'the streamtag command typed so far: \"\", tag, taste learn'",
        "    set -l command ''",
        "    set -l words (commandline -opc)",
        "    set -e words[1]",
        "    for word in $words",
        "        switch \"$command/$word\"",
        "".join(enters).rstrip("\n"),
        "        end",
        "    end",
        "    echo $command",
        "end",
        "function __streamtag_in --argument-names command",
        "    set -l typed (__streamtag_command)",
        "    test \"$typed\" = \"$command\"",
        "end",
        "complete -c streamtag -f",  # files only where a command takes them (below)
    ]
    for command in root.walk():
        where = f"-c streamtag -n {_fish_quote('__streamtag_in ' + shlex.quote(' '.join(command.path)))}"
        for name, sub in command.commands.items():
            lines.append(f"complete {where} -a {_fish_quote(name)} -d {_fish_quote(_short_help(sub.help))}")
        for option in command.options:
            spec = " ".join(f"-l {f[2:]}" if f.startswith("--") else f"-s {f[1:]}" if len(f) == 2 else f"-o {f[1:]}"
                            for f in option.flags)
            if option.value is not None:
                spec += " -r" + (" -F" if option.value.files else " -f")
                if option.value.words:
                    spec += f" -a {_fish_quote(' '.join(option.value.words))}"
            lines.append(f"complete {where} {spec} -d {_fish_quote(option.help)}")
        if not command.commands and command.positionals:
            value = _merged(command.positionals)
            words = f" -a {_fish_quote(' '.join(value.words))}" if value.words else ""
            lines.append(f"complete {where}{' -F' if value.files else ''}{words}")
    return "\n".join(lines) + "\n"
