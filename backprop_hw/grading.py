"""Grade a folder of submissions, each in its own sandbox, the way Gradescope would.

    python -m backprop_hw.grading [SUBMISSIONS] [--out OUT] [--engine bwrap|docker]

A submission is a notebook (`.ipynb`), a zip from `grader.export()`, or a folder (one submission
of a Gradescope "export submissions" download, whose folder holds `submission_metadata.yml`).
Writes, in OUT:

- `grades.csv`: the columns of `otter grade`'s `final_grades.csv` (file, one column per question,
  total_points_earned, percent_correct, grading_status) with its points-per-question first row;
- `results/<file>/results.json` (Gradescope's format), `results/<file>/feedback.txt` (what the
  student would see) and `results/<file>/log.txt` (the start of the grading output).

Workers, one per core, each keep a warm interpreter and fork it for every submission into a fresh
bubblewrap sandbox (see `backprop_hw.sandbox`), where `harness.py` runs the notebook. The tests
run outside, in a monitor process that asks the sandbox for plain-data answers (see
`trusted_grading.py`). The processes here never run student code.
"""

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from backprop_hw import sandbox

ROOT = Path(__file__).resolve().parent.parent
AUTOGRADER_ZIP = ROOT / "autograder" / "backpropagation-autograder.zip"
DEFAULT_SUBMISSIONS = ROOT / "examples" / "submissions"
DEFAULT_OUT = ROOT / "grades"
GRADESCOPE_METADATA = "submission_metadata.yml"
POINTS_ROW = "points-per-question"
COMPLETED = "Completed"


@dataclass
class Submission:
    """One thing to grade: `name` is its row's `file` and its folder under results/."""

    name: str
    path: Path
    problem: Optional[str] = None  # why it cannot be graded at all


@dataclass
class Outcome:
    """What came out of one sandbox."""

    results: Optional[dict] = None  # Gradescope results
    complete: bool = False  # the notebook ran to its end
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # integrity flags for the instructor, never a penalty
    error: Optional[str] = None
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


# ---------------------------------------------------------------------------------------------
# The worker: a warm interpreter outside the sandboxes that forks one monitor per submission.


def question_points(source: Path) -> dict[str, float]:
    """{question: points} from the autograder's test files, read as the monitors read them."""
    from backprop_hw import trusted_grading

    return {name: test.possible for name, test in trusted_grading.load_tests(source / "tests", source / "files").items()}


SANDBOX_NOTEBOOK = "/autograder/submission/submission.ipynb"


def monitor(job: dict, source: Path, bwrap: str, limits: sandbox.Limits, uid: int) -> Outcome:
    """Grade one submission: its notebook runs in a new sandbox, the tests here, outside it.

    The sandbox holds the notebook and nothing of the autograder: no test, no reference value.
    Only plain data comes out of it (see `trusted_grading`).
    """
    from otter.run.run_autograder.autograder_config import AutograderConfig

    from backprop_hw import harness, trusted_grading

    started = time.monotonic()
    config = AutograderConfig(json.loads((source / "otter_config.json").read_text()))
    tests, support = source / "tests", source / "files"
    with tempfile.TemporaryDirectory(prefix="backprop-incoming-") as incoming:
        try:
            notebook, flags = trusted_grading.find_notebook(stage(Path(job["path"]), Path(incoming, "submission")),
                                                            Path(incoming))
            trusted_grading.check_notebook(notebook, config)
        except trusted_grading.SubmissionProblem as problem:
            grading = trusted_grading.grade_nothing(tests, support, str(problem))
            return Outcome(results=trusted_grading.results_for_gradescope(grading, config), error=str(problem))
        notebook.chmod(0o644)
        binds = ["--perms", "0755", "--dir", str(Path(SANDBOX_NOTEBOOK).parent), "--ro-bind", str(notebook), SANDBOX_NOTEBOOK]
        holder = sandbox.Holder(bwrap, binds, limits)
        started_processes: list[sandbox.Forked] = []

        def run_harness(requests: int, answers: int) -> int:
            harness.grade_here(SANDBOX_NOTEBOOK, limits.cell_seconds, os.fdopen(requests, "r"), os.fdopen(answers, "w"))
            return 0

        def launch(_command: list[str]) -> sandbox.Forked:  # the harness is already loaded: fork, not exec
            started_processes.append(sandbox.Forked(holder, uid, limits, run_harness))
            return started_processes[-1]

        grading = trusted_grading.grade(notebook, tests, support, launch, cell_timeout=limits.cell_seconds,
                                        total_timeout=limits.wall_seconds)
    outcome = Outcome(results=trusted_grading.results_for_gradescope(grading, config), complete=grading.finished,
                      flags=flags + grading.flags, seconds=round(time.monotonic() - started, 3))
    if grading.status != "completed":
        outcome.notes.append(grading.status)
    for process in started_processes:
        outcome.log = process.output.decode(errors="replace")
        if process.output_total > limits.output_bytes:
            outcome.notes.append(f"printed {process.output_total / 1e6:.1f} MB; the log keeps the first "
                                 f"{limits.output_bytes // 1024} KB")
    return outcome


def stage(submission: Path, folder: Path) -> Path:
    """Copy the submission (links as links) into `folder`; return `folder`."""
    folder.mkdir()
    if submission.is_dir():
        shutil.copytree(submission, folder / submission.name, symlinks=True)
    else:
        shutil.copyfile(submission, folder / submission.name)
    return folder


def worker_main(source: Path, slot: int, limits: sandbox.Limits) -> None:
    """Serve jobs (JSON lines on stdin) with a warm interpreter; answer each with one JSON line.

    This process never loads the tests: the sandboxed processes are forked from it, and must not
    inherit them.
    """
    from backprop_hw import harness, trusted_grading  # noqa: F401  (the monitors' code, loaded once)

    harness.warm_up()
    bwrap = sandbox.find_bwrap()
    uid = sandbox.SANDBOX_UID_BASE + slot
    _answer({"ready": True})
    for line in sys.stdin:
        job = json.loads(line)
        reply_read, reply_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # a monitor per job, so that this warm process never holds a submission's data
            os.close(reply_read)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # what tests print must not mix with the replies
            try:
                outcome = monitor(job, source, bwrap, limits, uid)
                reply = {"outcome": outcome.__dict__}
            except BaseException:
                reply = {"outcome": Outcome(error=f"grader failure: {traceback.format_exc()}").__dict__}
            data = json.dumps(reply).encode()
            while data:
                data = data[os.write(reply_write, data):]
            os._exit(0)
        os.close(reply_write)
        with os.fdopen(reply_read, "rb") as reply_file:
            reply = reply_file.read()
        os.waitpid(pid, 0)
        sys.stdout.write(reply.decode() + "\n")
        sys.stdout.flush()


def _answer(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class Worker:
    """A worker process, driven from a thread of the main process."""

    def __init__(self, source: Path, slot: int, limits: sandbox.Limits):
        self.arguments = [sys.executable, "-m", "backprop_hw.grading", "--worker", str(source), "--slot", str(slot),
                          "--limits", json.dumps(limits.__dict__)]
        self.process: Optional[subprocess.Popen] = None

    def start(self) -> None:
        environment = dict(os.environ, MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                           MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(ROOT))
        self.process = subprocess.Popen(self.arguments, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env=environment, cwd=ROOT)
        if not self.process.stdout.readline():
            raise RuntimeError("a grading worker failed to start")

    def grade(self, submission: Submission) -> Outcome:
        if self.process is None or self.process.poll() is not None:
            self.start()
        self.process.stdin.write(json.dumps({"path": str(submission.path.resolve())}) + "\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline()
        if not reply:
            self.process = None
            return Outcome(error="grader failure: the worker stopped")
        return Outcome(**json.loads(reply)["outcome"])

    def stop(self) -> None:
        if self.process is not None:
            self.process.stdin.close()
            self.process.wait()


# ---------------------------------------------------------------------------------------------
# Results: complete, honest rows; the files the student and the instructor read.


def complete_results(results: Optional[dict], points: dict[str, float], reason: str) -> dict:
    """Gradescope results with an entry (zero when absent) for every question."""
    results = json.loads(json.dumps(results)) if results else {"tests": []}
    tests = results.setdefault("tests", [])
    present = {test.get("name") for test in tests}
    for question, possible in points.items():
        if question not in present:
            tests.append({"name": question, "score": 0, "max_score": possible, "visibility": "hidden",
                          "output": f"Not graded: {reason}"})
    return results


def question_scores(results: dict, points: dict[str, float]) -> dict[str, float]:
    scores = {test.get("name"): test.get("score", 0) for test in results.get("tests", [])}
    return {question: float(scores.get(question) or 0) for question in points}


def status_of(outcome: Outcome) -> str:
    """otter grade's `Completed`, or what went wrong and what it cost."""
    if outcome.error:
        return "; ".join([f"Not graded: {outcome.error}", *outcome.notes])
    if outcome.complete:
        return "; ".join([COMPLETED, *outcome.notes])
    return "; ".join(["Partly graded (questions not reached score 0)", *outcome.notes])


def feedback_text(results: dict) -> str:
    """What Gradescope shows the student now: the visible tests and the overall output."""
    lines = []
    if results.get("output"):
        lines += [results["output"], ""]
    for test in results.get("tests", []):
        if test.get("visibility", "visible") != "visible":
            continue
        score = f" ({test['score']:g} / {test['max_score']:g})" if "score" in test and "max_score" in test else ""
        lines += [f"{test.get('name', 'Test')}{score}", test.get("output", ""), ""]
    hidden = sum(1 for test in results.get("tests", []) if test.get("visibility", "visible") != "visible")
    if hidden:
        lines.append(f"({hidden} more results are hidden until grades are published.)")
    return "\n".join(lines).rstrip() + "\n"


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    temporary.replace(path)


def record(out: Path, submission: Submission, outcome: Outcome, points: dict[str, float]) -> dict:
    """Write the submission's files; return its grades.csv row."""
    status = f"Not graded: {submission.problem}" if submission.problem else status_of(outcome)
    results = complete_results(outcome.results, points, status)
    folder = out / "results" / submission.name
    write_atomically(folder / "results.json", json.dumps(results, indent=4) + "\n")
    write_atomically(folder / "feedback.txt", feedback_text(results))
    write_atomically(folder / "log.txt", outcome.log)
    scores = question_scores(results, points)
    total, possible = sum(scores.values()), sum(points.values())
    return {"file": submission.name, **scores, "total_points_earned": total,
            "percent_correct": round(total / possible, 6) if possible else 0, "grading_status": status,
            "integrity": "; ".join(outcome.flags)}


def write_grades(out: Path, rows: list[dict], points: dict[str, float]) -> None:
    columns = ["file", *sorted(points), "total_points_earned", "percent_correct", "grading_status", "integrity"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerow({"file": POINTS_ROW, **points, "total_points_earned": sum(points.values()),
                     "percent_correct": 1, "grading_status": "--", "integrity": "--"})
    writer.writerows(sorted(rows, key=lambda row: row["file"]))
    write_atomically(out / "grades.csv", buffer.getvalue())


# ---------------------------------------------------------------------------------------------
# The batch.


def unpack_autograder(autograder: Path, folder: Path) -> Path:
    """Unpack the autograder zip once, outside every sandbox: the tests never enter one."""
    source = folder / "source"
    with zipfile.ZipFile(autograder) as archive:
        archive.extractall(source)
    return source


def grade_folder(submissions: Path, out: Path, autograder: Path = AUTOGRADER_ZIP,
                 limits: sandbox.Limits = sandbox.Limits(), workers: Optional[int] = None,
                 progress: bool = True) -> list[dict]:
    """Grade every submission in `submissions` into `out`; return the grades.csv rows."""
    sandbox.find_bwrap()
    found = find_submissions(submissions)
    workers = max(1, min(workers or os.cpu_count() or 1, len(found)))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="backprop-grading-") as temporary:
        source = unpack_autograder(autograder, Path(temporary))
        points = question_points(source)
        pool = [Worker(source, slot, limits) for slot in range(workers)]
        free = list(pool)
        lock = threading.Lock()

        def grade_one(submission: Submission) -> tuple[Submission, Outcome]:
            with lock:
                worker = free.pop()
            try:
                outcome = Outcome() if submission.problem else worker.grade(submission)
            finally:
                with lock:
                    free.append(worker)
            if progress:
                print(f"  {submission.name}: {status_of(outcome) if not submission.problem else submission.problem}"
                      f" ({outcome.seconds:.1f} s)", flush=True)
            return submission, outcome

        try:
            with ThreadPoolExecutor(workers) as executor:
                graded = list(executor.map(grade_one, found))
        finally:
            for worker in pool:
                worker.stop()
    rows = [record(out, submission, outcome, points) for submission, outcome in graded]
    write_grades(out, rows, points)
    _remove_stale(out, {submission.name for submission in found})
    return rows


def _remove_stale(out: Path, names: set[str]) -> None:
    """Drop results of submissions no longer in the folder, so OUT matches the latest run only."""
    results = out / "results"
    for folder in results.iterdir() if results.is_dir() else ():
        if folder.is_dir() and folder.name not in names:
            shutil.rmtree(folder)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("submissions", type=Path, nargs="?", default=DEFAULT_SUBMISSIONS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--autograder", type=Path, default=AUTOGRADER_ZIP)
    parser.add_argument("--engine", choices=("bwrap", "docker"), default="bwrap")
    parser.add_argument("--workers", type=int, default=None, help="parallel sandboxes (default: one per core)")
    parser.add_argument("--cell-seconds", type=float, default=sandbox.Limits.cell_seconds,
                        help="time one cell may run before it is interrupted")
    parser.add_argument("--wall-seconds", type=float, default=sandbox.Limits.wall_seconds,
                        help="time one submission may take before its sandbox is killed")
    parser.add_argument("--memory-mb", type=int, default=sandbox.Limits.memory_bytes >> 20,
                        help="memory one submission may add to the grading interpreter")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--slot", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--limits", type=json.loads, default=None, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    limits = sandbox.Limits(**arguments.limits) if arguments.limits else sandbox.Limits(
        wall_seconds=arguments.wall_seconds, cell_seconds=arguments.cell_seconds, memory_bytes=arguments.memory_mb << 20)
    if arguments.worker:
        worker_main(arguments.worker, arguments.slot, limits)
        return 0
    if not arguments.submissions.is_dir():
        print(f"no folder of submissions at {arguments.submissions}", file=sys.stderr)
        return 2
    try:
        if arguments.engine == "docker":
            from backprop_hw import docker_engine

            rows = docker_engine.grade_folder(arguments.submissions, arguments.out, arguments.autograder, limits)
        else:
            started = time.monotonic()
            rows = grade_folder(arguments.submissions, arguments.out, arguments.autograder, limits, arguments.workers)
            print(f"graded {len(rows)} submissions in {time.monotonic() - started:.1f} s: "
                  f"{arguments.out / 'grades.csv'}")
    except sandbox.SandboxUnavailable as error:
        print(f"refusing to grade: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
