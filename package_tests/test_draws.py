"""Hidden inputs drawn at every grading: no answer's hidden outcome may depend on the draw.

Each answer of the corpus runs in this process (as `in_process` does), and its question's hidden
cases run BACKPROP_DRAWS times (2 in `make test`), each time on inputs drawn anew: a correct answer
passes every case of every draw, a wrong one fails the very same cases with the very same messages
on every draw (its mistake shows, and reads the same, whatever the draw), with its exact points
where the corpus gives them, and no hidden message
shows a number that was drawn. Only finite differences, a numerical estimate, may pass a case on one
draw and fail it on another, but never the cases made for them: the toy model's relations and the
ReLU's kink. Measured on many draws with, for example,
`BACKPROP_DRAWS=1000 .venv/bin/python -m pytest package_tests/test_draws.py -k "outcome and not finite"`
(docs/checks.md).
"""

import os
from collections import Counter

import pytest

from built import CASES
from corpus.answers import ANSWERS, BASELINE, Answer
from hidden_values import leaked_numbers, recorded_draws, secret_of
from in_process import InProcess, case_results, notebook_cells

DRAWS = int(os.environ.get("BACKPROP_DRAWS", "2"))
# The cases made to defeat finite differences, which they fail on every draw.
AGAINST_ESTIMATES = {"q1.2": ("test_backward_output_end",), "q1.3": ("test_parameters_biases", "test_parameters_weights"),
                     "q2.2": ("test_exact_at_a_kink",)}


def estimate(answer: Answer) -> bool:
    return "finite differences" in answer.name


def name(answer: Answer) -> str:
    return f"{answer.question} {answer.name}"


class Draws:
    """The baseline run in this process, and each answer's results there, made when first asked for:
    its hidden cases' ({case: (passed, message)}) on each of DRAWS draws, and its public cases'."""

    def __init__(self) -> None:
        self.student = InProcess.running(notebook_cells(BASELINE))
        self.found: dict[str, tuple[list[dict], dict]] = {}
        self.drawn: list = []

    def __getitem__(self, answer: Answer) -> tuple[list[dict], dict]:
        if name(answer) not in self.found:
            with recorded_draws() as drawn:
                self.student.run(answer.code)  # the last cell that assigns the question's names: its answer cell now
                self.found[name(answer)] = ([case_results(self.student, answer.question, hidden=True)
                                             for _ in range(DRAWS)],
                                            case_results(self.student, answer.question, hidden=False))
                for question in BASELINE:  # the baseline's cells are the last ones again
                    self.student.run(BASELINE[question])
            self.drawn += drawn
        return self.found[name(answer)]


@pytest.fixture(scope="module")
def draws() -> Draws:
    return Draws()


@pytest.fixture(scope="module")
def points() -> dict[str, dict[str, float]]:
    """{question: {case: points}}."""
    return {question: {case: points for case, (points, _) in cases.items()} for question, cases in CASES.items()}


@pytest.mark.slow
@pytest.mark.parametrize("answer", ANSWERS, ids=name)
def test_no_hidden_outcome_depends_on_the_draw(draws, points, answer: Answer) -> None:
    hidden, public = draws[answer]
    outcomes = Counter(tuple(sorted(name for name, (passed, _) in cases.items() if not passed)) for cases in hidden)
    if not answer.wrong:
        failing = [message for cases in hidden for passed, message in cases.values() if not passed]
        assert outcomes == Counter({(): DRAWS}), (outcomes, failing[:3])
        return
    if estimate(answer):  # a numerical estimate: the cases made for it fail on every draw
        assert all(set(AGAINST_ESTIMATES[answer.question]) <= set(failed) for failed in outcomes), outcomes
        return
    assert len(outcomes) == 1, f"the draw decides which hidden cases fail: {outcomes}"
    messages = Counter(tuple(sorted(cases.items())) for cases in hidden)
    assert len(messages) == 1, f"the draw decides what a hidden message says: {list(messages)}"
    if answer.points is not None:
        [failed] = outcomes
        earned = sum(points[answer.question][case] for case in points[answer.question]
                     if case not in failed and public.get(case, (True,))[0])
        assert earned == answer.points


@pytest.mark.slow
def test_what_a_hidden_case_draws_never_shows_in_its_messages(draws) -> None:
    """No hidden message of any answer, on any draw, shows a number that was drawn (the messages
    are fixed texts): a table of them is worth nothing."""
    shown = [message for answer in ANSWERS for cases in draws[answer][0] for _, message in cases.values()]
    secret = secret_of(draws.drawn)
    assert len(secret) > 1000
    assert not leaked_numbers("\n".join(shown), secret)
