"""The student's evening in a real browser: the notebook alone in an empty folder, renamed, opened in
JupyterLab 4 or Notebook 7 in headless Chromium, with no network but the Jupyter server.

Asserted is what the student sees: the checks (each case with what it checks, its points and its
message, never the test's code; and the hidden checks to come), the submission cell's summary, link
and zip, and no stderr box (a traceback or a warning) that the student's own code did not cause.
Screenshots go to build/screenshots/.
"""

import shutil
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Browser

from backprop_hw.colab import COLAB_BADGE_IMAGE
from backprop_hw.paths import NOTEBOOK, ROOT
from built import POINTS, PUBLIC_POINTS, TOTAL, TOY
from conftest import QUESTIONS
from student_browser import PANEL, NotebookTab, chromium, jupyter_server, screenshot

PUBLIC = sum(PUBLIC_POINTS.values())

pytestmark = pytest.mark.browser

RENAMED = "my homework.ipynb"
CLOSING = "#@title Check everything and submit"
LINK_TEXT = "Your zip file is ready: click here to download it."
SET_UP = "#@title Set up the checks"
# What otter's own display of a check shows of the test runner: never in the notebook.
TEST_INTERNALS = ("Error at line", "Test case failed", "check.check_", "def test_", "tests/q", "Traceback")
UIS = ("lab", "notebook")  # JupyterLab 4, Notebook 7


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("downloads")
    with jupyter_server(root, tmp_path_factory.mktemp("jupyter-home")) as url:
        yield url, root


@pytest.fixture(scope="module")
def open_notebook(browser: Browser, server: tuple[str, Path]) -> Iterator[Callable[[str, str, str], NotebookTab]]:
    """Opens a copy of student/ or solutions/ notebook, renamed, alone in a new folder, in a new tab."""
    url, root = server
    pages = []

    def open_(built: str, ui: str, folder: str) -> NotebookTab:
        path = root / folder / RENAMED
        path.parent.mkdir()
        shutil.copy(ROOT / built / NOTEBOOK, path)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        pages.append(page)
        return NotebookTab(page, url, root, path, ui)

    yield open_
    for page in pages:
        page.close()


def run_all(open_notebook: Callable[[str, str, str], NotebookTab], built: str, ui: str) -> NotebookTab:
    tab = open_notebook(built, ui, f"{ui}-{built}-run-all")
    tab.run_all()
    screenshot(tab.page, f"{ui}-{built}-run-all", tab.cell(tab.index(CLOSING)))
    return tab


@pytest.fixture(scope="module", params=UIS)
def blank(request: pytest.FixtureRequest, open_notebook) -> NotebookTab:
    return run_all(open_notebook, "student", request.param)


@pytest.fixture(scope="module")
def solved(open_notebook) -> NotebookTab:
    return run_all(open_notebook, "solutions", "lab")


def check_output(tab: NotebookTab, question: str) -> str:
    return tab.output(tab.index(f'grader.check("{question}")'))


def zips(tab: NotebookTab) -> list[Path]:
    return sorted(tab.path.parent.glob("my homework_*.zip"))


def shows_no_test_internals(shown: str) -> bool:
    return not any(internal in shown for internal in TEST_INTERNALS)


def test_run_all_on_the_blank_notebook_reaches_the_submission_cell(blank: NotebookTab) -> None:
    shown = blank.output(blank.index(CLOSING))
    assert LINK_TEXT in shown, f"Run All stopped before the submission cell; stderr boxes: {blank.stderr_boxes()}"
    assert f"Public checks: 0 of {PUBLIC:g} points." in shown
    assert f"hidden checks decide the other {TOTAL - PUBLIC:g} points (of {TOTAL:g})" in shown
    row = blank.cell(blank.index(CLOSING)).locator("tr", has_text="q1.2").inner_text()
    hidden = POINTS["q1.2"] - PUBLIC_POINTS["q1.2"]
    assert row.split() == f"q1.2 0 of {PUBLIC_POINTS['q1.2']:g} unfinished + {hidden:g} points decided when graded".split(), row
    assert "Still to do: q1.1 (unfinished)" in shown and shown.index("Still to do") < shown.index(LINK_TEXT), shown
    assert "To submit: upload the zip file" in shown
    assert blank.stderr_boxes() == []  # no traceback, no warning
    assert len(zips(blank)) == 1
    assert set(blank.blocked) <= {COLAB_BADGE_IMAGE}  # the notebook needs nothing from outside but the badge


SHORT_CELL_PX = 200  # a cell of a few lines, its prompt and a line of output


def test_the_notebook_shows_no_machinery(blank: NotebookTab) -> None:
    """Under the title, the set-up cell shows its few lines with a run prompt, says that it worked,
    and stays a few lines when clicked; the init cell and the closing cell are a few lines too."""
    set_up, init, closing = blank.index(SET_UP), blank.index("# Initialize Otter"), blank.index(CLOSING)
    title = blank.page.locator(f"{PANEL} h1").first.bounding_box()
    assert title["y"] < blank.cell(set_up).bounding_box()["y"]
    assert blank.output(set_up).strip().startswith("The checks are set up.")
    prompt = blank.cell(set_up).locator(".jp-InputPrompt")
    assert prompt.is_visible() and "[" in prompt.text_content()  # a run prompt, not a collapsed •••
    blank.cell(set_up).evaluate("cell => cell.scrollIntoView({block: 'center'})")
    editor = blank.cell(set_up).locator(".jp-Cell-inputWrapper").bounding_box()
    blank.page.mouse.click(editor["x"] + 200, editor["y"] + 12)  # as a student selects it, on its title
    assert blank.cell(set_up).locator(".cm-scroller").evaluate("scroller => scroller.scrollLeft") == 0
    for index in (set_up, init, closing):
        box = blank.cell(index).locator(".jp-Cell-inputWrapper").bounding_box()
        assert box["height"] < SHORT_CELL_PX, (blank.sources[index][:80], box)
    assert blank.cell(set_up).bounding_box()["width"] <= 1280  # its one long line scrolls inside the cell
    screenshot(blank.page, f"{blank.ui}-set-up-cell", blank.cell(init))
    blank.page.keyboard.press("Escape")


def test_the_blank_notebook_checks_say_what_is_missing(blank: NotebookTab) -> None:
    for question in QUESTIONS:
        shown = check_output(blank, question)
        assert f"{question}: 0 of " in shown and "❌" in shown and "✅" not in shown, shown
        assert "replace the ... with your code" in shown or "has not been computed yet" in shown, shown
        assert shows_no_test_internals(shown), shown


def test_run_all_on_the_solutions_passes_every_check_and_offers_the_zip(solved: NotebookTab, tmp_path: Path) -> None:
    assert solved.stderr_boxes() == []
    for question in QUESTIONS:  # a pass says what it checked, and that hidden checks decide the rest
        shown = check_output(solved, question)
        assert "which all pass" in shown and "✅" in shown and "❌" not in shown, shown
        assert f"hidden checks try your code on other inputs too, and decide the other" in shown, shown
        assert shows_no_test_internals(shown), shown
    screenshot(solved.page, "lab-solutions-q2.2-passes", solved.cell(solved.index('grader.check("q2.2")')))
    closing = solved.cell(solved.index(CLOSING))
    assert f"Public checks: {PUBLIC:g} of {PUBLIC:g} points." in closing.text_content()
    assert "gets the results above" in closing.text_content()
    with solved.page.expect_download() as download:
        closing.get_by_role("link", name="here").click()
    downloaded = tmp_path / download.value.suggested_filename
    download.value.save_as(downloaded)
    [written] = zips(solved)
    assert downloaded.name == written.name and downloaded.read_bytes() == written.read_bytes()
    with zipfile.ZipFile(downloaded) as archive:
        assert archive.read(RENAMED) == solved.path.read_bytes() and ".OTTER_LOG" not in archive.namelist()


@pytest.mark.parametrize("ui", UIS)
def test_an_answer_fixed_then_broken_and_an_unsaved_edit(ui: str, open_notebook) -> None:
    tab = open_notebook("student", ui, f"{ui}-edits")
    answer, check, closing = tab.index("f0 = ..."), tab.index('grader.check("q1.1")'), tab.index(CLOSING)
    solution = solved_source("f0 = ")
    tab.run_all_above(answer)

    tab.type_into(answer, solution)
    tab.run(answer)
    tab.run(check)
    assert "q1.1: 2 of 2 points from the public checks, which all pass." in tab.output(check)
    screenshot(tab.page, f"{ui}-edits-q1.1-fixed", tab.cell(check))

    broken = solution.replace("np.cos(f2)", "np.sin(f2)")
    assert broken != solution
    tab.type_into(answer, broken)
    tab.run(answer)
    tab.run(check)
    shown = tab.output(check)
    assert "❌" in shown and "h3 is computed with the wrong function" in shown and shows_no_test_internals(shown), shown
    screenshot(tab.page, f"{ui}-edits-q1.1-broken", tab.cell(check))

    tab.run(closing)  # the edits are not saved
    shown = tab.output(closing)
    assert "Not submitted: the saved notebook is not what you ran" in shown and "f0 = ..." not in shown, shown
    assert solution.splitlines()[0] in shown and LINK_TEXT not in shown
    assert zips(tab) == []
    screenshot(tab.page, f"{ui}-edits-unsaved", tab.cell(closing))

    tab.save()
    tab.run(closing, seeing="Running the saved notebook from the top in a fresh kernel")  # says it is working
    shown = tab.output(closing)
    assert LINK_TEXT in shown and "Not submitted" not in shown and "Running" not in shown, shown
    [written] = zips(tab)
    with zipfile.ZipFile(written) as archive:
        submitted = nbformat.reads(archive.read(RENAMED).decode(), as_version=4)
    assert submitted.cells[answer].source == broken
    assert tab.stderr_boxes() == []
    screenshot(tab.page, f"{ui}-edits-saved", tab.cell(closing))


def solved_source(start: str) -> str:
    """The solutions notebook's answer cell that starts with `start`, as a student would write it."""
    [source] = [cell.source for cell in nbformat.read(ROOT / "solutions" / NOTEBOOK, as_version=4).cells
                if cell.source.startswith(start)]
    return source.replace("  # SOLUTION", "")


RELU_ON_THE_OUTPUT = ("    all_f[K] = all_biases[K] + all_weights[K] @ all_h[K]\n",
                      "    all_f[K] = ReLU(all_biases[K] + all_weights[K] @ all_h[K])\n")


@pytest.mark.parametrize("ui", UIS)
def test_a_relu_on_the_output_and_a_missing_relu_indicator_are_named_in_the_notebook(ui: str, open_notebook) -> None:
    """The output passed through a ReLU prints the notebook's value (its output is positive), and the
    check names the ReLU, as the graded feedback does, never "all zeros"; a backward pass without the
    ReLU indicator is told so, not given the formulas."""
    tab = open_notebook("student", ui, f"{ui}-relu-on-the-output")
    answer = tab.index("def compute_network_output(")
    tab.run_all_above(answer)
    tab.type_into(answer, solved_source("def compute_network_output(").replace(*RELU_ON_THE_OUTPUT))
    tab.run(answer)
    tab.run(answer + 1)  # prints the output, as expected
    tab.run(tab.index('grader.check("q2.1")'))
    shown = check_output(tab, "q2.1")
    assert "has a ReLU applied where there should be none" in shown and "all zeros" not in shown, shown
    screenshot(tab.page, f"{ui}-relu-on-the-output", tab.cell(tab.index('grader.check("q2.1")')))
    tab.run(tab.index("def least_squares_loss("))  # the loss's derivative, which the backward pass calls
    answer = tab.index("def backward_pass(")
    tab.type_into(answer, solved_source("def backward_pass(").replace("indicator_function(all_f[layer - 1]) * ", ""))
    tab.run(answer)
    tab.run(tab.index('grader.check("q2.2")'))
    shown = check_output(tab, "q2.2")
    assert "backward_pass leaves out the ReLU indicator" in shown and "entries wrong" not in shown, shown
    screenshot(tab.page, f"{ui}-no-relu-indicator", tab.cell(tab.index('grader.check("q2.2")')))


@pytest.mark.parametrize("ui", UIS)
def test_a_check_before_the_set_up_cell_says_to_run_it(ui: str, open_notebook) -> None:
    """Run from the cell after the set-up cell on, a check says to run it."""
    tab = open_notebook("student", ui, f"{ui}-no-set-up")
    tab.run(tab.index("# Initialize Otter"))
    check = tab.index('grader.check("q1.1")')
    tab.run(check)
    assert 'run the set-up cell ("Set up the checks", the first code cell)' in tab.output(check), tab.output(check)
    assert tab.stderr_boxes() == []
    screenshot(tab.page, f"{ui}-no-set-up", tab.cell(check))
    tab.run(tab.index(SET_UP))
    tab.run(tab.index("# Initialize Otter"))
    tab.run(check)
    assert "q1.1: 0 of 2 points from the public checks." in tab.output(check)


@pytest.mark.parametrize("ui", UIS)
def test_run_all_then_part_1_gives_part_1s_numbers(ui: str, open_notebook) -> None:
    """Run All on the blank notebook (Part 2 included), then Part 1 filled in and its cells run again:
    the loss, the checks, the table and the plot are Part 1's."""
    tab = open_notebook("student", ui, f"{ui}-run-all-then-part-1")
    tab.run_all()
    for start in ("f0 = ", "dldf3 = ", "dldbeta3 = "):
        answer = tab.index(f"{start}...")
        tab.type_into(answer, solved_source(start))
        tab.run(answer)
        tab.run(answer + 1)  # its check
        assert "which all pass" in tab.output(answer + 1), tab.output(answer + 1)
    comparison = tab.index("parameters = dict(")
    tab.run(comparison)
    shown = tab.output(comparison)
    assert f"{TOY['dldomega0']:.6f}" in shown and "(to do)" not in shown and tab.stderr_boxes() == [], shown
    assert tab.cell(comparison).locator("img").count() == 1  # the plot
    screenshot(tab.page, f"{ui}-run-all-then-part-1", tab.cell(comparison))
