"""An instructor report of a grading run: what the class got wrong, at a glance.

    python -m backprop_hw.report [GRADES_DIR]

Reads `grades.csv` and `results/<file>/results.json` from a grading run folder (default: the
folder the last `make grade` wrote to, else `grades/`) and writes into it `report.html`, one
self-contained page (charts embedded, inline CSS, nothing fetched from the network), and the
charts as `score-histogram.png` and `pass-rates.png`. The page opens with what the class got
wrong: each question's first failures, every distinct one, commonest first, with the submissions
that hit them (messages show their `code` as code). Score
statistics count graded submissions only; blank, ungraded and partly graded ones are counted apart.
A missing or broken run gives a page that says what is wrong rather than a traceback.
"""

import argparse
import base64
import csv
import html
import json
import re
import statistics
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from backprop_hw import regrade
from backprop_hw.autograder.feedback import FAILED, MESSAGE_INDENT
from backprop_hw.results import (BLANK, COMPLETED, DEFAULT_OUT, GRADER_ERROR, GRADES_CSV, IDENTITY_COLUMNS, INTEGRITY,
                                 PERCENT, RESULTS_DIR, STATUS, TOTAL, GradesTable, last_run, one_direction,
                                 read_grades, shared_identities)


REPORT = "report.html"
HISTOGRAM = "score-histogram.png"
PASS_RATES = "pass-rates.png"
# First line of this optional file, if the grading run writes one, is shown as the run's date.
TIMESTAMP_FILE = "timestamp.txt"
LISTED_WHO = 12  # submissions named beside a failure before the rest fold away
LISTED_PROBLEMS = 10
MAX_TEXT = 300
NO_RESULTS = "(results.json missing or unreadable)"
NO_MESSAGE = "(no failure message found in results.json)"

CODE_SPAN = re.compile(r"`([^`\n]+)`")  # what a message writes as code, in backticks
CASE_HEADER = re.compile(r"^\s*\S+ - \d+ result:\s*$", re.MULTILINE)
ERROR_AT = re.compile(r"Error at line \d+ in test [^\n]*\n[^\n]*\n(?P<error>.*)", re.DOTALL)
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?!\w|\.\d)")


@dataclass
class GradedRow:
    """One row of grades.csv, with the first failure message of each question it lost points on."""

    file: str
    scores: dict[str, float | None]
    total: float | None
    status: str
    name: str = ""
    integrity: str = ""
    failures: dict[str, str] = field(default_factory=dict)
    sid: str = ""
    email: str = ""

    @property
    def label(self) -> str:
        """Who submitted it, where known, and its file, in one direction (see `results.one_direction`)."""
        name, file = one_direction(self.name), one_direction(self.file)
        return f"{name} ({file})" if name else file

    @property
    def label_html(self) -> str:
        """`label` as HTML, the name and the file each isolated (<bdi>): a name written right to left
        never turns the names around it."""
        name, file = one_direction(self.name), one_direction(self.file)
        return f"<bdi>{html.escape(name)}</bdi> (<bdi>{html.escape(file)}</bdi>)" if name else \
            f"<bdi>{html.escape(file)}</bdi>"

    @property
    def graded(self) -> bool:
        """Whether the grading run completed on this submission (perhaps with problems)."""
        return self.status.strip().lower().startswith(COMPLETED.lower())

    @property
    def blank(self) -> bool:
        """Whether no answer of it differs from the handed-out notebook."""
        return self.status.strip().lower().startswith(BLANK.lower())

    @property
    def grader_error(self) -> bool:
        return self.status.strip().lower().startswith(GRADER_ERROR)

    @property
    def needs_attention(self) -> bool:
        """Blank, failed to grade, graded with problems, or flagged."""
        return self.status.strip().lower() != COMPLETED.lower() or bool(self.integrity)


@dataclass
class GradingRun:
    """What the report knows about a grading run."""

    questions: list[str] = field(default_factory=list)
    points: dict[str, float] = field(default_factory=dict)
    submissions: list[GradedRow] = field(default_factory=list)
    has_integrity: bool = False
    notices: list[str] = field(default_factory=list)
    date: str = "unknown"

    @property
    def graded(self) -> list[GradedRow]:
        return [submission for submission in self.submissions if submission.graded]

    @property
    def blank(self) -> list[GradedRow]:
        return [submission for submission in self.submissions if submission.blank]

    @property
    def total_points(self) -> float | None:
        return sum(self.points.values()) if self.points else None


@dataclass
class Failure:
    """One mistake: the message as the first submission to hit it saw it, and who hit it."""

    message: str
    submissions: list[GradedRow]


@dataclass
class QuestionStats:
    """Pass rate and first failures of one question over the graded submissions."""

    question: str
    points: float
    graded: int
    full_marks: int
    mean: float | None
    failures: list[Failure]  # every distinct one, the commonest first

    @property
    def pass_rate(self) -> float | None:
        return self.full_marks / self.graded if self.graded else None


def number(text: str | None) -> float | None:
    """The number in a CSV cell, or None if it holds none."""
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if value == value else None  # NaN counts as missing


def shorten(text: str) -> str:
    """Collapse whitespace and cut very long student-derived text."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


def failure_messages(output: str) -> list[str]:
    """The message of each failed test case in a question's output, in order: the hardened grader's
    (`backprop_hw.autograder.feedback`), or stock otter's (ENGINE=docker)."""
    if not CASE_HEADER.search(output):
        lines = output.splitlines()
        return [shorten(lines[i + 1].strip()) if i + 1 < len(lines) and lines[i + 1].startswith(MESSAGE_INDENT)
                else NO_MESSAGE for i, line in enumerate(lines) if line.startswith(FAILED)]
    messages = []
    for case in CASE_HEADER.split(output)[1:]:
        if "Test case failed" not in case:
            continue
        match = ERROR_AT.search(case)
        error = match["error"] if match else case.strip().splitlines()[-1]
        error = shorten(error)
        messages.append(error.removeprefix("AssertionError: ") or NO_MESSAGE)
    return messages


def normalise(message: str) -> str:
    """Blank out the numbers in a message, so that one mistake made by many students groups together."""
    return NUMBER.sub("#", message)


def read_results(path: Path | None) -> dict[str, list[str]]:
    """Failure messages per test name from a Gradescope results.json; ValueError if missing or unreadable."""
    if path is None or not path.is_file():
        raise ValueError("is missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot be read ({type(error).__name__})") from None
    tests = data.get("tests") if isinstance(data, dict) else None
    if not isinstance(tests, list):
        raise ValueError("has no list of tests")
    return {str(test.get("name")): failure_messages(str(test.get("output") or ""))
            for test in tests if isinstance(test, dict)}


def read_table(path: Path, run: GradingRun) -> GradesTable | None:
    """grades.csv, if it is a grading run's; fills in the run's questions and points. Problems go to run.notices."""
    try:
        table = read_grades(path)
    except (OSError, UnicodeError, csv.Error) as error:
        run.notices.append(f"{GRADES_CSV} cannot be read ({type(error).__name__}: {error}).")
        return None
    if "file" not in table.columns:
        run.notices.append(f"{GRADES_CSV} has no `file` column, so it is not a grading run's grades.")
        return None
    run.has_integrity = INTEGRITY in table.columns
    run.questions, run.points = list(table.points), dict(table.points)
    if not run.questions:
        run.notices.append(f"{GRADES_CSV} has no question columns with their points (such as `q1.1 (4)`), "
                           "so scores and pass rates are unknown.")
    known = {*IDENTITY_COLUMNS, PERCENT, STATUS, INTEGRITY, *table.score_columns.values()}
    ignored = [column for column in table.columns if column not in known]
    if ignored:
        run.notices.append(f"Columns without points were ignored: {', '.join(ignored)}.")
    return table


def run_date(folder: Path) -> str:
    """The run's date: the timestamp file if present, else the modification time of grades.csv."""
    stamp = folder / TIMESTAMP_FILE
    if stamp.is_file():
        lines = stamp.read_text(encoding="utf-8", errors="replace").splitlines()
        if lines and lines[0].strip():
            return shorten(lines[0])
    csv_path = folder / GRADES_CSV
    if csv_path.is_file():
        modified = datetime.fromtimestamp(csv_path.stat().st_mtime, tz=timezone.utc)
        return modified.strftime("%Y-%m-%d %H:%M UTC")
    return "unknown"


def results_file(folder: Path, name: str) -> Path | None:
    """A submission's results.json, in the folder named as its `file`; None for a name that is no folder name."""
    if name in ("", ".", "..") or "/" in name or "\\" in name:
        return None
    return folder / RESULTS_DIR / name / "results.json"


def listing(problems: list[str]) -> str:
    """Some problems, separated by semicolons, cut short if there are many."""
    shown = "; ".join(problems[:LISTED_PROBLEMS])
    return shown + (f"; and {len(problems) - LISTED_PROBLEMS} more" if len(problems) > LISTED_PROBLEMS else "")


def load_run(folder: Path) -> GradingRun:
    """Read a grading run folder, noting rather than raising whatever is missing or broken."""
    run = GradingRun(date=run_date(folder))
    csv_path = folder / GRADES_CSV
    if not csv_path.is_file():
        run.notices.append(f"No {GRADES_CSV} in this folder: run `make grade` first.")
        return run
    table = read_table(csv_path, run)
    unreadable, non_numeric = [], []
    for row in table.rows if table else []:
        if not any(value.strip() for value in row.values()):
            continue
        scores = {question: number(row.get(table.score_columns[question])) for question in run.questions}
        total = number(row.get(table.score_columns.get(TOTAL, "")))
        if total is None and scores and None not in scores.values():
            total = sum(scores.values())
        submission = GradedRow(file=row.get("file") or "(unnamed)", scores=scores, total=total,
                               status=row.get(STATUS) or "(no status)", name=shorten(row.get("name", "")),
                               integrity=row.get(INTEGRITY, "").strip(), sid=row.get("sid", ""),
                               email=row.get("email", ""))
        run.submissions.append(submission)
        if not submission.graded:
            continue
        missing = [question for question, score in scores.items() if score is None]
        if missing:
            non_numeric.append(f"{submission.file} ({', '.join(missing)})")
        lost = [q for q in run.questions if not full_marks(submission, run, q)]
        if not lost:
            continue
        try:
            messages = read_results(results_file(folder, submission.file))
        except ValueError as problem:
            unreadable.append(f"{submission.file}: results.json {problem}")
            submission.failures = dict.fromkeys(lost, NO_RESULTS)
            continue
        submission.failures = {question: (messages.get(question) or [NO_MESSAGE])[0] for question in lost}
    shared = shared_identities({s.file: (s.sid.split("; "), s.email.split("; ")) for s in run.submissions})
    if shared:
        run.notices.append("Submissions that share an SID or an e-mail address with another (the integrity column "
                           "flags them too): " + listing([f"{submission.label} {flag}" for submission in run.submissions
                                                         for flag in shared.get(submission.file, [])]) + ".")
    errors = [submission.label for submission in run.submissions if submission.grader_error]
    if errors:
        run.notices.append(f"The grader itself failed on {len(errors)} submission(s), which have no score: "
                           f"grade them again ({listing(errors)}).")
    if non_numeric:
        run.notices.append(f"Non-numeric scores, counted as short of full marks: {listing(non_numeric)}.")
    if unreadable:
        run.notices.append(f"Failure messages are unknown for some graded submissions: {listing(unreadable)}.")
    if table and not run.submissions:
        run.notices.append(f"{GRADES_CSV} lists no submissions.")
    return run


def full_marks(submission: GradedRow, run: GradingRun, question: str) -> bool:
    """Whether the submission earned all the points of the question."""
    score, points = submission.scores.get(question), run.points.get(question)
    return score is not None and points is not None and score >= points - 1e-9


def question_stats(run: GradingRun) -> list[QuestionStats]:
    """Per-question pass rate, mean score and most common first failures, over graded submissions."""
    graded = run.graded
    stats = []
    for question in run.questions:
        failures: dict[str, Failure] = {}
        for submission in graded:
            message = submission.failures.get(question)
            if message is not None:
                failures.setdefault(normalise(message), Failure(message, [])).submissions.append(submission)
        scores = [s.scores[question] for s in graded if s.scores.get(question) is not None]
        ordered = sorted(failures.items(), key=lambda item: (-len(item[1].submissions), item[0]))
        stats.append(QuestionStats(question=question, points=run.points[question], graded=len(graded),
                                   full_marks=sum(full_marks(s, run, question) for s in graded),
                                   mean=statistics.fmean(scores) if scores else None,
                                   failures=[failure for _, failure in ordered]))
    return stats


def new_chart() -> tuple[Any, Any]:
    """A figure of the report's size and its axes. Matplotlib (most of a second to import) is
    imported here, where a chart is drawn, not by every importer of this module."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6.4, 3.2))


def save_figure(figure: Any, path: Path) -> None:
    """Save a chart as a PNG (which matplotlib writes without a date: reruns give the same bytes)."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)


def plot_histogram(totals: list[float], total_points: float | None, path: Path) -> None:
    """Histogram of total scores, one bar per point."""
    top = total_points if total_points is not None else max(totals)
    figure, axes = new_chart()
    axes.hist(totals, bins=[edge - 0.5 for edge in range(int(top) + 2)], color="#4c72b0", edgecolor="white")
    axes.set_xlim(-0.5, top + 0.5)
    axes.set_xlabel("total points" + (f" (out of {fmt(total_points)})" if total_points is not None else ""))
    axes.set_ylabel("submissions")
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.set_title(f"Total scores of the {len(totals)} graded submissions")
    save_figure(figure, path)


def plot_pass_rates(stats: list[QuestionStats], path: Path) -> None:
    """Bar chart of each question's pass rate, labelled with its counts."""
    figure, axes = new_chart()
    rates = [100 * (s.pass_rate or 0) for s in stats]
    bars = axes.bar([s.question for s in stats], rates, color="#55a868")
    axes.bar_label(bars, labels=[f"{s.full_marks}/{s.graded}" for s in stats], padding=2)
    axes.set_ylim(0, 112)
    axes.set_ylabel("full marks (% of graded)")
    axes.set_title("Pass rate per question")
    save_figure(figure, path)


def fmt(value: float | None) -> str:
    """A score for display: whole numbers without decimals, others with two."""
    if value is None:
        return "–"
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def embedded(path: Path, element_id: str, alt: str) -> str:
    """An <img> carrying the PNG as a data URI, with a link to the file next to the page."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img id="{element_id}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
            f'<figcaption>{html.escape(alt)} (also saved as <a href="{path.name}">{path.name}</a>)</figcaption></figure>')


def message_html(message: str) -> str:
    """A message as HTML: escaped, with what it writes in backticks as code."""
    return CODE_SPAN.sub(r"<code>\1</code>", html.escape(message))


def who(submissions: list[GradedRow]) -> str:
    """The submissions that hit a failure, by name where known, alphabetically; past a dozen, the rest fold away."""
    labels = [s.label_html for s in sorted(submissions, key=lambda s: s.label.casefold())]
    shown = ", ".join(labels[:LISTED_WHO])
    if len(labels) > LISTED_WHO:
        shown += (f"<details><summary>and {len(labels) - LISTED_WHO} more</summary>"
                  f"{', '.join(labels[LISTED_WHO:])}</details>")
    return shown


def summary(run: GradingRun) -> str:
    """Who was graded, who was not, and the score statistics of the graded."""
    graded, blank = run.graded, run.blank
    troubled = [s for s in graded if s.needs_attention]
    totals = [s.total for s in graded if s.total is not None]
    text = (f'<span id="n-submissions">{len(run.submissions)}</span> submissions: '
            f'<span id="n-graded">{len(graded)}</span> graded (<span id="n-clean">{len(graded) - len(troubled)}'
            f'</span> cleanly, <span id="n-troubled">{len(troubled)}</span> with problems or flagged), '
            f'<span id="n-blank">{len(blank)}</span> blank (no question answered) and '
            f'<span id="n-failed">{len(run.submissions) - len(graded) - len(blank)}</span> not graded, '
            "fully or in part.")
    if totals:
        text += (f' Total points of the {len(totals)} graded submissions (blank and ungraded ones left out): mean '
                 f'<span id="mean-total">{statistics.fmean(totals):.2f}</span>, median '
                 f'<span id="median-total">{fmt(statistics.median(totals))}</span>, '
                 f'lowest {fmt(min(totals))}, highest {fmt(max(totals))} (out of {fmt(run.total_points)}).')
    return f'<p id="summary">{text}</p>'


def failures_section(stats: list[QuestionStats]) -> list[str]:
    """Each question's first failures, every distinct one (the commonest first), with who hit them."""
    e = html.escape
    parts = ['<h2 id="failures">What the class got wrong</h2>',
             "<p>For each graded submission that lost points on a question, the message of its <em>first</em> "
             "failing check (usually the root cause: later failures tend to follow from it), every distinct "
             "one, the commonest first. Messages that differ only in their numbers count as the same mistake.</p>"]
    for s in stats:
        lost = s.graded - s.full_marks
        section = [f'<section class="question" id="failures-{e(s.question)}" data-question="{e(s.question)}">',
                   f'<h3>{e(s.question)}: <span class="lost">{lost}</span> of {s.graded} graded submissions '
                   "lost points</h3>"]
        if s.failures:
            rows = "".join(f'<tr class="failure"><td class="count">{len(f.submissions)}</td><td class="message">'
                           f'{message_html(f.message)}</td><td class="who">{who(f.submissions)}</td></tr>'
                           for f in s.failures)
            section.append('<table class="failures"><tr><th>students</th><th>first failure, as the first of them '
                           f"saw it</th><th>who</th></tr>{rows}</table>")
        section.append("</section>")
        parts.append("".join(section))
    return parts


def render(run: GradingRun, stats: list[QuestionStats], charts: list[str],
           changes: list[regrade.Change] | None = None) -> str:
    """The report page, what the class got wrong first (after what changed since an earlier run, in a
    regrade); every student-derived string is escaped."""
    e = html.escape
    attention = [s for s in run.submissions if s.needs_attention]
    parts = [f'<p id="run-date">Grading run of {e(run.date)}.</p>']
    if run.notices:
        parts.append('<ul id="notices">' + "".join(f'<li class="notice">{e(n)}</li>' for n in run.notices) + "</ul>")
    if changes is not None:
        parts.append(regrade.html_section(changes))
    parts.append(summary(run))
    parts += failures_section(stats)

    parts.append("<h2>Scores and pass rates</h2>")
    parts.append('<p id="pass-rate-definition">A question\'s <strong>pass rate</strong> is the fraction of graded '
                 "submissions (grading status starting with “Completed”) that earned full marks on it. "
                 "Blank submissions and those that failed to grade count in none of the charts or tables; they "
                 "are listed below.</p>")
    parts.extend(charts or ['<p id="no-charts">No graded submissions, so there are no charts.</p>'])
    rows = "".join(f'<tr class="question-row" data-question="{e(s.question)}"><td>{e(s.question)}</td>'
                   f'<td>{fmt(s.points)}</td><td class="full-marks">{s.full_marks}</td><td class="graded">{s.graded}</td>'
                   f'<td class="pass-rate">{"–" if s.pass_rate is None else f"{100 * s.pass_rate:.0f}%"}</td>'
                   f'<td class="mean">{"–" if s.mean is None else f"{s.mean:.2f}"}</td></tr>' for s in stats)
    parts.append('<table id="questions"><tr><th>question</th><th>points</th><th>full marks</th><th>graded</th>'
                 f"<th>pass rate</th><th>mean score</th></tr>{rows}</table>")

    parts.append("<h2>Blank, not graded, graded with problems, or flagged</h2>")
    if attention:
        head = ("<th>submission</th><th>grading status</th>" + ("<th>integrity</th>" if run.has_integrity else "")
                + "<th>points</th>")
        rows = "".join(f'<tr class="attention" data-file="{e(s.file)}"><td class="file">{s.label_html}</td>'
                       f'<td class="status">{e(shorten(s.status))}</td>'
                       + (f'<td class="integrity">{e(shorten(s.integrity))}</td>' if run.has_integrity else "")
                       + f'<td class="total">{fmt(s.total)}</td></tr>' for s in attention)
        parts.append(f'<table id="attention"><tr>{head}</tr>{rows}</table>')
    else:
        parts.append('<p id="attention-none">None: every submission graded without problems.</p>')

    parts.append("<h2>Points</h2>")
    rows = "".join(f'<tr class="points-row" data-question="{e(q)}"><td>{e(q)}</td><td class="points">'
                   f"{fmt(run.points.get(q))}</td></tr>" for q in run.questions)
    parts.append(f'<table id="points"><tr><th>question</th><th>points</th></tr>{rows}'
                 f'<tr><th>total</th><th id="points-total">{fmt(run.total_points)}</th></tr></table>')
    return PAGE.format(body="\n".join(parts))


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Backpropagation homework: grading report</title>
<style>
body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; color: #222;
       overflow-wrap: break-word; }}
/* On a narrow screen a table scrolls on its own rather than widening the page. */
table {{ border-collapse: collapse; margin: 0.5em 0 1em; display: block; max-width: 100%; overflow-x: auto; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }}
td.count, td.points, td.full-marks, td.graded, td.pass-rate, td.mean, td.total {{ text-align: right; }}
/* Every failure table alike: the count narrow, the message wide, who hit it beside. */
table.failures {{ display: table; width: 100%; table-layout: fixed; }}
table.failures th:first-child {{ width: 5.5em; }}
table.failures th:nth-child(2) {{ width: 60%; }}
@media (max-width: 40em) {{ table.failures {{ table-layout: auto; }} table.failures th {{ width: auto; }} }}
td.who {{ font-size: 0.9em; }}
td.message, td.who {{ word-break: break-word; }}
h3 {{ font-size: 1.05em; margin: 1.2em 0 0.3em; }}
code {{ white-space: pre-wrap; word-break: break-word; background: #f3f3f3; padding: 0 0.2em; border-radius: 3px; }}
#notices {{ background: #fff3cd; border: 1px solid #e0c36a; padding: 0.5em 2em; }}
figure {{ margin: 1em 0; }}
img {{ max-width: 100%; }}
</style>
</head>
<body>
<h1>Backpropagation homework: grading report</h1>
{body}
</body>
</html>
"""


def build_report(folder: Path) -> tuple[Path, GradingRun]:
    """Write report.html and the charts into the folder; return the page's path and what was read."""
    run = load_run(folder)
    stats = question_stats(run)
    totals = [s.total for s in run.graded if s.total is not None]
    charts = []
    for name in (HISTOGRAM, PASS_RATES):
        (folder / name).unlink(missing_ok=True)  # no stale chart from an earlier run
    if totals:
        plot_histogram(totals, run.total_points, folder / HISTOGRAM)
        charts.append(embedded(folder / HISTOGRAM, "score-histogram", "Histogram of total scores"))
    if run.graded and stats:
        plot_pass_rates(stats, folder / PASS_RATES)
        charts.append(embedded(folder / PASS_RATES, "pass-rates", "Pass rate per question"))
    page = folder / REPORT
    page.write_text(render(run, stats, charts, regrade.read_changes(folder)), encoding="utf-8")
    return page, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grades", nargs="?", type=Path,
                        help="grading run folder (default: where the last make grade wrote, else grades)")
    args = parser.parse_args(argv)
    folder = args.grades or last_run() or DEFAULT_OUT
    if not folder.is_dir():
        remembered = "" if args.grades else " (where the last make grade wrote)"
        print(f"error: no grading run folder {folder}{remembered}: run `make grade` first, or give GRADES=<folder>.",
              file=sys.stderr)
        return 2
    page, run = build_report(folder)
    for notice in run.notices:
        print(f"note: {notice}", file=sys.stderr)
    print(f"report of the grading run in {folder}: {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
