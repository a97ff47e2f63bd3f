"""make grade, make report, make gradescope-check and make bench: sandboxed grading of a mixed batch.

The examples (a Gradescope export into which the others were dropped) hold a correct, a partly
wrong and a blank notebook, an export zip, the export's two folders and broken submissions (see
backprop_hw/examples.py). Timeouts are shortened here so that the loops cost seconds, not minutes.
"""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import jsonschema
import nbformat
import pytest

from backprop_hw import bench, examples, gradescope_check, grading, sandbox
from backprop_hw.paths import AUTOGRADER_ZIP, EXAMPLES, ROOT, STUDENT_NOTEBOOK, ZIP_PACKAGE
from backprop_hw.results import GRADES_CSV, NOT_REACHED, RESULTS_DIR, find_submissions, read_grades
from backprop_hw.zipfiles import write_zip
import built
from built import TOTAL, TOY
from conftest import POINTS, QUESTIONS

pytestmark = pytest.mark.sandbox

FAST = ["--cell-seconds", "3", "--wall-seconds", "120"]
CASES = sum(len(cases) for cases in built.CASES.values())  # of every question
SCHEMA = json.loads(gradescope_check.SCHEMA.read_text())


def make_grade(submissions: Path, out: Path, *options: str, **environment: str) -> subprocess.CompletedProcess:
    """`make grade`'s command line."""
    return subprocess.run([sys.executable, "-m", "backprop_hw.grading", str(submissions), "--out", str(out), *options],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, **environment})


def make(*arguments: str) -> subprocess.CompletedProcess:
    """`make` as the instructor runs it (not printing directories, also when `make test` runs this)."""
    return subprocess.run(["make", "--no-print-directory", *arguments], cwd=ROOT, capture_output=True, text=True)


def rows_of(out: Path) -> dict[str, dict]:
    """grades.csv's rows by file, with each question's score also under the question's name."""
    grades = read_grades(out / GRADES_CSV)
    return {row["file"]: {**row, **{q: row[column] for q, column in grades.score_columns.items()}}
            for row in grades.rows}


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
    grades = read_grades(graded / GRADES_CSV)
    assert grades.columns == ["file", "name", "sid", "email", *(f"{q} ({POINTS[q]:g})" for q in QUESTIONS),
                              f"total ({TOTAL:g})", "percent", "grading_status", "integrity"]
    assert grades.points == POINTS
    by_file = rows_of(graded)
    expected_scores = examples.expected_scores()
    assert len(by_file) == len(grades.rows) == len(expected_scores)
    for name, (expected, reason) in expected_scores.items():
        row = by_file[name]
        assert [float(row[q]) for q in QUESTIONS] == list(expected or [0] * len(QUESTIONS)), name
        assert float(row["total"]) == sum(expected or [])
        assert float(row["percent"]) == round(100 * sum(expected or []) / TOTAL, 1)
        assert reason in row["grading_status"], (name, row["grading_status"])


def test_the_gradescope_exports_students_are_named(graded):
    rows = rows_of(graded)
    assert {name: (rows[name]["name"], rows[name]["sid"], rows[name]["email"])
            for name in ("submission_1001", "submission_1002")} == {
        "submission_1001": ("Ada Example", "1001", "ada@example.edu"),
        "submission_1002": ("Bo Example", "1002", "bo@example.edu")}
    assert all(not row["name"] for name, row in rows.items() if not name.startswith("submission_"))


def test_results_and_feedback_for_every_submission(graded):
    for name in examples.EXPECTED:
        results = json.loads((graded / RESULTS_DIR / name / "results.json").read_text())
        jsonschema.validate(results, SCHEMA)
        assert {test["name"] for test in results["tests"]} >= set(QUESTIONS)
        feedback = (graded / RESULTS_DIR / name / "feedback.txt").read_text()
        notes = next(test["output"] for test in results["tests"] if test["visibility"] == "hidden")
        assert notes not in feedback, name
        total = sum(test.get("score", 0) for test in results["tests"])
        assert feedback.startswith(f"Total: {total:g} of {TOTAL:g} points\n\n"), name
        assert [line for line in feedback.splitlines() if line.startswith("q")] == [
            f"{q}: {next(t['score'] for t in results['tests'] if t['name'] == q):g} of {POINTS[q]} points"
            for q in QUESTIONS], name
    partly = (graded / RESULTS_DIR / "partly-wrong.ipynb" / "feedback.txt").read_text()
    assert "Public Tests" not in partly and f"q2.2: 0 of {POINTS['q2.2']:g} points" in partly
    assert re.search(r"❌ hidden check \(\d+ points?\)", partly)
    cases = [line for line in partly.splitlines() if line.startswith(("✅", "❌"))]
    assert len(cases) == len(set(cases)) == CASES  # each case once


def test_same_points_as_the_gradescope_dry_run(graded):
    """An uploaded zip whose notebook dies after q1.3: Gradescope replays it for the hidden cases too.
    (The answer corpus compares more answers on both paths.)"""
    names = ["kernel-death.zip"]
    runs = {name: gradescope_check.dry_run(EXAMPLES / name) for name in names}
    rows = rows_of(graded)
    for name, (results, run) in runs.items():
        assert results is not None and run.exit_code == 0, run.output.decode(errors="replace")
        jsonschema.validate(results, SCHEMA)
        dry = {test["name"]: float(test["score"]) for test in results["tests"] if test["name"] in QUESTIONS}
        assert {q: float(rows[name][q]) for q in QUESTIONS} == dry, name


def test_the_gradescope_dry_run_gives_the_solutions_full_marks():
    """The score first, then what the student sees; no note, as the instructor has nothing to do (the
    network left on is what every submission on Gradescope's platform gets)."""
    result = make("gradescope-check")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    [first] = [index for index, line in enumerate(lines) if not line.startswith((".venv/", "make"))][:1]
    assert lines[first] == f"backpropagation.ipynb: {TOTAL:g} of {TOTAL:g} points (grading status: completed)"
    kept = gradescope_check.KEPT
    assert result.stdout.rstrip().endswith(f"Kept in {kept}: results.json (follows Gradescope's format) and "
                                           "feedback.txt (what the student sees).")
    feedback = (kept / "feedback.txt").read_text()
    assert feedback.startswith(f"Total: {TOTAL:g} of {TOTAL:g} points\n")
    assert f"q2.2: {POINTS['q2.2']:g} of {POINTS['q2.2']:g} points" in feedback
    shown = result.stdout.split("What the student sees on Gradescope:\n\n", 1)[1].split("\n\nKept in", 1)[0]
    assert shown == "\n".join(f"  {line}".rstrip() for line in feedback.splitlines())
    assert "For you to look at" not in result.stdout and "network access" not in result.stdout
    results = json.loads((kept / "results.json").read_text())
    jsonschema.validate(results, SCHEMA)
    assert sum(test.get("score", 0) for test in results["tests"]) == TOTAL


def broken_autograder(folder: Path, replace: dict[str, bytes]) -> Path:
    """A copy of the autograder zip with some of its files replaced."""
    with zipfile.ZipFile(AUTOGRADER_ZIP) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    write_zip(folder / "broken-autograder.zip", entries | replace, ("run_autograder", "setup.sh"))
    return folder / "broken-autograder.zip"


def grading_workers_busy(pid: int) -> bool:
    """Whether a worker of the grading run `pid` is grading: its monitor (a Python child, forked to
    wait for a job) has read one and started its sandbox. A monitor still waiting has no children,
    and the bwrap probe a worker runs while it warms up is no job."""
    return any(command_of(monitor).startswith("python") and children(monitor)
               for worker in children(pid) for monitor in children(worker))


def command_of(pid: int) -> str:
    """A process's command name, or "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text()
    except OSError:
        return ""


def test_a_broken_grader_is_a_grader_error_never_a_zero(tmp_path):
    """The grader's own files broken on purpose: Gradescope's run fails loudly, make grade gives no score."""
    harness_dies = broken_autograder(tmp_path, {f"{ZIP_PACKAGE}/harness.py": b"raise SystemExit(3)\n"})
    results, run = gradescope_check.dry_run(EXAMPLES / "correct.ipynb", autograder=harness_dies)
    assert run.exit_code == 1
    jsonschema.validate(results, SCHEMA)
    assert results["tests"][0]["name"] == "Autograder failed" and "not a problem with your work" in results["tests"][0]["output"]
    assert "failed before it was ready" in results["tests"][1]["output"]
    # make grade: a worker dies while it grades (the notebook would loop until the wall-clock limit).
    (tmp_path / "submissions").mkdir()
    shutil.copy(EXAMPLES / "stubborn-loop.zip", tmp_path / "submissions")
    command = [sys.executable, "-m", "backprop_hw.grading", str(tmp_path / "submissions"), "--out", str(tmp_path / "out")]
    grading_run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not grading_workers_busy(grading_run.pid):
        time.sleep(0.1)
    subprocess.run(["pkill", "-KILL", "-P", str(grading_run.pid)], check=True)  # its workers
    _, stderr = grading_run.communicate(timeout=60)
    assert grading_run.returncode == 1 and "the grader itself failed on 1 submission" in stderr
    row = rows_of(tmp_path / "out")["stubborn-loop.zip"]
    assert row["grading_status"].startswith("grader error") and all(row[q] == "" for q in QUESTIONS), row


PROBE = f"""import json, os, socket
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
import ctypes, platform
libc = ctypes.CDLL(None, use_errno=True)
add_key = {{"x86_64": 248, "aarch64": 217}}[platform.machine()]
stored = libc.syscall(add_key, b"user", b"note", b"for the next one", 16, -4)  # the user keyring
probes["keyring"] = "writable" if stored != -1 else os.strerror(ctypes.get_errno())
try:  # whether a file is in the page cache, which every sandbox shares, without timing
    with open(os.__file__, "rb") as module:
        os.preadv(module.fileno(), [bytearray(1)], 0, os.RWF_NOWAIT)
    probes["page cache"] = "readable"
except OSError as error:
    probes["page cache"] = error.strerror
probes["machine counters"] = os.path.exists("/proc/sys/fs/file-nr")
print("PROBES", json.dumps(probes))"""


def test_the_sandbox_confines_the_notebook_and_a_rerun_changes_nothing(tmp_path):
    submissions, out = tmp_path / "submissions", tmp_path / "out"
    submissions.mkdir()
    for name in ("correct.ipynb", "corrupt.ipynb", "blank.ipynb"):
        shutil.copy(EXAMPLES / name, submissions)
    notebook = nbformat.read(EXAMPLES / "correct.ipynb", as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE))
    nbformat.write(notebook, submissions / "probe.ipynb")
    one_worker = ["--workers", "1"]  # four quick notebooks: a second worker would take longer to warm up
    assert make_grade(submissions, out, *one_worker, INSTRUCTOR_TOKEN="secret").returncode == 0
    log = (out / RESULTS_DIR / "probe.ipynb" / "log.txt").read_text()
    probes = json.loads(log.split("PROBES ", 1)[1].splitlines()[0])
    assert probes["uid"] >= sandbox.SANDBOX_UID_BASE
    assert probes == {**probes, "repository": [".venv"], "network": "blocked", "system": "read-only",
                      "keyring": "Operation not permitted", "page cache": "Operation not permitted",
                      "machine counters": False}
    # No test, no reference value, not even the notebook (its cells come by pipe): only what it wrote itself.
    assert not [path for path in probes["autograder"] if path.endswith((".py", ".ipynb", ".json"))], probes["autograder"]
    assert len(probes["processes"]) < 5  # the sandbox's own init and placeholder, and the notebook
    assert set(probes["environment"]) <= set(sandbox.ENVIRONMENT)

    def kept() -> dict:
        return {path: path.read_bytes() for path in sorted(out.rglob("*")) if path.name in (GRADES_CSV, "results.json")}

    first = kept()
    (out / RESULTS_DIR / "removed.ipynb").mkdir()
    assert make_grade(submissions, out, *one_worker).returncode == 0
    assert kept() == first
    assert sorted(path.name for path in (out / RESULTS_DIR).iterdir()) == [
        "blank.ipynb", "correct.ipynb", "corrupt.ipynb", "probe.ipynb"]


FRAMES_PROBE = """import sys
def earlier_submission_in_frames():
    needle = "EARLIER" + "-" + "SUBMISSION"
    found, frame = [], sys._getframe().f_back.f_back  # from the frames that ran this cell, up
    while frame is not None:
        for name, value in frame.f_locals.items():
            text = value.decode(errors="replace") if isinstance(value, bytes) else repr(value)
            if needle in text:
                found.append(frame.f_code.co_name + "." + name)
        frame = frame.f_back
    return found
print("FRAMES", earlier_submission_in_frames())"""


def test_a_notebook_finds_nothing_of_the_submission_graded_before_it(tmp_path):
    """The worker forks every sandbox; the job and outcome of the one before stay out of its memory."""
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    for name, source in (("a-earlier.ipynb", 'print("EARLIER" + "-" + "SUBMISSION")'), ("b-probe.ipynb", FRAMES_PROBE)):
        notebook = nbformat.read(EXAMPLES / "blank.ipynb", as_version=4)
        notebook.cells.append(nbformat.v4.new_code_cell(source))
        nbformat.write(notebook, submissions / name)
    grading.grade_folder(submissions, tmp_path / "out", workers=1, progress=False)
    assert "EARLIER-SUBMISSION" in (tmp_path / "out" / RESULTS_DIR / "a-earlier.ipynb" / "log.txt").read_text()
    assert "FRAMES []" in (tmp_path / "out" / RESULTS_DIR / "b-probe.ipynb" / "log.txt").read_text()


def test_folder_entries_that_are_not_submissions_still_get_a_row(tmp_path):
    (tmp_path / "notes.txt").write_text("not a submission")
    (tmp_path / "link.ipynb").symlink_to(EXAMPLES / "correct.ipynb")
    (tmp_path / ".hidden.ipynb").write_text("{}")
    found = {submission.name: submission.problem for submission in find_submissions(tmp_path)}
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
    """Stock otter (`otter run`) gives the solutions full marks and the blank notebook zero, as make grade does."""
    result = bench.bench(copies=1, names=("correct.ipynb", "blank.ipynb"))
    assert result["submissions"] == 2 and result["disagreements"] == []
    assert result["scores"]["00-correct.ipynb"] == POINTS
    assert result["scores"]["00-blank.ipynb"] == dict.fromkeys(QUESTIONS, 0.0)
    assert result["otter_run_seconds"] > 0 and result["make_grade_seconds"] > 0


def test_a_forked_payload_talks_through_pipes_from_inside_its_sandbox():
    limits = sandbox.Limits(wall_seconds=30)

    def echo(requests: int, answers: int) -> int:
        os.write(answers, f"{os.getuid()} {os.getcwd()} ".encode() + os.read(requests, 100))
        return 0

    process = sandbox.Forked(sandbox.Holder(sandbox.find_bwrap(), [], limits), sandbox.SANDBOX_UID_BASE, limits, echo)
    process.stdin.write(b"values, please")
    process.stdin.flush()
    uid, cwd, message = process.stdout.read().decode().split(maxsplit=2)
    assert process.wait() == 0
    assert int(uid) == sandbox.SANDBOX_UID_BASE and cwd == "/autograder" and message == "values, please"

    def spin(requests: int, answers: int) -> int:
        os.write(answers, b"spinning\n")
        while True:
            pass

    looping = sandbox.Forked(sandbox.Holder(sandbox.find_bwrap(), [], limits), sandbox.SANDBOX_UID_BASE, limits, spin)
    assert looping.stdout.readline() == b"spinning\n"
    looping.kill()
    assert looping.wait() == 128 + 9


def saved_by_jupyterlab(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """`notebook` as JupyterLab saves it after Run All: outputs, execution counts, its own metadata."""
    saved = nbformat.from_dict(json.loads(json.dumps(notebook)))
    for count, cell in enumerate((cell for cell in saved.cells if cell.cell_type == "code"), 1):
        cell.execution_count = count
        cell.outputs = [nbformat.v4.new_output("stream", text=f"output {count}\n")]
    saved.metadata["language_info"] = {"name": "python", "version": "3.11.7", "mimetype": "text/x-python"}
    saved.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    return saved


def blank_of_an_earlier_version() -> nbformat.NotebookNode:
    """The handed-out notebook as an earlier version had it, unanswered: other words and printed
    targets, the init cell of before, and older skeletons (q1.3 raising NotImplementedError, q2.1 a
    body of `...` that returns None)."""
    notebook = nbformat.read(STUDENT_NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = cell.source.replace("homework", "assignment")
        elif cell.source.startswith("# Initialize Otter"):
            cell.source = ("# Initialize Otter\ntry:\n    import backprop_checks\n    grader = backprop_checks.notebook_grader("
                           "tests_dir='tests')\nexcept ModuleNotFoundError:\n    class ChecksNotSetUp:\n"
                           "        def __getattr__(self, name):\n            return lambda *args: print('set up first')\n"
                           "    grader = ChecksNotSetUp()")
        elif cell.source.startswith("dldbeta3 = ..."):
            cell.source = "# YOUR CODE HERE\nraise NotImplementedError()"
        elif cell.source.startswith("def compute_network_output("):
            cell.source = "def compute_network_output(net_input, all_weights, all_biases):\n    ...\n"
        else:
            cell.source = re.sub(r"expected \d+\.\d+", "expected 2.5", cell.source)
    return notebook


def test_an_instructors_batch_from_make_grade_to_make_report(tmp_path):
    """The batch of issue 19, graded with `make grade OUT=...` into a folder of its own, then `make
    report` without GRADES: names and SIDs in grades.csv and a row per student in gradebook.csv, the
    blank notebooks (one of an earlier version) said to be blank, every feedback.txt with its total
    first and each case once, and the report naming who hit each failure."""
    submissions, out = tmp_path / "the class's submissions", tmp_path / "grading run 1"
    for name in ("submission_1001", "submission_1002"):  # a Gradescope export, with late submissions dropped in
        shutil.copytree(EXAMPLES / name, submissions / name)
    for name in ("submission_metadata.yml", "export.zip", "partly-wrong.ipynb", "blank.ipynb"):
        shutil.copy(EXAMPLES / name, submissions)
    nbformat.write(saved_by_jupyterlab(nbformat.read(STUDENT_NOTEBOOK, as_version=4)), submissions / "blank-run.ipynb")
    nbformat.write(saved_by_jupyterlab(nbformat.read(EXAMPLES / "correct.ipynb", as_version=4)),
                   submissions / "correct-run.ipynb")
    nbformat.write(blank_of_an_earlier_version(), submissions / "blank-of-an-earlier-version.ipynb")
    graded = make("grade", f"SUBMISSIONS={submissions}", f"OUT={out}", "ENGINE=bwrap")
    assert graded.returncode == 0, graded.stderr
    rows = rows_of(out)
    blank = "Blank: no question answered (every answer still `...` or missing)"
    assert {name: row["grading_status"] for name, row in rows.items()} == {
        "blank-run.ipynb": blank, "blank.ipynb": blank, "blank-of-an-earlier-version.ipynb": blank,
        "correct-run.ipynb": "Completed", "export.zip": "Completed", "partly-wrong.ipynb": "Completed",
        "submission_1001": "Completed", "submission_1002": "Completed"}
    assert [row["integrity"] for row in rows.values()] == [""] * len(rows)  # flags nobody
    assert (rows["submission_1002"]["name"], rows["submission_1002"]["sid"]) == ("Bo Example", "1002")
    for name, row in rows.items():
        feedback = (out / RESULTS_DIR / name / "feedback.txt").read_text().splitlines()
        assert feedback[0] == f"Total: {row['total']} of {TOTAL:g} points", name
        cases = [line for line in feedback if line.startswith(("✅", "❌"))]
        assert len(cases) == len(set(cases)) == CASES, name

    reported = make("report")
    assert reported.returncode == 0, reported.stderr
    assert f"report of the grading run in {out}" in reported.stdout
    page = (out / "report.html").read_text()
    q12 = re.search(r'id="failures-q1.2".*?</section>', page, re.S)[0]
    assert re.search(rf'<td class="count">2</td><td class="message"><code>dldf2</code> = {-TOY["dldf2"]:.6f} has the wrong sign.*?'
                     r'<td class="who"><bdi>Bo Example</bdi> \(<bdi>submission_1002</bdi>\), <bdi>partly-wrong.ipynb</bdi></td>',
                     q12, re.S), q12
    assert '<span id="n-graded">5</span> graded' in page and '<span id="n-blank">3</span> blank' in page
    assert "blank-of-an-earlier-version.ipynb" not in "".join(re.findall(r'<td class="who">.*?</td>', page))
    with open(out / "gradebook.csv", newline="", encoding="utf-8-sig") as handle:
        gradebook = list(csv.DictReader(handle))
    assert [(row["Student"], row["SIS User ID"], row["SIS Login ID"], row["backpropagation"])
            for row in gradebook if row["SIS User ID"]] == [
        ("Ada Example", "1001", "ada@example.edu", rows["submission_1001"]["total"]),
        ("Bo Example", "1002", "bo@example.edu", rows["submission_1002"]["total"])]
    assert sorted(row["Student"] for row in gradebook if not row["SIS User ID"]) == sorted(
        name for name in rows if not name.startswith("submission_"))  # by file, for the gradebook to match by hand
    assert (out / "grades.csv").read_bytes().startswith(b"\xef\xbb\xbffile,name,sid,email,")


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie waiting for a parent that does not reap it does not)."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def children(pid: int) -> list[int]:
    return [int(child) for child in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                   text=True).stdout.split()]


def wait_for(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def status_in(out: Path, name: str) -> str:
    try:
        return rows_of(out)[name]["grading_status"]
    except (OSError, KeyError):
        return ""


def test_a_batch_stopped_midway_keeps_every_finished_row(tmp_path):
    submissions, out = tmp_path / "submissions", tmp_path / "out"
    submissions.mkdir()
    for name in ("correct.ipynb", "partly-wrong.ipynb", "stubborn-loop.zip"):
        shutil.copy(EXAMPLES / name, submissions)
    # A cell of 20 s: the stubborn loop is still being graded when the others are done.
    command = [sys.executable, "-m", "backprop_hw.grading", str(submissions), "--out", str(out), "--workers", "2",
               "--cell-seconds", "20", "--wall-seconds", "120"]
    grading_run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: all(status_in(out, name) == "Completed" for name in ("correct.ipynb", "partly-wrong.ipynb")))
    workers = children(grading_run.pid)
    assert len(workers) == 2 and status_in(out, "stubborn-loop.zip").startswith(f"grader error: {NOT_REACHED}")
    grading_run.kill()
    grading_run.wait()
    rows = rows_of(out)
    expected = examples.expected_scores()
    assert [rows["correct.ipynb"][q] for q in (*QUESTIONS, "total")] == [f"{p:g}" for p in (*POINTS.values(), TOTAL)]
    assert rows["partly-wrong.ipynb"]["total"] == f"{sum(expected['partly-wrong.ipynb'][0]):g}"
    assert rows["stubborn-loop.zip"]["grading_status"] == f"grader error: {NOT_REACHED} (no score: grade it again)"
    assert [rows["stubborn-loop.zip"][q] for q in (*QUESTIONS, "total", "percent")] == [""] * 7
    for name in ("correct.ipynb", "partly-wrong.ipynb"):
        assert (out / RESULTS_DIR / name / "feedback.txt").read_text().startswith("Total: ")
    wait_for(lambda: not any(alive(pid) for pid in workers), 10)  # nothing outlives the batch


def test_a_worker_that_never_answers_is_killed_and_the_batch_goes_on(tmp_path):
    """A monitor stopped (SIGSTOP) as it grades: only a bug of the grader could hang it so."""
    submissions, out = tmp_path / "submissions", tmp_path / "out"
    submissions.mkdir()
    solutions = nbformat.read(EXAMPLES / "correct.ipynb", as_version=4)
    nbformat.write(solutions, submissions / "a-first.ipynb")
    nbformat.write(examples.insert_after_check(solutions, "q1.1", "import time\ntime.sleep(2)"),
                   submissions / "b-hung.ipynb")
    nbformat.write(solutions, submissions / "c-after.ipynb")
    wall = 15
    command = [sys.executable, "-m", "backprop_hw.grading", str(submissions), "--out", str(out), "--workers", "1",
               "--cell-seconds", "3", "--wall-seconds", str(wall)]
    started = time.monotonic()
    grading_run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: status_in(out, "a-first.ipynb") == "Completed")
    [worker] = children(grading_run.pid)
    wait_for(lambda: any(children(monitor) for monitor in children(worker)))  # b-hung's monitor, grading it
    hung = children(worker)
    for monitor in hung:
        os.kill(monitor, signal.SIGSTOP)
    _, stderr = grading_run.communicate(timeout=120)
    assert grading_run.returncode == 1
    assert "the grader itself failed on 1 submission(s), which have no score: b-hung.ipynb" in stderr
    rows = rows_of(out)
    watchdog = grading.ANSWER_FACTOR * wall  # no notebook holds a worker longer
    assert rows["b-hung.ipynb"]["grading_status"] == (
        f"grader error: the grading worker did not answer within {watchdog:g} s and was killed, with everything it "
        "started (no score: grade it again)")
    assert rows["b-hung.ipynb"]["total"] == "" and rows["a-first.ipynb"]["total"] == f"{TOTAL:g}"
    assert rows["c-after.ipynb"]["grading_status"] == "Completed" and rows["c-after.ipynb"]["total"] == f"{TOTAL:g}"
    assert watchdog < time.monotonic() - started < watchdog + 60
    assert not any(alive(pid) for pid in [worker, *hung])
