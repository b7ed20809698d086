"""Fixtures shared by the whole suite: the shared data folder, a seeded generator, and a model to run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO.parent / "shared" / "data"
SHIPPED_MODEL = REPO / "models" / "streamtag.onnx"

# The suite never reads or writes the user's own folders: one like in `streamtag live` would otherwise put a
# taste profile in the way of every test that tags (and a test could overwrite the user's labels). Set at import,
# before any test runs, so every subprocess a test starts inherits it too.
ISOLATED_HOME = Path(tempfile.mkdtemp(prefix="streamtag-tests-"))
for _variable, _folder in (("STREAMTAG_HOME", "streamtag"), ("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config"),
                           ("XDG_CACHE_HOME", "cache")):
    os.environ[_variable] = str(ISOLATED_HOME / _folder)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.fail(f"the shared data folder is missing: expected {DATA_DIR}")
    return DATA_DIR


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The shipped, trained model: the one every runtime test exercises."""
    if not SHIPPED_MODEL.is_file():
        pytest.fail(f"the shipped model is missing: expected {SHIPPED_MODEL}")
    return SHIPPED_MODEL
