"""The built homework: grading end to end, reproducibility, and what students can see."""

import ast
import filecmp
import json
import re
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
import yaml

from conftest import AUTOGRADER_ZIP, QUESTIONS, ROOT, gradescope_dry_run, otter_run, scores

POINTS = {"q1.1": 4, "q1.2": 4, "q1.3": 4, "q2.1": 4, "q2.2": 6}
BUILT_FOLDERS = ("student", "solutions", "tests", "autograder")


def test_solutions_full_marks_and_blank_notebook_zero(tmp_path: Path) -> None:
    notebooks = {name: ROOT / name / "backpropagation.ipynb" for name in ("solutions", "student")}
    with ThreadPoolExecutor(max_workers=2) as pool:
        scores = dict(zip(notebooks, pool.map(lambda item: otter_run(item[1], tmp_path / item[0]), notebooks.items())))
    assert scores["solutions"] == {q: (points, points) for q, points in POINTS.items()}
    assert scores["student"] == {q: (0, points) for q, points in POINTS.items()}


def test_gradescope_path_full_marks_and_blank_notebook_zero(tmp_path: Path) -> None:
    notebooks = [ROOT / name / "backpropagation.ipynb" for name in ("solutions", "student")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        solutions, blank = pool.map(lambda i, path: gradescope_dry_run(path, tmp_path / str(i)), range(2), notebooks)
    assert scores(solutions) == POINTS
    assert scores(blank) == {q: 0 for q in POINTS}


@pytest.fixture(scope="module")
def fresh_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fresh-build")
    subprocess.run([sys.executable, "-m", "backprop_hw.build", "--out", str(out)], cwd=ROOT, check=True,
                   capture_output=True)
    return out


def differing_files(left: Path, right: Path) -> list[str]:
    """Relative paths that differ between two trees, or exist in only one of them."""
    comparison = filecmp.dircmp(left, right, ignore=["__pycache__"])
    found = [str(left / name) for name in comparison.left_only + comparison.right_only + comparison.funny_files]
    _, mismatch, errors = filecmp.cmpfiles(left, right, comparison.common_files, shallow=False)
    found += [str(left / name) for name in mismatch + errors]
    for sub in comparison.common_dirs:
        found += differing_files(left / sub, right / sub)
    return found


@pytest.mark.parametrize("folder", BUILT_FOLDERS)
def test_committed_outputs_match_a_fresh_build(fresh_build: Path, folder: str) -> None:
    assert differing_files(ROOT / folder, fresh_build / folder) == []


def test_broken_solution_stops_the_build(tmp_path: Path) -> None:
    master = nbformat.read(ROOT / "assignment" / "backpropagation.ipynb", as_version=4)
    [cell] = [c for c in master.cells if c.source.startswith("dldf3 = 2 * (f3 - y)")]
    cell.source = cell.source.replace("dldf2 = -np.sin(f2)", "dldf2 = np.sin(f2)")
    broken = tmp_path / "backpropagation.ipynb"
    nbformat.write(master, broken)
    result = subprocess.run([sys.executable, "-m", "backprop_hw.build", "--master", str(broken), "--out",
                             str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode != 0
    assert "failing questions: q1.2" in result.stderr
    assert "`dldf2`" in result.stderr
    assert not (tmp_path / "out" / "student").exists()


def solution_lines() -> set[str]:
    """Every line of solution code in the master, stripped of the SOLUTION markers."""
    master = nbformat.read(ROOT / "assignment" / "backpropagation.ipynb", as_version=4)
    lines, inside = set(), False
    for cell in (c for c in master.cells if c.cell_type == "code"):
        for line in cell.source.splitlines():
            marker = line.strip()
            if marker == "# BEGIN SOLUTION":
                inside = True
            elif marker == "# END SOLUTION":
                inside = False
            elif inside or marker.endswith("# SOLUTION"):
                lines.add(marker.removesuffix("# SOLUTION").strip())
    return {line for line in lines if line and not line.startswith("#")}


def hidden_case_numbers() -> set[str]:
    """The float literals of every hidden test case (the reference values), as source text."""
    numbers = set()
    for path in (ROOT / "tests").glob("q*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and "hidden=True" in ast.unparse(node.decorator_list[0]):
                numbers |= {repr(c.value) for c in ast.walk(node)
                            if isinstance(c, ast.Constant) and isinstance(c.value, float) and len(repr(c.value)) > 8}
    return numbers


def student_texts() -> dict[str, str]:
    notebook = nbformat.read(ROOT / "student" / "backpropagation.ipynb", as_version=4)
    texts = {"notebook": "\n".join(cell.source for cell in notebook.cells)}
    texts |= {path.name: path.read_text() for path in (ROOT / "student" / "tests").glob("*.py")}
    return texts


def test_student_files_hold_no_solution_code() -> None:
    solutions = solution_lines()
    assert len(solutions) > 20
    for name, text in student_texts().items():
        present = {line.strip() for line in text.splitlines()}
        assert not solutions & present, f"{name} contains solution code"
        assert "SOLUTION" not in text and "## Ignore ##" not in text and "REFERENCE_VALUES" not in text


def test_student_files_hold_no_hidden_case() -> None:
    numbers = hidden_case_numbers()
    assert len(numbers) > 100
    for name, text in student_texts().items():
        assert "hidden=True" not in text, name
        leaked = [number for number in numbers if number in text]
        assert not leaked, f"{name} contains hidden reference values such as {leaked[:3]}"


def test_every_question_has_public_and_hidden_cases() -> None:
    for question in QUESTIONS:
        full = (ROOT / "tests" / f"{question}.py").read_text()
        public = (ROOT / "student" / "tests" / f"{question}.py").read_text()
        decorators = re.findall(r"@test_case\(points=[\d.]+, hidden=(True|False)", full)
        assert "True" in decorators and "False" in decorators
        assert f"points = {POINTS[question]}" in full
        assert public.count("@test_case(") == decorators.count("False")


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
            "backprop_grader/gradescope_run.py", "backprop_grader/trusted_grading.py",
            "backprop_grader/harness.py"} <= names
    assert {f"tests/{q}.py" for q in QUESTIONS} <= names
    assert config["assignment_name"] == "backpropagation"
    assert run_autograder.rstrip().endswith("python /autograder/source/backprop_grader/gradescope_run.py")
    locked = pins((ROOT / "requirements.txt").read_text().splitlines())
    [pip_section] = [entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict)]
    shipped = pins(pip_section)
    assert shipped == {name: locked[name] for name in ("otter-grader", "numpy", "matplotlib")}
    assert f"python={sys.version_info.major}.{sys.version_info.minor}" in environment["dependencies"]


def test_notebook_runtime_pins_agree_with_the_lock() -> None:
    locked = pins((ROOT / "requirements.txt").read_text().splitlines())
    for name, version in pins((ROOT / "assignment" / "requirements.txt").read_text().splitlines()).items():
        assert locked[name] == version, name
