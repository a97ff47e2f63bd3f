"""Make a built notebook work on its own: in Colab, or downloaded alone, or renamed.

Otter's stock first cell, `otter.Notebook("backpropagation.ipynb")`, needs otter installed and
either a `tests/` folder beside the notebook or the notebook file itself on disk (to read tests
from its metadata). In Colab there is neither, and `grader.export()` refuses to run there. Otter's
own `runs_on: colab` only adds an unpinned `%pip install`, so the build reaches past otter here:

- a set-up cell installs whatever the notebook imports that is missing (numpy and matplotlib pinned
  as in `assignment/requirements.txt`, otter-grader as in `requirements.txt`), writes the public
  tests and `backprop_checks.py` from text the notebook carries where they are missing (never over
  an existing file: in grading, `tests/` holds the hidden cases too);
- otter's init cell becomes `otter.Notebook(tests_dir="tests")`, which needs no notebook file;
- otter's export cell becomes a closing cell that runs every check and says how to submit: in
  Colab, download the `.ipynb`; elsewhere, otter's export zip.

The set-up and closing cells carry otter's `otter_ignore` tag, so grading never runs them and never
calls pip; should an editor drop the tag, the set-up cell still replaces none of the grader's files.
"""

import ast
import re
import sys
from pathlib import Path

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

# The repository the "Open in Colab" badge points to, until the Makefile sets a real one.
DEFAULT_REPO = "your-org/backpropagation-homework"
BRANCH = "main"
COLAB_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
REPO_PATTERN = re.compile(r"[\w.-]+/[\w.-]+")
IGNORE_TAG = "otter_ignore"  # otter's grading drops cells with this tag
INIT_MARKER = "# Initialize Otter"
EXPORT_CALL = "grader.export("
SUBMISSION_HEADING = "## Submission"
LOCKED = {"deletable": False, "editable": False}
HIDDEN = {"cellView": "form",  # Colab shows the #@title only
          "jupyter": {"source_hidden": True}}  # JupyterLab collapses the code
# The notebook's own runtime pins; the tool pins (otter-grader's) come from the build.
NOTEBOOK_REQUIREMENTS = Path(__file__).resolve().parent.parent / "assignment" / "requirements.txt"
IMPORT_NAMES = {"otter-grader": "otter"}  # packages whose module is named otherwise

SET_UP_TEMPLATE = '''\
#@title Set up the checks: run this cell first
# Written by the homework's build; leave it as it is. It installs what the notebook needs where it is
# missing, and writes the public tests (tests/) and backprop_checks.py beside this notebook where
# they are missing, so the checks work in Colab, in a notebook downloaded alone and after a rename.
# It never replaces a file or a package (when grading, tests/ holds more tests than these).
# Grading skips this cell.
import importlib
import importlib.util
import pathlib
import subprocess
import sys


def set_up_checks(packages, files):
    \"\"\"Install the missing packages ({{module: requirement}}) and write the missing files.\"\"\"
    missing = [requirement for module, requirement in packages.items() if importlib.util.find_spec(module) is None]
    if missing:
        print("Installing " + ", ".join(missing) + " ...")
        pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              *missing], capture_output=True, text=True)
        if pip.returncode != 0:
            raise RuntimeError("Could not install " + ", ".join(missing) + ":\\n" + pip.stdout + pip.stderr)
        importlib.invalidate_caches()  # so that this kernel imports what was just installed
    for name, text in files.items():
        path = pathlib.Path(name)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            sys.modules.pop("backprop_checks", None)  # a check imports the file just written
        elif path.read_text(encoding="utf-8") != text:
            print(f"Note: {{path}} is not the one this notebook comes with (another version or another "
                  "homework?). If the checks fail strangely, delete it and run this cell again.")


set_up_checks({packages}, {{
{files}
}})
'''

INIT_SOURCE = '''\
# Initialize Otter: the tests are read from tests/, so this works whatever the notebook is called.
import otter
grader = otter.Notebook(tests_dir="tests")'''

SUBMISSION_MARKDOWN = """\
## Submission

Run every cell from the top first (in Colab: **Runtime > Run all**), then run the cell below. It
runs all the checks and tells you how to submit:

- **In Colab:** save, then **File > Download > Download .ipynb** and upload that `.ipynb` file to
  Gradescope.
- **In Jupyter or VS Code:** save the notebook first; the cell writes a zip file next to it.
  Upload the zip file to Gradescope."""

CLOSING_SOURCE = '''\
# Run every check, then submit: in Colab the notebook itself, elsewhere otter's zip.
display(grader.check_all())
try:
    import google.colab  # importable only in Colab
    in_colab = True
except ImportError:
    in_colab = False
if in_colab:
    print("To submit: File > Download > Download .ipynb, then upload that .ipynb file to Gradescope.")
else:
    grader.export(pdf=False, run_tests=True)
    print("To submit: upload the zip file this cell wrote to Gradescope.")'''


class ColabError(Exception):
    """The notebook otter wrote does not have the cells this module replaces."""


def pins(requirements: Path) -> list[str]:
    """The `package==version` lines of a requirements file."""
    return [line.strip() for line in requirements.read_text(encoding="utf-8").splitlines() if "==" in line]


def otter_requirement(requirements: Path) -> str:
    """The pinned `otter-grader==X` line of a requirements file."""
    for pin in pins(requirements):
        if pin.startswith("otter-grader=="):
            return pin
    raise ColabError(f"{requirements} pins no otter-grader version")


def runtime_packages(otter_pin: str) -> dict[str, str]:
    """What the set-up cell makes sure of: {module: pinned requirement}, the notebook's pins and otter's."""
    requirements = [*pins(NOTEBOOK_REQUIREMENTS), otter_pin]
    return {IMPORT_NAMES.get(name := pin.split("==")[0], name.replace("-", "_")): pin for pin in requirements}


def third_party_imports(sources: list[str]) -> set[str]:
    """The top-level modules that the code cells `sources` import from outside Python's standard library."""
    modules = set()
    for source in sources:
        for node in ast.walk(ast.parse(TransformerManager().transform_cell(source))):  # magics become calls
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names)


def badge_markdown(repo: str, path: str) -> str:
    """Markdown for an "Open in Colab" badge of the notebook at `path` in GitHub repository `repo`."""
    if not REPO_PATTERN.fullmatch(repo):
        raise ColabError(f"the Colab repository must look like org/repo, not {repo!r}")
    url = f"https://colab.research.google.com/github/{repo}/blob/{BRANCH}/{path}"
    return f"[![Open In Colab]({COLAB_BADGE_IMAGE})]({url})"


def python_literal(text: str) -> str:
    """A Python literal for `text`: a readable raw triple-quoted string wherever that is exact."""
    readable = f"r'''{text}'''"
    try:
        if ast.literal_eval(readable) == text:
            return readable
    except SyntaxError:
        pass
    return repr(text)


def set_up_source(folder: Path, packages: dict[str, str]) -> str:
    """The set-up cell, installing the missing `packages` and carrying `backprop_checks.py` and
    `tests/*.py` of `folder`."""
    paths = [folder / "backprop_checks.py", *sorted((folder / "tests").glob("*.py"))]
    files = "\n".join(f"    {path.relative_to(folder).as_posix()!r}: {python_literal(path.read_text(encoding='utf-8'))},"
                      for path in paths)
    return SET_UP_TEMPLATE.format(packages=repr(packages), files=files)


def _only(cells: list[int], what: str) -> int:
    if len(cells) != 1:
        raise ColabError(f"expected one {what} in otter's notebook, found {len(cells)}")
    return cells[0]


def make_self_contained(notebook: nbformat.NotebookNode, folder: Path, requirement: str,
                        badge: str | None = None) -> None:
    """Replace otter's init and export cells of `notebook` (laid out in `folder`) in place;
    `requirement` is otter-grader's pin.

    The notebook metadata (otter's assignment name, which grading checks) is left as it is.
    """
    cells = notebook.cells
    packages = runtime_packages(requirement)
    sources = [c.source for c in cells if c.cell_type == "code"] + [(folder / "backprop_checks.py").read_text()]
    unpinned = third_party_imports(sources) - set(packages) - {"backprop_checks"}
    if unpinned:
        raise ColabError(f"the notebook imports {', '.join(sorted(unpinned))}, which {NOTEBOOK_REQUIREMENTS} "
                         "does not pin (or colab.IMPORT_NAMES does not name): the set-up cell would not install it")
    init = _only([i for i, c in enumerate(cells) if c.cell_type == "code" and c.source.startswith(INIT_MARKER)],
                 "init cell")
    export = _only([i for i, c in enumerate(cells) if c.cell_type == "code" and EXPORT_CALL in c.source],
                   "export cell")
    if not (cells[export - 1].cell_type == "markdown" and cells[export - 1].source.startswith(SUBMISSION_HEADING)):
        raise ColabError("expected otter's submission instructions just before its export cell")
    cells[export - 1] = nbformat.v4.new_markdown_cell(SUBMISSION_MARKDOWN, metadata=dict(LOCKED))
    cells[export] = nbformat.v4.new_code_cell(CLOSING_SOURCE, metadata={**LOCKED, "tags": [IGNORE_TAG]})
    set_up = nbformat.v4.new_code_cell(set_up_source(folder, packages),
                                       metadata={**LOCKED, **HIDDEN, "tags": [IGNORE_TAG]})
    top = [set_up, nbformat.v4.new_code_cell(INIT_SOURCE, metadata=dict(LOCKED))]
    if badge is not None:
        start = f"{badge}\n\nRun the first code cell before anything else: it sets up the checks."
        top.insert(0, nbformat.v4.new_markdown_cell(start, metadata=dict(LOCKED)))
    cells[init:init + 1] = top
