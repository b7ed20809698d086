"""What every source is: ``Source``, the async iterator of blocks, with the ``CaptureStats`` it keeps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import numpy as np

from streamtag.core.stats import CaptureStats

# (up, detail): (False, why) when a source that reopens itself has lost its input, (True, its description) when
# audio comes again. Called on the event loop, from ``blocks()``.
StateHook = Callable[[bool, str], None]


class Source:
    """Base of the sources: ``blocks()`` yields mono float32 at ``out_rate`` until the input ends.

    Blocks may have any length; the tagger does not care.
    """

    description: str = ""
    kind: str = ""
    on_state: StateHook | None = None  # set by the consumer; only a source that reopens itself calls it

    def __init__(self, *, out_rate: int) -> None:
        self.out_rate = out_rate
        self.stats = CaptureStats()

    def blocks(self) -> AsyncIterator[np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device, file or thread; safe to call twice."""
