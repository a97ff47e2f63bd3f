"""Shared fixtures: paths of the built homework and a way to grade a notebook as Gradescope does."""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AUTOGRADER_ZIP = ROOT / "autograder" / "backpropagation-autograder.zip"
QUESTIONS = ("q1.1", "q1.2", "q1.3", "q2.1", "q2.2")


def otter_run(submission: Path, output: Path) -> dict:
    """Grade one submission with `otter run` on the committed zip; return {question: (score, max)}."""
    output.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "otter", "run", "-a", str(AUTOGRADER_ZIP), "-o", str(output),
                    str(submission)], check=True, capture_output=True, cwd=output)
    results = json.loads((output / "results.json").read_text())
    return {test["name"]: (test["score"], test["max_score"]) for test in results["tests"]
            if test["name"] in QUESTIONS}


def gradescope_dry_run(submission: Path, workdir: Path) -> dict:
    """Grade as Gradescope does: the committed zip unpacked in an `autograder` folder laid out like
    Gradescope's /autograder, and the zip's own entry point; return the results dictionary."""
    autograder = workdir / "autograder"
    (autograder / "submission").mkdir(parents=True)
    (autograder / "results").mkdir()
    with zipfile.ZipFile(AUTOGRADER_ZIP) as archive:
        archive.extractall(autograder / "source")
    shutil.copy(submission, autograder / "submission" / submission.name)
    subprocess.run([sys.executable, str(autograder / "source" / "backprop_grader" / "gradescope_run.py"),
                    str(autograder)], check=True, capture_output=True, timeout=900)
    return json.loads((autograder / "results" / "results.json").read_text())


def scores(results: dict) -> dict[str, float]:
    """{question: score} of a results dictionary."""
    return {test["name"]: test["score"] for test in results["tests"] if test["name"] in QUESTIONS}


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
