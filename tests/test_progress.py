"""Progress on stderr: `tag`'s bar over its files on a terminal only, the phases of `evaluate` and `bench`, and
whole lines for counted steps outside a terminal; stdout unchanged, and -q silences it all."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import sys

import pytest
from rich.console import Console

from streamtag.commands.progress import LogLines, Phases
from tests.conftest import REPO

CLIPS = ("gtzan/samples/jazz.00000.flac", "gtzan/samples/rock.00000.flac", "cc-audio/198-209-0000.ogg")
JSON_LINE = re.compile(r'\{"file": .*?"taste_source": "crowd"\}')


@pytest.fixture(autouse=True)
def empty_home(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMTAG_HOME", str(tmp_path / "home"))


def streamtag(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "streamtag", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout, check=False)


def streamtag_on_a_terminal(*args, stdout_too=False) -> tuple[int, str, str]:
    """Exit status, stdout and what reached the terminal, with stderr (and, ``stdout_too``, stdout) a pseudo
    terminal of 120 columns."""
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm", COLUMNS="120")
    proc = subprocess.Popen([sys.executable, "-m", "streamtag", *map(str, args)], stdin=subprocess.DEVNULL,
                            stdout=slave if stdout_too else subprocess.PIPE, stderr=slave, env=env, cwd=REPO)
    os.close(slave)
    screen = []
    while True:  # read as it comes: a full pseudo terminal would stop the process
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the process closed its end
            break
        if not chunk:
            break
        screen.append(chunk)
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    proc.wait(timeout=300)
    os.close(master)
    return proc.returncode, stdout, b"".join(screen).decode(errors="replace")


def _any_seconds(text: str) -> list[str]:
    """``text``'s lines with the times taken, which vary from run to run, as ``N``."""
    return [re.sub(r"\((\d+) s\)$", "(N s)", line) for line in text.splitlines()]


def test_tag_shows_files_done_and_the_current_file_on_a_terminal_and_nothing_in_a_pipe(data_dir):
    files = [data_dir / clip for clip in CLIPS]
    status, stdout, terminal = streamtag_on_a_terminal("tag", "--json", "--provider", "cpu", *files)
    assert status == 0, terminal
    assert "tagging" in terminal and "0/3" in terminal and "3/3" in terminal
    assert "jazz.00000.flac" in terminal  # the file being tagged
    piped = streamtag("tag", "--json", "--provider", "cpu", *files)
    assert piped.returncode == 0 and piped.stderr == ""  # no bar, no blank line, nothing
    assert stdout == piped.stdout  # the results are the same, byte for byte
    assert [json.loads(line)["file"] for line in stdout.splitlines()] == list(map(str, files))


def test_json_lines_on_the_same_terminal_come_out_whole_between_the_bar_redraws(data_dir):
    files = [data_dir / clip for clip in CLIPS]
    status, _, terminal = streamtag_on_a_terminal("tag", "--json", "--provider", "cpu", *files, stdout_too=True)
    assert status == 0, terminal
    # each line starts where the bar was erased (ESC[2K) and ends the line: never inside the bar's line
    whole = re.findall(r"\x1b\[2K(" + JSON_LINE.pattern + r")\r\n", terminal)
    assert [json.loads(line)["file"] for line in whole] == list(map(str, files))
    assert len(JSON_LINE.findall(terminal)) == 3


def test_no_bar_with_q_or_for_a_single_file(data_dir):
    files = [data_dir / clip for clip in CLIPS]
    status, stdout, terminal = streamtag_on_a_terminal("tag", "--json", "-q", "--provider", "cpu", *files)
    assert status == 0 and terminal == "" and len(stdout.splitlines()) == 3
    status, stdout, terminal = streamtag_on_a_terminal("tag", "--json", "--provider", "cpu", files[0])
    assert status == 0 and terminal == "" and json.loads(stdout)["file"] == str(files[0])


def test_an_undecodable_file_is_reported_above_the_bar_and_still_counted(data_dir, tmp_path):
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(b"\xff\xfb" + bytes(3000))
    jazz = data_dir / CLIPS[0]
    status, stdout, terminal = streamtag_on_a_terminal("tag", "--json", "--provider", "cpu", corrupt, jazz)
    assert status == 1
    assert "streamtag: error:" in terminal and "corrupt.mp3" in terminal and "2/2" in terminal
    assert [json.loads(line)["file"] for line in stdout.splitlines()] == [str(jazz)]


def test_log_lines_count_a_step_about_ten_times_and_at_its_end():
    out = io.StringIO()
    lines = LogLines(Console(file=out, width=20, soft_wrap=True), "log-mel cache of a long name", 25)
    for _ in range(25):
        lines.advance()
    printed = out.getvalue().splitlines()
    # every 2 steps (25 // 10), then the last; each a whole line even on a console narrower than it
    assert [re.match(r"log-mel cache of a long name: (\d+)/25 \(0 s\)$", line).group(1) for line in printed] == [
        str(n) for n in (*range(2, 25, 2), 25)]


def test_phases_say_what_they_do_outside_a_terminal_and_nothing_with_quiet(capsys):
    phases = Phases("bench", quiet=False)
    with phases.phase("offline speed", total=3) as advance:
        for _ in range(3):
            advance()
    with phases.phase("live latency (2 s)"):
        pass
    assert capsys.readouterr().err.splitlines() == [
        "bench: offline speed...", "bench: offline speed: 1/3 (0 s)", "bench: offline speed: 2/3 (0 s)",
        "bench: offline speed: 3/3 (0 s)", "bench: live latency (2 s)..."]
    quiet = Phases("bench", quiet=True)
    with quiet.phase("offline speed", total=3) as advance:
        advance()
    assert capsys.readouterr() == ("", "")


def test_evaluate_says_its_phases_on_stderr_and_nothing_with_q(data_dir, model_path, tmp_path):
    shipped = json.loads((REPO / "models/split-emotify.json").read_text())
    small = dict(shipped, test=shipped["test"][:3])
    (tmp_path / "split.json").write_text(json.dumps(small))
    args = ["evaluate", model_path, data_dir / "emotify", "--split", tmp_path / "split.json", "--out", tmp_path / "out"]
    result = streamtag(*args)
    assert result.returncode == 0, result.stderr
    assert _any_seconds(result.stderr) == [
        f"evaluate: loading {model_path} and {data_dir / 'emotify'}...",
        "evaluate: tagging 3 test tracks...",
        *(f"evaluate: tagging 3 test tracks: {n}/3 (N s)" for n in (1, 2, 3)),
        f"evaluate: writing the confusion matrix and metrics to {tmp_path / 'out'}...",
    ]
    assert "clip accuracy" in result.stdout and "evaluate:" not in result.stdout
    quiet = streamtag(*args, "-q")
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert quiet.stdout == result.stdout


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_bench_says_its_phases_on_stderr_and_keeps_stdout_json(data_dir):
    bird = data_dir / "cc-audio/456440__inspectorj__bird-whistling-robin-single-13.ogg"
    result = streamtag("bench", bird, "--json", "--live-s", "3", "--warmup-s", "1", timeout=220)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # stdout is the JSON alone
    assert report["frames_once"]["offline"]["files"] == 1
    offline = "bench: offline speed over 1 file(s), 4 thread/batch settings, both paths"
    assert _any_seconds(result.stderr) == [
        f"{offline}...", *(f"{offline}: {n}/4 (N s)" for n in (1, 2, 3, 4)),
        f"bench: single-stream windows/s on {bird.name}, both paths...",
        f"bench: live latency and CPU use: one `streamtag live` per path on {bird.name} for 3 s...",
    ]
