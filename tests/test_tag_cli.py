"""`streamtag tag`: JSON lines on real files; an undecodable file is reported and the rest still tagged."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def empty_home(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMTAG_HOME", str(tmp_path / "home"))


def streamtag(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "streamtag", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_tag_json_on_real_files(data_dir, tmp_path):
    jazz = data_dir / "gtzan/samples/jazz.00000.flac"
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(b"\xff\xfb" + bytes(3000))
    waltz = data_dir / "cc-audio/147793__setuniman__sweet-waltz-0i-22mi.ogg"
    result = streamtag("tag", "--json", jazz, corrupt, waltz)
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(jazz), str(waltz)]
    assert "corrupt.mp3" in result.stderr and "cannot decode" in result.stderr
    jazz_tags = lines[0]
    assert jazz_tags["duration_s"] == pytest.approx(30.013, abs=0.01)
    assert set(jazz_tags) == {"file", "duration_s", "top", "state", "content", "genre", "taste", "moods", "tags",
                              "taste_source"}
    assert jazz_tags["taste_source"] == "crowd"  # STREAMTAG_HOME is empty: no personal profile
    assert sum(jazz_tags["genre"].values()) == pytest.approx(1.0, abs=1e-3)
    assert jazz_tags["top"] == max(jazz_tags["genre"], key=jazz_tags["genre"].get)
    assert len(jazz_tags["moods"]) == 9 and 0.0 <= jazz_tags["taste"] <= 1.0


def test_tag_matches_the_streaming_core(data_dir, model_path):
    from streamtag.audio import load_audio
    from streamtag.core.tagger import Tagger, clip_summary
    from streamtag.engine import Engine

    clip = data_dir / "gtzan/samples/classical.00000.flac"
    [line] = [json.loads(x) for x in streamtag("tag", "--json", clip).stdout.splitlines()]
    engine = Engine(model_path, provider="cpu")
    tagger = Tagger(engine)
    expected = clip_summary(tagger.feed(load_audio(clip, sample_rate=22050)) + tagger.finish(), engine.info)
    assert line["top"] == expected["top"]
    assert np.allclose(list(line["genre"].values()), list(expected["genre"].values()), atol=1e-3)


def test_table_output_names_each_file(data_dir):
    result = streamtag("tag", data_dir / "gtzan/samples/metal.00000.flac")
    assert result.returncode == 0
    assert "metal.00000.flac" in result.stdout and "taste" in result.stdout


def test_tag_uses_a_personal_profile_when_there_is_one(data_dir):
    classical = data_dir / "gtzan/samples/classical.00000.flac"
    metal = data_dir / "gtzan/samples/metal.00000.flac"
    learned = streamtag("taste", "learn", "--like", classical, "--dislike", metal)
    assert learned.returncode == 0, learned.stderr
    personal = [json.loads(x) for x in streamtag("tag", "--json", classical, metal).stdout.splitlines()]
    crowd = [json.loads(x) for x in streamtag("tag", "--json", "--no-taste", classical, metal).stdout.splitlines()]
    assert [r["taste_source"] for r in personal] == ["personal", "personal"]
    assert [r["taste_source"] for r in crowd] == ["crowd", "crowd"]
    assert personal[0]["taste"] > personal[1]["taste"]  # the liked file scores above the disliked one
    assert personal[0]["genre"] == crowd[0]["genre"]  # only taste changes


def test_a_file_of_nan_and_infinite_samples_is_tagged_with_a_warning(data_dir, tmp_path):
    import soundfile

    audio, rate = soundfile.read(data_dir / "gtzan/samples/jazz.00000.flac", dtype="float32")
    audio = audio[: 6 * rate].copy()
    audio[rate : rate + 100] = np.inf
    audio[2 * rate] = np.nan
    broken = tmp_path / "broken.wav"
    soundfile.write(broken, audio, rate, subtype="FLOAT")
    result = streamtag("tag", "--json", broken)
    assert result.returncode == 0, result.stderr
    assert f"{broken}: 101 samples were NaN or infinite and were read as silence" in result.stderr
    tagged = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert abs(sum(tagged["genre"].values()) - 1) < 1e-3


def test_tag_in_a_pipe_at_80_columns_shows_every_result_whole(data_dir, tmp_path):
    """A long file name squeezed every column to nothing, and two files of one name looked the same."""
    long = tmp_path / ("a-very-long-folder-name-" * 4) / "12.flac"
    other = tmp_path / "other" / "12.flac"
    for path in (long, other):
        path.parent.mkdir(parents=True)
        path.write_bytes((data_dir / "gtzan/samples/classical.00000.flac").read_bytes())
    result = subprocess.run([sys.executable, "-m", "streamtag", "tag", str(long), str(other)], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert str(long) in out.replace("\n", "") and str(other) in out  # whole paths, not base names
    for line in ("  classical  (classical ", "  moods ", "  tags "):
        assert out.count(line) == 2, out
    assert "…" not in out  # nothing is cut


def test_verbosity_flags_after_the_command_and_a_reader_that_leaves(data_dir):
    """-v/-q work after the command as before it; `tag --json | head` ends quietly (no BrokenPipe traceback)."""
    import subprocess
    import sys

    clip = str(data_dir / "gtzan/samples/jazz.00000.flac")
    base = [sys.executable, "-m", "streamtag.cli"]
    verbose = subprocess.run([*base, "tag", clip, "--json", "-v", "--provider", "cpu"], capture_output=True, text=True)
    assert verbose.returncode == 0 and "INFO streamtag.engine: model streamtag-crnn" in verbose.stderr
    quiet = subprocess.run([*base, "tag", clip, "--json", "-q", "--provider", "cpu"], capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stderr == "" and json.loads(quiet.stdout)["top"] == "classical"
    both = subprocess.run([*base, "tag", clip, "-v", "-q"], capture_output=True, text=True)
    assert both.returncode == 2 and "-v and -q say opposite things" in both.stderr
    files = [str(p) for p in sorted((data_dir / "gtzan/samples").glob("*.flac"))]
    pipeline = subprocess.run(" ".join([*base, "tag", *files, "--json", "--provider", "cpu", "| head -c 10"]),
                              shell=True, capture_output=True, text=True, executable="/bin/bash")
    assert pipeline.stdout == '{"file": "' and "Traceback" not in pipeline.stderr and "BrokenPipe" not in pipeline.stderr


def test_files_cut_short_are_tagged_with_a_warning_that_says_so(data_dir, tmp_path):
    """Found by an attack run: truncated files were tagged from whatever decoded, exit 0, without a word."""
    import subprocess
    import sys

    import soundfile

    audio, rate = soundfile.read(data_dir / "gtzan/samples/jazz.00000.flac", dtype="float32")
    whole = tmp_path / "whole.wav"
    soundfile.write(whole, audio, rate, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    out = subprocess.run([sys.executable, "-m", "streamtag.cli", "tag", str(cut), str(whole), "--json", "--provider",
                          "cpu"], capture_output=True, text=True)
    assert out.returncode == 0
    cut_record, whole_record = (json.loads(line) for line in out.stdout.splitlines())
    assert cut_record["duration_s"] == pytest.approx(10.0, abs=0.01) and "warning" not in whole_record
    assert cut_record["warning"] == ("cut short: its header promises 1323588 bytes of audio, the file holds 441166; "
                                     "only the 10.0 s that decoded are tagged")
    assert f"streamtag: warning: {cut}: cut short" in out.stderr


def test_a_file_whose_name_is_not_utf8_is_tagged_under_its_own_name(data_dir, tmp_path):
    path = tmp_path / os.fsdecode(b"caf\xe9 jazz.flac")  # a Latin-1 name: not UTF-8
    path.write_bytes((data_dir / "gtzan/samples/jazz.00000.flac").read_bytes())
    as_json = streamtag("tag", "--json", "--no-taste", path)
    assert as_json.returncode == 0, as_json.stderr
    (line,) = [json.loads(text) for text in as_json.stdout.splitlines()]
    assert os.fsencode(line["file"]) == os.fsencode(path)  # the same bytes, so a script can open it again
    # In the C locale Python prints such a name as its bytes; told its output is UTF-8, it would raise
    for told in ({"LC_ALL": "C"}, {"PYTHONIOENCODING": "utf-8"}):
        as_text = subprocess.run([sys.executable, "-m", "streamtag", "tag", "--no-taste", path], capture_output=True,
                                 env={**os.environ, **told}, timeout=300)
        assert as_text.returncode == 0, as_text.stderr
        assert b"caf\xe9 jazz.flac" in as_text.stdout and b"classical" in as_text.stdout  # its name as its bytes
