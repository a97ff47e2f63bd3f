"""The trusted grading flow, with the student's process forked from this one (no sandbox): the
ready handshake, judging each question at its check, hidden cases after every public one, and a
fresh process replaying the notebook when the first one died."""

import ctypes
import errno
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

import nbformat
import pytest

from backprop_hw.autograder import harness, seccomp, trusted
from backprop_hw.paths import ROOT, SOLUTIONS_NOTEBOOK
from conftest import POINTS
from forked import in_a_child


TESTS, SUPPORT = ROOT / "tests", ROOT / "assignment"
harness.warm_up()  # every fork below starts warm, as make grade's do


class ForkedHere:
    """A harness forked from this process, seen as a launcher's process."""

    def __init__(self) -> None:
        requests_read, requests_write = os.pipe()
        answers_read, answers_write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.chdir(tempfile.mkdtemp(prefix="forked-harness-"))  # otter's first cell writes its log here
            os.close(requests_write)
            os.close(answers_read)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            try:
                harness.serve(10, os.fdopen(requests_read, "r"), os.fdopen(answers_write, "w"))
            finally:
                os._exit(0)
        os.close(requests_read)
        os.close(answers_write)
        self.stdin, self.stdout = os.fdopen(requests_write, "wb"), os.fdopen(answers_read, "rb")
        self.code: Optional[int] = None

    def kill(self) -> None:
        if self.code is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def wait(self) -> int:
        if self.code is None:
            self.code = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.code

    def mute(self) -> None:
        pass

    def describe_end(self) -> Optional[str]:
        return None


class Finished:
    """A process that has already written `lines` and ended."""

    def __init__(self, lines: bytes) -> None:
        read, write = os.pipe()
        os.write(write, lines)
        os.close(write)
        requests_read, requests_write = os.pipe()
        os.close(requests_read)  # it reads nothing any more
        self.stdin, self.stdout = os.fdopen(requests_write, "wb"), os.fdopen(read, "rb")

    def kill(self) -> None:
        pass

    def wait(self) -> int:
        return 1

    def mute(self) -> None:
        pass

    def describe_end(self) -> Optional[str]:
        return None


def solutions_with(after_check: dict[str, str]) -> nbformat.NotebookNode:
    notebook = nbformat.read(SOLUTIONS_NOTEBOOK, as_version=4)
    for question, source in after_check.items():
        [index] = [i for i, c in enumerate(notebook.cells) if c.source.strip() == f'grader.check("{question}")']
        notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return notebook


def grade(notebook: nbformat.NotebookNode) -> tuple[trusted.Grading, list[bool]]:
    """Grade with forked harnesses; also return, for each launch, whether it was a replay."""
    launches: list[bool] = []

    def launch(replay: bool) -> ForkedHere:
        launches.append(replay)
        return ForkedHere()

    return trusted.grade(notebook, TESTS, SUPPORT, launch, trusted.Budget(60, 10)), launches


def scores(grading: trusted.Grading) -> dict[str, float]:
    return {name: test_file.score for name, test_file in grading.tests.items()}


@pytest.mark.parametrize("lines, says", [(b"", "failed before it was ready"),
                                         (b'{"ran": {}}\n', "did not report ready"),
                                         (b"not json\n", "failed before it was ready")])
def test_a_process_that_never_gets_ready_is_a_grader_failure(lines: bytes, says: str) -> None:
    with pytest.raises(trusted.GraderFailure, match=says):
        trusted.StudentProcess(Finished(lines), trusted.Budget(1, 1))


def test_each_question_is_judged_as_it_stood_at_its_check() -> None:
    grading, launches = grade(solutions_with({
        "q1.1": "f0 = h1 = f1 = h2 = f2 = h3 = f3 = l_i = 0.0",
        "q2.1": "def compute_network_output(*args):\n    return None",
        "q2.2": "def backward_pass(*args):\n    return None"}))
    assert scores(grading) == POINTS and grading.finished and launches == [False]


def test_a_process_that_dies_is_replayed_for_the_hidden_cases() -> None:
    grading, launches = grade(solutions_with({"q1.3": "import os\nos._exit(3)"}))
    assert launches == [False, True]
    assert scores(grading) == {**POINTS, "q2.1": 0, "q2.2": 0}
    assert "the notebook process ended early (exit code 3)" in grading.problems
    unreached = grading.tests["q2.1"].test_case_results[0].message
    assert "stopped before this question was checked" in unreached


def test_a_real_check_decides_and_a_comment_does_not() -> None:
    notebook = solutions_with({"q1.1": '# grader.check("q2.2")\ngrader.check("q2.1")'})
    grading, _ = grade(notebook)
    assert scores(grading) == POINTS  # q2.1 is judged at its last check, where its function exists


def test_cell_problems_quote_the_line_that_failed() -> None:
    cells = [trusted.Cell("import numpy as np\nhog = np.ones((10**6, 10**6))", ())]
    runs = [trusted.CellRun(0, 0.1, "MemoryError", 2, 15)]
    assert trusted.cell_problems(runs, cells) == ["a cell ran out of memory (line 2: hog = np.ones((10**6, 10**6)))"]
    slow = [trusted.CellRun(0, 16.0, "CellTimeout", None, 15)]
    assert trusted.cell_problems(slow, cells) == [
        "a cell ran past 15 s and was stopped (the cell starting import numpy as np)"]
    forged = [trusted.CellRun(0, 0.1, "CellTimeout", 1, 15)]  # a timeout that this process's clock did not see
    assert trusted.cell_problems(forged, cells) == []


def test_the_tests_are_never_in_a_forked_harness() -> None:
    """grade() launches before it loads the tests, so a forked harness cannot hold them."""
    order = []
    real_load = trusted.load_tests

    def launch(replay: bool) -> ForkedHere:
        order.append("launch")
        return ForkedHere()

    def load(tests: Path, support: Path) -> dict:
        order.append("load")
        return real_load(tests, support)

    trusted.load_tests = load
    try:
        trusted.grade(solutions_with({}), TESTS, SUPPORT, launch, trusted.Budget(60, 10))
    finally:
        trusted.load_tests = real_load
    assert order == ["launch", "load"]


def test_questions_are_judged_in_their_order_whatever_the_order_of_the_checks(tmp_path: Path) -> None:
    """Checks in the order q1.3, q1.2, q1.1: no question's answers reach the student's process (as
    the inputs of a later question) before that question is judged, so a relay of them earns nothing."""
    from attacks import write_relay

    relayed, _ = grade(nbformat.read(write_relay(tmp_path / "relay.ipynb", relay=True), as_version=4))
    assert scores(relayed) == {**POINTS, "q1.1": 0, "q1.2": 0}


def test_a_harness_started_for_one_notebook_imports_otter_only_for_a_notebook_that_does(tmp_path: Path) -> None:
    """As Gradescope starts it (`python -I -c SOURCE`): ready without otter, which takes most of a
    second to import; a notebook that makes otter's own grader gets one whose checks do nothing,
    however it calls them, and a cell that calls them runs to its end."""
    process = subprocess.Popen([sys.executable, "-I", "-c", trusted.HARNESS.read_text(), "10"], cwd=tmp_path,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def ask(request: dict) -> dict:
        process.stdin.write(json.dumps(request) + "\n")
        process.stdin.flush()
        return json.loads(process.stdout.readline())

    try:
        assert json.loads(process.stdout.readline()) == {"ready": True}
        assert ask({"run": "import sys\nready_without_otter = int('otter' not in sys.modules)"})["ran"]["error"] is None
        stock = ('import otter\ngrader = otter.Notebook()\nchecked = [grader.check("q1.1"), grader.check_all(), '
                 'grader.export(), otter.Notebook.check(grader, "q2.2")]\nreached = len(checked)')
        assert ask({"run": stock})["ran"] == {"error": None, "line": None}
        assert ask({"get": "ready_without_otter"})["value"] == {"kind": "number", "value": 1.0}
        assert ask({"get": "checked"})["value"]["items"] == [{"kind": "none"}] * 4
    finally:
        process.kill()
        process.wait()


def test_gradescopes_grader_loads_the_tests_without_the_rest_of_otter() -> None:
    """Gradescope's grading process runs otter's test files, and imports nothing of otter's API
    (pandas, nbconvert: most of a second on Gradescope's half vCPU)."""
    code = ("import sys\nfrom backprop_hw.autograder import gradescope_run, trusted\n"
            "gradescope_run.load_otters_test_runner_alone()\n"
            f"tests = trusted.load_tests(trusted.Path({str(TESTS)!r}), trusted.Path({str(SUPPORT)!r}))\n"
            "print(sorted(tests), sorted(name for name in ('pandas', 'nbconvert', 'otter.api') if name in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == f"{sorted(POINTS)} []", loaded.stdout + loaded.stderr


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the call numbers below are x86_64's")
def test_the_seccomp_filter_refuses_every_socket_but_unix_ones_and_io_uring() -> None:
    """The filter every student's process gets (needing no privilege): in a child, as a student's process would."""

    def probe() -> list[str]:
        seccomp.install()
        results = []
        for family, kind in ((socket.AF_INET, socket.SOCK_STREAM), (socket.AF_INET6, socket.SOCK_DGRAM),
                             (socket.AF_PACKET, socket.SOCK_RAW), (socket.AF_NETLINK, socket.SOCK_RAW),
                             (socket.AF_UNIX, socket.SOCK_STREAM)):
            try:
                socket.socket(family, kind).close()
                results.append("opened")
            except OSError as error:
                results.append(errno.errorcode[error.errno])
        libc = ctypes.CDLL(None, use_errno=True)
        for call, arguments in ((425, (8, ctypes.create_string_buffer(120))), (250, (0, -3))):  # io_uring_setup, keyctl
            results.append("called" if libc.syscall(call, *arguments) >= 0 else errno.errorcode[ctypes.get_errno()])
        return results

    results = in_a_child(probe)
    assert results == ["EPERM"] * 4 + ["opened"] + ["EPERM"] * 2
