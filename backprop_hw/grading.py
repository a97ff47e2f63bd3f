"""Grade a folder of submissions, each in its own sandbox, the way Gradescope would.

    python -m backprop_hw.grading [SUBMISSIONS] [--out OUT] [--engine bwrap|docker]

A submission is a notebook (`.ipynb`), a zip from `grader.export()`, or a folder (one submission
of a Gradescope "export submissions" download, whose folder holds `submission_metadata.yml`).
Writes OUT/grades.csv and OUT/results/<file>/ (see `backprop_hw.results`). Exits with status 1 if
the grader itself failed on any submission (those rows say "grader error" and hold no score).

Workers, one per core, each keep a warm interpreter (`backprop_hw.grading_worker`) and fork it for
every submission into a fresh bubblewrap sandbox (see `backprop_hw.sandbox`). The tests run
outside, in a monitor process that asks the sandbox for plain-data answers. The processes here
never run student code.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

from backprop_hw import sandbox
from backprop_hw.paths import AUTOGRADER_ZIP, EXAMPLES, ROOT
from backprop_hw.results import (GRADER_ERROR, RESULTS_DIR, Outcome, Submission, find_submissions, question_points,
                                record, status_of, unpack_autograder, write_grades)

DEFAULT_OUT = ROOT / "grades"
# The whole environment of a worker, and so of every sandbox forked from it: nothing of the instructor's.
WORKER_ENVIRONMENT = {
    "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT),
    "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg", "HOME": tempfile.gettempdir(),
    "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
}


class Worker:
    """A worker process, driven from a thread of the main process."""

    def __init__(self, source: Path, slot: int, limits: sandbox.Limits):
        self.arguments = [sys.executable, "-m", "backprop_hw.grading_worker", str(source), str(slot),
                          json.dumps(limits.__dict__)]
        self.process: Optional[subprocess.Popen] = None
        self.ready = False

    def start(self) -> None:
        """Start the worker; it warms up while the main process goes on."""
        self.process = subprocess.Popen(self.arguments, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env=WORKER_ENVIRONMENT, cwd=ROOT)
        self.ready = False

    def grade(self, submission: Submission) -> Outcome:
        if self.process is None or self.process.poll() is not None:
            self.start()
        if not self.ready:
            self.ready = bool(self.process.stdout.readline())
            if not self.ready:
                self.process = None
                return Outcome(grader_error="a grading worker failed to start")
        self.process.stdin.write(json.dumps({"path": str(submission.path.resolve())}) + "\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline()
        if not reply:
            self.process = None
            return Outcome(grader_error="the grading worker stopped")
        return Outcome(**json.loads(reply)["outcome"])

    def stop(self) -> None:
        if self.process is not None:
            self.process.stdin.close()
            self.process.wait()
            self.process = None


# ---------------------------------------------------------------------------------------------
# The batch.


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
        pool = [Worker(source, slot, limits) for slot in range(workers)]
        for worker in pool:
            worker.start()
        points = question_points(source)
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
    results = out / RESULTS_DIR
    for folder in results.iterdir() if results.is_dir() else ():
        if folder.is_dir() and folder.name not in names:
            shutil.rmtree(folder)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("submissions", type=Path, nargs="?", default=EXAMPLES)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--autograder", type=Path, default=AUTOGRADER_ZIP)
    parser.add_argument("--engine", choices=("bwrap", "docker"), default="bwrap")
    parser.add_argument("--workers", type=int, default=None, help="parallel sandboxes (default: one per core)")
    parser.add_argument("--cell-seconds", type=float, default=sandbox.Limits.cell_seconds,
                        help="time one cell may run before it is interrupted")
    parser.add_argument("--wall-seconds", type=float, default=sandbox.Limits.wall_seconds,
                        help="time one submission may take before its sandbox is killed")
    parser.add_argument("--memory-mb", type=int, default=sandbox.Limits.memory_bytes >> 20,
                        help="memory all the processes of one submission may use together")
    arguments = parser.parse_args()
    limits = sandbox.Limits(wall_seconds=arguments.wall_seconds, cell_seconds=arguments.cell_seconds,
                            memory_bytes=arguments.memory_mb << 20)
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
    failed = [row["file"] for row in rows if row["grading_status"].startswith(GRADER_ERROR)]
    if failed:
        print(f"the grader itself failed on {len(failed)} submission(s), which have no score: {', '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
