"""A student's notebook run in this very process, reached the way the trusted grader reaches it.

The harness's own `Student` runs the cells, and the tests see it through `trusted.StudentValues`
and the JSON protocol, with no subprocess and no sandbox: the built test cases run against it in
milliseconds. For unit tests only: here the student's code and the tests share a process.
"""

import json
from pathlib import Path

import nbformat

from backprop_hw.autograder import harness, submission, trusted
from backprop_hw.paths import ROOT, STUDENT_NOTEBOOK

TESTS = ROOT / "tests"


class InProcess:
    """The harness's Student with a fresh namespace, and the cells it ran."""

    cell_seconds = 20.0

    def __init__(self) -> None:
        self.budget = trusted.Budget(600, self.cell_seconds)
        self.student = harness.Student(timeout=self.cell_seconds)
        self.student.shell.reset(new_session=False)
        self.student.cells.clear()
        self.student.snapshots.clear()
        self.sources: list[str] = []

    @classmethod
    def running(cls, sources: list[str]) -> "InProcess":
        """A fresh one that has run `sources`, cell after cell."""
        student = cls()
        for source in sources:
            student.run(source)
        return student

    def run(self, source: str) -> dict:
        self.sources.append(source)
        return self.request({"run": source})["ran"]

    def limited(self, message: dict, limit: float, kind: str) -> trusted.Answer:
        """No clock here: the harness's own limit (`cell_seconds`) is the only one."""
        return trusted.Answer(self.request(message), False, limit, True)

    def request(self, message: dict) -> dict:
        """A request as the grader sends it, through JSON both ways."""
        return json.loads(json.dumps(self.student.answer(json.loads(json.dumps(message)))))

    def values(self, question: str, hidden: bool) -> trusted.StudentValues:
        """What a test of `question` reads, at a check taken now."""
        self.request({"snapshot": question})
        return trusted.StudentValues(self, question, len(self.sources), hidden)


def notebook_cells(answers: dict[str, str], path: Path = STUDENT_NOTEBOOK) -> list[str]:
    """The code grading runs of a notebook whose answer cells are replaced: {question: code}; but
    otter's own first cell, which would write its log into this process's working directory (the
    checks are run here by the tests, not by otter)."""
    notebook = nbformat.read(path, as_version=4)
    answer_cells = [cell for cell in notebook.cells if "otter_answer_cell" in cell.metadata.get("tags", [])]
    for cell, question in zip(answer_cells, ("q1.1", "q1.2", "q1.3", "q2.1", "q2.2")):
        cell.source = answers.get(question, cell.source)
    return [cell.source for cell in submission.code_cells(notebook) if "otter.Notebook(" not in cell.source]


def case_results(student: InProcess, question: str, hidden: bool | None = None) -> dict[str, tuple[bool, str]]:
    """Run the built cases of `question` (public, hidden, or both) against the student as it stands:
    {case name: (passed, message)}."""
    test_file = trusted.load_tests(TESTS, ROOT / "assignment")[question]
    grading = trusted.Grading({question: test_file})
    for kind in ((False, True) if hidden is None else (hidden,)):
        trusted.run_cases(test_file, student.values(question, kind), grading)
    return {result.test_case.body.test_func.__name__: (result.passed, result.message)
            for result in test_file.test_case_results}
