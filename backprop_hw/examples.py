"""Write the example submissions that `make grade` grades on a fresh clone.

    python -m backprop_hw.examples [--out examples/submissions]

They are made from the committed student and solutions notebooks, so they follow the homework when
it changes (the build writes them last), and the output is byte-for-byte reproducible (fixed zip
dates, sorted entries). Each name says what it tests; EXPECTED says what grading should make of it.
"""

import argparse
import json
import shutil
from pathlib import Path
from typing import Callable

import nbformat

from backprop_hw.paths import EXAMPLES, NOTEBOOK, ROOT, SOLUTIONS_NOTEBOOK, STUDENT_NOTEBOOK
from backprop_hw.zipfiles import write_zip

# Wrong answers, as (line of the solution, line a student might write instead).
SIGN_ERROR_Q1_2 = ("dldf2 = -np.sin(f2) * dldh3  # SOLUTION", "dldf2 = np.sin(f2) * dldh3")
NO_RELU_Q2_1 = ("all_h[layer + 1] = ReLU(all_f[layer])", "all_h[layer + 1] = all_f[layer]")
NO_INDICATOR_Q2_2 = ("all_dl_df[layer - 1] = indicator_function(all_f[layer - 1]) * all_dl_dh[layer]",
                     "all_dl_df[layer - 1] = all_dl_dh[layer]")

# A loop that catches the cell timeout and carries on: only the wall-clock limit stops it (and the
# cells after it run in a fresh process).
STUBBORN_LOOP = "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass"

# What grading should give each example: the cases it loses ({question: ALL, or the names of the
# case functions}, or ALL for every case of every question), or None where nothing can be graded;
# and a word the grading status must contain. `expected_scores` turns them into points.
ALL = "all"
SIGN_ERROR_Q1_2_LOSES = ("test_backward_values", "test_backward_output_end")
EXPECTED = {
    "blank.ipynb": (ALL, "Blank"),
    "correct.ipynb": ({}, "Completed"),
    "partly-wrong.ipynb": ({"q1.2": SIGN_ERROR_Q1_2_LOSES, "q2.2": ALL}, "Completed"),
    "export.zip": ({"q2.1": ALL}, "Completed"),
    "submission_1001": ({}, "Completed"),
    "submission_1002": ({"q1.2": SIGN_ERROR_Q1_2_LOSES}, "Completed"),
    "corrupt.ipynb": (None, "Not graded"),
    "empty.ipynb": (None, "Not graded"),
    "no-notebook.zip": (None, "no .ipynb notebook"),
    "two-notebooks.zip": (None, "2 .ipynb notebooks"),
    "other-assignment.ipynb": (None, "is for assignment 'another-homework'"),
    "late-infinite-loop.zip": ({}, "was stopped"),
    "stubborn-loop.zip": ({}, "could not be interrupted"),
    "kernel-death.zip": ({"q2.1": ALL, "q2.2": ALL}, "exit code 3"),
    "memory-hog.zip": ({}, "ran out of memory"),
    "pages-of-output.zip": ({}, "printed"),
}


def expected_scores(root: Path = ROOT) -> dict[str, tuple[tuple[float, ...] | None, str]]:
    """What grading should give each example with the tests built in `root`: its points per
    question (in the order q1.1 ... q2.2), or None, and a word its grading status must contain."""
    from backprop_hw.autograder.trusted import load_tests

    tests = load_tests(root / "tests", root / "assignment")
    return {name: (None if lost is None else tuple(points_losing(tests, lost).values()), reason)
            for name, (lost, reason) in EXPECTED.items()}


def points_losing(tests: dict, lost: dict[str, str | tuple[str, ...]] | str) -> dict[str, float]:
    """Each question's points (of `tests`, as `load_tests` gives them) once the cases `lost` names
    are lost: {question: ALL, or the names of the case functions}, or ALL for every case of every question."""
    points = {}
    for question, test_file in tests.items():
        losing = ALL if lost == ALL else lost.get(question, ())
        points[question] = sum(case.points for case in test_file.test_cases
                               if losing != ALL and case.body.test_func.__name__ not in losing)
    return points


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def replace_line(notebook: nbformat.NotebookNode, old: str, new: str) -> nbformat.NotebookNode:
    """A copy of `notebook` with one line of code changed; fails if the line is not there."""
    changed = nbformat.from_dict(json.loads(json.dumps(notebook)))
    cells = [cell for cell in changed.cells if cell.cell_type == "code" and old in cell.source]
    if len(cells) != 1:
        raise ValueError(f"expected one cell with {old!r} in the solutions, found {len(cells)}")
    cells[0].source = cells[0].source.replace(old, new)
    return changed


def insert_after_check(notebook: nbformat.NotebookNode, question: str, source: str) -> nbformat.NotebookNode:
    """A copy of `notebook` with a code cell added after the check of `question`."""
    changed = nbformat.from_dict(json.loads(json.dumps(notebook)))
    check = f'grader.check("{question}")'
    [index] = [i for i, cell in enumerate(changed.cells) if cell.source.strip() == check]
    cell = nbformat.v4.new_code_cell(source)
    cell.id = f"added-after-{question.replace('.', '-')}"
    changed.cells.insert(index + 1, cell)
    return changed


def text(notebook: nbformat.NotebookNode) -> bytes:
    return (nbformat.writes(notebook) + "\n").encode()


def write_examples(out: Path, root: Path = ROOT) -> None:
    """Write every example, made from the notebooks built in `root`, into `out`, replacing what was there."""
    solutions = read(root / SOLUTIONS_NOTEBOOK.relative_to(ROOT))
    student = read(root / STUDENT_NOTEBOOK.relative_to(ROOT))
    partly_wrong = replace_line(replace_line(solutions, *SIGN_ERROR_Q1_2), *NO_INDICATOR_Q2_2)
    other = nbformat.from_dict(json.loads(json.dumps(solutions)))
    other.metadata["otter"]["assignment_name"] = "another-homework"
    late: dict[str, Callable[[], nbformat.NotebookNode]] = {
        "late-infinite-loop.zip": lambda: insert_after_check(solutions, "q2.2", "while True:\n    pass"),
        "stubborn-loop.zip": lambda: insert_after_check(solutions, "q2.1", STUBBORN_LOOP),
        "kernel-death.zip": lambda: insert_after_check(solutions, "q1.3", "import os\nos._exit(3)"),
        "memory-hog.zip": lambda: insert_after_check(
            solutions, "q2.2", "import numpy as np\nhog = np.ones((50_000, 50_000))"),
        "pages-of-output.zip": lambda: insert_after_check(
            solutions, "q2.2", 'for line in range(30_000):\n    print("all work and no play " * 4, line)'),
    }
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    files = {
        "correct.ipynb": text(solutions),
        "blank.ipynb": text(student),
        "partly-wrong.ipynb": text(partly_wrong),
        "corrupt.ipynb": text(solutions)[:5000],
        "empty.ipynb": b"",
        "other-assignment.ipynb": text(other),
    }
    for name, data in files.items():
        (out / name).write_bytes(data)
    write_zip(out / "export.zip", {NOTEBOOK: text(replace_line(solutions, *NO_RELU_Q2_1))})
    write_zip(out / "no-notebook.zip", {"README.txt": b"I forgot to add my notebook.\n"})
    write_zip(out / "two-notebooks.zip", {NOTEBOOK: text(solutions), "backpropagation-old.ipynb": text(student)})
    for name, make in late.items():
        write_zip(out / name, {NOTEBOOK: text(make())})
    # The batch is a Gradescope export (its submission_metadata.yml at the top, which names the
    # submitters of its two folders) into which the other examples were dropped by hand.
    for submission, notebook in (("submission_1001", solutions),
                                 ("submission_1002", replace_line(solutions, *SIGN_ERROR_Q1_2))):
        (out / submission).mkdir(parents=True)
        (out / submission / NOTEBOOK).write_bytes(text(notebook))
    (out / "submission_metadata.yml").write_text(
        "submission_1001:\n  :submitters:\n  - :name: Ada Example\n    :sid: '1001'\n    :email: ada@example.edu\n"
        "submission_1002:\n  :submitters:\n  - :name: Bo Example\n    :sid: '1002'\n    :email: bo@example.edu\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=EXAMPLES)
    out = parser.parse_args().out
    write_examples(out)
    print(f"wrote the {len(EXPECTED)} example submissions in {out}")


if __name__ == "__main__":
    main()
