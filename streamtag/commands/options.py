"""The command-line options that several commands share, written once: the model, the provider, the hop."""

from __future__ import annotations

import argparse
from pathlib import Path

from streamtag.engine import PROVIDERS


def add_model(parser: argparse.ArgumentParser, *, provider_default: str = "auto") -> None:
    """``--model PATH`` (default: the shipped model) and ``--provider auto|cpu|cuda``."""
    parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped one)")
    add_provider(parser, default=provider_default)


def add_provider(parser: argparse.ArgumentParser, *, default: str = "auto") -> None:
    parser.add_argument("--provider", choices=PROVIDERS, default=default,
                        help=f"execution provider; cuda fails clearly where it cannot load (default {default})")


def add_hop(parser: argparse.ArgumentParser, *, default: float | None = None) -> None:
    """``--hop SECONDS``; None: the model's own hop. A streaming model rounds it to whole spectrogram frames."""
    shown = "the model's" if default is None else default
    parser.add_argument("--hop", type=float, default=default, metavar="SECONDS",
                        help=f"seconds between windows (default {shown}; rounded to whole spectrogram frames where "
                             "the model computes each frame once)")
