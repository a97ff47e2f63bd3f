"""Make a built notebook work on its own: in Colab, or downloaded alone, or renamed.

Otter's stock first cell, `otter.Notebook("backpropagation.ipynb")`, needs otter installed and
either a `tests/` folder beside the notebook or the notebook file itself on disk (to read tests
from its metadata). In Colab there is neither, and `grader.export()` refuses to run there. Otter's
own `runs_on: colab` only adds an unpinned `%pip install`, so the build reaches past otter here:

- a set-up cell installs whatever the notebook imports that is missing (numpy and matplotlib pinned
  as in `assignment/requirements.txt`, otter-grader as in `requirements.txt`), writes the public
  tests and `backprop_checks.py` from text the notebook carries where they are missing (never over
  an existing file: in grading, `tests/` holds the hidden cases too), and from then on keeps the
  source each cell runs with;
- otter's init cell becomes `otter.Notebook(tests_dir="tests")`, which needs no notebook file, made by
  `backprop_checks.notebook_grader` so that each check shows its cases (what each checks, its points,
  its message) and the hidden checks to come; until the set-up cell has run, a stand-in says to run it;
- otter's export cell becomes a closing cell that runs every check, sums up the public points of each
  question and what is left to do, and says how to submit: in Colab, download the `.ipynb`;
  elsewhere, otter's export zip of the saved notebook (without otter's log, which grading never
  reads), offered only when the saved file holds the cells as they ran and, run from the top, gets
  the same results.

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
          "jupyter": {"source_hidden": True}}  # JupyterLab and Notebook 7 collapse the code
# The notebook's own runtime pins; the tool pins (otter-grader's) come from the build.
NOTEBOOK_REQUIREMENTS = Path(__file__).resolve().parent.parent / "assignment" / "requirements.txt"
IMPORT_NAMES = {"otter-grader": "otter"}  # packages whose module is named otherwise
# Imported, and never to install: IPython comes with every Python kernel (ipykernel needs it), and
# backprop_checks is a file the set-up cell writes.
PROVIDED = {"IPython", "backprop_checks"}

SET_UP_TEMPLATE = '''\
#@title Set up the checks: run this cell first
# Written by the homework's build; leave it as it is. It installs what the notebook needs where it is
# missing, writes the public tests (tests/) and backprop_checks.py beside this notebook where they
# are missing, so the checks work in Colab, in a notebook downloaded alone and after a rename, and
# keeps the source each cell runs with, for the last cell. It never replaces a file or a package
# (when grading, tests/ holds more tests than these). Grading skips this cell.
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


def remember_cells_run():
    \"\"\"A dict that from now on holds the source each cell last ran with, by cell id (JupyterLab and
    Notebook 7 send the id), so that the last cell can tell whether the saved file holds what ran.\"\"\"
    cells_run = {{}}
    try:
        shell = get_ipython()
    except NameError:  # plain Python: no cells
        return cells_run

    def remember(info):
        if getattr(info, "cell_id", None):
            cells_run[info.cell_id] = info.raw_cell

    shell.events.register("pre_run_cell", remember)
    return cells_run


set_up_checks({packages}, {{
{files}
}})
if "_cells_run" not in globals():
    _cells_run = remember_cells_run()
'''

INIT_SOURCE = '''\
# Initialize Otter: each check cell below runs the checks of its question. The set-up cell above
# writes them (and installs otter where it is missing): run that cell first.
try:
    import backprop_checks

    grader = backprop_checks.notebook_grader(tests_dir="tests")
except ModuleNotFoundError:
    class ChecksNotSetUp:
        """Stands in for the grader until the set-up cell has run: every check says to run it."""

        def __getattr__(self, name):
            return lambda *args, **kwargs: print(
                'The checks are not set up yet: run the first code cell of the notebook ("Set up the '
                'checks", collapsed at the top), then this cell (grader = ...), then the check again.')

    grader = ChecksNotSetUp()'''

SUBMISSION_MARKDOWN = """\
## Submission

Run every cell from the top first (in Colab: **Runtime > Run all**), then run the cell below. It
runs all the checks, sums up your points and what is left to do, and tells you how to submit:

- **In Colab:** save, then **File > Download > Download .ipynb** and upload that `.ipynb` file to
  Gradescope.
- **In Jupyter or VS Code:** save the notebook first (**File > Save**, or Ctrl+S). The cell checks
  that the saved file holds what you ran, writes a zip file next to it and shows a link to download
  it. Upload the zip file to Gradescope."""

CLOSING_SOURCE = r'''#@title Check everything and submit: run this cell last
# Run every check, then submit: in Colab the notebook itself; elsewhere a zip of the notebook as
# saved, offered only if the saved file holds the cells as they ran here and, run from the top in a
# fresh kernel as the grader runs it, gets the results above.
import datetime
import glob
import html
import os
import urllib.parse
import warnings

import nbformat
from IPython.display import HTML
from otter.check.utils import grade_zip_file


def changed_since_run(notebook):
    """The first line, as it last ran here, of each saved code cell whose source is not the one it ran with."""
    ran = globals().get("_cells_run", {})  # kept by the first cell
    return [(ran[cell.id].strip().splitlines() or ["(an empty cell)"])[0]
            for cell in nbformat.read(notebook, as_version=4).cells
            if cell.cell_type == "code" and ran.get(cell.get("id"), cell.source) != cell.source]


def grade_saved(submission, notebook):
    """The checks' results on the zip, run in a fresh kernel. Otter passes on what that kernel's
    process wrote to stderr as a RuntimeWarning: its log and teardown noise ("Kernel is running over
    TCP without encryption ..."), never the student's warnings, which show in their own cells. That
    warning is dropped; any other is shown."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = grade_zip_file(submission, notebook, "tests")
    for warning in caught:
        if not (warning.category is RuntimeWarning and warning.filename == grade_zip_file.__code__.co_filename):
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    return results


def submit(checks, notebook):
    """Export the saved notebook and offer the zip if it holds what ran and gets the same results."""
    changed = changed_since_run(notebook)
    if changed:
        print("Not submitted: the saved notebook is not what you ran. These cells changed since they last ran, "
              "or were changed and not saved:\n" + "\n".join("    " + line for line in changed) +
              "\nSave the notebook (File > Save, or Ctrl+S), run the cells you changed again, then this cell.")
        return
    submission = f"{notebook[:-len('.ipynb')]}_{datetime.datetime.now():%Y_%m_%dT%H_%M_%S_%f}.zip"
    grader.export(notebook, export_path=submission, pdf=False, display_link=False, ignore_log=True)
    saved = grade_saved(submission, notebook)
    differ = [name for name, result in checks.results.items()
              if name not in saved.results or saved.results[name].score != result.score]
    if differ:
        os.remove(submission)
        print("Not submitted: run from the top in a fresh kernel, as the grader runs it, the saved notebook "
              f"gets other results ({', '.join(differ)}):\n\n{saved.summary()}\n\nSave the notebook "
              "(File > Save, or Ctrl+S), then Kernel > Restart Kernel and Run All Cells.")
        return
    display(HTML(f'<p>Your zip file is ready: click <a href="{html.escape(urllib.parse.quote(submission))}" '
                 f'download="{html.escape(submission)}" target="_blank">here</a> to download it.</p>'))
    print("The saved notebook, run from the top in a fresh kernel, gets the results above.\n"
          "To submit: upload the zip file this cell wrote to Gradescope.")


checks = grader.check_all()  # None while the checks are not set up (it says so)
if checks is not None:
    import backprop_checks

    display(backprop_checks.Summary.of(checks))
    try:
        import google.colab  # importable only in Colab
        in_colab = True
    except ImportError:
        in_colab = False
    notebooks = glob.glob("*.ipynb")  # otter's export finds the notebook so
    if in_colab:
        print("To submit: File > Download > Download .ipynb, then upload that .ipynb file to Gradescope.")
    elif len(notebooks) == 1:
        submit(checks, notebooks[0])
    else:
        print(f"Not submitted: this folder holds {len(notebooks)} notebooks, and the zip is made from the one "
              "notebook in this folder. Move this notebook into a folder of its own and run it there.")'''


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
    cells[export] = nbformat.v4.new_code_cell(CLOSING_SOURCE, metadata={**LOCKED, **HIDDEN, "tags": [IGNORE_TAG]})
    set_up = nbformat.v4.new_code_cell(set_up_source(folder, packages),
                                       metadata={**LOCKED, **HIDDEN, "tags": [IGNORE_TAG]})
    top = [set_up, nbformat.v4.new_code_cell(INIT_SOURCE, metadata=dict(LOCKED))]
    if badge is not None:
        start = f"{badge}\n\nRun the first code cell before anything else: it sets up the checks."
        top.insert(0, nbformat.v4.new_markdown_cell(start, metadata=dict(LOCKED)))
    cells[init:init + 1] = top
