"""Build every derived output of the homework from the master notebook.

    python -m backprop_hw.build [--verbose]

1. Execute the master (solutions included) and read what its `## Ignore ##` cell computes: the
   reference values of the tests (REFERENCE_VALUES) and the targets the notebook prints (PRINTED).
2. Write each printed target in place of its `{{name}}` in every cell and in what the cells printed
   (a placeholder is printed as it is written, from a plain string), so the solutions notebook
   carries the outputs of what students get.
3. Paste the reference values into the tests in place of `REFERENCE_VALUES["key"]`, so the public
   cases carry numbers and no reference code (the hidden ones draw theirs at grading time, with
   `assignment/backprop_reference.py`, which only the autograder zip holds).
4. Run Otter Assign, then every test it wrote, public and hidden, with otter's own checks in the
   kernel that ran the master; a failing one stops the build, naming the question, the case (its
   docstring's first line) and its message.
5. Lay the results out at the top of the repository, normalised so that a rebuild changes nothing,
   with notebooks that work alone, in Colab too (see `colab.py`), the example submissions, and the
   README's badge; grade the solutions with the hardened grader, which must give them full marks,
   and keep how long the reference solution's functions take (the limit of a student's calls in
   grading derives from it); then list what changed, to commit with the master.

The master's ASSIGNMENT CONFIG holds the course's settings of our own (`OUR_SETTINGS`), which the
build takes out before otter reads it: `feedback:` (what students see on Gradescope),
`gradescope_timeout:` (the assignment's overall timeout there, which grading plans its time from) and
`colab_repo:` (the GitHub repository the "Open in Colab" badges point to).
"""

import argparse
import ast
import json
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

from backprop_hw import autograder_zip, colab, examples
from backprop_hw.autograder import trusted
from backprop_hw.autograder.feedback import POLICIES
from backprop_hw.autograder.gradescope_run import CELL_SECONDS, GRADESCOPE_TIMEOUT, as_student
from backprop_hw.paths import ASSIGNMENT, AUTOGRADER_ZIP, EXAMPLES, MASTER, NAME, NOTEBOOK, ROOT

SUPPORT_FILES = ("backprop_checks.py", "backprop_reference.py", "requirements.txt")
CONFIG_MARKER = "# ASSIGNMENT CONFIG"
IGNORE_MARKER = "## Ignore ##"
OUTPUT_FOLDERS = ("student", "solutions", "tests", "autograder")
# What `make` writes besides OUTPUT_FOLDERS, and what a change of the master is committed with.
COMMITTED_WITH_THE_MASTER = (*OUTPUT_FOLDERS, "examples", "README.md", "assignment")
REFERENCE_PATTERN = re.compile(r'REFERENCE_VALUES\["([\w-]+)"\]')
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
BADGE = re.compile(r"\[!\[Open In Colab\]\([^)\s]*\)\]\([^)\s]*\)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class BuildError(Exception):
    """A problem in the master that stops the build, with a message for the instructor."""


def master_client(notebook: nbformat.NotebookNode, workdir: Path) -> NotebookClient:
    """A client that runs `notebook` in a kernel of its own, working in `workdir`."""
    # The kernel talks over sockets in the build's own folder, not over TCP on localhost, for which it
    # warns that nothing is encrypted.
    kernel = Config({"KernelManager": {"transport": "ipc", "ip": str(workdir / "kernel")}})
    return NotebookClient(notebook, config=kernel, kernel_name="python3", timeout=600, record_timing=False,
                          coalesce_streams=True, resources={"metadata": {"path": str(workdir)}})


def run_cells(client: NotebookClient, verbose: bool = False) -> None:
    """Run every cell of the client's notebook in its kernel (set up by the caller)."""
    for index, cell in enumerate(client.nb.cells):
        try:
            client.execute_cell(cell, index)
        except CellExecutionError as error:
            first_line = next((line for line in cell.source.splitlines() if line.strip()), "")
            details = f"\n{ANSI.sub('', error.traceback)}" if verbose else ""
            raise BuildError(f"the master raised {error.ename}: {error.evalue}\n  in its cell that starts: "
                             f"{first_line}{details}") from None


def ask(client: NotebookClient, source: str) -> object:
    """Run `source` in the client's kernel, after the notebook; return the JSON it prints."""
    cell = nbformat.v4.new_code_cell(source)
    client.nb.cells.append(cell)  # where nbclient keeps what the cell printed
    try:
        client.execute_cell(cell, len(client.nb.cells) - 1)
    except CellExecutionError as error:
        raise BuildError(f"the build's own question to the master failed ({error.ename}: {error.evalue})") from None
    finally:
        client.nb.cells.pop()
    return json.loads("".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream"))


def fill_in_printed_targets(notebook: nbformat.NotebookNode, printed: dict) -> None:
    """Replace every `{{name}}` of the executed notebook's cells, and of what they printed, with
    PRINTED["name"]: the targets a student compares with are computed by the master, never typed in."""

    def value(match: re.Match) -> str:
        if match[1] not in printed:
            raise BuildError(f"the master writes {{{{{match[1]}}}}}, which PRINTED (in its `{IGNORE_MARKER}` cell) "
                             f"does not define; it defines {', '.join(sorted(printed))}")
        return str(printed[match[1]])

    for cell in notebook.cells:
        if cell.source.startswith(IGNORE_MARKER):
            continue
        cell.source = PLACEHOLDER.sub(value, cell.source)
        for output in cell.get("outputs", []):
            for text in (output, output.get("data", {})):
                key = "text" if text is output else "text/plain"
                if isinstance(text.get(key), str):
                    text[key] = PLACEHOLDER.sub(value, text[key])
                    # An f-string or str.format prints {{name}} as {name}: its output would not be what
                    # students' notebooks print.
                    mangled = [name for name in printed if f"{{{name}}}" in text[key]]
                    if mangled:
                        raise BuildError(f"put {{{{{mangled[0]}}}}} in a plain string (or in markdown), not in an "
                                         f"f-string or a format string, in the master's cell that starts: "
                                         f"{cell.source.splitlines()[0]}")


def insert_reference_values(notebook: nbformat.NotebookNode, references: dict) -> None:
    """Replace every `REFERENCE_VALUES["key"]` in code cells with the literal value."""

    def literal(match: re.Match) -> str:
        key = match.group(1)
        if key not in references:
            raise BuildError(f'a test uses REFERENCE_VALUES["{key}"], which the master does not compute')
        return repr(references[key])

    for cell in notebook.cells:
        if cell.cell_type == "code" and not cell.source.startswith(IGNORE_MARKER):
            cell.source = REFERENCE_PATTERN.sub(literal, cell.source)


WHAT_THE_MASTER_COMPUTED = f"""\
import json
try:
    print(json.dumps({{"references": REFERENCE_VALUES, "printed": PRINTED}}))
except NameError as error:
    print(json.dumps({{"missing": str(error)}}))"""

# Every test case, public and hidden, run with otter's own checks in the kernel that ran the master:
# the solutions must pass them all. (Otter Assign's own test run would execute the notebook again.)
CHECK_THE_SOLUTIONS = """\
import json, otter
_checks = otter.Notebook(tests_dir={tests!r})
_failed = []
for _question in {questions!r}:
    for _case in _checks.check(_question).test_case_results:
        if not _case.passed:
            _failed.append((_question, _case.test_case.name, _case.message))
print(json.dumps(_failed))"""


def question_cases(master: nbformat.NotebookNode) -> dict[str, tuple[float, list[tuple[str, float, bool]]]]:
    """Each question of the master: its points, and its test cases in order, as (the first line of
    the docstring, points, hidden)."""
    questions: dict[str, tuple[float, list]] = {}
    question = None
    for cell in master.cells:
        if cell.cell_type == "raw" and cell.source.startswith("# BEGIN QUESTION"):
            settings = yaml.safe_load(cell.source.split("\n", 1)[1])
            question = settings["name"]
            questions[question] = (settings.get("points"), [])
        elif cell.cell_type == "code" and question and cell.source.startswith('""" # BEGIN TEST CONFIG'):
            tree = ast.parse(cell.source)
            config = yaml.safe_load(tree.body[0].value.value.split("\n", 1)[1]) or {}
            for function in (node for node in tree.body if isinstance(node, ast.FunctionDef)):
                description = (ast.get_docstring(function) or function.name).splitlines()[0]
                questions[question][1].append((description, config.get("points"), bool(config.get("hidden"))))
    return questions


def check_points(questions: dict[str, tuple[float, list[tuple[str, float, bool]]]]) -> None:
    """A question's points must be the sum of its cases' (otter would silently drop the difference)."""
    for question, (points, cases) in questions.items():
        given = [case_points for _, case_points, _ in cases]
        if None not in given and isinstance(points, (int, float)) and sum(given) != points:
            raise BuildError(f"{question} is worth {points:g} points (its BEGIN QUESTION cell), but its test cases' "
                             f"points add up to {sum(given):g}: change `points:` in the TEST CONFIG of a case too")


def failing_cases(failed: list[tuple[str, str, str]], questions: dict) -> list[str]:
    """What a TA reads of each failing case: the question, the case's description and its message
    (the last line of otter's report of it)."""
    failures = []
    for question, name, report in failed:
        number = int(name.rsplit(" - ", 1)[-1])
        lines = [line.strip() for line in report.splitlines() if line.strip()]
        message = lines[-1].removeprefix("AssertionError: ") if lines else "(no message)"
        cases = questions.get(question, (None, []))[1]
        description, _, hidden = cases[number - 1] if number <= len(cases) else (name, 0, False)
        failures.append(f"  {question}, {'hidden' if hidden else 'public'} case {number}: {description}\n"
                        f"      {message}")
    return failures


def run_otter_assign(master_path: Path, output: Path) -> None:
    """Run Otter Assign (the solutions are checked against its tests by `CHECK_THE_SOLUTIONS`)."""
    command = [sys.executable, "-m", "otter", "assign", "--no-pdfs", "--no-run-tests", str(master_path), str(output)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=master_path.parent)
    if result.returncode != 0:
        raise BuildError(f"otter assign failed:\n{(result.stdout + result.stderr).strip()}")


def check_the_solutions(client: NotebookClient, tests: Path, questions: dict, verbose: bool = False) -> None:
    """Stop the build, saying what each failing case says, if a solution fails its own tests."""
    failed = ask(client, CHECK_THE_SOLUTIONS.format(tests=str(tests), questions=list(questions)))
    if failed:
        details = "".join(f"\n\n{question}, {name}:\n{report}" for question, name, report in failed) if verbose else ""
        raise BuildError(f"the master's solutions fail {len(failed)} of their own test cases:\n"
                         + "\n".join(failing_cases(failed, questions)) + "\nFix the solution (or the test) in the "
                         "master and run make again (make VERBOSE=1 shows otter's report of each)." + details)


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


# Our own keys in the master's ASSIGNMENT CONFIG, each with its default, what a value must be, and
# that in words. The build takes them out before otter reads the configuration (otter refuses keys
# it does not know).
OUR_SETTINGS = {
    "feedback": (POLICIES[0], lambda value: value in POLICIES, f"one of {', '.join(POLICIES)}"),
    # Gradescope lets an instructor set from 1 to 40 minutes; grading plans its time from it.
    "gradescope_timeout": (GRADESCOPE_TIMEOUT, lambda value: type(value) in (int, float) and 60 <= value <= 2400,
                           "the assignment's overall timeout on Gradescope, in seconds (60 to 2400)"),
    "colab_repo": (colab.DEFAULT_REPO, lambda value: isinstance(value, str) and colab.REPO_PATTERN.fullmatch(value),
                   "a GitHub repository, org/repo"),
}


def take_our_settings(notebook: nbformat.NotebookNode) -> dict:
    """Remove our own keys (OUR_SETTINGS) from the notebook's ASSIGNMENT CONFIG; return their values."""
    [config] = [cell for cell in notebook.cells if cell.cell_type == "raw" and cell.source.startswith(CONFIG_MARKER)]
    settings = yaml.safe_load(config.source)
    ours = {}
    for key, (default, valid, meaning) in OUR_SETTINGS.items():
        ours[key] = settings.pop(key, default)
        if not valid(ours[key]):
            raise BuildError(f"the master's `{key}:` must be {meaning}, not {ours[key]!r}")
    config.source = f"{CONFIG_MARKER}\n{yaml.safe_dump(settings, sort_keys=False)}"
    return ours


def reference_call_limits(solutions: Path, tests: Path, tries: int = 3) -> dict[str, float]:
    """Grade the solutions with the hardened grader (unsandboxed: they are the instructor's own),
    which must give them full marks; return, for each function the tests call, the time limit of a
    student's call to it (`trusted.call_limit` of the reference solution's longest call).

    The times are the machine's wall clock: where a limit comes out above the floor, the solutions
    are graded again (up to `tries` times) and each function keeps its shortest longest call, so that
    one moment of a busy machine does not change what the build writes."""
    longest: dict[str, float] = {}
    for _ in range(tries):
        budget = trusted.Budget(GRADESCOPE_TIMEOUT, CELL_SECONDS)
        with tempfile.TemporaryDirectory(prefix="backprop-reference-") as folder:
            grading = trusted.grade(nbformat.read(solutions, as_version=4), tests, ASSIGNMENT,
                                    as_student(Path(folder), None, False, False, CELL_SECONDS), budget)
        lost = [name for name, test in grading.tests.items() if not all(r.passed for r in test.test_case_results)]
        if lost or not grading.finished:
            raise BuildError(f"the hardened grader does not give the solutions full marks (lost: {', '.join(lost)}; "
                             f"{'; '.join(grading.problems) or 'no problem noted'})")
        longest = {name: min(seconds, longest.get(name, seconds)) for name, seconds in budget.longest_calls.items()}
        if all(trusted.call_limit(seconds) == trusted.FLOOR_SECONDS for seconds in longest.values()):
            break
    return {name: trusted.call_limit(seconds) for name, seconds in sorted(longest.items())}


def lay_out(dist: Path, root: Path, student_badge: str, settings: dict) -> None:
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
    calls = reference_call_limits(root / "solutions" / NOTEBOOK, autograder / "tests")
    autograder_zip.pack(zip_path, root / AUTOGRADER_ZIP.relative_to(ROOT), {**settings, "call_seconds": calls})


def store_without_outputs(master: nbformat.NotebookNode, path: Path) -> bool:
    """Keep the master (read from `path`) as it is committed, without the outputs and counts Jupyter
    saves into it, in memory and at `path`; return whether it had any."""
    code = [cell for cell in master.cells if cell.cell_type == "code"]
    if not any(cell.outputs or cell.execution_count is not None or "execution" in cell.metadata for cell in code):
        return False
    for cell in code:
        cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    nbformat.write(master, path)
    return True


def point_readme_badge(readme: Path, badge: str) -> None:
    """Point the README's "Open in Colab" badge where the student notebook's points."""
    if readme.is_file():
        text = readme.read_text(encoding="utf-8")
        readme.write_text(BADGE.sub(lambda _: badge, text, count=1), encoding="utf-8")


def build(root: Path = ROOT, master_path: Path = MASTER, verbose: bool = False) -> None:
    """Build every output of `master_path` into `root` (the repository itself by default)."""
    master = nbformat.read(master_path, as_version=4)
    if store_without_outputs(master, master_path):
        print(f"removed the outputs saved in {master_path.name} (the master is kept without them)")
    questions = question_cases(master)
    check_points(questions)
    settings = take_our_settings(master)
    student_badge = colab.badge_markdown(settings.pop("colab_repo"), f"student/{NOTEBOOK}")
    with tempfile.TemporaryDirectory(prefix="backprop-build-") as temporary:
        workdir, dist = Path(temporary) / "master", Path(temporary) / "dist"
        workdir.mkdir()
        for name in SUPPORT_FILES:
            shutil.copy(ASSIGNMENT / name, workdir)
        client = master_client(master, workdir)
        with client.setup_kernel():
            print("running the master notebook ...", flush=True)
            run_cells(client, verbose)
            computed = ask(client, WHAT_THE_MASTER_COMPUTED)
            if "missing" in computed:
                raise BuildError(f"the master's `{IGNORE_MARKER}` cell must define REFERENCE_VALUES and PRINTED "
                                 f"({computed['missing']})")
            fill_in_printed_targets(master, computed["printed"])
            insert_reference_values(master, computed["references"])
            nbformat.write(master, workdir / NOTEBOOK)
            print("running otter assign, and the solutions against every test ...", flush=True)
            run_otter_assign(workdir / NOTEBOOK, dist)
            check_the_solutions(client, dist / "autograder" / "tests", questions, verbose)
        lay_out(dist, root, student_badge, settings)
    examples.write_examples(root / EXAMPLES.relative_to(ROOT), root)
    point_readme_badge(root / "README.md", student_badge)
    print(f"built {', '.join(OUTPUT_FOLDERS)} and the example submissions in {root}")


def list_changes(root: Path) -> None:
    """Say which files the build changed since the last commit, to commit together with the master."""
    try:
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--",
                                 *COMMITTED_WITH_THE_MASTER], cwd=root, capture_output=True, text=True)
    except OSError:
        return  # no git
    if status.returncode != 0:
        return  # not a git checkout
    kinds = {"M": "changed", "A": "added", "D": "deleted", "?": "new", "R": "renamed"}
    changed = [f"  {kinds.get(line[:2].strip()[:1], 'changed'):>7}: {line[3:]}" for line in status.stdout.splitlines()]
    if not changed:
        print("Nothing changed: the committed files are what the master builds.")
        return
    print(f"{len(changed)} files differ from the last commit:\n" + "\n".join(changed) +
          "\nCommit them together, the master with what it builds:\n"
          f"  git add -A {' '.join(COMMITTED_WITH_THE_MASTER)} && git commit")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT, help="where to write the outputs (default: the repository)")
    parser.add_argument("--master", type=Path, default=MASTER, help="the master notebook")
    parser.add_argument("--verbose", action="store_true",
                        help="when the build fails, show otter's report of each failing case, or the traceback")
    arguments = parser.parse_args()
    out = arguments.out.resolve()
    try:
        build(out, arguments.master.resolve(), arguments.verbose)
    except (BuildError, colab.ColabError) as error:
        print(f"build failed: {error}", file=sys.stderr)
        return 1
    if out == ROOT:
        list_changes(ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
