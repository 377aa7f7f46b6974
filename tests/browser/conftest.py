"""Shared pieces of the browser tests: Debian's headless Chromium driven by Selenium through
Debian's chromedriver (nothing is downloaded; `make browser-tool` installs both as root).

- `browser_missing()`: why no browser test can run here (None when one can).
- `browser_available` fixture: skips, saying what to install, when no browser can be found.
- `chromium` fixture: `chromium()` starts a fresh headless Chromium (its own profile in the
  test's tmp folder) and returns the Selenium driver; the fixture skips the test, saying what
  to install, when no browser can be found. When the test fails, a screenshot of every page
  still open goes to `build/browser-screenshots/<test>/failure-<n>.png` (also when it passes
  with NNKIT_BROWSER_SCREENSHOTS=always); the drivers are closed afterwards.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "build" / "browser-screenshots"
CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "", shutil.which("chromium-browser") or "")
                 if p and Path(p).is_file()), None)
CHROMEDRIVER = next((p for p in ("/usr/bin/chromedriver", shutil.which("chromedriver") or "")
                     if p and Path(p).is_file()), None)
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                "--window-size=1400,1000"]


def browser_missing() -> str | None:
    """Why Chromium cannot be driven here, or None."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        return ("Debian's chromium and chromium-driver are not installed: `make browser-tool` installs them "
                "when run as root (apt-get install chromium chromium-driver)")
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not importable: install the instructor extra (pip install '.[instructor]')"
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"_nnkit_{report.when}_failed", report.failed)


@pytest.fixture(scope="session")
def browser_available() -> None:
    """Skips the test when no browser can be driven (session scope: before any costly module fixture)."""
    reason = browser_missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def chromium(request, tmp_path, browser_available):
    """`chromium()` -> a Selenium driver of a fresh headless Chromium; screenshots on failure."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers = []

    def start():
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        profile = tmp_path / f"chromium-profile-{len(drivers)}"
        for flag in CHROME_FLAGS + [f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download a driver
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        drivers.append(driver)
        return driver

    yield start
    failed = getattr(request.node, "_nnkit_call_failed", False) or getattr(request.node, "_nnkit_setup_failed", False)
    for n, driver in enumerate(drivers):
        try:
            if failed or os.environ.get("NNKIT_BROWSER_SCREENSHOTS") == "always":
                folder = SHOTS / request.node.name
                folder.mkdir(parents=True, exist_ok=True)
                shot = folder / f"{'failure' if failed else 'end'}-{n}.png"
                driver.save_screenshot(str(shot))
                print(f"screenshot: {shot}", flush=True)
        finally:
            driver.quit()
