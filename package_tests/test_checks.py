"""The checks themselves: every message of `backprop_checks`, the built cases on answers run in this
process, hidden messages that hold nothing the student chose, and finite differences at every step.
"""

import math
import re

import numpy as np
import pytest

import backprop_checks as check
import backprop_reference as reference
from backprop_hw.autograder import trusted
from built import PUBLIC_POINTS, sizes
from corpus.answers import ANSWERS, BASELINE, TOY_PRINTED, network_finite_differences, toy_finite_differences
from corpus.scenarios import public_values
from in_process import InProcess, case_results, notebook_cells


TOY_STEPS = np.geomspace(1e-10, 1e-2, 17)
NETWORK_STEPS = np.geomspace(1e-12, 1e-2, 11)


def message(action) -> str:
    with pytest.raises(AssertionError) as failure:
        action()
    return str(failure.value)


@pytest.fixture(scope="module")
def student() -> InProcess:
    """The baseline answers, run in this process; tests add cells on top (the last cell wins)."""
    return InProcess.running(notebook_cells(BASELINE))


# ---------------------------------------------------------------------------------------------
# Which cells run again


@pytest.mark.parametrize("source, names", [
    ("%%time\nf0 = 1\nh1 = 2", {"f0", "h1"}),
    ("%time f1 = 2", {"f1"}),
    ("def run():\n    global f0, h1\n    f0 = h1 = 1\n\nrun()", {"run", "f0", "h1"}),
    ("for k in range(2):\n    locals()['f0'] = k", {"k", check.DYNAMIC}),
    ("for name in ['f0']:\n    print(name, vars()[name])", {"name"}),  # reads the namespace, binds nothing
    ("space = globals()\nspace['f0'] = 1", {"space", check.DYNAMIC}),
    ("%%timeit -n 1 -r 1\nf0 = 1", set()),  # timeit runs its code in a function of its own
    ("f0 = (lambda: 1)()\nsquares = [v * v for v in range(3)]", {"f0", "squares"}),
])
def test_bound_names_sees_magics_globals_and_namespace_calls(source: str, names: set[str]) -> None:
    assert check.bound_names(source) == frozenset(names)


def test_rerun_plan_runs_the_earlier_answer_cells_that_hold_helpers_first() -> None:
    sources = ["import numpy as np\nbeta0 = 1.0",
               "h0 = x\nf0 = beta0 + omega0 * h0",
               "dldf3 = 2 * (f3 - y)\ndldf0 = np.cos(f0) * dldf3",
               "dldomega0 = dldf0 * h0\ndldbeta0 = dldf0"]
    assert check.rerun_plan(sources, "q1.3") == ([1], [3])
    assert check.rerun_plan(sources, "q1.2") == ([], [2])  # it reads np, which no answer cell assigns
    assert check.rerun_plan(sources[:3] + ["dldomega0 = dldf0 * x"], "q1.3") == ([], [3])


# ---------------------------------------------------------------------------------------------
# Plain values


@pytest.mark.parametrize("value, says", [
    (None, "is not defined"), (Ellipsis, "still `...`"), ("1.0", "should be a number, but it is a str"),
    (True, "it is a bool"), (np.array([1j]), "dtype complex128"), (np.ones(3), "shape (3,)"),
    (float("inf"), "is inf"), (np.nan, "is nan")])
def test_scalar_says_what_the_value_is_instead(value, says: str) -> None:
    assert says in message(lambda: check.scalar("f0", value))


def test_hidden_scalar_messages_leave_out_the_students_shapes_and_types() -> None:
    assert "(31, 4159)" not in message(lambda: check.scalar("f0", np.ones((31, 4159)), hidden=True))
    assert "complex" not in message(lambda: check.scalar("f0", np.array([2j]), hidden=True))


@pytest.mark.parametrize("actual, expected, hidden, says", [
    (-1.5, 1.5, False, "wrong sign"), (1.2, 1.5, False, "= 1.200000, but the expected value is 1.500000"),
    (1.5000001, 1.5, True, "rounded, or typed in"), (1.6, 1.5, True, "is not exact")])
def test_check_scalar_names_the_problem(actual: float, expected: float, hidden: bool, says: str) -> None:
    shown = message(lambda: check.check_scalar("f0", actual, expected, hidden=hidden))
    assert says in shown
    assert not hidden or "1.6" not in shown and "1.5000001" not in shown


def test_a_step_follows_from_any_candidate_within_round_off() -> None:
    assert check.follows(2.0 * (1 + 1e-14), [1.0, 2.0]) and not check.follows(2.1, [1.0, 2.0])


# Values of Part 1 at which the mistakes below are told apart: the right ones, as the notebook's are.
TOY = {"f2": 7.13659, "dldh3": 2.233585, "f1": 1.623004, "dldh2": -3.366115, "h2": 5.068295, "dldf2": -1.683058}


@pytest.mark.parametrize("name, actual, mistake", [
    ("dldf2", math.sin(TOY["f2"]) * TOY["dldh3"], check.WRONG_SIGN),  # d/dz cos z without its minus
    ("dldf2", -math.cos(TOY["f2"]) * TOY["dldh3"], check.WRONG_FUNCTION),  # cos's derivative as cos
    ("dldf2", -math.sin(TOY["f2"]), check.NO_UPSTREAM),  # the local derivative alone
    ("h3", math.sin(TOY["f2"]), check.WRONG_FUNCTION),
    ("dldf2", -math.sin(TOY["f1"]) * TOY["dldh3"], None),  # the right function of the wrong value: not named
    ("dldf1", math.exp(TOY["f1"]) * TOY["dldf2"], None),  # the wrong upstream factor: not named
])
def test_part_1_names_a_common_mistake_and_only_that(name: str, actual: float, mistake: str | None) -> None:
    rights = {"dldf2": -math.sin(TOY["f2"]) * TOY["dldh3"], "h3": math.cos(TOY["f2"]),
              "dldf1": math.exp(TOY["f1"]) * TOY["dldh2"]}
    assert check.toy_mistake(name, actual, rights[name], TOY) == mistake


@pytest.mark.parametrize("actual, says", [
    (np.ones((3, 2)), "has shape (3, 2), but it should have shape (2, 3): a transpose is missing"),
    (np.ones((6, 1)), "the right number of entries but the wrong layout"),
    (-np.arange(1.0, 7).reshape(2, 3), "wrong sign"),
    (np.array([[1.0, 2, 3], [4, 5, 7]]), "has 1 of 6 entries wrong"),
    ([1.0, 2.0], "should be a numpy array, but it is a list"),
    (np.array([[np.nan] * 3] * 2), "contains inf or nan")])
def test_check_array_says_how_the_array_differs(actual, says: str) -> None:
    expected = np.arange(1.0, 7).reshape(2, 3)
    assert says in message(lambda: check.check_array("w", actual, expected, hidden=False))


def test_hidden_array_messages_leave_out_shapes_and_counts() -> None:
    shown = message(lambda: check.check_array("w", np.ones((1, 4159)), np.ones((2, 3)), hidden=True))
    assert "has the wrong shape" in shown and "4159" not in shown and "(2, 3)" not in shown
    assert message(lambda: check.check_array("w", np.array([[1.0, 2, 3], [4, 5, 7]]), np.arange(1.0, 7).reshape(2, 3),
                                             hidden=True)) == "`w` is wrong."
    assert "rounded, or estimated" in message(
        lambda: check.check_array("w", np.ones((2, 3)) * (1 + 1e-7), np.ones((2, 3)), hidden=True))


@pytest.mark.parametrize("hidden", [False, True])
def test_an_array_that_a_common_mistake_gives_is_named(hidden: bool) -> None:
    """A ReLU where there is none is named, zeros too where the ReLU gives zeros (an output below
    zero); zeros that no ReLU gives are zeros."""
    def shown(actual: np.ndarray, expected: np.ndarray) -> str:
        return message(lambda: check.check_array("g", actual, expected, hidden=hidden,
                                                 mistakes=[(np.maximum(expected, 0), check.RELU_APPLIED)]))

    both_signs, negative = np.array([[-1.0], [-2.0], [0.5]]), np.array([[-1.0], [-2.0]])
    assert check.RELU_APPLIED in shown(np.array([[0.0], [0], [0.5]]), both_signs)
    assert check.RELU_APPLIED in shown(np.zeros((2, 1)), negative)
    zeros = shown(np.zeros((3, 1)), both_signs)
    assert "is all zeros" in zeros and "ReLU" not in zeros
    assert "has the wrong sign" in shown(-both_signs, both_signs)


def test_lists_of_layers() -> None:
    layers = [np.ones((2, 1)), np.ones((3, 2)) * 2, np.ones((1, 3)) * 3]

    def check_layers(value, hidden):
        check.check_layers("g", value, layers, hidden=hidden, hint="", where="w", rtol=check.RTOL_EXACT)

    assert "reverse order" in message(lambda: check_layers(layers[::-1], True))
    assert "should have 3 entries (one per layer), but it has 2" in message(lambda: check_layers(layers[:2], False))
    assert "but it has" not in message(lambda: check_layers(layers * 21, True))
    check_layers(tuple(layers), True)  # a tuple of the right layers is right
    wrong = [layers[0], layers[1] * 0.5, layers[2]]
    assert "`g[1]` has 6 of 6 entries wrong (w)" in message(lambda: check_layers(wrong, False))
    assert message(lambda: check_layers(wrong, True)) == "`g` is wrong (w)."  # no layer: the student's code chose it


def test_calling_the_students_function() -> None:
    assert "is not defined as a function" in message(lambda: check.call_student(None, "f", where="c"))

    def broken(*_):
        raise KeyError("4159 secret")

    assert "raised KeyError: '4159 secret' (c)" in message(lambda: check.call_student(broken, "f", where="c"))
    hidden = message(lambda: check.call_student(broken, "f", where="c", hidden=True))
    assert hidden == "`f` raised KeyError (c)."

    def stopped(seconds):  # the grader stopped the call at its own limit, or at its question's time left
        def slow(*_):
            raise trusted.DidNotFinish(seconds)
        return slow

    assert message(lambda: check.call_student(stopped(3.0), "f", where="c", hidden=True)) == "`f` did not finish in 3 s (c)."
    assert message(lambda: check.call_student(stopped(None), "f", where="c")) == (
        "`f` did not finish in the time left for this question's checks (c).")
    assert "should return 3 values (a, b, c), but it returned list of length 4" in message(
        lambda: check.unpack([1, 2, 3, 4], "f", ("a", "b", "c")))
    assert "of length" not in message(lambda: check.unpack([1, 2, 3, 4], "f", ("a", "b", "c"), hidden=True))


def test_a_forward_pass_without_its_relu_is_named() -> None:
    case = {"all_f": [[[1.0], [-2.0]], [[3.0]]], "all_h": [[[1.0]], [[1.0], [0.0]]]}
    shown = message(lambda: check.check_forward([np.array(f) for f in case["all_f"]],
                                                [np.array([[1.0]]), np.array([[1.0], [-2.0]])], case, hidden=False,
                                                where="w"))
    assert "`all_h[1]` equals all_f[0]: the ReLU is missing (w)." == shown


# ---------------------------------------------------------------------------------------------
# The built cases on answers run in this process


def test_the_baseline_passes_every_case(student: InProcess) -> None:
    for question in ("q1.1", "q1.2", "q1.3", "q2.1", "q2.2"):
        assert all(passed for passed, _ in case_results(student, question).values()), question


def test_part_1_messages(student: InProcess) -> None:
    student.run("h1 = np.cos(f0)")  # the last cell that assigns h1: q1.1 runs it after the answer cell
    cases = case_results(student, "q1.1")
    assert "`h1` =" in cases["test_forward_first_steps"][1] and "fix it first" in cases["test_forward_first_steps"][1]
    assert cases["test_forward_last_steps"][0]  # f2 ... follow from the student's own h2: that work is right
    student.run("h1 = np.sin(f0)")
    student.run(f"dldf3 = {TOY_PRINTED['dldf3']}")
    assert f"stays {TOY_PRINTED['dldf3']:.6f} when the parameters change" in case_results(student, "q1.2", hidden=False)[
        "test_backward_values"][1]
    student.run("dldf3 = 2 * (f3 - y)\nh3 = 0.0")
    assert "change `h3`" in case_results(student, "q1.2", hidden=False)["test_backward_values"][1]
    student.run("dldf3 = dldh3 = dldf2 = dldh2 = dldf1 = dldh1 = dldf0 = 0 * f0")
    hidden = case_results(student, "q1.2", hidden=True)
    assert all("give 0 with other values of the parameters for a value that should not be 0" in text
               for _, text in hidden.values())
    student.run("dldf3 = 2 * (f3 - y)\ndldh3 = omega3 * dldf3\ndldf2 = -np.sin(f2) * dldh3\ndldh2 = omega2 * dldf2\n"
                "dldf1 = np.exp(f1) * dldh2\ndldh1 = omega1 * dldf1\ndldf0 = np.cos(f0) * dldh1")
    with np.errstate(divide="ignore"):  # the cell divides by zero on purpose (numpy floats, as in the notebook)
        student.run("dldbeta0 = dldf0 / (x - x)")
        shown = case_results(student, "q1.3", hidden=False)["test_parameter_values"][1]
    assert "is inf: look for an overflow or a division by zero" in shown
    student.run("dldbeta0 = dldf0 * [1.0][1]")
    public = case_results(student, "q1.3", hidden=False)["test_parameter_values"][1]
    hidden = case_results(student, "q1.3", hidden=True)["test_parameters_biases"][1]
    assert "raised IndexError: list index out of range when run again with the notebook's" in public
    assert "raised IndexError when run again" in hidden
    student.run("dldbeta0 = dldf0")


def test_a_question_whose_cell_never_ran_says_so() -> None:
    student = InProcess()
    student.run("import numpy as np")
    assert "No cell you ran assigns `f0`, `h1`" in case_results(student, "q1.1", hidden=False)["test_forward_first_steps"][1]


def test_hidden_messages_hold_nothing_the_students_code_chose(student: InProcess) -> None:
    student.run('''
class Leak4159(Exception):
    pass

def backward_pass(all_weights, all_biases, all_f, all_h, y):
    if len(all_weights) == 2:
        raise Leak4159("secret 271828")
    return [np.ones((1, 4159))] * len(all_weights), [np.ones((3141, 1))] * 47
''')
    for name, (passed, text) in case_results(student, "q2.2", hidden=True).items():
        assert not passed and not any(secret in text for secret in ("4159", "271828", "3141", "Leak", "47")), text
    student.run(BASELINE["q2.2"])


# ---------------------------------------------------------------------------------------------
# Finite differences lose points at every step size, not only the corpus's few


def test_toy_model_by_finite_differences_never_passes(student: InProcess) -> None:
    passing = []
    for step in TOY_STEPS:
        student.run(toy_finite_differences(float(step)))
        if all(passed for passed, _ in case_results(student, "q1.3", hidden=True).values()):
            passing.append(step)
    student.run(BASELINE["q1.3"])
    assert passing == [], f"q1.3 by centred finite differences passes its hidden cases with steps {passing}"


def test_network_by_finite_differences_fails_at_the_kink(student: InProcess) -> None:
    passing = []
    for step in NETWORK_STEPS:
        student.run(network_finite_differences(float(step)))
        if case_results(student, "q2.2", hidden=True)["test_exact_at_a_kink"][0]:
            passing.append(step)
    student.run(BASELINE["q2.2"])
    assert passing == [], f"backward_pass by centred finite differences passes the kink case with steps {passing}"


# ---------------------------------------------------------------------------------------------
# The public cases' random network is new at every check: their outcome must not depend on it

GIVEN_FUNCTIONS = f"K, D, D_i, D_o = {', '.join(str(size) for size in sizes().values())}\n" + '''
def ReLU(preactivation):
    return preactivation.clip(0.0)

def least_squares_loss(net_output, y):
    return np.sum((net_output - y) ** 2)

def d_loss_d_output(net_output, y):
    return 2 * (net_output - y)

def indicator_function(x):
    return (np.asarray(x) > 0).astype(float)
'''


def public_outcomes(answer, networks: int) -> set[str]:
    """The messages (or "passed") of an answer's public case on `networks` random networks, one after another."""
    space = {"np": np}
    exec(GIVEN_FUNCTIONS + BASELINE["q2.1"] + answer.code, space)
    setup = public_values(answer.question)
    outcomes = set()
    for _ in range(networks):
        try:
            if answer.question == "q2.1":
                check.check_network_output(space["compute_network_output"], check.random_network(like=setup),
                                           hidden=False)
            else:
                check.check_backward(space["backward_pass"], check.random_network(like=setup, backward=True),
                                     hidden=False)
            outcomes.add("passed")
        except AssertionError as failure:
            outcomes.add(re.sub(r"\d+ of \d+ entries", "some entries", str(failure)))
    return outcomes


@pytest.mark.slow
@pytest.mark.parametrize("answer", [a for a in ANSWERS if a.question in ("q2.1", "q2.2")
                                    and "finite differences" not in a.name], ids=lambda a: f"{a.question} {a.name}")
def test_the_public_random_network_gives_an_answer_the_same_outcome_every_time(answer) -> None:
    """Right to round-off, an answer passes on every random network; with a mistake, it fails on
    every one, with the same message. (Only a numerical estimate, as with finite differences of a very
    small step, can be close enough on one network and not on another.)"""
    outcomes = public_outcomes(answer, networks=25)
    assert outcomes == {"passed"} or "passed" not in outcomes, outcomes
    # A wrong answer that keeps its question's public points makes its mistake in hidden cases only.
    assert (outcomes == {"passed"}) == (not answer.wrong or (answer.points or 0) >= PUBLIC_POINTS[answer.question])


# A draw on which the unit at the kink hardly reached the loss: `f >= 0` gave the right gradients to
# round-off, so a right backward pass was named as making that mistake (once in about 6,000 gradings).
RARE_KINK_DRAW = 214174037217801047585667740622802999433


def test_a_right_backward_pass_is_never_named_a_mistake_at_the_kink() -> None:
    """On the kink case's networks (that rare draw's among them) a right backward pass passes, and
    every mistake a case can name gives gradients that differ from the right ones."""
    space = {"np": np}
    exec(GIVEN_FUNCTIONS + BASELINE["q2.2"], space)
    shape = list(sizes().values())
    for seed in (RARE_KINK_DRAW, *range(200)):
        case = reference.kink_network(*shape, rng=np.random.default_rng(seed))
        check.check_backward(space["backward_pass"], case, hidden=True)
        assert "indicator at the kink" in case["mistakes"]
        for mistaken_weights, mistaken_biases in case["mistakes"].values():
            assert not (check._same_layers(mistaken_weights, case["dl_dweights"])
                        and check._same_layers(mistaken_biases, case["dl_dbiases"]))
