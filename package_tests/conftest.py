"""Shared by the package tests: paths of the built homework, and ways to grade a notebook with it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backprop_hw import gradescope_check

ROOT = Path(__file__).resolve().parent.parent
AUTOGRADER_ZIP = ROOT / "autograder" / "backpropagation-autograder.zip"
QUESTIONS = ("q1.1", "q1.2", "q1.3", "q2.1", "q2.2")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: the browser tests (make test-browser; make test leaves them out)")


def otter_run(submission: Path, output: Path) -> dict:
    """Grade one submission with `otter run` on the committed zip; return {question: (score, max)}."""
    output.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "otter", "run", "-a", str(AUTOGRADER_ZIP), "-o", str(output),
                    str(submission)], check=True, capture_output=True, cwd=output)
    results = json.loads((output / "results.json").read_text())
    return {test["name"]: (test["score"], test["max_score"]) for test in results["tests"]
            if test["name"] in QUESTIONS}


def gradescope_dry_run(submission: Path, workdir: Path) -> dict:
    """Grade as Gradescope does: the committed zip laid out as Gradescope's /autograder in `workdir`
    (as `make gradescope-check` lays it out) and run by the zip's own entry point, without the
    sandbox; return the results dictionary."""
    autograder = gradescope_check.lay_out(AUTOGRADER_ZIP, submission, workdir)
    subprocess.run([sys.executable, str(autograder / "source" / "backprop_grader" / "gradescope_run.py"),
                    str(autograder)], check=True, capture_output=True, timeout=900)
    return json.loads((autograder / "results" / "results.json").read_text())


def scores(results: dict) -> dict[str, float]:
    """{question: score} of a results dictionary."""
    return {test["name"]: test["score"] for test in results["tests"] if test["name"] in QUESTIONS}
