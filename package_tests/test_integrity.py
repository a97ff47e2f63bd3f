"""Grading integrity: attacks earn no more than their honest twins and leak nothing."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from attacks import ATTACKS, write_attack, write_otter_log_zip, write_twin
from conftest import QUESTIONS, gradescope_dry_run, scores
from test_package import hidden_case_numbers

HIDDEN_ONLY_NAMES = ("test_forward_each_step_follows", "test_exact_at_a_kink", "test_inputs_unchanged")


def student_visible_text(results: dict) -> str:
    return "\n".join(test.get("output", "") for test in results["tests"] if test.get("visibility") == "visible")


def instructor_notes(results: dict) -> str:
    return next(test["output"] for test in results["tests"] if test["name"].startswith("Grading notes"))


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The twin, every attack and the pickle attack, graded through the Gradescope path in parallel."""
    base = tmp_path_factory.mktemp("integrity")
    marker = base / "unpickled-marker"
    submissions = {"honest twin": write_twin(base / "twin")}
    submissions |= {name: write_attack(name, base / f"attack-{i}") for i, name in enumerate(ATTACKS)}
    submissions[".OTTER_LOG pickle in an export zip"] = write_otter_log_zip(base / "pickle", marker)
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = pool.map(lambda i, path: gradescope_dry_run(path, base / f"run-{i}"),
                        range(len(submissions)), submissions.values())
        graded = dict(zip(submissions, runs))
    graded["pickle was loaded"] = {"loaded": marker.exists()}
    return graded


def test_honest_twin_scores_as_designed(graded: dict[str, dict]) -> None:
    # q2.2 keeps its one point for leaving the inputs unchanged.
    assert scores(graded["honest twin"]) == {"q1.1": 4, "q1.2": 4, "q1.3": 0, "q2.1": 4, "q2.2": 1}
    assert "flag:" not in instructor_notes(graded["honest twin"])


@pytest.mark.parametrize("attack", [*ATTACKS, ".OTTER_LOG pickle in an export zip"])
def test_attack_earns_no_more_than_its_twin(graded: dict[str, dict], attack: str) -> None:
    twin, attacked = scores(graded["honest twin"]), scores(graded[attack])
    assert all(attacked[q] <= twin[q] for q in QUESTIONS), (attack, attacked)


@pytest.mark.parametrize("attack", [*ATTACKS, ".OTTER_LOG pickle in an export zip"])
def test_attack_is_flagged_for_the_instructor(graded: dict[str, dict], attack: str) -> None:
    assert "flag:" in instructor_notes(graded[attack])


@pytest.mark.parametrize("attack", [*ATTACKS, ".OTTER_LOG pickle in an export zip"])
def test_attack_leaks_no_hidden_test(graded: dict[str, dict], attack: str) -> None:
    visible = student_visible_text(graded[attack])
    assert not any(name in visible for name in HIDDEN_ONLY_NAMES)
    assert not [number for number in hidden_case_numbers() if number in visible]


def test_submitted_pickle_is_never_loaded(graded: dict[str, dict]) -> None:
    assert graded["pickle was loaded"] == {"loaded": False}


def test_hidden_case_outputs_are_hidden_from_students(graded: dict[str, dict]) -> None:
    for results in graded.values():
        for test in results.get("tests", []):
            if test["name"] in QUESTIONS or test["name"].startswith("Grading notes"):
                assert test["visibility"] == "hidden"
