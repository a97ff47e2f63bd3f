"""Grading inside the sandbox: otter's own autograder, with the notebook run in this process.

Everything in this module runs inside the sandbox, as the unprivileged sandbox user, in one process
with the student's code. Nothing it says is trusted for more than stock otter trusts its kernel: it
reports JSON lines on a pipe, and the process outside the sandbox decides what to record.

Otter's autograder (`otter.run.run_autograder.main`) runs unchanged except for one step: where
`grade_notebook` would start a Jupyter kernel and run the notebook through nbclient, the cells run
here in an IPython shell (`InProcessExecutor` stands in for nbconvert's ExecutePreprocessor, and
otter's log server, which would loop in one process, is left out). That saves the kernel start, gives every cell a timeout (otter has none,
upstream issue 469), and streams each question's result as soon as its check has run, so a cell
that hangs or kills the process later costs only the questions after it.
"""

import json
import os
import pickle
import shutil
import signal
import zipfile
from pathlib import Path
from typing import Any, Optional

import matplotlib

matplotlib.use("Agg")  # no display in the sandbox; plots are never graded
# Imported here, before the fork, so that every sandbox starts warm; some only to that end.
import matplotlib.backends.backend_agg  # noqa: E402,F401
import matplotlib.pyplot  # noqa: E402,F401
import nbconvert.preprocessors  # noqa: E402
import numpy  # noqa: E402,F401
import otter.execute  # noqa: E402
import otter.execute.preprocessor  # noqa: E402,F401
import otter.run.run_autograder.runners.python_runner  # noqa: E402,F401
import pandas.io.formats.string  # noqa: E402,F401
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from otter.execute import Checker  # noqa: E402
from otter.run.run_autograder import AutograderConfig  # noqa: E402
from otter.run.run_autograder import main as run_autograder  # noqa: E402
from otter.run.run_autograder.utils import OtterRuntimeError  # noqa: E402
from otter.test_files import GradingResults  # noqa: E402
from traitlets.config import Config  # noqa: E402

AUTOGRADER = Path("/autograder")
INCOMING = AUTOGRADER / "incoming"
SUBMISSION = AUTOGRADER / "submission"
RESULTS = AUTOGRADER / "results" / "results.json"
SOURCE_LINE_CHARS = 60


SHELL_CONFIG = {"HistoryManager": {"enabled": False},  # no history database, no thread: safe to fork
                "InteractiveShell": {"xmode": "Plain", "colors": "nocolor"}}  # fancy tracebacks cost 0.4 s each


def warm_up() -> None:
    """Create the IPython shell before forking, so that each sandbox gets a fresh copy for free."""
    InteractiveShell.instance(config=Config(SHELL_CONFIG))


class CellTimeout(BaseException):
    """Raised in a cell that runs too long; a BaseException, so `except Exception` cannot swallow it."""


class Reporter:
    """JSON lines to the process outside the sandbox."""

    def __init__(self, descriptor: int):
        self.descriptor = descriptor

    def send(self, **message: Any) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(self.descriptor, data):]


def first_line(source: str) -> str:
    """A cell's first non-blank line, short enough for a status message."""
    line = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return line if len(line) <= SOURCE_LINE_CHARS else line[:SOURCE_LINE_CHARS - 3] + "..."


def place_submission(incoming: Path) -> None:
    """Put the submission where Gradescope does: files as they are, a zip extracted (as `otter run`)."""
    SUBMISSION.mkdir(exist_ok=True)
    (AUTOGRADER / "submission_metadata.json").write_text("{}")
    if incoming.is_dir():
        for entry in incoming.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.copytree(entry, SUBMISSION / entry.name, symlinks=True)
            else:
                shutil.copy2(entry, SUBMISSION / entry.name, follow_symlinks=False)
    elif incoming.suffix == ".zip":
        with zipfile.ZipFile(incoming) as archive:
            archive.extractall(SUBMISSION)
    else:
        shutil.copy(incoming, SUBMISSION / incoming.name)


class InProcessExecutor:
    """Stands in for nbconvert's ExecutePreprocessor in `otter.execute.grade_notebook`."""

    reporter: Reporter
    cell_seconds: float
    ag_config: AutograderConfig

    def __init__(self, config: Config, **_: Any):
        self.config = config

    def preprocess(self, nb: Any, resources: Optional[dict] = None) -> tuple[Any, Optional[dict]]:
        shell = InteractiveShell.instance(config=Config(SHELL_CONFIG))
        reported = 0
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            source = first_line(cell.source)
            self.reporter.send(event="cell", source=source)
            error = self.run_cell(shell, cell.source)
            if isinstance(error, CellTimeout):
                self.reporter.send(event="timeout", source=source, seconds=self.cell_seconds)
            elif isinstance(error, MemoryError):
                self.reporter.send(event="memory", source=source)
            checked = Checker.get_results()
            if len(checked) != reported:
                reported = len(checked)
                partial = GradingResults(list(checked)).to_gradescope_dict(self.ag_config)
                self.reporter.send(event="partial", results=partial)
        self.save_checked_if_unsaved()
        return nb, resources

    def run_cell(self, shell: InteractiveShell, source: str) -> Optional[BaseException]:
        """Run one cell with a timeout; return the error it raised, if any."""

        def interrupt(*_: Any) -> None:
            raise CellTimeout()

        signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, self.cell_seconds)
        try:
            result = shell.run_cell(source, store_history=False)
        except CellTimeout as timeout:  # the alarm rang just outside the cell's own code
            return timeout
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        return result.error_in_exec or result.error_before_exec

    def save_checked_if_unsaved(self) -> None:
        """Grade what was checked when otter's final cell (which saves the results) did not finish."""
        path = Path(self.config.GradingPreprocessor.results_path)
        if not path.exists() or path.stat().st_size == 0:
            path.write_bytes(pickle.dumps(GradingResults(list(Checker.get_results()))))


def _no_logging_server() -> tuple[tuple[str, int], Any]:
    """Otter's log server would feed the notebook's log records back into itself in one process."""
    return ("127.0.0.1", 9), lambda: None


def grade(control: int, incoming_name: str, cell_seconds: float) -> int:
    """Grade the submission bound at /autograder/incoming as Gradescope would; report on `control`."""
    reporter = Reporter(control)
    try:
        place_submission(INCOMING / incoming_name)
    except (OSError, zipfile.BadZipFile, ValueError) as error:
        reporter.send(event="error", message=f"could not unpack the submission: {error}")
        return 0
    if not any(SUBMISSION.glob("*.ipynb")):  # otter would grade the support files as a script
        reporter.send(event="error", message="the submission holds no notebook (.ipynb)")
        return 0
    config = json.loads((AUTOGRADER / "source" / "otter_config.json").read_text())
    InProcessExecutor.reporter = reporter
    InProcessExecutor.cell_seconds = cell_seconds
    InProcessExecutor.ag_config = AutograderConfig(config)
    nbconvert.preprocessors.ExecutePreprocessor = InProcessExecutor
    otter.execute.start_server = _no_logging_server
    try:
        run_autograder(str(AUTOGRADER))
    except OtterRuntimeError as error:  # otter also explains it to the student in results.json
        reporter.send(event="error", message=str(error))
    except BaseException as error:
        reporter.send(event="error", message=f"{type(error).__name__}: {error}")
    if RESULTS.exists():
        reporter.send(event="final", results=json.loads(RESULTS.read_text()))
    return 0
