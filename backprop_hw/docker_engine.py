"""ENGINE=docker: hand the batch to `otter grade`'s Docker containers, and write the same outputs.

Used where a Docker engine runs and bubblewrap does not. Each container runs the zip's own
`run_autograder`, so the hardened grader grades there exactly as on Gradescope (as root in a
container with Docker's capabilities, the notebook as `nobody`, no network). Otter's containers
grade one extension per run, so notebooks and zips go in two runs; a folder of a Gradescope export
goes in as its one notebook. The grader in a container plans its time from the zip's Gradescope
timeout (`gradescope_timeout`), and otter kills a container at that same limit: such a submission
would score zero as a whole, with otter's message as its status.
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
from backprop_hw.autograder.submission import is_junk

BASE_IMAGE = "ubuntu:22.04"


def require_docker() -> None:
    """SandboxUnavailable unless a Docker engine answers."""
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        raise sandbox.SandboxUnavailable(
            "ENGINE=docker needs a running Docker engine, and there is none here; "
            "student code is never run unsandboxed (use the default bubblewrap engine on Linux)")


def docker_input(submission: results.Submission, folder: Path) -> Path:
    """The one file otter grade gets for `submission`."""
    if submission.path.is_dir():
        notebooks = sorted(path for path in submission.path.glob("*.ipynb") if not is_junk([path.name]))
        if len(notebooks) != 1:
            raise ValueError(f"the folder holds {len(notebooks)} notebooks, not one")
        return Path(shutil.copy(notebooks[0], folder / f"{submission.name}.ipynb"))
    return Path(shutil.copy(submission.path, folder / submission.name))


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
        staged = {}
        for submission in found:
            if submission.problem is None:
                try:
                    staged[docker_input(submission, folder).name] = submission.name
                except (OSError, ValueError) as error:
                    submission.problem = str(error)
        for extension in ("ipynb", "zip"):
            paths = [str(folder / name) for name in staged if name.endswith(f".{extension}")]
            if not paths:
                continue
            for result in launch_containers(str(autograder), paths, num_containers=os.cpu_count() or 1,
                                            base_image=BASE_IMAGE, tag="backpropagation",
                                            config=AutograderConfig({"zips": extension == "zip"}),
                                            timeout=int(timeout_of(config)), network=False):
                outcomes[staged[result.file]] = outcome(result, ag_config)
    rows = [results.record(out, submission, outcomes.get(submission.name, results.Outcome(
        error="otter grade returned no result")), points) for submission in found]
    results.write_grades(out, rows, points)
    results.write_gradebook(out, found, {row["file"]: row for row in rows}, points, assignment)
    return rows

