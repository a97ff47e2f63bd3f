"""Grading notebooks in the tests: many at once with `make grade`'s engine, a few through the
zip's Gradescope entry point, and what a student and an instructor see of the results."""

import csv
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from backprop_hw import gradescope_check, grading, sandbox
from backprop_hw.autograder.feedback import NOTES_TITLE
from backprop_hw.paths import AUTOGRADER_ZIP, STUDENT_NOTEBOOK
from backprop_hw.results import RESULTS_DIR
from conftest import QUESTIONS

# Short cells keep the loops in the tests to seconds (a notebook's overall limit costs time only to
# one that hangs, and leaves each question's checks room on a loaded machine), and a smaller share
# of memory makes a submission that takes too much hit the limit sooner.
FAST_LIMITS = sandbox.Limits(cell_seconds=5, wall_seconds=120, memory_bytes=512 * sandbox.MIB)


@dataclass(frozen=True)
class Graded:
    """What grading gave one submission."""

    results: dict  # Gradescope's results.json
    row: dict  # its grades.csv row (make grade only)

    @property
    def scores(self) -> dict[str, float]:
        return {test["name"]: test["score"] for test in self.results["tests"] if test["name"] in QUESTIONS}

    def output(self, question: str) -> str:
        return next(test["output"] for test in self.results["tests"] if test["name"] == question)

    @property
    def visible(self) -> str:
        """Everything a student sees of the results (now, or after the due date)."""
        return "\n".join(test.get("output", "") for test in self.results["tests"]
                         if test.get("visibility", "visible") in ("visible", "after_due_date"))

    @property
    def notes(self) -> str:
        return next(test["output"] for test in self.results["tests"] if test["name"] == NOTES_TITLE)


def fill_in(cells: dict[str, str]) -> nbformat.NotebookNode:
    """The committed student notebook with answer cells replaced: {question: code}."""
    notebook = nbformat.read(STUDENT_NOTEBOOK, as_version=4)
    answer_cells = [cell for cell in notebook.cells if "otter_answer_cell" in cell.metadata.get("tags", [])]
    assert len(answer_cells) == len(QUESTIONS), "the student notebook should have one answer cell per question"
    for cell, question in zip(answer_cells, QUESTIONS):
        cell.source = cells.get(question, cell.source)
    return notebook


def insert_after_check(notebook: nbformat.NotebookNode, question: str, source: str) -> nbformat.NotebookNode:
    """`notebook` with a code cell added right after the check of `question`."""
    [index] = [i for i, cell in enumerate(notebook.cells) if cell.source.strip() == f'grader.check("{question}")']
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return notebook


def write(notebook: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def grade_fast(submissions: Path, out: Path, limits: sandbox.Limits = FAST_LIMITS,
               workers: int | None = None) -> dict[str, Graded]:
    """Grade every submission in a folder with `make grade`'s engine (`workers`: one per core by
    default); {file: Graded}."""
    rows = grading.grade_folder(submissions, out, limits=limits, workers=workers, progress=False)
    return {row["file"]: Graded(json.loads((out / RESULTS_DIR / row["file"] / "results.json").read_text()), row)
            for row in rows}


def grade_gradescope(submission: Path, mode: int = 0o755, autograder: Path = AUTOGRADER_ZIP) -> Graded:
    """Grade one submission through the zip's own run_autograder, as Gradescope runs it."""
    results, run = gradescope_check.dry_run(submission, autograder=autograder, mode=mode)
    assert results is not None and run.exit_code == 0, run.output.decode(errors="replace")
    gradescope_check.validate(results)
    return Graded(results, {})


def autograder_with(settings: dict, path: Path) -> Path:
    """A copy of the autograder zip at `path` whose otter_config.json has `settings` too (shorter limits, say)."""
    with zipfile.ZipFile(AUTOGRADER_ZIP) as original, zipfile.ZipFile(path, "w") as copy:
        for info in original.infolist():
            data = original.read(info)
            if info.filename == "otter_config.json":
                data = json.dumps({**json.loads(data), **settings}).encode()
            copy.writestr(info, data)
    return path


def as_excel_opens(path: Path) -> list[list[str]]:
    """A CSV file's cells as Excel reads it when it is opened: UTF-8 after a byte-order mark, and
    without one, the system's code page (cp1252 on Western Windows). LibreOffice reads the mark too."""
    data = path.read_bytes()
    text = data[3:].decode("utf-8") if data.startswith(b"\xef\xbb\xbf") else data.decode("cp1252", errors="replace")
    return list(csv.reader(text.splitlines()))
