"""What ``streamtag live`` shows: a rich terminal display with keys, or one line per hop for pipes and logs.

Both take the feed's own messages (``hello``, ``scores``, ``event``; see docs/feed.md), so what a person sees and
what a program reads cannot disagree. Neither does any tagging; ``live.py`` calls ``show()`` once per hop.

The terminal display redraws 4 times a second from the newest state (rich ``Live`` on its own thread reads it);
keys are read without waiting for Enter: ``q`` quits, ``g``/``b`` label what plays now as liked/disliked through
the ``on_label`` callback, whose answer is shown for a few seconds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from streamtag.core.messages import DISLIKE, LIKE
from streamtag.core.stats import PipelineStats

REFRESH_PER_S = 4
TIMELINE_CELLS = 60
TIMELINE_CELL_S = 3.0  # 60 cells of 3 s: the last 3 minutes
BAR_WIDTH = 30
LEVEL_FLOOR_DBFS = -60.0
NOTICE_S = 4.0
LINE_TAGS = 3  # of the feed's top tags, what fits at the end of a line
# What the panel says while no genre is shown (core/smoothing.py's states).
STATE_WORDS = {"speech": "speech: not music", "unsure": "unsure: no genre here fits what plays"}


class Display:
    """The interface ``live.py`` drives."""

    def start(self, hello: dict[str, Any]) -> None: ...

    def show(self, message: dict[str, Any], stats: PipelineStats) -> None: ...

    def notify(self, text: str) -> None: ...

    def stop(self) -> None: ...


class LineDisplay(Display):
    """One line per hop on stdout: readable text, or the feed's messages as JSON lines (``--json``)."""

    def __init__(
        self, *, as_json: bool = False, stream: TextIO | None = None, on_closed: Callable[[], None] | None = None
    ) -> None:
        self.as_json = as_json
        self.stream = stream or sys.stdout
        self.on_closed = on_closed  # called once when the reader of the output goes away

    def _write(self, line: str) -> None:
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except BrokenPipeError:  # `streamtag live | head -5`: the reader left
            devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
            if self.stream is sys.stdout:  # or Python reports the pipe again when it flushes stdout at exit
                with contextlib.suppress(OSError, ValueError):
                    os.dup2(devnull.fileno(), sys.stdout.fileno())
            self.stream = devnull
            if self.on_closed is not None:
                self.on_closed()

    def start(self, hello: dict[str, Any]) -> None:
        if self.as_json:
            self._write(json.dumps(hello, separators=(",", ":")))

    def show(self, message: dict[str, Any], stats: PipelineStats) -> None:
        if self.as_json:
            self._write(json.dumps(message, separators=(",", ":")))
            return
        if message["type"] != "scores":
            return
        self._write(format_line(message))

    def notify(self, text: str) -> None:
        if self.as_json:
            self._write(json.dumps({"type": "notice", "message": text}))
        else:
            print(f"streamtag: {text}", file=sys.stderr)


def format_line(message: dict[str, Any]) -> str:
    """``   12.5s  rock        0.62  (pop 0.21, electronic 0.10)  taste 0.55  -18.3 dBFS   4.1 ms``

    A model with tags appends the top ones (``  tags rock 0.62, indie 0.41, guitar 0.30``): at the end, so that the
    columns before them stay where they are for every model.
    """
    head = f"{message['t']:8.1f}s  "
    tail = f"{message['level_dbfs']:6.1f} dBFS  {message['latency_ms']:5.1f} ms"
    if message["silent"]:
        return head + f"{'(silent)':<12} {'':<40}" + tail
    ranked = sorted(message["genre"].items(), key=lambda kv: -kv[1])
    top = message["top"]
    taste = message["taste"]
    if top is None:  # speech, or unsure: no genre is claimed; the three likeliest are still given
        others = ", ".join(f"{label} {p:.2f}" for label, p in ranked[:3])
        line = head + f"{'(' + message.get('state', 'unsure') + ')':<12}       ({others})  taste {taste:.2f}  " + tail
    else:
        others = ", ".join(f"{label} {p:.2f}" for label, p in ranked[:4] if label != top)  # the next three
        line = head + f"{top:<12} {message['genre'][top]:.2f}  ({others})  taste {taste:.2f}  " + tail
    if message["tags"]:
        line += "  tags " + _tag_list(message["tags"][:LINE_TAGS], sep=", ")
    return line


def _tag_list(tags: list[dict[str, Any]], *, sep: str) -> str:
    """The feed's ``[{"name", "p"}]`` as ``rock 0.62, indie 0.41``."""
    return sep.join(f"{tag['name']} {tag['p']:.2f}" for tag in tags)


class TuiDisplay(Display):
    """A rich ``Live`` panel, redrawn from the newest state, with single-key commands."""

    def __init__(
        self,
        *,
        on_quit: Callable[[], None],
        on_label: Callable[[str], Any] | None = None,  # returns the answer, or an awaitable of it
        console: Any = None,
    ) -> None:
        from rich.console import Console

        self.console = console or Console()
        self.on_quit = on_quit
        self.on_label = on_label
        self._hello: dict[str, Any] = {}
        self._scores: dict[str, Any] | None = None
        self._stats = PipelineStats()
        self._timeline: collections.deque = collections.deque(maxlen=TIMELINE_CELLS)  # (cell index, top)
        self._notice: tuple[float, str] | None = None
        self._live: Any = None
        self._keys: _KeyReader | None = None
        self._pending_labels: set[asyncio.Future] = set()  # asyncio keeps only weak references to tasks

    def start(self, hello: dict[str, Any]) -> None:
        from rich.live import Live

        self._hello = hello
        self._live = Live(
            get_renderable=self.render, console=self.console, refresh_per_second=REFRESH_PER_S, transient=False
        )
        self._live.start()
        self._keys = _KeyReader(self._key)
        self._keys.start()

    def stop(self) -> None:
        if self._keys is not None:
            self._keys.stop()
            self._keys = None
        if self._live is not None:
            self._live.stop()
            self._live = None

    def show(self, message: dict[str, Any], stats: PipelineStats) -> None:
        self._stats = stats
        if message["type"] != "scores":
            return
        self._scores = message
        cell = int(message["t"] // TIMELINE_CELL_S)
        if self._timeline and self._timeline[-1][0] == cell:
            self._timeline[-1] = (cell, message["top"])  # the newest top within the cell stands for it
        else:
            self._timeline.append((cell, message["top"]))

    def notify(self, text: str) -> None:
        self._notice = (time.monotonic(), text)

    def _key(self, key: str) -> None:
        key = key.lower()
        if key == "q":
            self.on_quit()
        elif key in ("g", "b"):
            value = LIKE if key == "g" else DISLIKE
            if self.on_label is None:
                self.notify("labels need a taste profile; this streamtag has none")
                return
            try:
                answer = self.on_label(value)
            except Exception as exc:  # noqa: BLE001 - shown, not fatal
                self.notify(f"{value} failed: {exc}")
                return
            if inspect.isawaitable(answer):  # live's labeller: the refit and write run off the event loop
                self.notify(f"{value}: saving...")
                task = asyncio.ensure_future(self._finish_label(value, answer))
                self._pending_labels.add(task)
                task.add_done_callback(self._pending_labels.discard)
                return
            self.notify(answer or f"recorded: {value}")

    async def _finish_label(self, value: str, answer: Any) -> None:
        try:
            self.notify(await answer or f"recorded: {value}")
        except Exception as exc:  # noqa: BLE001 - shown, not fatal
            self.notify(f"{value} failed: {exc}")

    # -- rendering ---------------------------------------------------------------------------------------------

    def _colour(self, label: str | None) -> str:
        colours = self._hello.get("label_colors", {})
        return colours.get(label, "grey50") if label is not None else "grey50"

    def render(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        hello, msg, stats = self._hello, self._scores, self._stats
        model = hello.get("model", {})
        title = Text.assemble(
            ("streamtag live", "bold"),
            f"  {hello.get('source', '')}  ",
            (f"{model.get('name', '')} {model.get('version', '')}", "dim"),
            "  on ",
            (str(hello.get("provider", "?")).upper(), "bold green"),
        )
        body = Table.grid(padding=(0, 2))
        body.add_column(justify="right", no_wrap=True)
        body.add_column(no_wrap=True)
        if msg is None:
            body.add_row("", Text("waiting for the first window...", style="dim"))
        elif msg["silent"]:
            body.add_row("genre", Text("(silent)", style="dim italic"))
        else:
            if msg["top"] is None:  # speech or unsure: say so above the genres, which then claim nothing
                body.add_row(Text("now", style="bold yellow"),
                             Text(STATE_WORDS.get(msg.get("state"), "unsure"), style="bold yellow"))
            for label in hello.get("labels", []):
                p = msg["genre"].get(label, 0.0)
                style = f"bold {self._colour(label)}" if label == msg["top"] else self._colour(label)
                body.add_row(Text(label, style=style), _bar(p, style) + Text(f" {p:5.2f}"))
            body.add_row("", "")
            body.add_row(
                Text("taste", style="bold"),
                _bar(msg["taste"], "green") + Text(f" {msg['taste']:5.2f}  ({hello.get('taste_source', 'crowd')})"),
            )
            moods = sorted(msg["moods"].items(), key=lambda kv: -kv[1])[:5]
            body.add_row("moods", Text("  ".join(f"{name} {s:.2f}" for name, s in moods)))
            if msg["tags"]:  # a model without tags sends none: no empty row for it
                body.add_row("tags", Text(_tag_list(msg["tags"], sep=" · ")))
        if stats.source_down is not None:  # the scores above are from before the loss: say so where they are
            body.add_row(Text("source", style="bold red"), Text(f"down, reopening it: {stats.source_down}", style="bold red"))
        if msg is not None:
            level = msg["level_dbfs"]
            fill = max(0.0, min(1.0, (level - LEVEL_FLOOR_DBFS) / -LEVEL_FLOOR_DBFS))
            body.add_row("level", _bar(fill, "red" if level > -3 else "cyan") + Text(f" {level:6.1f} dBFS"))
        body.add_row("timeline", self._timeline_text())
        p50, p99 = stats.percentile_ms(50), stats.percentile_ms(99)
        latency = "-" if p50 is None else f"p50 {p50:.1f} ms  p99 {p99:.1f} ms"
        status = Text(f"latency {latency}   dropped audio {stats.audio_dropped_s:.2f} s ({stats.overflows} overflows)")
        if stats.feed_url:
            status.append(f"   feed {stats.feed_url} ({stats.feed_clients()} clients)")
        if self._keys is not None and self._keys.active:
            keys = Text("q quit   g like   b dislike", style="dim")
        else:  # stdin is the audio (--source -) or not a terminal: no key would arrive, so none is offered
            keys = Text("Ctrl-C quits; like and dislike from the dashboard", style="dim")
        if self._notice and time.monotonic() - self._notice[0] < NOTICE_S:
            keys.append(f"   {self._notice[1]}", style="bold yellow")
        return Panel(Group(body, Text(""), status, keys), title=title, title_align="left")

    def _timeline_text(self) -> Any:
        from rich.text import Text

        text = Text()
        if not self._timeline:
            return Text(f"(last {TIMELINE_CELLS * TIMELINE_CELL_S / 60:.0f} min)", style="dim")
        last_cell = self._timeline[-1][0]
        tops = dict(self._timeline)
        for cell in range(last_cell - TIMELINE_CELLS + 1, last_cell + 1):
            top = tops.get(cell, "")
            text.append("█" if top else "·", style=self._colour(top) if top else "grey30")
        text.append(f"  {TIMELINE_CELLS * TIMELINE_CELL_S / 60:.0f} min", style="dim")
        return text


def _bar(fraction: float, style: str) -> Any:
    from rich.text import Text

    fraction = max(0.0, min(1.0, float(fraction)))
    eighths = int(round(fraction * BAR_WIDTH * 8))
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if part else ""
    bar = "█" * full + partial
    return Text(bar.ljust(BAR_WIDTH), style=style)


class _KeyReader:
    """Single keys from the terminal without Enter, delivered on the event loop's thread."""

    def __init__(self, on_key: Callable[[str], None]) -> None:
        self.on_key = on_key
        self._loop = asyncio.get_running_loop()
        self._restore: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.active = False  # whether keys are being read: only from a terminal on stdin

    def start(self) -> None:
        if not sys.stdin or not sys.stdin.isatty():
            return
        self.active = True
        if os.name == "nt":
            self._thread = threading.Thread(target=self._poll_windows, name="streamtag-keys", daemon=True)
            self._thread.start()
            return
        import termios
        import tty

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self._loop.add_reader(fd, self._read_posix, fd)

        def restore() -> None:
            self._loop.remove_reader(fd)
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)

        self._restore = restore

    def _read_posix(self, fd: int) -> None:
        with contextlib.suppress(OSError):
            for ch in os.read(fd, 32).decode(errors="ignore"):
                self.on_key(ch)

    def _poll_windows(self) -> None:
        import msvcrt

        while not self._stop.is_set():
            if msvcrt.kbhit():
                ch = msvcrt.getwch()
                self._loop.call_soon_threadsafe(self.on_key, ch)
            else:
                time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        if self._restore is not None:
            with contextlib.suppress(Exception):
                self._restore()
            self._restore = None
