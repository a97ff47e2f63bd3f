"""The built notebooks work alone: in Colab, downloaded without their folder, and renamed.

The Colab simulation runs a notebook from memory (no file on disk) in an empty folder, with a
stand-in `google.colab` importable, a kernel whose shell class lives in `google.colab` (as Colab's
does: that is how otter recognises Colab, and then refuses to export) and a stand-in
`pip` that records any call and fails (no network): otter is installed here, so the set-up cell
must never call pip.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
import zipfile
import zlib
from pathlib import Path
from urllib.parse import quote

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

import backprop_checks
from backprop_hw import colab
from backprop_hw.build import take_our_settings
from backprop_hw.paths import ROOT
from built import PUBLIC_POINTS, TOTAL, points_without
from conftest import QUESTIONS
from corpus.answers import BASELINE, TOY_PRINTED
from graders import fill_in, grade_fast


def graded_scores(submissions: list[Path], folder: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """Grade submissions in one batch with `make grade`'s engine: {file: {question: (score, max)}}.
    Every one of them is an honest student's: none may be flagged."""
    (folder / "submissions").mkdir(parents=True)
    for submission in submissions:
        shutil.copy(submission, folder / "submissions" / submission.name)
    graded = grade_fast(folder / "submissions", folder / "grades", workers=1)  # a few quick notebooks
    assert {name: result.row["integrity"] for name, result in graded.items()} == dict.fromkeys(graded, "")
    return {name: {t["name"]: (t["score"], t["max_score"]) for t in result.results["tests"] if t["name"] in QUESTIONS}
            for name, result in graded.items()}

NOTEBOOK = "backpropagation.ipynb"
CHECK_CALL = re.compile(r'grader\.check\("(q[\d.]+)"\)')
COLAB_KERNEL = """\
from ipykernel.ipkernel import IPythonKernel
from ipykernel.zmqshell import ZMQInteractiveShell
from traitlets import Type


class Shell(ZMQInteractiveShell):
    \"\"\"Stand-in for Colab's shell, google.colab._shell.Shell.\"\"\"


class Kernel(IPythonKernel):
    \"\"\"Stand-in for Colab's kernel, which runs its own shell.\"\"\"
    shell_class = Type(Shell)
"""
FAKE_PIP = """\
import pathlib, sys
with open(pathlib.Path(__file__).parent.parent / "pip-calls.txt", "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
sys.exit({code})
"""


def stand_ins(folder: Path, pip_exit_code: int, in_colab: bool) -> Path:
    """A folder for PYTHONPATH with a `pip` that logs its calls to pip-calls.txt, and `google.colab`."""
    if in_colab:
        (folder / "google" / "colab").mkdir(parents=True)
        (folder / "google" / "colab" / "__init__.py").write_text("")
        (folder / "google" / "colab" / "_kernel.py").write_text(COLAB_KERNEL)
    (folder / "pip").mkdir(parents=True)
    (folder / "pip" / "__init__.py").write_text("")
    (folder / "pip" / "__main__.py").write_text(FAKE_PIP.format(code=pip_exit_code))
    return folder


def execute(notebook: nbformat.NotebookNode, cwd: Path, python_path: Path, in_colab: bool) -> nbformat.NotebookNode:
    """Run every cell (errors included) in a fresh kernel working in `cwd`."""
    kernel = ["--IPKernelApp.kernel_class=google.colab._kernel.Kernel"] if in_colab else []
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=True, extra_arguments=kernel,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute(env={**os.environ, "PYTHONPATH": str(python_path)})
    return notebook


def output_text(cell: nbformat.NotebookNode) -> str:
    """Everything a code cell showed: streams, plain-text results and error tracebacks."""
    parts = []
    for output in cell.outputs:
        parts.append(output.get("text", ""))
        parts.append(output.get("data", {}).get("text/plain", ""))
        parts.extend(output.get("traceback", []))
    return "\n".join(parts)


def errors(cells: list[nbformat.NotebookNode]) -> list[str]:
    return [output_text(cell) for cell in cells if any(o.output_type == "error" for o in cell.outputs)]


def check_cells(notebook: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    found = {}
    for cell in notebook.cells:
        if cell.cell_type == "code" and (match := CHECK_CALL.fullmatch(cell.source.strip())):
            found[match[1]] = cell
    assert sorted(found) == sorted(QUESTIONS)
    return found


def closing_cell(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    [cell] = [c for c in notebook.cells if c.cell_type == "code" and c.source.startswith("#@title Check everything")]
    return cell


class ColabRun:
    """A built notebook after a run in the simulated Colab."""

    def __init__(self, folder: str, tmp: Path) -> None:
        self.cwd = tmp / "content"
        self.cwd.mkdir()
        self.stand_ins = stand_ins(tmp / "stand-ins", pip_exit_code=1, in_colab=True)
        notebook = nbformat.read(ROOT / folder / NOTEBOOK, as_version=4)
        notebook.cells.append(nbformat.v4.new_code_cell("print(grader.interpreter)"))
        execute(notebook, self.cwd, self.stand_ins, in_colab=True)
        self.otter_saw = output_text(notebook.cells.pop())
        self.notebook = notebook


@pytest.fixture(scope="module")
def colab_student(tmp_path_factory: pytest.TempPathFactory) -> ColabRun:
    return ColabRun("student", tmp_path_factory.mktemp("colab-student"))


@pytest.fixture(scope="module")
def colab_solutions(tmp_path_factory: pytest.TempPathFactory) -> ColabRun:
    return ColabRun("solutions", tmp_path_factory.mktemp("colab-solutions"))


def test_otter_believes_it_runs_in_colab(colab_student: ColabRun) -> None:
    assert "COLAB" in colab_student.otter_saw


# What otter's own display of a check shows of the test runner: never in the notebook.
TEST_INTERNALS = ("Error at line", "Test case failed", "check.check_", "def test_", "tests/q", "REFERENCE_VALUES",
                  "Traceback")


def shows_no_test_internals(shown: str) -> bool:
    return not any(internal in shown for internal in TEST_INTERNALS)


def test_blank_notebook_in_colab_fails_every_check_cleanly(colab_student: ColabRun) -> None:
    for question, cell in check_cells(colab_student.notebook).items():
        shown = output_text(cell)
        assert not errors([cell]), f"{question}: {shown}"
        assert f"{question}: 0 of " in shown and "❌ " in shown and "✅" not in shown, shown
        assert "replace the `...` with your code" in shown or "has not been computed yet" in shown, shown
        assert "hidden checks try your code on other inputs" in shown and shows_no_test_internals(shown), shown
        html = next(o.data["text/html"] for o in cell.outputs if "text/html" in o.get("data", {}))
        assert "❌" in html and shows_no_test_internals(html)
    assert "does not exist" not in "\n".join(output_text(c) for c in colab_student.notebook.cells if c.cell_type == "code")


def test_solutions_in_colab_pass_every_check_and_raise_nothing(colab_solutions: ColabRun) -> None:
    code = [cell for cell in colab_solutions.notebook.cells if cell.cell_type == "code"]
    assert errors(code) == []
    for question, cell in check_cells(colab_solutions.notebook).items():
        shown = output_text(cell)
        assert re.search(rf"{question}: (\d+) of \1 points? from the public checks, which all pass\.", shown), shown
        assert "❌" not in shown and shows_no_test_internals(shown)
        # A pass says what it checked, and that the hidden checks decide the rest.
        assert "✅ " in shown and re.search(r"hidden checks try your code on other inputs too, and decide the "
                                           rf"other \d+ points? of {question}:\n   • ", shown), shown


@pytest.mark.parametrize("run, total, left", [("colab_student", 0, "Still to do: q1.1 (unfinished), q1.2 (unfinished)"),
                                              ("colab_solutions", sum(PUBLIC_POINTS.values()),
                                               "Every public check passes.")])
def test_colab_closing_cell_sums_up_and_says_download_the_notebook(run: str, total: int, left: str,
                                                                    request: pytest.FixtureRequest) -> None:
    colab_run: ColabRun = request.getfixturevalue(run)
    shown = output_text(closing_cell(colab_run.notebook))
    assert "File > Download > Download .ipynb" in shown and "Gradescope" in shown
    public = sum(PUBLIC_POINTS.values())
    assert f"Public checks: {total:g} of {public:g} points." in shown and left in shown, shown
    assert f"hidden checks decide the other {TOTAL - public:g} points (of {TOTAL:g})" in shown
    assert all(re.search(rf"^  {re.escape(question)} +\d+ of \d+ .* \+ \d+ points? decided when graded$", shown, re.M)
               for question in QUESTIONS), shown  # what is public, and done or not; what is still to be decided
    assert "Running every check" not in shown  # what it said while it ran: replaced by the summary
    assert not list(colab_run.cwd.glob("*.zip"))


@pytest.mark.parametrize("run", ["colab_student", "colab_solutions"])
def test_colab_set_up_writes_the_folder_files_and_never_calls_pip(run: str, request: pytest.FixtureRequest) -> None:
    colab_run: ColabRun = request.getfixturevalue(run)
    built = ROOT / "student"  # both notebooks carry the student folder's public checks
    expected = [Path("backprop_checks.py")] + sorted(p.relative_to(built) for p in (built / "tests").glob("*.py"))
    assert sorted(p.relative_to(colab_run.cwd) for p in colab_run.cwd.rglob("*.py")
                  if "__pycache__" not in p.parts) == sorted(expected)
    for path in expected:
        assert (colab_run.cwd / path).read_text() == (built / path).read_text(), path
    assert not list(colab_run.cwd.glob("*.ipynb"))
    assert not (colab_run.stand_ins / "pip-calls.txt").exists()


@pytest.fixture(scope="module")
def downloaded_and_graded(colab_student: ColabRun, colab_solutions: ColabRun,
                          tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, tuple[float, float]]]:
    """Both notebooks as downloaded from the simulated Colab, and a notebook whose every cell tag an
    editor dropped (its forward pass reads the global K), graded in one batch."""
    folder = tmp_path_factory.mktemp("graded-in-a-batch")
    paths = []
    for name, colab_run in (("student", colab_student), ("solutions", colab_solutions)):
        paths.append(folder / f"Copy of {name}.ipynb")
        nbformat.write(colab_run.notebook, paths[-1])
    notebook = fill_in({**BASELINE, "q2.1": BASELINE["q2.1"].replace("    K = len(all_weights) - 1\n", "")})
    for cell in notebook.cells:
        cell.metadata.pop("tags", None)
    paths.append(folder / "global-K.ipynb")
    nbformat.write(notebook, paths[-1])
    return graded_scores(paths, folder / "graded")


@pytest.mark.sandbox
@pytest.mark.parametrize("run", ["student", "solutions"])
def test_notebook_downloaded_from_colab_is_graded(run: str, downloaded_and_graded) -> None:
    scores = downloaded_and_graded[f"Copy of {run}.ipynb"]
    assert sorted(scores) == sorted(QUESTIONS)
    if run == "solutions":
        assert all(score == points for score, points in scores.values()), scores
    else:
        assert all(score == 0 for score, _ in scores.values()), scores


@pytest.mark.sandbox
def test_renamed_copy_alone_in_a_folder_checks_and_exports(tmp_path: Path) -> None:
    folder = tmp_path / "downloads"
    folder.mkdir()
    renamed = folder / "my backprop homework.ipynb"
    renamed.write_bytes((ROOT / "solutions" / NOTEBOOK).read_bytes())
    python_path = stand_ins(tmp_path / "stand-ins", pip_exit_code=1, in_colab=False)
    notebook = execute(nbformat.read(renamed, as_version=4), folder, python_path, in_colab=False)
    assert errors([cell for cell in notebook.cells if cell.cell_type == "code"]) == []
    for question, cell in check_cells(notebook).items():
        assert "which all pass" in output_text(cell)
    closing = closing_cell(notebook)
    assert "gets the results above" in output_text(closing) and "upload the zip file" in output_text(closing)
    assert [output for output in closing.outputs if output.get("name") == "stderr"] == []  # no kernel notice
    [export] = folder.glob("my backprop homework_*.zip")
    summary, link = [o.data["text/html"] for o in closing.outputs if "text/html" in o.get("data", {})]
    public = sum(PUBLIC_POINTS.values())
    assert f"Public checks: {public:g} of {public:g} points." in summary and "Every public check passes." in summary
    assert f'href="{quote(export.name)}"' in link and "Your zip file is ready" in link
    with zipfile.ZipFile(export) as archive:  # what grading reads: the notebook, not otter's log of every check
        assert renamed.name in archive.namelist() and ".OTTER_LOG" not in archive.namelist()
    [scores] = graded_scores([export], tmp_path / "graded").values()
    assert all(score == points for score, points in scores.values()) and sorted(scores) == sorted(QUESTIONS)
    assert not (python_path / "pip-calls.txt").exists()


def test_a_saved_file_that_gets_other_results_gives_no_zip(tmp_path: Path) -> None:
    """The closing cell runs the saved file from the top: if that gets other results than the
    checks in the live kernel (here, the saved file holds the blank q1.1), it says so and leaves no zip."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    saved = folder / "my homework.ipynb"
    solved = nbformat.read(ROOT / "solutions" / NOTEBOOK, as_version=4)
    blank_answer = next(cell.source for cell in nbformat.read(ROOT / "student" / NOTEBOOK, as_version=4).cells
                        if cell.source.startswith("f0 = ..."))
    on_disk = nbformat.from_dict(json.loads(json.dumps(solved)))
    next(cell for cell in on_disk.cells if cell.source.startswith("f0 = ")).source = blank_answer
    nbformat.write(on_disk, saved)
    execute(solved, folder, stand_ins(tmp_path / "stand-ins", pip_exit_code=1, in_colab=False), in_colab=False)
    shown = output_text(closing_cell(solved))
    differ = re.search(r"Not submitted: run from the top in a fresh kernel, as the grader runs it, the saved "
                       r"notebook gets other results \(([^)]*)\)", shown)
    assert differ and differ[1].split(", ")[0] == "q1.1" and "q2.1" not in differ[1], shown
    assert "Kernel > Restart Kernel and Run All Cells" in shown and "Your zip file is ready" not in shown
    assert list(folder.glob("*.zip")) == []


def test_the_closing_cell_drops_the_test_kernels_stderr_and_passes_on_other_warnings(
        recwarn: pytest.WarningsRecorder, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel_stderr = ("[IPKernelApp] WARNING | Kernel is running over TCP without encryption. All communication "
                     "(including code and outputs) is sent in plain text and is susceptible to eavesdropping.\n"
                     "Assertion failed: pfd.revents & POLLIN (src/signaler.cpp:238)\n")  # both seen here

    def grade_zip_file(zip_path: str, nb_arcname: str, tests_dir: str) -> str:
        """Warns as otter's grade_zip_file does, and once more."""
        warnings.warn(kernel_stderr, RuntimeWarning)
        warnings.warn("something else", UserWarning)
        return "results"

    import otter.check.utils  # here: otter takes most of a second to import, which collecting the tests need not pay

    monkeypatch.setattr(otter.check.utils, "grade_zip_file", grade_zip_file)
    recwarn.clear()
    assert backprop_checks.grade_saved("x.zip", "x.ipynb") == "results"
    assert [(warning.category, str(warning.message)) for warning in recwarn] == [(UserWarning, "something else")]


@pytest.mark.parametrize("ran_after_the_save, says", [
    (True, "These cells ran with code that is not saved yet:\n    f0 = 1\nSave the notebook"),
    (False, "These cells were changed after they last ran:\n    f0 = 2\nRun them again"),
])
def test_the_closing_cell_says_to_save_or_to_run_again(ran_after_the_save: bool, says: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A cell that ran with code not saved yet needs a save only; one changed and saved after it ran
    needs to run again."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("f0 = 2"), nbformat.v4.new_code_cell("x = 1")])
    path = tmp_path / "saved.ipynb"
    nbformat.write(notebook, path)
    saved = path.stat().st_mtime
    ran = {notebook.cells[0].id: ("f0 = 1", saved + (1 if ran_after_the_save else -1)),
           notebook.cells[1].id: ("x = 1", saved - 1)}
    monkeypatch.setattr(backprop_checks, "cells_run", lambda: ran)
    shown = repr(backprop_checks.submission_of(None, None, str(path), lambda note: None))
    assert shown.startswith("Not submitted: the saved notebook is not what you ran.") and says in shown, shown


NOT_SET_UP = 'The checks are not set up yet: run the set-up cell ("Set up the checks", the first code cell), then'


def packed_code(set_up: str) -> str:
    """The code the set-up cell unpacks and runs."""
    [packed] = re.findall(r'b85decode\("([^"]+)"\)', set_up)
    return zlib.decompress(base64.b85decode(packed)).decode()


@pytest.mark.parametrize("folder", ["student", "solutions"])
def test_the_notebook_shows_no_machinery(folder: str) -> None:
    """Under the title, a set-up cell of a few lines, however long what it carries (one line), shown
    and runnable in Jupyter, a form in Colab; an init cell of a few lines; a closing cell of three."""
    cells = nbformat.read(ROOT / folder / NOTEBOOK, as_version=4).cells
    code = [index for index, cell in enumerate(cells) if cell.cell_type == "code"]
    title = next(index for index, cell in enumerate(cells) if cell.source.startswith("# "))
    set_up, init, closing = cells[code[0]], cells[code[1]], cells[code[-1]]
    assert title < code[0] and set_up.source.startswith("#@title Set up the checks")
    assert init.source.startswith(colab.INIT_MARKER) and closing.source.startswith("#@title Check everything")
    assert len(set_up.source.splitlines()) <= 6 and len(init.source.splitlines()) <= 10
    assert closing.source.splitlines()[-1] == "grader.submit()" and len(closing.source.splitlines()) <= 3
    for cell in (set_up, init, closing):
        assert "source_hidden" not in cell.metadata.get("jupyter", {})
        source = re.sub(r'"[^"]{1000,}"', '"..."', cell.source)  # what the set-up cell carries, packed
        assert "class " not in source and "__" not in source and "def " not in source, source
    assert set_up.metadata["cellView"] == closing.metadata["cellView"] == "form"


@pytest.mark.parametrize("run", ["colab_student", "colab_solutions"])
def test_the_set_up_cell_says_when_it_worked(run: str, request: pytest.FixtureRequest) -> None:
    colab_run: ColabRun = request.getfixturevalue(run)
    [set_up] = [c for c in colab_run.notebook.cells if c.source.startswith("#@title Set up the checks")]
    assert output_text(set_up).strip() == ("The checks are set up. Run the cells in order; below each answer, "
                                           "its grader.check cell checks it.")


def set_up_source(folder: str) -> str:
    notebook = nbformat.read(ROOT / folder / NOTEBOOK, as_version=4)
    [cell] = [c for c in notebook.cells if c.cell_type == "code" and c.source.startswith("#@title Set up the checks")]
    assert "otter_ignore" in cell.metadata.get("tags", [])  # grading never runs it
    return cell.source


def pinned(requirements: Path, package: str) -> str:
    [pin] = [line for line in requirements.read_text().splitlines() if line.startswith(f"{package}==")]
    return pin


@pytest.mark.parametrize("present", [[], ["numpy"], ["numpy", "matplotlib", "otter"]])
def test_set_up_installs_what_the_notebook_imports_where_it_is_missing(present: list[str], tmp_path: Path) -> None:
    python_path = stand_ins(tmp_path / "stand-ins", pip_exit_code=0, in_colab=False)
    for module in present:  # stand-ins that the set-up cell finds installed
        (python_path / module).mkdir()
        (python_path / module / "__init__.py").write_text("")
    cwd = tmp_path / "content"
    cwd.mkdir()
    # -S leaves site-packages, and so numpy, matplotlib and otter, out; the cell needs the standard library only.
    result = subprocess.run([sys.executable, "-S", "-c", set_up_source("student")], cwd=cwd, check=True,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(python_path)})
    pins = {"numpy": pinned(ROOT / "assignment" / "requirements.txt", "numpy"),
            "matplotlib": pinned(ROOT / "assignment" / "requirements.txt", "matplotlib"),
            "otter": pinned(ROOT / "requirements.txt", "otter-grader")}
    missing = [pin for module, pin in pins.items() if module not in present]
    if missing:
        assert (python_path / "pip-calls.txt").read_text().split() == [
            "install", "--quiet", "--disable-pip-version-check", *missing]
        assert result.stdout.startswith(f"Installing {', '.join(missing)} ...")
    else:
        assert not (python_path / "pip-calls.txt").exists() and "Installing" not in result.stdout
    assert (cwd / "tests" / "q2.2.py").read_text() == (ROOT / "student" / "tests" / "q2.2.py").read_text()


@pytest.mark.parametrize("imports", ["import numpy as np\n%matplotlib inline", "import numpy, scipy.linalg"])
def test_the_build_refuses_a_notebook_importing_what_the_set_up_cell_would_not_install(imports: str) -> None:
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(f"{colab.INIT_MARKER}\nimport otter\ngrader = otter.Notebook()"),
        nbformat.v4.new_code_cell(f"{imports}\nfrom matplotlib import pyplot\nimport math"),
        nbformat.v4.new_markdown_cell(colab.SUBMISSION_HEADING),
        nbformat.v4.new_code_cell("grader.export(pdf=False)")])
    otter_pin = pinned(ROOT / "requirements.txt", "otter-grader")
    if "scipy" in imports:
        with pytest.raises(colab.ColabError, match="imports scipy, which .* does not pin"):
            colab.make_self_contained(notebook, ROOT / "student", otter_pin)
    else:
        colab.make_self_contained(notebook, ROOT / "student", otter_pin)
        assert repr(colab.runtime_packages(otter_pin)) in packed_code(notebook.cells[0].source)


@pytest.mark.sandbox
def test_grading_keeps_its_hidden_tests_even_if_an_editor_drops_the_cell_tags(downloaded_and_graded) -> None:
    """A forward pass that reads the global K passes every case of q2.1 but the one on networks of
    other depths: with every tag dropped (so grading runs the set-up cell too), the hidden cases must
    still run and that one fail."""
    scores = downloaded_and_graded["global-K.ipynb"]
    assert scores["q2.1"][0] == points_without("q2.1", "test_other_networks") and scores["q1.1"][0] == scores["q1.1"][1]


def master_setting(key: str) -> str:
    """A setting of the master's ASSIGNMENT CONFIG, as the build takes it."""
    return take_our_settings(nbformat.read(ROOT / "assignment" / NOTEBOOK, as_version=4))[key]


def test_student_notebook_and_readme_open_in_colab_from_the_masters_repository() -> None:
    notebook = nbformat.read(ROOT / "student" / NOTEBOOK, as_version=4)
    repo = master_setting("colab_repo")
    badge = colab.badge_markdown(repo, f"student/{NOTEBOOK}")
    assert f"(https://colab.research.google.com/github/{repo}/blob/main/student/{NOTEBOOK})" in badge
    assert notebook.cells[0].cell_type == "markdown" and badge in notebook.cells[0].source
    assert notebook.metadata["otter"]["assignment_name"] == "backpropagation"
    assert (ROOT / "README.md").read_text().count("colab.research.google.com/github/") == 1
    assert badge in (ROOT / "README.md").read_text()


def test_build_rejects_a_malformed_colab_repository(tmp_path: Path) -> None:
    master = nbformat.read(ROOT / "assignment" / NOTEBOOK, as_version=4)
    [config] = [cell for cell in master.cells if cell.source.startswith("# ASSIGNMENT CONFIG")]
    config.source = config.source.replace(f"colab_repo: {master_setting('colab_repo')}", "colab_repo: not a repository")
    nbformat.write(master, tmp_path / NOTEBOOK)
    result = subprocess.run([sys.executable, "-m", "backprop_hw.build", "--out", str(tmp_path / "out"),
                             "--master", str(tmp_path / NOTEBOOK)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1 and "org/repo" in result.stderr and "not a repository" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_check_before_the_set_up_cell_says_to_run_it(tmp_path: Path) -> None:
    """A student who runs from the cell after the set-up cell on, in an empty folder, is told by every
    check to run it (no error, no missing test)."""
    notebook = nbformat.read(ROOT / "student" / NOTEBOOK, as_version=4)
    notebook.cells = [cell for cell in notebook.cells if not cell.source.startswith("#@title Set up the checks")]
    folder = tmp_path / "empty"
    folder.mkdir()
    execute(notebook, folder, stand_ins(tmp_path / "stand-ins", pip_exit_code=1, in_colab=False), in_colab=False)
    assert errors([cell for cell in notebook.cells if cell.cell_type == "code"]) == []
    for question, cell in check_cells(notebook).items():
        assert NOT_SET_UP in output_text(cell), question
    assert NOT_SET_UP in output_text(closing_cell(notebook))


def test_run_all_then_part_1_gives_part_1s_numbers(tmp_path: Path) -> None:
    """In one kernel: the blank notebook run top to bottom (Part 2 included), then Part 1's answers
    filled in and their cells, their checks and the comparison cell run again. Part 2 changes no name
    of Part 1's, so the loss is Part 1's, the checks pass and the table and plot appear."""
    notebook = nbformat.read(ROOT / "student" / NOTEBOOK, as_version=4)
    folder = tmp_path / "run-all"
    folder.mkdir()
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(folder)}})
    answers = {"f0 = ...": BASELINE["q1.1"], "dldf3 = ...": BASELINE["q1.2"], "dldbeta3 = ...": BASELINE["q1.3"]}
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                client.execute_cell(cell, index)
        again = []
        for index, cell in enumerate(notebook.cells):
            for blank, answer in answers.items():
                if cell.source.startswith(blank):
                    cell.source = answer + "print(f'loss {l_i:.6f}')\n" if blank == "f0 = ..." else answer
                    again += [index, index + 1]  # the answer cell, and its check after it
        comparison = next(i for i, cell in enumerate(notebook.cells) if cell.source.startswith("parameters = dict("))
        for index in [*again, comparison]:
            client.execute_cell(notebook.cells[index], index)
    shown = {index: output_text(notebook.cells[index]) for index in [*again, comparison]}
    assert errors([notebook.cells[index] for index in shown]) == []
    assert f"loss {TOY_PRINTED['l_i']:.6f}" in shown[again[0]]
    for index in again[1::2]:
        assert "which all pass" in shown[index], shown[index]
    row = re.search(rf"omega0 +{TOY_PRINTED['dldomega0']:.6f} +(-?\d+\.\d+)", shown[comparison])
    assert row and float(row[1]) == pytest.approx(TOY_PRINTED["dldomega0"], rel=1e-4, abs=1e-5), shown[comparison]
    assert any("image/png" in output.get("data", {}) for output in notebook.cells[comparison].outputs)
