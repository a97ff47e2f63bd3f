"""The untrusted half of grading: runs a student's cells and answers questions about them.

    python harness.py CELL_TIMEOUT_SECONDS

This process runs as an unprivileged user, in a sandbox where there is one, together with the
student's code: the cells run in an IPython shell in this very process. It holds no test and no
reference value, and it reads no file of the submission: the grading process sends it the cells.
It is a single file that needs only the standard library and what notebooks import (numpy,
matplotlib, IPython, otter), because its source alone is run, as `python -I -c SOURCE`: no file
of it is within the student's reach.

The protocol is one JSON object per line, requests on stdin and one answer per request on stdout:

    harness -> grader   {"ready": true}            once its imports are done, before any student code
    {"run": SOURCE, "seconds": S}                   -> {"ran": {"error": TYPE or null, "line": N or null}}
    {"snapshot": NAME}                              -> {"kept": NAME}
    {"get": NAME, "at": SNAPSHOT or null}           -> {"value": PLAIN}
    {"call": NAME, "args": [PLAIN, ...], "globals": {NAME: PLAIN} (optional), "at": ..., "seconds": S}
                                                    -> {"result": PLAIN, "args_after": [PLAIN, ...]}
                                                       or {"error": {"type": ..., "message": ...}}
    {"rerun": {"helpers": [I, ...], "cells": [I, ...], "clear": [NAME, ...], "inputs": {NAME: PLAIN},
               "names": [NAME, ...]}, "at": ..., "seconds": S}
                                                    -> {"values": {NAME: PLAIN}, "error": ... or null}
    {"end": true}                                   flushes the notebook's output and exits

Cells are numbered in the order they are run. `at` names a snapshot of the namespace taken at a
question's check: the request sees the names as they were then. Values cross as plain data only
(`encode_value`); the grading process trusts none of it beyond its shape. A call's `globals` are set
in the namespace for that call only (to see whether a function reads the notebook's globals). The
`seconds` of a run, a call or a rerun (all its cells together) is its time limit: past it, the
student's code is interrupted (CellTimeout) and the answer says so; the grading process, which
keeps its own clock, stops the whole process if no answer comes soon after.
"""

import contextlib
import importlib.util
import json
import os
import signal
import sys
import time
from typing import Any, Callable, Iterator, TextIO

MAX_ITEMS = 64
MAX_DEPTH = 3
MAX_ARRAY_SIZE = 1_000_000
MAX_MESSAGE = 300


class CellTimeout(BaseException):
    """Raised inside student code that runs past its time (a BaseException: `except Exception` misses it)."""


def encode_value(value: Any, depth: int = 0) -> dict:
    """A student's value as plain JSON data: numbers, float arrays, short lists, or a type name."""
    import numpy

    try:
        if value is None:
            return {"kind": "none"}
        if value is Ellipsis:
            return {"kind": "ellipsis"}
        if isinstance(value, (bool, numpy.bool_)):
            return {"kind": "other", "type": type(value).__name__}
        if isinstance(value, (int, float, numpy.integer, numpy.floating)):
            return {"kind": "number", "value": float(value)}
        if isinstance(value, numpy.ndarray):
            value = numpy.asarray(value)  # an np.matrix stays 2-D through ravel()
            if value.dtype.kind not in "iuf" or value.size > MAX_ARRAY_SIZE:
                return {"kind": "other", "type": f"array of {value.dtype}"}
            return {"kind": "array", "shape": list(value.shape), "data": value.astype(float).ravel().tolist()}
        if isinstance(value, (list, tuple)) and depth < MAX_DEPTH and len(value) <= MAX_ITEMS:  # a namedtuple too
            return {"kind": "list" if isinstance(value, list) else "tuple",
                    "items": [encode_value(v, depth + 1) for v in value]}
        if callable(value):
            return {"kind": "function"}
        return {"kind": "other", "type": type(value).__name__}
    except Exception:  # a student object whose conversion raises is just not plain data
        return {"kind": "other", "type": "object"}


def decode_argument(plain: dict) -> Any:
    """An argument for a student's function, from the grader's plain data."""
    import numpy

    if plain["kind"] == "array":
        return numpy.array(plain["data"], dtype=float).reshape(plain["shape"])
    if plain["kind"] in ("list", "tuple"):
        items = [decode_argument(item) for item in plain["items"]]
        return items if plain["kind"] == "list" else tuple(items)
    return plain.get("value")


SHELL_CONFIG = {"HistoryManager": {"enabled": False},  # no history database, no thread: safe to fork
                "InteractiveShell": {"xmode": "Plain", "colors": "nocolor"}}  # fancy tracebacks cost 0.4 s each


def warm_up() -> None:
    """Import what notebooks use and create the IPython shell: a process that forks after this gives
    every notebook a fresh copy for free. Not otter: in a process started for one notebook
    (Gradescope's, a replay's), the notebook's init cell finds no checks module and makes a
    stand-in grader, so only a notebook that imports otter itself pays for it (`quiet_otter`)."""
    import matplotlib

    matplotlib.use("Agg")  # plots are never graded
    import matplotlib.pyplot  # noqa: F401
    import numpy  # noqa: F401
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    shell = InteractiveShell.instance(config=Config(SHELL_CONFIG))
    # A kernel's shell draws plots inline; this one has no display, and a bare InteractiveShell
    # raises on `%matplotlib inline` or `%gui`, which would stop the rest of a correct cell.
    shell.enable_gui = lambda gui=None: None
    shell.enable_matplotlib = lambda gui=None: (gui, "agg")


OTTER_NOTEBOOK = "otter.check.notebook"  # where otter's `Notebook` is defined


def quiet_otter() -> None:
    """Make otter's own checks do nothing, however a cell calls them (`result = grader.check("q1.1")`,
    `display(grader.check(...))`): the grading process runs the tests, and run here they would raise,
    as there is no tests folder. Otter takes most of a second to import (pandas, nbconvert), which
    only a notebook that imports it should pay: if it is not imported yet, its `Notebook` is quieted
    as it is imported."""

    def quiet(module: Any) -> None:
        for method in ("check", "check_all", "export", "to_pdf"):
            setattr(module.Notebook, method, lambda *args, **kwargs: None)

    if OTTER_NOTEBOOK in sys.modules:
        quiet(sys.modules[OTTER_NOTEBOOK])
        return

    class QuietOnImport:
        """A finder that lets the usual ones find otter's notebook module, and quiets it once loaded."""

        @staticmethod
        def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
            if name != OTTER_NOTEBOOK:
                return None
            sys.meta_path.remove(QuietOnImport)
            spec = importlib.util.find_spec(name)
            load = spec.loader.exec_module

            def load_quietly(module: Any) -> None:
                load(module)
                quiet(module)

            spec.loader.exec_module = load_quietly
            return spec

    sys.meta_path.insert(0, QuietOnImport)


def flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a stream the notebook replaced or closed
            pass


def describe_error(error: BaseException) -> dict:
    return {"type": type(error).__name__, "message": str(error)[:MAX_MESSAGE]}


def failing_line(error: BaseException) -> Any:
    """The line of the cell where `error` was raised: the last traceback frame in the cell's code."""
    frames, traceback = [], error.__traceback__
    while traceback is not None:
        frames.append((traceback.tb_frame.f_code.co_filename, traceback.tb_lineno))
        traceback = traceback.tb_next
    if len(frames) < 2:  # the first frame is IPython's own; the second is the cell's
        return None
    cell = frames[1][0]
    return [line for filename, line in frames if filename == cell][-1]


class Student:
    """The student's namespace in an IPython shell, with a time limit on everything run in it."""

    def __init__(self, timeout: float):
        from IPython.core.interactiveshell import InteractiveShell

        warm_up()
        self.shell = InteractiveShell.instance()
        quiet_otter()
        self.timeout = timeout
        self.cells: list[str] = []
        self.snapshots: dict[str, dict] = {}
        signal.signal(signal.SIGALRM, self._interrupt)

    def _interrupt(self, *_: Any) -> None:
        raise CellTimeout()

    def limited(self, action: Callable[[], Any], seconds: float | None = None) -> Any:
        signal.setitimer(signal.ITIMER_REAL, max(self.timeout if seconds is None else seconds, 0.001))
        try:
            return action()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def run_cell(self, source: str, seconds: float | None = None) -> dict:
        self.cells.append(source)
        try:
            result = self.limited(lambda: self.shell.run_cell(source, store_history=False), seconds)
        except CellTimeout:
            return {"error": "CellTimeout", "line": None}
        finally:
            flush_output()  # what the cell printed reaches the log before the grader hears back
        error = result.error_in_exec or result.error_before_exec
        if error is None:
            return {"error": None, "line": None}
        return {"error": type(error).__name__, "line": failing_line(error)}

    @contextlib.contextmanager
    def namespace_at(self, snapshot: Any) -> Iterator[dict]:
        """The namespace as it was at `snapshot` (or as it is now), put back as it was afterwards."""
        namespace = self.shell.user_ns
        saved = dict(namespace)
        if snapshot is not None:
            namespace.clear()
            namespace.update(self.snapshots[snapshot])
        try:
            yield namespace
        finally:
            namespace.clear()
            namespace.update(saved)

    def rerun(self, namespace: dict, order: dict, seconds: float | None) -> dict:
        """Run earlier cells again with some names set first (the helper cells, whatever they raise,
        then the names set again, then the cells), all within `seconds`; return the names asked for."""
        import numpy

        for name in order["clear"]:
            namespace.pop(name, None)
        # Numbers as the notebook holds them (numpy floats, with .item() and .copy()), not Python's.
        inputs = {name: numpy.float64(value) if isinstance(value, float) else value
                  for name, value in ((name, decode_argument(plain)) for name, plain in order["inputs"].items())}

        seconds = float(seconds or self.timeout)
        end = time.monotonic() + seconds

        def run(index: int) -> None:
            code = compile(self.shell.transform_cell(self.cells[index]), f"<cell {index}>", "exec")
            self.limited(lambda: exec(code, namespace), end - time.monotonic())

        namespace.update(inputs)
        for index in order["helpers"]:
            with contextlib.suppress(BaseException):  # student code may raise anything, a timeout included
                run(index)
        namespace.update(inputs)
        error = None
        try:
            for index in order["cells"]:
                run(index)
        except CellTimeout:
            error = {"type": "CellTimeout", "message": f"it ran past {seconds:g} s"}
        except BaseException as raised:  # student code may raise anything, SystemExit included
            error = describe_error(raised)
        return {"values": {name: encode_value(namespace.get(name)) for name in order["names"]}, "error": error}

    def answer(self, request: dict) -> dict:
        """Evaluate one grader request in the student's namespace."""
        seconds = request.get("seconds")
        if "run" in request:
            return {"ran": self.run_cell(request["run"], seconds)}
        if "snapshot" in request:
            self.snapshots[request["snapshot"]] = dict(self.shell.user_ns)
            return {"kept": request["snapshot"]}
        with self.namespace_at(request.get("at")) as namespace:
            if "get" in request:
                return {"value": encode_value(namespace.get(request["get"]))}
            if "rerun" in request:
                return self.rerun(namespace, request["rerun"], seconds)
            function = namespace.get(request["call"])
            arguments = [decode_argument(argument) for argument in request["args"]]
            namespace.update({name: decode_argument(plain) for name, plain in (request.get("globals") or {}).items()})
            try:
                result = self.limited(lambda: function(*arguments), seconds)
            except CellTimeout:
                return {"error": {"type": "CellTimeout", "message": f"it ran past {seconds or self.timeout:g} s"}}
            except BaseException as error:  # student code may raise anything, SystemExit included
                return {"error": describe_error(error)}
            return {"result": encode_value(result), "args_after": [encode_value(a) for a in arguments]}


def serve(timeout: float, requests: TextIO, answers: TextIO) -> None:
    """Say ready, then answer requests until the grader says the end."""

    def emit(message: dict) -> None:
        answers.write(json.dumps(message) + "\n")
        answers.flush()

    student = Student(timeout)
    emit({"ready": True})
    for line in requests:
        request = json.loads(line)
        if request.get("end"):
            break
        emit(student.answer(request))
    flush_output()  # the notebook's own output, for the log, before the grader ends us


def main() -> int:
    timeout = float(sys.argv[1])
    # Keep private copies of the pipes; the student's own output and input go to /dev/null.
    requests = os.fdopen(os.dup(0), "r")
    answers = os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_RDWR)
    for descriptor in (0, 1, 2):
        os.dup2(null, descriptor)
    serve(timeout, requests, answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
