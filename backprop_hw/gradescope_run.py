"""Gradescope's entry point for the hardened autograder (replaces otter's run_otter.py).

Gradescope runs `run_autograder` as root. This script, the trusted side, keeps the tests, the
reference values and the results file to root; the student's notebook runs in `harness.py` as an
unprivileged user in a scratch folder, and only plain data comes back (see trusted_grading.py).
Otter's pieces still do the rest: its test files, its results and its Gradescope format.

    python gradescope_run.py [AUTOGRADER_DIR]      (default /autograder)
"""

import ctypes
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

from otter.run.run_autograder.autograder_config import AutograderConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trusted_grading import (HARNESS, Launcher, SubmissionProblem, check_notebook, find_notebook,  # noqa: E402
                             grade, grade_nothing, results_for_gradescope)

STUDENT_UID = 65534  # "nobody": owns nothing, reads only world-readable files
CLONE_NEWNET = 0x40000000
LIMITS = {resource.RLIMIT_AS: 4 << 30, resource.RLIMIT_NPROC: 256, resource.RLIMIT_FSIZE: 256 << 20}


def as_student(folder: Path, uid: Optional[int]) -> Launcher:
    """Start the harness in its own session with resource limits, as user `uid` if given."""

    def demote() -> None:
        for limit, value in LIMITS.items():
            resource.setrlimit(limit, (value, value))
        ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET)  # no network, where the platform allows
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)

    def launch(command: list[str]) -> subprocess.Popen:
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder),
                       "MPLCONFIGDIR": str(folder), "IPYTHONDIR": str(folder / ".ipython")}
        return subprocess.Popen(command, cwd=folder, env=environment, preexec_fn=demote, start_new_session=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    return launch


def prepare_scratch(notebook: Path, uid: Optional[int]) -> Path:
    """A folder for the student's process (owned by `uid` if given): the notebook and the harness."""
    folder = Path(tempfile.mkdtemp(prefix="student-"))
    shutil.copy(notebook, folder / "submission.ipynb")
    shutil.copy(HARNESS, folder / HARNESS.name)  # the source folder is closed to the student's user
    if uid is not None:
        for path in [folder, *folder.iterdir()]:
            os.chown(path, uid, uid)
    return folder


def lock_down(autograder: Path) -> None:
    """Make the tests and the results unreachable for the student's user, and Python reachable."""
    for private in ("source", "results", "submission"):
        (autograder / private).chmod(0o700)
    for parent in Path(sys.executable).resolve().parents:  # conda lives under /root (0700): let others in
        try:
            parent.chmod(parent.stat().st_mode | stat.S_IXOTH)
        except OSError:  # a read-only system: what is reachable stays so
            pass


def run(autograder: Path) -> dict:
    """Grade the submission in `autograder` and return Gradescope's results dictionary."""
    source = autograder / "source"
    config = AutograderConfig(json.loads((source / "otter_config.json").read_text()))
    tests, support = source / "tests", source / "files"
    with tempfile.TemporaryDirectory(prefix="submission-") as unpacked:
        try:
            notebook, flags = find_notebook(autograder / "submission", Path(unpacked))
            check_notebook(notebook, config)
        except SubmissionProblem as problem:
            grading = grade_nothing(tests, support, str(problem))
        else:
            uid = STUDENT_UID if os.geteuid() == 0 else None
            if uid is None:
                flags.append("graded without root: the notebook ran as the grader's own user")
            else:
                lock_down(autograder)
            folder = prepare_scratch(notebook, uid)
            try:
                grading = grade(folder / "submission.ipynb", tests, support, as_student(folder, uid),
                                harness=folder / HARNESS.name)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            grading.flags[:0] = flags
    return results_for_gradescope(grading, config)


def main() -> int:
    autograder = Path(sys.argv[1] if len(sys.argv) > 1 else "/autograder")
    results = run(autograder)
    (autograder / "results").mkdir(exist_ok=True)
    (autograder / "results" / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
