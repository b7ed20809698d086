"""What every source is: ``Source``, the async iterator of blocks, with the ``CaptureStats`` it keeps."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np

from streamtag.core.stats import CaptureStats


class Source:
    """Base of the sources: ``blocks()`` yields mono float32 at ``out_rate`` until the input ends.

    Blocks may have any length; the tagger does not care.
    """

    description: str = ""
    kind: str = ""

    def __init__(self, *, out_rate: int) -> None:
        self.out_rate = out_rate
        self.stats = CaptureStats()

    def blocks(self) -> AsyncIterator[np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device, file or thread; safe to call twice."""
