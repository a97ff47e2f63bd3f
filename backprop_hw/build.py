"""Build every derived output of the homework from the master notebook.

    python -m backprop_hw.build

1. Execute the master (solutions included) so the solutions notebook carries its outputs, and read
   the reference values its `## Ignore ##` cell computes.
2. Paste those values into the tests in place of `REFERENCE_VALUES["key"]`, so the public cases
   carry numbers and no reference code (the hidden ones draw theirs at grading time, with
   `assignment/backprop_reference.py`, which only the autograder zip holds).
3. Run Otter Assign, which also runs every test on the solutions and fails if one does not pass.
4. Lay the results out at the top of the repository, normalised so that a rebuild changes nothing,
   with notebooks that work alone, in Colab too (see `colab.py`).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import yaml
from traitlets.config import Config
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from backprop_hw import autograder_zip, colab
from backprop_hw.autograder.feedback import POLICIES
from backprop_hw.paths import ASSIGNMENT, AUTOGRADER_ZIP, MASTER, NAME, NOTEBOOK, ROOT

SUPPORT_FILES = ("backprop_checks.py", "backprop_reference.py", "requirements.txt")
CONFIG_MARKER = "# ASSIGNMENT CONFIG"
OUTPUT_FOLDERS = ("student", "solutions", "tests", "autograder")
REFERENCE_PATTERN = re.compile(r'REFERENCE_VALUES\["([\w-]+)"\]')


class BuildError(Exception):
    """A problem in the master that stops the build, with a message for the instructor."""


def execute_master(master: nbformat.NotebookNode, workdir: Path) -> tuple[nbformat.NotebookNode, dict]:
    """Run the master top to bottom; return it with outputs, and its REFERENCE_VALUES."""
    executed = nbformat.from_dict(json.loads(json.dumps(master)))
    executed.cells.append(nbformat.v4.new_code_cell("import json; print(json.dumps(REFERENCE_VALUES))"))
    # The kernel talks over sockets in the build's own folder, not over TCP on localhost, for which it
    # warns that nothing is encrypted.
    kernel = Config({"KernelManager": {"transport": "ipc", "ip": str(workdir / "kernel")}})
    client = NotebookClient(executed, config=kernel, kernel_name="python3", timeout=600, record_timing=False,
                            coalesce_streams=True, resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute()
    except CellExecutionError as error:
        raise BuildError(f"the master notebook raised an error while running its solutions:\n{error}") from None
    reference_cell = executed.cells.pop()
    printed = "".join(output.get("text", "") for output in reference_cell.outputs if output.output_type == "stream")
    return executed, json.loads(printed)


def insert_reference_values(notebook: nbformat.NotebookNode, references: dict) -> None:
    """Replace every `REFERENCE_VALUES["key"]` in code cells with the literal value."""

    def literal(match: re.Match) -> str:
        key = match.group(1)
        if key not in references:
            raise BuildError(f'a test uses REFERENCE_VALUES["{key}"], which the master does not compute')
        return repr(references[key])

    for cell in notebook.cells:
        if cell.cell_type == "code" and not cell.source.startswith("## Ignore ##"):
            cell.source = REFERENCE_PATTERN.sub(literal, cell.source)


def run_otter_assign(master_path: Path, output: Path) -> None:
    """Run Otter Assign; when a solution fails its tests, stop with otter's report of the case."""
    command = [sys.executable, "-m", "otter", "assign", "--no-pdfs", str(master_path), str(output)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=master_path.parent)
    if result.returncode != 0:
        report = (result.stdout + result.stderr).strip()
        failing = re.findall(r"(q[\d.]+) results:(?! All test cases passed)", report)
        hint = f" (failing questions: {', '.join(failing)})" if failing else ""
        raise BuildError(f"otter assign failed{hint}; the solutions must pass their own tests:\n{report}")


def normalise_notebook(path: Path, destination: Path, files: Path, badge: str | None) -> None:
    """Copy a notebook, made self-contained with the checks' files of folder `files`, with stable
    cell ids and without run-specific metadata."""
    notebook = nbformat.read(path, as_version=4)
    colab.make_self_contained(notebook, files, colab.otter_requirement(ROOT / "requirements.txt"), badge)
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index:03d}"
        cell.metadata.pop("execution", None)
    destination.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, destination)


def replace_tree(source: Path, destination: Path) -> None:
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(source, destination)


def describe_hidden_checks(full_tests: Path, student_tests: Path) -> None:
    """Add to each of the student's test files what its question's hidden checks check, and their
    points (from their docstrings): a check that passes says what grading will try besides."""
    from backprop_hw.autograder.trusted import load_tests

    for name, test_file in load_tests(full_tests, ASSIGNMENT).items():
        hidden = [((case.body.test_func.__doc__ or "").strip().splitlines()[0], case.points)
                  for case in test_file.test_cases if case.hidden]
        path = student_tests / f"{name}.py"
        path.write_text(f"{path.read_text()}\n# What grading adds to the checks above (written by the build).\n"
                        f"HIDDEN_CHECKS = {hidden!r}\n")


def take_feedback_policy(notebook: nbformat.NotebookNode) -> str:
    """Remove the `feedback:` setting from the notebook's ASSIGNMENT CONFIG (it is ours: otter
    refuses keys it does not know) and return it."""
    [config] = [cell for cell in notebook.cells if cell.cell_type == "raw" and cell.source.startswith(CONFIG_MARKER)]
    settings = yaml.safe_load(config.source)
    policy = settings.pop("feedback", POLICIES[0])
    if policy not in POLICIES:
        raise BuildError(f"the master's `feedback:` must be one of {', '.join(POLICIES)}, not {policy!r}")
    config.source = f"{CONFIG_MARKER}\n{yaml.safe_dump(settings, sort_keys=False)}"
    return policy


def lay_out(dist: Path, root: Path, student_badge: str, feedback: str) -> None:
    """Put otter's outputs where instructors, students and graders look for them."""
    for folder in OUTPUT_FOLDERS:
        shutil.rmtree(root / folder, ignore_errors=True)
    student = dist / "student"
    autograder = dist / "autograder"
    (root / "student").mkdir(parents=True)
    shutil.copy(ASSIGNMENT / "backprop_checks.py", root / "student")
    replace_tree(student / "tests", root / "student" / "tests")
    describe_hidden_checks(autograder / "tests", root / "student" / "tests")
    # Both notebooks carry the student folder's public checks, so either works alone.
    normalise_notebook(student / NOTEBOOK, root / "student" / NOTEBOOK, root / "student", student_badge)
    normalise_notebook(autograder / NOTEBOOK, root / "solutions" / NOTEBOOK, root / "student", None)
    replace_tree(autograder / "tests", root / "tests")
    [zip_path] = autograder.glob(f"{NAME}-autograder_*.zip")
    autograder_zip.pack(zip_path, root / AUTOGRADER_ZIP.relative_to(ROOT), feedback)


def build(root: Path = ROOT, master_path: Path = MASTER, colab_repo: str = colab.DEFAULT_REPO) -> None:
    """Build every output of `master_path` into `root` (the repository itself by default); the
    student notebook's "Open in Colab" badge points to GitHub repository `colab_repo`."""
    student_badge = colab.badge_markdown(colab_repo, f"student/{NOTEBOOK}")
    master = nbformat.read(master_path, as_version=4)
    feedback = take_feedback_policy(master)
    with tempfile.TemporaryDirectory(prefix="backprop-build-") as temporary:
        workdir = Path(temporary) / "master"
        workdir.mkdir()
        for name in SUPPORT_FILES:
            shutil.copy(ASSIGNMENT / name, workdir)
        print("running the master notebook ...", flush=True)
        executed, references = execute_master(master, workdir)
        insert_reference_values(executed, references)
        nbformat.write(executed, workdir / NOTEBOOK)
        print("running otter assign (and the solutions against every test) ...", flush=True)
        run_otter_assign(workdir / NOTEBOOK, Path(temporary) / "dist")
        lay_out(Path(temporary) / "dist", root, student_badge, feedback)
    print(f"built {', '.join(OUTPUT_FOLDERS)} in {root}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT, help="where to write the outputs (default: the repository)")
    parser.add_argument("--master", type=Path, default=MASTER, help="the master notebook")
    parser.add_argument("--colab-repo", default=os.environ.get("COLAB_REPO") or colab.DEFAULT_REPO,
                        help="GitHub org/repo that the Open in Colab badge points to "
                             f"(default: $COLAB_REPO, else {colab.DEFAULT_REPO})")
    arguments = parser.parse_args()
    try:
        build(arguments.out.resolve(), arguments.master.resolve(), arguments.colab_repo)
    except (BuildError, colab.ColabError) as error:
        print(f"build failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
