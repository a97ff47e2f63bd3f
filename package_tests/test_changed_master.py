"""A course makes the homework its own: it changes the master and rebuilds, and everything follows.

In a copy of this working tree (a git repository of its own, in a folder with a space in its
name, using this checkout's venv), the master is changed as a TA changes it in Jupyter: Part 1's
given x, Part 2's seed, sizes and target, and the points of q1.3 and of one of its cases, saved
with outputs. `make` rebuilds, keeps the master without outputs and lists what to commit; the
printed targets are the new ones; and the part of the suite that reads its numbers from the build
(the checks' messages, feedback, the corpus graded in sandboxes, the examples, the notebook run as a
student runs it) passes there. `make test` starts this module first (see conftest.py): its build and
its tests run in subprocesses while the other workers run the rest.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from backprop_hw.paths import NOTEBOOK, ROOT
from corpus.answers import WRONG
from corpus.scenarios import SCENARIOS

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

# The part of the suite that holds the build's numbers, run again in the changed copy: the checks'
# messages and feedback on the built cases, what the student files hold, and the notebook as a student
# runs it (the checks' 25 random networks per answer, which take only the network's shape, left out).
SUBSET = ["package_tests/test_checks.py", "package_tests/test_feedback.py", "package_tests/test_trusted.py",
          "package_tests/test_package.py::test_student_files_hold_no_hidden_case_and_no_reference_code",
          "package_tests/test_package.py::test_every_question_has_public_and_hidden_cases",
          "package_tests/test_colab.py::test_run_all_then_part_1_gives_part_1s_numbers",
          "-k", "not the_public_random_network_gives_an_answer_the_same_outcome"]
# Of the corpus (graded in sandboxes), what the build's numbers decide: every scenario's points, and the
# wrong answers with exact points or typed-in values (their messages name the values). The rest of it
# reads no number of the build, and grades the shipped master in the whole suite.
CORPUS = "package_tests/test_corpus.py::"
NUMBERED = [f"{answer.question} {answer.name}" for answer in WRONG if answer.points is not None or "typed" in answer.name]
SUBSET += [*(f"{CORPUS}test_wrong_answer_loses_points_on_its_question_only[{name}]" for name in NUMBERED),
           *(f"{CORPUS}test_wrong_answer_is_explained_to_the_student[{name}]" for name in NUMBERED),
           *(f"{CORPUS}test_scenario_earns_exactly_its_points[{scenario.name}]" for scenario in SCENARIOS)]

# What a TA changes: (the start of a cell, the text it holds, what it becomes).
CHANGES = [("beta0, beta1", "x, y = 2.3, 2.0", "x, y = 1.9, 2.0"),
           ("np.random.seed(0)", "np.random.seed(0)", "np.random.seed(1)"),
           ("np.random.seed(1)", "K = 5", "K = 4"),
           ("np.random.seed(1)", "D = 6", "D = 5"),
           ("def least_squares_loss", "np.ones((D_o, 1)) * 20.0", "np.ones((D_o, 1)) * 15.0"),
           ("# BEGIN QUESTION\nname: q1.3", "points: 4", "points: 5"),
           ('""" # BEGIN TEST CONFIG\npoints: 2\nhidden: true\n""" # END TEST CONFIG\ndef test_parameters_weights',
            "points: 2", "points: 3")]


def change_as_in_jupyter(path: Path) -> None:
    """Make the CHANGES, and save the master as Jupyter does after a run: with outputs and counts."""
    master = nbformat.read(path, as_version=4)
    for start, old, new in CHANGES:
        [cell] = [cell for cell in master.cells if cell.source.startswith(start)]
        assert cell.source.count(old) == 1, (start, old)
        cell.source = cell.source.replace(old, new)
    for count, cell in enumerate((cell for cell in master.cells if cell.cell_type == "code"), 1):
        cell.execution_count = count
        cell.outputs = [nbformat.v4.new_output("stream", text=f"output {count}\n")]
    nbformat.write(master, path)


def git(folder: Path, *arguments: str) -> str:
    return subprocess.run(["git", "-c", "user.name=TA", "-c", "user.email=ta@example.edu", *arguments], cwd=folder,
                          check=True, capture_output=True, text=True).stdout


def copy_of_the_working_tree(folder: Path) -> Path:
    """This checkout as it stands (committed or not), committed into a repository of its own."""
    files = git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, folder / name)
    (folder / ".venv").symlink_to(ROOT / ".venv")  # make finds it ready: no 750 MB install
    git(folder, "init", "-q")
    (folder / ".git" / "info" / "exclude").write_text(".venv\n")  # a link, which .gitignore's `.venv/` misses
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "the course's homework")
    return folder


def printed(notebook: Path, what: str) -> tuple[str, str]:
    """(expected, yours) of what the executed notebook printed for `what` ("output", "loss")."""
    text = "\n".join(output.get("text", "") for cell in nbformat.read(notebook, as_version=4).cells
                     if cell.cell_type == "code" for output in cell.outputs)
    match = re.search(rf"^{what}: expected (.+?), yours (.+)$", text, re.M)
    assert match, text
    return match[1], match[2]


@pytest.fixture(scope="module")
def changed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    copy = copy_of_the_working_tree(tmp_path_factory.mktemp("course") / "the course's homework")
    change_as_in_jupyter(copy / "assignment" / NOTEBOOK)
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("MAKE", "MFLAGS"))}
    made = subprocess.run(["make", "--no-print-directory"], cwd=copy, capture_output=True, text=True, env=environment)
    return copy, made


def test_make_rebuilds_the_changed_master_and_lists_what_to_commit(changed) -> None:
    copy, made = changed
    assert made.returncode == 0, made.stdout + made.stderr
    assert "removed the outputs saved in backpropagation.ipynb" in made.stdout
    listed = made.stdout.split("differ from the last commit:\n", 1)[1]
    for path in ("assignment/backpropagation.ipynb", "student/backpropagation.ipynb", "solutions/backpropagation.ipynb",
                 "tests/q1.3.py", "autograder/backpropagation-autograder.zip", "examples/submissions/correct.ipynb"):
        assert f": {path}\n" in listed, listed
    assert "Commit them together" in listed
    touched = {line[3:].split("/")[0] for line in git(copy, "status", "--porcelain").splitlines()}
    assert touched == {"assignment", "student", "solutions", "tests", "autograder", "examples"}
    master = nbformat.read(copy / "assignment" / NOTEBOOK, as_version=4)
    assert all(cell.outputs == [] and cell.execution_count is None for cell in master.cells if cell.cell_type == "code")


def test_the_printed_targets_are_the_changed_masters(changed) -> None:
    """The solutions print what the student notebook says to expect, and it is not last term's."""
    copy, made = changed
    assert made.returncode == 0, made.stderr
    for what in ("output", "loss"):
        expected, yours = printed(copy / "solutions" / NOTEBOOK, what)
        before, _ = printed(ROOT / "solutions" / NOTEBOOK, what)
        assert expected != before
        assert float(expected.strip("[]")) == pytest.approx(float(yours.strip("[]")), abs=1e-6)
    student = "\n".join(cell.source for cell in nbformat.read(copy / "student" / NOTEBOOK, as_version=4).cells
                        if "otter_ignore" not in cell.metadata.get("tags", []))  # the set-up cell's packed checks
    assert "{{" not in student and "$K = 4$, $D = 5$" in student and "$\\mathbf{y} = 15$" in student


def test_the_suite_holds_for_the_changed_master(changed) -> None:
    copy, made = changed
    assert made.returncode == 0, made.stderr
    suite = subprocess.run([sys.executable, "-m", "pytest", "-q", *SUBSET], cwd=copy,
                           capture_output=True, text=True)
    assert suite.returncode == 0, suite.stdout[-6000:] + suite.stderr[-2000:]
    assert re.search(r"\d+ passed", suite.stdout) and "skipped" not in suite.stdout.splitlines()[-1]
