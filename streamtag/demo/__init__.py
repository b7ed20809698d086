"""Bundled public-domain and CC-BY recordings for a demo without an audio input (see ATTRIBUTION.md)."""

from importlib import resources
from pathlib import Path


def demo_recordings() -> list[Path]:
    """The bundled recordings, in playing order: classical first, then a jazzy electronic piece."""
    folder = resources.files(__name__)
    return [Path(str(folder.joinpath(name))) for name in ("brahms-hungarian-dance-5.ogg", "kevin-macleod-vibe-ace.ogg")]
