"""Hidden values, which no file holds: the hidden cases draw them at grading time (see
assignment/backprop_reference.py). Here: what the hidden cases' code holds, the numbers a hidden
message shows, and, for tests that grade in this very process, a record of every value drawn."""

import ast
import contextlib
import re
import zipfile
from collections.abc import Iterator

import numpy as np

import backprop_reference
from backprop_hw.autograder.feedback import FAILED, MESSAGE_INDENT
from backprop_hw.paths import AUTOGRADER_ZIP

# A printed number with fewer significant digits than this says too little to count as a leak.
MIN_DIGITS = 4
NUMBER = re.compile(r"\d+\.\d+(?:[eE][-+]?\d+)?")


def zip_test_sources() -> list[str]:
    with zipfile.ZipFile(AUTOGRADER_ZIP) as archive:
        return [archive.read(name).decode() for name in archive.namelist() if re.fullmatch(r"tests/q[\d.]+\.py", name)]


def hidden_case_floats() -> set[float]:
    """The float literals in the code of the hidden cases of the graded zip."""
    found = set()
    for source in zip_test_sources():
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef) and "hidden=True" in ast.unparse(node.decorator_list[0]):
                found |= {c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, float)}
    return found


def _significant_digits(number: str) -> int:
    return len(re.split(r"[eE]", number)[0].replace(".", "").lstrip("0"))


def long_numbers(text: str) -> list[str]:
    """The numbers printed in `text` with MIN_DIGITS significant digits or more."""
    return [number for number in NUMBER.findall(text) if _significant_digits(number) >= MIN_DIGITS]


def failure_messages(shown: str, header: str = FAILED) -> list[str]:
    """The messages of the failed cases in what a student sees of a question, of those whose line
    starts with `header` ("❌" for all, "❌ check (" for the public ones): the lines under each, joined."""
    messages: list[list[str]] = []
    current = None
    for line in shown.splitlines():
        if current is not None and line.startswith(MESSAGE_INDENT):
            current.append(line.strip())
        else:
            current = [] if line.startswith(header) else None
            messages += [] if current is None else [current]
    return [" ".join(message) for message in messages]


def hidden_messages(visible: str) -> str:
    """The messages of the failed hidden cases in what a student sees, a line each."""
    return "\n".join(failure_messages(visible, f"{FAILED} hidden check"))


def _half_step(number: str) -> float:
    """Half a unit in the last digit of a printed number: how far the value it stands for may be."""
    mantissa, _, exponent = number.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (int(exponent or 0) - decimals) * (1 + 1e-9)


def leaked_numbers(text: str, secret: np.ndarray) -> list[str]:
    """The numbers printed in `text` that equal one of `secret` (sorted absolute values) to the
    precision they are printed with."""
    leaks = []
    for number in long_numbers(text):
        value, half_step = float(number), _half_step(number)
        first = np.searchsorted(secret, value - half_step)
        if first < len(secret) and secret[first] <= value + half_step:
            leaks.append(number)
    return leaks


def _floats(value: object) -> Iterator[float]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _floats(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _floats(item)
    elif isinstance(value, (float, int, np.floating)) and not isinstance(value, bool):
        yield float(value)


@contextlib.contextmanager
def recorded_draws() -> Iterator[list]:
    """Within the block, what the hidden cases draw in this process (a toy point's values or a
    network's case, inputs and the results expected), as a list that grows."""
    drawn: list = []
    names = ("hidden_toy_points", "hidden_networks", "hidden_kink_network")
    originals = {name: getattr(backprop_reference, name) for name in names}

    def recording(function):
        def record(*args, **kwargs):
            value = function(*args, **kwargs)
            drawn.extend(value if isinstance(value, list) else [value])
            return value
        return record

    for name, function in originals.items():
        setattr(backprop_reference, name, recording(function))
    try:
        yield drawn
    finally:
        for name, function in originals.items():
            setattr(backprop_reference, name, function)


def secret_of(drawn: list) -> np.ndarray:
    """The values of `recorded_draws` worth looking for in text: sorted absolute values with
    MIN_DIGITS significant digits or more."""
    return np.array(sorted({abs(value) for value in _floats(drawn) if _significant_digits(repr(abs(value))) >= MIN_DIGITS}))
