"""Comparison helpers for the backpropagation homework's tests.

Every test converts the student's values to plain floats and float arrays here before comparing
them, so a check never depends on how numpy prints or on the type the student happened to use.
Failure messages name the quantity and the problem; they print expected numbers only for the
public set-up, whose values the notebook shows anyway.
"""

import math
from numbers import Real
from typing import Any, Sequence

import numpy as np

# The public set-up is checked against values printed to 6 significant places.
RTOL_TABLE = 1e-5
# Hidden cases allow floating-point round-off only: a value rounded to a few places, or a
# derivative estimated by finite differences, is far outside this.
RTOL_EXACT = 1e-10
# A value recomputed from the student's own earlier values by the same formula agrees to a few
# units of round-off (1e-15); a centred finite difference, even at its best step, is off by 1e-11
# or more on the toy model.
RTOL_RELATION = 1e-12


def _fail(message: str) -> None:
    raise AssertionError(message)


def scalar(name: str, value: Any) -> float:
    """Return the student's `value` as a finite float, or fail saying what `name` holds instead."""
    if value is None:
        _fail(f"`{name}` is not defined: run the cell that computes it.")
    if value is Ellipsis:
        _fail(f"`{name}` is still `...`: replace the `...` with your code.")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Real, np.number, np.ndarray)):
        _fail(f"`{name}` should be a number, but it is a {type(value).__name__}.")
    as_array = np.asarray(value)
    if as_array.dtype.kind not in "iuf":
        _fail(f"`{name}` should be a real number, but it has dtype {as_array.dtype}.")
    if as_array.size != 1:
        _fail(f"`{name}` should be a single number, but it has shape {as_array.shape}.")
    number = float(as_array.reshape(()))
    if not math.isfinite(number):
        _fail(f"`{name}` is {number}: look for an overflow or a division by zero.")
    return number


def array(name: str, value: Any) -> np.ndarray:
    """Return the student's `value` as a float array (a copy), or fail saying what is wrong."""
    if value is None or value is Ellipsis:
        _fail(f"`{name}` is {value!r}: it has not been computed yet.")
    if isinstance(value, (list, tuple)) or not isinstance(value, (Real, np.number, np.ndarray)):
        _fail(f"`{name}` should be a numpy array, but it is a {type(value).__name__}.")
    as_array = np.array(value)
    if as_array.dtype.kind not in "iuf":
        _fail(f"`{name}` should hold real numbers, but it has dtype {as_array.dtype}.")
    as_array = as_array.astype(float)
    if not np.all(np.isfinite(as_array)):
        _fail(f"`{name}` contains inf or nan.")
    return as_array


def array_list(name: str, value: Any, length: int) -> list:
    """Check that `value` is a list or tuple of `length` entries and return it as a list."""
    if not isinstance(value, (list, tuple)):
        _fail(f"`{name}` should be a list, but it is a {type(value).__name__}.")
    if len(value) != length:
        _fail(f"`{name}` should have {length} entries (one per layer), but it has {len(value)}.")
    return list(value)


def _close(actual: np.ndarray, expected: np.ndarray, rtol: float) -> bool:
    """Compare within `rtol`, relative to each value and to the largest value of the array."""
    scale = float(np.max(np.abs(expected), initial=0.0))
    return bool(np.allclose(actual, expected, rtol=rtol, atol=rtol * max(scale, 1e-12)))


def check_scalar(name: str, value: Any, expected: float, *, hidden: bool, hint: str = "") -> None:
    """Check one number against its expected value: the table's (public) or an exact one (hidden)."""
    actual = scalar(name, value)
    rtol = RTOL_EXACT if hidden else RTOL_TABLE
    if _close(np.float64(actual), np.float64(expected), rtol):
        return
    if hidden:
        problem = "is not exact: it differs from the reference by more than round-off"
        if _close(np.float64(actual), np.float64(expected), RTOL_TABLE):
            problem += " (was it rounded, or typed in from a printed value?)"
    elif _close(np.float64(-actual), np.float64(expected), rtol):
        problem = f"= {actual:.6f} has the wrong sign (expected {expected:.6f})"
    else:
        problem = f"= {actual:.6f}, but the expected value is {expected:.6f}"
    _fail(f"`{name}` {problem}. {hint}".strip())


def check_relation(name: str, value: Any, candidates: Sequence[float], hint: str) -> None:
    """Check that `value` equals one of `candidates`, each computed from the student's own values."""
    actual = scalar(name, value)
    if any(_close(np.float64(actual), np.float64(c), RTOL_RELATION) for c in candidates):
        return
    _fail(f"`{name}` does not follow from the values it is computed from. {hint}")


def _relu(values: np.ndarray) -> np.ndarray:
    return np.maximum(values, 0.0)


def check_array(name: str, value: Any, expected: Any, *, hidden: bool, hint: str = "") -> None:
    """Check an array's shape and values; on failure say how it differs (shape, sign, ReLU)."""
    actual = array(name, value)
    expected = np.asarray(expected, dtype=float)
    if actual.shape != expected.shape:
        problem = f"has shape {actual.shape}, but it should have shape {expected.shape}"
        if actual.shape == expected.shape[::-1]:
            problem += ": a transpose is missing or one too many"
        elif actual.size == expected.size:
            problem += ": it has the right number of entries but the wrong layout"
        _fail(f"`{name}` {problem}. {hint}".strip())
    rtol = RTOL_EXACT if hidden else RTOL_TABLE
    if _close(actual, expected, rtol):
        return
    if np.any(expected != 0) and _close(-actual, expected, rtol):
        problem = "has the wrong sign"
    elif np.any(expected < 0) and _close(actual, _relu(expected), rtol):
        problem = "has a ReLU applied where there should be none"
    elif hidden and _close(actual, expected, RTOL_TABLE):
        problem = "is only approximately right (rounded, or estimated numerically?)"
    else:
        wrong = int(np.sum(~np.isclose(actual, expected, rtol=rtol, atol=rtol * np.abs(expected).max())))
        problem = f"has {wrong} of {expected.size} entries wrong"
    _fail(f"`{name}` {problem}. {hint}".strip())


ANY_NETWORK = "It must work for networks of any depth and layer sizes, taken from its arguments."


def call_student(function: Any, name: str, *args: Any, case: str, hint: str = "") -> Any:
    """Call the student's function; turn its crash into a failure that names the case."""
    if not callable(function):
        _fail(f"`{name}` is not defined as a function: run the cell that defines it.")
    try:
        return function(*args)
    except Exception as error:  # any crash of student code is a failed case, not a test error
        _fail(f"`{name}` raised {type(error).__name__}: {error} ({case}). {hint}".strip())


def unpack(result: Any, name: str, count: int) -> tuple:
    """Check that a function returned a tuple of `count` values."""
    if not isinstance(result, (tuple, list)) or len(result) != count:
        _fail(f"`{name}` should return {count} values, but it returned {type(result).__name__}"
              + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else "") + ".")
    return tuple(result)


def network_inputs(case: dict) -> tuple:
    """Fresh float arrays of a stored network: (all_weights, all_biases, net_input)."""
    weights = [np.array(w, dtype=float) for w in case["weights"]]
    biases = [np.array(b, dtype=float) for b in case["biases"]]
    return weights, biases, np.array(case["net_input"], dtype=float)


def check_layers(name: str, value: Any, expected: Sequence[Any], *, hidden: bool, hint: str,
                 from_output: bool = False) -> None:
    """Check a list with one array per layer, naming the first wrong layer."""
    layers = array_list(name, value, len(expected))
    order = range(len(expected) - 1, -1, -1) if from_output else range(len(expected))
    for layer in order:
        check_array(f"{name}[{layer}]", layers[layer], expected[layer], hidden=hidden, hint=hint)


def check_forward(all_f: Any, all_h: Any, case: dict, *, hidden: bool, hint: str = "") -> None:
    """Check a forward pass in the order it is computed (h_0, f_0, h_1, f_1, ...).

    The first wrong value is the one to fix: later ones are wrong because of it.
    """
    all_f = array_list("all_f", all_f, len(case["all_f"]))
    all_h = array_list("all_h", all_h, len(case["all_h"]))
    for layer, (f, h) in enumerate(zip(case["all_f"], case["all_h"])):
        if layer > 0 and not _same_layers([h], [case["all_f"][layer - 1]]) \
                and _same_layers([all_h[layer]], [case["all_f"][layer - 1]]):
            _fail(f"`all_h[{layer}]` equals all_f[{layer - 1}]: the ReLU is missing. {hint}".strip())
        check_array(f"all_h[{layer}]", all_h[layer], h, hidden=hidden,
                    hint=f"h_0 is the input and h_(k+1) = ReLU(f_k). {hint}".strip())
        check_array(f"all_f[{layer}]", all_f[layer], f, hidden=hidden,
                    hint=f"f_k = beta_k + Omega_k h_k. {hint}".strip())


def _same_layers(value: Any, expected: Sequence[Any]) -> bool:
    """Whether `value` is a list of arrays equal to `expected` within round-off."""
    try:
        return len(value) == len(expected) and all(
            np.shape(a) == np.shape(e) and _close(np.asarray(a, dtype=float), np.asarray(e, dtype=float), RTOL_TABLE)
            for a, e in zip(value, expected))
    except (TypeError, ValueError):
        return False


def _backward_inputs(case: dict) -> tuple:
    weights, biases, _ = network_inputs(case)
    all_f = [np.array(f, dtype=float) for f in case["all_f"]]
    all_h = [np.array(h, dtype=float) for h in case["all_h"]]
    return weights, biases, all_f, all_h, np.array(case["y"], dtype=float)


def check_backward(backward_pass: Any, case: dict, *, hidden: bool) -> None:
    """Run the student's backward pass on a stored network and check every layer's gradients.

    The inputs include the reference forward pass, so a wrong forward pass costs q2.1 only.
    """
    result = call_student(backward_pass, "backward_pass", *_backward_inputs(case), case=case["name"],
                          hint=ANY_NETWORK if hidden else "")
    dweights, dbiases = unpack(result, "backward_pass", 2)
    if _same_layers(dweights, case["dl_dbiases"]) and _same_layers(dbiases, case["dl_dweights"]):
        _fail("`backward_pass` returns the bias gradients first: return (all_dl_dweights, all_dl_dbiases).")
    where = f" (on {case['name']})"
    check_layers("all_dl_dweights", dweights, case["dl_dweights"], hidden=hidden, from_output=True,
                 hint="dl/dOmega_k = dl/df_k h_k^T; below the output, dl/df_(k-1) = I[f_(k-1) > 0] * dl/dh_k"
                 + where)
    check_layers("all_dl_dbiases", dbiases, case["dl_dbiases"], hidden=hidden, from_output=True,
                 hint="dl/dbeta_k = dl/df_k" + where)


def check_inputs_unchanged(backward_pass: Any, case: dict) -> None:
    """Fail if the student's backward pass changes any array or list it is given."""
    inputs = _backward_inputs(case)
    originals = [copy_of(item) for item in inputs]
    result = call_student(backward_pass, "backward_pass", *inputs, case=case["name"], hint=ANY_NETWORK)
    for name, gradients in zip(("all_dl_dweights", "all_dl_dbiases"), unpack(result, "backward_pass", 2)):
        for layer, gradient in enumerate(array_list(name, gradients, len(case["weights"]))):
            array(f"{name}[{layer}]", gradient)
    for name, before, after in zip(("all_weights", "all_biases", "all_f", "all_h", "y"), originals, inputs):
        if copy_of(after) != before:
            _fail(f"`backward_pass` changed its argument `{name}` (on {case['name']}): work on copies "
                  "(np.array(x)) and never modify the inputs in place.")


def copy_of(item: Any) -> Any:
    """A comparable snapshot of an array or a list of arrays (nested lists of floats)."""
    if isinstance(item, list):
        return [copy_of(entry) for entry in item]
    return np.asarray(item).tolist() if isinstance(item, np.ndarray) else repr(item)


# The public values of the toy model, to six places (the notebook shows them too).
TOY_TABLE = {
    "f0": 1.230000, "h1": 0.942489, "f1": 1.623004, "h2": 5.068295,
    "f2": 7.136590, "h3": 0.657421, "f3": 2.372264, "l_i": 0.138581,
    "dldf3": 0.744528, "dldh3": 2.233585, "dldf2": -1.683058, "dldh2": -3.366115,
    "dldf1": -17.060467, "dldh1": 6.824187, "dldf0": 2.280901,
    "dldbeta3": 0.744528, "dldomega3": 0.489469, "dldbeta2": -1.683058, "dldomega2": -8.530233,
    "dldbeta1": -17.060467, "dldomega1": -16.079299, "dldbeta0": 2.280901, "dldomega0": 5.246071,
}


def matches_table(earlier: dict, answers: dict, questions: str) -> bool:
    """Whether the student's earlier values match the table, so `answers` can be compared with it.

    The answers must be numbers either way. When the earlier values are off, the table check of a
    later question is skipped (it passes) and only its hidden checks, which build on the student's
    own earlier values, judge it: a mistake costs points on its own question only.
    """
    for name, value in answers.items():
        scalar(name, value)
    for name, value in earlier.items():
        try:
            check_scalar(name, value, TOY_TABLE[name], hidden=False)
        except AssertionError:
            print(f"Note: {questions} does not match the table yet ({name}), so this question is not "
                  "compared with the table. Fix the earlier question first.")
            return False
    return True
