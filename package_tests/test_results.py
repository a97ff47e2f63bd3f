"""Grading results as both engines write them (`backprop_hw/results.py`): which entries of a folder
are submissions and who submitted them, complete per-question results, the grading status, the
files of each submission (feedback.txt as the student reads it), and grades.csv as a spreadsheet
reads it, where a grader error holds no score at all.
"""

import csv
import json
import time
from pathlib import Path

import pytest

from backprop_hw import results as results_module
from backprop_hw.results import (BLANK, COMPLETED, GRADER_ERROR, GRADES_CSV, NOT_REACHED, RESULTS_DIR, Outcome,
                                 Submission, Submitter, complete_results, feedback_text, find_submissions, grades_row,
                                 last_run, question_scores, read_export_metadata, read_grades, record,
                                 remember_last_run, status_of, write_grades)
from graders import as_excel_opens
# Points of a homework made up for these tests (the results' code takes any): not the build's.
POINTS = {"q1.1": 4, "q1.2": 4, "q1.3": 4, "q2.1": 4, "q2.2": 6}
QUESTIONS = tuple(POINTS)

COLUMNS = ["file", "name", "sid", "email", "q1.1 (4)", "q1.2 (4)", "q1.3 (4)", "q2.1 (4)", "q2.2 (6)", "total (22)",
           "percent", "grading_status", "integrity"]


def results_with(scores: dict[str, float]) -> dict:
    """Gradescope results as the graders write them: some questions, with a failed case's message, and the notes."""
    return {"tests": [{"name": name, "score": score, "max_score": POINTS[name], "visibility": "visible",
                       "output": f"✅ check (1 point): {name} first case" + (
                           "" if score == POINTS[name] else f"\n❌ hidden check (1 point): {name} second case\n"
                                                            f"     {name} MESSAGE")}
                      for name, score in scores.items()]
            + [{"name": "Grading notes (instructor only)", "visibility": "hidden",
                "output": "grading status: completed", "status": "passed"}]}


# ---------------------------------------------------------------------------------------------
# find_submissions


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    """A folder of submissions of every sort, and of things that are not submissions; among them a
    student's folder that holds a submission_metadata.yml and folders named like an export's."""
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
    dave = folder / "dave"
    dave.mkdir()
    (dave / "submission_metadata.yml").write_text("submission_111:\n  :submitters:\n  - :name: Carol Classmate\n")
    for name in ("submission_111", "submission_222"):
        (dave / name).mkdir()
        (dave / name / "backpropagation.ipynb").write_text("{}")
    return folder


def test_find_submissions_lists_every_entry_once_with_its_problem(batch: Path) -> None:
    found = {submission.name: submission.problem for submission in find_submissions(batch)}
    assert found == {
        "alice.ipynb": None,
        "bob.zip": None,
        "carol": None,
        "dave": None,
        "notes.txt": "not a notebook, zip or folder (.txt)",
        "README": "not a notebook, zip or folder (no extension)",
        "link.ipynb": "a symbolic link, not graded",
        "linked-folder": "a symbolic link, not graded",
    }


def test_a_students_folder_never_decides_the_rows_nor_their_names(batch: Path) -> None:
    """dave's folder holds a submission_metadata.yml naming a classmate and folders named like an
    export's: it is one row, unnamed, graded as a folder (which then holds two notebooks), and the
    instructor is told why its file was not read."""
    found = {submission.name: submission for submission in find_submissions(batch)}
    assert found["dave"].path == batch / "dave" and found["dave"].submitters == ()
    assert "submission_metadata.yml in it was not read" in found["dave"].note
    assert not any(name.startswith("submission_") for name in found)
    assert all(not submission.submitters and not submission.flags for submission in found.values())


def test_twenty_empty_folders_in_a_students_folder_change_no_other_row(tmp_path: Path) -> None:
    export = export_folder(tmp_path, REAL_METADATA.encode(), ("submission_3001", "submission_3002"))
    mallory = export / "mallory"
    mallory.mkdir()
    (mallory / "submission_metadata.yml").write_text("submission_3001:\n  :submitters:\n  - :name: Mallory\n")
    for index in range(20):
        (mallory / f"submission_{3001 + index}").mkdir()
    found = {submission.name: submission for submission in find_submissions(export)}
    assert sorted(found) == ["mallory", "submission_3001", "submission_3002"]
    assert all(submission.problem is None for submission in found.values())
    assert found["submission_3001"].submitters == (Submitter("Ada Lovelace", "3001", "ada@example.edu"),)
    assert found["mallory"].submitters == () and "names unknown" in found["mallory"].note


def test_names_that_would_be_the_same_are_told_apart_by_a_number(tmp_path: Path) -> None:
    """Names are shown printable and in one direction: names that differ only in what that takes
    away would share a row and a results folder, so the later ones get a number."""
    for name in ("alice.ipynb", "alice\u202e.ipynb", "alice\x07.ipynb", "alice\ufffd.ipynb", "\u202e", "\u202e.."):
        (tmp_path / name).write_text("{}")
    (tmp_path / "alice").mkdir()
    found = [(submission.name, submission.path.name) for submission in find_submissions(tmp_path)]
    assert found == [("alice", "alice"), ("alice\ufffd.ipynb", "alice\x07.ipynb"), ("alice.ipynb", "alice.ipynb"),
                     ("alice.ipynb (2)", "alice\u202e.ipynb"), ("alice\ufffd.ipynb (2)", "alice\ufffd.ipynb"),
                     ("(unnamed)", "\u202e"), ("(unnamed ..)", "\u202e..")]
    assert len({name for name, _ in found}) == len(found)


def test_find_submissions_of_an_empty_folder_is_empty(tmp_path: Path) -> None:
    assert find_submissions(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Who submitted: a Gradescope export's submission_metadata.yml

# As Gradescope writes it: Ruby symbols as keys, more keys than the names, Ruby objects, a group.
REAL_METADATA = """\
submission_3001:
  :submitters:
  - :name: Ada Lovelace
    :sid: '3001'
    :email: ada@example.edu
  :created_at: 2025-10-01 12:00:00.000000000 -07:00
  :score: !ruby/object:BigDecimal 18:0.19E2
  :history: []
submission_3002:
  :submitters:
  - :name: "Bo\\tChen\\n"
    :sid: 3002
    :email: bo@example.edu
  - :name: =HYPERLINK("http://evil.example")
    :sid: '3003'
  :created_at: 2025-10-01 12:05:00.000000000 -07:00
  :score: 22.0
submission_3004:
  :submitters: []
"""


def export_folder(tmp_path: Path, metadata: bytes, names: tuple[str, ...]) -> Path:
    """A Gradescope export: `metadata` at its top, a folder holding a notebook for each of `names`."""
    export = tmp_path / "assignment_export"
    export.mkdir()
    (export / "submission_metadata.yml").write_bytes(metadata)
    for name in names:
        (export / name).mkdir()
        (export / name / "backpropagation.ipynb").write_text("{}")
    return export


def test_an_exports_submissions_carry_every_submitter(tmp_path: Path) -> None:
    folder = export_folder(tmp_path, REAL_METADATA.encode(), ("submission_3001", "submission_3002", "submission_3004",
                                                              "submission_3005"))
    found = {submission.name: submission for submission in find_submissions(folder)}
    assert found["submission_3001"].submitters == (Submitter("Ada Lovelace", "3001", "ada@example.edu"),)
    assert found["submission_3001"].note is None and found["submission_3001"].problem is None
    assert found["submission_3002"].submitters == (Submitter("Bo Chen", "3002", "bo@example.edu"),
                                                   Submitter('=HYPERLINK("http://evil.example")', "3003", ""))
    for name in ("submission_3004", "submission_3005"):  # listed without submitters, and not listed at all
        assert found[name].submitters == () and found[name].problem is None
        assert found[name].note == "names unknown: submission_metadata.yml names no submitter of it"
    assert not any(submission.flags for submission in found.values())


def test_an_export_with_files_dropped_in_grades_them_unnamed(tmp_path: Path) -> None:
    export = export_folder(tmp_path, REAL_METADATA.encode(), ("submission_3001",))
    (export / "late-bo.ipynb").write_text("{}")
    found = {submission.name: submission for submission in find_submissions(export)}
    assert sorted(found) == ["late-bo.ipynb", "submission_3001"]
    assert found["late-bo.ipynb"].submitters == () and found["late-bo.ipynb"].note is None


def test_rows_that_share_an_sid_or_an_e_mail_are_flagged(tmp_path: Path) -> None:
    metadata = "".join(f"submission_{number}:\n  :submitters:\n  - :name: {name}\n    :sid: '{sid}'\n"
                       f"    :email: {email}\n" for number, name, sid, email in [
                           (1, "Ada", "1001", "ada@example.edu"), (2, "Not Ada", "1001", "other@example.edu"),
                           (3, "Bo", "1003", "bo@example.edu"), (4, "Bo Too", "1004", "BO@example.edu"),
                           (5, "Cy", "1005", "cy@example.edu")])
    export = export_folder(tmp_path, metadata.encode(), tuple(f"submission_{number}" for number in range(1, 6)))
    flags = {submission.name: submission.flags for submission in find_submissions(export)}
    assert flags == {"submission_1": ["shares SID 1001 with submission_2"],
                     "submission_2": ["shares SID 1001 with submission_1"],
                     "submission_3": ["shares e-mail bo@example.edu with submission_4"],
                     "submission_4": ["shares e-mail bo@example.edu with submission_3"], "submission_5": []}
    row = grades_row(find_submissions(export)[0], Outcome(complete=True, flags=["uses pickles or otter's log"]), POINTS)
    assert row["integrity"] == "shares SID 1001 with submission_2; uses pickles or otter's log"


def test_names_are_shown_in_one_direction(tmp_path: Path) -> None:
    """A right-to-left override (or any other format character) in a name would turn the names after
    it around wherever they are shown together."""
    metadata = "submission_1:\n  :submitters:\n  - :name: \"Ada \\u202eecalevoL\\u200b\\u2066x\\u2069\"\n" \
               "    :email: \"a\\u200bda@example.edu\"\n  - :name: \"\u0645\u0647\u0633\u0627\u200c\"\n"
    export = export_folder(tmp_path, metadata.encode(), ("submission_1",))
    [found] = find_submissions(export)
    assert found.submitters == (Submitter("Ada ecalevoLx", "", "ada@example.edu"),
                                Submitter("\u0645\u0647\u0633\u0627\u200c", "", ""))  # a joiner stays


BROKEN_METADATA = {
    "not YAML": (b"submission_3001:\n  :submitters: [\n", "cannot be read (ParserError at line 3)"),
    "binary": (b"\x00\xff\xfe\x01" * 50, "cannot be read (ReaderError"),
    "a list": (b"- submission_3001\n", "is not a list of submissions"),
    "empty": (b"", "is not a list of submissions"),
    "odd entries": (b"submission_3001: [1, 2]\nsubmission_3002:\n  :submitters: {a: 1}\n",
                    "names no submitter of it"),
    "odd members": (b"submission_3001:\n  :submitters:\n  - [1]\n  - :name: [x]\n    :sid: {a: b}\n",
                    "names no submitter of it"),
    "deep nesting": (b"[" * 100_000 + b"]" * 100_000, "cannot be read (ScannerError"),
    "nesting past the bound": (b"a: " + b"[" * 40 + b"]" * 40 + b"\n", "nested more than 32 deep"),
    "an alias that stands for a million submitters": (
        b"x: &x [" + b",".join([b"{':submitters': [{':name': a}]}"] * 1000) + b"]\n"
        + b"".join(b"s%d: *x\n" % n for n in range(1000)), "uses YAML anchors or aliases, which are not read"),
    "an anchor alone": (b"submission_3001: &a {}\n", "uses YAML anchors or aliases"),
    "too many values": (b"x: [" + b",".join([b"1"] * 1_000_001) + b"]\n", "holds more than 1,000,000 YAML values"),
    "too many submissions": (b"".join(b"s%d: 1\n" % n for n in range(10_001)), "lists more than 10,000 submissions"),
}


@pytest.mark.parametrize("damage", BROKEN_METADATA)
def test_a_broken_metadata_file_costs_the_names_only_and_says_so(tmp_path: Path, damage: str) -> None:
    metadata, said = BROKEN_METADATA[damage]
    folder = export_folder(tmp_path, metadata, ("submission_3001", "submission_3002"))
    started = time.process_time()
    found = find_submissions(folder)
    assert time.process_time() - started < 5  # an alias bomb took 14 to 26 s
    assert [submission.name for submission in found] == ["submission_3001", "submission_3002"]
    for submission in found:
        assert submission.problem is None and submission.submitters == ()
        assert submission.note.startswith("names unknown: ") and said in submission.note, submission.note


def test_a_metadata_file_too_large_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results_module, "MAX_METADATA_BYTES", 1 << 20)
    (tmp_path / "submission_metadata.yml").write_text(REAL_METADATA + "# padding\n" * 200_000)
    assert read_export_metadata(tmp_path / "submission_metadata.yml") == (
        {}, "submission_metadata.yml is larger than 1 MB")


# ---------------------------------------------------------------------------------------------
# complete_results and question_scores


def test_complete_results_adds_a_zero_entry_for_each_missing_question() -> None:
    given = results_with({"q1.1": 3, "q2.2": 6})
    completed = complete_results(given, POINTS, "Not graded: the notebook stopped")
    by_name = {test["name"]: test for test in completed["tests"]}
    assert set(by_name) == set(QUESTIONS) | {"Grading notes (instructor only)"}
    assert by_name["q1.1"]["score"] == 3 and by_name["q2.2"]["score"] == 6
    for question in ("q1.2", "q1.3", "q2.1"):
        assert by_name[question] == {"name": question, "score": 0, "max_score": POINTS[question],
                                     "visibility": "visible", "output": "Not graded: the notebook stopped"}
    assert len(given["tests"]) == 3  # the caller's results are left as they were


@pytest.mark.parametrize("results", [None, {}, {"tests": []}, {"output": "no tests key"}])
def test_complete_results_of_nothing_is_every_question_at_zero(results: dict | None) -> None:
    completed = complete_results(results, POINTS, "Not graded: no notebook")
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


def test_status_of_a_blank_notebook_says_so_before_anything_else() -> None:
    status = status_of(Outcome(complete=True, blank=True))
    assert status == f"{BLANK}: no question answered (every answer still `...` or missing)"
    assert not status.startswith(COMPLETED)
    assert status_of(Outcome(blank=True, error="corrupt")) == "Not graded: corrupt"


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
    assert status_of(Outcome(grader_error="the grading worker stopped", complete=True, error="x", blank=True)) \
        == expected


# ---------------------------------------------------------------------------------------------
# record: one submission's files and its row


def test_record_writes_the_three_files_and_returns_the_row(tmp_path: Path) -> None:
    outcome = Outcome(results=results_with({"q1.1": 4, "q1.2": 2, "q1.3": 4, "q2.1": 4, "q2.2": 5.5}), complete=True,
                      flags=["replaces library functions", "uses pickles or otter's log"], log="printed\n")
    submission = Submission("submission_3002", tmp_path / "submission_3002",
                            submitters=(Submitter("Bo Chen", "3002", "bo@example.edu"), Submitter("Cy Dee", "3003")))
    row = record(tmp_path, submission, outcome, POINTS)
    assert row == {"file": "submission_3002", "name": "Bo Chen; Cy Dee", "sid": "3002; 3003",
                   "email": "bo@example.edu; ", "q1.1 (4)": "4", "q1.2 (4)": "2", "q1.3 (4)": "4", "q2.1 (4)": "4",
                   "q2.2 (6)": "5.5", "total (22)": "19.5", "percent": "88.6", "grading_status": "Completed",
                   "integrity": "replaces library functions; uses pickles or otter's log"}
    assert list(row) == [column for column in COLUMNS if column in row] and set(row) == set(COLUMNS)
    folder = tmp_path / RESULTS_DIR / "submission_3002"
    assert sorted(path.name for path in folder.iterdir()) == ["feedback.txt", "log.txt", "results.json"]
    written = json.loads((folder / "results.json").read_text())
    assert written == outcome.results
    assert (folder / "feedback.txt").read_text() == feedback_text(written)
    assert (folder / "log.txt").read_text() == "printed\n"


def test_record_completes_a_partly_graded_notebooks_results(tmp_path: Path) -> None:
    outcome = Outcome(results=results_with({"q1.1": 4}), complete=False, notes=["the notebook process was killed"])
    row = record(tmp_path, Submission("bob.ipynb", tmp_path / "bob.ipynb"), outcome, POINTS)
    assert row["total (22)"] == "4" and row["q2.2 (6)"] == "0" and row["percent"] == "18.2"
    written = json.loads((tmp_path / RESULTS_DIR / "bob.ipynb" / "results.json").read_text())
    missing = {t["name"]: t["output"] for t in written["tests"] if t["name"] in QUESTIONS and t["name"] != "q1.1"}
    assert set(missing) == {"q1.2", "q1.3", "q2.1", "q2.2"}
    assert all(output.startswith("Partly graded") and "killed" in output for output in missing.values())


def test_record_of_a_grader_error_holds_no_score_and_tells_the_student_no_zero(tmp_path: Path) -> None:
    outcome = Outcome(grader_error="the notebook's process failed before it was ready: Traceback SECRET",
                      log="traceback")
    row = record(tmp_path, Submission("carol.ipynb", tmp_path / "carol.ipynb"), outcome, POINTS)
    assert row["grading_status"].startswith(f"{GRADER_ERROR}: the notebook's process failed before it was ready")
    assert all(row[column] == "" for column in COLUMNS[4:11])
    folder = tmp_path / RESULTS_DIR / "carol.ipynb"
    feedback = (folder / "feedback.txt").read_text()
    assert feedback == ("Autograder failed\nThe autograder could not run your notebook. This is not a problem with "
                        "your work: your instructor has been told and will grade it again.\n")
    assert "SECRET" in json.loads((folder / "results.json").read_text())["tests"][1]["output"]  # the instructor's
    assert (folder / "log.txt").read_text() == "traceback"


def test_record_of_a_submission_problem_is_a_zero_with_the_reason(tmp_path: Path) -> None:
    submission = Submission("notes.txt", tmp_path / "notes.txt", "not a notebook, zip or folder (.txt)")
    row = record(tmp_path, submission, Outcome(), POINTS)
    assert row["grading_status"] == "Not graded: not a notebook, zip or folder (.txt)"
    assert [row[column] for column in COLUMNS[4:11]] == ["0"] * 6 + ["0.0"]
    feedback = (tmp_path / RESULTS_DIR / "notes.txt" / "feedback.txt").read_text()
    assert feedback.startswith("Total: 0 of 22 points\n\nq1.1: 0 of 4 points\n"
                               "Not graded: not a notebook, zip or folder (.txt)\n")


def test_record_again_gives_the_same_files(tmp_path: Path) -> None:
    outcome = Outcome(results=results_with({"q1.1": 4}), complete=True, log="x")
    submission = Submission("dave.ipynb", tmp_path / "dave.ipynb")
    record(tmp_path, submission, outcome, POINTS)
    folder = tmp_path / RESULTS_DIR / "dave.ipynb"
    first = {path.name: path.read_bytes() for path in folder.iterdir()}
    record(tmp_path, submission, outcome, POINTS)
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == first


def test_a_note_of_the_instructors_follows_the_status() -> None:
    submission = Submission("submission_3004", Path("x"), note="names unknown: it names no submitter")
    row = grades_row(submission, Outcome(complete=True), POINTS, results_with({"q1.1": 4}))
    assert row["grading_status"] == "Completed; names unknown: it names no submitter"
    pending = grades_row(submission, Outcome(grader_error=NOT_REACHED), POINTS)
    assert pending["grading_status"].startswith(f"{GRADER_ERROR}: {NOT_REACHED} (no score")
    assert pending["total (22)"] == "" and pending["percent"] == ""


# ---------------------------------------------------------------------------------------------
# grades.csv


def test_grades_csv_reads_as_a_spreadsheet_should(tmp_path: Path) -> None:
    """One row per submission, identifiers first; the points possible in the column names, never a row."""
    rows = [
        record(tmp_path, Submission("zoe, the second.ipynb", tmp_path / "z"), Outcome(
            results=results_with({"q1.1": 1.5}), complete=True, flags=['defines "comparison" methods']), POINTS),
        record(tmp_path, Submission("adam.ipynb", tmp_path / "a"), Outcome(grader_error="worker stopped"), POINTS),
    ]
    write_grades(tmp_path, rows, POINTS)
    with open(tmp_path / GRADES_CSV, newline="", encoding="utf-8-sig") as handle:
        raw = list(csv.reader(handle))
    assert raw == [COLUMNS,
                   ["adam.ipynb", "", "", "", "", "", "", "", "", "", "", rows[1]["grading_status"], ""],
                   ["zoe, the second.ipynb", "", "", "", "1.5", "0", "0", "0", "0", "1.5", "6.8", "Completed",
                    'defines "comparison" methods']]
    grades = read_grades(tmp_path / GRADES_CSV)
    assert grades.columns == COLUMNS and grades.points == POINTS
    assert grades.score_columns == {**{q: f"{q} ({POINTS[q]})" for q in QUESTIONS}, "total": "total (22)"}
    assert grades.rows == [rows[1], rows[0]]


FORMULAS = ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "'=1", "''", "'", "=HYPERLINK(\"http://x\")"]


@pytest.mark.parametrize("text", FORMULAS)
def test_no_cell_runs_as_a_formula_and_every_cell_reads_back_as_written(tmp_path: Path, text: str) -> None:
    submission = Submission(f"{text}.ipynb", tmp_path / "x", submitters=(Submitter(text, text, text),))
    row = grades_row(submission, Outcome(complete=True, flags=[text]), POINTS, results_with({"q1.1": 4}))
    write_grades(tmp_path, [row], POINTS)
    with open(tmp_path / GRADES_CSV, newline="", encoding="utf-8-sig") as handle:
        [_, written] = list(csv.reader(handle))
    assert not [cell for cell in written if cell.startswith(("=", "+", "-", "@", "\t", "\r"))], written
    assert read_grades(tmp_path / GRADES_CSV).rows == [row]


def test_read_grades_of_a_spreadsheets_copy(tmp_path: Path) -> None:
    """Saved again by a spreadsheet: a byte-order mark, a column of its own, a ragged row."""
    (tmp_path / GRADES_CSV).write_text("\ufefffile,q1.1 (4),total (4),notes\nalice.ipynb,4,4,fine\nbob,1,1,x,extra\n")
    grades = read_grades(tmp_path / GRADES_CSV)
    assert grades.columns == ["file", "q1.1 (4)", "total (4)", "notes"] and grades.points == {"q1.1": 4.0}
    assert grades.rows == [{"file": "alice.ipynb", "q1.1 (4)": "4", "total (4)": "4", "notes": "fine"},
                           {"file": "bob", "q1.1 (4)": "1", "total (4)": "1", "notes": "x"}]


def test_write_grades_of_no_rows_is_the_header(tmp_path: Path) -> None:
    write_grades(tmp_path, [], POINTS)
    assert (tmp_path / GRADES_CSV).read_bytes() == "\ufeff".encode() + ",".join(COLUMNS).encode() + b"\r\n"


GROUP = (Submitter("José Ramírez", "0042137", "jose@example.edu"), Submitter("Zoë Ångström", "0042138", "zoe@example.edu"))


def test_grades_csv_opens_in_excel_with_every_name_as_it_is(tmp_path: Path) -> None:
    """A group with accented names: Excel shows José Ramírez and Zoë Ångström, not JosÃ© RamÃ­rez."""
    row = grades_row(Submission("submission_1", tmp_path / "s", submitters=GROUP), Outcome(complete=True), POINTS,
                     results_with({"q1.1": 4}))
    write_grades(tmp_path, [row], POINTS)
    [header, written] = as_excel_opens(tmp_path / GRADES_CSV)
    assert header == COLUMNS
    assert written[:4] == ["submission_1", "José Ramírez; Zoë Ångström", "0042137; 0042138",
                           "jose@example.edu; zoe@example.edu"]
    assert read_grades(tmp_path / GRADES_CSV).rows == [row]


def test_gradebook_csv_has_a_row_per_student_in_canvas_layout(tmp_path: Path) -> None:
    """A group split into its members, each with the group's total; a submission that names nobody
    under its file's name; a student in two submissions and a grader error with no score."""
    alone, twice = Submitter("Ada Example", "1001", "ada@example.edu"), Submitter("Bo Example", "1002", "bo@example.edu")
    submissions = [Submission("submission_1", tmp_path / "1", submitters=GROUP),
                   Submission("submission_2", tmp_path / "2", submitters=(alone,)),
                   Submission("submission_3", tmp_path / "3", submitters=(twice,)),
                   Submission("submission_4", tmp_path / "4", submitters=(twice,)),
                   Submission("found.ipynb", tmp_path / "f"),
                   Submission("submission_5", tmp_path / "5", submitters=(Submitter("Cy Example", "1003"),))]
    outcomes = [Outcome(complete=True, results=results_with({"q1.1": 4, "q2.2": 5.5}))] * 5 + \
               [Outcome(grader_error="the grading worker stopped")]
    rows = {s.name: grades_row(s, outcome, POINTS, outcome.results) for s, outcome in zip(submissions, outcomes)}
    assert results_module.write_gradebook(tmp_path, submissions, rows, POINTS, "backpropagation") == ["Bo Example"]
    read = as_excel_opens(tmp_path / results_module.GRADEBOOK_CSV)
    assert read[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "backpropagation"]
    assert read[1:] == [["Ada Example", "", "1001", "ada@example.edu", "", "9.5"],
                        ["Bo Example", "", "1002", "bo@example.edu", "", ""],
                        ["Cy Example", "", "1003", "", "", ""],
                        ["found.ipynb", "", "", "", "", "9.5"],
                        ["José Ramírez", "", "0042137", "jose@example.edu", "", "9.5"],
                        ["Zoë Ångström", "", "0042138", "zoe@example.edu", "", "9.5"]]


# ---------------------------------------------------------------------------------------------
# feedback_text


def test_feedback_text_gives_the_total_first_then_each_question_once() -> None:
    results = results_with({"q1.1": 4, "q1.2": 2.5})
    assert feedback_text(results) == (
        "Total: 6.5 of 8 points\n\n"
        "q1.1: 4 of 4 points\n✅ check (1 point): q1.1 first case\n\n"
        "q1.2: 2.5 of 4 points\n✅ check (1 point): q1.2 first case\n❌ hidden check (1 point): q1.2 second case\n"
        "     q1.2 MESSAGE\n")


def test_feedback_text_shows_what_is_shown_after_the_due_date_last_and_never_the_notes() -> None:
    results = {"output": "Your submission was graded.", "tests": [
        {"name": "Public Tests", "visibility": "visible", "output": "q1.1 results:\n✅ check (1 point): a"},
        {"name": "q1.1", "score": 3, "max_score": 4, "visibility": "after_due_date", "output": "q1.1 detail"},
        {"name": "q1.2", "score": 1, "max_score": 1, "output": "q1.2 detail (visible by default)"},
        {"name": "Grading notes (instructor only)", "visibility": "hidden", "output": "flag: SECRET"},
    ]}
    text = feedback_text(results)
    assert text == ("Total: 4 of 5 points\n\n"
                    "Your submission was graded.\n\n"
                    "q1.2: 1 of 1 point\nq1.2 detail (visible by default)\n\n"
                    "Shown after the due date:\n\n"
                    "q1.1: 3 of 4 points\nq1.1 detail\n")
    assert "SECRET" not in text and "instructor" not in text and "Public Tests" not in text


def test_feedback_text_of_results_without_scores_has_no_total() -> None:
    results = {"score": 0, "tests": [{"name": "Public Tests", "visibility": "visible", "output": "q1.1 results: ok"}]}
    assert feedback_text(results) == "Public Tests\nq1.1 results: ok\n"


# ---------------------------------------------------------------------------------------------
# The last grading run, for the report


def test_the_last_grading_run_is_remembered_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results_module, "LAST_RUN", tmp_path / "build" / "last-grading-run.json")
    assert last_run() is None
    out = tmp_path / "a folder, with \"quotes\" and\na new line"
    remember_last_run(out)
    assert last_run() == out
    results_module.LAST_RUN.write_text("not json")
    assert last_run() is None
