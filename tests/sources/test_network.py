"""The network source against real servers on 127.0.0.1: Icecast fed by ffmpeg (``icecast_server`` and
``icecast_feed`` in tests/conftest.py) and, for recordings served whole, Python's HTTP server with an HLS
playlist that ffmpeg wrote. Each failure is checked for its message and for ending in time."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import socket
import subprocess
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import av
import numpy as np
import pytest

from streamtag.audio import frame_samples, load_audio
from streamtag.core.tagger import Tagger, clip_summary
from streamtag.engine import Engine
from streamtag.errors import DeviceError, NetworkSourceError
from streamtag.sources.choice import SourceSpec, open_source
from streamtag.sources.files import FILE_BLOCK_S
from streamtag.sources.network import NetworkSource, is_stream_url

MODEL_RATE = 22050  # the shipped model's, and the GTZAN clips' own rate
METAL = "gtzan/samples/metal.00000.flac"  # the model has no doubt: "rock" in 17 of its 18 windows offline
ROCK = "gtzan/samples/rock.00000.flac"
LOUD_DBFS = -40.0  # the clips are far above this; silence would be far below

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def metal_mount(icecast_server, data_dir):
    """One mount for the tests that only read: it keeps playing between them."""
    mount = icecast_server.feed(data_dir / METAL)
    yield mount
    mount.stop()


def network_threads(source: NetworkSource) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"streamtag-network {source.shown_url}"]


async def take(source: NetworkSource, *, samples: int | None = None, wall_s: float | None = None):
    """Blocks until ``samples`` have come or ``wall_s`` has passed: (audio, seconds taken)."""
    started = time.monotonic()
    blocks = []
    async for block in source.blocks():
        blocks.append(block)
        if samples is not None and sum(map(len, blocks)) >= samples:
            break
        if wall_s is not None and time.monotonic() - started >= wall_s:
            break
    source.close()
    return np.concatenate(blocks), time.monotonic() - started


async def failure(source: NetworkSource) -> tuple[NetworkSourceError, float, int]:
    """What ``blocks()`` raised, how long after the start, and how many samples came before it."""
    started = time.monotonic()
    got = 0
    with pytest.raises(NetworkSourceError) as caught:
        async for block in source.blocks():
            got += len(block)
    return caught.value, time.monotonic() - started, got


def dbfs(audio: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(audio.astype(np.float64) ** 2)) + 1e-12))


# ---------------------------------------------------------------------------------------------------------------
# Pure parts


@pytest.mark.parametrize(("text", "expected"), [
    ("http://radio.example/live", True), ("HTTPS://radio.example/live.mp3", True), ("rtsp://cam.local/audio", True),
    ("rtmp://live.example/app/key", True), ("/music/list.m3u8", True), ("song.flac", False), ("-", False),
    ("mic", False), ("http.flac", False),
])
def test_which_sources_are_urls(text, expected):
    assert is_stream_url(text) is expected


def test_open_source_makes_a_network_source_without_connecting_and_hides_the_password():
    source = open_source(SourceSpec(source="http://user:secret@127.0.0.1:9/radio.ogg"), out_rate=MODEL_RATE)
    assert isinstance(source, NetworkSource) and source.kind == "network"
    assert source.description == "network: http://127.0.0.1:9/radio.ogg"  # port 9 is closed: nothing connected
    assert source.url == "http://user:secret@127.0.0.1:9/radio.ogg"
    assert issubclass(NetworkSourceError, DeviceError)  # the CLI and the server catch it as a device failure


@pytest.mark.parametrize(("values", "fmt", "layout", "expected"), [
    # packed: left, right, left, right; int16 full scale is 32768
    ([[0, 16384, -32768, 8192]], "s16", "stereo", [[0.0, 0.5], [-1.0, 0.25]]),
    # planar: one row per channel
    ([[0, 16384], [-32768, 8192]], "s16p", "stereo", [[0.0, -1.0], [0.5, 0.25]]),
    ([[128, 192, 0]], "u8", "mono", [[0.0], [0.5], [-1.0]]),  # unsigned: 128 is silence
    ([[1 << 30, -(1 << 31)]], "s32", "mono", [[0.5], [-1.0]]),
    ([[0.5, -0.25]], "fltp", "mono", [[0.5], [-0.25]]),
])
def test_frame_samples_by_hand(values, fmt, layout, expected):
    dtype = {"s16": np.int16, "s16p": np.int16, "u8": np.uint8, "s32": np.int32, "fltp": np.float32}[fmt]
    frame = av.AudioFrame.from_ndarray(np.array(values, dtype), format=fmt, layout=layout)
    samples = frame_samples(frame)
    assert samples.dtype == np.float32
    np.testing.assert_array_equal(samples, np.array(expected, np.float32))


# ---------------------------------------------------------------------------------------------------------------
# A live Icecast stream


@pytest.mark.slow
def test_blocks_arrive_at_the_out_rate_resampled(metal_mount):
    out_rate = 16000  # not the stream's 22050 Hz: soxr resamples on the decoder's thread
    source = NetworkSource(metal_mount.url, out_rate=out_rate)
    audio, elapsed_s = asyncio.run(take(source, wall_s=8.0))
    received_s = len(audio) / out_rate
    # The first audio comes a second or two after connecting (FFmpeg probes the stream, Ogg pages hold ~1 s),
    # then at the stream's pace; never more than the real time that passed plus the decoder's lead (buffer_s)
    assert 4.0 <= received_s <= elapsed_s + source.buffer_s + FILE_BLOCK_S, (received_s, elapsed_s)
    assert source.stats.in_rate == 22050
    # frames_in counts the stream's own frames: the delivered ones at 22050/16000, plus at most a block and a
    # Vorbis frame (2048) decoded but not handed over yet
    expected_in = len(audio) * 22050 / out_rate
    assert 0 <= source.stats.frames_in - expected_in <= FILE_BLOCK_S * 22050 + 2048 + 2
    assert dbfs(audio) > LOUD_DBFS
    assert source.stats.dropped_frames == 0


@pytest.mark.slow
def test_the_stream_is_tagged_as_the_recording_is_offline(metal_mount, data_dir, model_path):
    engine = Engine(model_path, provider="cpu")
    streamed, _ = asyncio.run(take(NetworkSource(metal_mount.url, out_rate=MODEL_RATE), samples=10 * MODEL_RATE))
    recording = load_audio(data_dir / METAL, sample_rate=MODEL_RATE)
    # Where in the loop the stream started: circular cross-correlation of one second (after Vorbis' first frames)
    # against the recording
    skip = 4096
    template = np.zeros(len(recording), np.float32)
    template[:MODEL_RATE] = streamed[skip : skip + MODEL_RATE]
    correlation = np.fft.irfft(np.fft.rfft(recording) * np.conj(np.fft.rfft(template)), n=len(recording))
    start = (int(np.argmax(correlation)) - skip) % len(recording)
    reference = np.resize(np.roll(recording, -start), len(streamed))  # the same stretch of the loop, from the file
    assert np.corrcoef(streamed[skip:], reference[skip:])[0, 1] > 0.95  # it is the same audio, aligned

    def tag(audio):
        tagger = Tagger(engine, hop_samples=engine.info.hop_samples_for(0.5))
        return tagger.feed(audio) + tagger.finish()

    live, offline = tag(streamed), tag(reference)
    assert len(live) == len(offline) >= 12  # 10 s: a 3 s window, then one every 0.511 s
    live_genre, offline_genre = np.array([w.genre for w in live]), np.array([w.genre for w in offline])
    # Vorbis at quality 6 moves a window's probabilities by up to ~0.09 and the clip's average by ~0.01
    assert np.abs(live_genre - offline_genre).max() < 0.15, np.abs(live_genre - offline_genre).max(axis=0)
    assert np.abs(live_genre.mean(axis=0) - offline_genre.mean(axis=0)).max() < 0.03
    assert clip_summary(live, engine.info)["top"] == clip_summary(offline, engine.info)["top"] == "rock"


@pytest.mark.slow
def test_a_consumer_that_falls_behind_loses_the_oldest_audio_and_never_holds_up_the_decoder(metal_mount):
    source = NetworkSource(metal_mount.url, out_rate=MODEL_RATE, buffer_s=0.5)
    received = 0

    async def slow_consumer():
        nonlocal received
        async for block in source.blocks():
            received += len(block)
            if received == len(block):
                frames_before = source.stats.frames_in
                await asyncio.sleep(3.0)  # holds the first block for 3 s while the stream goes on
                decoded_meanwhile = source.stats.frames_in - frames_before
            if received >= 4 * MODEL_RATE:
                break
        source.close()
        return decoded_meanwhile

    decoded_meanwhile = asyncio.run(slow_consumer())
    assert decoded_meanwhile >= 2.5 * MODEL_RATE  # the decoder went on at the stream's pace
    assert source.stats.dropped_frames >= 2.0 * MODEL_RATE  # the queue held 0.5 s; the rest of the 3 s was dropped
    capacity = int(np.ceil(0.5 / FILE_BLOCK_S))
    # every decoded frame was delivered, dropped, or is still queued or pending (at most the queue and a block)
    unaccounted = source.stats.frames_in - received - source.stats.dropped_frames
    assert 0 <= unaccounted <= (capacity + 2) * FILE_BLOCK_S * MODEL_RATE + 2048, unaccounted


# ---------------------------------------------------------------------------------------------------------------
# Failures: each a NetworkSourceError whose message says what happened and what to do


def test_a_missing_mount_is_a_404_at_once(icecast_server):
    url = icecast_server.url("no-such-mount.ogg")
    error, elapsed_s, got = asyncio.run(failure(NetworkSource(url, out_rate=MODEL_RATE)))
    assert str(error) == (
        f"{url}: the server answered 404 Not Found; check the address (an "
        "Icecast mount point is case-sensitive; the server's status page lists them)"
    )
    assert got == 0 and elapsed_s < 3.0


def test_a_closed_port_is_refused_at_once():
    with socket_bound_but_not_listening() as port:
        url = f"http://127.0.0.1:{port}/radio.ogg"
        error, elapsed_s, got = asyncio.run(failure(NetworkSource(url, out_rate=MODEL_RATE)))
    assert str(error) == (
        f"cannot reach {url} (Connection refused); check the address, that the server is up and that this "
        "machine is online"
    )
    assert got == 0 and elapsed_s < 3.0


def test_a_web_page_and_a_video_are_not_audio(icecast_server, served_folder):
    page = icecast_server.url("status.xsl")  # Icecast's own HTML status page
    error, elapsed_s, _ = asyncio.run(failure(NetworkSource(page, out_rate=MODEL_RATE)))
    assert str(error) == (
        f"{page}: not an audio stream (FFmpeg cannot read it as a media stream); give the address of the stream "
        "itself, not of a web page about it"
    )
    folder, base = served_folder
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=duration=1:size=64x48",
                    "-c:v", "mpeg4", str(folder / "video.mp4")], check=True, timeout=30)
    error, _, _ = asyncio.run(failure(NetworkSource(f"{base}/video.mp4", out_rate=MODEL_RATE)))
    assert "video.mp4: not an audio stream (it holds video)" in str(error)
    assert elapsed_s < 3.0


async def _error_after_a_second(source: NetworkSource, act) -> tuple[NetworkSourceError, float]:
    """Read ``source``; after its first second of audio, ``act()`` on its feeder. The error that ends ``blocks()``,
    and how long after ``act()`` it came."""
    acted_at = None
    got = 0
    with pytest.raises(NetworkSourceError) as caught:
        async for block in source.blocks():
            got += len(block)
            if acted_at is None and got >= MODEL_RATE:
                act()
                acted_at = time.monotonic()
    return caught.value, time.monotonic() - acted_at


@pytest.mark.slow
def test_a_killed_feeder_ends_blocks_with_an_error_at_once(icecast_feed, data_dir):
    mount = icecast_feed(data_dir / ROCK)
    source = NetworkSource(mount.url, out_rate=MODEL_RATE, read_timeout_s=5.0)
    # the source leaves: Icecast closes its listeners' connections
    error, after_kill_s = asyncio.run(_error_after_a_second(source, mount.feeder.kill))
    # What had arrived is delivered first; the end comes with the closed connection, before the read timeout
    assert after_kill_s < 5.0
    assert str(error).startswith(f"{mount.url}: the stream broke off after ")
    assert str(error).endswith("s (Input/output error); start again when it is back on the air")


@pytest.mark.slow
def test_a_stream_that_stops_sending_times_out(icecast_feed, data_dir):
    mount = icecast_feed(data_dir / ROCK)
    source = NetworkSource(mount.url, out_rate=MODEL_RATE, read_timeout_s=2.0)
    # connected, but silent: Icecast sends nothing more
    error, after_stop_s = asyncio.run(_error_after_a_second(source, lambda: mount.feeder.send_signal(signal.SIGSTOP)))
    assert str(error) == (
        f"{mount.url}: the stream stopped sending (nothing for 2 s); check that it is still on the air, then "
        "start again"
    )
    assert 1.5 <= after_stop_s < 2.0 + 3.0  # the read timeout, not Icecast's own 10 s source timeout


@pytest.mark.slow
def test_close_during_a_live_stream_stops_the_thread_promptly(metal_mount):
    source = NetworkSource(metal_mount.url, out_rate=MODEL_RATE)

    async def run():
        async def consume():
            return sum([len(block) async for block in source.blocks()])

        task = asyncio.create_task(consume())
        await asyncio.sleep(1.5)
        source.close()  # from another task, while the consumer waits for its next block
        return await asyncio.wait_for(task, 1.0)  # blocks() ends, without an error

    assert asyncio.run(run()) > 0
    deadline = time.monotonic() + 2.0  # the thread sees the stop at its next packet (Icecast sends pages, ~0.5 s)
    while network_threads(source) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert network_threads(source) == []


@pytest.mark.slow
def test_close_while_the_stream_is_stalled_ends_blocks_at_once_and_the_thread_at_the_read_timeout(icecast_feed,
                                                                                                 data_dir):
    mount = icecast_feed(data_dir / ROCK)
    source = NetworkSource(mount.url, out_rate=MODEL_RATE, read_timeout_s=3.0)

    async def run():
        got = 0

        async def consume():
            nonlocal got
            async for block in source.blocks():
                got += len(block)

        task = asyncio.create_task(consume())
        while got < MODEL_RATE:
            await asyncio.sleep(0.05)
        mount.feeder.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        await asyncio.sleep(1.0)  # the decoder is now blocked in a read that gets nothing
        closed = time.monotonic()
        source.close()
        await asyncio.wait_for(task, 0.5)  # the consumer is let go at once, with no error
        return stopped, closed, time.monotonic()

    stopped, closed, consumer_done = asyncio.run(run())
    assert consumer_done - closed < 0.5
    # The thread is inside FFmpeg's read, which only PyAV's read timeout (3 s) interrupts
    while network_threads(source) and time.monotonic() < stopped + 3.0 + 2.0:
        time.sleep(0.05)
    assert network_threads(source) == []


# ---------------------------------------------------------------------------------------------------------------
# A recording served whole: HLS (VOD) over plain HTTP


@pytest.fixture
def served_folder(tmp_path):
    """A folder served over HTTP on 127.0.0.1 (Python's ThreadingHTTPServer): (folder, base URL)."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_a_finished_hls_playlist_plays_at_real_time_pace_and_ends_normally(served_folder, data_dir):
    folder, base = served_folder
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-t", "6", "-i", str(data_dir / ROCK), "-c:a", "aac",
                    "-b:a", "96k", "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
                    str(folder / "rock.m3u8")], check=True, timeout=60)
    source = open_source(SourceSpec(source=f"{base}/rock.m3u8"), out_rate=MODEL_RATE)
    source.buffer_s = 2.0

    async def run():
        started = time.monotonic()
        blocks = [block async for block in source.blocks()]  # ends without an error: the playlist has an end
        return np.concatenate(blocks), time.monotonic() - started

    audio, elapsed_s = asyncio.run(run())
    # 6 s, padded by AAC to whole 1024-sample frames (6.04 s), ended by the playlist; the first 2 s at once
    # (buffer_s), the rest at the recording's pace
    assert 6.0 <= len(audio) / MODEL_RATE <= 6.1
    assert elapsed_s >= 6.0 - 2.0 - 0.5
    reference = load_audio(data_dir / ROCK, sample_rate=MODEL_RATE)[: 6 * MODEL_RATE]
    assert abs(dbfs(audio) - dbfs(reference)) < 1.0


@contextlib.contextmanager
def socket_bound_but_not_listening():
    """A port on 127.0.0.1 that nothing listens on (bound, so nothing else takes it meanwhile): refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
