"""A grading worker of `make grade`: a warm interpreter that grades one submission at a time.

    python -m backprop_hw.grading_worker SOURCE SLOT LIMITS_JSON      (started by backprop_hw.grading)

Jobs arrive as JSON lines on stdin (`{"path": ...}`), and each gets one JSON line back
(`{"outcome": ...}`). For each job the worker forks a monitor, which reads the job and writes its
outcome itself: this warm process never holds a submission's path, data or results, nor the
tests, so no later student's process forked from it can find them. The monitor forks the student's
process into a new sandbox (warm: no imports to pay for), and only then loads the tests and grades
(`backprop_hw.autograder.trusted`).
A second student process, for a replay, is exec'd rather than forked: by then the monitor holds the
tests. The worker is started with a minimal environment of its own (`grading.WORKER_ENVIRONMENT`),
so nothing of the instructor's environment is in any memory the sandbox can see.
"""

import ctypes
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from backprop_hw import sandbox
from backprop_hw.autograder import feedback, harness, submission, trusted
from backprop_hw.results import Outcome

NO_MORE_JOBS = 3  # a monitor's exit status: stdin is closed, the worker ends
NO_CGROUP = ("whole-submission limits are unavailable here (no writable cgroup v1 memory, pids, cpu and "
             "freezer controllers): each process kept its own memory and process limits only")


def die_with_parent() -> None:
    """Have the kernel kill this process when its parent dies, so that no grading is orphaned."""
    ctypes.CDLL(None, use_errno=True).prctl(sandbox.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def stage(path: Path, folder: Path) -> Path:
    """Copy a submission into `folder` (a folder's files as `submission.regular_files` walks it, which
    refuses links, special files, deep or long paths and oversized folders); return `folder`."""
    import shutil

    folder.mkdir()
    if path.is_dir():
        for file in submission.regular_files(path):
            copy = folder / file.relative_to(path)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, copy, follow_symlinks=False)
    elif os.lstat(path).st_size > submission.MAX_BYTES:
        raise submission.SubmissionProblem(f"the submission is larger than {submission.MAX_BYTES >> 20} MB")
    else:
        shutil.copyfile(path, folder / path.name, follow_symlinks=False)
    return folder


def run_harness(timeout: float):
    """The payload of a warm sandbox: this very process becomes the student's (no exec)."""

    def payload(requests: int, answers: int) -> int:
        harness.serve(timeout, os.fdopen(requests, "r"), os.fdopen(answers, "w"))
        return 0

    return payload


def exec_harness(timeout: float):
    """The payload of a fresh sandbox: a new interpreter, which holds nothing of this process.
    (The harness's file is out of the sandbox's sight: its source goes on the command line.)"""
    source = Path(harness.__file__).read_text()

    def payload(requests: int, answers: int) -> int:
        os.dup2(requests, 0)
        os.dup2(answers, 1)
        os.execve(sys.executable, [sys.executable, "-I", "-c", source, str(timeout)], sandbox.ENVIRONMENT)
        return 127

    return payload


def monitor(job: dict, source: Path, bwrap: str, limits: sandbox.Limits, uid: int) -> Outcome:
    """Grade one submission: its cells run in a new sandbox, the tests here, outside it.

    The sandbox holds nothing of the autograder (no test, no reference value) and nothing of the
    submission but the cells sent to it; only plain data comes out of it.
    """
    started = time.monotonic()
    config = json.loads((source / "otter_config.json").read_text())
    tests, support = source / "tests", source / "files"
    incoming, refused = Path(tempfile.mkdtemp(prefix="backprop-incoming-")), None
    try:
        found, flags = submission.find_notebook(stage(Path(job["path"]), incoming / "submission"), incoming)
        notebook = submission.read_notebook(found, config.get("assignment_name"))
    except submission.SubmissionProblem as problem:
        refused = problem
    finally:
        left_behind = submission.remove_tree(incoming)  # a note if it stays, never a failure
    if refused is not None:
        grading = trusted.grade_nothing(tests, support, str(refused))
        return Outcome(results=feedback.gradescope_results(grading, config, f"Not graded: {refused}"),
                       error=str(refused), notes=left_behind)
    launched: list[sandbox.Forked] = []

    def launch(replay: bool) -> sandbox.Forked:
        payload = exec_harness if replay else run_harness
        launched.append(sandbox.Forked(sandbox.Holder(bwrap, [], limits), uid, limits, payload(limits.cell_seconds)))
        return launched[-1]

    handed_out = frozenset(config.get(submission.HANDED_OUT_CELLS, ()))
    budget = trusted.Budget(limits.wall_seconds, limits.cell_seconds, config.get("call_seconds"), started)
    try:
        grading = trusted.grade(notebook, tests, support, launch, budget, handed_out=handed_out)
    except trusted.GraderFailure as failure:
        return Outcome(grader_error=str(failure), log=log_of(launched[0]) if launched else "")
    first = launched[0]
    notes = grading.problems + left_behind
    if first.output_total > limits.output_bytes:
        notes.append(f"printed {first.output_total / 1e6:.1f} MB; the log keeps the first {limits.output_bytes // 1024} KB")
    if first.holder.cgroup is None:
        grading.notes.append(NO_CGROUP)
    grading.flags[:0] = flags
    status = "; ".join(["completed" if grading.finished else "partly graded", *notes])
    return Outcome(results=feedback.gradescope_results(grading, config, status), complete=grading.finished,
                   blank=feedback.is_blank(grading), notes=notes, flags=grading.flags, log=log_of(first),
                   seconds=round(time.monotonic() - started, 3))


def log_of(launched: sandbox.Forked) -> str:
    """What the notebook printed (its start), as it may be shown."""
    return submission.printable(launched.output.decode(errors="replace"))


def warm_up(source: Path) -> None:
    """Load, once, what every monitor and every student's process needs, so that each fork finds it
    ready: the harness's imports, otter's test files, the public checks module, and nbformat's
    validator. Never the tests themselves."""
    import nbformat
    import otter.test_files.exception_test  # noqa: F401

    harness.warm_up()
    sys.path.insert(0, str(source / "files"))
    import backprop_checks  # noqa: F401  (public: the student notebook carries it too)

    nbformat.validate(nbformat.v4.new_notebook())


def serve(source: Path, slot: int, limits: sandbox.Limits) -> None:
    """Serve jobs (JSON lines on stdin) with a warm interpreter; answer each with one JSON line.

    This process never loads the tests: the sandboxed processes are forked from it, and must not
    inherit them.
    """
    die_with_parent()
    warm_up(source)
    bwrap = sandbox.find_bwrap()
    uid = sandbox.SANDBOX_UID_BASE + slot
    print(json.dumps({"ready": True}), flush=True)
    while True:
        pid = os.fork()
        if pid == 0:  # a monitor per job, which alone sees the job and its outcome
            code = 1
            try:
                code = run_monitor(source, bwrap, limits, uid)
            finally:
                os._exit(code)
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        if code == NO_MORE_JOBS:
            return
        if code != 0:  # the monitor died before it answered: answer for it, still one line per job
            write_line(1, {"outcome": Outcome(grader_error=f"the grading monitor died (exit status {code})").__dict__})


def write_line(descriptor: int, message: dict) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(descriptor, data):]


def read_line(descriptor: int) -> bytes:
    """One line of a pipe, read a byte at a time: nothing after it is taken from the pipe."""
    line = b""
    while not line.endswith(b"\n"):
        byte = os.read(descriptor, 1)
        if not byte:
            break
        line += byte
    return line


def run_monitor(source: Path, bwrap: str, limits: sandbox.Limits, uid: int) -> int:
    """In a fresh fork: read one job from stdin, grade it and write its outcome to stdout; the exit status."""
    die_with_parent()
    line = read_line(0)
    if not line.strip():
        return NO_MORE_JOBS
    replies = os.dup(1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # what tests print must not mix with the replies
    try:
        reply = {"outcome": monitor(json.loads(line), source, bwrap, limits, uid).__dict__}
    except BaseException:
        reply = {"outcome": Outcome(grader_error=f"grader failure: {traceback.format_exc()}").__dict__}
    write_line(replies, reply)
    return 0


def main() -> int:
    source, slot, limits = Path(sys.argv[1]), int(sys.argv[2]), sandbox.Limits(**json.loads(sys.argv[3]))
    serve(source, slot, limits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
