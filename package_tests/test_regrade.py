"""Regrades that say what changed (`backprop_hw/regrade.py`): `make grade` into a folder that holds an
earlier run, or with --previous, writes whose scores changed, on which question and by how much, in
changes.csv, on screen and at the top of the report. Grading itself is stood in for: these tests read
and write grades.csv only."""

import sys
from pathlib import Path

import pytest

from backprop_hw import grading, regrade, report, sandbox
from backprop_hw.results import GRADES_CSV, Outcome, Submission, grades_row, read_grades, write_grades
from graders import as_excel_opens

POINTS = {"q1": 4, "q2": 6}  # a homework made up for these tests


def results_with(scores: dict[str, float]) -> dict:
    return {"tests": [{"name": q, "score": s, "max_score": POINTS[q]} for q, s in scores.items()]}


def write_run(folder: Path, scores: dict[str, dict[str, float] | None], points: dict[str, float] = POINTS) -> None:
    """A grades.csv of submissions: {file: {question: score}}, or None for a grader error."""
    rows = [grades_row(Submission(file, folder / file), Outcome(grader_error="worker stopped") if given is None
                       else Outcome(complete=True), points, None if given is None else results_with(given))
            for file, given in scores.items()]
    write_grades(folder, rows, points)


def compare(tmp_path: Path, before: dict, after: dict, points_after: dict = POINTS) -> list[regrade.Change]:
    write_run(tmp_path / "before", before)
    write_run(tmp_path / "after", after, points_after)
    return regrade.compare(read_grades(tmp_path / "before" / GRADES_CSV), read_grades(tmp_path / "after" / GRADES_CSV))


def test_each_changed_score_is_listed_with_its_question_and_difference(tmp_path: Path) -> None:
    changes = compare(tmp_path, {"ann.ipynb": {"q1": 2, "q2": 6}, "bo.ipynb": {"q1": 4, "q2": 6}},
                      {"ann.ipynb": {"q1": 4, "q2": 4.5}, "bo.ipynb": {"q1": 4, "q2": 6}})
    assert [(c.file, c.score, c.before, c.after, c.change) for c in changes] == [
        ("ann.ipynb", "q1", "2", "4", "+2"), ("ann.ipynb", "q2", "6", "4.5", "-1.5"), ("ann.ipynb", "total", "8", "8.5",
                                                                                      "+0.5")]


def test_new_gone_and_ungraded_submissions_are_listed_too(tmp_path: Path) -> None:
    changes = compare(tmp_path, {"gone.ipynb": {"q1": 4, "q2": 6}, "failed.ipynb": None},
                      {"failed.ipynb": {"q1": 1, "q2": 0}, "new.ipynb": {"q1": 0, "q2": 6}})
    assert [(c.file, c.score, c.before, c.after, c.change) for c in changes] == [
        ("failed.ipynb", "q1", "", "1", ""), ("failed.ipynb", "q2", "", "0", ""), ("failed.ipynb", "total", "", "1", ""),
        ("new.ipynb", regrade.NEW, "", "6", ""), ("gone.ipynb", regrade.GONE, "10", "", "")]
    assert "failed.ipynb: q1 no score -> 1" in regrade.summary(changes, tmp_path, [])


def test_a_gone_submission_keeps_its_earlier_total_when_the_total_points_changed(tmp_path: Path) -> None:
    changes = compare(tmp_path, {"gone.ipynb": {"q1": 4, "q2": 6}}, {"new.ipynb": {"q1": 5, "q2": 6}},
                      {"q1": 5, "q2": 6})
    assert [(c.file, c.score, c.before, c.after) for c in changes] == [
        ("new.ipynb", regrade.NEW, "", "11"), ("gone.ipynb", regrade.GONE, "10", "")]


def test_changes_csv_opens_in_excel_with_names_as_they_are(tmp_path: Path) -> None:
    change = regrade.Change("josé.ipynb", "José Ramírez", "=0042137", "total", "8", "10", "+2")
    regrade.write_changes(tmp_path, [change])
    assert as_excel_opens(tmp_path / regrade.CHANGES_CSV)[1] == ["josé.ipynb", "José Ramírez", "'=0042137", "total",
                                                                 "8", "10", "+2"]
    assert regrade.read_changes(tmp_path) == [change]


def test_a_question_worth_other_points_is_said(tmp_path: Path) -> None:
    write_run(tmp_path / "before", {"a.ipynb": {"q1": 4, "q2": 6}})
    write_run(tmp_path / "after", {"a.ipynb": {"q1": 5, "q2": 6}}, {"q1": 5, "q2": 6})
    previous, current = (read_grades(tmp_path / run / GRADES_CSV) for run in ("before", "after"))
    assert regrade.points_changes(previous, current) == ["q1 is now worth 5 points (it was 4)"]
    assert [(c.score, c.change) for c in regrade.compare(previous, current)] == [("q1", "+1"), ("total", "+1")]


@pytest.fixture
def graded_into(monkeypatch: pytest.MonkeyPatch):
    """`make grade`'s command line, with grading stood in for: it writes the scores given."""
    def run(out: Path, scores: dict, *options: str) -> int:
        def grade_folder(submissions, out_folder, *args, **kwargs):
            write_run(out_folder, scores)
            return read_grades(out_folder / GRADES_CSV).rows

        monkeypatch.setattr(grading, "grade_folder", grade_folder)
        monkeypatch.setattr(sandbox, "find_bwrap", lambda: "bwrap")
        monkeypatch.setattr(grading, "remember_last_run", lambda out: None)
        monkeypatch.setattr(sys, "argv", ["grading", str(out.parent), "--out", str(out), *options])
        return grading.main()
    return run


def test_make_grade_into_an_earlier_run_says_whose_scores_changed(graded_into, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "grades"
    assert graded_into(out, {"ann.ipynb": {"q1": 2, "q2": 6}}) == 0
    assert not (out / regrade.CHANGES_CSV).exists() and "Compared with" not in capsys.readouterr().out
    assert graded_into(out, {"ann.ipynb": {"q1": 4, "q2": 6}}) == 0
    shown = capsys.readouterr().out
    assert f"Compared with the earlier run in {out}: 1 submission(s) changed" in shown
    assert "ann.ipynb: q1 2 -> 4 (+2), total 8 -> 10 (+2)" in shown
    assert regrade.read_changes(out) == [regrade.Change("ann.ipynb", "", "", "q1", "2", "4", "+2"),
                                         regrade.Change("ann.ipynb", "", "", "total", "8", "10", "+2")]
    page = report.render(report.load_run(out), [], [], regrade.read_changes(out))
    assert page.index('id="changes"') < page.index('id="summary"')
    assert '<td class="score">q1</td><td class="before">2</td><td class="after">4</td><td class="change">+2</td>' in page


def test_previous_names_another_run_and_must_hold_one(graded_into, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    write_run(tmp_path / "last term", {"ann.ipynb": {"q1": 4, "q2": 6}})
    assert graded_into(tmp_path / "grades", {"ann.ipynb": {"q1": 4, "q2": 6}}, "--previous", str(tmp_path / "last term")) == 0
    assert "no score changed" in capsys.readouterr().out
    assert regrade.read_changes(tmp_path / "grades") == []
    assert graded_into(tmp_path / "grades", {}, "--previous", str(tmp_path / "nothing")) == 2
    assert "no earlier grading run" in capsys.readouterr().err
