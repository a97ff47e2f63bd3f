"""What a regrade changed: whose scores differ from an earlier grading run, on which question, by how much.

`make grade` into an OUT that holds an earlier run (or with PREVIOUS= another run's folder) reads
that run's grades.csv before it grades, then writes OUT/changes.csv, one row per score that changed
(each question, then the total), and says the same on screen; `make report` puts it at the top of
report.html. A submission that is new, gone, or graded in one run only is listed too: nothing
changes silently.
"""

import csv
import html
import io
import itertools
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Optional

from backprop_hw.results import (GRADES_CSV, SPREADSHEET_ENCODING, TOTAL, GradesTable, guarded, read_grades, unguarded,
                                 write_atomically)

CHANGES_CSV = "changes.csv"
COLUMNS = ("file", "name", "sid", "score", "before", "after", "change")
NEW, GONE = "(new submission)", "(no longer in the batch)"


@dataclass(frozen=True)
class Change:
    """One score of one submission that is not what it was."""

    file: str
    name: str
    sid: str
    score: str  # a question, `total`, or NEW or GONE
    before: str  # the earlier score, "" where there was none
    after: str
    change: str  # after - before, signed ("+2", "-1.5"), "" unless both are scores


def read_previous(folder: Path) -> Optional[GradesTable]:
    """The grades.csv of an earlier run in `folder`, if there is one that can be read."""
    try:
        return read_grades(folder / GRADES_CSV)
    except (OSError, UnicodeError, csv.Error):
        return None


def _difference(before: str, after: str) -> str:
    try:
        return f"{float(after) - float(before):+g}"
    except ValueError:
        return ""


def compare(previous: GradesTable, current: GradesTable) -> list[Change]:
    """Every score of `current` that differs from `previous`, by submission (the current run's order)."""
    before = {row["file"]: row for row in previous.rows}
    after = {row["file"]: row for row in current.rows}
    changes = []
    for file in [*after, *(file for file in before if file not in after)]:
        old, new = before.get(file), after.get(file)
        row = new or old
        who = (file, row.get("name", ""), row.get("sid", ""))
        if old is None or new is None:
            total = row.get((current if old is None else previous).score_columns.get(TOTAL, ""), "")
            changes.append(Change(*who, NEW if old is None else GONE, "" if old is None else total,
                                  total if old is None else "", ""))
            continue
        for score in [*current.points, TOTAL]:
            was = old.get(previous.score_columns.get(score, ""), "")
            now = new.get(current.score_columns.get(score, ""), "")
            if was != now:
                changes.append(Change(*who, score, was, now, _difference(was, now)))
    return changes


def write_changes(out: Path, changes: list[Change]) -> None:
    """changes.csv, in grades.csv's encoding (a byte-order mark, so that Excel reads names with accents
    right). Not `write_table`: the signed changes ("+2", "-1.5") are ours, and shown as they are."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    # The file, name and SID come from submissions: guarded as in grades.csv. The rest are ours.
    writer.writerows([*map(guarded, astuple(change)[:3]), *astuple(change)[3:]] for change in changes)
    write_atomically(out / CHANGES_CSV, buffer.getvalue(), SPREADSHEET_ENCODING)


def read_changes(folder: Path) -> Optional[list[Change]]:
    """The changes.csv of a grading run folder, if it has one."""
    try:
        with open(folder / CHANGES_CSV, newline="", encoding="utf-8-sig") as handle:
            return [Change(*(unguarded(row.get(column)) for column in COLUMNS)) for row in csv.DictReader(handle)]
    except (OSError, UnicodeError, csv.Error, TypeError):
        return None


def points_changes(previous: GradesTable, current: GradesTable) -> list[str]:
    """The questions now worth other points, or new, or gone."""
    notes = []
    for question in [*current.points, *(q for q in previous.points if q not in current.points)]:
        was, now = previous.points.get(question), current.points.get(question)
        if was != now:
            notes.append(f"{question} is now worth {now:g} points (it was {was:g})" if was is not None and now is not None
                         else f"{question} is new" if was is None else f"{question} is no longer graded")
    return notes


def summary(changes: list[Change], compared_with: Path, notes: list[str]) -> str:
    """What a TA reads on screen after a regrade."""
    changed = {change.file for change in changes}
    lines = [f"Compared with the earlier run in {compared_with}: " + (
        f"{len(changed)} submission(s) changed (all of it in {CHANGES_CSV}):" if changes else "no score changed.")]
    lines += [f"  {note}" for note in notes]
    # `compare` lists each submission's changes together.
    for file, grouped in itertools.groupby(changes, key=lambda change: change.file):
        mine = list(grouped)
        name = f" ({mine[0].name})" if mine[0].name else ""
        lines.append(f"  {file}{name}: " + ", ".join(describe(change) for change in mine))
    return "\n".join(lines)


def describe(change: Change) -> str:
    if change.score in (NEW, GONE):
        return change.score.strip("()")
    return f"{change.score} {change.before or 'no score'} -> {change.after or 'no score'}" + (
        f" ({change.change})" if change.change else "")


def html_section(changes: list[Change]) -> str:
    """The report's opening section: whose scores changed since the earlier run."""
    e = html.escape
    if not changes:
        return '<section id="changes"><h2>Since the earlier run</h2><p>No score changed.</p></section>'
    rows = "".join(f'<tr class="change" data-file="{e(c.file)}"><td class="file">{e(c.file)}</td><td>{e(c.name)}</td>'
                   f'<td class="score">{e(c.score)}</td><td class="before">{e(c.before)}</td>'
                   f'<td class="after">{e(c.after)}</td><td class="change">{e(c.change)}</td></tr>' for c in changes)
    count = len({c.file for c in changes})
    return (f'<section id="changes"><h2>Since the earlier run: {count} submission(s) changed</h2>'
            '<table id="changes-table"><tr><th>submission</th><th>name</th><th>score</th><th>before</th>'
            f"<th>after</th><th>change</th></tr>{rows}</table></section>")
