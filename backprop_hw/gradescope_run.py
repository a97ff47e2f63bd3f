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
import zipfile
from pathlib import Path
from typing import Optional

import nbformat
from otter.nbmeta_config import NBMetadataConfig
from otter.run.run_autograder.autograder_config import AutograderConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trusted_grading import HARNESS, Grading, Launcher, grade, grade_nothing  # noqa: E402

STUDENT_UID = 65534  # "nobody": owns nothing, reads only world-readable files
CLONE_NEWNET = 0x40000000
LIMITS = {resource.RLIMIT_AS: 4 << 30, resource.RLIMIT_NPROC: 256, resource.RLIMIT_FSIZE: 256 << 20}


class SubmissionProblem(Exception):
    """The submission cannot be graded; the message says why, for the student."""


def find_notebook(submission: Path, scratch: Path) -> tuple[Path, list[str]]:
    """The one notebook of a submission (uploaded as is, or inside an export zip), and flags."""
    files = [p for p in submission.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts]
    names = [p.name for p in files]
    notebooks = [p for p in files if p.suffix == ".ipynb"]
    for archive in (p for p in files if p.suffix == ".zip"):
        names += extract_notebooks(archive, scratch, notebooks)
    if len(notebooks) != 1:
        raise SubmissionProblem(f"expected one .ipynb notebook in the submission, found {len(notebooks)}")
    flags = [f"submission contains {name}, which was ignored (pickles are never loaded)"
             for name in names if name == ".OTTER_LOG" or name.endswith((".pkl", ".pickle"))]
    return notebooks[0], flags


def extract_notebooks(archive: Path, scratch: Path, notebooks: list[Path]) -> list[str]:
    """Copy the notebooks out of an export zip by name only (no paths from the archive), adding
    them to `notebooks`; return the names of all its files."""
    try:
        with zipfile.ZipFile(archive) as opened:
            members = [info for info in opened.infolist() if not info.is_dir()]
            for info in members:
                name = Path(info.filename).name
                if name.endswith(".ipynb") and ".ipynb_checkpoints" not in info.filename and info.file_size < 64 << 20:
                    target = scratch / f"{len(notebooks)}-{name}"
                    target.write_bytes(opened.read(info))
                    notebooks.append(target)
    except zipfile.BadZipFile:
        raise SubmissionProblem(f"{archive.name} is not a readable zip file") from None
    return [Path(info.filename).name for info in members]


def check_assignment_name(notebook: Path, config: AutograderConfig) -> None:
    """Otter's check that the notebook belongs to this assignment (metadata only; no code runs)."""
    try:
        name = NBMetadataConfig.from_notebook(nbformat.read(notebook, as_version=4)).assignment_name
    except Exception:  # an unreadable notebook is reported by the harness with its reason
        return
    if config.assignment_name and name != config.assignment_name:
        raise SubmissionProblem(f"this notebook is for assignment '{name}', not '{config.assignment_name}'")


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
            check_assignment_name(notebook, config)
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
    return gradescope_results(grading, config)


def gradescope_results(grading: Grading, config: AutograderConfig) -> dict:
    """Otter's results dictionary plus a note for the instructor (never shown to the student)."""
    results = grading.results.to_gradescope_dict(config)
    notes = [f"grading status: {grading.status}"] + [f"flag: {flag}" for flag in grading.flags]
    results["tests"].append({"name": "Grading notes (instructor only)", "visibility": "hidden",
                             "output": "\n".join(notes), "status": "passed"})
    return results


def main() -> int:
    autograder = Path(sys.argv[1] if len(sys.argv) > 1 else "/autograder")
    results = run(autograder)
    (autograder / "results").mkdir(exist_ok=True)
    (autograder / "results" / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
