"""What a command that takes a while is doing, on stderr: a bar over `tag`'s files, a line per phase of `evaluate`
and `bench`, and whole lines for counted steps outside a terminal. stdout carries the results alone, so pipes and
--json readers see nothing new; -q silences all of it.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

from rich import progress as bar
from rich.console import Console
from rich.table import Column

# Outside a terminal a counted step is logged about this many times, and once more at its end.
LOG_LINES_PER_STEP = 10
FILE_NAME_COLUMNS = 40


def stderr_console() -> Console:
    """stderr, with lines left whole: outside a terminal rich would otherwise cut them at 80 columns in the log."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


class LogLines:
    """A counted step as whole lines (``log-mel cache: 30/300 (12 s)``), about one per tenth of it and one at the
    end: outside a terminal, where a bar is not drawn at all or lands in the log in pieces."""

    def __init__(self, console: Console, what: str, total: int):
        self.console, self.what, self.total = console, what, total
        self.every = max(1, total // LOG_LINES_PER_STEP)
        self.done = 0
        self.started = time.monotonic()

    def advance(self) -> None:
        self.done += 1
        if self.done == self.total or self.done % self.every == 0:
            self.console.print(f"{self.what}: {self.done}/{self.total} ({time.monotonic() - self.started:.0f} s)",
                               markup=False)


class Phases:
    """``with phases.phase("offline speed"):`` says ``bench: offline speed...`` on stderr as the phase starts; on a
    terminal a spinner with the time taken (a bar where the phase counts its steps) runs until it ends, and
    outside one a counted phase adds a few `LogLines`."""

    def __init__(self, command: str, *, quiet: bool):
        self.command, self.quiet = command, quiet
        self.console = stderr_console()

    @contextlib.contextmanager
    def phase(self, what: str, *, total: int | None = None) -> Iterator[Callable[[], None]]:
        """Yields the function to call once per step done (where ``total`` counts them)."""
        if self.quiet:
            yield lambda: None
            return
        self.console.print(f"{self.command}: {what}...", markup=False)
        if not self.console.is_terminal:
            lines = LogLines(self.console, f"{self.command}: {what}", total) if total else None
            yield lines.advance if lines else lambda: None
            return
        with _bar(self.console, counted=bool(total)) as progress:
            task = progress.add_task(what, total=total)
            yield lambda: progress.advance(task)


def _bar(console: Console, *columns: bar.ProgressColumn, counted: bool, disable: bool = False) -> bar.Progress:
    """A transient spinner and description, then for a ``counted`` step a bar and its steps done of all, then
    ``columns``, time taken and (``counted``) time left, on ``console``. stdout is left alone: rich would
    otherwise route it through the bar's console, onto stderr, and it is for the results."""
    counts = (bar.BarColumn(), bar.MofNCompleteColumn()) if counted else ()
    left = (bar.TimeRemainingColumn(),) if counted else ()
    return bar.Progress(bar.SpinnerColumn(), bar.TextColumn("{task.description}", markup=False), *counts, *columns,
                        bar.TimeElapsedColumn(), *left, console=console, transient=True, redirect_stdout=False,
                        disable=disable)


def file_bar(n_files: int, *, quiet: bool) -> bar.Progress:
    """Files done of all, the one being read, time taken and time left: where stderr is a terminal and there is
    more than one file, and not with -q; elsewhere a disabled bar, which draws nothing. Lines printed to stderr
    meanwhile (a file's error) go above the bar; the task takes a ``file`` field."""
    console = stderr_console()
    name = bar.TextColumn("{task.fields[file]}", markup=False,
                          table_column=Column(no_wrap=True, overflow="ellipsis", max_width=FILE_NAME_COLUMNS))
    return _bar(console, name, counted=True, disable=quiet or n_files < 2 or not console.is_terminal)


@contextlib.contextmanager
def stdout_turn(progress: bar.Progress) -> Iterator[None]:
    """Around a write to stdout while ``progress`` is shown: where stdout is the same terminal, the line would
    land inside the bar, so the bar is taken down for the write and drawn again below it."""
    shared = not progress.disable and sys.stdout.isatty()
    if shared:
        progress.stop()
    try:
        yield
    finally:
        if shared:
            progress.start()
