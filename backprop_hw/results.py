"""Grading results, as both engines write them and the report and the bench read them.

A grading run folder holds `grades.csv` and, per submission, `results/<file>/results.json`
(Gradescope's format), `feedback.txt` (what the student sees) and `log.txt` (the start of what the
notebook printed).

grades.csv has one row per submission, identifiers first: `file` (the submission's name in the
folder graded, and its folder under results/), then `name`, `sid` and `email` (from the
submission_metadata.yml at the top of the folder graded, a Gradescope export's; every member of a
group, separated by "; "), one column per question named with its points (`q1.1 (4)`),
`total (22)`, `percent` (0 to 100), `grading_status` and `integrity`. A cell that a spreadsheet
would run as a formula is written with a leading quote.

Only the instructor names submitters and decides the rows: the rows are the entries of the folder
graded, and the metadata that names them is the file at its top. Nothing inside a submission (a
student's folder holding a submission_metadata.yml, say) is read for either.

gradebook.csv has one row per student (a group's members each get the group's total), in the
layout of Canvas's gradebook import: `Student`, `ID`, `SIS User ID` (the SID), `SIS Login ID`
(the e-mail address), `Section`, then the total under the assignment's name.

Both are UTF-8 with a byte-order mark, so that Excel (which reads a file without one as the
system's code page, such as cp1252) and LibreOffice show every name as it is.
"""

import csv
import io
import json
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from backprop_hw.autograder import feedback
from backprop_hw.autograder.gradescope_run import failed_results
from backprop_hw.autograder.submission import is_junk, printable
from backprop_hw.paths import ROOT

DEFAULT_OUT = ROOT / "grades"
LAST_RUN = ROOT / "build" / "last-grading-run.json"  # where the last grading run wrote: the report's default
GRADES_CSV = "grades.csv"
GRADEBOOK_CSV = "gradebook.csv"
GRADEBOOK_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")  # Canvas's, before the scores
SPREADSHEET_ENCODING = "utf-8-sig"  # with a byte-order mark: how Excel knows UTF-8
RESULTS_DIR = "results"
COMPLETED = "Completed"
BLANK = "Blank"
GRADER_ERROR = "grader error"
NOT_REACHED = "the grading run stopped before this submission was graded"
GRADESCOPE_METADATA = "submission_metadata.yml"
# The metadata is the instructor's download, but still text from outside: bounded in size, in YAML
# events (a real export has about a hundred per submission) and in submissions, and read without
# YAML's anchors and aliases, with which 68 KB can stand for millions of entries.
MAX_METADATA_BYTES = 32 << 20
MAX_METADATA_EVENTS = 1_000_000
MAX_METADATA_SUBMISSIONS = 10_000
MAX_METADATA_DEPTH = 32  # a real export's is 5
IDENTITY_COLUMNS = ("file", "name", "sid", "email")
TOTAL, PERCENT, STATUS, INTEGRITY = "total", "percent", "grading_status", "integrity"
POINTS_IN_COLUMN = re.compile(r"(?P<name>.+) \((?P<points>\d+(?:\.\d+)?)\)")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
GUARD = "'"  # what spreadsheets read as "text follows"


@dataclass(frozen=True)
class Submitter:
    """A student of a submission, as a Gradescope export names them."""

    name: str = ""
    sid: str = ""
    email: str = ""


@dataclass
class Submission:
    """One thing to grade: `name` is its row's `file` and its folder under results/."""

    name: str
    path: Path
    problem: Optional[str] = None  # why it cannot be graded at all
    submitters: tuple[Submitter, ...] = ()
    note: Optional[str] = None  # for the instructor, beside the grading status (why the names are unknown)
    flags: list[str] = field(default_factory=list)  # for the instructor's integrity column (an SID shared)


@dataclass
class Outcome:
    """What grading one submission gave."""

    results: Optional[dict] = None  # Gradescope results
    complete: bool = False  # the notebook ran to its end
    blank: bool = False  # no question answered (see feedback.is_blank)
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # integrity flags for the instructor, never a penalty
    error: Optional[str] = None  # why it could not be graded (the submission's fault)
    grader_error: Optional[str] = None  # why the grader itself failed: no score at all, never a zero
    log: str = ""
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------
# What to grade, and who submitted it


def find_submissions(folder: Path) -> list[Submission]:
    """Every submission in `folder`, sorted by name, each under a name of its own (see `row_names`);
    anything else there is listed as a problem, but hidden files and what operating systems add
    (`__MACOSX` of an unzipped batch, `Thumbs.db`, ...).

    A `submission_metadata.yml` at the top of `folder` (a Gradescope export, or the instructor's
    own) names the submitters of the entries it lists. One anywhere else belongs to a submission and
    is never read: a folder that holds one is a submission like any other.
    """
    metadata = folder / GRADESCOPE_METADATA
    exported = metadata.is_file() and not metadata.is_symlink()
    submitters, problem = read_export_metadata(metadata) if exported else ({}, None)
    entries = [entry for entry in sorted(folder.iterdir())
               if not (entry.name.startswith(".") or is_junk([entry.name]) or (exported and entry == metadata))]
    found = []
    for entry, name in zip(entries, row_names([entry.name for entry in entries])):
        if entry.is_symlink():
            submission = Submission(name, entry, "a symbolic link, not graded")
        elif entry.is_dir() or entry.suffix in (".ipynb", ".zip"):
            submission = Submission(name, entry)
        else:
            extension = printable(entry.suffix) or "no extension"
            submission = Submission(name, entry, f"not a notebook, zip or folder ({extension})")
        notes = []
        if exported:  # a file beside the export's folders was dropped in by hand: its name says whose it is
            submission.submitters = submitters.get(entry.name, ())
            if problem or (entry.is_dir() and not submission.submitters):
                notes.append(f"names unknown: {problem or f'{GRADESCOPE_METADATA} names no submitter of it'}")
        if entry.is_dir() and not entry.is_symlink() and (entry / GRADESCOPE_METADATA).exists():
            notes.append(f"the {GRADESCOPE_METADATA} in it was not read: only the one at the top of the folder "
                         "graded names submitters (to grade an export, point make grade at the export itself)")
        submission.note = "; ".join(notes) or None
        found.append(submission)
    shared = shared_identities({s.name: ([m.sid for m in s.submitters], [m.email for m in s.submitters])
                                for s in found})
    for submission in found:
        submission.flags = shared.get(submission.name, [])
    return found


def row_names(names: list[str]) -> list[str]:
    """The name of each entry's row, and of its folder under results/: the entry's name made
    printable and in one direction (`one_direction`), never "", "." or ".."; names that would then
    be the same are told apart by a number, in the order of the entries (`a.ipynb`, `a.ipynb (2)`)."""
    taken: set[str] = set()
    shown = []
    for name in names:
        base = one_direction(printable(name))
        base = base if base not in ("", ".", "..") else f"(unnamed{base and ' ' + base})"
        candidate, number = base, 1
        while candidate in taken:
            number += 1
            candidate = f"{base} ({number})"
        taken.add(candidate)
        shown.append(candidate)
    return shown


def shared_identities(rows: dict[str, tuple[list[str], list[str]]]) -> dict[str, list[str]]:
    """{row: flags} for the rows whose SIDs or e-mail addresses ({row: (SIDs, e-mails)}, one per
    member of a group) another row has too; e-mail addresses compared without case."""
    flags: dict[str, list[str]] = {}
    for kind, position, key in (("SID", 0, str.strip), ("e-mail", 1, lambda text: text.strip().casefold())):
        holders: dict[str, list[str]] = {}
        for row, identities in rows.items():
            for value in dict.fromkeys(key(v) for v in identities[position] if v.strip()):
                holders.setdefault(value, []).append(row)
        for value, sharing in holders.items():
            for row in sharing if len(sharing) > 1 else ():
                others = ", ".join(other for other in sharing if other != row)
                flags.setdefault(row, []).append(f"shares {kind} {value} with {others}")
    return flags


class MetadataLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """PyYAML's safe loader (libyaml's where there is one), reading any tag it does not know (the
    Ruby objects of Gradescope's exports, such as `!ruby/object:BigDecimal`) as the plain data under it."""


def _plain(loader: MetadataLoader, _suffix: str, node: yaml.Node) -> object:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)


MetadataLoader.add_multi_constructor("", _plain)


def metadata_problem(text: str) -> Optional[str]:
    """What makes a metadata file more than plain YAML data of a bounded size: an anchor or an alias
    (refused: they let a few bytes stand for millions of entries), too many YAML events, or nesting
    deeper than MAX_METADATA_DEPTH; None if nothing does. Only the parser's events are read here, one
    at a time: nothing is built."""
    depth = 0
    for count, event in enumerate(yaml.parse(text, Loader=MetadataLoader)):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            return f"{GRADESCOPE_METADATA} uses YAML anchors or aliases, which are not read"
        if count > MAX_METADATA_EVENTS:
            return f"{GRADESCOPE_METADATA} holds more than {MAX_METADATA_EVENTS:,} YAML values"
        depth += isinstance(event, yaml.CollectionStartEvent) - isinstance(event, yaml.CollectionEndEvent)
        if depth > MAX_METADATA_DEPTH:
            return f"{GRADESCOPE_METADATA} is nested more than {MAX_METADATA_DEPTH} deep"
    return None


def read_export_metadata(path: Path) -> tuple[dict[str, tuple[Submitter, ...]], Optional[str]]:
    """{submission folder: its submitters} from a Gradescope export's submission_metadata.yml, and
    what is wrong with the file, if anything: the instructor's download, but still untrusted text."""
    try:
        if path.stat().st_size > MAX_METADATA_BYTES:
            return {}, f"{GRADESCOPE_METADATA} is larger than {MAX_METADATA_BYTES >> 20} MB"
        text = path.read_text(encoding="utf-8", errors="replace")
        problem = metadata_problem(text)
        data = None if problem else yaml.load(text, Loader=MetadataLoader)
    except (OSError, yaml.YAMLError, RecursionError) as error:
        where = getattr(error, "problem_mark", None)
        return {}, (f"{GRADESCOPE_METADATA} cannot be read ({type(error).__name__}"
                    f"{f' at line {where.line + 1}' if where else ''})")
    if problem:
        return {}, problem
    if not isinstance(data, dict):
        return {}, f"{GRADESCOPE_METADATA} is not a list of submissions"
    if len(data) > MAX_METADATA_SUBMISSIONS:
        return {}, f"{GRADESCOPE_METADATA} lists more than {MAX_METADATA_SUBMISSIONS:,} submissions"
    found = {}
    for key, entry in data.items():
        members = entry.get(":submitters") if isinstance(entry, dict) else None
        submitters = [Submitter(*(text_of(member.get(f":{part}")) for part in ("name", "sid", "email")))
                      for member in (members if isinstance(members, list) else ()) if isinstance(member, dict)]
        found[str(key)] = tuple(submitter for submitter in submitters if submitter != Submitter())
    return found, None


def text_of(value: object, limit: int = 200) -> str:
    """A name, SID or e-mail address as one short printable line in one direction; "" for anything
    but text or a number."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return ""
    return " ".join(one_direction(printable(str(value))).replace("\ufffd", " ").split())[:limit]


# Unicode's format characters (category Cf) change how the text around them shows and show nothing
# themselves: a right-to-left override (U+202E) turns the rest of a line around, names of other
# students included, and zero-width ones make two names look the same. Names lose them all but the
# joiners, which some scripts and emoji need to show a name as it is written.
JOINERS = "\u200c\u200d"


def one_direction(text: str) -> str:
    """`text` without Unicode format characters (bidirectional overrides, zero-width spaces), but
    the joiners."""
    return "".join(c for c in text if c in JOINERS or unicodedata.category(c) != "Cf")


# ---------------------------------------------------------------------------------------------
# Grading one submission: its files and its row


def unpack_autograder(autograder: Path, folder: Path) -> Path:
    """Unpack the autograder zip once, outside every sandbox: the tests never enter one."""
    source = folder / "source"
    with zipfile.ZipFile(autograder) as archive:
        archive.extractall(source)
    return source


def question_points(source: Path) -> dict[str, float]:
    """{question: points} of an unpacked autograder, from its test files as the graders read them."""
    from backprop_hw.autograder import trusted

    return {name: test.possible for name, test in trusted.load_tests(source / "tests", source / "files").items()}


def complete_results(results: Optional[dict], points: dict[str, float], reason: str) -> dict:
    """Gradescope results with an entry (zero when absent) for every question."""
    results = json.loads(json.dumps(results)) if results else {"tests": []}
    tests = results.setdefault("tests", [])
    present = {test.get("name") for test in tests}
    for question, possible in points.items():
        if question not in present:
            tests.append({"name": question, "score": 0, "max_score": possible, "visibility": "visible",
                          "output": reason})
    return results


def question_scores(results: dict, points: dict[str, float]) -> dict[str, float]:
    scores = {test.get("name"): test.get("score", 0) for test in results.get("tests", [])}
    return {question: float(scores.get(question) or 0) for question in points}


def status_of(outcome: Outcome) -> str:
    """`Completed` or `Blank`, or what went wrong and what it cost."""
    if outcome.grader_error:
        return f"{GRADER_ERROR}: {outcome.grader_error} (no score: grade it again)"
    if outcome.error:
        return "; ".join([f"Not graded: {outcome.error}", *outcome.notes])
    if outcome.blank:
        return "; ".join([f"{BLANK}: no question answered (every answer still `...` or missing)", *outcome.notes])
    if outcome.complete:
        return "; ".join([COMPLETED, *outcome.notes])
    return "; ".join(["Partly graded (questions not reached score 0)", *outcome.notes])


def total_score(results: dict) -> tuple[float, float]:
    """(score, possible) of Gradescope results, as Gradescope computes them."""
    tests = [test for test in results.get("tests", []) if "max_score" in test]
    possible = sum(test["max_score"] for test in tests)
    total = results["score"] if "score" in results else sum(test.get("score") or 0 for test in tests)
    return total, possible


def feedback_text(results: dict) -> str:
    """What the student sees, as text: the total first, then each entry Gradescope shows them, now
    or after the due date, once. Never the instructor's notes; nor the public summary when the
    questions' entries are shown, since it repeats their public cases."""
    tests = [test for test in results.get("tests", []) if test.get("visibility", "visible") != "hidden"]
    if any("max_score" in test for test in tests):
        tests = [test for test in tests if test.get("name") != feedback.PUBLIC_TITLE]
    total, possible = total_score(results)
    lines = [f"Total: {total:g} of {feedback.points(possible)}", ""] if possible else []
    if results.get("output"):
        lines += [results["output"], ""]
    later = []
    for test in tests:
        head = test.get("name", "Test")
        if "score" in test and "max_score" in test:
            head += f": {test['score']:g} of {feedback.points(test['max_score'])}"
        text = test.get("output") or ""
        if text.split("\n", 1)[0] == head:  # the graders' own question entries open with this very line
            text = text.partition("\n")[2]
        entry = [head, *([text] if text else []), ""]
        if test.get("visibility") == "after_due_date":
            later += entry
        else:
            lines += entry
    if later:
        lines += ["Shown after the due date:", ""] + later
    return "\n".join(lines).rstrip() + "\n"


def write_atomically(path: Path, text: str, encoding: str = "utf-8") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding=encoding, errors="backslashreplace")  # never a reason for the batch to stop
    temporary.replace(path)


def record(out: Path, submission: Submission, outcome: Outcome, points: dict[str, float]) -> dict[str, str]:
    """Write the submission's files; return its grades.csv row (no score for a grader error)."""
    if outcome.grader_error and not submission.problem:
        results = failed_results(outcome.grader_error)
    else:
        results = complete_results(outcome.results, points, row_status(submission, outcome))
    folder = out / RESULTS_DIR / submission.name
    write_atomically(folder / "results.json", json.dumps(results, indent=4) + "\n")
    write_atomically(folder / "feedback.txt", feedback_text(results))
    write_atomically(folder / "log.txt", outcome.log)
    return grades_row(submission, outcome, points, results)


def row_status(submission: Submission, outcome: Outcome) -> str:
    return f"Not graded: {submission.problem}" if submission.problem else status_of(outcome)


def grades_row(submission: Submission, outcome: Outcome, points: dict[str, float],
               results: Optional[dict] = None) -> dict[str, str]:
    """The submission's grades.csv row, column by column: scores from `results`, none for a grader error."""
    identity = {"file": submission.name, **{part: "; ".join(getattr(member, part) for member in submission.submitters)
                                            for part in ("name", "sid", "email")}}
    columns = question_columns(points)
    if outcome.grader_error and not submission.problem:
        scores = {**dict.fromkeys(columns.values(), ""), PERCENT: ""}
    else:
        earned = question_scores(results or {}, points)
        total, possible = sum(earned.values()), sum(points.values())
        scores = {**{columns[question]: f"{score:g}" for question, score in earned.items()},
                  columns[TOTAL]: f"{total:g}", PERCENT: f"{100 * total / possible:.1f}" if possible else "0"}
    status = "; ".join([row_status(submission, outcome), *([submission.note] if submission.note else [])])
    return {**identity, **scores, STATUS: status, INTEGRITY: "; ".join([*submission.flags, *outcome.flags])}


# ---------------------------------------------------------------------------------------------
# grades.csv


def points_column(name: str, points: float) -> str:
    """A score's column, named with the points possible: `q1.1 (4)`, `total (22)`."""
    return f"{name} ({points:g})"


def question_columns(points: dict[str, float]) -> dict[str, str]:
    """{question or TOTAL: its column}, in the order of grades.csv."""
    return {**{question: points_column(question, points[question]) for question in sorted(points)},
            TOTAL: points_column(TOTAL, sum(points.values()))}


def guarded(cell: str) -> str:
    """A cell that no spreadsheet runs as a formula: one starting as a formula would (or with the
    quote this adds) gets a leading quote, which `unguarded` takes away again."""
    return GUARD + cell if cell.startswith(FORMULA_START + (GUARD,)) else cell


def unguarded(cell: Optional[str]) -> str:
    if cell is None:
        return ""
    return cell[1:] if cell.startswith(GUARD) and cell[1:].startswith(FORMULA_START + (GUARD,)) else cell


def write_table(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    """A CSV file for spreadsheets: UTF-8 with a byte-order mark, RFC 4180's line ends, no formulas."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\r\n")  # RFC 4180: a cell's \r is quoted too
    writer.writeheader()
    for row in rows:
        writer.writerow({column: guarded(value) for column, value in row.items()})
    write_atomically(path, buffer.getvalue(), SPREADSHEET_ENCODING)


def write_grades(out: Path, rows: list[dict[str, str]], points: dict[str, float]) -> None:
    """Write grades.csv: one row per submission, sorted by file."""
    columns = [*IDENTITY_COLUMNS, *question_columns(points).values(), PERCENT, STATUS, INTEGRITY]
    write_table(out / GRADES_CSV, columns, sorted(rows, key=lambda row: row["file"]))


def assignment_name(source: Path) -> str:
    """The assignment's name in an unpacked autograder's configuration (the master's `name:`)."""
    return json.loads((source / "otter_config.json").read_text(encoding="utf-8"))["assignment_name"]


def write_gradebook(out: Path, submissions: list[Submission], rows: dict[str, dict[str, str]],
                    points: dict[str, float], assignment: str) -> list[str]:
    """Write gradebook.csv: one row per student, with the total of the submission (by file in `rows`)
    that names them, in Canvas's gradebook import layout; a submission that names nobody has a row
    under its file's name, for the gradebook to match by hand. A student named by more than one
    submission gets no score, for the instructor to decide; those students are returned."""
    total = question_columns(points)[TOTAL]
    students: dict[str, dict[str, str]] = {}
    twice: dict[str, None] = {}
    for submission in submissions:
        score = rows[submission.name][total] if submission.name in rows else ""
        for member in submission.submitters or (Submitter(name=submission.name),):
            key = member.sid or member.email or member.name
            if key in students:
                students[key][assignment] = ""
                twice[member.name or key] = None
                continue
            students[key] = dict(zip(GRADEBOOK_IDENTITY, (member.name, "", member.sid, member.email, "")),
                                 **{assignment: score})
    write_table(out / GRADEBOOK_CSV, [*GRADEBOOK_IDENTITY, assignment],
                sorted(students.values(), key=lambda row: row["Student"].casefold()))
    return list(twice)


@dataclass
class GradesTable:
    """A grades.csv as read back."""

    columns: list[str]
    points: dict[str, float]  # {question: points possible}, from the column names
    score_columns: dict[str, str]  # {question, and TOTAL: its column}
    rows: list[dict[str, str]]  # by column, as written (the formula guards taken away)


def read_grades(path: Path) -> GradesTable:
    """Read a grades.csv (also one saved by a spreadsheet, with a byte-order mark); OSError,
    csv.Error or UnicodeError if it cannot be read."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        columns = [column for column in reader.fieldnames or [] if column]
    named = {match["name"]: (column, float(match["points"]))
             for column in columns if (match := POINTS_IN_COLUMN.fullmatch(column))}
    return GradesTable(columns, {name: points for name, (_, points) in named.items() if name != TOTAL},
                       {name: column for name, (column, _) in named.items()},
                       [{column: unguarded(value) for column, value in row.items()
                         if isinstance(column, str) and not isinstance(value, list)} for row in rows])


def remember_last_run(out: Path) -> None:
    """Note where a grading run writes, for the report to find it."""
    LAST_RUN.parent.mkdir(parents=True, exist_ok=True)
    LAST_RUN.write_text(json.dumps(str(out.resolve())) + "\n", encoding="utf-8")


def last_run() -> Optional[Path]:
    """Where the last grading run wrote, if one did."""
    try:
        return Path(json.loads(LAST_RUN.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
