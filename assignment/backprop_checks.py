"""Comparison helpers for the backpropagation homework's tests.

Every test converts the student's values to plain floats and float arrays here before comparing
them, so a check never depends on how numpy prints or on the type the student happened to use.
Failure messages name the quantity and the problem. Public cases may print expected numbers (the
notebook shows them anyway); with `hidden=True` a message holds no hidden number and nothing the
student's code chose (no shapes, lengths or error texts of theirs), only what went wrong.

Part 1 is judged by running the student's own cells for a question again with inputs the test
chooses (`rerun`): other parameter values, and the exact values of the earlier steps. So a value
typed in, a chain of zeros, or a later cell that changes an earlier value earns nothing, and a
mistake in one question costs points on that question only.
"""

import ast
import contextlib
import copy
import functools
import io
import math
import os
import re
import time
from dataclasses import dataclass
from numbers import Real
from typing import Any, Callable, Sequence

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
# Given values that a question's cells leave alone come back as they went in; recomputing one by
# its own formula changes it by round-off at most.
RTOL_CHANGED = 1e-9

PARAMETERS = ("beta0", "beta1", "beta2", "beta3", "omega0", "omega1", "omega2", "omega3", "x", "y")
FORWARD = ("f0", "h1", "f1", "h2", "f2", "h3", "f3", "l_i")
BACKWARD = ("dldf3", "dldh3", "dldf2", "dldh2", "dldf1", "dldh1", "dldf0")
PARAMETER_DERIVATIVES = ("dldbeta3", "dldomega3", "dldbeta2", "dldomega2",
                         "dldbeta1", "dldomega1", "dldbeta0", "dldomega0")
# What each Part 1 question computes, and what it is given when its cells run again.
TOY_QUESTIONS = {
    "q1.1": (PARAMETERS, FORWARD),
    "q1.2": (PARAMETERS + FORWARD, BACKWARD),
    "q1.3": (PARAMETERS + FORWARD + BACKWARD, PARAMETER_DERIVATIVES),
}


def _fail(message: str) -> None:
    raise AssertionError(message)


def _detail(text: str, hidden: bool) -> str:
    """A detail of the student's value, left out of hidden messages."""
    return "" if hidden else text


def scalar(name: str, value: Any, hidden: bool = False) -> float:
    """Return the student's `value` as a finite float, or fail saying what `name` holds instead."""
    if value is None:
        _fail(f"`{name}` is not defined: run the cell that computes it.")
    if value is Ellipsis:
        _fail(f"`{name}` is still `...`: replace the `...` with your code.")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Real, np.number, np.ndarray)):
        _fail(f"`{name}` should be a number, but it is a {type(value).__name__}.")
    as_array = np.asarray(value)
    if as_array.dtype.kind not in "iuf":
        _fail(f"`{name}` should be a real number{_detail(f', but it has dtype {as_array.dtype}', hidden)}.")
    if as_array.size != 1:
        _fail(f"`{name}` should be a single number{_detail(f', but it has shape {as_array.shape}', hidden)}.")
    number = float(as_array.reshape(()))
    if not math.isfinite(number):
        _fail(f"`{name}` is {number}: look for an overflow or a division by zero.")
    return number


def array(name: str, value: Any, hidden: bool = False) -> np.ndarray:
    """Return the student's `value` as a float array (a copy), or fail saying what is wrong."""
    if value is None or value is Ellipsis:
        _fail(f"`{name}` is {value!r}: it has not been computed yet.")
    if isinstance(value, (list, tuple)) or not isinstance(value, (Real, np.number, np.ndarray)):
        _fail(f"`{name}` should be a numpy array{_detail(f', but it is a {type(value).__name__}', hidden)}.")
    as_array = np.array(value)
    if as_array.dtype.kind not in "iuf":
        _fail(f"`{name}` should hold real numbers{_detail(f', but it has dtype {as_array.dtype}', hidden)}.")
    as_array = as_array.astype(float)
    if not np.all(np.isfinite(as_array)):
        _fail(f"`{name}` contains inf or nan.")
    return as_array


def array_list(name: str, value: Any, length: int, hidden: bool = False) -> list:
    """Check that `value` is a list or tuple of `length` entries and return it as a list."""
    if not isinstance(value, (list, tuple)):
        instead = _detail(f", but it is a {type(value).__name__}", hidden)
        _fail(f"`{name}` should be a list of arrays, one per layer{instead}.")
    if len(value) != length:
        _fail(f"`{name}` should have {length} entries (one per layer){_detail(f', but it has {len(value)}', hidden)}.")
    return list(value)


def _close(actual: np.ndarray, expected: np.ndarray, rtol: float, scale: float | None = None) -> bool:
    """Compare within `rtol`, relative to each value and to `scale` (by default the largest value of
    the array)."""
    return bool(np.allclose(actual, expected, rtol=rtol, atol=_atol(expected, rtol, scale)))


def _atol(expected: np.ndarray, rtol: float, scale: float | None) -> float:
    largest = float(np.max(np.abs(expected), initial=0.0)) if scale is None else scale
    return rtol * max(largest, 1e-12)


def check_scalar(name: str, value: Any, expected: float, *, hidden: bool, hint: str = "", where: str = "",
                 mistake: Callable[[], str | None] | None = None) -> None:
    """Check one number against its expected value: to 6 places (public) or exactly (hidden); a
    wrong one is said to make the common mistake that `mistake()` finds, if it finds one (asked only
    of a wrong value: the search compares many candidates)."""
    actual = scalar(name, value, hidden)
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
    found = mistake() if mistake else None
    named = f": it {found}" if found and found not in problem else ""
    _fail(f"`{name}` {problem}{where}{named}. {hint}".strip())


def follows(value: float, candidates: Sequence[float]) -> bool:
    """Whether `value` equals one of `candidates`, each computed from the student's own values, to round-off."""
    return any(_close(np.float64(value), np.float64(c), RTOL_RELATION) for c in candidates)


# The common mistakes a message names, each in words of its own: a message names the mistake its
# answer makes, and no other.
WRONG_SIGN = "has the wrong sign"
WRONG_FUNCTION = "is computed with the wrong function"
NO_UPSTREAM = "leaves out the upstream factor (the derivative after it in the chain)"
RELU_APPLIED = "has a ReLU applied where there should be none"
NO_RELU = "is what the network gives without its ReLUs: h_(k+1) = ReLU(f_k) in every hidden layer"
NO_INDICATOR = "leaves out the ReLU indicator: below the output, dl/df_(k-1) = I[f_(k-1) > 0] * dl/dh_k"
INDICATOR_OF_WRONG_LAYER = ("takes the ReLU indicator of the wrong layer: dl/df_(k-1) = I[f_(k-1) > 0] * dl/dh_k, "
                            "with f_(k-1), the pre-activation of the layer below")
INDICATOR_AT_KINK = ("takes the ReLU indicator as 1 at the kink: I[f > 0] is 0 where f is exactly 0 "
                     "(f > 0, not f >= 0)")

# The names of the mistakes with the ReLU indicator whose gradients a backward case may carry.
INDICATOR_MISTAKES = {"no indicator": NO_INDICATOR, "indicator of the wrong layer": INDICATOR_OF_WRONG_LAYER,
                      "indicator at the kink": INDICATOR_AT_KINK}
# The functions a step of Part 1 may apply.
FUNCTIONS: dict[str, Callable[[float], float]] = {
    "sin": math.sin, "cos": math.cos, "exp": math.exp,
    "-sin": lambda v: -math.sin(v), "-cos": lambda v: -math.cos(v), "-exp": lambda v: -math.exp(v)}


def upstream(name: str) -> str | None:
    """The derivative that Part 1's chain rule multiplies into `name` (the one after it), if any."""
    if name in BACKWARD[1:]:
        return BACKWARD[BACKWARD.index(name) - 1]
    return f"dldf{name[-1]}" if name in PARAMETER_DERIVATIVES else None


def toy_mistake(name: str, actual: float, right: float, given: dict[str, Any]) -> str | None:
    """The common mistake that makes Part 1's `name` come out as `actual` instead of `right`, from
    the values in `given` (the ones before it), if one does: WRONG_SIGN, WRONG_FUNCTION or NO_UPSTREAM.
    Which function of which value a step takes is found from the numbers, never written here."""

    def gives(value: float) -> bool:
        return math.isfinite(value) and _close(np.float64(actual), np.float64(value), RTOL_CHANGED)

    if right != 0 and gives(-right):
        return WRONG_SIGN
    factor = float(given.get(upstream(name), 1.0))
    values = [float(value) for key, value in given.items() if key != name and isinstance(value, (float, np.floating))]
    with np.errstate(all="ignore"):
        for function, value in ((f, v) for f in FUNCTIONS for v in values):
            if _close(np.float64(FUNCTIONS[function](value) * factor), np.float64(right), RTOL_CHANGED):
                if any(gives(FUNCTIONS[other](value) * factor) for other in FUNCTIONS
                       if other.lstrip("-") != function.lstrip("-")):
                    return WRONG_FUNCTION
                break
    if upstream(name) and factor and gives(right / factor) and not gives(right):
        return NO_UPSTREAM
    return None


# ---------------------------------------------------------------------------------------------
# Running the student's cells again (Part 1)


@dataclass
class Rerun:
    """The student's values after their cells ran again, and what the cells raised."""

    values: dict[str, Any]
    error: Any  # an exception, or None
    found: bool  # whether any cell computes the question's values


class _QuietGrader:
    """Stands in for otter's `grader` while cells run again: checks inside them do nothing."""

    def __getattr__(self, _name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


DYNAMIC = "*"  # stands in `bound_names` for "and maybe any name": the cell writes through globals() or exec
NAMESPACE_CALLS = ("globals", "locals", "vars")


def _namespace_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in NAMESPACE_CALLS


def writes_namespace(node: ast.AST) -> bool:
    """Whether code may bind names unseen: `exec`, `globals()[...] = ...`, `vars().update(...)`, or
    the namespace kept under a name of its own (reading it, to print, binds nothing)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "exec":
        return True
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Store, ast.Del)) and _namespace_call(node.value):
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _namespace_call(node.func.value):
        return node.func.attr in ("update", "setdefault", "__setitem__")
    return isinstance(node, (ast.Assign, ast.NamedExpr)) and _namespace_call(node.value)


def magic_body(node: ast.AST) -> str | None:
    """The code a magic runs, for `get_ipython().run_cell_magic(name, line, body)` (`%%time`,
    `%%capture`, ...) and `run_line_magic(name, line)` (`%time ...`), as IPython writes them."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
        argument = {"run_cell_magic": 2, "run_line_magic": 1}.get(node.func.attr)
        if argument is not None and len(node.args) > argument and isinstance(node.args[argument], ast.Constant) \
                and isinstance(node.args[argument].value, str) and not _is_constant(node.args[0], "timeit"):
            return node.args[argument].value  # (`%%timeit` runs its code in a function of its own)
    return None


def _is_constant(node: ast.AST, value: str) -> bool:
    return isinstance(node, ast.Constant) and node.value == value


@functools.lru_cache(maxsize=4096)
def _syntax_tree(source: str) -> ast.Module | None:
    """A cell's code as Python (IPython's magics turned into calls), or None if it does not parse,
    or would take IPython's transformer long: it tokenizes the cell again for each line with a
    magic or a shell escape, so its work grows as lines times such lines."""
    try:
        return ast.parse(source)
    except Exception:  # magics, or code that does not parse at all
        lines = source.splitlines()
        if len(lines) * sum(1 for line in lines if any(escape in line for escape in "%!?")) > 2_000:
            return None
        try:
            from IPython.core.inputtransformer2 import TransformerManager

            return ast.parse(TransformerManager().transform_cell(source))
        except Exception:
            return None


@functools.lru_cache(maxsize=4096)
def read_names(source: str) -> frozenset[str]:
    """The names a cell's code reads, anywhere in it (the code of magics included)."""
    tree = _syntax_tree(source)
    names = set()
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            names.add(node.id)
        body = magic_body(node)
        if body is not None:
            names.update(read_names(body))
    return frozenset(names)


@functools.lru_cache(maxsize=4096)
def bound_names(source: str) -> frozenset[str]:
    """The names a cell's code binds at the notebook's top level (assignments, loops, imports, defs),
    with DYNAMIC among them if it may bind others, unseen. The code of `%%time`-like magics counts."""
    tree = _syntax_tree(source)
    if tree is None:  # a cell that does not parse binds nothing
        return frozenset()
    names: set[str] = set()

    def targets(node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                targets(element)
        elif isinstance(node, ast.Starred):
            targets(node.value)

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)  # and the names its body declares `global` (run when it is called)
            names.update(name for inner in ast.walk(node) if isinstance(inner, ast.Global) for name in inner.names)
            return
        if writes_namespace(node):
            names.add(DYNAMIC)
        body = magic_body(node)
        if body is not None:
            names.update(bound_names(body))
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, ast.Assign):
            for target in node.targets:
                targets(target)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor)):
            targets(node.target)
        elif isinstance(node, ast.NamedExpr):
            targets(node.target)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    targets(item.optional_vars)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return frozenset(names)


def answer_cells(sources: Sequence[str], outputs: Sequence[str]) -> list[int]:
    """The cells to run again for `outputs`, in the order they ran: for each output, the last cell
    that assigns it by name; and the last cell that may assign names dynamically (through
    `globals()`, `locals()`, `vars()` or `exec`), unless every output is assigned by name after it."""
    latest: dict[str, int] = {}
    dynamic = None
    for index, source in enumerate(sources):
        names = bound_names(source)
        for name in names & set(outputs):
            latest[name] = index
        if DYNAMIC in names:
            dynamic = index
    cells = set(latest.values())
    if dynamic is not None and any(latest.get(name, -1) < dynamic for name in outputs):
        cells.add(dynamic)
    return sorted(cells)


def rerun_plan(sources: Sequence[str], question: str) -> tuple[list[int], list[int]]:
    """(helpers, cells): the answer cells of `question` (`answer_cells`), and for each name those
    cells read but neither assign nor are given, the last other cell that assigns it among the
    cells answering this question or an earlier one (a helper such as `h0 = x` or
    `activations = [x, h1, h2, h3]` kept in the q1.1 cell, or `dh1_df0` in an older copy of the
    q1.2 cell). The helpers run again first, with the same inputs, so that such a name belongs to
    the inputs too; then the inputs are set again, so that an earlier question's mistake stays its own."""
    given, outputs = TOY_QUESTIONS[question]
    cells = answer_cells(sources, outputs)
    needed = set().union(*(read_names(sources[index]) for index in cells)) - set(given) - set(outputs)
    needed -= set().union(*(bound_names(sources[index]) for index in cells))
    questions = list(TOY_QUESTIONS)
    answering = {name for other in questions[:questions.index(question) + 1] for name in TOY_QUESTIONS[other][1]}
    last: dict[str, int] = {}
    for index, source in enumerate(sources):
        bound = bound_names(source)
        if index not in cells and bound & (answering | {DYNAMIC}):
            for name in needed if DYNAMIC in bound else bound & needed:
                last[name] = index
    return sorted(set(last.values())), cells


def _rerun_here(namespace: dict, question: str, inputs: dict[str, Any],
                names: Sequence[str]) -> tuple[dict[str, Any], Any, bool]:
    """`rerun` in the student's own kernel (a notebook's `grader.check`, or stock otter's grading):
    the cells come from IPython's history, and the namespace is put back afterwards."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        _fail("These checks run the notebook's cells again, so they need IPython (a notebook).")
    sources = list(shell.history_manager.input_hist_raw)
    helpers, cells = rerun_plan(sources, question)
    saved = dict(namespace)
    error = None

    def run(index: int) -> None:
        exec(compile(shell.transform_cell(sources[index]), f"<cell {index}>", "exec"), namespace)

    try:
        for name in TOY_QUESTIONS[question][1]:
            namespace.pop(name, None)
        namespace.update(inputs, grader=_QuietGrader())
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            for index in helpers:
                with contextlib.suppress(Exception):  # what a helper cell raises is its own question's
                    run(index)
            namespace.update(inputs)
            for index in cells:
                run(index)
    except Exception as raised:  # the student's code may raise anything
        error = raised
    finally:
        values = {name: namespace.get(name) for name in names}
        namespace.clear()
        namespace.update(saved)
    return values, error, bool(cells)


def rerun(env: Any, question: str, point: dict) -> Rerun:
    """Run the cells that compute `question`'s values again, with its inputs taken from `point`
    (parameters, and the exact values of the earlier steps); return the values afterwards,
    the inputs included (to see whether the cells changed them)."""
    given, outputs = TOY_QUESTIONS[question]
    inputs = {name: np.float64(point[name]) for name in given}  # numbers as the notebook holds them
    names = [*outputs, *given]
    if hasattr(env, "rerun_cells"):  # the trusted grader's view of the student's process
        key = (question, tuple(inputs.values()))  # the cases of one check share their reruns
        if key not in env.reruns:
            helpers, cells = rerun_plan(env.student_cells(), question)
            values, error = env.rerun_cells(helpers, cells, list(outputs), inputs, names)
            env.reruns[key] = Rerun(values, error, bool(cells))
        return env.reruns[key]
    values, error, found = _rerun_here(env, question, inputs, names)
    return Rerun(values, error, found)


def public_points(reference: dict) -> list[tuple[str, dict]]:
    """The public points of Part 1, each with the words that say where it is: the notebook's
    parameters, and another set shown in full (the student may try it)."""
    other = ", ".join(f"{name}={reference['other'][name]:g}" for name in PARAMETERS)
    return [("with the notebook's parameters", reference["notebook"]), (f"with {other}", reference["other"])]


def hidden_points(points: Sequence[dict]) -> list[tuple[str, dict]]:
    return [("with other values of the parameters", point) for point in points]


def _rerun_checked(env: Any, question: str, point: dict, hidden: bool, where: str) -> dict[str, Any]:
    """`rerun`, failing when no cell computes the values, when the cells raise, or when they
    change a value they were given."""
    given, outputs = TOY_QUESTIONS[question]
    result = rerun(env, question, point)
    if not result.found:
        _fail(f"No cell you ran assigns {', '.join(f'`{n}`' for n in outputs[:2])}, ...: run the cell of {question}.")
    if result.error is not None and type(result.error).__name__ == "DidNotFinish":
        # In a hidden message, no number: the limit follows from what the student's cells took.
        within = "in time" if hidden and getattr(result.error, "seconds", None) else _within(result.error)
        _fail(f"Your cells for {question} did not finish {within} when run again {where}.")
    if result.error is not None:
        kind = type(result.error).__name__
        _fail(f"Your cells for {question} raised {kind}{_detail(f': {result.error}', hidden)} when run again "
              f"{where}. They must work for any values of the parameters and of the earlier steps.")
    changed = [name for name in given if not _same(result.values.get(name), point[name], RTOL_CHANGED)]
    if changed and hidden:  # which one is the student's code's choice: not said
        _fail(f"Your cells for {question} change a value they are given (a parameter, or a value an earlier "
              f"step computed) {where}: leave them as they are, and use new names for anything else you compute.")
    if changed and changed[0] in PARAMETERS:
        _fail(f"Your cells for {question} change `{changed[0]}`, which the notebook gives: leave the parameters "
              "as they are (your cells must not set them again), so that they work for any values of them.")
    if changed:
        _fail(f"Your cells for {question} change `{changed[0]}`, which an earlier step computed: keep the values "
              "of earlier steps as they are, and use new names for anything else you compute.")
    return result.values


def _same(value: Any, expected: float, rtol: float = 0.0) -> bool:
    try:
        number = float(np.asarray(value, dtype=float).reshape(()))
    except (TypeError, ValueError):
        return False
    return abs(number - float(expected)) <= rtol * abs(float(expected))


def _number(value: Any) -> float | None:
    """The student's value as a finite float, or None if it is not one."""
    try:
        return scalar("value", value, hidden=True)
    except AssertionError:
        return None


def check_toy_question(env: Any, question: str, names: Sequence[str], points: Sequence[tuple[str, dict]], *,
                       hidden: bool, hint: str = "", subject: str = "") -> None:
    """Run `question`'s cells at each (where, point) and compare `names`, in the order they are
    computed, with the point's values; the first wrong one fails the case (the ones after it are
    computed from it), with its mistake named where it is a common one. A value that stays the same
    when the point changes was typed in. A hidden case says that `subject` is not exact or is wrong,
    and which common mistake, but nothing about which value."""
    previous = None
    for where, point in points:
        values = _rerun_checked(env, question, point, hidden, where)
        if hidden:
            numbers = [_number(values.get(name)) for name in names]
            wrong = [(name, n) for n, name in zip(numbers, names)
                     if n is None or not _close(np.float64(n), np.float64(point[name]), RTOL_EXACT)]
            if not wrong:
                continue
            if all(n is not None and _close(np.float64(n), np.float64(point[name]), RTOL_TABLE) for name, n in wrong):
                _fail(f"{subject} is only approximately right {where} (was a value rounded, or typed in from a "
                      f"printed one?). {hint}".strip())
            name, number = wrong[0]
            mistake = toy_mistake(name, number, point[name], point) if number is not None else None
            _fail(f"{subject} is wrong {where}{f': one of its values {mistake}' if mistake else ''}. {hint}".strip())
        for position, name in enumerate(names):
            actual = scalar(name, values.get(name))
            if previous is not None and _same(actual, previous[name]) and not _same(actual, point[name], RTOL_TABLE):
                _fail(f"`{name}` stays {actual:.6f} when the parameters change: compute it from the values it "
                      "depends on, never type numbers in.")
            later = f" The values after `{name}` are computed from it: fix it first." if position < len(names) - 1 else ""
            check_scalar(name, actual, point[name], hidden=False, hint=f"{hint}{later}".strip(), where=f" {where}",
                         mistake=functools.partial(toy_mistake, name, actual, point[name], point))
        previous = {name: scalar(name, values.get(name)) for name in names}


def check_toy_steps(env: Any, question: str, steps: Sequence[tuple[str, Callable[[dict], Sequence[float]], str]],
                    points: Sequence[tuple[str, dict]], *, hidden: bool, subject: str = "", hint: str = "") -> None:
    """Run `question`'s cells at each (where, point) and check that every step follows, by its
    equation, from the values it is computed from (the question's own values, and the point's
    inputs): a public message names the value where a mistake is made, and the mistake where it is a
    common one; a hidden one says that `subject` does not follow, with the common mistake if one is
    made and `hint`, and nothing about which value."""
    given, outputs = TOY_QUESTIONS[question]
    for where, point in points:
        values = _rerun_checked(env, question, point, hidden, where)
        if hidden and any(_number(values.get(name)) is None for name in outputs):
            _fail(f"Your cells for {question} do not give a finite number for every value {where}.")
        own = {**{name: float(point[name]) for name in given},
               **{name: scalar(name, values.get(name)) for name in outputs}}
        vanished = [name for name in outputs if own[name] == 0 and point[name] != 0]
        if vanished and hidden:  # a chain of zeros satisfies every product rule and shows no work
            _fail(f"Your cells for {question} give 0 {where} for a value that should not be 0: compute every "
                  "value from the ones before it.")
        if vanished:
            _fail(f"`{vanished[0]}` is 0 {where}, and it should not be: compute every value from the ones "
                  "before it.")
        for name, candidates, step_hint in steps:
            expected = candidates(own)
            if follows(own[name], expected):
                continue
            mistake = toy_mistake(name, own[name], expected[0], own)
            if hidden:
                _fail(f"{subject} do not all follow from the values they are computed from, {where}"
                      f"{f': one of them {mistake}' if mistake else ''}. {hint}".strip())
            _fail(f"`{name}` {mistake or 'does not follow from the values it is computed from'}. {step_hint} "
                  f"(run {where})")


# ---------------------------------------------------------------------------------------------
# Part 2: the deep network
#
# Public cases judge the notebook's network against its printed values, and a random network made
# at every check, which no code can know in advance. Hidden cases each test one property, on
# networks of their own: other depths and widths, arguments left as they were, the ReLU's kink. A
# hidden message names the function or list that is wrong and the kind of mistake, on the case's
# networks as a whole: never a layer, a count, a shape or an argument that the student's code chose.

FORWARD_RETURNS = ("net_output", "all_f", "all_h")
BACKWARD_RETURNS = ("all_dl_dweights", "all_dl_dbiases")
# A random network's hidden pre-activations stay this far from the ReLU's kink, so that centred
# differences of the loss with DIFFERENCE_STEP never cross it, and its output is below zero.
KINK_MARGIN = 0.1
DIFFERENCE_STEP = 1e-6
# Centred differences of a loss that is piecewise quadratic in each parameter, away from kinks, are
# exact but for round-off: far below this much of the network's largest gradient.
RTOL_DIFFERENCES = 1e-6


def _relu(values: np.ndarray) -> np.ndarray:
    return np.maximum(values, 0.0)


def _tolerance(case: dict) -> dict[str, Any]:
    """How close a function's results must be to a network's stored ones: to the printed digits for
    the notebook's network, to round-off for exact values, or as the case says (centred differences:
    relative to the network's largest gradient)."""
    if case.get("printed"):
        return dict(rtol=RTOL_TABLE)
    return dict(rtol=case.get("rtol", RTOL_EXACT), scale=case.get("scale"))


def _indexed(name: str, index: int, hidden: bool) -> str:
    """`name[index]`, or just `name` in a hidden message (the layer is the student's code's choice)."""
    return name if hidden else f"{name}[{index}]"


def check_array(name: str, value: Any, expected: Any, *, hidden: bool, hint: str = "", where: str = "",
                rtol: float = RTOL_EXACT, scale: float | None = None,
                mistakes: Sequence[tuple[Any, str]] = ()) -> None:
    """Check an array's shape and values; on failure say how it differs: the common mistake of
    `mistakes` ((what it would give, its words)) that it equals, or its shape, sign or zeros."""
    actual = array(name, value, hidden)
    expected = np.asarray(expected, dtype=float)
    at = f" ({where})" if where else ""
    if actual.shape != expected.shape:
        if hidden:
            problem = "has the wrong shape (a transpose missing or one too many, or the wrong layout)"
        else:
            problem = f"has shape {actual.shape}, but it should have shape {expected.shape}"
            if actual.shape == expected.shape[::-1]:
                problem += ": a transpose is missing or one too many"
            elif actual.size == expected.size:
                problem += ": it has the right number of entries but the wrong layout"
        _fail(f"`{name}` {problem}{at}. {hint}".strip())
    if _close(actual, expected, rtol, scale):
        return
    named = [words for mistaken, words in mistakes if np.shape(mistaken) == expected.shape
             and not _close(np.asarray(mistaken, dtype=float), expected, rtol, scale)
             and _close(actual, np.asarray(mistaken, dtype=float), rtol, scale)]
    if named:
        problem = named[0]
    elif not np.any(actual):
        problem = "is all zeros: it is never computed, or a chain of zeros reaches it"
    elif _close(-actual, expected, rtol, scale):
        problem = WRONG_SIGN
    elif rtol < RTOL_TABLE and _close(actual, expected, RTOL_TABLE, scale):
        problem = "is only approximately right (rounded, or estimated numerically?)"
    elif hidden:
        problem = "is wrong"
    else:
        wrong = int(np.sum(~np.isclose(actual, expected, rtol=rtol, atol=_atol(expected, rtol, scale))))
        problem = f"has {wrong} of {expected.size} entries wrong"
    _fail(f"`{name}` {problem}{at}. {hint}".strip())


class DidNotFinish(AssertionError):
    """A case failed because the student's code ran out of its time: trying it again would only
    spend more of it."""


def _within(error: Exception) -> str:
    """How long code that ran out of time had: its own limit (the grader's `DidNotFinish.seconds`),
    or what was left of its question's time."""
    seconds = getattr(error, "seconds", None)
    return f"in {seconds:g} s" if seconds else "in the time left for this question's checks"


def call_student(function: Any, name: str, *args: Any, where: str, hidden: bool = False) -> Any:
    """Call the student's function; turn its crash into a failure that says where it happened."""
    if not callable(function):
        _fail(f"`{name}` is not defined as a function: run the cell that defines it.")
    try:
        return function(*args)
    except Exception as error:  # any crash of student code is a failed case, not a test error
        kind = type(error).__name__
        if kind == "DidNotFinish":  # the grader stopped it at its time limit
            raise DidNotFinish(f"`{name}` did not finish {_within(error)} ({where}).") from None
        _fail(f"`{name}` raised {kind}{_detail(f': {error}', hidden)} ({where}).")


def unpack(result: Any, name: str, returns: Sequence[str], hidden: bool = False) -> tuple:
    """Check that a function returned a tuple of the values `returns` names."""
    if result is None:
        _fail(f"`{name}` returns None: it is not finished yet (it should return {', '.join(returns)}).")
    if not isinstance(result, (tuple, list)) or len(result) != len(returns):
        what = f"{type(result).__name__}{f' of length {len(result)}' if isinstance(result, (tuple, list)) else ''}"
        _fail(f"`{name}` should return {len(returns)} values ({', '.join(returns)})"
              f"{_detail(f', but it returned {what}', hidden)}.")
    return tuple(result)


def network_inputs(case: dict) -> tuple:
    """Fresh float arrays of a stored network: (all_weights, all_biases, net_input)."""
    weights = [np.array(w, dtype=float) for w in case["weights"]]
    biases = [np.array(b, dtype=float) for b in case["biases"]]
    return weights, biases, np.array(case["net_input"], dtype=float)


def _backward_inputs(case: dict) -> tuple:
    """Fresh float arrays of a stored network, its forward pass included: the arguments of backward_pass."""
    weights, biases, _ = network_inputs(case)
    all_f = [np.array(f, dtype=float) for f in case["all_f"]]
    all_h = [np.array(h, dtype=float) for h in case["all_h"]]
    return weights, biases, all_f, all_h, np.array(case["y"], dtype=float)


# ---------------------------------------------------------------------------------------------
# Functions that read the notebook's globals instead of their arguments (the most common mistake:
# the book's skeleton of backward_pass reads `K`) pass on the notebook's network and fail on others.
# When a function fails on a network, it runs again with the notebook's globals set to match that
# network; if it then passes, the message names the globals it reads.

GLOBAL_MISTAKES = {
    "compute_network_output": [
        (("K",), "reads the notebook's global `K`: take the depth from its arguments (len(all_weights) - 1)"),
        (("K", "D", "D_i", "D_o"), "reads the notebook's global sizes (`K`, `D`, `D_i`, `D_o`): take every size "
                                   "from its arguments"),
        (("all_weights", "all_biases", "net_input"), "reads the notebook's own network (`all_weights`, "
                                                     "`all_biases`, `net_input`) instead of its arguments"),
    ],
    "backward_pass": [
        (("K",), "reads the notebook's global `K`: take the depth from its arguments (len(all_weights) - 1)"),
        (("y", "net_target"), "reads the notebook's own target (`y` or `net_target`) instead of its argument `y`"),
        (("K", "D", "D_i", "D_o"), "reads the notebook's global sizes (`K`, `D`, `D_i`, `D_o`): take every size "
                                   "from its arguments"),
        (("all_weights", "all_biases", "all_f", "all_h"), "reads the notebook's own network (`all_weights`, "
                                                          "`all_biases`, `all_f`, `all_h`) instead of its arguments"),
    ],
}


def _notebook_globals(case: dict) -> dict[str, Any]:
    """The values the notebook's globals would have, were `case` the notebook's network."""
    weights, biases, net_input = network_inputs(case)
    values = dict(K=len(weights) - 1, D=weights[0].shape[0], D_i=net_input.shape[0], D_o=weights[-1].shape[0],
                  all_weights=weights, all_biases=biases, net_input=net_input)
    if "y" in case:
        _, _, all_f, all_h, target = _backward_inputs(case)
        values.update(all_f=all_f, all_h=all_h, y=target, net_target=target)
    return values


def call_with_globals(function: Any, values: dict[str, Any], *args: Any) -> Any:
    """Call `function` with some of the notebook's globals set to `values` for the call only."""
    if hasattr(function, "call_with_globals"):  # the trusted grader's view of a function in the student's process
        return function.call_with_globals(values, *args)
    space = getattr(function, "__globals__", None)
    if space is None:  # not a Python function: it reads no globals of the notebook's
        return function(*args)
    saved = {name: space[name] for name in values if name in space}
    space.update(values)
    try:
        return function(*args)
    finally:
        for name in values:
            space.pop(name, None)
        space.update(saved)


def _judged(function: Any, name: str, case: dict, check_one: Callable[[Any], None], where: str) -> None:
    """`check_one(function)`; if it fails, and passes with the notebook's globals set to match `case`,
    fail saying which globals the function reads."""
    try:
        check_one(function)
    except DidNotFinish:
        raise
    except AssertionError:
        if callable(function):
            for names, mistake in GLOBAL_MISTAKES[name]:
                values = {key: value for key, value in _notebook_globals(case).items() if key in names}
                try:
                    check_one(lambda *args: call_with_globals(function, values, *args))
                except AssertionError:
                    continue
                _fail(f"`{name}` {mistake} (found {where}).")
        raise


# ---------------------------------------------------------------------------------------------
# The forward pass


def array_layers(name: str, value: Any, expected: Sequence[Any], *, hidden: bool) -> list:
    """`value` as a list with one entry per layer of `expected`, in the right order."""
    layers = array_list(name, value, len(expected), hidden)
    if len(expected) > 1 and _same_layers(layers[::-1], expected) and not _same_layers(layers, expected):
        _fail(f"`{name}` lists the layers in reverse order: entry k must be layer k's "
              "(fill the list by index, or reverse it before returning).")
    return layers


def check_layers(name: str, value: Any, expected: Sequence[Any], *, hidden: bool, hint: str, where: str,
                 rtol: float, scale: float | None = None, from_output: bool = False) -> None:
    """Check a list with one array per layer, naming the first wrong layer (in a public message)."""
    layers = array_layers(name, value, expected, hidden=hidden)
    order = range(len(expected) - 1, -1, -1) if from_output else range(len(expected))
    for layer in order:
        check_array(_indexed(name, layer, hidden), layers[layer], expected[layer], hidden=hidden, hint=hint,
                    where=where, rtol=rtol, scale=scale)


def check_forward(all_f: Any, all_h: Any, case: dict, *, hidden: bool, where: str) -> None:
    """Check a forward pass in the order it is computed (h_0, f_0, h_1, f_1, ...).

    The first wrong value is the one to fix: later ones are wrong because of it.
    """
    all_f = array_layers("all_f", all_f, case["all_f"], hidden=hidden)
    all_h = array_layers("all_h", all_h, case["all_h"], hidden=hidden)
    for layer, (f, h) in enumerate(zip(case["all_f"], case["all_h"])):
        if layer > 0 and not _same_layers([h], [case["all_f"][layer - 1]]) \
                and _same_layers([all_h[layer]], [case["all_f"][layer - 1]]):
            below = "`all_f` of the layer below" if hidden else f"all_f[{layer - 1}]"
            _fail(f"`{_indexed('all_h', layer, hidden)}` equals {below}: the ReLU is missing ({where}).")
        check_array(_indexed("all_h", layer, hidden), all_h[layer], h, hidden=hidden, where=where, **_tolerance(case),
                    hint="h_0 is the input and h_(k+1) = ReLU(f_k).")
        check_array(_indexed("all_f", layer, hidden), all_f[layer], f, hidden=hidden, where=where, **_tolerance(case),
                    hint="f_k = beta_k + Omega_k h_k, before any ReLU (there is none on the output).",
                    mistakes=[(_relu(np.asarray(f, dtype=float)), RELU_APPLIED)])


def check_output(net_output: Any, case: dict, *, hidden: bool, where: str) -> None:
    """Check a forward pass's output, the last pre-activation f_K."""
    output = np.asarray(case["all_f"][-1], dtype=float)
    without_relu = _forward(*network_inputs(case), activation=lambda f: f)[0][-1]
    check_array("net_output", net_output, output, hidden=hidden, where=where, **_tolerance(case),
                hint="The output is the last pre-activation f_K, with no ReLU.",
                mistakes=[(_relu(output), RELU_APPLIED), (without_relu, NO_RELU)])


def run_forward(compute_network_output: Any, case: dict, *, hidden: bool, where: str) -> tuple:
    """Run the student's forward pass on a stored network; return (net_output, all_f, all_h)."""
    weights, biases, net_input = network_inputs(case)
    result = call_student(compute_network_output, "compute_network_output", net_input, weights, biases,
                          where=where, hidden=hidden)
    return unpack(result, "compute_network_output", FORWARD_RETURNS, hidden)


def check_network_output(compute_network_output: Any, case: dict, *, hidden: bool, where: str = "",
                         layers: bool = True) -> None:
    """The forward pass of a stored network: every layer (unless `layers` is false), then the output."""
    where = where or f"on {case['name']}"

    def check_one(function: Any) -> None:
        net_output, all_f, all_h = run_forward(function, case, hidden=hidden, where=where)
        if layers:
            check_forward(all_f, all_h, case, hidden=hidden, where=where)
        check_output(net_output, case, hidden=hidden, where=where)

    _judged(compute_network_output, "compute_network_output", case, check_one, where)


def _same_layers(value: Any, expected: Sequence[Any]) -> bool:
    """Whether `value` is a list of arrays equal to `expected` within round-off."""
    try:
        return len(value) == len(expected) and all(
            np.shape(a) == np.shape(e) and _close(np.asarray(a, dtype=float), np.asarray(e, dtype=float), RTOL_TABLE)
            for a, e in zip(value, expected))
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# The backward pass


def check_gradients(result: Any, case: dict, *, hidden: bool, where: str) -> None:
    """Check what the student's backward pass returned for a stored network: one of the common
    mistakes whose gradients the case carries (`INDICATOR_MISTAKES`), named, or layer by layer from
    the output."""
    dweights, dbiases = unpack(result, "backward_pass", BACKWARD_RETURNS, hidden)
    if _same_layers(dweights, case["dl_dbiases"]) and _same_layers(dbiases, case["dl_dweights"]):
        _fail("`backward_pass` returns the bias gradients first: return (all_dl_dweights, all_dl_dbiases).")
    for mistake, (mistaken_weights, mistaken_biases) in case.get("mistakes", {}).items():
        if not any(np.any(layer) for layer in mistaken_weights[:-1]):
            continue  # on this network the mistake gives zeros below the output: a chain of zeros looks the same
        if _same_layers(dweights, mistaken_weights) and _same_layers(dbiases, mistaken_biases):
            _fail(f"`backward_pass` {INDICATOR_MISTAKES[mistake]} ({where}).")
    check_layers("all_dl_dweights", dweights, case["dl_dweights"], hidden=hidden, where=where, **_tolerance(case),
                 from_output=True,
                 hint="dl/dOmega_k = dl/df_k h_k^T; below the output, dl/df_(k-1) = I[f_(k-1) > 0] * dl/dh_k.")
    check_layers("all_dl_dbiases", dbiases, case["dl_dbiases"], hidden=hidden, where=where, **_tolerance(case),
                 from_output=True, hint="dl/dbeta_k = dl/df_k.")


def check_backward(backward_pass: Any, case: dict, *, hidden: bool, where: str = "") -> None:
    """Run the student's backward pass on a stored network and check every layer's gradients.

    The inputs include the exact forward pass, so a wrong forward pass costs q2.1 only.
    """
    where = where or f"on {case['name']}"

    def check_one(function: Any) -> None:
        result = call_student(function, "backward_pass", *_backward_inputs(case), where=where, hidden=hidden)
        check_gradients(result, case, hidden=hidden, where=where)

    _judged(backward_pass, "backward_pass", case, check_one, where)


# ---------------------------------------------------------------------------------------------
# Arguments left as they were (hidden cases)


def check_inputs_unchanged(function: Any, name: str, case: dict, arguments: dict[str, Any],
                           check_result: Callable[[Any], None], where: str) -> None:
    """Run the student's function on `arguments`: its result must be right, and it must leave every
    argument as it was. Doing nothing earns nothing here."""

    def check_one(student_function: Any) -> None:
        fresh = {argument: copy.deepcopy(value) for argument, value in arguments.items()}
        before = copy_of(list(fresh.values()))
        check_result(call_student(student_function, name, *fresh.values(), where=where, hidden=True))
        if copy_of(list(fresh.values())) != before:
            _fail(f"`{name}` changed one of its arguments ({', '.join(arguments)}) in place ({where}): work on "
                  "copies (np.array(x)) and never modify the inputs.")

    _judged(function, name, case, check_one, where)


def check_forward_leaves_inputs(compute_network_output: Any, case: dict, *, where: str) -> None:
    weights, biases, net_input = network_inputs(case)

    def right(result: Any) -> None:
        net_output, all_f, all_h = unpack(result, "compute_network_output", FORWARD_RETURNS, hidden=True)
        check_forward(all_f, all_h, case, hidden=True, where=where)
        check_output(net_output, case, hidden=True, where=where)

    check_inputs_unchanged(compute_network_output, "compute_network_output", case,
                           dict(net_input=net_input, all_weights=weights, all_biases=biases), right, where)


def check_backward_leaves_inputs(backward_pass: Any, case: dict, *, where: str) -> None:
    weights, biases, all_f, all_h, y = _backward_inputs(case)
    check_inputs_unchanged(backward_pass, "backward_pass", case,
                           dict(all_weights=weights, all_biases=biases, all_f=all_f, all_h=all_h, y=y),
                           lambda result: check_gradients(result, case, hidden=True, where=where), where)


def copy_of(item: Any) -> Any:
    """A comparable snapshot of an array or a list of arrays (nested lists of floats)."""
    if isinstance(item, list):
        return [copy_of(entry) for entry in item]
    return np.asarray(item).tolist() if isinstance(item, np.ndarray) else repr(item)


# ---------------------------------------------------------------------------------------------
# A random network, new at every check (public cases)


def _forward(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], net_input: np.ndarray,
             activation: Callable[[np.ndarray], np.ndarray] = _relu) -> tuple:
    """The forward pass of the notebook's equations (with another activation than the ReLU, if
    given): (all_f, all_h)."""
    all_f, all_h = [], [net_input]
    for layer, (weight, bias) in enumerate(zip(weights, biases)):
        all_f.append(bias + weight @ all_h[-1])
        if layer < len(weights) - 1:
            all_h.append(activation(all_f[-1]))
    return all_f, all_h


def _loss_differences(weights: list, biases: list, net_input: np.ndarray, target: np.ndarray) -> tuple:
    """Centred differences of the least-squares loss for every weight and bias: (dweights, dbiases)."""

    def loss() -> float:
        return float(np.sum((_forward(weights, biases, net_input)[0][-1] - target) ** 2))

    estimates = []
    for arrays in (weights, biases):
        layers = []
        for values in arrays:
            estimate = np.zeros_like(values)
            for index in np.ndindex(values.shape):
                saved = values[index]
                values[index] = saved + DIFFERENCE_STEP
                up = loss()
                values[index] = saved - DIFFERENCE_STEP
                down = loss()
                values[index] = saved
                estimate[index] = (up - down) / (2 * DIFFERENCE_STEP)
            layers.append(estimate)
        estimates.append(layers)
    return tuple(estimates)


def random_network(like: dict, backward: bool = False, rng: np.random.Generator | None = None) -> dict:
    """A network with the sizes of `like` and values drawn now, from the operating system's entropy:
    no code can know it in advance. Every hidden layer has units on both sides of the ReLU, none
    near its kink, and the output is below zero (so a ReLU on it shows). With `backward`, a target
    and the loss's gradients by centred differences (no kink is within their step) come with it."""
    rng = rng or np.random.default_rng()
    while True:
        weights = [rng.normal(size=np.shape(w)) for w in like["weights"]]
        biases = [rng.normal(size=np.shape(b)) for b in like["biases"]]
        net_input = rng.normal(size=np.shape(like["net_input"]))
        all_f, all_h = _forward(weights, biases, net_input)
        if not all(np.min(np.abs(f)) > KINK_MARGIN and np.max(f) > 0 for f in all_f[:-1]) \
                or np.max(all_f[-1]) > -KINK_MARGIN:
            continue
        network = dict(name="a random network, new at every check", weights=weights, biases=biases,
                       net_input=net_input, all_f=all_f, all_h=all_h)
        if not backward:
            return network
        target = all_f[-1] + rng.choice([-1.0, 1.0], size=all_f[-1].shape) * rng.uniform(1, 3, size=all_f[-1].shape)
        dweights, dbiases = _loss_differences(weights, biases, net_input, target)
        largest = [float(np.max(np.abs(g))) for g in dweights]
        if min(largest) > 1e-3 * max(largest):  # every layer's gradients count, well above round-off
            network.update(y=target, dl_dweights=dweights, dl_dbiases=dbiases, rtol=RTOL_DIFFERENCES,
                           scale=max(largest))
            return network


# ---------------------------------------------------------------------------------------------
# What a check shows in the notebook
#
# Otter shows a failed case as its test runner sees it: the test's file, line and code, then the
# error; and a passing question as "passed!". Otter has no setting for this, so the notebook's
# grader registers IPython display formatters for otter's results: each case shows what it checks,
# its points and, when it fails, its message, and every question says what the hidden checks will
# try when the notebook is graded, and how many points they decide.

# Words of the messages of a value or function that is not there yet (rather than wrong).
UNFINISHED = ("still `...`", "has not been computed yet", "is not defined", "No cell you ran assigns",
              "returns None", "raised NotImplementedError")


@dataclass
class CaseShown:
    """One case of a check, as the notebook shows it."""

    passed: bool
    description: str
    points: float
    message: str  # why it failed ("" if it passed)


def _points(value: float) -> str:
    return f"{value:g} point{'' if value == 1 else 's'}"


def case_message(message: str) -> str:
    """A failed case's message without the test's file, line and code. Otter 7 records it as
    "❌ Test case failed\\nError at line N in test NAME:\\n  CODE\\nTYPE: MESSAGE"."""
    parts = message.split("\n", 3)
    if len(parts) == 4 and parts[1].startswith("Error at line "):
        kind, _, text = parts[3].partition(": ")
        return text if kind == "AssertionError" else f"The check could not run: {parts[3]}"
    return message


def shown_cases(result: Any) -> list[CaseShown]:
    """The cases of an otter check result (a test file that ran), as the notebook shows them."""
    cases = []
    for case_result in result.test_case_results:
        case = case_result.test_case
        description = ((case.body.test_func.__doc__ or "").strip().splitlines() or ["a check"])[0]
        cases.append(CaseShown(case_result.passed, description, case.points,
                               "" if case_result.passed else case_message(case_result.message or "")))
    return cases


def hidden_checks(result: Any) -> list[tuple[str, float]]:
    """What the hidden checks of a question check, and their points, as the build wrote them into
    the student's copy of its test file (HIDDEN_CHECKS); none if the file holds no such list."""
    try:
        tree = ast.parse(open(result.path, encoding="utf-8").read())
    except (OSError, SyntaxError, ValueError):
        return []
    return next((ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                 and [ast.unparse(target) for target in node.targets] == ["HIDDEN_CHECKS"]), [])


def check_lines(result: Any) -> list[tuple[str, str]]:
    """What a check shows, as (kind, text) lines: the head, each case and its message, the hidden checks."""
    cases = shown_cases(result)
    earned, public = sum(c.points for c in cases if c.passed), sum(c.points for c in cases)
    passing = ", which all pass" if all(c.passed for c in cases) else ""
    lines = [("head", f"{result.name}: {earned:g} of {_points(public)} from the public checks{passing}.")]
    for case in cases:
        lines.append(("passed" if case.passed else "failed", f"{_points(case.points)}: {case.description}"))
        if not case.passed:
            lines.append(("message", case.message))
    hidden = hidden_checks(result)
    if hidden:
        lines.append(("note", f"When your notebook is graded, hidden checks try your code on other inputs too, and "
                              f"decide the other {_points(sum(points for _, points in hidden))} of {result.name}:"))
        lines += [("hidden", f"{description} ({_points(points)})") for description, points in hidden]
    return lines


MARKS = {"passed": "✅ ", "failed": "❌ ", "message": "     ", "hidden": "   • ", "head": "", "note": ""}


def check_text(result: Any) -> str:
    """A check's result as plain text."""
    return "\n".join(MARKS[kind] + text for kind, text in check_lines(result))


def _html_text(text: str) -> str:
    """Text as HTML, with `code` in a code font."""
    import html

    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def check_html(result: Any) -> str:
    """A check's result as HTML."""
    styles = {"head": "font-weight: bold", "failed": "color: #b00020", "message": "margin-left: 2.2em",
              "note": "margin-top: 0.4em", "hidden": "margin-left: 1.2em; color: #555"}
    return "<div>" + "".join(f'<div style="{styles.get(kind, "")}">{_html_text(MARKS[kind].strip() + " " + text)}</div>'
                             for kind, text in check_lines(result)) + "</div>"


def show_checks_case_by_case() -> None:
    """Show otter's check results in this notebook case by case (see above)."""
    from IPython import get_ipython
    from otter.test_files.abstract_test import TestFile

    shell = get_ipython()
    if shell is None:
        return
    formatters = shell.display_formatter.formatters
    formatters["text/html"].for_type(TestFile, check_html)
    formatters["text/plain"].for_type(TestFile, lambda result, printer, cycle: printer.text(check_text(result)))


def notebook_grader(tests_dir: str = "tests") -> Any:
    """Otter's grader for this notebook: its checks shown case by case, and `grader.submit()`, the
    notebook's last cell. From now on, the source each cell runs with is kept, for `submit`."""
    import otter

    class Grader(otter.Notebook):
        """Otter's grader, with the notebook's last cell."""

        def submit(self) -> None:
            submit(self)

    show_checks_case_by_case()
    cells_run()
    return Grader(tests_dir=tests_dir)


def unfinished(message: str) -> bool:
    """Whether a failed case's message says that an answer is not there yet (rather than wrong)."""
    return any(words in message for words in UNFINISHED)


@dataclass
class Summary:
    """Every question's public checks before a submission, and the points its hidden checks decide."""

    rows: list[tuple[str, float, float, str, float]]  # question, public points earned, public points,
    # "done", "failing" or "unfinished", and the points its hidden checks decide when it is graded

    @classmethod
    def of(cls, results: Any) -> "Summary":
        """The summary of otter's `grader.check_all()`."""
        rows = []
        for name, result in sorted(results.results.items()):
            cases = shown_cases(result)
            failed = [case.message for case in cases if not case.passed]
            state = "done" if not failed else "unfinished" if any(map(unfinished, failed)) else "failing"
            rows.append((name, sum(c.points for c in cases if c.passed), sum(c.points for c in cases), state,
                         sum(points for _, points in hidden_checks(result))))
        return cls(rows)

    def lines(self) -> list[str]:
        earned, public = sum(row[1] for row in self.rows), sum(row[2] for row in self.rows)
        hidden = sum(row[4] for row in self.rows)
        lines = [f"Public checks: {earned:g} of {_points(public)}."]
        lines += [f"  {name:<6} {got:>3g} of {of:<3g} {state:<10}" + (f" + {_points(later)} decided when graded"
                                                                       if later else "")
                  for name, got, of, state, later in self.rows]
        left = [f"{name} ({state})" for name, _, _, state, _ in self.rows if state != "done"]
        if hidden:
            lines.append(f"When your notebook is graded, hidden checks decide the other {_points(hidden)} "
                         f"(of {public + hidden:g}).")
        lines.append(f"Still to do: {', '.join(left)}. You may submit all the same." if left
                     else "Every public check passes.")
        return lines

    def __repr__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        head, *rows = self.lines()
        table = "".join(f"<tr><td><b>{name}</b></td><td>{got:g} of {of:g}</td><td>{state}</td>"
                        f"<td>{f'+ {_points(later)} decided when graded' if later else ''}</td></tr>"
                        for name, got, of, state, later in self.rows)
        rest = "".join(f"<p>{_html_text(line)}</p>" for line in rows[len(self.rows):])
        return (f"<p><b>{_html_text(head)}</b></p><table><tr><th>question</th><th>public checks</th><th></th>"
                f"<th>hidden checks</th></tr>{table}</table>{rest}")


# ---------------------------------------------------------------------------------------------
# The notebook's last cell: every check, then how to submit
#
# In Colab, the notebook itself is what the student downloads and uploads. Elsewhere, otter's export
# zip of the saved notebook (without otter's log, which grading never reads), offered only when the
# saved file holds the cells as they ran here and, run from the top in a fresh kernel as the grader
# runs it, gets the same results.


@dataclass
class Note:
    """A message of the last cell: plain text, and HTML with `code` in a code font."""

    text: str
    html: str = ""  # instead of the text's own

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return self.html or "".join(f'<p style="white-space: pre-wrap">{_html_text(part)}</p>'
                                    for part in self.text.split("\n\n"))


def cells_run() -> dict[str, tuple[str, float]]:
    """{cell id: (the source it last ran with, when)} from the first call on (JupyterLab and Notebook
    7 send the cell's id). It is kept on IPython's shell, so that it outlives a reload of this module."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return {}
    if not hasattr(shell, "backprop_cells_run"):
        shell.backprop_cells_run = {}

        def remember(info: Any) -> None:
            if getattr(info, "cell_id", None):
                shell.backprop_cells_run[info.cell_id] = (info.raw_cell, time.time())

        shell.events.register("pre_run_cell", remember)
    return shell.backprop_cells_run


def changed_since_run(notebook: str) -> tuple[list[str], list[str]]:
    """The saved code cells whose source is not the one they last ran with, by their first line:
    (those changed and saved after they ran, to run again; those that ran after the last save, to save)."""
    import nbformat

    ran, saved = cells_run(), os.path.getmtime(notebook)
    run_again, save = [], []
    for cell in nbformat.read(notebook, as_version=4).cells:
        source, when = ran.get(cell.get("id"), (cell.source, 0.0))
        if cell.cell_type == "code" and source != cell.source:
            shown = cell.source if when < saved else source  # as the student's editor shows it
            (run_again if when < saved else save).append((shown.strip().splitlines() or ["(an empty cell)"])[0])
    return run_again, save


def grade_saved(submission: str, notebook: str) -> Any:
    """The checks' results on the zip, run in a fresh kernel. Otter passes on what that kernel's
    process wrote to stderr as a RuntimeWarning: its log and teardown noise ("Kernel is running over
    TCP without encryption ..."), never the student's warnings, which show in their own cells. That
    warning is dropped, and so is what the run prints; any other warning is shown."""
    import warnings

    from otter.check.utils import grade_zip_file

    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("always")
        results = grade_zip_file(submission, notebook, "tests")
    for warning in caught:
        if not (warning.category is RuntimeWarning and warning.filename == grade_zip_file.__code__.co_filename):
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    return results


def submit(grader: Any) -> None:
    """The notebook's last cell: run every check and sum them up, then say how to submit (see above)."""
    import glob

    from IPython import get_ipython
    from IPython.display import display

    progress = display(Note("Running every check ..."), display_id=True)
    shell = get_ipython()  # otter runs the checks in the global namespace of the code that calls check_all
    checks = eval("grader.check_all()", shell.user_ns if shell else {}, {"grader": grader})
    if checks is None:  # grading runs this cell only if an editor dropped its tag: there checks do nothing
        return
    progress.update(Summary.of(checks))
    try:
        import google.colab  # noqa: F401  (importable only in Colab)
    except ImportError:
        notebooks = glob.glob("*.ipynb")  # otter's export finds the notebook so
    else:
        display(Note("To submit: File > Download > Download .ipynb, then upload that .ipynb file to Gradescope."))
        return
    if len(notebooks) != 1:
        display(Note(f"Not submitted: this folder holds {len(notebooks)} notebooks, and the zip is made from the one "
                     "notebook in its folder. Move this notebook into a folder of its own and run it there."))
        return
    status = display(Note("Checking the saved notebook ..."), display_id=True)
    status.update(submission_of(grader, checks, notebooks[0], status.update))


def submission_of(grader: Any, checks: Any, notebook: str, progress: Callable[[Note], None]) -> Note:
    """Export the saved notebook, and offer the zip if it holds what ran and gets the same results;
    else say why not and what to do. `progress` shows what it is doing meanwhile."""
    import datetime
    import html
    import urllib.parse

    run_again, save = changed_since_run(notebook)
    if run_again:
        return Note("Not submitted: the saved notebook is not what you ran. These cells were changed after they "
                    "last ran:\n" + "\n".join("    " + line for line in run_again) + "\nRun them again (and the "
                    "checks after them), save the notebook (File > Save, or Ctrl+S), then run this cell.")
    if save:
        return Note("Not submitted: the saved notebook is not what you ran. These cells ran with code that is not "
                    "saved yet:\n" + "\n".join("    " + line for line in save) + "\nSave the notebook (File > Save, "
                    "or Ctrl+S), then run this cell again.")
    progress(Note("Running the saved notebook from the top in a fresh kernel, as the grader will (a few seconds) ..."))
    submission = f"{notebook[:-len('.ipynb')]}_{datetime.datetime.now():%Y_%m_%dT%H_%M_%S_%f}.zip"
    grader.export(notebook, export_path=submission, pdf=False, display_link=False, ignore_log=True)
    saved = grade_saved(submission, notebook)
    differ = [name for name, result in checks.results.items()
              if name not in saved.results or saved.results[name].score != result.score]
    if differ:
        os.remove(submission)
        return Note(f"Not submitted: run from the top in a fresh kernel, as the grader runs it, the saved notebook "
                    f"gets other results ({', '.join(differ)}):\n\n{saved.summary()}\n\nSave the notebook (File > "
                    "Save, or Ctrl+S), then Kernel > Restart Kernel and Run All Cells.")
    done = ("The saved notebook, run from the top in a fresh kernel, gets the results above. To submit: upload the "
            "zip file this cell wrote to Gradescope.")
    link = (f'<p>Your zip file is ready: click <a href="{html.escape(urllib.parse.quote(submission))}" '
            f'download="{html.escape(submission)}" target="_blank">here</a> to download it.</p>')
    return Note(f"Your zip file is ready: {submission}\n{done}", html=f"{link}<p>{_html_text(done)}</p>")
