"""Gradients by finite differences lose points at every step size, not only the corpus's few.

The corpus grades a few steps end to end with `otter run`; this sweep runs the built test cases
in-process (otter's own `test_case.call_func`) on many steps, which takes seconds.
"""

import contextlib
import io

import nbformat
import numpy as np
import pytest
from otter.test_files.exception_test import test_case

from conftest import ROOT
from corpus.answers import BASELINE, network_finite_differences, toy_finite_differences
from corpus.grade import STUDENT_NOTEBOOK

TOY_STEPS = np.geomspace(1e-10, 1e-2, 33)
NETWORK_STEPS = np.geomspace(1e-12, 1e-2, 21)


@pytest.fixture(autouse=True)
def checks_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test cases import `backprop_checks`, which the zip ships beside the notebook."""
    monkeypatch.syspath_prepend(str(ROOT / "assignment"))


def cases(question: str) -> dict[str, test_case]:
    """The test cases of one question, as the built test file defines them."""
    path = ROOT / "tests" / f"{question}.py"
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return {name: value for name, value in namespace.items() if isinstance(value, test_case)}


def given_code(*starts: str) -> list[str]:
    """The student notebook's code cells that start with each of `starts`, in that order."""
    notebook = nbformat.read(STUDENT_NOTEBOOK, as_version=4)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    return [next(source for source in code if source.startswith(start)) for start in starts]


def run_cells(sources: list[str]) -> dict:
    """Run code cells one after another in a fresh namespace, quietly; return the namespace."""
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        for source in sources:
            exec(compile(source, "<cell>", "exec"), namespace)
    return namespace


def failing(cases_: dict[str, test_case], environment: dict) -> list[str]:
    failed = []
    for name, case in cases_.items():
        try:
            case.call_func(environment)
        except AssertionError:
            failed.append(name)
    return failed


def test_toy_model_by_finite_differences_never_passes() -> None:
    given = given_code("import math", "def fn(", "beta0, beta1, beta2, beta3 =")
    baseline = run_cells([*given, BASELINE["q1.1"], BASELINE["q1.2"], BASELINE["q1.3"]])
    q13 = cases("q1.3")
    assert failing(q13, baseline) == []
    passing = [step for step in TOY_STEPS
               if not failing(q13, run_cells([*given, BASELINE["q1.1"], BASELINE["q1.2"],
                                              toy_finite_differences(float(step))]))]
    assert passing == [], f"q1.3 by centred finite differences gets full marks with steps {passing}"


def test_network_by_finite_differences_fails_at_the_kink() -> None:
    given = given_code("import math", "np.random.seed(0)")
    forward = [BASELINE["q2.1"], *given_code("net_input = np.ones", "def least_squares_loss(")]
    kink = {"test_exact_at_a_kink": cases("q2.2")["test_exact_at_a_kink"]}
    assert failing(kink, run_cells([*given, *forward, BASELINE["q2.2"]])) == []
    passing = [step for step in NETWORK_STEPS
               if not failing(kink, run_cells([*given, *forward, network_finite_differences(float(step))]))]
    assert passing == [], f"backward_pass by centred finite differences passes the kink case with steps {passing}"
