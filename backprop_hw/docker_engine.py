"""ENGINE=docker: hand the batch to `otter grade`'s Docker containers, and write the same outputs.

Used where a Docker engine runs and bubblewrap does not. Each container runs the zip's own
`run_autograder`, so the hardened grader grades there exactly as on Gradescope (as root in a
container with Docker's capabilities, the notebook as `nobody`, no network). Each submission goes in
as its one notebook, found as make grade's own engine finds it (`docker_input`). The grader in a
container plans its time from the zip's Gradescope timeout (`gradescope_timeout`), and otter kills a
container at that same limit: such a submission would score zero as a whole, with otter's message as
its status.
"""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from backprop_hw import results, sandbox
from backprop_hw.autograder.gradescope_run import timeout_of
from backprop_hw.autograder.submission import SubmissionProblem, find_notebook, remove_tree
from backprop_hw.grading_worker import stage

BASE_IMAGE = "ubuntu:22.04"


def require_docker() -> None:
    """SandboxUnavailable unless a Docker engine answers."""
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        raise sandbox.SandboxUnavailable(
            "ENGINE=docker needs a running Docker engine, and there is none here; "
            "student code is never run unsandboxed (use the default bubblewrap engine on Linux)")


def docker_input(submission: results.Submission, number: int, folder: Path) -> tuple[Path, list[str]]:
    """The one notebook otter grade gets for `submission`, as `<number>.ipynb` in `folder` (a name no
    other submission has), and the integrity flags of its files. It is found as make grade's own
    engine finds it: staged by `grading_worker.stage` (links, special files, deep or oversized folders
    refused), then `find_notebook` (one notebook, read from a zip's index, OS junk ignored).
    SubmissionProblem says why there is none."""
    work = folder / f"staging-{number}"
    work.mkdir()
    try:
        found, flags = find_notebook(stage(submission.path, work / "submission"), work)
        return Path(shutil.copyfile(found, folder / f"{number}.ipynb", follow_symlinks=False)), flags
    finally:
        remove_tree(work)


def outcome(result: Any, ag_config: Any) -> results.Outcome:
    """What a container gave: the hardened grader's own results (see gradescope_run.keep_for_otter_grade),
    or otter's account of why there are none (a timeout is the submission's; anything else the grader's)."""
    if not result.has_catastrophic_failure():
        graded = getattr(result, "gradescope", None) or result.to_gradescope_dict(ag_config)
        return results.Outcome(results=graded, complete=True)
    error = str(result.catastrophic_error)
    if "timed out" in error:
        return results.Outcome(error=error)
    return results.Outcome(grader_error=error)


def grade_folder(submissions: Path, out: Path, autograder: Path) -> list[dict]:
    """Grade every submission in `submissions` with otter grade; write grades.csv, gradebook.csv and results/."""
    require_docker()
    from otter.grade.containers import launch_containers
    from otter.run import AutograderConfig

    found = results.find_submissions(submissions)
    outcomes = {}
    with tempfile.TemporaryDirectory(prefix="backprop-docker-") as temporary:
        folder = Path(temporary)
        source = results.unpack_autograder(autograder, folder / "autograder")
        points, assignment = results.question_points(source), results.assignment_name(source)
        config = json.loads((source / "otter_config.json").read_text())
        ag_config = AutograderConfig(config)
        staged, flags = {}, {}
        for number, submission in enumerate(found):
            if submission.problem is None:
                try:
                    notebook, flags[submission.name] = docker_input(submission, number, folder)
                    staged[notebook.name] = submission.name
                except (OSError, SubmissionProblem) as error:
                    submission.problem = str(error)
        if staged:
            for result in launch_containers(str(autograder), [str(folder / name) for name in staged],
                                            num_containers=os.cpu_count() or 1, base_image=BASE_IMAGE,
                                            tag="backpropagation", config=AutograderConfig({"zips": False}),
                                            timeout=int(timeout_of(config)), network=False):
                outcomes[staged[result.file]] = outcome(result, ag_config)
    for name, graded in outcomes.items():
        graded.flags[:0] = flags[name]
    rows = [results.record(out, submission, outcomes.get(submission.name, results.Outcome(
        error="otter grade returned no result")), points) for submission in found]
    results.write_grades(out, rows, points)
    results.write_gradebook(out, found, {row["file"]: row for row in rows}, points, assignment)
    return rows

