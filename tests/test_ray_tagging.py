"""`streamtag tag --ray`: a real local Ray (2 CPUs) on real files gives what plain `tag --json` gives, file by file;
--out writes Parquet and --resume tags nothing twice; plain `tag` never imports ray."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="needs the [scale] extra: pip install 'streamtag[scale]'")
pq = pytest.importorskip("pyarrow.parquet")

from streamtag.cli import main  # noqa: E402

# Ray Data's own DataContext warns about its own deprecated fields whenever it copies itself.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")
RAY_CPUS = 2
TOLERANCE = 1e-4
SHORT_CLIP_S = 2.0  # under the model's 3 s window: one zero-padded window


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray for the module: starting it costs seconds, tagging ten clips less. Its one GPU is only a
    resource (no CUDA here): `auto` leaves it unused unless a test says CUDA is present."""
    ray.init(num_cpus=RAY_CPUS, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def library(data_dir, tmp_path_factory):
    """The ten GTZAN samples (a folder), a corrupt file and a 2 s clip at 44.1 kHz stereo (resampled, padded)."""
    import soundfile

    extra = tmp_path_factory.mktemp("extra")
    corrupt = extra / "corrupt.mp3"
    corrupt.write_bytes(b"\xff\xfb" + bytes(3000))
    audio, rate = soundfile.read(data_dir / "cc-audio/147793__setuniman__sweet-waltz-0i-22mi.ogg", dtype="float32")
    short = extra / "short.wav"
    soundfile.write(short, audio[: int(SHORT_CLIP_S * rate)], rate)
    samples = data_dir / "gtzan/samples"
    return {"folder": samples, "clips": sorted(samples.glob("*.flac")), "corrupt": corrupt, "short": short}


def run_cli(capsys, *args) -> tuple[int, list[dict], str]:
    code = main(["tag", *map(str, args)])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


@pytest.fixture(scope="module")
def plain(library):
    """Single-process `tag --json` on every file (the reference), and what it wrote to stderr."""
    files = [*library["clips"], library["corrupt"], library["short"]]
    proc = subprocess.run([sys.executable, "-m", "streamtag", "tag", "--json", *map(str, files)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr  # the corrupt file
    return {r["file"]: r for r in map(json.loads, proc.stdout.splitlines())}, proc.stderr


def assert_same_result(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    assert got["top"] == want["top"] and got["taste_source"] == want["taste_source"]
    assert got["state"] == want["state"]
    assert got["duration_s"] == want["duration_s"]
    assert abs(got["taste"] - want["taste"]) <= TOLERANCE
    for key in ("genre", "moods", "tags", "content"):
        assert list(got[key]) == list(want[key])
        assert np.abs(np.subtract(list(got[key].values()), list(want[key].values()))).max() <= TOLERANCE, key


def test_ray_gives_what_plain_tag_gives(ray_session, library, plain, capsys):
    expected, plain_stderr = plain
    code, records, err = run_cli(capsys, "--ray", library["folder"], library["corrupt"], library["short"])
    assert code == 1
    by_file = {r["file"]: r for r in records}
    assert len(by_file) == len(records) == 12
    corrupt = str(library["corrupt"])
    assert set(by_file) == set(expected) | {corrupt}
    for file, want in expected.items():
        assert_same_result(by_file[file], want)
    assert by_file[str(library["short"])]["duration_s"] == SHORT_CLIP_S
    # the error record says what `tag` says on stderr, and stderr says it too
    error = by_file[corrupt]
    assert set(error) == {"file", "error"} and "cannot decode" in error["error"]
    assert f"streamtag: error: {error['error']}" in plain_stderr
    assert err.strip() == f"streamtag: error: {error['error']}"  # nothing from Ray


def test_the_gpu_layout_gives_the_same(ray_session, library, plain, capsys, caplog, monkeypatch):
    """Decode tasks feeding an actor that holds the (here only nominal) GPU: the stages, their resources and
    the blocks handed over, end to end; the actor's onnxruntime falls back to the CPU, as `tag` would here."""
    from streamtag import ray_tagging

    monkeypatch.setattr(ray_tagging, "cuda_present", lambda: True)
    caplog.set_level("INFO", logger="streamtag.ray_tagging")
    expected, _ = plain
    code, records, _ = run_cli(capsys, "--ray", library["folder"], library["corrupt"], library["short"])
    assert "on 1 GPU actors" in caplog.text
    assert code == 1 and len(records) == 12
    by_file = {r["file"]: r for r in records}
    for file, want in expected.items():
        assert_same_result(by_file[file], want)
    assert "cannot decode" in by_file[str(library["corrupt"])]["error"]


def test_out_then_resume_tags_nothing_twice(ray_session, library, plain, tmp_path, capsys):
    expected, _ = plain
    out = tmp_path / "x.parquet"
    first = library["clips"][:3]
    code, records, _ = run_cli(capsys, "--ray", *first, library["corrupt"], "--out", out)
    assert code == 1 and len(records) == 4
    assert sorted(pq.read_table(out).column("file").to_pylist()) == sorted(map(str, [*first, library["corrupt"]]))

    code, records, err = run_cli(capsys, "--ray", library["folder"], library["corrupt"], "--out", out, "--resume")
    assert code == 1
    # only the files not yet tagged, and the corrupt one again (an error row is retried, and replaced)
    assert sorted(r["file"] for r in records) == sorted(map(str, [*library["clips"][3:], library["corrupt"]]))
    assert f"3 of 11 files are already in {out}" in err
    rows = pq.read_table(out).to_pylist()
    assert sorted(r["file"] for r in rows) == sorted(map(str, [*library["clips"], library["corrupt"]]))
    for row in rows:
        if row["file"] == str(library["corrupt"]):
            assert "cannot decode" in row["error"] and row["genre"] is None
            continue
        assert row["error"] is None
        assert_same_result({k: dict(v) if isinstance(v, list) else v for k, v in row.items() if k != "error"},
                           expected[row["file"]])

    code, records, err = run_cli(capsys, "--ray", library["folder"], "--out", out, "--resume")
    assert (code, records) == (0, []) and "10 of 10 files are already in" in err
    assert pq.read_table(out).num_rows == 11
    assert run_cli(capsys, "--ray", library["folder"], "--out", out)[0] == 2  # no silent overwrite


def test_the_decode_stage_feeds_the_same_blocks(library, model_path):
    """The GPU layout (decode tasks, then the actor) gives exactly what tag_file gives, on this machine's CPU."""
    from streamtag.core.tagger import Tagger
    from streamtag.engine import Engine
    from streamtag.ray_tagging import TagActor, TagJob, decode_files
    from streamtag.tag_files import tag_file

    engine = Engine(model_path, provider="cpu")
    job = TagJob(model=str(model_path), provider="cpu", hop_s=None, frontends=tuple(engine.info.streaming.frontends))
    files = [library["clips"][0], library["short"], library["corrupt"]]
    decoded = decode_files({"file": np.array(list(map(str, files)))}, sample_rate=engine.info.sample_rate)
    out = TagActor(job, gpu=False)({k: np.array(v, dtype=object) for k, v in decoded.items()})
    tagger = Tagger(engine)
    for file, line, failed in zip(files[:2], out["line"], out["failed"], strict=False):
        assert not failed
        assert json.loads(line) == tag_file(tagger, file) | {"taste_source": "crowd"}
    assert out["failed"][2] and "cannot decode" in json.loads(out["line"][2])["error"]


def test_a_terminal_gets_a_progress_bar_and_stdout_stays_json_lines(library):
    """stderr on a terminal (a pty), stdout in a pipe: the bar and the error on the one, only records on the other
    (rich's live display would route stdout through its own console, onto stderr, unless told not to)."""
    import os
    import pty
    import threading

    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the last writer has closed the terminal
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run([sys.executable, "-m", "streamtag", "tag", "--ray", str(library["folder"]),
                               str(library["corrupt"])], stdout=subprocess.PIPE, stderr=slave, text=True, timeout=180)
    finally:
        os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    terminal = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 1, terminal
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(records) == 11 and sum("error" in r for r in records) == 1
    assert "11/11" in terminal and "streamtag: error: " in terminal


def test_plain_tag_never_imports_ray(library):
    code = ("import sys\n"
            "import streamtag.commands.tag\n"
            "from streamtag.cli import main\n"
            f"assert main(['tag', '--json', {str(library['clips'][0])!r}]) == 0\n"
            "print(sorted(m for m in ('ray', 'pyarrow') if m in sys.modules), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "[]"


def test_without_ray_it_says_what_to_install(library):
    code = ("import sys; sys.modules['ray'] = None\n"
            "from streamtag.cli import main\n"
            f"sys.exit(main(['tag', '--ray', {str(library['folder'])!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "streamtag: error: tag --ray needs the [scale] extra" in proc.stderr
    assert "pip install 'streamtag[scale]'" in proc.stderr and "Traceback" not in proc.stderr


def test_the_ray_options_go_with_ray(library, tmp_path, capsys):
    code, _, err = run_cli(capsys, library["clips"][0], "--out", tmp_path / "x.parquet")
    assert code == 2 and "--ray-address, --out and --resume go with --ray" in err
    code, _, err = run_cli(capsys, "--ray", library["clips"][0], "--resume")
    assert code == 2 and "--resume continues an --out file" in err
