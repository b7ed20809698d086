"""streamtag for other programs: scored windows from a source or a file, as plain dicts (docs/api.md).

    import asyncio, streamtag.api as st

    async def main():
        async for window in st.stream_windows("loopback", hop_s=0.5):
            print(window["end_s"], window["top"], window["taste"])

    for window in st.file_windows("song.flac"):
        print(window["start_s"], window["genre"]["rock"])

Each window: ``start_s``, ``end_s``, ``top``, ``genre`` {label: p}, ``taste`` (the personal profile's where there
is one and ``taste=True``, else the crowd's), ``moods`` {name: rate}, ``tags`` {name: p}, ``level_dbfs``. These are
each window's own scores, not smoothed as the feed's are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from streamtag.audio import iter_audio
from streamtag.core.tagger import Tagger, WindowScores, clip_summary
from streamtag.engine import Engine
from streamtag.sources.choice import SourceSpec, open_source


def _tagger(model: str | Path | None, provider: str, hop_s: float | None, taste: bool, *, threads: int) -> Tagger:
    from streamtag.taste.store import load_active_profile

    engine = Engine(model, provider=provider, threads=threads)
    profile = load_active_profile(engine.info) if taste else None
    return Tagger(engine, hop_samples=engine.info.hop_samples_for(hop_s), batch_size=1 if threads == 1 else 8,
                  taste_scorer=profile.scorer if profile is not None else None)


def _as_dict(window: WindowScores, tagger: Tagger) -> dict:
    info = tagger.info
    return {"start_s": window.start_sample / info.sample_rate, "end_s": window.end_sample / info.sample_rate,
            **clip_summary([window], info), "level_dbfs": window.level_dbfs}


async def stream_windows(
    source: str = "auto", *, model: str | Path | None = None, provider: str = "auto", hop_s: float = 0.5,
    taste: bool = True, device: str | None = None, rate: int | None = None, fast: bool = False,
) -> AsyncIterator[dict]:
    """Scored windows of a live source, as ``streamtag live --source`` takes it (mic, loopback, a file, a URL),
    one every hop. ``fast``: a file as fast as it decodes, not at real time."""
    tagger = _tagger(model, provider, hop_s, taste, threads=1)  # one stream at batch 1, as live runs it
    src = open_source(SourceSpec(source=source, device=device, rate=rate, fast=fast), out_rate=tagger.info.sample_rate)
    try:
        async for block in src.blocks():
            for window in tagger.feed(block):
                yield _as_dict(window, tagger)
        for window in tagger.finish():
            yield _as_dict(window, tagger)
    finally:
        src.close()


def file_windows(path: str | Path, *, model: str | Path | None = None, provider: str = "auto",
                 hop_s: float | None = None, taste: bool = True) -> Iterator[dict]:
    """Scored windows of a file, decoded block by block (memory stays bounded); ``hop_s`` None: the model's."""
    tagger = _tagger(model, provider, hop_s, taste, threads=0)
    for block in iter_audio(path, sample_rate=tagger.info.sample_rate):
        for window in tagger.feed(block):
            yield _as_dict(window, tagger)
    for window in tagger.finish():
        yield _as_dict(window, tagger)
