"""The time budget of a notebook's grading (`trusted.Budget`): its arithmetic, how a request to the
student's process is held to it, and hung notebooks graded on short limits through `make grade`'s
engine and the zip's Gradescope entry point, each within its time and with the points of every
question it did not break."""

import dataclasses
import json
import os
import re
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional

import nbformat
import pytest

from backprop_hw import bench_gradescope, grading, sandbox
from backprop_hw.autograder import gradescope_run, trusted
from backprop_hw.bench_gradescope import SLOW_SET, expected_points, write_set
from backprop_hw.results import Submission, unpack_autograder
from graders import Graded, autograder_with, grade_gradescope


class Clock:
    """time.monotonic, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(trusted.time, "monotonic", clock)
    return clock


@pytest.mark.parametrize("overall, ready, questions", [(600, 8.0, 5), (60, 0.1, 5), (2400, 40.0, 12), (30, 3.0, 1)])
def test_no_sum_of_limits_exceeds_the_overall_timeout(clock: Clock, overall: float, ready: float,
                                                      questions: int) -> None:
    """The worst notebook: every part of the grading takes all the time the budget lets it take, in the
    order grading runs them (the cells with each question's public checks between them, then every
    hidden check). Grading still ends by FINISH of the timeout, and every question has at least its
    share for its checks, whatever the parts before it took."""
    started = clock.now
    budget = trusted.Budget(overall, cell_seconds=overall, started=started)
    clock.now += ready  # the student's process getting ready
    names = [f"q{number}" for number in range(questions)]
    budget.plan(names)
    shares = dict(budget.shares)
    assert sum(shares.values()) == pytest.approx(trusted.FINISH * overall - ready)

    def take_all(part: str) -> None:
        budget.switch(part)
        assert budget.time_left() >= -1e-9
        clock.now += max(0.0, budget.time_left())

    for name in names:
        take_all(trusted.CELLS)
        budget.switch(name)
        assert budget.time_left() >= shares[name] - 1e-9  # its public checks
        take_all(name)
    budget.done(trusted.CELLS)
    for name in names:
        take_all(name)  # its hidden checks: what its public ones left, and what the parts before it left
        budget.done(name)
    assert clock.now - started == pytest.approx(trusted.FINISH * overall)  # all of it, and no more


def test_a_question_left_alone_keeps_its_share(clock: Clock) -> None:
    """A hung q1 takes all it may: q2 still has its whole share, and the time q1 does not get back."""
    budget = trusted.Budget(100, 30, started=clock.now)
    budget.plan(["q1", "q2"])
    budget.switch(trusted.CELLS)
    clock.now += 1  # a quick notebook
    budget.done(trusted.CELLS)
    budget.switch("q1")
    assert budget.time_left() == pytest.approx(budget.end - clock.now - budget.shares["q2"])
    clock.now += budget.time_left()
    budget.done("q1")
    budget.switch("q2")
    assert budget.time_left() == pytest.approx(budget.shares["q2"])


def test_the_deadlines_fit_the_platforms_limits() -> None:
    """Gradescope: grading ends by FINISH of the timeout, its guardian writes results by GUARD of it,
    within 80%. make grade: a worker answers within its watchdog, at most twice the limit."""
    assert trusted.FINISH < gradescope_run.GUARD <= 0.8
    assert trusted.FINISH < grading.ANSWER_FACTOR <= 2
    assert bench_gradescope.WORST == 0.8
    assert trusted.GRACE_SECONDS < trusted.FLOOR_SECONDS
    # The build's limits of calls: at least the floor, and the same number for nearby measurements.
    assert trusted.call_limit(0.001) == trusted.FLOOR_SECONDS
    assert trusted.call_limit(0.3) == trusted.call_limit(0.31) >= trusted.REFERENCE_MULTIPLE * 0.31


class Answering:
    """A student's process that is ready, then answers every request with `answer`, and keeps the requests."""

    def __init__(self, answer: dict, count: int = 4) -> None:
        answers_read, answers_write = os.pipe()
        os.write(answers_write, b'{"ready": true}\n' + (json.dumps(answer).encode() + b"\n") * count)
        os.close(answers_write)
        self.requests_read, requests_write = os.pipe()
        self.stdin, self.stdout = os.fdopen(requests_write, "wb"), os.fdopen(answers_read, "rb")

    def requests(self) -> list[dict]:
        os.set_blocking(self.requests_read, False)
        try:
            return [json.loads(line) for line in os.read(self.requests_read, 1 << 20).splitlines()]
        except BlockingIOError:
            return []

    def kill(self) -> None:
        pass

    def wait(self) -> int:
        return 0

    def mute(self) -> None:
        pass

    def describe_end(self) -> Optional[str]:
        return None


def test_a_request_gets_its_own_limit_or_what_its_part_has_left() -> None:
    budget = trusted.Budget(100, 30)
    process = Answering({"result": {"kind": "none"}})
    student = trusted.StudentProcess(process, budget)
    budget.plan(["q1", "q2"])
    budget.done(trusted.CELLS)
    budget.switch("q1")
    own = student.limited({"call": "f", "args": []}, 2.0, "a call")
    assert own.whole and own.limit == 2.0 and not own.ran_out
    left = budget.time_left()
    cut = student.limited({"call": "f", "args": []}, 1000.0, "a call")
    assert not cut.whole and left - trusted.GRACE_SECONDS - 1 < cut.limit <= left - trusted.GRACE_SECONDS
    budget.end = time.monotonic() + budget.kept["q2"] + 1.0  # one second left for q1: half of it for a grace
    short = student.limited({"call": "f", "args": []}, 2.0, "a call")
    assert not short.whole and 0.4 < short.limit <= 0.5
    assert [request["seconds"] for request in process.requests()] == [2.0, cut.limit, short.limit]  # the harness's alarm
    budget.end = time.monotonic() + budget.kept["q2"]  # q1's time is spent
    with pytest.raises(trusted.OutOfTime, match="the time for the checks of q1 ran out"):
        student.limited({"call": "f", "args": []}, 2.0, "a call")
    with pytest.raises(trusted.OutOfTime, match="the time for the checks of q1 ran out"):
        student.request({"get": "f0"})
    assert process.requests() == [] and student.alive  # nothing was sent, and the process goes on


def test_a_timeout_counts_only_when_this_processs_clock_saw_it() -> None:
    """The harness says CellTimeout at once: the student's code raised it, no limit was reached."""
    budget = trusted.Budget(100, 30)
    student = trusted.StudentProcess(Answering({"error": {"type": "CellTimeout", "message": "it ran past 2 s"}}), budget)
    assert not student.limited({"call": "f", "args": []}, 2.0, "a call").ran_out


# ---------------------------------------------------------------------------------------------
# Hung notebooks on short limits, through both paths

HUNG = ["backward_pass never returns", "compute_network_output never returns on networks of another depth",
        "q1.3's cell never ends"]
# Short cells and calls: a hang costs seconds. The overall limits leave each question's checks time
# to spare on a loaded machine; only a notebook that hangs spends it.
CELL_SECONDS, CALL_SECONDS = 3, 1
OVERALL = {"make grade": 120, "Gradescope": 120}
# Where the CPU matters, a hang spins: on Gradescope's path, whose grader shares the container's CPU
# with the student's process. Elsewhere it sleeps in its loop, which costs the grader the same time
# (its clocks and the harness's alarm are wall-clock) and leaves the machine's CPU to other tests.
SPINNING = {"make grade": set(), "Gradescope": {HUNG[0]}}
SLEEP = '__import__("time").sleep(1)'


def sleeping(item: bench_gradescope.Slow) -> bench_gradescope.Slow:
    """`item` with every loop of its hang sleeping instead of spinning (`pass` becomes a sleep)."""

    def make(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
        notebook, loops = item.make(notebook), 0
        for cell in notebook.cells:
            cell.source, found = re.subn(r"(while [^\n]*:\n\s*)pass\b", rf"\g<1>{SLEEP}", cell.source)
            loops += found
        assert loops, f"no loop to put to sleep in {item.name!r}"
        return notebook

    return dataclasses.replace(item, make=make)


def grade_with_workers(paths: dict[str, Path], limits: sandbox.Limits, autograder: Path) -> dict[str, Graded]:
    """Grade each notebook with a worker of `make grade` of its own; {name: Graded} with the seconds
    its monitor took (a worker's answer is what the watchdog times)."""
    with tempfile.TemporaryDirectory(prefix="backprop-workers-") as temporary:
        source = unpack_autograder(autograder, Path(temporary))

        def grade(slot: int, name: str) -> Graded:
            worker = grading.Worker(source, slot, limits)
            worker.start()
            try:
                outcome = worker.grade(Submission(paths[name].name, paths[name]))
            finally:
                worker.stop()
            assert not outcome.grader_error, outcome.grader_error
            return Graded(outcome.results, {"seconds": outcome.seconds})

        with ThreadPoolExecutor(max_workers=len(paths)) as pool:
            return dict(zip(paths, pool.map(grade, range(len(paths)), paths)))


@pytest.fixture(scope="module")
def hung(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Graded]]:
    """The hung notebooks, graded by `make grade`'s workers and by the zip's entry point at once: {path: {name: Graded}}."""
    base = tmp_path_factory.mktemp("hung")
    items = [item for item in SLOW_SET if item.name in HUNG]
    spinning = write_set(base / "spinning", items)
    asleep = write_set(base / "sleeping", [sleeping(item) for item in items])
    paths = {path: {name: (spinning if name in SPINNING[path] else asleep)[name] for name in HUNG} for path in OVERALL}
    calls = {"call_seconds": {"backward_pass": CALL_SECONDS, "compute_network_output": CALL_SECONDS}}
    for_make_grade = autograder_with(calls, base / "make-grade.zip")
    for_gradescope = autograder_with({**calls, "cell_seconds": CELL_SECONDS,
                                      "gradescope_timeout": OVERALL["Gradescope"]}, base / "gradescope.zip")
    limits = sandbox.Limits(cell_seconds=CELL_SECONDS, wall_seconds=OVERALL["make grade"], memory_bytes=512 * sandbox.MIB)
    with ThreadPoolExecutor(max_workers=3) as pool:
        batch = pool.submit(grade_with_workers, paths["make grade"], limits, for_make_grade)
        dry_runs = {name: pool.submit(grade_gradescope, path, autograder=for_gradescope)
                    for name, path in paths["Gradescope"].items() if name != HUNG[1]}  # one that hangs in a few calls is enough here
        graded = {"make grade": batch.result(), "Gradescope": {name: run.result() for name, run in dry_runs.items()}}
    return graded


def seconds_of(graded: Graded) -> float:
    """How long grading took: the monitor's time (make grade), or the grader's own (Gradescope's execution_time)."""
    return graded.row.get("seconds") or graded.results["execution_time"]


@pytest.mark.sandbox
@pytest.mark.parametrize("path", OVERALL)
def test_a_hung_answer_costs_only_its_own_cases_within_the_time(hung: dict[str, dict[str, Graded]], path: str) -> None:
    for name, graded in hung[path].items():
        [item] = [item for item in SLOW_SET if item.name == name]
        assert graded.scores == expected_points(item.fails), (name, graded.visible)
        assert seconds_of(graded) <= bench_gradescope.WORST * OVERALL[path], name


@pytest.mark.sandbox
def test_a_function_that_never_returns_fails_each_case_saying_how_long_it_had(hung: dict[str, dict[str, Graded]]) -> None:
    for graded in (hung["make grade"][HUNG[0]], hung["Gradescope"][HUNG[0]]):
        shown = graded.output("q2.2")
        cases = [line for line in shown.splitlines() if line.startswith("❌")]
        messages = [line.strip() for line in shown.splitlines() if "did not finish" in line]
        assert len(messages) == len(cases) >= 2, shown
        assert all(message.startswith(f"`backward_pass` did not finish in {CALL_SECONDS:g} s (on ") for message in messages)
    sometimes = hung["make grade"][HUNG[1]].output("q2.1")
    assert f"`compute_network_output` did not finish in {CALL_SECONDS:g} s (on networks of other depths" in sometimes


# ---------------------------------------------------------------------------------------------
# Gradescope's guardian: results are written whatever happens to the grading process


def guarded(tmp_path: Path, grading: Callable[[], None], timeout: float) -> tuple[int, dict]:
    """Run `grading` in a child process under gradescope_run.guard; its exit status and results.json."""
    (tmp_path / "results").mkdir()
    started = time.monotonic()
    child = os.fork()
    if child == 0:
        try:
            grading()
        finally:
            os._exit(0)
    code = gradescope_run.guard(child, tmp_path, started, timeout, None)
    return code, json.loads((tmp_path / "results" / "results.json").read_text())


def test_the_guardian_writes_results_when_the_grading_process_is_killed(tmp_path: Path) -> None:
    code, results = guarded(tmp_path, lambda: os.kill(os.getpid(), signal.SIGKILL), 60)
    assert code == 1 and results["tests"][0]["name"] == "Autograder failed"
    assert "the grading process was killed by signal 9 (out of memory?)" in results["tests"][1]["output"]


def test_the_guardian_stops_a_grading_that_runs_past_its_time(tmp_path: Path) -> None:
    timeout = 2.0
    started = time.monotonic()
    code, results = guarded(tmp_path, lambda: time.sleep(60), timeout)
    assert code == 1 and gradescope_run.GUARD * timeout <= time.monotonic() - started < 10
    assert "the grading had not finished" in results["tests"][1]["output"]


def test_the_guardian_keeps_the_grading_processs_own_results(tmp_path: Path) -> None:
    def grading() -> None:
        gradescope_run.write_results(tmp_path, {"tests": [], "score": 22})

    code, results = guarded(tmp_path, grading, 60)
    assert code == 0 and results == {"tests": [], "score": 22}


def test_the_zip_carries_the_masters_timeout_and_a_limit_for_every_function_the_tests_call() -> None:
    """The build takes `gradescope_timeout` out of the master's configuration into the zip's, and
    measures the reference solution's calls: one limit per function a test takes as an argument."""
    import inspect
    import zipfile

    from backprop_hw.build import take_our_settings
    from backprop_hw.paths import ASSIGNMENT, AUTOGRADER_ZIP, MASTER, ROOT

    with zipfile.ZipFile(AUTOGRADER_ZIP) as archive:
        config = json.loads(archive.read("otter_config.json"))
    master = take_our_settings(nbformat.read(MASTER, as_version=4))
    assert config["gradescope_timeout"] == master["gradescope_timeout"] == gradescope_run.timeout_of(config)
    functions = {name for test_file in trusted.load_tests(ROOT / "tests", ASSIGNMENT).values()
                 for case in test_file.test_cases for name in inspect.signature(case.body.test_func).parameters} - {"env"}
    assert set(config["call_seconds"]) == functions
    for limit in config["call_seconds"].values():
        assert limit == trusted.FLOOR_SECONDS or (limit > trusted.FLOOR_SECONDS and limit.is_integer()
                                                   and limit == trusted.call_limit(limit / trusted.REFERENCE_MULTIPLE))
