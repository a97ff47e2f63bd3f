"""The untrusted half of grading: runs a student's notebook and answers questions about it.

    python harness.py NOTEBOOK CELL_TIMEOUT_SECONDS

This process runs inside the sandbox, as an unprivileged user, together with the student's code:
the notebook's cells run in an IPython shell in this very process. It holds no test and no
reference value. After each `grader.check("q…")` cell it stops and answers the grading process's
requests, one JSON object per line (requests on stdin, answers on stdout):

    harness -> grader   {"checkpoint": ["q1.1"]}   ...   {"done": true, "status": "..."}
    grader -> harness   {"get": "f0"}   {"call": "backward_pass", "args": [...]}   {"continue": true}
    harness -> grader   {"value": ...}   {"result": ..., "args_after": [...]}   {"error": "...", "type": "..."}

Values cross as plain data only (`to_plain`). The student's code can tamper with anything here,
and the grading process trusts none of it beyond its shape: a forged answer is just an answer, and
it is compared with references that never enter this process.
"""

import json
import os
import re
import signal
import sys
from typing import Any, Callable, TextIO

import nbformat

CHECK_CALL = re.compile(r"""grader\.check\(\s*["']([\w.]+)["']\s*\)""")
# Lines that only drive otter's checks or install packages: grading replaces them with `pass`.
CHECK_LINE = re.compile(r"^([ \t]*)(grader\.(check|check_all|export)\(.*|[%!]pip\b.*)$", re.M)
MAX_ITEMS = 64


class CellTimeout(BaseException):
    """Raised inside student code that runs past its time (a BaseException: `except Exception` misses it)."""


def to_plain(value: Any, depth: int = 0) -> dict:
    """A student's value as plain JSON data: numbers, float arrays, short lists, or a type name."""
    import numpy

    if value is None:
        return {"kind": "none"}
    if value is Ellipsis:
        return {"kind": "ellipsis"}
    if isinstance(value, (bool, numpy.bool_)):
        return {"kind": "other", "type": type(value).__name__}
    if isinstance(value, (int, float, numpy.integer, numpy.floating)):
        return {"kind": "number", "value": float(value)}
    if isinstance(value, numpy.ndarray):
        if value.dtype.kind not in "iuf":
            return {"kind": "other", "type": f"array of {value.dtype}"}
        return {"kind": "array", "shape": list(value.shape), "data": value.astype(float).ravel().tolist()}
    if isinstance(value, (list, tuple)) and depth < 3 and len(value) <= MAX_ITEMS:
        return {"kind": type(value).__name__, "items": [to_plain(v, depth + 1) for v in value]}
    if callable(value):
        return {"kind": "function"}
    return {"kind": "other", "type": type(value).__name__}


def from_plain(plain: dict) -> Any:
    """Arguments for a student's function, from the grader's plain data."""
    import numpy

    if plain["kind"] == "array":
        return numpy.array(plain["data"], dtype=float).reshape(plain["shape"])
    if plain["kind"] in ("list", "tuple"):
        items = [from_plain(item) for item in plain["items"]]
        return items if plain["kind"] == "list" else tuple(items)
    return plain.get("value")


def segments(notebook: nbformat.NotebookNode) -> list[tuple[list[str], list[str]]]:
    """Split the code at the check cells: [(questions checked after these cells, cell sources)]."""
    parts, sources = [], []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if "otter_ignore" not in cell.get("metadata", {}).get("tags", []):  # skipped, as otter's grading does
            sources.append(CHECK_LINE.sub(r"\1pass", cell.source))
        checked = CHECK_CALL.findall(cell.source)
        if checked:
            parts.append((checked, sources))
            sources = []
    parts.append(([], sources))
    return parts


SHELL_CONFIG = {"HistoryManager": {"enabled": False},  # no history database, no thread: safe to fork
                "InteractiveShell": {"xmode": "Plain", "colors": "nocolor"}}  # fancy tracebacks cost 0.4 s each


def warm_up() -> None:
    """Import what notebooks use and create the IPython shell: a process that forks after this
    gives every notebook a fresh copy for free."""
    import matplotlib

    matplotlib.use("Agg")  # plots are never graded
    import matplotlib.pyplot  # noqa: F401
    import numpy  # noqa: F401
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    InteractiveShell.instance(config=Config(SHELL_CONFIG))


class Student:
    """The student's namespace in an IPython shell, with a time limit on everything run in it."""

    def __init__(self, timeout: float):
        from IPython.core.interactiveshell import InteractiveShell

        warm_up()
        self.shell = InteractiveShell.instance()
        self.timeout = timeout
        self.problems: list[str] = []
        signal.signal(signal.SIGALRM, self._interrupt)

    def _interrupt(self, *_: Any) -> None:
        raise CellTimeout()

    def limited(self, action: Callable[[], Any]) -> Any:
        signal.setitimer(signal.ITIMER_REAL, self.timeout)
        try:
            return action()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def run_cell(self, source: str) -> None:
        try:
            result = self.limited(lambda: self.shell.run_cell(source, store_history=False))
        except CellTimeout:
            result = None
        first = next((line.strip() for line in source.splitlines() if line.strip()), "")[:60]
        if result is None or isinstance(result.error_in_exec, CellTimeout):
            self.problems.append(f"a cell ran past {self.timeout:g} s and was stopped ({first})")
        elif isinstance(result.error_in_exec, MemoryError):
            self.problems.append(f"a cell ran out of memory ({first})")

    def answer(self, request: dict) -> dict:
        """Evaluate one grader request in the student's namespace."""
        namespace = self.shell.user_ns
        try:
            if "get" in request:
                return {"value": to_plain(namespace.get(request["get"]))}
            function = namespace.get(request["call"])
            arguments = [from_plain(argument) for argument in request["args"]]
            result = self.limited(lambda: function(*arguments))
            return {"result": to_plain(result), "args_after": [to_plain(a) for a in arguments]}
        except CellTimeout:
            return {"error": f"it ran past {self.timeout:g} s", "type": "TimeoutError"}
        except BaseException as error:  # student code may raise anything, SystemExit included
            return {"error": f"{type(error).__name__}: {error}"[:500], "type": type(error).__name__}


def grade_here(notebook_path: str, timeout: float, requests: TextIO, answers: TextIO) -> None:
    """Run the notebook here and answer requests until it is done."""

    def emit(message: dict) -> None:
        answers.write(json.dumps(message) + "\n")
        answers.flush()

    try:
        notebook = nbformat.read(notebook_path, as_version=4)
    except Exception as error:  # any unreadable notebook is a result, not a crash
        emit({"done": True, "status": f"unreadable notebook ({type(error).__name__})"})
        return
    student = Student(timeout)
    for questions, sources in segments(notebook):
        for source in sources:
            student.run_cell(source)
        emit({"checkpoint": questions})
        for line in requests:
            request = json.loads(line)
            if request.get("continue"):
                break
            emit(student.answer(request))
    for stream in (sys.stdout, sys.stderr):  # the notebook's own output, for the log, before the grader ends us
        try:
            stream.flush()
        except Exception:  # a stream the notebook replaced or closed
            pass
    emit({"done": True, "status": "; ".join(dict.fromkeys(student.problems)) or "completed"})


def main() -> int:
    notebook_path, timeout = sys.argv[1], float(sys.argv[2])
    # Keep private copies of the pipes; the student's own output and input go to /dev/null.
    requests = os.fdopen(os.dup(0), "r")
    answers = os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_RDWR)
    for descriptor in (0, 1, 2):
        os.dup2(null, descriptor)
    grade_here(notebook_path, timeout, requests, answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
