"""Grade a folder of submissions, each in its own sandbox, the way Gradescope would.

    python -m backprop_hw.grading [SUBMISSIONS] [--out OUT] [--engine bwrap|docker] [--previous FOLDER]

A submission is a notebook (`.ipynb`), a zip from `grader.export()`, or a folder. SUBMISSIONS may
be a Gradescope "Export Submissions" download: the `submission_metadata.yml` at its top names the
submitters of its folders (see `backprop_hw.results.find_submissions`).
Writes OUT/grades.csv and OUT/results/<file>/ (see `backprop_hw.results`). Exits with status 1 if
the grader itself failed on any submission (those rows say "grader error" and hold no score).
Into an OUT that holds an earlier run, or with --previous, it also writes whose scores changed
(see `backprop_hw.regrade`).

Workers, one per core, each keep a warm interpreter (`backprop_hw.grading_worker`) and fork it for
every submission into a fresh bubblewrap sandbox (see `backprop_hw.sandbox`). The tests run
outside, in a monitor process that asks the sandbox for plain-data answers. The processes here
never run student code.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

from backprop_hw import regrade, sandbox
from backprop_hw.paths import AUTOGRADER_ZIP, EXAMPLES, ROOT
from backprop_hw.results import (DEFAULT_OUT, GRADEBOOK_CSV, GRADER_ERROR, GRADES_CSV, NOT_REACHED, RESULTS_DIR,
                                Outcome, Submission, assignment_name, find_submissions, grades_row, question_points,
                                read_grades, record, remember_last_run, unpack_autograder, write_gradebook,
                                write_grades)

# A worker answers within this many times the submission's limit, or is killed: its monitor grades
# within trusted.FINISH of the limit (the budget counts from the monitor's start), and what is left
# (the sandbox's start and end, writing the outcome) takes seconds.
ANSWER_FACTOR = 2
READY_SECONDS = 120.0  # for a new worker to warm up
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
        self.answer_seconds = ANSWER_FACTOR * limits.wall_seconds
        self.process: Optional[subprocess.Popen] = None
        self.ready = False
        self.lock = threading.Lock()  # the watchdog's thread kills the process that the grading thread reads

    def start(self) -> None:
        """Start the worker, in a process group of its own; it warms up while the main process goes on."""
        self.process = subprocess.Popen(self.arguments, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env=WORKER_ENVIRONMENT, cwd=ROOT, start_new_session=True)
        self.ready = False

    def grade(self, submission: Submission) -> Outcome:
        """Grade one submission. A worker that does not answer in time (only a bug of the grader can
        make it so: the monitor enforces the submission's limits) is killed with everything it
        started, and a fresh one grades the next submission."""
        if self.process is None or self.process.poll() is not None:
            self.process, self.ready = None, False
        seconds = self.answer_seconds + (0 if self.ready else READY_SECONDS)
        expired = threading.Event()
        watchdog = threading.Timer(seconds, lambda: (expired.set(), self.kill()))
        watchdog.daemon = True
        watchdog.start()
        try:
            if self.process is None:
                self.start()
            if not self.ready:
                self.ready = bool(self.process.stdout.readline())
            if self.ready:
                self.process.stdin.write(json.dumps({"path": str(submission.path.resolve())}) + "\n")
                self.process.stdin.flush()
                reply = self.process.stdout.readline()
                if reply:
                    return Outcome(**json.loads(reply)["outcome"])
            problem = "stopped" if self.ready else "failed to start"
        except Exception as error:  # a broken pipe, a reply that is no outcome: this worker is done for
            problem = f"failed ({type(error).__name__}: {error})"
        finally:
            watchdog.cancel()
        self.kill()
        if expired.is_set():
            problem = f"did not answer within {seconds:g} s and was killed, with everything it started"
        return Outcome(grader_error=f"the grading worker {problem}")

    def kill(self) -> None:
        """Kill the worker's process group: the worker, its monitor and the monitor's sandbox."""
        with self.lock:
            process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:  # not reaped: its process group cannot be another's
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        """Let the worker end once it has no job left (killed if it does not)."""
        if self.process is not None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=READY_SECONDS)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self.kill()


# ---------------------------------------------------------------------------------------------
# The batch.


def grade_folder(submissions: Path, out: Path, autograder: Path = AUTOGRADER_ZIP,
                 limits: sandbox.Limits = sandbox.Limits(), workers: Optional[int] = None,
                 progress: bool = True) -> list[dict[str, str]]:
    """Grade every submission in `submissions` into `out`; return the grades.csv rows.

    grades.csv and gradebook.csv are written at once, with a row for every submission saying that it
    is not graded yet, and again as each submission finishes: a batch stopped midway keeps every
    finished row.
    """
    sandbox.find_bwrap()
    found = find_submissions(submissions)
    workers = max(1, min(workers or os.cpu_count() or 1, len(found)))
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale(out, {submission.name for submission in found})
    with tempfile.TemporaryDirectory(prefix="backprop-grading-") as temporary:
        source = unpack_autograder(autograder, Path(temporary))
        pool = [Worker(source, slot, limits) for slot in range(workers)]
        for worker in pool:
            worker.start()
        points, assignment = question_points(source), assignment_name(source)
        rows = {submission.name: grades_row(submission, Outcome(grader_error=NOT_REACHED), points)
                for submission in found}

        def write() -> list[str]:
            write_grades(out, list(rows.values()), points)
            return write_gradebook(out, found, rows, points, assignment)

        write()
        free = list(pool)
        lock = threading.Lock()

        def grade_one(submission: Submission) -> None:
            with lock:
                worker = free.pop()
            try:
                outcome = Outcome() if submission.problem else worker.grade(submission)
            finally:
                with lock:
                    free.append(worker)
            try:
                row = record(out, submission, outcome, points)
            except Exception as error:  # its files could not be written: still a row, and the batch goes on
                problem = f"its results could not be written ({error})"
                row = grades_row(submission, Outcome(grader_error=problem), points)
            with lock:
                rows[submission.name] = row
                write()
            if progress:
                print(f"  {submission.name}: {row['grading_status']} ({outcome.seconds:.1f} s)", flush=True)

        executor = ThreadPoolExecutor(workers)
        try:
            for _ in executor.map(grade_one, found):
                pass
            twice = write()
            if twice and progress:
                print(f"{GRADEBOOK_CSV} leaves the score empty for {', '.join(twice)}: more than one submission names "
                      "them (see grades.csv); type in the one that counts.", flush=True)
        except BaseException:  # interrupted: what is being graded stops, what is not started never starts
            executor.shutdown(wait=False, cancel_futures=True)
            for worker in pool:
                worker.kill()
            raise
        finally:
            executor.shutdown()
            for worker in pool:
                worker.stop()
    return [rows[submission.name] for submission in found]


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
                        help="time one submission may take in all, its checks included")
    parser.add_argument("--memory-mb", type=int, default=sandbox.Limits.memory_bytes >> 20,
                        help="memory all the processes of one submission may use together")
    parser.add_argument("--previous", type=Path, default=None,
                        help="an earlier run's folder to compare the scores with (default: OUT's own earlier run)")
    arguments = parser.parse_args()
    limits = sandbox.Limits(wall_seconds=arguments.wall_seconds, cell_seconds=arguments.cell_seconds,
                            memory_bytes=arguments.memory_mb << 20)
    if not arguments.submissions.is_dir():
        print(f"no folder of submissions at {arguments.submissions}", file=sys.stderr)
        return 2
    compared_with = arguments.previous or arguments.out
    previous = regrade.read_previous(compared_with)  # before this run writes over it
    if arguments.previous and previous is None:
        print(f"no earlier grading run (grades.csv) in {arguments.previous} to compare with", file=sys.stderr)
        return 2
    (arguments.out / regrade.CHANGES_CSV).unlink(missing_ok=True)
    try:
        if arguments.engine == "docker":
            from backprop_hw import docker_engine

            docker_engine.require_docker()
            remember_last_run(arguments.out)
            rows = docker_engine.grade_folder(arguments.submissions, arguments.out, arguments.autograder)
        else:
            sandbox.find_bwrap()
            remember_last_run(arguments.out)
            started = time.monotonic()
            rows = grade_folder(arguments.submissions, arguments.out, arguments.autograder, limits, arguments.workers)
            print(f"graded {len(rows)} submissions in {time.monotonic() - started:.1f} s: "
                  f"{arguments.out / 'grades.csv'}")
    except sandbox.SandboxUnavailable as error:
        print(f"refusing to grade: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: {arguments.out / 'grades.csv'} keeps every finished row, and says which submissions "
              "were not graded", file=sys.stderr)
        return 130
    if previous is not None:
        current = read_grades(arguments.out / GRADES_CSV)
        changes = regrade.compare(previous, current)
        regrade.write_changes(arguments.out, changes)
        print(regrade.summary(changes, compared_with, regrade.points_changes(previous, current)))
    failed = [row["file"] for row in rows if row["grading_status"].startswith(GRADER_ERROR)]
    if failed:
        print(f"the grader itself failed on {len(failed)} submission(s), which have no score: {', '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
