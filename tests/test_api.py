"""The Python API: a file's windows, and a source's, as plain dicts that agree with `tag`."""

from __future__ import annotations

import asyncio

import pytest

import streamtag.api as st
from streamtag.core.tagger import Tagger
from streamtag.engine import Engine
from streamtag.tag_files import tag_file


def test_file_windows_are_the_windows_tag_averages(data_dir, model_path):
    clip = data_dir / "gtzan/samples/metal.00000.flac"
    windows = list(st.file_windows(clip, model=model_path, provider="cpu"))
    engine = Engine(model_path, provider="cpu")
    hop_s = engine.info.hop_s
    assert len(windows) == 1 + int((30.013 - 3.0) / hop_s)
    assert [round(w["start_s"], 4) for w in windows[:3]] == [0.0, round(hop_s, 4), round(2 * hop_s, 4)]
    assert windows[0]["end_s"] == pytest.approx(3.0)
    first = windows[0]
    assert set(first) == {"start_s", "end_s", "top", "state", "content", "genre", "taste", "moods", "tags",
                          "level_dbfs"}
    assert len(first["tags"]) == 50 and sum(first["genre"].values()) == pytest.approx(1.0, abs=1e-3)
    summary = tag_file(Tagger(engine), clip)
    for label, p in summary["genre"].items():
        assert sum(w["genre"][label] for w in windows) / len(windows) == pytest.approx(p, abs=1e-3)


def test_stream_windows_of_a_file_source_equal_the_file_windows(data_dir, model_path):
    clip = data_dir / "gtzan/samples/jazz.00000.flac"

    async def collect():
        return [w async for w in st.stream_windows(str(clip), model=model_path, provider="cpu", hop_s=1.5, fast=True)]

    streamed = asyncio.run(collect())
    offline = list(st.file_windows(clip, model=model_path, provider="cpu", hop_s=1.5))
    assert [w["start_s"] for w in streamed] == [w["start_s"] for w in offline] and len(streamed) == 18
    for a, b in zip(streamed, offline, strict=True):
        assert a["top"] == b["top"] and a["genre"]["classical"] == pytest.approx(b["genre"]["classical"], abs=1e-4)
