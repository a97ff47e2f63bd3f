"""The grading tests against a corpus of student answers, graded with the committed autograder zip.

Every wrong answer must lose points on its own question and keep full marks on the others, with
failure messages that name the quantity and the problem and print no hidden value. Every correct
answer must get full marks. Run with `-s` to see the table and the rates.
"""

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import QUESTIONS
from corpus.answers import ANSWERS, CORRECT, WRONG, Answer
from corpus.grade import Graded, grade, slug
from corpus.hidden_values import hidden_numbers, leaked_numbers

# Grading runs one kernel per answer; CI has two cores.
WORKERS = 2


@pytest.fixture(scope="session")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[Answer, Graded]:
    """Every answer of the corpus, graded once."""
    folder = tmp_path_factory.mktemp("corpus")
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = pool.map(lambda answer: grade(answer, folder / slug(answer)), ANSWERS)
        return dict(zip(ANSWERS, results))


def answer_id(answer: Answer) -> str:
    return f"{answer.question} {answer.name}"


def test_corpus_covers_every_question() -> None:
    assert len(WRONG) >= 30 and len(CORRECT) >= 12
    assert {answer.question for answer in WRONG} == set(QUESTIONS)
    assert {answer.question for answer in CORRECT} == set(QUESTIONS)
    assert len({answer_id(answer) for answer in ANSWERS}) == len(ANSWERS)


@pytest.mark.parametrize("answer", WRONG, ids=answer_id)
def test_wrong_answer_loses_points_on_its_question_only(graded: dict[Answer, Graded], answer: Answer) -> None:
    result = graded[answer]
    assert not result.full_marks(answer.question), f"not caught: {result.scores}"
    others = [q for q in QUESTIONS if q != answer.question and not result.full_marks(q)]
    assert not others, f"also costs points on {others}: {result.scores}"


@pytest.mark.parametrize("answer", CORRECT, ids=answer_id)
def test_correct_answer_gets_full_marks(graded: dict[Answer, Graded], answer: Answer) -> None:
    result = graded[answer]
    penalised = {q: result.outputs[q] for q in QUESTIONS if not result.full_marks(q)}
    assert not penalised, f"penalised: {result.scores}\n{penalised}"


@pytest.fixture(scope="session")
def secret() -> np.ndarray:
    """The numbers only hidden cases hold."""
    numbers = hidden_numbers()
    assert len(numbers) > 100
    return numbers


@pytest.mark.parametrize("answer", WRONG, ids=answer_id)
def test_wrong_answer_gets_a_useful_message(graded: dict[Answer, Graded], secret: np.ndarray, answer: Answer) -> None:
    output = graded[answer].outputs[answer.question]
    for text in answer.says:
        assert text in output, f"the failure output should contain {text!r}:\n{output}"
    errors = re.findall(r"^\s*(\w+): (.*)$", output, flags=re.MULTILINE)
    raised = [(kind, message) for kind, message in errors if kind.endswith(("Error", "Exception"))]
    assert raised, output
    for kind, message in raised:
        assert kind == "AssertionError" and message.startswith("`"), \
            f"a failing case should say which quantity is wrong, not {kind}: {message}"
    leaks = leaked_numbers(output, secret)
    assert not leaks, f"the output prints hidden values {leaks[:5]}:\n{output}"


def table(graded: dict[Answer, Graded]) -> str:
    """One line per answer: what it is, what should happen, and its points per question."""
    lines = [f"{'answer':<48} {'expected':<16} " + " ".join(f"{q:>7}" for q in QUESTIONS)]
    for answer, result in graded.items():
        expected = f"loses on {answer.question}" if answer.wrong else "full marks"
        points = " ".join(f"{score:>3g}/{maximum:<3g}" for score, maximum in result.scores.values())
        lines.append(f"{answer_id(answer):<48} {expected:<16} {points}")
    return "\n".join(lines)


def test_rates(graded: dict[Answer, Graded], tmp_path_factory: pytest.TempPathFactory) -> None:
    wrong = [graded[answer] for answer in WRONG]
    caught = [answer for answer, result in zip(WRONG, wrong) if not result.full_marks(answer.question)]
    isolated = [answer for answer in caught
                if all(graded[answer].full_marks(q) for q in QUESTIONS if q != answer.question)]
    full = [answer for answer in CORRECT if all(graded[answer].full_marks(q) for q in QUESTIONS)]
    rates = (f"bugs caught: {len(caught)}/{len(WRONG)}, bugs isolated to their question: "
             f"{len(isolated)}/{len(WRONG)}, correct answers at full marks: {len(full)}/{len(CORRECT)}")
    report = Path(tmp_path_factory.getbasetemp()) / "corpus-report.txt"
    report.write_text(f"{table(graded)}\n\n{rates}\n")
    print(f"\n{table(graded)}\n\n{rates}\n(written to {report})")
    assert len(caught) == len(isolated) == len(WRONG) and len(full) == len(CORRECT), rates
