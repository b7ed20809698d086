"""`streamtag train` in a log (stderr not a terminal): the log-mel cache step and the long lines arrive whole."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_train_outside_a_terminal_logs_the_cache_step_as_whole_lines(gtzan_layout, data_dir, tmp_path):
    shutil.copytree(data_dir / "gtzan/splits", gtzan_layout / "splits")  # 3 clips for train, 5 for valid
    trained = subprocess.run(
        [sys.executable, "-m", "streamtag", "train", str(gtzan_layout), "--out", str(tmp_path / "run"),
         "--cache", str(tmp_path / "cache"), "--epochs", "1", "--device", "cpu"],
        capture_output=True, text=True, cwd=REPO, timeout=600, check=False,
    )
    assert trained.returncode == 0, trained.stderr
    lines = trained.stderr.splitlines()
    cache = [re.sub(r"\(\d+ s\)$", "(N s)", line) for line in lines if line.startswith("log-mel cache")]
    assert cache == [f"log-mel cache: {n}/8 (N s)" for n in range(1, 9)]
    # the header is longer than 80 columns, and stays one line in the log
    assert any(line.startswith("gtzan: 10 tracks") and line.endswith("(train 3, valid 5, test 2); device cpu")
               for line in lines), trained.stderr
    assert any(re.match(r"\* epoch   1  loss \d\.\d{3}  valid acc \d\.\d{3}  .*\(\d+ s\)$", line) for line in lines)
    assert "" not in lines  # no blank line where a bar would have been
