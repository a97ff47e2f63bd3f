"""Dry-run the autograder zip as Gradescope would, in a sandbox, and check what it writes.

    python -m backprop_hw.gradescope_check [SUBMISSION] [--autograder ZIP]

Lays out /autograder as Gradescope does (owned by root and not world-writable: the zip unpacked
in `source`, `run_autograder` beside it, the submission in `submission`, `submission_metadata.json`,
an empty `results`) inside a bubblewrap sandbox, and runs the zip's own `run_autograder` there as
Gradescope does: as root with Docker's default capability set (see `sandbox.enter`), so that no
network namespace can be made. Only the conda environment that `setup.sh` builds is replaced by
this repository's venv (a `mamba` stand-in that does nothing lets `run_autograder` activate
"otter-env" and find the venv's python). Then `results/results.json` is validated against
Gradescope's results format (`gradescope_results.schema.json`) and kept in `build/gradescope-check/`
with the student's view of it (`feedback.txt`). Printed are the score first, then what the student
sees, then the hidden notes only if the instructor has something to do (a flag, a failure of a
test; not what every submission on Gradescope's platform gets, such as the network left on).
Without SUBMISSION the solutions notebook is graded, and it must score full marks. The exit status
is run_autograder's when it fails.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import jsonschema

from backprop_hw import sandbox
from backprop_hw.autograder.feedback import NOTES_TITLE
from backprop_hw.autograder.gradescope_run import NO_NETWORK_NOTE, timeout_of
from backprop_hw.autograder.submission import MAX_BYTES, remove_tree
from backprop_hw.paths import AUTOGRADER_ZIP, ROOT, SOLUTIONS_NOTEBOOK
from backprop_hw.results import feedback_text, total_score, write_atomically

SCHEMA = Path(__file__).with_name("gradescope_results.schema.json")
SHIM = "/opt/conda-stand-in"
KEPT = ROOT / "build" / "gradescope-check"  # the last dry run's results.json and feedback.txt
RESULTS_JSON, FEEDBACK_TXT = "results.json", "feedback.txt"
STATUS_NOTE = "grading status: "  # the first line of the hidden notes
# Notes every submission gets on Gradescope's platform: nothing for the instructor to do about one.
PLATFORM_NOTES = (NO_NETWORK_NOTE,)
# The grader and the notebook's process together need more room than one warm fork; the run is killed,
# as on Gradescope, at the zip's own overall timeout (`limits_for`).
MEMORY_BYTES = 4 * sandbox.GIB


def limits_for(autograder: Path, **changes) -> sandbox.Limits:
    """The sandbox's limits for a dry run of `autograder`: killed at its Gradescope timeout."""
    with zipfile.ZipFile(autograder) as archive:
        timeout = timeout_of(json.loads(archive.read("otter_config.json")))
    return sandbox.Limits(**{"memory_bytes": MEMORY_BYTES, "wall_seconds": timeout, **changes})


def lay_out(autograder: Path, submission: Path, folder: Path, mode: int = 0o755) -> Path:
    """Build /autograder in `folder` as Gradescope does, owned by root with directories of `mode`
    (Gradescope does not document it: 0o777 plays the worst case); return it."""
    root = folder / "autograder"
    with zipfile.ZipFile(autograder) as archive:
        archive.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    (root / "results").mkdir()
    (root / "submission_metadata.json").write_text(json.dumps({"users": [{"name": "A. Student"}]}))
    if submission.is_dir():
        shutil.copytree(submission, root / "submission", symlinks=True, dirs_exist_ok=True)
    elif submission.suffix == ".zip":  # Gradescope unpacks an uploaded zip (here within the size limit, however deep)
        with zipfile.ZipFile(submission) as archive:
            if sum(info.file_size for info in archive.infolist()) > MAX_BYTES:
                raise ValueError(f"{submission.name} unpacks to more than {MAX_BYTES >> 20} MB")
            archive.extractall(root / "submission")
    else:
        shutil.copy(submission, root / "submission" / submission.name)
    shim = folder / "shim"
    shim.mkdir()
    (shim / "mamba").write_text("#!/bin/sh\n# Stands in for mamba: the venv is already there.\nexit 0\n")
    for path in every_path(folder):
        if not path.is_symlink():
            executable = path.is_dir() or path.name in ("mamba", "run_autograder")
            path.chmod(mode if path.is_dir() else 0o755 if executable else 0o644)
            os.chown(path, 0, 0)
    return root


def every_path(top: Path) -> Iterator[Path]:
    """`top` and every path under it, in a walk without recursion: a submission may nest folders deep."""
    pending = [top]
    while pending:
        path = pending.pop()
        yield path
        if path.is_dir() and not path.is_symlink():
            pending += path.iterdir()


def run_autograder_payload() -> int:
    """In the sandbox: become Gradescope's harness and run /autograder/run_autograder."""
    environment = {**sandbox.ENVIRONMENT, "PATH": f"{SHIM}:{sandbox.ENVIRONMENT['PATH']}"}
    del environment["MPLBACKEND"]  # the kernel chooses its own, as on Gradescope
    sys.stdout.flush()
    os.execve("/bin/bash", ["/bin/bash", "/autograder/run_autograder"], environment)
    return 127


@dataclass
class DryRun:
    """What a dry run gave, and what it took."""

    results: Optional[dict]  # results.json, None if it was not written
    run: sandbox.SandboxedRun
    seconds_to_results: Optional[float]  # from the start of run_autograder until results.json was there
    peak_bytes: Optional[int]  # the most memory the run held, all its processes together (None without a cgroup)


def dry_run(submission: Path, autograder: Path = AUTOGRADER_ZIP, limits: Optional[sandbox.Limits] = None,
            mode: int = 0o755) -> tuple[Optional[dict], sandbox.SandboxedRun]:
    """Run the autograder on `submission` in a sandbox; return results.json (None if absent) and the run."""
    measured = timed_run(submission, autograder, limits, mode)
    return measured.results, measured.run


def timed_run(submission: Path, autograder: Path = AUTOGRADER_ZIP, limits: Optional[sandbox.Limits] = None,
              mode: int = 0o755, container_bytes: Optional[int] = None) -> DryRun:
    """`dry_run`, timed; with `container_bytes`, all its processes (the grader's too, as in Gradescope's
    container) are held to that much memory together."""
    limits = limits or limits_for(autograder)
    bwrap = sandbox.find_bwrap()
    folder = Path(tempfile.mkdtemp(prefix="backprop-gradescope-"))
    try:
        root = lay_out(autograder, submission.resolve(), folder, mode)
        binds = ["--bind", str(root), "/autograder", "--perms", "0755", "--dir", str(Path(SHIM).parent),
                 "--ro-bind", str(folder / "shim"), SHIM]
        holder = sandbox.Holder(bwrap, binds, limits)
        if container_bytes is not None:
            if holder.cgroup is None:
                holder.close()
                raise sandbox.SandboxUnavailable("a container's memory limit needs a writable cgroup v1 memory controller")
            holder.cgroup.limit_memory(container_bytes)  # no headroom: the grader's own processes count too
        results_path = root / "results" / "results.json"
        started = time.time()
        run = sandbox.run(holder, None, limits, run_autograder_payload)  # Gradescope runs it as root
        # results.json is written atomically (renamed into place), a little before run_autograder ends:
        # its modification time is when it was written.
        results = json.loads(results_path.read_text()) if results_path.is_file() else None
        seconds = results_path.stat().st_mtime - started if results is not None else None
    finally:
        left_behind = remove_tree(folder)  # the submission as laid out may be nested too deep for shutil
        if left_behind:
            print("; ".join(left_behind), file=sys.stderr)
    return DryRun(results, run, seconds, holder.cgroup.peak_bytes if holder.cgroup else None)


def validate(results: dict) -> None:
    """Raise jsonschema.ValidationError unless `results` follows Gradescope's format."""
    jsonschema.validate(results, json.loads(SCHEMA.read_text()))


def keep(results: dict, folder: Path = KEPT) -> None:
    """Keep a dry run's results.json, and what the student sees of it as feedback.txt."""
    write_atomically(folder / RESULTS_JSON, json.dumps(results, indent=4) + "\n")
    write_atomically(folder / FEEDBACK_TXT, feedback_text(results))


def indented(text: str) -> str:
    return "\n".join(f"  {line}".rstrip() for line in text.splitlines())


def grading_notes(results: dict) -> tuple[str, list[str]]:
    """(the grading status, the hidden notes that ask the instructor to do something)."""
    lines = next((str(test.get("output", "")) for test in results["tests"] if test.get("name") == NOTES_TITLE),
                 "").splitlines()
    status = next((line[len(STATUS_NOTE):] for line in lines if line.startswith(STATUS_NOTE)), "unknown")
    return status, [line for line in lines if line and not line.startswith((STATUS_NOTE, *PLATFORM_NOTES))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("submission", type=Path, nargs="?", help="default: the solutions notebook, which must score full marks")
    parser.add_argument("--autograder", type=Path, default=AUTOGRADER_ZIP)
    arguments = parser.parse_args()
    submission = arguments.submission or SOLUTIONS_NOTEBOOK
    try:
        results, run = dry_run(submission, arguments.autograder)
    except sandbox.SandboxUnavailable as error:
        print(f"refusing to grade: {error}", file=sys.stderr)
        return 2
    if results is not None:
        keep(results)
    if results is None or run.exit_code != 0:
        print(run.output.decode(errors="replace"), file=sys.stderr)
        print(f"run_autograder ended with {sandbox.describe_exit(run.exit_code)}"
              f"{' at the wall-clock limit' if run.killed else ''}"
              f"{f'; its results.json: {KEPT / RESULTS_JSON}' if results else ' and wrote no results.json'}",
              file=sys.stderr)
        return 1
    try:
        validate(results)
    except jsonschema.ValidationError as error:
        print(f"results.json does not follow Gradescope's format: {error.message} at {list(error.absolute_path)}",
              file=sys.stderr)
        return 1
    total, possible = total_score(results)
    status, notes = grading_notes(results)
    print(f"{submission.name}: {total:g} of {possible:g} points (grading status: {status})\n")
    print(f"What the student sees on Gradescope:\n\n{indented(feedback_text(results))}")
    if notes:
        print("\nFor you to look at (the student does not see this):\n")
        print(indented("\n".join(notes)))
    print(f"\nKept in {KEPT}: {RESULTS_JSON} (follows Gradescope's format) and {FEEDBACK_TXT} (what the student sees).")
    if arguments.submission is None and total != possible:
        print("the solutions notebook must score full marks", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
