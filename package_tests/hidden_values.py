"""The numbers only hidden test cases hold, and searches for them in text a student may see."""

import ast
import re
import zipfile

import numpy as np

from backprop_hw.paths import AUTOGRADER_ZIP

# A printed number with fewer significant digits than this says too little to count as a leak.
MIN_DIGITS = 4
NUMBER = re.compile(r"\d+\.\d+(?:[eE][-+]?\d+)?")


def _test_sources() -> list[str]:
    with zipfile.ZipFile(AUTOGRADER_ZIP) as archive:
        return [archive.read(name).decode() for name in archive.namelist() if re.fullmatch(r"tests/q[\d.]+\.py", name)]


def _case_floats(source: str, hidden: bool) -> set[float]:
    """The float literals of the public or the hidden cases of a test file."""
    found = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.decorator_list:
            if ("hidden=True" in ast.unparse(node.decorator_list[0])) == hidden:
                found |= {c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, float)}
    return found


def hidden_networks(question: str) -> list[dict]:
    """The networks of the hidden cases of a question, as its test file holds them."""
    [source] = [s for s in _test_sources() if f"name = '{question}'" in s or f'name = "{question}"' in s]
    networks = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and "hidden=True" in ast.unparse(node.decorator_list[0]):
            for literal in (n for n in ast.walk(node) if isinstance(n, (ast.Dict, ast.List))):
                try:
                    value = ast.literal_eval(literal)
                except ValueError:
                    continue
                for case in value if isinstance(value, list) else [value]:
                    if isinstance(case, dict) and "weights" in case:
                        networks.append(case)
    return networks


def hidden_literals() -> set[str]:
    """The long float literals of the hidden cases, as they are written in the test files."""
    return {repr(value) for source in _test_sources() for value in _case_floats(source, hidden=True)
            if len(repr(abs(value))) > 8}


def _significant_digits(number: str) -> int:
    return len(re.split(r"[eE]", number)[0].replace(".", "").lstrip("0"))


def _half_step(number: str) -> float:
    """Half a unit in the last digit of a printed number: how far the value it stands for may be."""
    mantissa, _, exponent = number.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (int(exponent or 0) - decimals) * (1 + 1e-9)


def hidden_numbers() -> np.ndarray:
    """Sorted absolute values that appear in hidden cases of the graded zip and nowhere public.

    Public numbers are those of the public cases, to the digits they are written with: a hidden
    value they stand for counts as public.
    """
    sources = _test_sources()
    hidden = {abs(v) for source in sources for v in _case_floats(source, hidden=True)}
    public = {abs(v) for source in sources for v in _case_floats(source, hidden=False)}
    centres = np.array(sorted(public))
    half_steps = np.array([_half_step(repr(value)) for value in sorted(public)])
    secret = [value for value in hidden if _significant_digits(repr(value)) >= MIN_DIGITS
              and not np.any(np.abs(centres - value) <= half_steps)]
    return np.array(sorted(secret))


def leaked_numbers(text: str, secret: np.ndarray) -> list[str]:
    """The numbers printed in `text` that equal a hidden number to the precision they are printed with."""
    leaks = []
    for number in NUMBER.findall(text):
        if _significant_digits(number) < MIN_DIGITS:
            continue
        value, half_step = float(number), _half_step(number)
        first = np.searchsorted(secret, value - half_step)
        if first < len(secret) and secret[first] <= value + half_step:
            leaks.append(number)
    return leaks
