"""make grade, make gradescope-check and make bench: sandboxed grading of a mixed batch.

The examples hold a correct, a partly wrong and a blank notebook, an export zip, a Gradescope
export folder and broken submissions (see backprop_hw/examples.py). Timeouts are shortened here
so that the loops cost seconds, not minutes.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import nbformat
import pytest
from conftest import QUESTIONS, ROOT

from backprop_hw import bench, examples, gradescope_check, grading

EXAMPLES = ROOT / "examples" / "submissions"
FAST = ["--cell-seconds", "3", "--wall-seconds", "12"]
SCHEMA = json.loads(gradescope_check.SCHEMA.read_text())


def make_grade(submissions: Path, out: Path, *options: str, **environment: str) -> subprocess.CompletedProcess:
    """`make grade`'s command line."""
    return subprocess.run([sys.executable, "-m", "backprop_hw.grading", str(submissions), "--out", str(out), *options],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, **environment})


def read_grades(out: Path) -> list[dict]:
    with open(out / "grades.csv", newline="") as grades:
        return list(csv.DictReader(grades))


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("grades")
    result = make_grade(EXAMPLES, out, *FAST)
    assert result.returncode == 0, result.stderr
    return out


def test_examples_are_what_the_generator_makes(tmp_path):
    examples.write_examples(tmp_path / "submissions")
    made = sorted(path.relative_to(tmp_path / "submissions") for path in (tmp_path / "submissions").rglob("*"))
    committed = sorted(path.relative_to(EXAMPLES) for path in EXAMPLES.rglob("*"))
    assert made == committed
    for name in made:
        if (EXAMPLES / name).is_file():
            assert (EXAMPLES / name).read_bytes() == (tmp_path / "submissions" / name).read_bytes(), name


def test_one_row_per_submission_with_points_and_reason(graded):
    rows = read_grades(graded)
    assert list(rows[0]) == ["file", *QUESTIONS, "total_points_earned", "percent_correct", "grading_status", "integrity"]
    assert rows[0]["file"] == "points-per-question"
    assert [float(rows[0][q]) for q in QUESTIONS] == [4, 4, 4, 4, 6]
    by_file = {row["file"]: row for row in rows[1:]}
    assert len(by_file) == len(rows) - 1 == len(examples.EXPECTED)
    for name, (points, reason) in examples.EXPECTED.items():
        row = by_file[name]
        assert [float(row[q]) for q in QUESTIONS] == list(points or [0] * len(QUESTIONS)), name
        assert float(row["total_points_earned"]) == sum(points or [])
        assert reason in row["grading_status"], (name, row["grading_status"])


def test_results_and_feedback_for_every_submission(graded):
    for name in examples.EXPECTED:
        results = json.loads((graded / "results" / name / "results.json").read_text())
        jsonschema.validate(results, SCHEMA)
        assert {test["name"] for test in results["tests"]} >= set(QUESTIONS)
        feedback = (graded / "results" / name / "feedback.txt").read_text()
        hidden = [test["output"] for test in results["tests"] if test.get("visibility") == "hidden" and test["output"]]
        assert not any(output in feedback for output in hidden if len(output) > 40), name
    assert "Public Tests" in (graded / "results" / "partly-wrong.ipynb" / "feedback.txt").read_text()


@pytest.mark.parametrize("name", ["partly-wrong.ipynb", "blank.ipynb", "export.zip", "gradescope-export/submission_1002",
                                  "two-notebooks.zip", "memory-hog.zip", "kernel-death.zip"])
def test_same_points_as_the_gradescope_dry_run(graded, name):
    results, run = gradescope_check.dry_run(EXAMPLES / name)
    assert results is not None, run.output.decode(errors="replace")
    jsonschema.validate(results, SCHEMA)
    dry = {test["name"]: float(test["score"]) for test in results["tests"] if test["name"] in QUESTIONS}
    row = next(row for row in read_grades(graded) if row["file"] == Path(name).name)
    assert {q: float(row[q]) for q in QUESTIONS} == {q: dry.get(q, 0.0) for q in QUESTIONS}


def test_the_gradescope_dry_run_gives_the_solutions_full_marks():
    result = subprocess.run([sys.executable, "-m", "backprop_hw.gradescope_check"], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert "22 / 22" in result.stdout


def test_rerun_into_the_same_folder_changes_nothing(tmp_path):
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    for name in ("correct.ipynb", "corrupt.ipynb", "blank.ipynb"):
        shutil.copy(EXAMPLES / name, submissions)
    out = tmp_path / "out"
    assert make_grade(submissions, out).returncode == 0
    first = {path: path.read_bytes() for path in sorted(out.rglob("*")) if path.name in ("grades.csv", "results.json")}
    (out / "results" / "removed.ipynb").mkdir()
    assert make_grade(submissions, out).returncode == 0
    second = {path: path.read_bytes() for path in sorted(out.rglob("*")) if path.name in ("grades.csv", "results.json")}
    assert first == second
    assert sorted(path.name for path in (out / "results").iterdir()) == ["blank.ipynb", "correct.ipynb", "corrupt.ipynb"]


def test_the_sandbox_confines_the_notebook(tmp_path):
    notebook = nbformat.read(EXAMPLES / "correct.ipynb", as_version=4)
    probe = f"""import json, os, socket
probes = {{"uid": os.getuid(), "repository": sorted(os.listdir({str(ROOT)!r})), "environment": sorted(os.environ),
          "autograder": sorted(os.path.join(d, f) for d, _, files in os.walk("/autograder") for f in files),
          "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}}
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    probes["network"] = "open"
except OSError:
    probes["network"] = "blocked"
try:
    open("/usr/probe", "w")
    probes["system"] = "writable"
except OSError:
    probes["system"] = "read-only"
print("PROBES", json.dumps(probes))"""
    notebook.cells.append(nbformat.v4.new_code_cell(probe))
    (tmp_path / "submissions").mkdir()
    nbformat.write(notebook, tmp_path / "submissions" / "probe.ipynb")
    assert make_grade(tmp_path / "submissions", tmp_path / "out", INSTRUCTOR_TOKEN="secret").returncode == 0
    log = (tmp_path / "out" / "results" / "probe.ipynb" / "log.txt").read_text()
    probes = json.loads(log.split("PROBES ", 1)[1].splitlines()[0])
    assert probes["uid"] >= grading.sandbox.SANDBOX_UID_BASE
    assert probes == {**probes, "repository": [".venv"], "network": "blocked", "system": "read-only"}
    # The notebook and what it wrote itself (otter's log), but no test and no reference value.
    assert "/autograder/submission/submission.ipynb" in probes["autograder"]
    assert not [path for path in probes["autograder"] if path.endswith(".py") or "/source" in path or "/tests" in path]
    assert len(probes["processes"]) < 5  # the sandbox's own init and placeholder, and the notebook
    assert set(probes["environment"]) <= set(grading.sandbox.ENVIRONMENT)


def test_folder_entries_that_are_not_submissions_still_get_a_row(tmp_path):
    (tmp_path / "notes.txt").write_text("not a submission")
    (tmp_path / "link.ipynb").symlink_to(EXAMPLES / "correct.ipynb")
    (tmp_path / ".hidden.ipynb").write_text("{}")
    found = {submission.name: submission.problem for submission in grading.find_submissions(tmp_path)}
    assert set(found) == {"notes.txt", "link.ipynb"}
    assert all(found.values())


def test_refuses_to_grade_without_a_sandbox(tmp_path):
    no_bwrap = make_grade(EXAMPLES, tmp_path / "out", PATH=str(tmp_path))
    assert no_bwrap.returncode == 2
    assert "never run unsandboxed" in no_bwrap.stderr
    no_docker = make_grade(EXAMPLES, tmp_path / "out", "--engine", "docker", PATH=str(tmp_path))
    assert no_docker.returncode == 2
    assert "Docker engine" in no_docker.stderr
    dry_run = subprocess.run([sys.executable, "-m", "backprop_hw.gradescope_check"], cwd=ROOT, capture_output=True,
                             text=True, env={**os.environ, "PATH": str(tmp_path)})
    assert dry_run.returncode == 2
    assert not (tmp_path / "out").exists()


def test_bench_scores_agree_with_otter_run():
    result = bench.bench(copies=1, names=("correct.ipynb", "partly-wrong.ipynb"))
    assert result["submissions"] == 2
    assert result["disagreements"] == []
    assert result["otter_run_seconds"] > 0 and result["make_grade_seconds"] > 0


def test_a_forked_payload_talks_through_pipes_from_inside_its_sandbox():
    limits = grading.sandbox.Limits(wall_seconds=30)

    def echo(requests: int, answers: int) -> int:
        os.write(answers, f"{os.getuid()} {os.getcwd()} ".encode() + os.read(requests, 100))
        return 0

    process = grading.sandbox.Forked(grading.sandbox.Holder(grading.sandbox.find_bwrap(), [], limits),
                                     grading.sandbox.SANDBOX_UID_BASE, limits, echo)
    process.stdin.write(b"values, please")
    process.stdin.flush()
    uid, cwd, message = process.stdout.read().decode().split(maxsplit=2)
    assert process.wait() == 0
    assert int(uid) == grading.sandbox.SANDBOX_UID_BASE and cwd == "/autograder" and message == "values, please"

    def spin(requests: int, answers: int) -> int:
        os.write(answers, b"spinning\n")
        while True:
            pass

    looping = grading.sandbox.Forked(grading.sandbox.Holder(grading.sandbox.find_bwrap(), [], limits),
                                     grading.sandbox.SANDBOX_UID_BASE, limits, spin)
    assert looping.stdout.readline() == b"spinning\n"
    looping.kill()
    assert looping.wait() == 128 + 9
