"""The grading report as an instructor opens it: `make report` on the fixture grading run, the page
opened from disk in Chromium with the network blocked, at a laptop's width and at 420 px. What the
class got wrong is on the first screen."""

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from backprop_hw.paths import ROOT
from student_browser import block_all_but, chromium, screenshot

pytestmark = pytest.mark.browser

FIXTURE = ROOT / "package_tests" / "fixtures" / "grading_run"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    grades = shutil.copytree(FIXTURE, tmp_path_factory.mktemp("run") / "grades")
    subprocess.run(["make", "report", f"GRADES={grades}"], cwd=ROOT, check=True, capture_output=True)
    return grades / "report.html"


@pytest.mark.parametrize("width", [1280, 420])
def test_the_report_reads_offline_without_overflowing(report_page: Path, browser: Browser, width: int) -> None:
    page = browser.new_page(viewport={"width": width, "height": 800})
    try:
        blocked = block_all_but(page, None)
        page.goto(report_page.as_uri())
        charts = page.locator("img")
        assert charts.count() == 2
        assert all(charts.nth(i).evaluate("image => image.complete && image.naturalWidth > 0") for i in range(2))
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width  # no sideways scrolling
        for table in page.locator("table").all():  # a wide table scrolls inside the page
            box = table.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, table.get_attribute("id")
        counts = {name: int(page.locator(f"#n-{name}").text_content())
                  for name in ("submissions", "graded", "clean", "troubled", "blank", "failed")}
        assert counts["graded"] + counts["blank"] + counts["failed"] == counts["submissions"]
        assert counts["clean"] + counts["troubled"] == counts["graded"]
        if width == 1280:  # on a laptop, the first screen shows what the class got wrong and who
            assert page.locator("#failures").bounding_box()["y"] < 400
            assert page.locator("td.who").first.bounding_box()["y"] < 800
        assert page.locator("td.message code").count() > 0  # what messages write in backticks, as code
        assert not [text for text in page.locator("td.message").all_text_contents() if "`" in text]
        code = page.locator("td.message code").first.evaluate("element => getComputedStyle(element).fontFamily")
        assert "mono" in code.lower()
        assert blocked == []
        screenshot(page, f"report-{width}px", full_page=True)
    finally:
        page.close()
