"""Grading results as both engines write them (`backprop_hw/results.py`): which entries of a folder
are submissions, complete per-question results, the grading status, the files of each submission,
and grades.csv, where a grader error holds no score at all.
"""

import csv
import json
from pathlib import Path

import pytest

from backprop_hw.results import (COMPLETED, GRADER_ERROR, GRADES_CSV, POINTS_ROW, RESULTS_DIR, Outcome, Submission,
                                 complete_results, feedback_text, find_submissions, question_scores, read_grades,
                                 record, status_of, write_grades)
from conftest import POINTS, QUESTIONS


def results_with(scores: dict[str, float]) -> dict:
    """Gradescope results as the graders write them: a public summary, some questions, the notes."""
    return {"tests": [{"name": "Public Tests", "visibility": "visible", "output": "q1.1 results: ok",
                       "status": "passed"}]
            + [{"name": name, "score": score, "max_score": POINTS[name], "visibility": "visible",
                "output": f"{name}: {score:g} of {POINTS[name]} points"} for name, score in scores.items()]
            + [{"name": "Grading notes (instructor only)", "visibility": "hidden", "output": "grading status: completed",
                "status": "passed"}]}


# ---------------------------------------------------------------------------------------------
# find_submissions


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    """A folder of submissions of every sort, and of things that are not submissions."""
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "alice.ipynb").write_text("{}")
    (folder / "bob.zip").write_bytes(b"PK")
    (folder / "carol").mkdir()
    (folder / "carol" / "hw.ipynb").write_text("{}")
    (folder / "notes.txt").write_text("not a submission")
    (folder / "README").write_text("not a submission")
    (folder / ".DS_Store").write_text("skipped")
    (folder / "link.ipynb").symlink_to(folder / "alice.ipynb")
    (folder / "linked-folder").symlink_to(folder / "carol", target_is_directory=True)
    export = folder / "assignment_123_export"
    export.mkdir()
    (export / "submission_metadata.yml").write_text("submission_111: {}\n")
    for name in ("submission_111", "submission_222", ".hidden_folder"):
        (export / name).mkdir()
        (export / name / "backpropagation.ipynb").write_text("{}")
    (export / "stray.csv").write_text("a,b")
    (export / "submission_333").symlink_to(export / "submission_222", target_is_directory=True)
    (folder / "submission_222").mkdir()  # the same name as one of the export's
    return folder


def test_find_submissions_lists_every_entry_once_with_its_problem(batch: Path) -> None:
    found = {submission.name: submission.problem for submission in find_submissions(batch)}
    assert found == {
        "alice.ipynb": None,
        "bob.zip": None,
        "carol": None,
        "notes.txt": "not a notebook, zip or folder (.txt)",
        "README": "not a notebook, zip or folder (no extension)",
        "link.ipynb": "a symbolic link, not graded",
        "linked-folder": "a symbolic link, not graded",
        "submission_111": None,
        "submission_222": "2 submissions share this name; rename them",
        "stray.csv": "not a submission folder of the Gradescope export",
        "submission_333": "not a submission folder of the Gradescope export",
    }


def test_find_submissions_gives_the_duplicate_name_twice_with_both_paths(batch: Path) -> None:
    duplicates = [s for s in find_submissions(batch) if s.name == "submission_222"]
    assert sorted(s.path for s in duplicates) == [batch / "assignment_123_export" / "submission_222",
                                                   batch / "submission_222"]
    assert all(s.problem for s in duplicates)


def test_find_submissions_takes_an_export_folder_apart(batch: Path) -> None:
    found = {submission.name: submission.path for submission in find_submissions(batch)}
    assert "assignment_123_export" not in found and "submission_metadata.yml" not in found
    assert found["submission_111"] == batch / "assignment_123_export" / "submission_111"
    assert ".hidden_folder" not in found


def test_find_submissions_treats_a_folder_without_metadata_as_one_submission(tmp_path: Path) -> None:
    (tmp_path / "dave").mkdir()
    (tmp_path / "dave" / "submission_1").mkdir()
    assert [(s.name, s.path, s.problem) for s in find_submissions(tmp_path)] == [("dave", tmp_path / "dave", None)]


def test_find_submissions_of_an_empty_folder_is_empty(tmp_path: Path) -> None:
    assert find_submissions(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# complete_results and question_scores


def test_complete_results_adds_a_zero_entry_for_each_missing_question() -> None:
    given = results_with({"q1.1": 3, "q2.2": 6})
    completed = complete_results(given, POINTS, "the notebook stopped")
    by_name = {test["name"]: test for test in completed["tests"]}
    assert set(by_name) == set(QUESTIONS) | {"Public Tests", "Grading notes (instructor only)"}
    assert by_name["q1.1"]["score"] == 3 and by_name["q2.2"]["score"] == 6
    for question in ("q1.2", "q1.3", "q2.1"):
        assert by_name[question] == {"name": question, "score": 0, "max_score": POINTS[question],
                                     "visibility": "visible", "output": f"{question}: not graded: the notebook stopped"}
    assert len(given["tests"]) == 4  # the caller's results are left as they were


@pytest.mark.parametrize("results", [None, {}, {"tests": []}, {"output": "no tests key"}])
def test_complete_results_of_nothing_is_every_question_at_zero(results: dict | None) -> None:
    completed = complete_results(results, POINTS, "grader error")
    assert question_scores(completed, POINTS) == {question: 0.0 for question in QUESTIONS}
    assert {test["name"]: test["max_score"] for test in completed["tests"]} == POINTS


def test_question_scores_reads_each_question_and_zero_for_the_rest() -> None:
    results = {"tests": [{"name": "q1.1", "score": 3}, {"name": "q1.2", "score": None}, {"name": "q2.1"},
                         {"name": "q2.2", "score": 4.5}, {"name": "Public Tests"}, {"name": "extra", "score": 99}]}
    assert question_scores(results, POINTS) == {"q1.1": 3.0, "q1.2": 0.0, "q1.3": 0.0, "q2.1": 0.0, "q2.2": 4.5}


# ---------------------------------------------------------------------------------------------
# status_of


def test_status_of_a_completed_grading() -> None:
    assert status_of(Outcome(complete=True)) == COMPLETED
    assert status_of(Outcome(complete=True, notes=["printed 3.0 MB"])) == "Completed; printed 3.0 MB"


def test_status_of_a_partly_graded_notebook_says_what_it_cost() -> None:
    status = status_of(Outcome(complete=False, notes=["a cell ran past 15 s and was stopped (line 3: while True:)"]))
    assert status == ("Partly graded (questions not reached score 0); "
                      "a cell ran past 15 s and was stopped (line 3: while True:)")
    assert not status.startswith(COMPLETED)


def test_status_of_a_submission_that_could_not_be_graded() -> None:
    assert status_of(Outcome(error="no .ipynb notebook in the submission")) \
        == "Not graded: no .ipynb notebook in the submission"


def test_status_of_a_grader_error_says_no_score_whatever_else_happened() -> None:
    expected = f"{GRADER_ERROR}: the grading worker stopped (no score: grade it again)"
    assert status_of(Outcome(grader_error="the grading worker stopped")) == expected
    assert status_of(Outcome(grader_error="the grading worker stopped", complete=True, error="x")) == expected


# ---------------------------------------------------------------------------------------------
# record: one submission's files and its row


def test_record_writes_the_three_files_and_returns_the_row(tmp_path: Path) -> None:
    outcome = Outcome(results=results_with({"q1.1": 4, "q1.2": 2, "q1.3": 4, "q2.1": 4, "q2.2": 6}), complete=True,
                      flags=["replaces library functions", "uses pickles or otter's log"], log="printed\n")
    row = record(tmp_path, Submission("alice.ipynb", tmp_path / "alice.ipynb"), outcome, POINTS)
    assert row == {"file": "alice.ipynb", "grading_status": "Completed",
                   "integrity": "replaces library functions; uses pickles or otter's log",
                   "q1.1": 4.0, "q1.2": 2.0, "q1.3": 4.0, "q2.1": 4.0, "q2.2": 6.0,
                   "total_points_earned": 20.0, "percent_correct": round(20 / 22, 6)}
    folder = tmp_path / RESULTS_DIR / "alice.ipynb"
    assert sorted(path.name for path in folder.iterdir()) == ["feedback.txt", "log.txt", "results.json"]
    written = json.loads((folder / "results.json").read_text())
    assert written == outcome.results
    assert (folder / "feedback.txt").read_text() == feedback_text(written)
    assert (folder / "log.txt").read_text() == "printed\n"


def test_record_completes_a_partly_graded_notebooks_results(tmp_path: Path) -> None:
    outcome = Outcome(results=results_with({"q1.1": 4}), complete=False, notes=["the notebook process was killed"])
    row = record(tmp_path, Submission("bob.ipynb", tmp_path / "bob.ipynb"), outcome, POINTS)
    assert row["total_points_earned"] == 4.0 and row["q2.2"] == 0.0
    written = json.loads((tmp_path / RESULTS_DIR / "bob.ipynb" / "results.json").read_text())
    missing = {t["name"]: t["output"] for t in written["tests"] if t["name"] in QUESTIONS and t["name"] != "q1.1"}
    assert set(missing) == {"q1.2", "q1.3", "q2.1", "q2.2"}
    assert all("not graded: Partly graded" in output and "killed" in output for output in missing.values())


def test_record_of_a_grader_error_holds_no_score(tmp_path: Path) -> None:
    outcome = Outcome(grader_error="the notebook's process failed before it was ready", log="traceback")
    row = record(tmp_path, Submission("carol.ipynb", tmp_path / "carol.ipynb"), outcome, POINTS)
    assert row["grading_status"].startswith(f"{GRADER_ERROR}: the notebook's process failed before it was ready")
    assert all(row[question] == "" for question in QUESTIONS)
    assert row["total_points_earned"] == "" and row["percent_correct"] == ""
    folder = tmp_path / RESULTS_DIR / "carol.ipynb"
    assert "grade it again" in (folder / "feedback.txt").read_text()
    assert (folder / "log.txt").read_text() == "traceback"


def test_record_of_a_submission_problem_is_a_zero_with_the_reason(tmp_path: Path) -> None:
    submission = Submission("notes.txt", tmp_path / "notes.txt", "not a notebook, zip or folder (.txt)")
    row = record(tmp_path, submission, Outcome(), POINTS)
    assert row["grading_status"] == "Not graded: not a notebook, zip or folder (.txt)"
    assert [row[question] for question in QUESTIONS] == [0.0] * len(QUESTIONS)
    assert row["total_points_earned"] == 0 and row["percent_correct"] == 0
    feedback = (tmp_path / RESULTS_DIR / "notes.txt" / "feedback.txt").read_text()
    assert "not graded: Not graded: not a notebook, zip or folder (.txt)" in feedback


def test_record_again_gives_the_same_files(tmp_path: Path) -> None:
    outcome = Outcome(results=results_with({"q1.1": 4}), complete=True, log="x")
    submission = Submission("dave.ipynb", tmp_path / "dave.ipynb")
    record(tmp_path, submission, outcome, POINTS)
    folder = tmp_path / RESULTS_DIR / "dave.ipynb"
    first = {path.name: path.read_bytes() for path in folder.iterdir()}
    record(tmp_path, submission, outcome, POINTS)
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == first


# ---------------------------------------------------------------------------------------------
# grades.csv


def test_write_and_read_grades_round_trip_with_the_points_row_first(tmp_path: Path) -> None:
    rows = [
        record(tmp_path, Submission("zoe, the second.ipynb", tmp_path / "z"), Outcome(
            results=results_with({"q1.1": 1.5}), complete=True, flags=['defines "comparison" methods']), POINTS),
        record(tmp_path, Submission("adam.ipynb", tmp_path / "a"), Outcome(grader_error="worker stopped"), POINTS),
    ]
    write_grades(tmp_path, rows, POINTS)
    with open(tmp_path / GRADES_CSV, newline="") as handle:
        raw = list(csv.reader(handle))
    assert raw[0] == ["file", *sorted(POINTS), "total_points_earned", "percent_correct", "grading_status", "integrity"]
    assert raw[1][0] == POINTS_ROW
    assert [line[0] for line in raw[2:]] == ["adam.ipynb", "zoe, the second.ipynb"]

    points, read = read_grades(tmp_path / GRADES_CSV)
    assert points == {"file": POINTS_ROW, **{q: str(p) for q, p in POINTS.items()}, "total_points_earned": "22",
                      "percent_correct": "1", "grading_status": "--", "integrity": "--"}
    adam, zoe = read
    assert adam == {"file": "adam.ipynb", **dict.fromkeys(QUESTIONS, ""), "total_points_earned": "",
                    "percent_correct": "", "grading_status": rows[1]["grading_status"], "integrity": ""}
    assert zoe == {key: str(value) for key, value in rows[0].items()}
    assert zoe["integrity"] == 'defines "comparison" methods' and zoe["q1.1"] == "1.5"


def test_read_grades_without_a_points_row(tmp_path: Path) -> None:
    (tmp_path / GRADES_CSV).write_text("file,q1.1,grading_status\nalice.ipynb,4,Completed\n")
    points, rows = read_grades(tmp_path / GRADES_CSV)
    assert points is None
    assert rows == [{"file": "alice.ipynb", "q1.1": "4", "grading_status": "Completed"}]


def test_write_grades_of_no_rows_is_the_header_and_points(tmp_path: Path) -> None:
    write_grades(tmp_path, [], POINTS)
    points, rows = read_grades(tmp_path / GRADES_CSV)
    assert points is not None and points["total_points_earned"] == "22" and rows == []


# ---------------------------------------------------------------------------------------------
# feedback_text


def test_feedback_text_shows_visible_entries_then_those_after_the_due_date_never_hidden() -> None:
    results = {"output": "Your submission was graded.", "tests": [
        {"name": "Public Tests", "visibility": "visible", "output": "all public checks passed"},
        {"name": "q1.1", "score": 3, "max_score": 4, "visibility": "after_due_date", "output": "q1.1 detail"},
        {"name": "q1.2", "score": 4, "max_score": 4, "output": "q1.2 detail (visible by default)"},
        {"name": "Grading notes (instructor only)", "visibility": "hidden", "output": "flag: SECRET"},
        {"name": "q2.1", "score": 1, "max_score": 4, "visibility": "after_published", "output": "published"},
    ]}
    text = feedback_text(results)
    assert text == ("Your submission was graded.\n\n"
                    "Public Tests\nall public checks passed\n\n"
                    "q1.2 (4 / 4)\nq1.2 detail (visible by default)\n\n"
                    "Shown after the due date:\n\n"
                    "q1.1 (3 / 4)\nq1.1 detail\n")
    assert "SECRET" not in text and "instructor" not in text


def test_feedback_text_of_visible_entries_only_has_no_due_date_part() -> None:
    text = feedback_text(results_with({"q1.1": 2.5}))
    assert "q1.1 (2.5 / 4)\nq1.1: 2.5 of 4 points" in text
    assert "Shown after the due date" not in text and "grading status" not in text
    assert text.endswith("points\n")
