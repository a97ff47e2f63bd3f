"""The built homework: reproducible, complete, and with nothing hidden in what students get."""

import ast
import filecmp
import json
import re
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
import yaml

from backprop_hw import autograder_zip, build as building
from backprop_hw.paths import AUTOGRADER_ZIP, MASTER, ROOT, STUDENT_NOTEBOOK
from conftest import POINTS, QUESTIONS
from hidden_values import hidden_case_floats


BUILT_FOLDERS = ("student", "solutions", "tests", "autograder", "examples")


def build(out: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backprop_hw.build", "--out", str(out), *options], cwd=ROOT,
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """A fresh build of the master, and one of a master whose solution fails a test, side by side."""
    base = tmp_path_factory.mktemp("builds")
    master = nbformat.read(MASTER, as_version=4)
    [cell] = [c for c in master.cells if c.source.startswith("dldf3 = 2 * (f3 - y)")]
    cell.source = cell.source.replace("dldf2 = -np.sin(f2)", "dldf2 = np.sin(f2)")
    broken = base / "broken" / "backpropagation.ipynb"
    broken.parent.mkdir()
    nbformat.write(master, broken)
    jobs = {"fresh": (base / "fresh", ()), "broken": (base / "broken-out", ("--master", str(broken)))}
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda job: build(job[0], *job[1]), jobs.values())
        return {name: (job[0], result) for (name, job), result in zip(jobs.items(), results)}


def differing_files(left: Path, right: Path) -> list[str]:
    """Relative paths that differ between two trees, or exist in only one of them."""
    comparison = filecmp.dircmp(left, right, ignore=["__pycache__"])
    found = [str(left / name) for name in comparison.left_only + comparison.right_only + comparison.funny_files]
    _, mismatch, errors = filecmp.cmpfiles(left, right, comparison.common_files, shallow=False)
    found += [str(left / name) for name in mismatch + errors]
    for sub in comparison.common_dirs:
        found += differing_files(left / sub, right / sub)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("folder", BUILT_FOLDERS)
def test_committed_outputs_match_a_fresh_build(builds, folder: str) -> None:
    """Byte for byte, the public reference values included: they are the same on every machine."""
    out, result = builds["fresh"]
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert differing_files(ROOT / folder, out / folder) == []


@pytest.mark.slow
def test_broken_solution_stops_the_build(builds) -> None:
    out, result = builds["broken"]
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    # What a TA reads: each failing case, named by its question and description, with its message; nothing else.
    assert lines[0] == "build failed: the master's solutions fail 2 of their own test cases:", result.stderr
    assert lines[1] == ("  q1.2, public case 1: The seven derivatives, from your cell run with the exact forward values "
                        "of two sets of parameters.")
    assert lines[2].startswith("      `dldf2` = ") and "has the wrong sign" in lines[2]
    assert lines[3] == "  q1.2, hidden case 2: dldf3, dldh3 and dldf2 follow by the chain rule, with other values."
    assert len(lines) == 6 and "make VERBOSE=1" in lines[5]
    assert not any(noise in result.stderr for noise in ("Traceback", "WARNING", "Kernel", "otter/"))
    assert not (out / "student").exists()


@pytest.mark.slow
def test_build_rejects_an_unknown_feedback_policy(tmp_path: Path) -> None:
    master = nbformat.read(MASTER, as_version=4)
    master.cells[0].source = master.cells[0].source.replace("feedback: messages", "feedback: sometimes")
    nbformat.write(master, tmp_path / "backpropagation.ipynb")
    result = build(tmp_path / "out", "--master", str(tmp_path / "backpropagation.ipynb"))
    assert result.returncode == 1 and "feedback" in result.stderr and "messages" in result.stderr


def solution_lines() -> set[str]:
    """Every line of solution code in the master, stripped of the SOLUTION markers."""
    lines, inside = set(), False
    for cell in (c for c in nbformat.read(MASTER, as_version=4).cells if c.cell_type == "code"):
        for line in cell.source.splitlines():
            marker = line.strip()
            if marker == "# BEGIN SOLUTION":
                inside = True
            elif marker == "# END SOLUTION":
                inside = False
            elif inside or marker.endswith("# SOLUTION"):
                lines.add(marker.removesuffix("# SOLUTION").strip())
    return {line for line in lines if line and not line.startswith("#")}


def student_texts() -> dict[str, str]:
    notebook = nbformat.read(STUDENT_NOTEBOOK, as_version=4)
    texts = {"notebook": "\n".join(cell.source for cell in notebook.cells)}
    texts |= {path.name: path.read_text() for path in (ROOT / "student").rglob("*.py")}
    return texts


def test_student_files_hold_no_solution_code() -> None:
    solutions = solution_lines()
    assert len(solutions) > 20
    for name, text in student_texts().items():
        present = {line.strip() for line in text.splitlines()}
        assert not solutions & present, f"{name} contains solution code"
        assert "SOLUTION" not in text and "## Ignore ##" not in text and "REFERENCE_VALUES" not in text


def test_no_file_holds_a_hidden_value() -> None:
    """The hidden cases draw their inputs when they run: their code, in the zip and in tests/, holds
    no number but the sizes of networks."""
    assert hidden_case_floats() == set()
    assert "backprop_reference" in (ROOT / "tests" / "q2.2.py").read_text()


def test_student_files_hold_no_hidden_case_and_no_reference_code() -> None:
    def functions(name: str) -> set[str]:
        tree = ast.parse((ROOT / "assignment" / name).read_text())
        return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}

    reference_code = functions("backprop_reference.py") - functions("backprop_checks.py")  # a random network is public
    assert "exact_backward" in reference_code
    assert not (ROOT / "student" / "backprop_reference.py").exists()
    for name, text in student_texts().items():
        assert not re.search(r"@test_case\([^)]*hidden=True", text), name
        assert "backprop_reference" not in text and not [f for f in reference_code if f"def {f}(" in text], name


def test_every_question_has_public_and_hidden_cases() -> None:
    for question in QUESTIONS:
        full = (ROOT / "tests" / f"{question}.py").read_text()
        public = (ROOT / "student" / "tests" / f"{question}.py").read_text()
        decorators = re.findall(r"@test_case\(points=[\d.]+, hidden=(True|False)", full)
        assert "True" in decorators and "False" in decorators
        assert f"points = {POINTS[question]}" in full
        assert public.count("@test_case(") == decorators.count("False")


def test_every_case_has_a_description_for_students() -> None:
    """The first line of each case's docstring is what a student reads beside its result."""
    for question in QUESTIONS:
        tree = ast.parse((ROOT / "tests" / f"{question}.py").read_text())
        cases = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
        assert cases and all(ast.get_docstring(case) for case in cases), question


def pins(lines: list[str]) -> dict[str, str]:
    """{package: version} of the `name==version` lines."""
    found = (re.fullmatch(r"\s*-?\s*([A-Za-z0-9_.-]+)(?:\[[^]]*\])?==(\S+)\s*", line) for line in lines)
    return {match[1].lower(): match[2] for match in found if match}


def test_zip_holds_what_gradescope_needs() -> None:
    with zipfile.ZipFile(AUTOGRADER_ZIP) as archive:
        names = set(archive.namelist())
        config = json.loads(archive.read("otter_config.json"))
        run_autograder = archive.read("run_autograder").decode()
        environment = yaml.safe_load(archive.read("environment.yml"))
    assert {"run_autograder", "setup.sh", "environment.yml", "otter_config.json", "files/backprop_checks.py",
            "files/backprop_reference.py"} <= names
    assert {f"tests/{q}.py" for q in QUESTIONS} <= names
    assert {name for name in names if name.startswith("backprop_grader/")} == set(autograder_zip.grader_files())
    assert config["assignment_name"] == "backpropagation" and config["feedback"] == "messages"
    assert run_autograder.rstrip().endswith(autograder_zip.HARDENED_COMMAND)
    locked = pins((ROOT / "requirements.txt").read_text().splitlines())
    [pip_section] = [entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict)]
    shipped = pins(pip_section)
    assert shipped == {name: locked[name] for name in ("otter-grader", "numpy", "matplotlib")}
    assert f"python={sys.version_info.major}.{sys.version_info.minor}" in environment["dependencies"]


def test_notebook_runtime_pins_agree_with_the_lock() -> None:
    locked = pins((ROOT / "requirements.txt").read_text().splitlines())
    for name, version in pins((ROOT / "assignment" / "requirements.txt").read_text().splitlines()).items():
        assert locked[name] == version, name


@pytest.mark.slow
def test_the_makefile_works_from_any_folder_and_touches_nothing_there(tmp_path: Path) -> None:
    """`make -f path/Makefile`, run from another folder: every path is the Makefile's folder's."""
    elsewhere, run = tmp_path / "elsewhere", tmp_path / "a grading run"
    elsewhere.mkdir()
    shutil.copytree(ROOT / "package_tests" / "fixtures" / "grading_run", run)
    venv = (ROOT / ".venv" / "installed-requirements.txt").stat().st_mtime_ns

    def make(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), *arguments], cwd=elsewhere,
                              capture_output=True, text=True)

    shown = make("help")
    assert shown.returncode == 0 and all(f"make {target}" in shown.stdout for target in (
        "test", "grade", "report", "gradescope-check")), shown.stdout
    reported = make("report", f"GRADES={run}")
    assert reported.returncode == 0, reported.stderr
    assert (run / "report.html").is_file() and list(elsewhere.iterdir()) == []
    assert (ROOT / ".venv" / "installed-requirements.txt").stat().st_mtime_ns == venv  # the venv was not made again


def test_printed_targets_are_filled_in_where_the_master_names_them() -> None:
    """`{{name}}` becomes PRINTED["name"] in every cell and in what it printed; the reference cell
    keeps its own text; a name PRINTED lacks, or an f-string (which prints `{name}`), stops the build."""
    def notebook(printed_text: str) -> nbformat.NotebookNode:
        code = nbformat.v4.new_code_cell('print("loss: expected {{loss}}")', outputs=[
            nbformat.v4.new_output("stream", text=printed_text)])
        return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("$K = {{K}}$"), code,
                                               nbformat.v4.new_code_cell("## Ignore ##\n# {{name}} is filled in")])

    filled = notebook("loss: expected {{loss}}\n")
    building.fill_in_printed_targets(filled, {"K": 5, "loss": "327.370943"})
    assert [cell.source for cell in filled.cells] == ["$K = 5$", 'print("loss: expected 327.370943")',
                                                      "## Ignore ##\n# {{name}} is filled in"]
    assert filled.cells[1].outputs[0].text == "loss: expected 327.370943\n"
    with pytest.raises(building.BuildError, match="PRINTED .* does not define; it defines loss"):
        building.fill_in_printed_targets(notebook("x"), {"loss": "1"})
    with pytest.raises(building.BuildError, match="put {{loss}} in a plain string"):
        building.fill_in_printed_targets(notebook("loss: expected {loss}\n"), {"K": 5, "loss": "1"})


def test_what_jupyter_leaves_beside_the_master_is_ignored() -> None:
    checkpoint = "assignment/.ipynb_checkpoints/backpropagation-checkpoint.ipynb"
    assert subprocess.run(["git", "check-ignore", "-q", checkpoint], cwd=ROOT).returncode == 0
