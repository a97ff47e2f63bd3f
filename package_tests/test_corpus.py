"""The tests of the homework against a corpus of student answers and of whole notebooks.

Every answer is graded with `make grade`'s engine; a sample, through the zip's own Gradescope entry
point too, which must agree. A wrong answer must lose points on its own question and keep full
marks on the others, with failure messages (shown to the student) that name the quantity and the
problem and print no hidden value. Every correct answer must get full marks. Every scenario must
get exactly its points. Run with `-s` to see the table and the rates.
"""

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import QUESTIONS
from backprop_hw.autograder.feedback import FAILED
from corpus.answers import ANSWERS, CORRECT, MISTAKE_QUIET, MISTAKE_WORDS, NAMED, WRONG, Answer
from corpus.scenarios import SCENARIOS, Scenario
from graders import Graded, fill_in, grade_fast, grade_gradescope, insert_after_check, write
from hidden_values import failure_messages, hidden_messages, long_numbers

pytestmark = pytest.mark.sandbox

# Through the Gradescope path as well: a few answers of each kind.
SAMPLE = ["q2.2 ReLU derivative as f >= 0", "right answers at every check, broken by cells after them"]


def answer_id(answer: Answer) -> str:
    return f"{answer.question} {answer.name}"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# The notebook's two finite-difference demonstrations (a table and a plot each) grade nothing; the
# corpus leaves them out to grade its hundred notebooks faster.
DEMONSTRATIONS = ("parameters = dict(beta0=beta0", "def centred_differences(")


def notebook_of(item: Answer | Scenario) -> nbformat.NotebookNode:
    notebook = fill_in(item.cells() if isinstance(item, Answer) else item.answers())
    notebook.cells = [cell for cell in notebook.cells if not cell.source.startswith(DEMONSTRATIONS)]
    for question, source in ({} if isinstance(item, Answer) else item.after).items():
        insert_after_check(notebook, question, source)
    return notebook


def judged(session: pytest.Session) -> set[str] | None:
    """The ids of the answers and scenarios that the session's tests judge, or None for all of them
    (a test that reads the whole corpus is among them)."""
    found = set()
    for item in session.items:
        if item.module.__name__.rsplit(".", 1)[-1] == "test_corpus" and "graded" in item.fixturenames:
            params = item.callspec.params if hasattr(item, "callspec") else {}
            if "answer" in params:
                found.add(answer_id(params["answer"]))
            elif "scenario" in params:
                found.add(params["scenario"].name)
            elif "name" in params:  # a named mistake: the id of its answer
                found.add(params["name"])
            else:
                return None
    return found


@pytest.fixture(scope="session")
def graded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Graded]:
    """Every answer and scenario that the session's tests judge (the whole corpus in a whole run),
    graded once with the fast engine: {id: Graded}."""
    folder = tmp_path_factory.mktemp("corpus")
    items = {answer_id(a): a for a in ANSWERS} | {s.name: s for s in SCENARIOS}
    selected = judged(request.session)
    items = {name: item for name, item in items.items() if selected is None or name in selected}
    files = {name: write(notebook_of(item), folder / "submissions" / f"{slug(name)}.ipynb").name
             for name, item in items.items()}
    results = grade_fast(folder / "submissions", folder / "grades")
    return {name: results[file] for name, file in files.items()}


def full_marks(graded: Graded, question: str) -> bool:
    test = next(t for t in graded.results["tests"] if t["name"] == question)
    return test["score"] == test["max_score"]


def test_corpus_covers_every_question() -> None:
    assert len(WRONG) >= 60 and len(CORRECT) >= 15 and len(SCENARIOS) >= 10
    assert {answer.question for answer in WRONG} == set(QUESTIONS)
    assert {answer.question for answer in CORRECT} == set(QUESTIONS)
    assert len({answer_id(answer) for answer in ANSWERS}) == len(ANSWERS)
    assert set(NAMED) == set(MISTAKE_WORDS) and all(len(names) >= 3 for names in NAMED.values())
    assert {name for names in NAMED.values() for name in names} <= {answer_id(answer) for answer in WRONG}


@pytest.mark.parametrize("mistake, name", [(mistake, name) for mistake, names in NAMED.items() for name in names],
                         ids=lambda value: value)
def test_a_common_mistake_is_named_in_the_notebook_and_the_feedback_alike(graded: dict[str, Graded], mistake: str,
                                                                         name: str) -> None:
    """Its words, and no other mistake's, in what the student sees of the question; and in the first
    failed public case's message, which the notebook's own check shows, when a public case fails."""
    shown = graded[name].output(name.split(" ")[0])
    messages = " ".join(failure_messages(shown))
    assert MISTAKE_WORDS[mistake] in messages, shown
    wrongly = [words for other, words in MISTAKE_WORDS.items() if other != mistake and words in messages]
    assert not wrongly + [words for words in MISTAKE_QUIET[mistake] if words in messages], shown
    public = failure_messages(shown, f"{FAILED} check (")
    assert not public or MISTAKE_WORDS[mistake] in public[0], public


@pytest.mark.parametrize("answer", WRONG, ids=answer_id)
def test_wrong_answer_loses_points_on_its_question_only(graded: dict[str, Graded], answer: Answer) -> None:
    result = graded[answer_id(answer)]
    assert not full_marks(result, answer.question), f"not caught: {result.scores}"
    others = [q for q in QUESTIONS if q != answer.question and not full_marks(result, q)]
    assert not others, f"also costs points on {others}: {result.scores}"
    if answer.points is not None:  # one mistake costs the cases that test it, and no others
        assert result.scores[answer.question] == answer.points, result.output(answer.question)


@pytest.mark.parametrize("answer", CORRECT, ids=answer_id)
def test_correct_answer_gets_full_marks(graded: dict[str, Graded], answer: Answer) -> None:
    result = graded[answer_id(answer)]
    penalised = {q: result.output(q) for q in QUESTIONS if not full_marks(result, q)}
    assert not penalised, f"penalised: {result.scores}\n{penalised}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.name)
def test_scenario_earns_exactly_its_points(graded: dict[str, Graded], scenario: Scenario) -> None:
    result = graded[scenario.name]
    assert tuple(result.scores[q] for q in QUESTIONS) == scenario.points, result.visible


def test_no_honest_notebook_is_flagged(graded: dict[str, Graded]) -> None:
    """Every answer and scenario of the corpus is a student's own code, right or wrong: a flag means
    something an honest workflow never produces."""
    flagged = {name: result.row["integrity"] for name, result in graded.items() if result.row["integrity"]}
    assert flagged == {}


@pytest.mark.parametrize("answer", WRONG, ids=answer_id)
def test_wrong_answer_is_explained_to_the_student(graded: dict[str, Graded], answer: Answer) -> None:
    result = graded[answer_id(answer)]
    shown = result.output(answer.question)
    assert f"{answer.question}: " in shown and "❌" in shown, shown
    for text in answer.says:
        assert text in shown, f"what the student sees should contain {text!r}:\n{shown}"
    for text in answer.quiet:
        assert text not in shown, f"what the student sees should not mention {text!r}:\n{shown}"
    numbers = long_numbers(hidden_messages(result.visible))  # drawn at grading time: only a message could show one
    assert not numbers, f"a hidden message shows numbers {numbers[:5]}:\n{result.visible}"


def test_the_gradescope_path_agrees(graded: dict[str, Graded], tmp_path: Path) -> None:
    items = {answer_id(a): a for a in ANSWERS} | {s.name: s for s in SCENARIOS}
    paths = [write(notebook_of(items[name]), tmp_path / slug(name) / "backpropagation.ipynb") for name in SAMPLE]
    with ThreadPoolExecutor(max_workers=2) as pool:
        for name, result in zip(SAMPLE, pool.map(grade_gradescope, paths)):
            assert result.scores == graded[name].scores, name


IN_NOTEBOOK = ["q1.2 forward values reused as scratch names",
               "the table typed in, and a backward pass of zeros",
               "helper names kept in earlier answer cells (h0, activations, local derivatives)"]


def run_in_a_kernel(notebook: nbformat.NotebookNode, folder: Path) -> dict[str, str]:
    """Run a notebook as a student does (its own checks, in its own kernel, in an empty folder), up
    to its submission cell; return what each grader.check cell showed."""
    folder.mkdir(parents=True)
    notebook.cells = [cell for cell in notebook.cells if "grader.export(" not in cell.source]
    NotebookClient(notebook, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    shown = {}
    for cell in notebook.cells:
        if cell.cell_type == "code" and (match := re.fullmatch(r'grader\.check\("(q[\d.]+)"\)', cell.source.strip())):
            shown[match[1]] = "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in cell.outputs)
    return shown


def test_the_checks_in_the_notebook_agree_with_grading(graded: dict[str, Graded], tmp_path: Path) -> None:
    """A student's own grader.check passes a question's public cases exactly when grading does."""
    items = {answer_id(a): a for a in ANSWERS} | {s.name: s for s in SCENARIOS}
    with ThreadPoolExecutor(max_workers=2) as pool:
        shown = dict(zip(IN_NOTEBOOK, pool.map(lambda name: run_in_a_kernel(notebook_of(items[name]),
                                                                             tmp_path / slug(name)), IN_NOTEBOOK)))
    for name in IN_NOTEBOOK:
        for question in QUESTIONS:
            in_notebook = "which all pass" in shown[name][question]
            in_grading = "❌ check (" not in graded[name].output(question)
            assert in_notebook == in_grading, (name, question, shown[name][question])


def table(graded: dict[str, Graded]) -> str:
    """One line per answer: what it is, what should happen, and its points per question."""
    lines = [f"{'answer':<58} {'expected':<16} " + " ".join(f"{q:>7}" for q in QUESTIONS)]
    for answer in ANSWERS:
        result = graded[answer_id(answer)]
        expected = f"loses on {answer.question}" if answer.wrong else "full marks"
        points = " ".join(f"{result.scores[q]:>7g}" for q in QUESTIONS)
        lines.append(f"{answer_id(answer):<58} {expected:<16} {points}")
    return "\n".join(lines)


def test_rates(graded: dict[str, Graded], tmp_path_factory: pytest.TempPathFactory) -> None:
    caught = [a for a in WRONG if not full_marks(graded[answer_id(a)], a.question)]
    isolated = [a for a in caught if all(full_marks(graded[answer_id(a)], q) for q in QUESTIONS if q != a.question)]
    full = [a for a in CORRECT if all(full_marks(graded[answer_id(a)], q) for q in QUESTIONS)]
    exact = [s for s in SCENARIOS if tuple(graded[s.name].scores[q] for q in QUESTIONS) == s.points]
    rates = (f"bugs caught: {len(caught)}/{len(WRONG)}, bugs isolated to their question: {len(isolated)}/{len(WRONG)}, "
             f"correct answers at full marks: {len(full)}/{len(CORRECT)}, "
             f"scenarios at their points: {len(exact)}/{len(SCENARIOS)}")
    report = Path(tmp_path_factory.getbasetemp()) / "corpus-report.txt"
    report.write_text(f"{table(graded)}\n\n{rates}\n")
    print(f"\n{table(graded)}\n\n{rates}\n(written to {report})")
    assert len(caught) == len(isolated) == len(WRONG) and len(full) == len(CORRECT) and len(exact) == len(SCENARIOS), rates
