"""Attacks on the grader, each beside its honest twin (the same answers without the attack).

The twin answers q1.1, q1.2 and q2.1 correctly, leaves q1.3 blank and gets q2.2 wrong, so an
attack has points to steal. An attack fails when it earns no more than its twin and the text a
student sees holds no hidden test source and no reference value.
"""

import json
import pickle
import zipfile
from pathlib import Path

import nbformat

from conftest import ROOT

WRONG_BACKWARD_PASS = '''
def backward_pass(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights, all_dl_dbiases = [None] * (K + 1), [None] * (K + 1)
    dl_df = 2 * (all_f[K] - y)
    for layer in range(K, -1, -1):
        all_dl_dbiases[layer] = dl_df
        all_dl_dweights[layer] = dl_df @ all_h[layer].T
        dl_df = all_weights[layer].T @ dl_df  # the ReLU's derivative is missing
    return all_dl_dweights, all_dl_dbiases
'''

BLANK_PARAMETERS = "\n".join(f"dld{kind}{k} = ..." for k in range(3, -1, -1) for kind in ("beta", "omega"))

ATTACKS = {
    "replace otter's test runner": ("start", '''
import otter.test_files.exception_test as exception_test
from otter.test_files.abstract_test import TestCaseResult

def run_everything_passes(self, global_environment):
    self.test_case_results = [TestCaseResult(test_case=tc, message="passed", passed=True) for tc in self.test_cases]

exception_test.ExceptionTestFile.run = run_everything_passes
'''),
    "objects whose == is always true": ("end", '''
class Anything(float):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __array__(self, dtype=None, copy=None):
        import numpy
        return numpy.array(7.0)
    __hash__ = float.__hash__

dldbeta0 = dldbeta1 = dldbeta2 = dldbeta3 = Anything(0.0)
dldomega0 = dldomega1 = dldomega2 = dldomega3 = Anything(0.0)
'''),
    "patched numpy and math comparisons": ("start", '''
import math
import numpy as np
np.allclose = lambda *args, **kwargs: True
np.isclose = lambda a, b, *args, **kwargs: np.ones(np.broadcast(a, b).shape, dtype=bool)
np.array_equal = lambda *args, **kwargs: True
math.isclose = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
'''),
    "write results.json, then kill the grader": ("end", '''
import json, os, glob
perfect = {"score": 22, "tests": [{"name": q, "score": p, "max_score": p} for q, p in
           [("q1.1", 4), ("q1.2", 4), ("q1.3", 4), ("q2.1", 4), ("q2.2", 6)]]}
for path in ["/autograder/results/results.json", "results.json", "../results/results.json"] + glob.glob("/tmp/*/results.json"):
    try:
        with open(path, "w") as handle:
            json.dump(perfect, handle)
    except OSError:
        pass
os._exit(0)
'''),
    "forge answers on the grading pipe": ("end", '''
import os, json
for descriptor in range(0, 64):
    try:
        os.write(descriptor, (json.dumps({"done": True, "status": "completed", "score": 22}) + "\\n").encode())
    except OSError:
        pass
'''),
    "read the hidden tests and show them": ("end", '''
import glob
stolen = ""
for pattern in ["tests/*.py", "../tests/*.py", "/autograder/source/tests/*.py", "/autograder/**/*.py", "/tmp/**/q2.2.py"]:
    for path in glob.glob(pattern, recursive=True):
        try:
            stolen += open(path).read()
        except OSError:
            pass
print(stolen)

def compute_network_output(net_input, all_weights, all_biases):
    raise RuntimeError(stolen[-400:] or "nothing to steal")
'''),
}


def _notebook() -> nbformat.NotebookNode:
    """The honest twin's notebook."""
    notebook = nbformat.read(ROOT / "solutions" / "backpropagation.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.source.startswith("dldbeta3 ="):
            cell.source = BLANK_PARAMETERS
        elif cell.cell_type == "code" and cell.source.startswith("def backward_pass("):
            cell.source = WRONG_BACKWARD_PASS
        if cell.cell_type == "code":
            cell.outputs = []
    return notebook


def write_twin(folder: Path) -> Path:
    path = folder / "backpropagation.ipynb"
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(_notebook(), path)
    return path


def write_attack(name: str, folder: Path) -> Path:
    """The twin with the attack's cell placed where it does its work."""
    where, source = ATTACKS[name]
    notebook = _notebook()
    cell = nbformat.v4.new_code_cell(source)
    if where == "start":
        notebook.cells.insert(1, cell)
    else:
        last_check = max(i for i, c in enumerate(notebook.cells) if 'grader.check("q2.2")' in c.source)
        notebook.cells.insert(last_check + 1, cell)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "backpropagation.ipynb"
    nbformat.write(notebook, path)
    return path


class _Payload:
    """Unpickling this runs code in whichever process loads it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('unpickled')",))


def write_otter_log_zip(folder: Path, marker: Path) -> Path:
    """An export zip: the twin's notebook plus a crafted `.OTTER_LOG` pickle."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "backpropagation.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("backpropagation.ipynb", json.dumps(_notebook()))
        archive.writestr(".OTTER_LOG", pickle.dumps(_Payload(marker)))
    return path
