"""Make a built notebook work on its own: in Colab, or downloaded alone, or renamed.

Otter's stock first cell, `otter.Notebook("backpropagation.ipynb")`, needs otter installed and
either a `tests/` folder beside the notebook or the notebook file itself on disk (to read tests
from its metadata). In Colab there is neither, and `grader.export()` refuses to run there. Otter's
own `runs_on: colab` only adds an unpinned `%pip install`, so the build reaches past otter here,
with cells of a few lines under the homework's title, the machinery in `backprop_checks`:

- a set-up cell installs whatever the notebook imports that is missing (numpy and matplotlib pinned
  as in `assignment/requirements.txt`, otter-grader as in `requirements.txt`) and writes the public
  tests and `backprop_checks.py` where they are missing (never over an existing file: in grading,
  `tests/` holds the hidden cases too), from code and text packed into one line of the cell; it
  says when it is done;
- otter's init cell becomes `backprop_checks.notebook_grader()`, otter's grader with no notebook
  file needed, whose checks show their cases (what each checks, its points, its message) and the
  hidden checks to come, and which keeps the source each cell runs with; until the set-up cell has
  run, a stand-in whose checks say to run it;
- otter's export cell becomes `grader.submit()` (`backprop_checks.submit`), which runs every check,
  sums up each question's public points and the points the hidden checks decide, and says how to
  submit: in Colab, download the `.ipynb`; elsewhere, otter's export zip of the saved notebook,
  offered only when the saved file holds the cells as they ran and, run from the top, gets the same
  results (saying what it is doing meanwhile).

The set-up and closing cells carry otter's `otter_ignore` tag, so grading never runs them and never
calls pip; should an editor drop the tag, the set-up cell still replaces none of the grader's files.
"""

import ast
import base64
import re
import sys
import zlib
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
FORM = {"cellView": "form"}  # Colab shows the #@title and a run button; Jupyter shows the few lines of code
# The notebook's own runtime pins; the tool pins (otter-grader's) come from the build.
NOTEBOOK_REQUIREMENTS = Path(__file__).resolve().parent.parent / "assignment" / "requirements.txt"
IMPORT_NAMES = {"otter-grader": "otter"}  # packages whose module is named otherwise
# Imported, and never to install: IPython comes with every Python kernel (ipykernel needs it),
# nbformat with otter-grader, google.colab with Colab (where alone the checks import it), and
# backprop_checks is a file the set-up cell writes.
PROVIDED = {"IPython", "nbformat", "google", "backprop_checks"}

# The set-up cell runs this code, packed (zlib and base85) into one line of the cell, with the
# packages to install where missing ({module: pinned requirement}) and the files to write where
# missing ({path: text}).
SET_UP_CODE = """\
import importlib
import importlib.util
import pathlib
import subprocess
import sys

packages, files = {packages!r}, {files!r}
missing = [requirement for module, requirement in packages.items() if importlib.util.find_spec(module) is None]
if missing:
    print("Installing " + ", ".join(missing) + " ...", flush=True)
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *missing],
                         capture_output=True, text=True)
    if pip.returncode != 0:
        raise RuntimeError("Could not install " + ", ".join(missing) + ":\\n" + pip.stdout + pip.stderr)
    importlib.invalidate_caches()  # so that this kernel imports what was just installed
other = []
for name, text in files.items():
    path = pathlib.Path(name)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        sys.modules.pop("backprop_checks", None)  # the init cell imports the file just written
    elif path.read_text(encoding="utf-8") != text:
        other.append(name)
if other:
    print("Note: " + ", ".join(other) + " beside this notebook " + ("is" if len(other) == 1 else "are") + " not the "
          "one this notebook comes with (another version, or another homework?). If the checks fail strangely, "
          "delete " + ("it" if len(other) == 1 else "them") + " and run this cell again.")
print("The checks are set up. Run the cells in order; below each answer, its grader.check cell checks it.")
"""

SET_UP_SOURCE = """\
#@title Set up the checks: run this cell first
# Written by the homework's build: installs what the checks need where it is missing, and
# writes them beside this notebook (backprop_checks.py and tests/, packed in the line below),
# never over a file that is there.
import base64, zlib
exec(zlib.decompress(base64.b85decode("{packed}")).decode(), {{}})"""

INIT_SOURCE = """\
# Initialize Otter: `grader` runs each question's checks, which the set-up cell above writes.
try:
    from backprop_checks import notebook_grader
    grader = notebook_grader()
except ModuleNotFoundError:  # until the set-up cell has run, each check says to run it
    import types
    message = ('The checks are not set up yet: run the set-up cell ("Set up the checks", the first '
               "code cell), then this cell, then the check again.")
    not_set_up = lambda *question: print(message)
    grader = types.SimpleNamespace(check=not_set_up, check_all=not_set_up, submit=not_set_up)"""

SUBMISSION_MARKDOWN = """\
## Submission

Run every cell from the top first (in Colab: **Runtime > Run all**), then run the cell below. It
runs all the checks, sums up your points and what is left to do, and tells you how to submit:

- **In Colab:** save, then **File > Download > Download .ipynb** and upload that `.ipynb` file to
  Gradescope.
- **In Jupyter or VS Code:** save the notebook first (**File > Save**, or Ctrl+S). The cell checks
  that the saved file holds what you ran, runs it from the top as the grader will (a few seconds),
  writes a zip file next to it and shows a link to download it. Upload the zip file to Gradescope."""

CLOSING_SOURCE = """\
#@title Check everything and submit: run this cell last
# Runs every check and sums up your points, then says how to submit (see the text above).
grader.submit()"""


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


def set_up_source(folder: Path, packages: dict[str, str]) -> str:
    """The set-up cell, installing the missing `packages` and carrying `backprop_checks.py` and
    `tests/*.py` of `folder`, packed into one line."""
    paths = [folder / "backprop_checks.py", *sorted((folder / "tests").glob("*.py"))]
    files = {path.relative_to(folder).as_posix(): path.read_text(encoding="utf-8") for path in paths}
    code = SET_UP_CODE.format(packages=packages, files=files)
    return SET_UP_SOURCE.format(packed=base64.b85encode(zlib.compress(code.encode(), 9)).decode("ascii"))


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
    unpinned = third_party_imports(sources) - set(packages) - PROVIDED
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
    cells[export] = nbformat.v4.new_code_cell(CLOSING_SOURCE, metadata={**LOCKED, **FORM, "tags": [IGNORE_TAG]})
    set_up = nbformat.v4.new_code_cell(set_up_source(folder, packages),
                                       metadata={**LOCKED, **FORM, "tags": [IGNORE_TAG]})
    top = []
    if badge is not None:
        start = f"{badge}\n\nRun the first code cell before anything else: it sets up the checks."
        top.insert(0, nbformat.v4.new_markdown_cell(start, metadata=dict(LOCKED)))
    # The code comes after the homework's title (the first markdown cell after otter's init cell).
    title = next((i for i in range(init + 1, export - 1) if cells[i].cell_type == "markdown"), init)
    cells[title + 1:title + 1] = [set_up, nbformat.v4.new_code_cell(INIT_SOURCE, metadata=dict(LOCKED))]
    cells[init:init + 1] = top
