"""The trusted half of grading: runs the tests where the student's code cannot reach them.

Stock otter runs the tests inside the student's kernel, so the student's code can patch the test
runner, numpy's comparisons or the results file. Here the student's cells run in another process
(`harness.py`, started by a `launch` function that confines it: bubblewrap locally, an unprivileged
user on Gradescope), and this process sends it the cells one by one and asks it for answers over a
pipe. Only plain JSON data comes back; this process rebuilds floats and float arrays from it and
runs otter's own test files on them, with its own numpy and its own copy of `backprop_checks`.

The cells run in order; at each question's check (its last `grader.check` call, or the end of the
notebook) the namespace is kept as a snapshot. The questions are judged in their own order against
their snapshots (see `Session`), in two phases, so that nothing the hidden cases send can come back
in a message:

1. **Public.** A question's public cases run at its check, once every question before it has been
   judged (or after the last cell).
2. **Hidden.** After the last cell, the hidden cases of every question. Their messages carry no
   text the student's code chose (see `StudentValues`).

If the student's process stops early, a fresh one replays the cells up to the last check reached.

All of it fits one time budget (`Budget`), planned from the platform's overall timeout: the cells
get a share, each question's checks an equal share of the rest, and every request to the student's
process a time limit of its own within them (`Channel`: a process that stops answering or reading
is stopped at its deadline). A call into a student's function may take a few seconds (a multiple of
what the reference solution takes, with a floor), so a function that never returns costs the cases
that call it, in seconds, and never another question's time.

Every status is derived here, from what this process saw: the time each cell took on its own
clock, how the process ended, and the kinds of error the harness reported (never its words).
"""

import json
import math
import os
import re
import select
import selectors
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol, Sequence

import nbformat
import numpy as np

from .submission import Cell, checkpoints, code_cells, printable, scan_for_tampering

if TYPE_CHECKING:
    from otter.test_files.exception_test import ExceptionTestFile

HARNESS = Path(__file__).with_name("harness.py")
LARGEST_MESSAGE = 20_000_000  # bytes of one protocol line from the harness
MAX_DEPTH, MAX_ITEMS, MAX_DIMENSIONS, MAX_EXTENT = 3, 64, 4, 10_000
READY_SECONDS = 120.0  # how long the harness may take to import what it needs
# The error types a hidden case may name: those a mistake in this homework raises, Python's own.
# Anything else is "Exception": the name of a class, or a choice among many types, could carry data.
SAFE_ERROR_TYPES = frozenset({
    "ArithmeticError", "AssertionError", "AttributeError", "CellTimeout", "FloatingPointError", "IndexError",
    "KeyError", "LookupError", "MemoryError", "NameError", "NotImplementedError", "OverflowError",
    "RecursionError", "RuntimeError", "SystemExit", "TypeError", "UnboundLocalError", "ValueError",
    "ZeroDivisionError"})


class HarnessStopped(BaseException):
    """The student's process ended, hung, or broke the protocol: the reason is the message. (A
    BaseException: the checks' `except Exception`, meant for what the student's code raised, lets
    it through to the grading, which marks the cases left unjudged.)"""


class StoppedAtLimit(HarnessStopped):
    """The student's process did not answer by its deadline (its code could not be interrupted) and
    was stopped."""


class GraderFailure(Exception):
    """The grader's own environment failed (the student's process never got ready): never a student's zero."""


class Launched(Protocol):
    """The student's process as the launcher returns it: pipes to talk to it, and a way to end it."""

    stdin: Any
    stdout: Any

    def kill(self) -> None: ...

    def wait(self) -> int: ...

    def mute(self) -> None:
        """Stop keeping what the process prints (hidden data is about to enter it)."""

    def describe_end(self) -> Optional[str]:
        """What ended the process, where the launcher knows more than its exit code (memory, say)."""


# `launch(replay)` starts a harness; `replay` is true for a second process, which must not be a
# fork of this one (this process holds the tests by then).
Launcher = Callable[[bool], Launched]


class Unreadable:
    """Stands for a student value that is not plain data; checks reject it as not a number."""


def unreadable(type_name: str) -> Unreadable:
    """An `Unreadable` whose type name is the student's, so failure messages can name it."""
    name = re.sub(r"\W", "_", str(type_name))[:40] or "object"
    return type(name if name[0].isalpha() else f"_{name}", (Unreadable,), {})()


def encode_argument(value: Any) -> dict:
    """Encode a test's argument (numbers, arrays, lists of them) for the harness."""
    if isinstance(value, np.ndarray):
        return {"kind": "array", "shape": list(value.shape), "data": value.astype(float).ravel().tolist()}
    if isinstance(value, (list, tuple)):
        return {"kind": type(value).__name__, "items": [encode_argument(v) for v in value]}
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):  # a depth or a size: it stays whole
        return {"kind": "number", "value": int(value)}
    return {"kind": "number", "value": float(value)}


def decode_answer(plain: Any, hidden: bool = False, depth: int = 0) -> Any:
    """Rebuild a student's value from the harness's JSON, accepting only well-formed plain data.

    With `hidden`, type names (which the student's code chooses) are not kept.
    """
    if not isinstance(plain, dict):
        return unreadable("malformed_answer")
    kind = plain.get("kind")
    if kind == "none":
        return None
    if kind == "ellipsis":
        return Ellipsis
    try:
        if kind == "number" and type(plain.get("value")) in (int, float):
            return float(plain["value"])
        if kind == "array":
            return _array(plain)
    except OverflowError:  # an integer too large for a float: not plain data
        return unreadable("malformed_answer")
    if kind in ("list", "tuple") and isinstance(plain.get("items"), list) and depth < MAX_DEPTH \
            and len(plain["items"]) <= MAX_ITEMS:
        items = [decode_answer(item, hidden, depth + 1) for item in plain["items"]]
        return items if kind == "list" else tuple(items)
    if kind == "other" and not hidden:
        return unreadable(plain.get("type", "object"))
    return unreadable("object" if kind == "other" else "malformed_answer")


def _array(plain: dict) -> Any:
    shape, data = plain.get("shape"), plain.get("data")
    valid = (isinstance(shape, list) and len(shape) <= MAX_DIMENSIONS
             and all(type(n) is int and 0 <= n <= MAX_EXTENT for n in shape)
             and isinstance(data, list) and len(data) == int(np.prod(shape, dtype=np.int64))
             and all(type(v) in (int, float) for v in data))
    return np.array(data, dtype=float).reshape(shape) if valid else unreadable("malformed_array")


def write_back(original: Any, plain_after: Any, hidden: bool = False) -> None:
    """Make an argument look the way the student's function left it (to catch in-place changes)."""
    after = decode_answer(plain_after, hidden)
    if isinstance(original, np.ndarray):
        if isinstance(after, np.ndarray) and after.shape == original.shape:
            original[...] = after
        else:  # reshaped in place (`net_input.shape = ...`): a change the check must see
            original[...] = np.nan
    elif isinstance(original, list) and isinstance(after, list):
        original[:] = after


class Channel:
    """JSON lines to and from the student's process, with a deadline."""

    def __init__(self, process: Launched, seconds: float, limit: Optional[str] = None):
        self.process = process
        self.selector = selectors.DefaultSelector()
        self.selector.register(process.stdout, selectors.EVENT_READ)
        self.requests = process.stdin.fileno()
        os.set_blocking(self.requests, False)
        self.buffer = b""
        self.restart_clock(seconds, limit)

    def restart_clock(self, seconds: float, limit: Optional[str] = None) -> None:
        """Give what is sent and received from now on `seconds`; `limit` says whose limit that is."""
        self.limit = limit or f"{seconds:g} s"
        self.deadline = time.monotonic() + seconds

    def _time_left(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise StoppedAtLimit(f"stopped at the wall-clock limit ({self.limit})")
        return remaining

    def receive(self) -> dict:
        while b"\n" not in self.buffer:
            if not self.selector.select(timeout=self._time_left()):
                continue
            chunk = self.process.stdout.read1(1 << 20)
            if not chunk:
                raise HarnessStopped(self._ended())
            self.buffer += chunk
            if len(self.buffer) > LARGEST_MESSAGE:
                raise HarnessStopped("the notebook's answers were too large")
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            message = json.loads(line)
        except Exception:  # ValueError, and RecursionError for data nested too deep: any is a broken protocol
            message = None
        if not isinstance(message, dict):
            raise HarnessStopped("the notebook process broke the grading protocol")
        return message

    def _ended(self) -> str:
        self.process.kill()  # it closed its end of the pipe: whatever is left of it goes too
        code = self.process.wait()
        known = self.process.describe_end()
        if known:
            return known
        if code < 0 or code > 128:  # Popen's -N, or a shell's 128 + N, for signal N
            return f"the notebook process was killed by signal {-code if code < 0 else code - 128}"
        return f"the notebook process ended early (exit code {code})"

    def send(self, message: dict) -> None:
        """Write one request, on the same clock as the answers: a process that stops reading (its
        pipe full) stops the grading of this notebook at the deadline, never the grader."""
        data = (json.dumps(message) + "\n").encode()
        while data:
            if not select.select([], [self.requests], [], self._time_left())[1]:
                continue
            try:
                data = data[os.write(self.requests, data):]
            except BlockingIOError:  # the pipe filled up between select and write
                continue
            except (BrokenPipeError, OSError, ValueError):
                raise HarnessStopped(self._ended()) from None

    def request(self, message: dict) -> dict:
        self.send(message)
        return self.receive()


@dataclass
class CellRun:
    """What happened to one cell, as seen from here."""

    index: int
    seconds: float
    error: Optional[str]  # the kind of error the harness reported, if any
    line: Optional[int]
    limit: float = math.inf  # the time it was given

    @property
    def timed_out(self) -> bool:
        return stopped_at_limit(self.error, self.seconds, self.limit)


def stopped_at_limit(error: Any, took: float, limit: float) -> bool:
    """Whether a request (a cell, a call, a rerun) stopped at its time limit: the harness says so
    (CellTimeout) and this process's clock agrees (a claim of a timeout it did not take is not believed)."""
    return error == "CellTimeout" and took >= 0.9 * limit


# The time plan of one notebook's grading (see `Budget`). Its results are ready by FINISH of the
# platform's overall timeout; the rest of the timeout is for what comes before and after (the
# platform starting the container and Python, writing the results), so that no notebook is ever
# killed without a result.
FINISH = 0.75
CELLS_SHARE = 0.55  # of the time left once the student's process is ready: the notebook's cells
# A call into a student's function may take REFERENCE_MULTIPLE times what the reference solution's
# call took when the build graded it (`call_limit`), and never less than FLOOR_SECONDS; so may a
# rerun of a cell that ran out of time when the notebook ran.
FLOOR_SECONDS = 3.0
REFERENCE_MULTIPLE = 20
GRACE_SECONDS = 2.0  # for the student's process to answer once its own alarm has stopped the code
CELLS = "the cells"  # the part of the budget that runs the notebook's cells (the others are questions)


def call_limit(reference_seconds: float) -> float:
    """The time limit of a call into a student's function whose reference solution took
    `reference_seconds`: REFERENCE_MULTIPLE times that, rounded up to a power of two seconds (so
    that a build measuring it again writes the same number), and at least FLOOR_SECONDS."""
    wanted = REFERENCE_MULTIPLE * reference_seconds
    return FLOOR_SECONDS if wanted <= FLOOR_SECONDS else 2.0 ** math.ceil(math.log2(wanted))


def rerun_allowance(run: CellRun) -> float:
    """What a cell may take when the checks run it again: twice what it took when the notebook ran
    and a second more, at least FLOOR_SECONDS; a cell that ran out of time then, FLOOR_SECONDS (it
    had its whole limit once, and ran past it)."""
    return FLOOR_SECONDS if run.timed_out else max(FLOOR_SECONDS, 2 * run.seconds + 1)


class Budget:
    """The time one notebook's grading may take: everything ends by FINISH of the platform's overall
    timeout (`overall` seconds from `started`).

    Once the student's process is ready, `plan` shares out the time left: CELLS_SHARE for the
    notebook's cells, and the rest in equal shares, one per question, for its checks (public and
    hidden, the reruns of its cells, a replay of the notebook if its process stopped). Each part is
    charged what it takes on this process's clock (`switch`), and may go on until the end less what
    every other unfinished part still keeps of its share: what a part leaves unused (the cells of a
    quick notebook, a question's checks once done) goes to the parts after it, and no part ever
    takes what another keeps. Within that, every request to the student's process has a limit of
    its own (`StudentProcess.request`): a cell's, a call's (`call_seconds`, by function), or a
    rerun's.
    """

    def __init__(self, overall: float, cell_seconds: float, call_seconds: Optional[dict[str, float]] = None,
                 started: Optional[float] = None):
        self.overall, self.cell_seconds = overall, cell_seconds
        self.call_seconds = dict(call_seconds or {})
        self.end = (time.monotonic() if started is None else started) + FINISH * overall
        self.shares: dict[str, float] = {}  # each part's share, as planned
        self.kept: dict[str, float] = {}  # what each unfinished part still keeps of it
        self.part: Optional[str] = None  # the part being charged now
        self.since = time.monotonic()
        self.longest_calls: dict[str, float] = {}  # by function: the longest call that returned, in seconds

    def plan(self, questions: Sequence[str]) -> None:
        """Share out the time left between the cells and the checks of each question."""
        left = max(0.0, self.end - time.monotonic())
        self.shares = {CELLS: CELLS_SHARE * left, **dict.fromkeys(questions, (1 - CELLS_SHARE) * left / len(questions))}
        self.kept = dict(self.shares)

    def switch(self, part: Optional[str]) -> None:
        """Charge the time since the last switch to the part being charged, and charge `part` from now."""
        now = time.monotonic()
        if self.part in self.kept:
            self.kept[self.part] = max(0.0, self.kept[self.part] - (now - self.since))
        self.part, self.since = part, now

    def done(self, part: str) -> None:
        """`part` needs no more time: what it keeps goes to the parts after it."""
        if self.part == part:
            self.switch(None)
        self.kept.pop(part, None)

    def time_left(self) -> float:
        """How long the part being charged may still go on."""
        others = sum(kept for part, kept in self.kept.items() if part != self.part)
        return self.end - others - time.monotonic()

    def call_limit(self, function: str) -> float:
        """The limit of a call to `function`: the configuration's (the build writes `call_limit` of the
        reference solution's time), else FLOOR_SECONDS."""
        return float(self.call_seconds.get(function, FLOOR_SECONDS))

    def describe(self) -> str:
        """The part being charged, in words."""
        return {None: "the grading", CELLS: "the notebook's cells"}.get(self.part, f"the checks of {self.part}")


class OutOfTime(BaseException):
    """The part being charged has no time left for another request: the message says whose time.
    (A BaseException, as HarnessStopped: the checks' `except Exception` lets it through.)"""


@dataclass
class Answer:
    """The student's process's answer to a request with a time limit, and whether it ran out of it."""

    message: dict
    ran_out: bool  # `stopped_at_limit`
    limit: float  # the time it was given
    whole: bool  # whether that was the request's own limit (not cut to the time its part had left)


def error_kind(answer: dict) -> Any:
    """The kind of error an answer reports (a cell's, a call's or a rerun's), as the harness says."""
    ran = answer.get("ran")
    error = ran.get("error") if isinstance(ran, dict) else answer.get("error")
    return error.get("type") if isinstance(error, dict) else error


class StudentProcess:
    """The student's process, seen from the grading process: the cells sent so far, and requests,
    each within its limit and the time left of the part of the budget being charged."""

    def __init__(self, launched: Launched, budget: Budget):
        self.launched, self.budget = launched, budget
        self.sources: list[str] = []
        ready = min(READY_SECONDS, max(0.0, budget.time_left()))
        self.channel = Channel(launched, ready, f"{ready:.1f} s to get ready")
        try:
            ready = self.channel.receive()
        except HarnessStopped as stopped:
            raise GraderFailure(f"the notebook's process failed before it was ready ({stopped})") from None
        if ready != {"ready": True}:
            raise GraderFailure("the notebook's process did not report ready")
        self.alive = True

    def run(self, cell: Cell, limit: float, left_out: bool = False) -> CellRun:
        """Run `cell` within `limit` seconds; a cell `left_out` runs as an empty one (its place kept)."""
        started = time.monotonic()
        answer = self.limited({"run": "" if left_out else cell.source}, limit, "a cell")
        self.sources.append(cell.source)
        ran = answer.message.get("ran") if isinstance(answer.message.get("ran"), dict) else {}
        error, line = ran.get("error"), ran.get("line")
        return CellRun(len(self.sources) - 1, time.monotonic() - started, error if isinstance(error, str) else None,
                       line if type(line) is int else None, answer.limit)

    def limited(self, message: dict, limit: float, kind: str) -> Answer:
        """Send `message` with a time limit of `limit` seconds (less if its part has less left), which
        the harness enforces with its own alarm; the process is stopped a grace after it (GRACE_SECONDS,
        or half of what its part has left if that is less: a part never runs past its time)."""
        left = self.budget.time_left()
        grace = min(GRACE_SECONDS, left / 2)
        seconds = min(limit, left - grace)
        if seconds <= 0.01:
            raise OutOfTime(f"the time for {self.budget.describe()} ran out")
        whole = seconds == limit
        started = time.monotonic()
        answer = self.request({**message, "seconds": seconds}, seconds + grace,
                              f"{seconds:g} s for {kind}" if whole else f"{seconds:.1f} s left for {self.budget.describe()}")
        took = time.monotonic() - started
        ran_out = stopped_at_limit(error_kind(answer), took, seconds)
        if "call" in message and not ran_out:  # what the build keeps of the reference solution's calls
            self.budget.longest_calls[message["call"]] = max(took, self.budget.longest_calls.get(message["call"], 0.0))
        return Answer(answer, ran_out, seconds, whole)

    def request(self, message: dict, seconds: float = FLOOR_SECONDS + GRACE_SECONDS, limit: Optional[str] = None) -> dict:
        """Send `message`; its answer must come within `seconds` (`limit` says whose) and the time its part has left."""
        left = self.budget.time_left()
        if left <= 0.01:
            raise OutOfTime(f"the time for {self.budget.describe()} ran out")
        if left < seconds:
            seconds, limit = left, f"{left:.1f} s left for {self.budget.describe()}"
        self.channel.restart_clock(seconds, limit)
        try:
            return self.channel.request(message)
        except HarnessStopped:
            self.alive = False
            raise

    def stop(self) -> None:
        """End the student's process and everything it started."""
        self.alive = False
        self.launched.kill()
        self.launched.wait()


class StudentError(Exception):
    """What a student's function raised, rebuilt here (its type name is the student's, where safe)."""


class DidNotFinish(StudentError):
    """A call or a rerun stopped at its time limit, as this process's clock saw it. `seconds` is the
    limit when it was the request's own (fixed before any hidden data reached the student's process),
    None when the request was cut to the time its question had left."""

    def __init__(self, seconds: Optional[float]):
        super().__init__("")
        self.seconds = seconds


@dataclass
class RemoteFunction:
    """A student's function: calling it runs it in the student's process on plain-data arguments,
    within its time limit."""

    name: str
    values: "StudentValues"

    def __call__(self, *args: Any) -> Any:
        return self.call_with_globals({}, *args)

    def call_with_globals(self, values: dict[str, Any], *args: Any) -> Any:
        """Call it with some of the notebook's globals set to `values` for this call only. Once it has
        run out of time in a case, the case gets no more of its time: it stops again at once."""
        if self.name in self.values.hung:
            raise self.values.hung[self.name]
        request = {"call": self.name, "args": [encode_argument(a) for a in args], "at": self.values.at}
        if values:
            request["globals"] = {name: encode_argument(value) for name, value in values.items()}
        answer = self.values.student.limited(request, self.values.student.budget.call_limit(self.name), "a call")
        if answer.ran_out:
            self.values.hung[self.name] = DidNotFinish(answer.limit if answer.whole else None)
            raise self.values.hung[self.name]
        if "error" in answer.message:
            raise self.values.student_error(answer.message["error"])
        for original, after in zip(args, answer.message.get("args_after") or []):
            write_back(original, after, self.values.hidden)
        return decode_answer(answer.message.get("result"), self.values.hidden)


class StudentValues(dict):
    """The environment test functions read: each name fetched from the student's process when asked,
    as it was at the question's check.

    Hidden cases get values whose text the student cannot choose: no type names, no error messages,
    error types only from Python's own. `student_cells` and `rerun_cells` let a test run the
    student's cells again with inputs of its choosing (see `backprop_checks.rerun`).
    """

    def __init__(self, student: StudentProcess, at: str, cells: int, hidden: bool, runs: Sequence[CellRun] = ()):
        super().__init__()
        self.student, self.at, self.cells, self.hidden = student, at, cells, hidden
        self.runs = runs  # the cells as the notebook ran them: what each took
        self.reruns: dict = {}  # what the checks asked to rerun, kept for the other cases of this check
        self.hung: dict[str, DidNotFinish] = {}  # functions that ran out of time in the case being run
        self.drawn: dict = {}  # the hidden inputs drawn for this check, shared by its cases (backprop_reference)

    def request(self, message: dict) -> dict:
        return self.student.request({**message, "at": self.at})

    def __missing__(self, name: str) -> Any:
        plain = self.request({"get": name}).get("value")
        value = RemoteFunction(name, self) if isinstance(plain, dict) and plain.get("kind") == "function" \
            else decode_answer(plain, self.hidden)
        self[name] = value
        return value

    def get(self, name: str, default: Any = None) -> Any:
        return self[name]

    def student_error(self, error: Any) -> StudentError:
        error = error if isinstance(error, dict) else {}
        kind = re.sub(r"\W", "", str(error.get("type", "Error")))[:40] or "Error"
        if self.hidden and kind not in SAFE_ERROR_TYPES:
            kind = "Exception"
        message = "" if self.hidden else printable(str(error.get("message", ""))[:300])
        return type(kind, (StudentError,), {})(message)

    def student_cells(self) -> list[str]:
        """The code of the cells run up to this question's check, in order."""
        return self.student.sources[:self.cells]

    def rerun_cells(self, helpers: list[int], cells: list[int], clear: list[str], inputs: dict[str, Any],
                    names: list[str]) -> tuple[dict[str, Any], Optional[StudentError]]:
        """Run some of those cells again, with `clear` removed and `inputs` set first: the `helpers`
        (whatever they raise), then `inputs` set again, then `cells`. Return the values of `names`
        afterwards and what `cells` raised. The namespace is put back after. The cells together may
        take what each may take again (`rerun_allowance`), from their question's time."""
        ran = range(self.cells)
        order = {"helpers": [i for i in helpers if i in ran], "cells": [i for i in cells if i in ran],
                 "clear": list(clear), "inputs": {name: encode_argument(value) for name, value in inputs.items()},
                 "names": list(names)}
        allowance = sum(rerun_allowance(self.runs[i]) for i in order["helpers"] + order["cells"] if i < len(self.runs))
        answer = self.student.limited({"rerun": order, "at": self.at}, allowance or FLOOR_SECONDS, "a rerun of cells")
        values = answer.message.get("values") if isinstance(answer.message.get("values"), dict) else {}
        error = answer.message.get("error")
        if answer.ran_out:
            error = DidNotFinish(answer.limit if answer.whole else None)
        elif error:
            error = self.student_error(error)
        return {name: decode_answer(values.get(name), self.hidden) for name in names}, error or None


@dataclass
class Grading:
    """What grading one notebook gave: the test files with their case results, and what happened."""

    tests: dict[str, "ExceptionTestFile"]
    problems: list[str] = field(default_factory=list)  # what went wrong, for the grading status
    flags: list[str] = field(default_factory=list)  # integrity flags for the instructor, never a penalty
    notes: list[str] = field(default_factory=list)  # anything else only the instructor should read
    finished: bool = False  # every cell ran and every question was graded


def load_tests(tests_dir: Path, support_dir: Path) -> dict[str, "ExceptionTestFile"]:
    """Otter's test file of each question; the helpers they import come from `support_dir`.

    Otter is imported here, not with this module: that takes a second, which the student's
    process, started just before, spends getting ready.
    """
    from otter.test_files.exception_test import ExceptionTestFile

    if str(support_dir) not in sys.path:
        sys.path.insert(0, str(support_dir))
    return {path.stem: ExceptionTestFile.from_file(str(path)) for path in sorted(tests_dir.glob("*.py"))}


def run_cases(test_file: "ExceptionTestFile", environment: StudentValues, grading: Grading) -> None:
    """Run the cases of `test_file` that match the environment (public or hidden); keep the results."""
    for case in test_file.test_cases:
        if case.hidden != environment.hidden:
            continue
        environment.hung.clear()
        try:
            case.body.call_func(environment)
            passed, message = True, ""
        except HarnessStopped:
            raise
        except OutOfTime as reason:  # its question's time is spent: the case is not judged
            passed, message = False, f"not graded: {reason}"
        except AssertionError as failure:
            passed, message = False, str(failure)
        except Exception as error:  # a case that cannot compare (never the student's text)
            passed, message = False, "the check could not compare your answer with the expected one"
            grading.notes.append(f"{test_file.name} {case.name}: the test raised {type(error).__name__}: {error}")
        record(test_file, case, passed, message)


def record(test_file: "ExceptionTestFile", case: Any, passed: bool, message: str) -> None:
    """Keep one case's result in otter's own structure, in the order of the test file's cases."""
    from otter.test_files.abstract_test import TestCaseResult

    results = [r for r in test_file.test_case_results if r.test_case.name != case.name]
    results.append(TestCaseResult(test_case=case, message=message, passed=passed))
    order = [c.name for c in test_file.test_cases]
    test_file.test_case_results = sorted(results, key=lambda r: order.index(r.test_case.name))


def fail_unjudged(grading: Grading, questions: list[str], reason: str) -> None:
    """Every case of `questions` not yet run fails, with `reason`."""
    for test_file in (grading.tests[question] for question in questions):
        judged = {result.test_case.name for result in test_file.test_case_results}
        for case in test_file.test_cases:
            if case.name not in judged:
                record(test_file, case, False, reason)


def grade(notebook: nbformat.NotebookNode, tests_dir: Path, support_dir: Path, launch: Launcher, budget: Budget, *,
          handed_out: frozenset[str] = frozenset()) -> Grading:
    """Grade one notebook within `budget`: its cells run in the launched harness, the tests run here.
    The cells of the handed-out notebook (`handed_out`: their digests) are never scanned for tampering.

    The tests are loaded only after the first launch, so a launcher that forks this process never
    copies them into the student's. Raises GraderFailure if the student's process never gets ready.
    """
    cells = code_cells(notebook)
    plan = checkpoints(cells, sorted(path.stem for path in tests_dir.glob("*.py")))
    launched = launch(False)
    try:  # the tests load while the student's process gets ready
        grading = Grading(load_tests(tests_dir, support_dir), flags=scan_for_tampering(cells, handed_out))
        student = StudentProcess(launched, budget)
    except BaseException:
        launched.kill()
        launched.wait()
        raise
    budget.plan(sorted(plan))
    session = Session(grading, cells, plan, launch, student, budget)
    try:
        session.run_cells()
        session.judge_the_rest()
    finally:
        session.stop()
    limits = launched.describe_end()  # what the platform saw, such as processes killed for memory
    problems = [problem for problem in (session.stopped, *session.problems) if problem]
    if limits and not any(limits in problem for problem in problems):
        problems.append(limits)
    grading.problems[:0] = cell_problems(session.runs, cells, session.left_out) + problems
    fail_unjudged(grading, [q for q in plan if q not in session.reached],
                  f"not graded: the notebook stopped before this question was checked ({session.stopped})")
    fail_unjudged(grading, session.reached, "not graded: the notebook's process stopped, and could not be run again "
                  "for this check")
    grading.finished = session.stopped is None and not session.problems
    return grading


# How many times a notebook whose process stops is run again, up to its last check, for its checks.
MAX_REPLAYS = 2


class Session:
    """One notebook's grading: its cells run in order in the student's process, with a snapshot at
    each question's check, and its questions are judged in their own order, public cases first.

    A question's public cases run at its check once every question before it has been judged (or
    after the last cell); all hidden cases run after the last cell. So no answer a question is
    judged on reaches the student's process before that question is judged, whatever the order of
    the checks: the inputs of a question hold the exact answers of the questions before it only.
    If the student's process stops, a fresh one replays the cells up to the last check reached.
    The budget charges the cells to the cells, and a question's checks (and a replay they need) to
    that question.
    """

    def __init__(self, grading: Grading, cells: list[Cell], plan: dict[str, int], launch: Launcher,
                 student: StudentProcess, budget: Budget):
        self.grading, self.cells, self.plan, self.launch, self.budget = grading, cells, plan, launch, budget
        self.first: StudentProcess = student
        self.student: Optional[StudentProcess] = student
        self.runs: list[CellRun] = []  # the cells as the first process ran them: the notebook as the student ran it
        self.reached: list[str] = []  # questions whose check was reached, in the order reached
        self.judged: set[tuple[str, bool]] = set()
        self.stopped: Optional[str] = None  # why the cells stopped early
        self.problems: list[str] = []
        self.replays_left = MAX_REPLAYS
        self.cells_done = False
        self.left_out: dict[int, str] = {}  # cells that could not be stopped at their limit (why): replays leave them out

    def run_cells(self) -> None:
        """Run every cell once, judging the public cases at the checks. If the process had to be
        stopped, in a check or in a cell that did not stop at its limit (its code ignores the alarm),
        the cells go on in a replay of it, without that cell."""
        self.budget.switch(CELLS)
        try:
            for index in range(len(self.cells) + 1):
                if index < len(self.cells):
                    self.runs.append(self.run_cell(index))
                for question in [q for q, at in self.plan.items() if at == index]:
                    self.student_for_cells().request({"snapshot": question})
                    self.at_check(question)
        except (HarnessStopped, OutOfTime) as reason:
            self.stopped = str(reason)
        self.cells_done = True
        for part in [CELLS, *(q for q in self.plan if q not in self.reached)]:
            self.budget.done(part)
        self.first.launched.mute()  # hidden data is about to enter it

    def run_cell(self, index: int) -> CellRun:
        student, started = self.student_for_cells(), time.monotonic()
        try:
            return student.run(self.cells[index], self.budget.cell_seconds)
        except StoppedAtLimit as reason:
            self.left_out[index] = str(reason)
            return CellRun(index, time.monotonic() - started, "CellTimeout", None, self.budget.cell_seconds)

    def student_for_cells(self) -> StudentProcess:
        student = self.live_student()
        if student is None:
            raise HarnessStopped("its process stopped during a check, and could not be run again")
        return student

    def at_check(self, question: str) -> None:
        self.reached.append(question)
        for earlier in sorted(self.plan):  # every question that can be judged now, in order
            if earlier not in self.reached:
                break
            self.judge(earlier, hidden=False)
        self.budget.switch(CELLS)

    def judge_the_rest(self) -> None:
        for hidden in (False, True):
            for question in sorted(self.reached):
                self.judge(question, hidden)
                if hidden:
                    self.budget.done(question)

    def judge(self, question: str, hidden: bool) -> None:
        """Run the public or the hidden cases of `question`, in a live student process (unless every
        one of them is judged already: its process stopped during the public ones)."""
        judged = {result.test_case.name for result in self.grading.tests[question].test_case_results}
        if (question, hidden) in self.judged or all(case.name in judged for case in self.grading.tests[question].test_cases
                                                    if case.hidden == hidden):
            return
        self.budget.switch(question)
        student = self.live_student()
        if student is None:
            return
        self.judged.add((question, hidden))
        values = StudentValues(student, question, min(self.plan[question] + 1, len(self.cells)), hidden, self.runs)
        try:
            run_cases(self.grading.tests[question], values, self.grading)
        except HarnessStopped as reason:
            if hidden:  # the student is not told why: an exit code is the notebook's to choose (a hidden value?)
                stop = "the notebook's process stopped during the hidden checks"
                self.problems.append(f"{stop} ({reason})")
                fail_unjudged(self.grading, [question], f"not graded: {stop} (it ended, or ran out of time or memory)")
            else:
                stop = f"the notebook's process stopped during the checks of {question} ({reason})"
                self.problems.append(stop)
                fail_unjudged(self.grading, [question], f"not graded: {stop}")

    def live_student(self) -> Optional[StudentProcess]:
        """The student's process, alive; after the cells, a replay of them if it stopped (a few times at most)."""
        if self.student is not None and self.student.alive:
            return self.student
        if self.replays_left == 0 or (self.cells_done and not self.reached):
            return None
        self.replays_left -= 1
        if self.student is not None:
            self.student.stop()
        # While the cells run, the replay runs every cell run so far; after them, up to the last check reached.
        last = len(self.runs) - 1 if not self.cells_done else max(self.plan[q] for q in self.reached)
        self.student = replay(self.launch, self.cells, last, self.plan, self.reached, self.runs, self.left_out,
                              self.budget, self.grading)
        return self.student

    def stop(self) -> None:
        for student in {self.first, self.student} - {None}:
            student.stop()


def replay(launch: Launcher, cells: list[Cell], last: int, plan: dict[str, int], reached: list[str],
           runs: list[CellRun], left_out: dict[int, str], budget: Budget, grading: Grading) -> Optional[StudentProcess]:
    """A fresh student process with the cells up to index `last` run again (each within what a rerun of
    it may take, those `left_out` as empty cells) and the snapshots of the checks `reached` among them:
    the checks left run there. None (and a problem noted) if it stops on the way, runs out of its
    part's time, or never gets ready: the first process did, so what stops this one is what the
    notebook left behind."""
    launched = launch(True)
    try:
        student = StudentProcess(launched, budget)
    except GraderFailure as failure:
        launched.kill()
        launched.wait()
        grading.problems.append(f"replaying the notebook for its checks failed ({failure})")
        return None
    student.launched.mute()
    try:
        for index in range(last + 1):
            if index < len(cells):
                student.run(cells[index], rerun_allowance(runs[index]) if index < len(runs) else FLOOR_SECONDS,
                            index in left_out)
            for question in [q for q in reached if plan[q] == index]:
                student.request({"snapshot": question})
    except (HarnessStopped, OutOfTime) as reason:
        student.stop()
        grading.problems.append(f"replaying the notebook for its checks failed ({reason})")
        return None
    grading.notes.append("the notebook's process stopped, and a fresh process replayed its cells for what was left")
    return student


def cell_problems(runs: list[CellRun], cells: list[Cell], left_out: Optional[dict[int, str]] = None) -> list[str]:
    """What went wrong in the cells: too slow on this process's clock (and, for those `left_out`, not
    stopped by the alarm: why their process was stopped), or out of memory."""
    problems, left_out = [], left_out or {}
    for run in runs:
        where = quote(cells[run.index].source, run.line)
        if run.index in left_out:
            problems.append(f"a cell could not be interrupted at its limit ({where}; {left_out[run.index]}): "
                            "the cells after it ran in a fresh process, without it")
        elif run.timed_out or run.seconds >= run.limit:
            problems.append(f"a cell ran past {run.limit:g} s and was stopped ({where})")
        elif run.error == "MemoryError":
            problems.append(f"a cell ran out of memory ({where})")
    return list(dict.fromkeys(problems))


def quote(source: str, line: Optional[int]) -> str:
    """The line of a cell that failed, from this process's own copy, or its first line."""
    lines = source.splitlines()
    if line is not None and 1 <= line <= len(lines) and lines[line - 1].strip():
        return f"line {line}: {printable(lines[line - 1].strip()[:60])}"
    first = next((text.strip() for text in lines if text.strip()), "")
    return f"the cell starting {printable(first[:60])}"


def grade_nothing(tests_dir: Path, support_dir: Path, reason: str) -> Grading:
    """Results for a submission that cannot run: every question at zero, with the reason."""
    grading = Grading(load_tests(tests_dir, support_dir), problems=[reason])
    fail_unjudged(grading, list(grading.tests), f"not graded: {reason}")
    return grading
