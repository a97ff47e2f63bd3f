"""Turn a corpus answer into a filled-in student notebook and grade it as Gradescope does."""

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from conftest import QUESTIONS, ROOT, gradescope_dry_run

from .answers import Answer

STUDENT_NOTEBOOK = ROOT / "student" / "backpropagation.ipynb"


@dataclass(frozen=True)
class Graded:
    """What the autograder gave one answer: {question: (score, max)} and each question's output."""

    scores: dict[str, tuple[float, float]]
    outputs: dict[str, str]

    def full_marks(self, question: str) -> bool:
        score, maximum = self.scores[question]
        return score == maximum


def fill_in(answer: Answer) -> nbformat.NotebookNode:
    """The committed student notebook with its five answer cells replaced by `answer`'s code."""
    notebook = nbformat.read(STUDENT_NOTEBOOK, as_version=4)
    answer_cells = [cell for cell in notebook.cells if "otter_answer_cell" in cell.metadata.get("tags", [])]
    assert len(answer_cells) == len(QUESTIONS), "the student notebook should have one answer cell per question"
    for cell, question in zip(answer_cells, QUESTIONS):
        cell.source = answer.cells()[question]
    return notebook


def slug(answer: Answer) -> str:
    return re.sub(r"[^a-z0-9]+", "-", f"{answer.question} {answer.name}".lower()).strip("-")


def grade(answer: Answer, folder: Path) -> Graded:
    """Grade `answer` with the committed autograder zip's own entry point, in `folder`."""
    folder.mkdir(parents=True)
    submission = folder / "backpropagation.ipynb"
    nbformat.write(fill_in(answer), submission)
    results = gradescope_dry_run(submission, folder)
    tests = [test for test in results["tests"] if test["name"] in QUESTIONS]
    return Graded({test["name"]: (test["score"], test["max_score"]) for test in tests},
                  {test["name"]: test.get("output", "") for test in tests})
