"""The trusted half of grading: runs the tests where the student's code cannot reach them.

Stock otter runs the tests inside the student's kernel, so the student's code can patch the test
runner, numpy's comparisons or the results file. Here the student's notebook runs in another
process (`harness.py`, started by a `launch` function that confines it: bubblewrap locally, an
unprivileged user on Gradescope), and this process asks it for answers over a pipe. Only plain
JSON data comes back; this process rebuilds floats and float arrays from it and runs otter's own
test files on them, with its own numpy and its own copy of `backprop_checks`. It never loads a
pickle from a submission (otter would unpickle `.OTTER_LOG`).
"""

import functools
import importlib.util
import json
import math
import os
import re
import selectors
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import nbformat
import numpy as np
from otter.nbmeta_config import NBMetadataConfig
from otter.run.run_autograder.autograder_config import AutograderConfig
from otter.test_files import GradingResults
from otter.test_files.exception_test import ExceptionTestFile

HARNESS = Path(__file__).with_name("harness.py")
LARGEST_MESSAGE = 20_000_000  # bytes of one protocol line from the harness
MAX_DEPTH, MAX_ITEMS, MAX_DIMENSIONS = 3, 64, 4

Launcher = Callable[[list[str]], subprocess.Popen]


class HarnessStopped(Exception):
    """The student's process ended, hung, or broke the protocol: the reason is the message."""


class Unreadable:
    """Stands for a student value that is not plain data; checks reject it as not a number."""


def unreadable(type_name: str) -> Unreadable:
    """An `Unreadable` whose type name is the student's, so failure messages can name it."""
    name = re.sub(r"\W", "_", str(type_name))[:40] or "object"
    return type(name if name[0].isalpha() else f"_{name}", (Unreadable,), {})()


def to_plain(value: Any) -> dict:
    """Encode a test's argument (numbers, arrays, lists of them) for the harness."""
    if isinstance(value, np.ndarray):
        return {"kind": "array", "shape": list(value.shape), "data": value.astype(float).ravel().tolist()}
    if isinstance(value, (list, tuple)):
        return {"kind": type(value).__name__, "items": [to_plain(v) for v in value]}
    return {"kind": "number", "value": float(value)}


def from_plain(plain: Any, depth: int = 0) -> Any:
    """Rebuild a student's value from the harness's JSON, accepting only well-formed plain data."""
    if not isinstance(plain, dict):
        return unreadable("malformed_answer")
    kind = plain.get("kind")
    if kind == "none":
        return None
    if kind == "ellipsis":
        return Ellipsis
    if kind == "number" and type(plain.get("value")) in (int, float):
        return float(plain["value"])
    if kind == "array":
        return _array(plain)
    if kind in ("list", "tuple") and isinstance(plain.get("items"), list) and depth < MAX_DEPTH \
            and len(plain["items"]) <= MAX_ITEMS:
        items = [from_plain(item, depth + 1) for item in plain["items"]]
        return items if kind == "list" else tuple(items)
    if kind == "other":
        return unreadable(plain.get("type", "object"))
    return unreadable("malformed_answer")


def _array(plain: dict) -> Any:
    shape, data = plain.get("shape"), plain.get("data")
    valid = (isinstance(shape, list) and len(shape) <= MAX_DIMENSIONS
             and all(type(n) is int and 0 <= n <= 10_000 for n in shape)
             and isinstance(data, list) and len(data) == math.prod(shape)
             and all(type(v) in (int, float) for v in data))
    return np.array(data, dtype=float).reshape(shape) if valid else unreadable("malformed_array")


def write_back(original: Any, plain_after: Any) -> None:
    """Make an argument look the way the student's function left it (to catch in-place changes)."""
    after = from_plain(plain_after)
    if isinstance(original, np.ndarray):
        if isinstance(after, np.ndarray) and after.shape == original.shape:
            original[...] = after
    elif isinstance(original, list) and isinstance(after, list):
        original[:] = after


class Harness:
    """The grading side of the harness protocol (see harness.py), with a deadline."""

    def __init__(self, process: subprocess.Popen, seconds: float):
        self.process = process
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.selector = selectors.DefaultSelector()
        self.selector.register(process.stdout, selectors.EVENT_READ)
        self.buffer = b""

    def receive(self) -> dict:
        while b"\n" not in self.buffer:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise HarnessStopped(f"stopped at the wall-clock limit ({self.seconds:g} s)")
            if not self.selector.select(timeout=remaining):
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
        except ValueError:
            raise HarnessStopped("the notebook process broke the grading protocol") from None
        if not isinstance(message, dict):
            raise HarnessStopped("the notebook process broke the grading protocol")
        return message

    def _ended(self) -> str:
        code = self.process.wait()
        if code < 0 or code > 128:  # Popen's -N, or a shell's 128 + N, for signal N
            return f"the notebook process was killed by signal {-code if code < 0 else code - 128}"
        return f"the notebook process ended early (exit code {code})"

    def send(self, message: dict) -> None:
        try:
            self.process.stdin.write((json.dumps(message) + "\n").encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise HarnessStopped(self._ended()) from None

    def request(self, message: dict) -> dict:
        self.send(message)
        return self.receive()


@dataclass
class RemoteFunction:
    """A student's function: calling it runs it in the student's process on plain-data arguments."""

    name: str
    harness: Harness

    def __call__(self, *args: Any) -> Any:
        answer = self.harness.request({"call": self.name, "args": [to_plain(a) for a in args]})
        if "error" in answer:
            raise type(re.sub(r"\W", "", str(answer.get("type", "Error")))[:40] or "Error", (Exception,), {})(
                str(answer["error"])[:500])
        for original, after in zip(args, answer.get("args_after") or []):
            write_back(original, after)
        return from_plain(answer.get("result"))


class StudentValues(dict):
    """The environment test functions read: each name fetched from the student's kernel when asked."""

    def __init__(self, harness: Harness):
        super().__init__()
        self.harness = harness

    def __missing__(self, name: str) -> Any:
        answer = self.harness.request({"get": name})
        plain = answer.get("value")
        value = RemoteFunction(name, self.harness) if isinstance(plain, dict) and plain.get("kind") == "function" \
            else from_plain(plain)
        self[name] = value
        return value

    def get(self, name: str, default: Any = None) -> Any:
        return self[name]


@dataclass
class Grading:
    """What grading one notebook gave: otter's results, what happened, and integrity flags."""

    results: GradingResults
    status: str
    flags: list[str] = field(default_factory=list)
    finished: bool = False  # the notebook ran to its end (every question was checked where it stood)


def load_tests(tests_dir: Path, support_dir: Path) -> dict[str, ExceptionTestFile]:
    """Otter's test file of each question; the helpers they import come from `support_dir`."""
    if str(support_dir) not in sys.path:
        sys.path.insert(0, str(support_dir))
    return {path.stem: ExceptionTestFile.from_file(str(path)) for path in sorted(tests_dir.glob("*.py"))}


def grade(notebook: Path, tests_dir: Path, support_dir: Path, launch: Launcher, *, harness: Path = HARNESS,
          cell_timeout: float = 60, total_timeout: float = 600) -> Grading:
    """Grade one notebook: its code runs in the launched `harness`, the tests run here.

    The tests are loaded only after the launch, so a launcher that forks this process never
    copies them into the student's.
    """
    try:
        process = launch([sys.executable, str(harness), str(notebook), str(cell_timeout)])
    except (OSError, subprocess.SubprocessError) as error:
        return grade_nothing(tests_dir, support_dir, f"the notebook process could not start: {error}")
    tests = load_tests(tests_dir, support_dir)
    pending = list(tests)
    finished = False
    try:
        status = run_checkpoints(Harness(process, total_timeout), tests, pending)
        finished = not pending
    except HarnessStopped as stopped:
        status = str(stopped)
    finally:
        stop(process)
    grading = finish(tests, pending, status, scan_for_tampering(notebook))
    grading.finished = finished
    return grading


def run_checkpoints(remote: Harness, tests: dict[str, ExceptionTestFile], pending: list[str]) -> str:
    """Run each question's tests when the notebook reaches its check; return the final status."""
    while True:
        message = remote.receive()
        if message.get("done"):
            return str(message.get("status", "completed"))[:300]
        checked = message.get("checkpoint")
        if not isinstance(checked, list):
            raise HarnessStopped("the notebook process broke the grading protocol")
        for question in [q for q in (checked or list(pending)) if q in pending]:
            tests[question].run(StudentValues(remote))
            pending.remove(question)
        remote.send({"continue": True})


def grade_nothing(tests_dir: Path, support_dir: Path, reason: str) -> Grading:
    """Results for a submission that cannot run: every question at zero, with the reason."""
    tests = load_tests(tests_dir, support_dir)
    return finish(tests, list(tests), reason, [])


def finish(tests: dict[str, ExceptionTestFile], pending: list[str], status: str, flags: list[str]) -> Grading:
    """Run the questions the notebook never reached with every value missing, and collect results."""
    for question in pending:
        tests[question].run({})
    return Grading(GradingResults(list(tests.values())), status, flags)


def stop(process: subprocess.Popen) -> None:
    """Kill the student's process and everything it started (it runs in a session of its own)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait()


SUSPICIOUS = {
    r"\.OTTER_LOG|\bpickle\b|\bdill\b": "uses pickles or otter's log",
    r"results\.json|/autograder\b": "touches the grader's files",
    r"\b(np|numpy|math|builtins)\.\w+\s*=[^=]|setattr\(\s*(np|numpy|math|builtins)\b": "replaces library functions",
    r"\botter\.(test_files|execute|run|check)\b|ExceptionTestFile|TestFile\b": "reaches into otter's test runner",
    r"def\s+__(eq|ne|float|array|bool|lt|le|gt|ge)__": "defines comparison or conversion methods",
    r"\bos\._exit\b|\bsys\.modules\b|\bctypes\b|\bsignal\.": "manipulates the interpreter",
    r"\bos\.(write|dup2?|fdopen)\(|/proc/self": "writes to raw file descriptors",
}


class SubmissionProblem(Exception):
    """The submission cannot be graded; the message says why, for the student."""


def find_notebook(submission: Path, scratch: Path) -> tuple[Path, list[str]]:
    """The one notebook of a submission (uploaded as is, or inside an export zip), and flags."""
    files = [p for p in submission.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts]
    names = [p.name for p in files]
    notebooks = [p for p in files if p.suffix == ".ipynb"]
    for archive in (p for p in files if p.suffix == ".zip"):
        names += extract_notebooks(archive, scratch, notebooks)
    if not notebooks:
        raise SubmissionProblem("no .ipynb notebook in the submission")
    if len(notebooks) > 1:
        raise SubmissionProblem(f"{len(notebooks)} .ipynb notebooks in the submission; submit exactly one")
    flags = [f"submission contains {name}, which was ignored (pickles are never loaded)"
             for name in names if name == ".OTTER_LOG" or name.endswith((".pkl", ".pickle"))]
    return notebooks[0], flags


def extract_notebooks(archive: Path, scratch: Path, notebooks: list[Path]) -> list[str]:
    """Copy the notebooks out of an export zip by name only (no paths from the archive), adding
    them to `notebooks`; return the names of all its files."""
    try:
        with zipfile.ZipFile(archive) as opened:
            members = [info for info in opened.infolist() if not info.is_dir()]
            for info in members:
                name = Path(info.filename).name
                if name.endswith(".ipynb") and ".ipynb_checkpoints" not in info.filename and info.file_size < 64 << 20:
                    target = scratch / f"{len(notebooks)}-{name}"
                    target.write_bytes(opened.read(info))
                    notebooks.append(target)
    except zipfile.BadZipFile:
        raise SubmissionProblem(f"{archive.name} is not a readable zip file") from None
    return [Path(info.filename).name for info in members]


def check_notebook(notebook: Path, config: AutograderConfig) -> None:
    """Check that the notebook reads as one and, as otter does, that it is for this assignment.

    Reading parses JSON only: no code of the notebook runs here.
    """
    try:
        name = NBMetadataConfig.from_notebook(nbformat.read(notebook, as_version=4)).assignment_name
    except Exception as error:  # whatever a broken file raises, it is the submission's problem
        raise SubmissionProblem(f"the notebook cannot be read ({type(error).__name__}): is it empty or corrupt?")
    if config.assignment_name and name != config.assignment_name:
        raise SubmissionProblem(f"this notebook is for assignment '{name}', not '{config.assignment_name}'")


def results_for_gradescope(grading: Grading, config: AutograderConfig) -> dict:
    """Otter's results dictionary plus a note for the instructor (never shown to the student)."""
    results = grading.results.to_gradescope_dict(config)
    notes = [f"grading status: {grading.status}"] + [f"flag: {flag}" for flag in grading.flags]
    results["tests"].append({"name": "Grading notes (instructor only)", "visibility": "hidden",
                             "output": "\n".join(notes), "status": "passed"})
    return results


@functools.cache
def _harness_module() -> ModuleType:
    """harness.py, loaded by path: it sits beside this file both here and in the autograder zip."""
    spec = importlib.util.spec_from_file_location("grading_harness", HARNESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scan_for_tampering(notebook: Path) -> list[str]:
    """Flags for the instructor (never a penalty): code that looks like it targets the grader.

    Only the code the harness runs is read: cells tagged `otter_ignore` (the notebook's own set-up
    cell among them) never run in grading.
    """
    try:
        parts = _harness_module().segments(nbformat.read(notebook, as_version=4))
        source = "\n".join(cell for _, cells in parts for cell in cells)
    except Exception:  # an unreadable notebook has no code to flag; the harness reports why
        return []
    return [reason for pattern, reason in SUSPICIOUS.items() if re.search(pattern, source)]
