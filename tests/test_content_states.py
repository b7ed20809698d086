"""What is playing, on real recordings none of which the content head was fitted on (docs/content.md):
LibriSpeech speech, a whale, a dog and a bird from cc-audio, and music from GTZAN and cc-audio."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest

from streamtag.audio import load_audio
from streamtag.core.hops import HopProcessor
from streamtag.core.mqtt_payloads import state_payload
from streamtag.core.osc_messages import osc_messages
from streamtag.core.tagger import Tagger
from tests.conftest import REPO

SPEECH = "198-209-0000.ogg"
NOT_MUSIC = {SPEECH: "speech", "5703-47212-0000.ogg": "speech", "glacier-bay-humpback.ogg": "unsure",
             "pibble.ogg": "unsure", "456440__inspectorj__bird-whistling-robin-single-13.ogg": "unsure"}


@pytest.fixture(scope="module")
def engine(model_path):
    from streamtag.engine import Engine

    return Engine(model_path, provider="cpu", threads=1)


@pytest.fixture(autouse=True)
def empty_home(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMTAG_HOME", str(tmp_path / "home"))


def test_tag_does_not_call_speech_or_animals_music(data_dir):
    files = [data_dir / "cc-audio" / name for name in NOT_MUSIC] + [
        data_dir / "gtzan" / "samples" / f"{genre}.00000.flac" for genre in ("classical", "jazz", "metal")]
    result = subprocess.run([sys.executable, "-m", "streamtag", "tag", "--json", *map(str, files)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = {json.loads(line)["file"].rsplit("/", 1)[-1]: json.loads(line) for line in result.stdout.splitlines()}
    assert {name: lines[name]["state"] for name in NOT_MUSIC} == NOT_MUSIC
    for genre in ("classical", "jazz", "metal"):
        clip = lines[f"{genre}.00000.flac"]
        assert clip["state"] == "music" and clip["content"]["music"] > 0.8
    speech = lines[SPEECH]["content"]
    assert speech["speech"] > 0.9 and sum(speech.values()) == pytest.approx(1.0, abs=1e-3)
    table = subprocess.run([sys.executable, "-m", "streamtag", "tag", str(files[0])], capture_output=True, text=True,
                           timeout=300)
    assert "(speech)" in table.stdout


def test_live_messages_say_speech_and_claim_no_genre(data_dir, engine):
    """Hop by hop through the live path (Tagger, smoothing, messages): the feed's state, its schema, and what
    MQTT and OSC make of it."""
    validator = jsonschema.Draft202012Validator(json.loads((REPO / "docs" / "feed.schema.json").read_text()))
    hop = engine.info.hop_samples_for(0.5)
    tagger = Tagger(engine, hop_samples=hop)
    processor = HopProcessor(engine.info, hop_s=hop / engine.info.sample_rate)
    audio = load_audio(data_dir / "cc-audio" / SPEECH, sample_rate=engine.info.sample_rate)
    messages = [m for w in tagger.feed(audio) for m in processor.process(w, latency_ms=1.0)]
    scores = [m for m in messages if m["type"] == "scores"]
    for message in messages:
        validator.validate(message)
    assert {m["state"] for m in scores} == {"speech"} and {m["top"] for m in scores} == {None}
    assert all(m["genre"] for m in scores)  # the genres are still given, for apps that want them
    assert not [m for m in messages if m["type"] == "event"]  # no genre was ever shown, so none changed
    assert state_payload(scores[-1], mood_names=engine.info.mood_names)["state"] == "speech"
    sent = osc_messages(scores[-1], labels=engine.info.labels, mood_names=engine.info.mood_names)
    assert ("/streamtag/state", ["speech"]) in sent and "/streamtag/genre" not in [a for a, _ in sent]
