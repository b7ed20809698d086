"""Fixtures for the browser tests: a headless Chromium driven by selenium, and the artifacts folder.

The browser is the system's Chromium with its matching chromedriver (Debian: ``apt install chromium
chromium-driver``); nothing is downloaded. ``STREAMTAG_CHROMIUM`` and ``STREAMTAG_CHROMEDRIVER`` point at other
binaries. Where no Chromium is installed, or it cannot start, the tests that need it are skipped and say why.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO / "artifacts" / "web"

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Headless, and quiet: no sandbox (the tests may run as root, in a container), no GPU, and none of the
# background traffic a fresh profile starts (component updates, sync, QUIC probes).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1600,1000",
)
DRIVER_START_TIMEOUT_S = 60


def _find(env: str, names: tuple[str, ...]) -> str | None:
    if os.environ.get(env):
        return os.environ[env]
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Screenshots and logs a person should look at after the run (gitignored)."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR


@pytest.fixture
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium with its own profile; its console messages are kept for the test to read."""
    chromium = _find("STREAMTAG_CHROMIUM", CHROMIUM_NAMES)
    chromedriver = _find("STREAMTAG_CHROMEDRIVER", ("chromedriver",))
    if chromium is None or chromedriver is None:
        missing = " and ".join(n for n, p in (("chromium", chromium), ("chromedriver", chromedriver)) if p is None)
        pytest.skip(f"{missing} not found: install Debian's chromium and chromium-driver (or set STREAMTAG_CHROMIUM "
                    "and STREAMTAG_CHROMEDRIVER)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=chromedriver, log_output=str(tmp_path_factory.mktemp("chromedriver") / "log"))
    try:
        driver = webdriver.Chrome(options=options, service=service)
    except WebDriverException as exc:
        first_line = (exc.msg or str(exc)).strip().splitlines()[0] if (exc.msg or str(exc)).strip() else repr(exc)
        pytest.skip(f"Chromium ({chromium}) cannot start here: {first_line}")
    driver.set_page_load_timeout(DRIVER_START_TIMEOUT_S)
    try:
        yield driver
    finally:
        driver.quit()
