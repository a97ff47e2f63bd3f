"""What the build made of the master, read from its outputs: the questions, their points and cases,
the values the public tests hold and the targets the notebook prints.

A test that needs a number takes it from here, never types it in: a course that changes the master
(other given values, another seed or size, other points) rebuilds, and the suite still holds.
"""

import ast
import re
from functools import cache

import nbformat

from backprop_hw.paths import ROOT, STUDENT_NOTEBOOK

TESTS = ROOT / "tests"
STUDENT_TESTS = ROOT / "student" / "tests"


def _cases(question: str) -> dict[str, tuple[float, bool]]:
    """The cases of a question's full test file, in order: {function name: (points, hidden)}."""
    cases = {}
    for node in ast.parse((TESTS / f"{question}.py").read_text()).body:
        if isinstance(node, ast.FunctionDef) and node.decorator_list:
            options = {keyword.arg: ast.literal_eval(keyword.value) for keyword in node.decorator_list[0].keywords}
            cases[node.name] = (options["points"], options["hidden"])
    return cases


QUESTIONS: tuple[str, ...] = tuple(sorted(path.stem for path in TESTS.glob("q*.py")))
CASES: dict[str, dict[str, tuple[float, bool]]] = {question: _cases(question) for question in QUESTIONS}
POINTS: dict[str, float] = {question: sum(points for points, _ in cases.values()) for question, cases in CASES.items()}
PUBLIC_POINTS: dict[str, float] = {question: sum(points for points, hidden in cases.values() if not hidden)
                                   for question, cases in CASES.items()}
TOTAL = sum(POINTS.values())


def points(*nothing: str, keep: dict[str, tuple[str, ...]] | None = None,
           lose: dict[str, tuple[str, ...]] | None = None) -> tuple[float, ...]:
    """Points per question (in QUESTIONS' order): none on the questions named, only the cases of
    `keep` ({question: case function names}), all but the cases of `lose`, and full marks elsewhere."""
    keep, lose = keep or {}, lose or {}
    scores = []
    for question, cases in CASES.items():
        if question in nothing:
            scores.append(0)
        elif question in keep:
            scores.append(sum(cases[name][0] for name in keep[question]))
        else:
            scores.append(POINTS[question] - sum(cases[name][0] for name in lose.get(question, ())))
    return tuple(scores)


def scores(*nothing: str, **options) -> dict[str, float]:
    """`points`, as {question: points}."""
    return dict(zip(QUESTIONS, points(*nothing, **options)))


def points_without(question: str, *cases: str) -> float:
    """A question's points but those of the cases named."""
    return dict(zip(QUESTIONS, points(lose={question: cases})))[question]


def _literal_argument(question: str, call: str) -> object:
    """The literal argument of the first call `call(...)` in a question's public test file."""
    tree = ast.parse((STUDENT_TESTS / f"{question}.py").read_text())
    return next(ast.literal_eval(node.args[0]) for node in ast.walk(tree)
                if isinstance(node, ast.Call) and ast.unparse(node.func) == call)


@cache
def public_values(question: str) -> dict:
    """The values of the notebook's network that the student's copy of a public test holds."""
    tree = ast.parse((STUDENT_TESTS / f"{question}.py").read_text())
    return next(ast.literal_eval(node.value) for node in ast.walk(tree)
                if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["setup"])


# Part 1 at the notebook's parameters, every value exact, as the public tests hold them.
TOY: dict[str, float] = _literal_argument("q1.1", "check.public_points")["notebook"]
# And at the public other set of parameters.
TOY_OTHER: dict[str, float] = _literal_argument("q1.1", "check.public_points")["other"]


def sizes() -> dict[str, int]:
    """The notebook's network's K, D, D_i and D_o."""
    weights = public_values("q2.1")["weights"]
    return {"K": len(weights) - 1, "D": len(weights[0]), "D_i": len(weights[0][0]), "D_o": len(weights[-1])}


@cache
def printed_target(what: str) -> str:
    """What the student notebook prints as the expected `what` ("output", "loss"), as it prints it."""
    source = "\n".join(cell.source for cell in nbformat.read(STUDENT_NOTEBOOK, as_version=4).cells)
    return re.search(rf'"{what}: expected ([^,"]+?)(?:, yours| \()', source)[1]
