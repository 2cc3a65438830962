"""Headless Debian Chromium driven by Selenium through Debian's chromedriver (no downloads)."""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Callable

import pytest

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage")


def chrome(profile_dir: Path, width: int = 1100, height: int = 900) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        pytest.fail("browser tests need Chromium and ChromeDriver: run tools/ensure_chromium.sh (tools/setup.sh all does)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile_dir}")  # a fresh profile per browser
    opts.add_argument(f"--window-size={width},{height}")
    # Service(path) skips Selenium Manager, which would try to download a driver.
    browser = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
    if width < 500:  # headless windows are at least 500 px wide: emulate the phone's viewport instead
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": True})
    return browser


def until(predicate: Callable[[], Any], timeout_s: float = 15, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # element not there yet, stale, ...
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}")


def finished_answers(browser: Any, n: int = 1, timeout_s: float = 15) -> list:
    """The last turn's `n` answer cards, once every one of them is done."""
    from selenium.webdriver.common.by import By

    def ready():
        cards = browser.find_elements(By.CSS_SELECTOR, "#log .turn:last-child .answer")
        return cards if len(cards) == n and all(c.get_attribute("data-state") == "done" for c in cards) else None
    return until(ready, timeout_s, f"{n} finished answer(s)")


# Every text the first answer card shows, recorded inside the page: polling from Selenium samples
# the text too slowly on a busy machine and can miss the pieces of a stream in between.
_RECORD_ANSWER_TEXTS = """
window.answerTexts = [];
new MutationObserver(() => {
  const node = document.querySelector('#log .answer .answer-text');
  const text = node ? node.textContent : '';
  if (text && window.answerTexts[window.answerTexts.length - 1] !== text) window.answerTexts.push(text);
}).observe(document.getElementById('log'), {childList: true, characterData: true, subtree: true});
"""


def record_answer_texts(browser: Any) -> None:
    """Call once the page script is ready, before asking; read with `answer_texts`."""
    browser.execute_script(_RECORD_ANSWER_TEXTS)


def answer_texts(browser: Any) -> list[str]:
    return browser.execute_script("return window.answerTexts")
