"""What a student and an instructor read of a grading: Gradescope's results.json.

Otter's own results show hidden cases to nobody, so a student who loses points on a hidden case
sees "All test cases passed!" and a total that does not add up. Here every question has an entry
whose text names each case that failed, its points and its message. The master's configuration
chooses what students see (`feedback:` in its ASSIGNMENT CONFIG, copied into otter_config.json):

- `messages` (the default): every question's entry, with the messages of hidden cases too. Hidden
  cases write messages without hidden values, and the grading process keeps the student's own text
  out of them (see `trusted.StudentValues`).
- `score only`: every question's score and the public cases' messages; a failed hidden case is
  only counted.
- `after due date`: as `messages`, shown once the due date has passed (Gradescope's
  `after_due_date` visibility); before it, the public cases' summary only.

Each case is listed once: every question's entry lists its public cases, so the public summary is
there only when it is all students see for now.
"""

from typing import TYPE_CHECKING, Any

from .trusted import Grading

if TYPE_CHECKING:
    from otter.test_files.exception_test import ExceptionTestFile

POLICIES = ("messages", "score only", "after due date")
PASSED, FAILED = "✅", "❌"
MESSAGE_INDENT = "     "  # a failed case's message goes on the lines after it, indented so
NOTES_TITLE = "Grading notes (instructor only)"
PUBLIC_TITLE = "Public Tests"


def policy_of(config: dict) -> str:
    """The feedback policy of an autograder configuration; an unknown one is the grader's own error."""
    policy = config.get("feedback", POLICIES[0])
    if policy not in POLICIES:
        raise ValueError(f"feedback must be one of {', '.join(POLICIES)}, not {policy!r}")
    return policy


def points(value: float) -> str:
    return f"{value:g} point{'' if value == 1 else 's'}"


def case_lines(test_file: "ExceptionTestFile", hidden_messages: bool, public_only: bool = False) -> list[str]:
    """One line per case: passed or failed, public or hidden, its points, and why it failed."""
    lines = []
    for result in test_file.test_case_results:
        case = result.test_case
        if public_only and case.hidden:
            continue
        description = (case.body.test_func.__doc__ or "").strip().splitlines()[0:1] or ["a check"]
        kind = "hidden check" if case.hidden else "check"
        line = f"{PASSED if result.passed else FAILED} {kind} ({points(case.points)}): {description[0]}"
        if not result.passed and (hidden_messages or not case.hidden):
            line += "\n" + "\n".join(MESSAGE_INDENT + text for text in result.message.splitlines() or [""])
        lines.append(line)
    return lines


def question_text(test_file: "ExceptionTestFile", policy: str) -> str:
    head = f"{test_file.name}: {test_file.score:g} of {points(test_file.possible)}"
    lines = case_lines(test_file, hidden_messages=policy != "score only")
    if policy == "score only" and any(not r.passed and r.test_case.hidden for r in test_file.test_case_results):
        lines.append("(The messages of hidden checks are not shown for this assignment.)")
    return "\n".join([head, *lines])


def public_summary(grading: Grading) -> dict[str, Any]:
    """The entry that lists every question's public cases."""
    public = "\n\n".join(f"{name} results:\n" + "\n".join(case_lines(test_file, False, public_only=True))
                         for name, test_file in grading.tests.items())
    return {"name": PUBLIC_TITLE, "visibility": "visible", "output": public,
            "status": "passed" if all(t.passed_all_public for t in grading.tests.values()) else "failed"}


def is_blank(grading: Grading) -> bool:
    """Whether the notebook answers no question: it earns no point, and each question's first failed
    case says that its answer is not there yet (still `...`, never computed, not defined, a function
    returning None: `backprop_checks.unfinished`). So a blank of any version of the handed-out
    notebook is blank, whatever its other cells hold, and any answer, right or wrong, is not."""
    import backprop_checks  # the tests' helpers, on the path once the tests are loaded

    def unanswered(test_file: "ExceptionTestFile") -> bool:
        failed = [result.message for result in test_file.test_case_results if not result.passed]
        return not test_file.score and bool(failed) and backprop_checks.unfinished(failed[0])

    return bool(grading.tests) and all(map(unanswered, grading.tests.values()))


def gradescope_results(grading: Grading, config: dict, status: str) -> dict[str, Any]:
    """Gradescope's results dictionary for one grading, under the configuration's feedback policy."""
    policy = policy_of(config)
    visibility = "after_due_date" if policy == "after due date" else "visible"
    tests = [public_summary(grading)] if policy == "after due date" else []
    for name, test_file in grading.tests.items():
        tests.append({"name": name, "score": round(test_file.score, 5), "max_score": round(test_file.possible, 5),
                      "visibility": visibility, "output": question_text(test_file, policy)})
    notes = [f"grading status: {status}"] + [f"flag: {flag}" for flag in grading.flags] + grading.notes
    tests.append({"name": NOTES_TITLE, "visibility": "hidden", "output": "\n".join(notes), "status": "passed"})
    return {"tests": tests}
