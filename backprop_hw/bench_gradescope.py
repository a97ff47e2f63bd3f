"""Time the autograder zip on slow and hung notebooks, in Gradescope's default container.

    python -m backprop_hw.bench_gradescope [--only NAME ...] [--jobs 1]

Each notebook of SLOW_SET (the solutions with one thing changed: a function that never returns on
some networks or on all, a cell that never ends, slow but finishing code, a cell that sleeps, one
that fills 700 MB, and everything at once) goes through the committed zip's own `run_autograder`,
as `make gradescope-check` runs it, in a cgroup held to Gradescope's defaults: half a CPU
(`cpu.cfs_quota_us` 50000 of 100000) and 768 MB for every process together, the grader's own
included; killed, as on Gradescope, at the assignment's overall timeout. Prints, for each, the time
until results.json was written, the CPU time the container used (on a busy machine the wall time
grows, the CPU time does not), the peak memory and the points per question, against what it should
get and the time it must take; exits with status 1 if any misses.
"""

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import nbformat

from backprop_hw import gradescope_check, sandbox
from backprop_hw.autograder.trusted import FINISH, load_tests
from backprop_hw.examples import ALL, STUBBORN_LOOP, insert_after_check, points_losing, read, replace_line
from backprop_hw.paths import ASSIGNMENT, AUTOGRADER_ZIP, ROOT, SOLUTIONS_NOTEBOOK

CONTAINER_BYTES = 768 << 20  # Gradescope's default container: 768 MB ...
CPUS = 0.5  # ... and half a vCPU
# What a notebook may take until its results are written, by kind: the targets.
CORRECT_SECONDS, ONE_HANG_SECONDS = 10.0, 60.0
WORST = 0.8  # of the overall timeout, for every notebook

FORWARD = "def compute_network_output(net_input, all_weights, all_biases):\n"
BACKWARD = "def backward_pass(all_weights, all_biases, all_f, all_h, y):\n"
NEVER = "    while True:\n        pass\n"
# Part 1's answer cells, by their first line in the solutions.
PART_1 = {"q1.1": "f0 = ", "q1.2": "dldf3 = ", "q1.3": "dldbeta3 = "}
TESTS = ROOT / "tests"  # every case of every question, as the zip holds them


@dataclass(frozen=True)
class Slow:
    """A notebook of the set: how it is made from the solutions, which cases it must fail
    ({question: case names, or ALL}), and how long it may take to its results (None: WORST)."""

    name: str
    make: Callable[[nbformat.NotebookNode], nbformat.NotebookNode]
    fails: dict[str, str | tuple[str, ...]]
    seconds: Optional[float] = ONE_HANG_SECONDS


def in_function(definition: str, body: str, before: str = "") -> Callable[[nbformat.NotebookNode], nbformat.NotebookNode]:
    """The function of `definition` with `body` first in it (and `before` the cell's code)."""
    return lambda notebook: replace_line(notebook, definition, f"{before}{definition}{body}")


def in_cell(question: str, code: str) -> Callable[[nbformat.NotebookNode], nbformat.NotebookNode]:
    """Part 1's answer cell of `question` with `code` after its answer."""
    def make(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
        [cell] = [c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(PART_1[question])]
        changed = replace_line(notebook, cell.source.splitlines()[-1], cell.source.splitlines()[-1] + "\n" + code)
        return changed
    return make


def busy(seconds: float) -> str:
    return f"import time as _time\n_end = _time.monotonic() + {seconds}\nwhile _time.monotonic() < _end:\n    pass\n"


def indented(code: str) -> str:
    return "".join(f"    {line}\n" for line in code.splitlines())


def both(*makes: Callable) -> Callable[[nbformat.NotebookNode], nbformat.NotebookNode]:
    def make(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
        for change in makes:
            notebook = change(notebook)
        return notebook
    return make


# Another depth than the notebook's network's, read when the cell runs (the checks' re-calls with the
# notebook's globals set leave it alone).
OTHER_DEPTH = "NOTEBOOK_LAYERS = len(all_weights)\n\n"
SLOW_SET = [
    Slow("the solutions", lambda notebook: notebook, {}, CORRECT_SECONDS),
    Slow("backward_pass never returns", in_function(BACKWARD, NEVER), {"q2.2": ALL}),
    Slow("backward_pass never returns on networks of another depth",
         in_function(BACKWARD, "    while len(all_weights) != NOTEBOOK_LAYERS:\n        pass\n", OTHER_DEPTH),
         {"q2.2": ("test_other_networks",)}),
    Slow("backward_pass never returns at the ReLU's kink",
         in_function(BACKWARD, "    while any((f == 0).any() for f in all_f[:-1]):\n        pass\n"),
         {"q2.2": ("test_exact_at_a_kink",)}),
    Slow("compute_network_output never returns", in_function(FORWARD, NEVER), {"q2.1": ALL}),
    Slow("compute_network_output never returns on networks of another depth",
         in_function(FORWARD, "    while len(all_weights) != NOTEBOOK_LAYERS:\n        pass\n", OTHER_DEPTH),
         {"q2.1": ("test_other_networks",)}),
    Slow("both functions never return", both(in_function(FORWARD, NEVER), in_function(BACKWARD, NEVER)),
         {"q2.1": ALL, "q2.2": ALL}, None),
    Slow("backward_pass catches the alarm and goes on", in_function(BACKWARD, indented(STUBBORN_LOOP)), {"q2.2": ALL}),
    Slow("q1.1's cell never ends", in_cell("q1.1", "while True:\n    pass"), {"q1.1": ALL}),
    Slow("q1.2's cell never ends", in_cell("q1.2", "while True:\n    pass"), {"q1.2": ALL}),
    Slow("q1.3's cell never ends", in_cell("q1.3", "while True:\n    pass"), {"q1.3": ALL}),
    Slow("q1.3's cell never ends with other parameters",
         in_cell("q1.3", "_first = globals().setdefault('_first_parameters', (beta0, omega0, x))\n"
                         "while (beta0, omega0, x) != _first:\n    pass"), {"q1.3": ALL}),
    Slow("backward_pass takes a second a call", in_function(BACKWARD, indented(busy(1.0))), {}),
    Slow("q1.1's cell takes two seconds", in_cell("q1.1", busy(2.0)), {}),
    Slow("a cell that sleeps", lambda notebook: insert_after_check(notebook, "q1.1", "import time\ntime.sleep(3600)"),
         {}),
    Slow("a cell that catches the alarm and goes on", lambda notebook: insert_after_check(notebook, "q2.1", STUBBORN_LOOP),
         {}),
    Slow("a cell that fills 700 MB", lambda notebook: insert_after_check(
        notebook, "q2.2", "import numpy as np\nhog = np.ones(700 * 2**20 // 8)"), {}),
    Slow("everything never ends", both(*(in_cell(q, "while True:\n    pass") for q in PART_1),
                                       in_function(FORWARD, indented(STUBBORN_LOOP)),
                                       in_function(BACKWARD, indented(STUBBORN_LOOP))),
         {q: ALL for q in (*PART_1, "q2.1", "q2.2")}, None),
]


def expected_points(fails: dict[str, str | tuple[str, ...]], tests: Path = TESTS) -> dict[str, float]:
    """The points a notebook gets when it fails exactly the cases `fails` names."""
    return points_losing(load_tests(tests, ASSIGNMENT), fails)


def write_set(folder: Path, slow_set: list[Slow] = SLOW_SET) -> dict[str, Path]:
    """Every notebook of `slow_set`, made from the committed solutions, in `folder`: {name: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for number, item in enumerate(slow_set):
        paths[item.name] = folder / f"{number:02d}.ipynb"
        nbformat.write(item.make(read(SOLUTIONS_NOTEBOOK)), paths[item.name])
    return paths


@dataclass
class Measured:
    name: str
    seconds: Optional[float]  # until results.json was written; None if it never was
    peak_mb: Optional[float]
    cpu_seconds: float  # the CPU time the container used: at half a CPU it takes twice that at least
    scores: dict[str, float]
    expected: dict[str, float]
    limit: float  # the time it may take

    @property
    def met(self) -> bool:
        return self.seconds is not None and self.seconds <= self.limit and self.scores == self.expected


def measure(item: Slow, path: Path, expected: dict[str, float], limits: sandbox.Limits,
            autograder: Path = AUTOGRADER_ZIP) -> Measured:
    """`item`'s notebook at `path` in a container held to `limits` (killed at the zip's timeout)."""
    run = gradescope_check.timed_run(path, autograder, limits, container_bytes=CONTAINER_BYTES)
    scores = {test["name"]: test["score"] for test in (run.results or {}).get("tests", []) if test["name"] in expected}
    return Measured(item.name, run.seconds_to_results, run.peak_bytes / 2**20 if run.peak_bytes else None,
                    run.run.cpu_seconds, scores, expected, item.seconds or WORST * limits.wall_seconds)


def bench(names: Optional[list[str]] = None, jobs: int = 1, autograder: Path = AUTOGRADER_ZIP) -> Iterator[Measured]:
    """Measure the items of SLOW_SET named (all by default), `jobs` at a time; each as it is done, in order."""
    chosen = [item for item in SLOW_SET if not names or item.name in names]
    with tempfile.TemporaryDirectory(prefix="backprop-bench-gradescope-") as temporary:
        limits = gradescope_check.limits_for(autograder, cpus=CPUS)
        paths, tests = write_set(Path(temporary), chosen), load_tests(TESTS, ASSIGNMENT)
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            yield from pool.map(lambda item: measure(item, paths[item.name], points_losing(tests, item.fails), limits,
                                                     autograder), chosen)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", help="the names of the notebooks to time (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks graded at once, each in its own container")
    arguments = parser.parse_args()
    timeout = gradescope_check.limits_for(AUTOGRADER_ZIP).wall_seconds
    print(f"The zip's overall timeout: {timeout:g} s (grading plans to finish by {FINISH:.0%} of it; every notebook "
          f"must be done by {WORST:.0%}). Each notebook in a container of {CONTAINER_BYTES >> 20} MB and {CPUS:g} CPU.")
    print(f"load average before: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    width = max(len(item.name) for item in SLOW_SET)
    questions = list(expected_points({}))
    print(f"\n{'notebook':<{width}}  {'results':>8}  {'may take':>8}  {'CPU':>7}  {'peak':>7}  {'  '.join(questions)}"
          "  as it should", flush=True)
    missed = 0
    try:
        for m in bench(arguments.only, arguments.jobs):
            seconds = f"{m.seconds:7.1f}s" if m.seconds is not None else "    none"
            peak = f"{m.peak_mb:5.0f}MB" if m.peak_mb else "      ?"
            points = "  ".join(f"{m.scores.get(q, float('nan')):>{len(q)}g}" for q in questions)
            print(f"{m.name:<{width}}  {seconds}  {m.limit:7.0f}s  {m.cpu_seconds:6.1f}s  {peak}  {points}  "
                  f"{'yes' if m.met else 'NO'}", flush=True)
            missed += not m.met
    except sandbox.SandboxUnavailable as error:
        print(f"refusing to run: {error}", file=sys.stderr)
        return 2
    print(f"load average after: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
