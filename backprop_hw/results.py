"""Grading results, as both engines write them and the report and the bench read them.

A grading run folder holds `grades.csv` (otter grade's columns, a first row of points per
question, and an `integrity` column) and, per submission, `results/<file>/results.json`
(Gradescope's format), `feedback.txt` (what the student sees) and `log.txt` (the start of what the
notebook printed).
"""

import csv
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

GRADES_CSV = "grades.csv"
RESULTS_DIR = "results"
POINTS_ROW = "points-per-question"
COMPLETED = "Completed"
GRADER_ERROR = "grader error"
FIXED_COLUMNS = ("file", "total_points_earned", "percent_correct", "grading_status")
INFO_COLUMNS = ("integrity",)
GRADESCOPE_METADATA = "submission_metadata.yml"


@dataclass
class Submission:
    """One thing to grade: `name` is its row's `file` and its folder under results/."""

    name: str
    path: Path
    problem: Optional[str] = None  # why it cannot be graded at all


@dataclass
class Outcome:
    """What grading one submission gave."""

    results: Optional[dict] = None  # Gradescope results
    complete: bool = False  # the notebook ran to its end
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # integrity flags for the instructor, never a penalty
    error: Optional[str] = None  # why it could not be graded (the submission's fault)
    grader_error: Optional[str] = None  # why the grader itself failed: no score at all, never a zero
    log: str = ""
    seconds: float = 0.0


def find_submissions(folder: Path) -> list[Submission]:
    """Every submission in `folder`, sorted by name; anything else there is listed as a problem."""
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            found.append(Submission(entry.name, entry, "a symbolic link, not graded"))
        elif entry.is_dir() and (entry / GRADESCOPE_METADATA).is_file():
            found += [Submission(sub.name, sub) if sub.is_dir() and not sub.is_symlink()
                      else Submission(sub.name, sub, "not a submission folder of the Gradescope export")
                      for sub in sorted(entry.iterdir()) if sub.name != GRADESCOPE_METADATA and not sub.name.startswith(".")]
        elif entry.is_dir() or entry.suffix in (".ipynb", ".zip"):
            found.append(Submission(entry.name, entry))
        else:
            found.append(Submission(entry.name, entry, f"not a notebook, zip or folder ({entry.suffix or 'no extension'})"))
    names = [submission.name for submission in found]
    for submission in found:
        if names.count(submission.name) > 1:
            submission.problem = f"{names.count(submission.name)} submissions share this name; rename them"
    return found


def unpack_autograder(autograder: Path, folder: Path) -> Path:
    """Unpack the autograder zip once, outside every sandbox: the tests never enter one."""
    source = folder / "source"
    with zipfile.ZipFile(autograder) as archive:
        archive.extractall(source)
    return source


def question_points(source: Path) -> dict[str, float]:
    """{question: points} of an unpacked autograder, from its test files as the graders read them."""
    from backprop_hw.autograder import trusted

    return {name: test.possible for name, test in trusted.load_tests(source / "tests", source / "files").items()}


def complete_results(results: Optional[dict], points: dict[str, float], reason: str) -> dict:
    """Gradescope results with an entry (zero when absent) for every question."""
    results = json.loads(json.dumps(results)) if results else {"tests": []}
    tests = results.setdefault("tests", [])
    present = {test.get("name") for test in tests}
    for question, possible in points.items():
        if question not in present:
            tests.append({"name": question, "score": 0, "max_score": possible, "visibility": "visible",
                          "output": f"{question}: not graded: {reason}"})
    return results


def question_scores(results: dict, points: dict[str, float]) -> dict[str, float]:
    scores = {test.get("name"): test.get("score", 0) for test in results.get("tests", [])}
    return {question: float(scores.get(question) or 0) for question in points}


def status_of(outcome: Outcome) -> str:
    """otter grade's `Completed`, or what went wrong and what it cost."""
    if outcome.grader_error:
        return f"{GRADER_ERROR}: {outcome.grader_error} (no score: grade it again)"
    if outcome.error:
        return "; ".join([f"Not graded: {outcome.error}", *outcome.notes])
    if outcome.complete:
        return "; ".join([COMPLETED, *outcome.notes])
    return "; ".join(["Partly graded (questions not reached score 0)", *outcome.notes])


def feedback_text(results: dict) -> str:
    """What Gradescope shows the student: the visible entries, and those shown after the due date."""
    lines = []
    if results.get("output"):
        lines += [results["output"], ""]
    later = []
    for test in results.get("tests", []):
        visibility = test.get("visibility", "visible")
        score = f" ({test['score']:g} / {test['max_score']:g})" if "score" in test and "max_score" in test else ""
        entry = [f"{test.get('name', 'Test')}{score}", test.get("output", ""), ""]
        if visibility == "visible":
            lines += entry
        elif visibility == "after_due_date":
            later += entry
    if later:
        lines += ["Shown after the due date:", ""] + later
    return "\n".join(lines).rstrip() + "\n"


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8", errors="backslashreplace")  # never a reason for the batch to stop
    temporary.replace(path)


def record(out: Path, submission: Submission, outcome: Outcome, points: dict[str, float]) -> dict:
    """Write the submission's files; return its grades.csv row (empty scores for a grader error)."""
    status = f"Not graded: {submission.problem}" if submission.problem else status_of(outcome)
    results = complete_results(outcome.results, points, status)
    folder = out / RESULTS_DIR / submission.name
    write_atomically(folder / "results.json", json.dumps(results, indent=4) + "\n")
    write_atomically(folder / "feedback.txt", feedback_text(results))
    write_atomically(folder / "log.txt", outcome.log)
    row = {"file": submission.name, "grading_status": status, "integrity": "; ".join(outcome.flags)}
    if outcome.grader_error and not submission.problem:
        return {**row, **dict.fromkeys(points, ""), "total_points_earned": "", "percent_correct": ""}
    scores = question_scores(results, points)
    total, possible = sum(scores.values()), sum(points.values())
    return {**row, **scores, "total_points_earned": total,
            "percent_correct": round(total / possible, 6) if possible else 0}


def write_grades(out: Path, rows: list[dict], points: dict[str, float]) -> None:
    columns = ["file", *sorted(points), "total_points_earned", "percent_correct", "grading_status", "integrity"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerow({"file": POINTS_ROW, **points, "total_points_earned": sum(points.values()),
                     "percent_correct": 1, "grading_status": "--", "integrity": "--"})
    writer.writerows(sorted(rows, key=lambda row: row["file"]))
    write_atomically(out / GRADES_CSV, buffer.getvalue())


def read_grades(path: Path) -> tuple[Optional[dict], list[dict]]:
    """The points row (None if absent) and the submission rows of a grades.csv."""
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        rows = list(csv.DictReader(handle))
    points = next((row for row in rows if row.get("file") == POINTS_ROW), None)
    return points, [row for row in rows if row is not points]
