"""The numbers only hidden test cases hold, and a search for them in text a student may see."""

import ast
import importlib.util
import re
import zipfile

import numpy as np

from conftest import AUTOGRADER_ZIP, ROOT

# A printed number with fewer significant digits than this says too little to count as a leak.
MIN_DIGITS = 4
# The notebook's table of the toy model shows 6 places.
TABLE_HALF_STEP = 5e-7
NUMBER = re.compile(r"\d+\.\d+(?:[eE][-+]?\d+)?")


def _case_floats(source: str, hidden: bool) -> set[float]:
    """Absolute values of the float literals in the public or the hidden cases of a test file."""
    found = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.decorator_list:
            is_hidden = "hidden=True" in ast.unparse(node.decorator_list[0])
            if is_hidden == hidden:
                found |= {abs(c.value) for c in ast.walk(node) if isinstance(c, ast.Constant)
                          and isinstance(c.value, float)}
    return found


def _toy_table() -> dict[str, float]:
    spec = importlib.util.spec_from_file_location("backprop_checks", ROOT / "assignment" / "backprop_checks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TOY_TABLE


def _significant_digits(number: str) -> int:
    return len(re.split(r"[eE]", number)[0].replace(".", "").lstrip("0"))


def _half_step(number: str) -> float:
    """Half a unit in the last digit of a printed number: how far the value it stands for may be."""
    mantissa, _, exponent = number.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (int(exponent or 0) - decimals) * (1 + 1e-9)


def hidden_numbers() -> np.ndarray:
    """Sorted absolute values that appear in hidden cases of the graded zip and nowhere public.

    Public numbers are those of the public cases (to the digits they are written with) and the
    table the notebook shows (to 6 places); a hidden value they stand for counts as public.
    """
    with zipfile.ZipFile(AUTOGRADER_ZIP) as archive:
        sources = [archive.read(name).decode() for name in archive.namelist()
                   if re.fullmatch(r"tests/q[\d.]+\.py", name)]
    hidden = set().union(*(_case_floats(source, hidden=True) for source in sources))
    public = set().union(*(_case_floats(source, hidden=False) for source in sources))
    table = [abs(value) for value in _toy_table().values()]
    centres = np.array([*public, *table])
    half_steps = np.array([*(_half_step(repr(value)) for value in public), *[TABLE_HALF_STEP] * len(table)])
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
