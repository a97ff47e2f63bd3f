"""What a submission is, read without trusting it: its one notebook, its code cells and its checks;
and how a folder that a student filled is removed.

Everything here reads files that a student made, as the grading process, before any student code
runs: links are refused (never followed), folders are walked without recursion and to a bounded
depth, archives are measured from their index before anything is extracted, and the notebook is
parsed as JSON only. What operating systems and editors add to folders and archives (`__MACOSX/`,
`.DS_Store`, ...) is ignored. Nothing but the notebook is ever loaded: a pickle is only read as
opcodes, to tell otter's own log from one made to run code.
"""

import ast
import builtins
import hashlib
import io
import os
import pickletools
import re
import stat
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

MAX_FILES = 1000  # files and folders in a submission folder
MAX_BYTES = 256 << 20  # bytes of a submission folder, and of everything an archive in it would unpack to
MAX_ARCHIVE_MEMBERS = 1000  # files and folders in an archive
MAX_DEPTH = 32  # names in a path inside a submission: folders within folders
MAX_PATH_BYTES = 1024  # a path inside a submission, so that every path made from it stays far below PATH_MAX
MAX_NOTEBOOK_BYTES = 32 << 20
# Of all a submission's pickles together, read as opcodes at about a second a MB: otter's log grows
# by about 6 KB a check.
MAX_PICKLE_BYTES = 4 << 20
IGNORE_TAG = "otter_ignore"  # cells otter's grading skips (the notebook's own set-up and submission cells)
# Lines that install packages: grading runs `pass` instead.
PIP_LINE = re.compile(r"^([ \t]*)[%!]pip\b.*$", re.M)
PICKLES = (".OTTER_LOG", ".pkl", ".pickle")
# What operating systems and editors put into folders and archives, never a student's work: no
# notebook, zip or pickle among them counts.
JUNK_NAMES = {"__MACOSX", ".DS_Store", ".ipynb_checkpoints", "Thumbs.db", "desktop.ini", ".Spotlight-V100",
              ".fseventsd", ".TemporaryItems", "$RECYCLE.BIN", "System Volume Information"}
JUNK_PREFIXES = ("._", ".~", ".Trash")  # macOS's AppleDouble files, Jupyter's copies while it saves, trash folders
# The compression methods Python's zip reader can undo (not Deflate64, method 9, nor the rarer ones).
READABLE_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


# A file of a submission: a file in its folder, or a member of a zip there.
Found = Path | tuple[Path, zipfile.ZipInfo]


class SubmissionProblem(Exception):
    """The submission cannot be graded; the message says why, for the student."""


@dataclass(frozen=True)
class Cell:
    """One code cell as grading runs it."""

    source: str  # with the statements that drive otter's checks, and the pip lines, replaced by `pass`
    checks: tuple[str, ...]  # the questions whose `grader.check("...")` this cell really calls
    digest: str = field(default="", compare=False)  # of the cell as written (see `code_digest`)


def find_notebook(submission: Path, scratch: Path) -> tuple[Path, list[str]]:
    """The one notebook of a submission folder (uploaded as is, or inside an export zip), and flags.

    What operating systems and editors add is ignored. A notebook inside a zip is copied into
    `scratch` under a name of ours. Pickles (otter's log among them) are flagged only when loading
    them would import more than otter's log does.
    """
    kept, ignored = [], []
    for path in regular_files(submission):
        relative = path.relative_to(submission)
        if is_junk(relative.parts):
            ignored.append(relative)
        else:
            kept.append(path)
    notebooks: list[Found] = [path for path in kept if path.suffix == ".ipynb"]
    pickles: list[Found] = [path for path in kept if is_pickle(path.name)]
    for archive in (path for path in kept if path.suffix == ".zip"):
        for member in archive_members(archive):
            parts = member_parts(member)
            if is_junk(parts):
                ignored.append(Path(*parts))
            elif member.filename.endswith(".ipynb"):
                notebooks.append((archive, member))
            elif is_pickle(parts[-1]):
                pickles.append((archive, member))
    if not notebooks:
        junk = [shown(str(path)) for path in ignored if path.suffix == ".ipynb"]
        raise SubmissionProblem("no .ipynb notebook in the submission" + (
            f" ({junk[0]} was ignored: operating systems and editors make such files)" if junk else ""))
    if len(notebooks) > 1:
        raise SubmissionProblem(f"{len(notebooks)} .ipynb notebooks in the submission; submit exactly one")
    flags = pickle_flags(pickles)
    [found] = notebooks
    if isinstance(found, Path):
        if found.stat().st_size > MAX_NOTEBOOK_BYTES:
            raise SubmissionProblem(f"the notebook is larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
        return found, flags
    target = scratch / "notebook-from-zip.ipynb"
    target.write_bytes(read(found, MAX_NOTEBOOK_BYTES))
    return target, flags


def is_junk(parts: Sequence[str]) -> bool:
    """Whether a path inside a submission (its names) is something an operating system or editor made."""
    return any(name in JUNK_NAMES or name.startswith(JUNK_PREFIXES) for name in parts)


def member_parts(member: zipfile.ZipInfo) -> list[str]:
    """The names in a zip member's path (zips made on Windows may separate them with backslashes)."""
    return [name for name in re.split(r"[/\\]", member.filename) if name] or [""]


def regular_files(folder: Path) -> list[Path]:
    """Every file under `folder`, in a walk without recursion, refusing links, special files, paths
    nested too deep or too long, and folders over the size limits (its folders count among MAX_FILES)."""
    found, pending, entries, total = [], [folder], 0, 0
    while pending:
        for path, info in _listing(pending.pop(), folder):
            relative = path.relative_to(folder)
            refuse_deep_or_long(relative.parts, "the submission")
            if stat.S_ISLNK(info.st_mode):
                raise SubmissionProblem(f"the submission contains a symbolic link ({shown(str(relative))}), "
                                        "which is never followed; submit the notebook itself")
            if stat.S_ISDIR(info.st_mode):
                pending.append(path)
            elif stat.S_ISREG(info.st_mode):
                found.append(path)
                total += info.st_size
            else:
                raise SubmissionProblem(f"the submission contains a special file ({shown(str(relative))})")
            entries += 1
            if entries > MAX_FILES or total > MAX_BYTES:
                raise SubmissionProblem(f"the submission is too large (over {MAX_FILES} files and folders or "
                                        f"{MAX_BYTES >> 20} MB)")
    return found


def _listing(directory: Path, top: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """The entries of one folder of a submission, by name, with their own status (at most one more
    than MAX_FILES: enough to know it is over); a folder that cannot be read is the submission's problem."""
    try:
        with os.scandir(directory) as entries:
            names = sorted(entry.name for _, entry in zip(range(MAX_FILES + 1), entries))
        for name in names:
            yield directory / name, os.lstat(directory / name)
    except OSError as error:
        where = shown(str(directory.relative_to(top)))
        raise SubmissionProblem(f"a folder of the submission cannot be read ({where}: {error.strerror})") from None


def refuse_deep_or_long(parts: Sequence[str], where: str) -> None:
    """Refuse a path inside a submission nested more than MAX_DEPTH deep or longer than MAX_PATH_BYTES."""
    path = "/".join(parts)
    if len(parts) > MAX_DEPTH:
        raise SubmissionProblem(f"{where} has folders nested more than {MAX_DEPTH} deep ({shown(path)}...)")
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        raise SubmissionProblem(f"{where} has a path longer than {MAX_PATH_BYTES} bytes ({shown(path)}...)")


def archive_members(archive: Path) -> list[zipfile.ZipInfo]:
    """The files of a zip, from its index alone, within the limits (nothing is extracted here)."""
    name = shown(archive.name)
    try:
        with zipfile.ZipFile(archive) as opened:
            entries = opened.infolist()
    except Exception:  # whatever a damaged index makes the reader raise
        raise SubmissionProblem(f"{name} is not a readable zip file") from None
    for info in entries:
        refuse_deep_or_long(member_parts(info), name)
    members = [info for info in entries if not info.is_dir()]
    if len(entries) > MAX_ARCHIVE_MEMBERS or sum(info.file_size for info in members) > MAX_BYTES:
        raise SubmissionProblem(f"{name} is too large to grade (over {MAX_ARCHIVE_MEMBERS} files and folders or "
                                f"{MAX_BYTES >> 20} MB unpacked)")
    for info in members:
        if stat.S_ISLNK(info.external_attr >> 16):
            raise SubmissionProblem(f"{name} contains a symbolic link ({shown(info.filename)}), "
                                    "which is never followed")
        if info.filename.endswith(".ipynb") and info.file_size > MAX_NOTEBOOK_BYTES:
            raise SubmissionProblem(f"the notebook in {name} is larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
    return members


def read(found: Found, limit: int) -> bytes:
    """Up to `limit` bytes of a submission's file or zip member (decompressed, and checked against its
    CRC-32 when read whole); one that cannot be read is the submission's problem, with the reason."""
    if isinstance(found, Path):
        try:
            with found.open("rb") as handle:
                return handle.read(limit)
        except OSError as error:
            raise SubmissionProblem(f"{shown(found.name)} cannot be read ({error.strerror})") from None
    archive, member = found
    where = f"{shown(member.filename)} in {shown(archive.name)}"
    if member.flag_bits & 0x1:
        raise SubmissionProblem(f"{where} is encrypted; zip it again without a password")
    if member.compress_type not in READABLE_METHODS:
        method = "Deflate64" if member.compress_type == 9 else f"method {member.compress_type}"
        raise SubmissionProblem(f"{where} is compressed with {method}, which cannot be read here; "
                                "zip it again with the usual Deflate")
    try:
        with zipfile.ZipFile(archive) as opened, opened.open(member) as source:
            return source.read(limit)
    except Exception as error:  # whatever damaged data makes the reader raise: a bad CRC-32, a truncated stream
        raise SubmissionProblem(f"{where} is damaged ({type(error).__name__}); make the zip again") from None


# ---------------------------------------------------------------------------------------------
# Pickles, read as opcodes and never loaded


def pickle_flags(pickles: list[Found]) -> list[str]:
    """A flag for each pickle that is more than otter's log or plain data (none is ever loaded)."""
    if sum(size(pickle) for pickle in pickles) > MAX_PICKLE_BYTES:
        problems = [f"makes the submission's pickles larger than {MAX_PICKLE_BYTES >> 20} MB"] * len(pickles)
    else:
        problems = [pickle_problem(read(pickle, MAX_PICKLE_BYTES)) for pickle in pickles]
    return [f"submission contains {shown(name_of(pickle))}, a pickle that {problem}; it was ignored "
            "(pickles are never loaded)" for pickle, problem in zip(pickles, problems) if problem]


def is_pickle(name: str) -> bool:
    return name == PICKLES[0] or name.endswith(PICKLES[1:])


def name_of(found: Found) -> str:
    return found.name if isinstance(found, Path) else found[1].filename


def size(found: Found) -> int:
    """The size of a submission's file, or of a zip member unpacked (as its index says: reading never gives more)."""
    return found.stat().st_size if isinstance(found, Path) else found[1].file_size


# What loading otter's own log (.OTTER_LOG, which its export puts into the zip) imports: the log's
# entries, the checks' results and the time of each; an error a check raised comes through dill.
OTTER_LOG_IMPORTS = {("otter.check.logs", "LogEntry"), ("otter.check.logs", "EventType"),
                     ("otter.test_files", "GradingResults"), ("otter.test_files.abstract_test", "TestCase"),
                     ("otter.test_files.abstract_test", "TestCaseResult"),
                     ("otter.test_files.exception_test", "ExceptionTestFile"),
                     ("otter.test_files.exception_test", "test_case"),
                     ("datetime", "datetime"), ("datetime", "timezone"), ("datetime", "timedelta")}
DILL_LOAD_TYPE = ("dill._dill", "_load_type")  # allowed to make a built-in exception, nothing else
STRING_OPCODES = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}
TUPLE_OPCODES = {"EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3"}
MAX_PICKLE_ITEMS = 100_000  # on one pickle's stack, or in its memo: otter's log holds hundreds


def pickle_problem(data: bytes) -> str | None:
    """Why a pickle (or pickles one after another, as otter appends its log) is more than otter's log
    or plain data: what loading it would import, or that it is no pickle; None if it is not. It is
    read as opcodes on a stack followed symbolically: nothing is loaded, nothing runs."""
    stream = io.BytesIO(data)
    try:
        while stream.tell() < len(data):
            foreign = _foreign_import(pickletools.genops(stream))
            if foreign:
                return f"would import {shown(foreign)} if loaded"
    except Exception:  # whatever malformed opcodes make the reader (or the stack below) raise
        return "is not a readable pickle"
    return None


def _foreign_import(opcodes: Iterator[tuple[pickletools.OpcodeInfo, Any, Any]]) -> str | None:
    """The first import of one pickle beyond otter's log, or None. On the stack, strings, imports and
    tuples of them are known and anything else is None; a malformed pickle raises."""
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[Any, Any] = {}
    for opcode, argument, _ in opcodes:
        if opcode.name == "MARK":
            marks.append(len(stack))
            if len(marks) > MAX_PICKLE_ITEMS:
                raise ValueError("the pickle is larger than otter's log")
            continue
        if opcode.name in ("MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"):
            memo[len(memo) if opcode.name == "MEMOIZE" else argument] = stack[-1]
            if len(memo) > MAX_PICKLE_ITEMS:
                raise ValueError("the pickle is larger than otter's log")
            continue
        wanted = opcode.stack_before
        start = (marks.pop() - wanted.index(pickletools.markobject) if pickletools.markobject in wanted
                 else len(stack) - len(wanted))
        if start < 0:
            raise ValueError("the pickle takes more than its stack holds")
        taken, stack[start:] = stack[start:], []
        value = None
        if opcode.name in ("GLOBAL", "STACK_GLOBAL", "INST"):
            value = tuple(taken) if opcode.name == "STACK_GLOBAL" else tuple(argument.split(" ", 1))
            if not _otter_log_import(value):
                return ".".join(value) if all(isinstance(part, str) for part in value) else "a name it computes"
        elif opcode.name.startswith("EXT"):
            return f"extension {argument} of copyreg"
        elif opcode.name == "REDUCE" and taken[0] == DILL_LOAD_TYPE:
            if not (isinstance(taken[1], tuple) and len(taken[1]) == 1 and _is_exception(taken[1][0])):
                return f"dill._dill._load_type{taken[1]!r}"
        elif DILL_LOAD_TYPE in taken:
            return "dill._dill._load_type, to call it"
        elif opcode.name in STRING_OPCODES:
            value = argument
        elif opcode.name in ("GET", "BINGET", "LONG_BINGET"):
            value = memo[argument]
        elif opcode.name in TUPLE_OPCODES:
            value = tuple(taken)
        stack += [None if opcode.name == "INST" else value] * len(opcode.stack_after)
        if len(stack) > MAX_PICKLE_ITEMS:
            raise ValueError("the pickle is larger than otter's log")
    return None


def _otter_log_import(imported: tuple) -> bool:
    return (imported in OTTER_LOG_IMPORTS or imported == DILL_LOAD_TYPE
            or (len(imported) == 2 and imported[0] == "builtins" and _is_exception(imported[1])))


def _is_exception(name: Any) -> bool:
    """Whether `name` names a built-in exception (looked up among Python's own, never imported)."""
    found = getattr(builtins, name, None) if isinstance(name, str) else None
    return isinstance(found, type) and issubclass(found, BaseException)


def read_notebook(path: Path, assignment_name: str | None) -> nbformat.NotebookNode:
    """The notebook, parsed as JSON only, checked (as otter does) to be for this assignment."""
    try:
        notebook = nbformat.read(path, as_version=4)
        name = notebook.metadata.get("otter", {}).get("assignment_name")
    except Exception as error:  # whatever a broken file raises, it is the submission's problem
        raise SubmissionProblem(f"the notebook cannot be read ({type(error).__name__}): is it empty or corrupt?")
    if assignment_name and name != assignment_name:
        raise SubmissionProblem(f"this notebook is for assignment '{shown(str(name), 60)}', "
                                f"not '{assignment_name}'")
    return notebook


UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    """Text of the student's as it may be shown and saved: control characters (terminal escapes)
    and lone surrogates (which no UTF-8 file can hold) become U+FFFD."""
    return UNPRINTABLE.sub("\ufffd", text)


def shown(name: str, length: int = 100) -> str:
    """A name or path of the student's as a message shows it: on one line, printable, at most `length` characters."""
    return CONTROL.sub("\ufffd", name)[:length]


def code_cells(notebook: nbformat.NotebookNode) -> list[Cell]:
    """The code cells grading runs, in order (cells tagged `otter_ignore` are skipped, as otter does).

    Whatever shape a cell's metadata has, it is read as JSON data only: a malformed cell is code
    like any other, never a reason for grading to fail.
    """
    cells, budget = [], [NOTEBOOK_TRANSFORM_BUDGET]
    for cell in notebook.cells:
        metadata = cell.get("metadata")
        tags = metadata.get("tags") if isinstance(metadata, dict) else None
        if cell.get("cell_type") != "code" or (isinstance(tags, list) and IGNORE_TAG in tags):
            continue
        source = cell.get("source", "")
        source = "".join(map(str, source)) if isinstance(source, list) else str(source)
        tree = _parse(source, budget)
        cells.append(Cell(_without_checks(source, tree), tuple(_checks_in(tree)), code_digest(source)))
    return cells


# otter_config.json: the digests of the handed-out (student) notebook's code cells, which the build writes.
HANDED_OUT_CELLS = "handed_out_code_cells"


def code_digest(source: str) -> str:
    """A digest of a cell's code, blind to spaces at the ends of lines and blank lines around it
    ("" for a cell that holds no code)."""
    code = "\n".join(line.rstrip() for line in source.splitlines()).strip("\n")
    return hashlib.sha256(code.encode(errors="surrogatepass")).hexdigest() if code else ""


def code_cell_digests(notebook: nbformat.NotebookNode) -> set[str]:
    """The digests of a notebook's code cells that hold code, whatever their tags; a malformed cell
    is read as text, never a reason to fail."""
    digests, cells = set(), notebook.get("cells")
    for cell in cells if isinstance(cells, list) else ():
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            digests.add(code_digest("".join(map(str, source)) if isinstance(source, list) else str(source)))
    return digests - {""}


# IPython's transformer tokenizes a whole cell again for each line with a magic or a shell escape:
# its work grows as lines times such lines (a cell of 200 `!e` lines takes a second, of 20,000
# hours). Past these budgets a cell is not transformed here: it checks nothing (it still runs, in
# the student's process, on the student's time).
CELL_TRANSFORM_BUDGET = 2_000  # about 0.05 s
NOTEBOOK_TRANSFORM_BUDGET = 20_000


def transform_cost(source: str) -> int:
    lines = source.splitlines()
    return len(lines) * sum(1 for line in lines if any(escape in line for escape in "%!?"))


def _parse(source: str, budget: list[int] | None = None) -> ast.Module | None:
    """A cell's code as Python (IPython's magics turned into calls, line for line), or None.
    `budget` ([transform work left]) is shared by the cells of one notebook."""
    try:
        return ast.parse(source)
    except Exception:  # magics, or code that does not parse at all
        pass
    cost = transform_cost(source)
    if cost > min(CELL_TRANSFORM_BUDGET, budget[0] if budget else CELL_TRANSFORM_BUDGET):
        return None
    if budget:
        budget[0] -= cost
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return ast.parse(TransformerManager().transform_cell(source))
    except Exception:  # code that does not parse checks nothing (and fails when it runs)
        return None


def _is_grader_call(node: ast.AST, names: tuple[str, ...]) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in names
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "grader")


def _without_checks(source: str, tree: ast.Module | None) -> str:
    """The cell with its `grader.check/check_all/export(...)` statements (however many lines they
    span) and its pip lines replaced by `pass`: grading runs the checks itself, and installs nothing."""
    lines = source.split("\n")
    statements = [node for node in ast.walk(tree) if isinstance(node, ast.Expr)
                  and _is_grader_call(node.value, ("check", "check_all", "export"))] if tree else []
    for node in sorted(statements, key=lambda n: (n.lineno, n.col_offset), reverse=True):
        first, last = node.lineno - 1, node.end_lineno - 1
        if last >= len(lines):  # a magic's transformation changed the lines: leave the cell as it is
            continue
        # `pass`, then as many empty lines as the call spanned: later lines keep their numbers.
        lines[first:last + 1] = [lines[first][:node.col_offset] + "pass" + lines[last][node.end_col_offset:]] + \
            [""] * (last - first)
    return PIP_LINE.sub(r"\1pass", "\n".join(lines))


def check_calls(source: str) -> list[str]:
    """The questions of the `grader.check("...")` calls in a cell's code (not in comments or strings,
    but in the code of a cell magic such as `%%capture`, which IPython passes as a string)."""
    return _checks_in(_parse(source))


def _checks_in(tree: ast.Module | None) -> list[str]:
    questions = []
    for node in ast.walk(tree) if tree else ():
        if _is_grader_call(node, ("check",)) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            questions.append(node.args[0].value)
        elif _is_cell_magic(node):  # get_ipython().run_cell_magic(name, line, body)
            questions += check_calls(node.args[2].value)
    return questions


def _is_cell_magic(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "run_cell_magic"
            and len(node.args) == 3 and isinstance(node.args[2], ast.Constant) and isinstance(node.args[2].value, str))


def checkpoints(cells: list[Cell], questions: list[str]) -> dict[str, int]:
    """For each question, the index of the last cell that checks it; questions never checked are
    checked after the last cell (index len(cells))."""
    last = {question: len(cells) for question in questions}
    for index, cell in enumerate(cells):
        for question in cell.checks:
            if question in last:
                last[question] = index
    return last


PATCHES = "replaces library functions"
SUSPICIOUS = {
    r"\.OTTER_LOG|\bpickle\b|\bdill\b": "uses pickles or otter's log",
    r"results\.json|/autograder\b": "touches the grader's files",
    PATCHES: PATCHES,  # found in the code's syntax tree, not by a pattern (see `patches_a_library`)
    r"\botter\.(test_files|execute|run|check)\b|ExceptionTestFile|TestFile\b": "reaches into otter's test runner",
    r"def\s+__(eq|ne|float|array|bool|lt|le|gt|ge)__": "defines comparison or conversion methods",
    r"\bos\._exit\b|\bsys\.modules\b|\bctypes\b|\bsignal\.|\bsetsid\b|\bprctl\b": "manipulates the interpreter",
    r"\bos\.(write|dup2?|fdopen|kill|fork)\(|/proc/": "writes to raw file descriptors or reaches other processes",
    r"\bimport\s+(socket|requests|urllib|http\.client)\b|\bfrom\s+(socket|requests|urllib|http)\b"
    r"|\bsocket\.(socket|create_connection)\b": "reaches for the network",
}


def scan_for_tampering(cells: list[Cell], handed_out: frozenset[str] = frozenset()) -> list[str]:
    """Flags for the instructor (never a penalty): code that looks like it targets the grader, in
    the cells the student wrote (not those of the handed-out notebook, such as its set-up cell,
    which grading runs too when an editor drops its tags)."""
    written = [cell.source for cell in cells if cell.digest not in handed_out]
    source = "\n".join(written)
    return [reason for pattern, reason in SUSPICIOUS.items()
            if (patches_a_library(written) if reason == PATCHES else re.search(pattern, source))]


# Modules whose attributes, at any depth, a notebook has no honest reason to replace: what the
# checks compare with, and the checks themselves. The notebook imports numpy as `np` in a cell of
# the handed-out notebook, which is not scanned: that name counts without an import.
WATCHED_MODULES = ("numpy", "math", "builtins", "backprop_checks")
DEFAULT_ALIASES = {"np": "numpy", **{name: name for name in WATCHED_MODULES}}


def patches_a_library(sources: Sequence[str]) -> bool:
    """Whether code replaces, deletes or sets an attribute of a watched module or of anything under
    it, however deep (`np.random.default_rng = f`, `numpy.testing.assert_allclose = f`,
    `setattr(np.linalg, "norm", f)`, `vars(np)["isclose"] = f`), also through a name the module or a
    submodule was imported or kept under (`import numpy.testing as npt`, `rng = np.random`).
    Calling, reading or making values (`np.random.seed(0)`, `x = np.zeros(3)`) is never a patch."""
    aliases, trees = dict(DEFAULT_ALIASES), [tree for source in sources for tree in _code_trees(_parse(source))]
    for node in (node for tree in trees for node in ast.walk(tree)):  # the names modules are kept under
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in WATCHED_MODULES:
                    aliases[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in WATCHED_MODULES:
            aliases.update({alias.asname or alias.name: f"{node.module}.{alias.name}" for alias in node.names})
    for _ in range(3):  # names kept for a module's attribute, and names kept for those
        for node in (node for tree in trees for node in ast.walk(tree)):
            if isinstance(node, ast.Assign) and _root(node.value) in aliases:
                aliases.update({target.id: "" for target in node.targets if isinstance(target, ast.Name)})
    for node in (node for tree in trees for node in ast.walk(tree)):
        targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else \
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
        if any(isinstance(target, (ast.Attribute, ast.Subscript)) and _root(target) in aliases for target in targets):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args \
                and node.func.id in ("setattr", "delattr") and _root(node.args[0]) in aliases:
            return True
    return False


def _code_trees(tree: ast.Module | None) -> Iterator[ast.Module]:
    """A cell's syntax tree, and those of the code its magics run (`%%time`, `%time`, ...)."""
    if tree is None:
        return
    yield tree
    for node in ast.walk(tree):
        if _is_cell_magic(node) or (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                                    and node.func.attr == "run_line_magic" and len(node.args) == 2
                                    and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            yield from _code_trees(_parse(node.args[-1].value))


def _root(node: ast.AST) -> str | None:
    """The name at the root of `a.b.c`, `a.b[0]`, `vars(a.b)` or `a.__dict__`: `a` (None if there is none)."""
    while True:
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "vars" and node.args:
            node = node.args[0]
        else:
            return node.id if isinstance(node, ast.Name) else None


# ---------------------------------------------------------------------------------------------
# Removing a folder that a student filled

FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(top: Path) -> list[str]:
    """Remove `top` and everything under it, however deep, long-named or closed (mode 000) its
    folders are, never following a link; never raises. Returns a note for the instructor on what
    could not be removed (an empty list when everything was).

    One folder is open at a time, since a deep tree would exhaust descriptors: the walk keeps, per
    level, the folder's name, its identity (device and inode) and the subfolders still to remove,
    and goes back up through ".." only to the very folder it came from.
    """
    problems: list[str] = []
    try:
        folder = os.open(top.parent, FOLDER)
    except OSError as error:
        return [f"could not remove {shown(str(top))}: {error.strerror}"]
    levels = [("", _identity(folder), [top.name])]  # the bottom level is top's parent, which stays
    try:
        while len(levels) > 1 or levels[0][2]:
            name, _, subfolders = levels[-1]
            if subfolders:
                child = subfolders.pop()
                opened = _open_subfolder(folder, child, problems)
                if opened is not None:
                    os.close(folder)
                    folder = opened
                    levels.append((child, _identity(folder), _remove_files(folder, problems)))
                continue
            levels.pop()  # this folder is empty now: go up to its parent, and remove it from there
            parent = os.open("..", FOLDER, dir_fd=folder)
            os.close(folder)
            folder = parent
            if _identity(folder) != levels[-1][1]:
                problems.append(f"{shown(name)} was moved while it was being removed")
                break
            try:
                os.rmdir(name, dir_fd=folder)
            except OSError as error:
                problems.append(f"{shown(name)}: {error.strerror}")
    except OSError as error:
        problems.append(f"{len(levels) - 1} folders down: {error.strerror}")
    finally:
        os.close(folder)
    if not problems:
        return []
    return [f"could not remove all of {shown(str(top))}: {len(problems)} problems, the first: {problems[0]}"]


def _identity(descriptor: int) -> tuple[int, int]:
    info = os.fstat(descriptor)
    return info.st_dev, info.st_ino


def _open_subfolder(folder: int, name: str, problems: list[str]) -> int | None:
    """Open the subfolder `name` of the open `folder`, making it readable first if its owner closed
    it; remove `name` if it is anything else (a link is never followed). None unless a folder was opened."""
    try:
        if not stat.S_ISDIR(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode):
            os.unlink(name, dir_fd=folder)
            return None
        try:
            return os.open(name, FOLDER, dir_fd=folder)
        except PermissionError:  # mode 000: its owner (or root) may open it up
            os.chmod(name, 0o700, dir_fd=folder, follow_symlinks=False)
            return os.open(name, FOLDER, dir_fd=folder)
    except FileNotFoundError:
        return None
    except OSError as error:
        problems.append(f"{shown(name)}: {error.strerror}")
        return None


def _remove_files(folder: int, problems: list[str]) -> list[str]:
    """Remove every entry of the open `folder` but its subfolders, whose names it returns."""
    try:
        os.fchmod(folder, 0o700)  # writable, so that its entries can go, even if its owner closed it
    except OSError:  # not this user's to change: removing may still work
        pass
    try:
        with os.scandir(folder) as listing:
            entries = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in listing]
    except OSError as error:
        problems.append(f"a folder could not be listed: {error.strerror}")
        return []
    for name in (name for name, is_folder in entries if not is_folder):
        try:
            os.unlink(name, dir_fd=folder)
        except FileNotFoundError:
            pass
        except OSError as error:
            problems.append(f"{shown(name)}: {error.strerror}")
    return [name for name, is_folder in entries if is_folder]
