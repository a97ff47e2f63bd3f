"""What a student and an instructor read of a grading (`backprop_hw/autograder/feedback.py`), built
from the real test files of the committed autograder zip, with case results recorded by hand:
the three feedback policies, the public summary (before the due date only), the instructor's notes,
Gradescope's format, and feedback.txt: the total first, each question once, each case once.
"""

import json
import zipfile
from pathlib import Path

import jsonschema
import pytest

from backprop_hw.autograder import trusted
from backprop_hw.autograder.feedback import (NOTES_TITLE, POLICIES, PUBLIC_TITLE, gradescope_results, is_blank,
                                           policy_of)
from backprop_hw.paths import AUTOGRADER_ZIP, ROOT
from backprop_hw.results import feedback_text
from built import TOTAL
from conftest import POINTS, QUESTIONS

SCHEMA = json.loads((ROOT / "backprop_hw" / "gradescope_results.schema.json").read_text())
PUBLIC_MESSAGE = "`f2` should be 7.136590, but it is 7.2 (PUBLIC-MESSAGE)"
HIDDEN_MESSAGE = "`dldf1` does not follow from `dldh2` (HIDDEN-MESSAGE)"
HIDDEN_MESSAGE_2 = "`backward_pass` is not exact at the kink (HIDDEN-MESSAGE-2)"


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("autograder")
    with zipfile.ZipFile(AUTOGRADER_ZIP) as archive:
        archive.extractall(folder)
    return folder


def fresh_grading(unpacked: Path) -> trusted.Grading:
    """A Grading with the zip's test files and no case judged yet."""
    return trusted.Grading(trusted.load_tests(unpacked / "tests", unpacked / "files"))


def judge(grading: trusted.Grading, question: str, number: int, passed: bool, message: str = "") -> None:
    """Record case `number` (from 1, in the test file's order) of `question`."""
    test_file = grading.tests[question]
    trusted.record(test_file, test_file.test_cases[number - 1], passed, message)


# The cases the `grading` fixture fails: (question, number from 1), and the message of each.
FAILED = {("q1.1", 2): PUBLIC_MESSAGE, ("q1.1", 3): HIDDEN_MESSAGE, ("q2.2", 4): HIDDEN_MESSAGE_2}


@pytest.fixture
def grading(unpacked: Path) -> trusted.Grading:
    """q1.1 fails a public and a hidden case, q2.2 its kink case; everything else passes."""
    grading = fresh_grading(unpacked)
    for question, test_file in grading.tests.items():
        for number, _ in enumerate(test_file.test_cases, 1):
            judge(grading, question, number, (question, number) not in FAILED, FAILED.get((question, number), ""))
    grading.flags.append("replaces library functions")
    grading.notes.append("q1.2 q1.2 - 2: the test raised KeyError: 'x'")
    return grading


def case_points(grading: trusted.Grading, question: str, number: int) -> float:
    return grading.tests[question].test_cases[number - 1].points


def expected_scores(grading: trusted.Grading) -> dict[str, float]:
    """What the `grading` fixture's questions score: their points but those of the FAILED cases."""
    return {question: POINTS[question] - sum(case_points(grading, *case) for case in FAILED if case[0] == question)
            for question in QUESTIONS}


def worth(points: float) -> str:
    return f"{points:g} point{'' if points == 1 else 's'}"


def entries(results: dict) -> dict[str, dict]:
    return {test["name"]: test for test in results["tests"]}


def hidden_descriptions(grading: trusted.Grading) -> list[str]:
    return [case.body.test_func.__doc__.strip().splitlines()[0]
            for test_file in grading.tests.values() for case in test_file.test_cases if case.hidden]


# ---------------------------------------------------------------------------------------------
# The test files as loaded


def test_the_zips_test_files_carry_the_points_of_each_question(grading: trusted.Grading) -> None:
    assert list(grading.tests) == list(QUESTIONS)
    assert {name: test_file.possible for name, test_file in grading.tests.items()} == POINTS
    assert all(any(case.hidden for case in t.test_cases) and not t.all_public for t in grading.tests.values())


def test_record_keeps_one_result_per_case_in_the_files_order(unpacked: Path) -> None:
    grading = fresh_grading(unpacked)
    judge(grading, "q1.3", 3, True)
    judge(grading, "q1.3", 1, False, "first")
    judge(grading, "q1.3", 1, True)  # judged again: replaces the first result
    results = grading.tests["q1.3"].test_case_results
    assert [(r.test_case.name, r.passed, r.message) for r in results] == [("q1.3 - 1", True, ""), ("q1.3 - 3", True, "")]
    assert grading.tests["q1.3"].score == case_points(grading, "q1.3", 1) + case_points(grading, "q1.3", 3)


def test_fail_unjudged_fails_only_the_cases_not_yet_run(unpacked: Path) -> None:
    grading = fresh_grading(unpacked)
    judge(grading, "q2.1", 1, True)
    trusted.fail_unjudged(grading, ["q2.1", "q1.1"], "not graded: the notebook stopped")
    q21 = grading.tests["q2.1"].test_case_results
    assert [(r.passed, r.message) for r in q21] == [(True, "")] + [(False, "not graded: the notebook stopped")] * (
        len(grading.tests["q2.1"].test_cases) - 1)
    assert grading.tests["q2.1"].score == case_points(grading, "q2.1", 1) and grading.tests["q1.1"].score == 0
    assert grading.tests["q1.2"].test_case_results == []


def test_grade_nothing_gives_every_question_zero_with_the_reason(unpacked: Path) -> None:
    grading = trusted.grade_nothing(unpacked / "tests", unpacked / "files", "no .ipynb notebook in the submission")
    assert grading.problems == ["no .ipynb notebook in the submission"] and not grading.finished
    for test_file in grading.tests.values():
        assert test_file.score == 0
        assert len(test_file.test_case_results) == len(test_file.test_cases)
        assert {r.message for r in test_file.test_case_results} == {"not graded: no .ipynb notebook in the submission"}
    results = gradescope_results(grading, {}, "Not graded: no .ipynb notebook in the submission")
    jsonschema.validate(results, SCHEMA)
    assert {name: entry.get("score") for name, entry in entries(results).items() if name in POINTS} \
        == dict.fromkeys(QUESTIONS, 0)


# ---------------------------------------------------------------------------------------------
# The policies


def test_messages_policy_shows_every_question_with_hidden_messages(grading: trusted.Grading) -> None:
    results = gradescope_results(grading, {"feedback": "messages"}, "completed")
    by_name = entries(results)
    for question in QUESTIONS:
        assert by_name[question]["visibility"] == "visible"
        assert by_name[question]["max_score"] == POINTS[question]
    q11 = by_name["q1.1"]["output"]
    expected = expected_scores(grading)
    assert by_name["q1.1"]["score"] == expected["q1.1"]
    assert q11.startswith(f"q1.1: {expected['q1.1']:g} of {worth(POINTS['q1.1'])}\n"
                          f"✅ check ({worth(case_points(grading, 'q1.1', 1))}): ")
    assert PUBLIC_MESSAGE in q11 and HIDDEN_MESSAGE in q11
    assert f"❌ hidden check ({worth(case_points(grading, 'q1.1', 3))})" in q11
    assert f"❌ check ({worth(case_points(grading, 'q1.1', 2))})" in q11
    assert HIDDEN_MESSAGE_2 in by_name["q2.2"]["output"] and by_name["q2.2"]["score"] == expected["q2.2"]
    assert by_name["q1.2"]["score"] == POINTS["q1.2"] and "❌" not in by_name["q1.2"]["output"]


def test_messages_is_the_default_policy(grading: trusted.Grading) -> None:
    assert policy_of({}) == "messages"
    assert gradescope_results(grading, {}, "completed") == gradescope_results(grading, {"feedback": "messages"},
                                                                               "completed")


def test_score_only_policy_counts_hidden_failures_without_their_messages(grading: trusted.Grading) -> None:
    results = gradescope_results(grading, {"feedback": "score only"}, "completed")
    by_name = entries(results)
    q11 = by_name["q1.1"]["output"]
    assert HIDDEN_MESSAGE not in q11 and HIDDEN_MESSAGE_2 not in json.dumps(results)
    assert PUBLIC_MESSAGE in q11  # public messages are still shown
    assert f"❌ hidden check ({worth(case_points(grading, 'q1.1', 3))})" in q11  # the failed hidden case is counted
    assert "(The messages of hidden checks are not shown for this assignment.)" in q11
    assert "not shown" not in by_name["q1.2"]["output"]  # no failed hidden case there
    assert {q: by_name[q]["score"] for q in QUESTIONS} == expected_scores(grading)
    assert all(by_name[q]["visibility"] == "visible" for q in QUESTIONS)


def test_after_due_date_policy_shows_questions_after_the_due_date(grading: trusted.Grading) -> None:
    results = gradescope_results(grading, {"feedback": "after due date"}, "completed")
    by_name = entries(results)
    assert [by_name[q]["visibility"] for q in QUESTIONS] == ["after_due_date"] * len(QUESTIONS)
    assert by_name[PUBLIC_TITLE]["visibility"] == "visible"
    assert by_name[NOTES_TITLE]["visibility"] == "hidden"
    assert HIDDEN_MESSAGE in by_name["q1.1"]["output"]
    before, _, after = feedback_text(results).partition("Shown after the due date:")
    assert HIDDEN_MESSAGE not in before and HIDDEN_MESSAGE in after


@pytest.mark.parametrize("policy", ["message", "Messages", "hidden", "", None, "score_only"])
def test_an_unknown_policy_raises(grading: trusted.Grading, policy: object) -> None:
    with pytest.raises(ValueError, match="feedback must be one of"):
        gradescope_results(grading, {"feedback": policy}, "completed")


def test_the_committed_zip_has_a_known_policy(unpacked: Path) -> None:
    assert policy_of(json.loads((unpacked / "otter_config.json").read_text())) in POLICIES


# ---------------------------------------------------------------------------------------------
# Under every policy


@pytest.mark.parametrize("policy", ["messages", "score only"])
def test_no_public_summary_repeats_the_questions_entries(grading: trusted.Grading, policy: str) -> None:
    assert PUBLIC_TITLE not in entries(gradescope_results(grading, {"feedback": policy}, "completed"))


def test_the_public_summary_before_the_due_date_never_shows_hidden_cases(grading: trusted.Grading) -> None:
    public = entries(gradescope_results(grading, {"feedback": "after due date"}, "completed"))[PUBLIC_TITLE]
    assert public["visibility"] == "visible" and public["status"] == "failed"
    assert PUBLIC_MESSAGE in public["output"]
    assert "hidden" not in public["output"]
    assert HIDDEN_MESSAGE not in public["output"] and HIDDEN_MESSAGE_2 not in public["output"]
    assert not any(description in public["output"] for description in hidden_descriptions(grading))
    assert all(f"{question} results:" in public["output"] for question in QUESTIONS)


def test_the_public_summary_passes_when_only_hidden_cases_fail(grading: trusted.Grading) -> None:
    judge(grading, "q1.1", 2, True)
    public = entries(gradescope_results(grading, {"feedback": "after due date"}, "completed"))[PUBLIC_TITLE]
    assert public["status"] == "passed" and "❌" not in public["output"]


@pytest.mark.parametrize("policy", POLICIES)
def test_the_instructor_notes_are_hidden(grading: trusted.Grading, policy: str) -> None:
    results = gradescope_results(grading, {"feedback": policy}, "partly graded; a cell ran past 15 s")
    notes = entries(results)[NOTES_TITLE]
    assert notes["visibility"] == "hidden"
    assert notes["output"].splitlines() == ["grading status: partly graded; a cell ran past 15 s",
                                            "flag: replaces library functions",
                                            "q1.2 q1.2 - 2: the test raised KeyError: 'x'"]
    assert "replaces library functions" not in feedback_text(results)
    assert "KeyError" not in feedback_text(results)


@pytest.mark.parametrize("policy", POLICIES)
def test_results_validate_against_gradescopes_format(grading: trusted.Grading, policy: str) -> None:
    results = gradescope_results(grading, {"feedback": policy}, "completed")
    jsonschema.validate(results, SCHEMA)
    json.dumps(results)  # plain JSON data only
    public = [PUBLIC_TITLE] if policy == "after due date" else []
    assert [test["name"] for test in results["tests"]] == [*public, *QUESTIONS, NOTES_TITLE]


def test_the_schema_refuses_what_gradescope_would(grading: trusted.Grading) -> None:
    results = gradescope_results(grading, {}, "completed")
    results["tests"][0]["visibility"] = "students"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(results, SCHEMA)


@pytest.mark.parametrize("policy", POLICIES)
def test_feedback_txt_gives_the_total_then_each_question_once_with_each_case_once(grading: trusted.Grading,
                                                                                   policy: str) -> None:
    text = feedback_text(gradescope_results(grading, {"feedback": policy}, "completed"))
    lines = text.splitlines()
    expected = expected_scores(grading)
    assert lines[0] == f"Total: {sum(expected.values()):g} of {worth(TOTAL)}" and lines[1] == ""
    heads = [line for line in lines if line.startswith("q")]
    assert heads == [f"{q}: {expected[q]:g} of {worth(POINTS[q])}" for q in QUESTIONS]
    cases = [line for line in lines if line.startswith(("✅", "❌"))]
    assert len(cases) == sum(len(test_file.test_cases) for test_file in grading.tests.values())
    for test_file in grading.tests.values():
        for case in test_file.test_cases:
            description = case.body.test_func.__doc__.strip().splitlines()[0]
            assert sum(line.endswith(f"): {description}") for line in cases) == 1, description
    assert text.count(PUBLIC_MESSAGE) == 1
    assert (HIDDEN_MESSAGE in text) == (policy != "score only")
    assert ("Shown after the due date:" in text) == (policy == "after due date")


def test_scores_add_up_to_the_cases_passed(grading: trusted.Grading) -> None:
    results = gradescope_results(grading, {}, "completed")
    scores = [entry["score"] for entry in results["tests"] if "score" in entry]
    assert sum(scores) == sum(expected_scores(grading).values()) < TOTAL


def test_the_report_reads_each_failed_case_s_message(grading: trusted.Grading) -> None:
    from backprop_hw.report import failure_messages

    results = entries(gradescope_results(grading, {"feedback": "messages"}, "completed"))
    assert failure_messages(results["q1.1"]["output"]) == [PUBLIC_MESSAGE, HIDDEN_MESSAGE]
    assert failure_messages(results["q2.2"]["output"]) == [HIDDEN_MESSAGE_2]
    assert failure_messages(results["q1.2"]["output"]) == []


def test_otter_grade_containers_get_the_same_results(grading: trusted.Grading, tmp_path: Path) -> None:
    """ENGINE=docker: otter grade unpickles results/results.pkl; it must carry the hardened grader's
    very results, which docker_engine then records."""
    import dill
    from otter.run import AutograderConfig

    from backprop_hw import docker_engine
    from backprop_hw.autograder.gradescope_run import keep_for_otter_grade

    (tmp_path / "results").mkdir()
    results = gradescope_results(grading, {"feedback": "messages"}, "completed")
    keep_for_otter_grade(tmp_path, results, grading)
    with (tmp_path / "results" / "results.pkl").open("rb") as handle:
        unpickled = dill.load(handle)  # as otter grade loads it
    assert unpickled.total == sum(test_file.score for test_file in grading.tests.values()) < sum(POINTS.values())
    outcome = docker_engine.outcome(unpickled, AutograderConfig({}))
    assert outcome.results == results and outcome.complete and outcome.grader_error is None


@pytest.mark.parametrize("first_failures, blank", [
    ({}, True),  # every first failure says the answer is not there yet
    ({"q2.2": "`backward_pass` raised ZeroDivisionError (on the notebook's network)."}, False),  # an answer, wrong
    ({"q1.1": None}, False),  # a public case passes: an answer, right
])
def test_a_notebook_is_blank_when_no_question_has_an_answer(unpacked: Path, first_failures: dict,
                                                            blank: bool) -> None:
    """Blank is said of answers, not of cells: whatever an earlier version of the notebook holds
    elsewhere, it is blank when each question's first failure says its answer is still missing."""
    missing = {"q1.1": "`f0` is still `...`: replace the `...` with your code.",
               "q1.2": "No cell you ran assigns `dldf3`, `dldh3`, ...: run the cell of q1.2.",
               "q1.3": "`dldbeta3` is not defined: run the cell that computes it.",
               "q2.1": "`compute_network_output` returns None: it is not finished yet (it should return ...).",
               "q2.2": "`all_dl_dweights[5]` is None: it has not been computed yet."}
    grading = fresh_grading(unpacked)
    for question, test_file in grading.tests.items():
        message = first_failures.get(question, missing[question])
        for number, _ in enumerate(test_file.test_cases, 1):
            judge(grading, question, number, message is None and number == 1, message or "hidden: no finite number")
    assert is_blank(grading) == blank


def test_gradescope_check_shows_the_instructor_the_notes_that_ask_for_something(
        grading: trusted.Grading, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flag and a failure of a test, yes; the network taken away as Gradescope's platform allows
    (no namespace, the seccomp filter), no; the network left to the notebook, yes."""
    from backprop_hw.autograder import gradescope_run
    from backprop_hw.gradescope_check import grading_notes

    def on_gradescope(refuse_sockets: bool) -> str:
        """The network note of a platform that gives no network namespace, as Gradescope's."""
        monkeypatch.setattr(gradescope_run, "in_a_child", lambda action: "Operation not permitted" if (
            action is gradescope_run.unshare_network or not refuse_sockets) else None)
        return gradescope_run.network_isolation()[2]

    without_network = on_gradescope(refuse_sockets=True)
    with_network = on_gradescope(refuse_sockets=False)
    assert without_network.startswith(gradescope_run.NO_NETWORK_NOTE)
    assert with_network.startswith(gradescope_run.NETWORK_NOTE)
    grading.notes.insert(0, without_network)
    status, notes = grading_notes(gradescope_results(grading, {}, "partly graded; a cell ran past 60 s"))
    assert status == "partly graded; a cell ran past 60 s"
    assert notes == ["flag: replaces library functions", "q1.2 q1.2 - 2: the test raised KeyError: 'x'"]
    grading.flags.clear()
    del grading.notes[1:]  # but the platform's
    assert grading_notes(gradescope_results(grading, {}, "completed")) == ("completed", [])
    grading.notes[:] = [with_network]
    assert grading_notes(gradescope_results(grading, {}, "completed")) == ("completed", [with_network])
