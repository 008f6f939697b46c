"""The report in a real browser: headless Chromium (Debian's package) driven by Playwright.

Every chart must load (an image with a natural width > 0), the page must log no console error and
request nothing from the network; a full-page screenshot is saved to the test's tmp_path and to
``results/browser/report.png`` for a person to look at. Skips, saying why, without Chromium
(``apt-get install chromium``; ``.ci/run`` installs it) or without the ``playwright`` package.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tradeloop.results import write_html_report

CHROMIUM = os.environ.get("TRADELOOP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT_COPY = Path(__file__).resolve().parents[2] / "results" / "browser" / "report.png"


@pytest.fixture
def browser_page(tmp_path: Path) -> Any:
    """A page of a fresh headless Chromium (own --user-data-dir under tmp_path)."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)")
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="the playwright package is not installed (pip install -e '.[dev]')",
    )
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1200, "height": 900},
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def test_report_renders_in_chromium(tmp_path: Path, browser_page: Any) -> None:
    from tradeloop.data.sample import load_sample
    from tradeloop.execution import PercentSlippage, PerShareCommission, SyncEngine
    from tradeloop.strategies import SmaCross

    feed = load_sample("daily")
    result = SyncEngine(
        feed,
        SmaCross(fast=10, slow=30),
        initial_cash=100_000,
        commission=PerShareCommission(0.005, minimum=1.0),
        slippage=PercentSlippage(0.0005),
        participation_rate=0.1,
    ).run()
    result.settings = {"commission": {"type": "per_share", "rate": 0.005}, "leverage": 1.0}
    path = write_html_report(result, tmp_path / "report.html", feed=feed)

    page = browser_page
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def record(route: Any) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:  # the report must be self-contained: nothing goes out
            requests.append(url)
            route.abort()

    page.route("**/*", record)
    page.goto(path.as_uri(), wait_until="load")

    images = page.evaluate(
        """() => Array.from(document.images).map(i => ({
            alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
            shown: i.getBoundingClientRect().width }))"""
    )
    assert [i["alt"] for i in images] == [
        "Equity curve",
        "Drawdown (underwater)",
        "Price and trades: ACME",
        "Price and trades: BOLT",
        "Price and trades: CRUX",
        "Price and trades: DYNA",
        "Trade durations",
    ]
    for image in images:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
        assert image["shown"] > 300, image  # laid out at a readable size
    assert errors == []
    assert requests == []
    assert page.title() == "Backtest report: SmaCross"
    headings = page.locator("h2").all_inner_texts()
    assert headings[:3] == ["Run", "Metrics", "Equity and drawdown"]
    assert page.locator("#rejected").inner_text() == "Rejected orders (1)"
    assert page.locator("tr.open").count() == len(result.open_trades) > 0

    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    SCREENSHOT_COPY.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, SCREENSHOT_COPY)
