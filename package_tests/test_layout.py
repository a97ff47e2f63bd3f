"""The repository's layout: its top level holds what docs/layout.md names and nothing else; the shipped
grader (`backprop_hw/autograder/__init__.py`) imports only what Gradescope's image has and its own
modules by relative import, never `backprop_hw` (not in the zip); `harness.py` imports nothing of the
package, because its source is run alone; and the committed zip ships exactly these files, byte for byte.
"""

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import conftest
from backprop_hw import autograder_zip
from backprop_hw.paths import AUTOGRADER_ZIP, GRADER_PACKAGE, ROOT, ZIP_PACKAGE

# The top level, as docs/layout.md names it: the master, what the build makes from it, the package
# and its tests, and the project's own files.
TOP_LEVEL = {"assignment", "student", "solutions", "tests", "autograder", "examples", "backprop_hw", "package_tests",
             "docs", "Makefile", "README.md", "requirements.txt", "pyproject.toml", ".gitignore", ".ci"}

THIRD_PARTY = {"otter", "numpy", "nbformat", "IPython", "traitlets", "matplotlib"}
SHIPPED_BESIDE = {"backprop_checks"}  # the tests' helpers, in the zip's files/ (on the path once the tests load)
HARNESS_THIRD_PARTY = {"numpy", "IPython", "traitlets", "matplotlib", "otter"}  # what notebooks import
MODULES = sorted(GRADER_PACKAGE.glob("*.py"))


def imports(path: Path) -> list[tuple[int, str]]:
    """Every import of a module, anywhere in it (functions included): (relative level, module name)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def top(name: str) -> str:
    return name.split(".")[0]


def test_the_top_level_holds_what_the_layout_names_and_nothing_stray() -> None:
    """Every file git tracks, or would add (untracked and not ignored), lies in a place the layout names."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    stray = sorted({path.split("/")[0] for path in listed if path} - TOP_LEVEL)
    assert stray == [], f"not part of the layout (docs/layout.md): {stray}"


def test_the_package_has_the_modules_its_docstring_names() -> None:
    assert {path.name for path in MODULES} >= {"__init__.py", "harness.py", "trusted.py", "submission.py",
                                               "feedback.py", "gradescope_run.py"}


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_modules_import_only_the_standard_library_the_grading_stack_and_each_other(path: Path) -> None:
    for level, name in imports(path):
        if level == 0:
            assert top(name) in sys.stdlib_module_names | THIRD_PARTY | SHIPPED_BESIDE, f"{path.name} imports {name}"
        else:
            assert level == 1, f"{path.name} reaches out of the package with a level-{level} import"
            assert name == "" or (GRADER_PACKAGE / f"{top(name)}.py").is_file(), f"{path.name} imports .{name}"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_module_imports_backprop_hw(path: Path) -> None:
    assert not [name for level, name in imports(path) if top(name) == "backprop_hw"]
    calls = [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)
             and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")]
    assert calls == []


def test_harness_imports_nothing_of_the_package() -> None:
    found = imports(GRADER_PACKAGE / "harness.py")
    assert [name for level, name in found if level > 0] == []
    assert {top(name) for _, name in found} - set(sys.stdlib_module_names) <= HARNESS_THIRD_PARTY


def test_the_import_rule_catches_what_it_forbids(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("import backprop_hw.paths\nfrom .. import grading\nfrom . import trusted\n"
                      "def f():\n    import pandas\n")
    assert imports(module) == [(0, "backprop_hw.paths"), (2, ""), (1, ""), (0, "pandas")]
    assert "pandas" not in sys.stdlib_module_names and "pandas" not in THIRD_PARTY


# ---------------------------------------------------------------------------------------------
# The zip ships the package as it is


def test_grader_files_are_exactly_the_packages_modules() -> None:
    files = autograder_zip.grader_files()
    assert sorted(files) == [f"{ZIP_PACKAGE}/{path.name}" for path in MODULES]
    assert all(files[f"{ZIP_PACKAGE}/{path.name}"] == path.read_bytes() for path in MODULES)


def test_the_committed_zip_ships_the_package_byte_for_byte() -> None:
    with zipfile.ZipFile(AUTOGRADER_ZIP) as archive:
        shipped = {name: archive.read(name) for name in archive.namelist() if name.startswith(f"{ZIP_PACKAGE}/")}
    assert shipped == autograder_zip.grader_files(), "the autograder zip is stale: run make"


def test_the_stale_zip_check_finds_nothing_on_the_committed_zip() -> None:
    assert conftest.stale_zip_files() == []


def test_the_stale_zip_check_names_a_changed_a_missing_and_an_extra_file(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "autograder.zip"
    with zipfile.ZipFile(AUTOGRADER_ZIP) as original, zipfile.ZipFile(copy, "w") as changed:
        for info in original.infolist():
            if info.filename == f"{ZIP_PACKAGE}/feedback.py":
                continue
            data = original.read(info)
            changed.writestr(info, data + b"\n# changed" if info.filename == f"{ZIP_PACKAGE}/harness.py" else data)
        changed.writestr(f"{ZIP_PACKAGE}/extra.py", b"")
    monkeypatch.setattr(conftest, "AUTOGRADER_ZIP", copy)
    assert conftest.stale_zip_files() == [f"{ZIP_PACKAGE}/extra.py", f"{ZIP_PACKAGE}/feedback.py",
                                          f"{ZIP_PACKAGE}/harness.py"]
