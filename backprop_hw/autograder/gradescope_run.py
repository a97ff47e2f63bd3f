"""Gradescope's entry point for the hardened autograder (replaces otter's run_otter.py).

    cd /autograder/source && python -m backprop_grader.gradescope_run [AUTOGRADER_DIR]

Gradescope runs `run_autograder` as root, in a Docker container with Docker's default capabilities.
This process, the trusted side, first closes `/autograder` (the tests, the reference values, the
submission metadata with names and e-mails, the results) to every other user, whatever mode it
came with. The student's cells run in `harness.py` as the unprivileged user `nobody`, from a
scratch folder, with resource limits and no network (a namespace of its own where the platform allows
it, and a seccomp filter that refuses every socket but AF_UNIX); only plain data comes back (see
`trusted.py`). When grading is over, every process of that user is killed before
`results/results.json` is written, atomically and without following links, into a folder checked
to be root's (and, for `otter grade`'s containers, `results/results.pkl`). The results file is always written; if the grader's own environment fails (the
student's process never gets ready), it says so and this process exits with status 1, so that
Gradescope shows the run as failed rather than a student's zero.

The grading fits the assignment's overall timeout on Gradescope (`gradescope_timeout`, Gradescope's
default 600 s; see `trusted.Budget`). Gradescope's container shares its memory (768 MB by default)
between this process and the student's, so the kernel's OOM killer is told to take the student's
first; and a small guardian process, which does nothing else, writes results that say the grader
failed if the grading process is killed all the same, or has not finished by GUARD of the timeout.
"""

import ctypes
import errno
import importlib.util
import json
import os
import pickle
import resource
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable, Optional

from . import feedback, seccomp
from .submission import HANDED_OUT_CELLS, SubmissionProblem, find_notebook, read_notebook, remove_tree
from .trusted import HARNESS, Budget, GraderFailure, Grading, Launcher, grade, grade_nothing

STUDENT_UID = 65534  # "nobody": owns nothing, reads only world-readable files
CLONE_NEWNET = 0x40000000
# How grading notes about the network begin: taken away (nothing for the instructor to do), or not.
NO_NETWORK_NOTE, NETWORK_NOTE = "no network: ", "the notebook ran WITH network access"
LIMITS = {resource.RLIMIT_AS: 4 << 30, resource.RLIMIT_NPROC: 256, resource.RLIMIT_FSIZE: 256 << 20,
          resource.RLIMIT_CORE: 0}
# What one cell may take (on half a vCPU, twice make grade's 15 s on one), and Gradescope's overall
# timeout for a submission (its default); the autograder's otter_config.json may set others
# (`cell_seconds`, and `gradescope_timeout` from the master's ASSIGNMENT CONFIG).
CELL_SECONDS, GRADESCOPE_TIMEOUT = 30.0, 600.0
# How likely the kernel's OOM killer is to take a process when the container runs out of memory
# (-1000 to 1000, by size otherwise): the student's processes first, then the grading process; the
# guardian keeps the default, 0 (lowering it would need CAP_SYS_RESOURCE, which Gradescope's
# containers lack).
STUDENT_OOM_SCORE, GRADER_OOM_SCORE = 1000, 500
GUARD = 0.78  # of the overall timeout: past it, the guardian stops the grading and says so


class PopenProcess:
    """The harness as a subprocess of ours, ended by killing every process of its user."""

    def __init__(self, process: subprocess.Popen, uid: Optional[int]):
        self.process, self.uid = process, uid
        self.stdin, self.stdout = process.stdin, process.stdout

    def kill(self) -> None:
        if self.uid is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.process.kill()
        else:
            kill_user_processes(self.uid)

    def wait(self) -> int:
        return self.process.wait()

    def mute(self) -> None:
        """Nothing to mute: what the notebook prints goes to /dev/null here."""

    def describe_end(self) -> Optional[str]:
        return None


def in_a_child(action: Callable[[], None]) -> Optional[str]:
    """None if `action()` works in a forked child, else the error it raised."""
    child = os.fork()
    if child == 0:
        code = 0
        try:
            action()
        except OSError as error:
            code = min(error.errno or 255, 255)
        except BaseException:
            code = 255
        os._exit(code)
    code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
    return None if code == 0 else os.strerror(code)


def unshare_network() -> None:
    if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"unshare(CLONE_NEWNET) failed: {os.strerror(error)}")


def refuse_sockets() -> None:
    """Install the seccomp filter (see `seccomp`), and make sure it refuses an AF_INET socket."""
    seccomp.install()
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
    except PermissionError:
        return
    raise OSError(errno.ENOSYS, "the filter did not refuse a socket")


def network_isolation() -> tuple[bool, bool, str]:
    """Whether the notebook's process can be given a network namespace of its own, whether the seccomp
    filter that refuses its sockets can be installed (both tried in a child), and the grading note
    that says which held."""
    namespace, sockets = in_a_child(unshare_network), in_a_child(refuse_sockets)
    if namespace is None:
        refused = ", and sockets but AF_UNIX refused (seccomp)" if sockets is None else ""
        return True, sockets is None, f"{NO_NETWORK_NOTE}its own network namespace{refused}"
    if sockets is None:
        return False, True, (f"{NO_NETWORK_NOTE}sockets but AF_UNIX refused (seccomp), as this platform gives no "
                             f"network namespace (unshare(CLONE_NEWNET) failed: {namespace}); nothing to do")
    return False, False, (f"{NETWORK_NOTE}: no network namespace (unshare(CLONE_NEWNET) "
                          f"failed: {namespace}) and no seccomp filter ({sockets})")


def as_student(folder: Path, uid: Optional[int], own_network: bool, no_sockets: bool,
               cell_seconds: float) -> Launcher:
    """Start the harness in `folder` in its own session with resource limits, as user `uid` if given,
    in a network namespace of its own and without sockets but AF_UNIX as far as the platform allows."""

    def demote() -> None:
        set_oom_score(STUDENT_OOM_SCORE)
        for limit, value in LIMITS.items():
            resource.setrlimit(limit, (value, value))
        if own_network:
            unshare_network()
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        if no_sockets:
            seccomp.install()

    def launch(_replay: bool) -> PopenProcess:  # an exec'd process: it never holds this one's memory
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder), "LANG": "C.UTF-8",
                       "MPLCONFIGDIR": str(folder), "IPYTHONDIR": str(folder / ".ipython")}
        # The harness's source goes on the command line, and -I keeps the folder off the import
        # path: nothing the notebook writes there can change the process that replays it.
        process = subprocess.Popen([sys.executable, "-I", "-c", HARNESS.read_text(), str(cell_seconds)],
                                   cwd=folder, env=environment, preexec_fn=demote, start_new_session=True,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        return PopenProcess(process, uid)

    return launch


def kill_user_processes(uid: int) -> None:
    """Kill every process of `uid`, whatever session or group it moved to, and wait until none is left."""
    for _ in range(200):
        if not user_processes(uid):
            return
        killer = os.fork()
        if killer == 0:
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)  # every process this user may signal: all of the student's
            finally:
                os._exit(0)
        os.waitpid(killer, 0)
        time.sleep(0.01)
    raise RuntimeError(f"processes of uid {uid} survived being killed")


def user_processes(uid: int) -> list[int]:
    """The live (not zombie) processes whose real or effective uid is `uid`. Their status is read as
    bytes: a process's name is its executable's, which the student chose and need not be UTF-8."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            lines = (entry / "status").read_bytes().splitlines()
        except OSError:  # it ended while we looked
            continue
        status = dict(line.split(b":", 1) for line in lines if b":" in line)
        if uid in [int(n) for n in status[b"Uid"].split()[:2]] and not status[b"State"].strip().startswith(b"Z"):
            found.append(int(entry.name))
    return found


def close_autograder(autograder: Path) -> None:
    """Make /autograder root's and closed to everyone else, and this Python reachable by the student.

    Gradescope's image keeps conda under /root (mode 0700): the student's user needs to reach the
    interpreter and its packages, and only that.
    """
    os.chown(autograder, 0, 0, follow_symlinks=False)
    autograder.chmod(0o700)
    for place in {Path(sys.executable).resolve(), Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}:
        for parent in place.parents:
            try:
                parent.chmod(parent.stat().st_mode | stat.S_IXOTH)
            except OSError:  # a read-only system: what is reachable stays so
                pass


def prepare_scratch(uid: Optional[int]) -> Path:
    """An empty folder for the student's process, owned by `uid` if given."""
    folder = Path(tempfile.mkdtemp(prefix="student-"))
    if uid is not None:
        os.chown(folder, uid, uid)
    return folder


def read_config(autograder: Path) -> dict:
    return json.loads((autograder / "source" / "otter_config.json").read_text())


def timeout_of(config: dict) -> float:
    return float(config.get("gradescope_timeout", GRADESCOPE_TIMEOUT))


def run(autograder: Path, started: float) -> tuple[dict, Optional[Grading]]:
    """Grade the submission in `autograder` within the assignment's overall timeout, counted from
    `started`; return Gradescope's results, and the grading (None if the grader itself failed)."""
    source = autograder / "source"
    config = read_config(autograder)
    tests, support = source / "tests", source / "files"
    uid = STUDENT_UID if os.geteuid() == 0 else None
    if uid is not None:
        close_autograder(autograder)
    with tempfile.TemporaryDirectory(prefix="submission-") as unpacked:
        try:
            found, flags = find_notebook(autograder / "submission", Path(unpacked))
            notebook = read_notebook(found, config.get("assignment_name"))
        except SubmissionProblem as problem:
            grading = grade_nothing(tests, support, str(problem))
            return feedback.gradescope_results(grading, config, f"Not graded: {problem}"), grading
    notes = [] if uid is not None else ["graded without root: the notebook ran as the grader's own user"]
    own_network, no_sockets, network = network_isolation()
    notes.append(network)
    folder = prepare_scratch(uid)
    try:
        cell_seconds = float(config.get("cell_seconds", CELL_SECONDS))
        budget = Budget(timeout_of(config), cell_seconds, config.get("call_seconds"), started)
        launch = as_student(folder, uid, own_network, no_sockets, cell_seconds)
        grading = grade(notebook, tests, support, launch, budget, handed_out=frozenset(config.get(HANDED_OUT_CELLS, ())))
    except GraderFailure as failure:
        return failed_results(str(failure)), None
    finally:
        if uid is not None:
            kill_user_processes(uid)
        left_behind = remove_tree(folder)  # whatever the notebook made there: a note if it stays, never a failure
    grading.flags[:0] = flags
    grading.notes[:0] = notes
    grading.notes += left_behind
    results = feedback.gradescope_results(grading, config, status(grading))
    results["execution_time"] = round(time.monotonic() - started, 2)  # in Gradescope's format: seconds
    return results, grading


def status(grading: Grading) -> str:
    return "; ".join(["completed" if grading.finished else "partly graded", *grading.problems])


def failed_results(reason: str) -> dict:
    """Results that say the autograder itself failed: for the instructor to look at, never a grade."""
    return {"score": 0, "tests": [
        {"name": "Autograder failed", "visibility": "visible", "status": "failed",
         "output": "The autograder could not run your notebook. This is not a problem with your work: "
                   "your instructor has been told and will grade it again."},
        {"name": feedback.NOTES_TITLE, "visibility": "hidden", "status": "failed", "output": f"grader error: {reason}"}]}


def write_results(autograder: Path, results: dict) -> None:
    """Write results/results.json atomically, never through a link, in a folder made sure to be root's."""
    folder = autograder / "results"
    try:
        info = os.lstat(folder)
        trusted = stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()
    except FileNotFoundError:
        trusted = None
    if trusted is False:  # something else took the folder's place: keep it aside for the instructor
        os.rename(folder, autograder / f"results.untrusted-{time.time_ns()}")
    if not trusted:
        folder.mkdir(mode=0o755)
    directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchmod(directory, 0o755)
        temporary = f".results-{os.getpid()}.json"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=directory)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(results, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, "results.json", src_dir_fd=directory, dst_dir_fd=directory)
    finally:
        os.close(directory)


def keep_for_otter_grade(autograder: Path, results: dict, grading: Grading) -> None:
    """`otter grade` (ENGINE=docker) places an empty results/results.pkl in the container and
    unpickles it afterwards as otter's GradingResults: give it ours, carrying the very results.json
    (as `gradescope`) so that make grade's report is the same on every path."""
    from otter.test_files import GradingResults

    scores = GradingResults(list(grading.tests.values()))
    scores.gradescope = results
    with (autograder / "results" / "results.pkl").open("wb") as handle:
        pickle.dump(scores, handle)


def set_oom_score(score: int) -> None:
    """Make this process as likely as `score` says to be the one the OOM killer takes (raising it
    needs no privilege)."""
    try:
        Path("/proc/self/oom_score_adj").write_text(str(score))
    except OSError:  # no /proc here: the kernel chooses by size alone
        pass


def load_otters_test_runner_alone() -> None:
    """Make `import otter.test_files` load otter's test runner without the rest of otter. Here we
    reach past otter: its package's __init__ imports its whole API (export, `otter run`: pandas,
    nbconvert), 0.6 CPU-s that grading never uses, and on Gradescope's half vCPU every submission
    would wait over a second for it. The package is registered without running that __init__; its
    test_files modules import what they need. Only for this process, which uses nothing else of otter."""
    if "otter" not in sys.modules:
        package = importlib.util.find_spec("otter")
        sys.modules["otter"] = importlib.util.module_from_spec(package)


def grade_and_write(autograder: Path, started: float) -> int:
    """Grade the submission and write its results; the exit status (1 if the grader itself failed)."""
    set_oom_score(GRADER_OOM_SCORE)
    load_otters_test_runner_alone()
    try:
        results, grading = run(autograder, started)
    except Exception:  # a bug of the grader: still a valid results.json, and a failed run
        results, grading = failed_results(traceback.format_exc()), None
    write_results(autograder, results)
    if grading is not None and (autograder / "results" / "results.pkl").is_file():
        keep_for_otter_grade(autograder, results, grading)
    return 0 if grading is not None else 1


def guard(grader: int, autograder: Path, started: float, timeout: float, uid: Optional[int]) -> int:
    """Wait for the grading process until GUARD of the overall `timeout` from `started`; if it is
    killed (by the OOM killer, say) or has not finished by then, stop it and the student's processes
    (those of `uid`), and write results that say the grader failed. The exit status: the grading
    process's own, or 1."""
    deadline = started + GUARD * timeout
    ended, status = os.waitpid(grader, os.WNOHANG)
    while not ended and time.monotonic() < deadline:
        time.sleep(0.1)
        ended, status = os.waitpid(grader, os.WNOHANG)
    finished = bool(ended)
    if not finished:
        os.kill(grader, signal.SIGKILL)
        status = os.waitpid(grader, 0)[1]
    code = os.waitstatus_to_exitcode(status)
    if finished and code >= 0:
        return code
    if uid is not None:
        kill_user_processes(uid)
    reason = (f"the grading process was killed by signal {-code} (out of memory?)" if finished
              else f"the grading had not finished {GUARD * timeout:.0f} s after it started (of the "
                   f"assignment's {timeout:g} s), and was stopped")
    write_results(autograder, failed_results(reason))
    return 1


def main() -> int:
    started = time.monotonic()
    autograder = Path(sys.argv[1] if len(sys.argv) > 1 else "/autograder")
    try:
        timeout = timeout_of(read_config(autograder))
    except (OSError, ValueError, TypeError):  # the grading process says what is wrong with the configuration
        timeout = GRADESCOPE_TIMEOUT
    grader = os.fork()
    if grader == 0:
        code = 1
        try:
            code = grade_and_write(autograder, started)
        finally:
            os._exit(code)
    return guard(grader, autograder, started, timeout, STUDENT_UID if os.geteuid() == 0 else None)


if __name__ == "__main__":
    sys.exit(main())
