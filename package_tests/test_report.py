"""The instructor report: built from a fixture grading run, and from empty and broken ones. It opens
with what the class got wrong and who hit each failure; blank and ungraded submissions are counted
apart from the score statistics."""

import base64
import csv
import json
import re
import shutil
import statistics
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from backprop_hw import report, results

FIXTURE = Path(__file__).parent / "fixtures" / "grading_run"
QUESTIONS = ("q1.1", "q1.2", "q1.3", "q2.1", "q2.2")
HOSTILE = ("<script>", '<img src="https://evil', '<a href="https://evil')


class Page(HTMLParser):
    """The report's element texts by id (an <img>'s src), table rows by class, and every src/href."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.by_id: dict[str, str] = {}
        self.rows: dict[str, list[dict[str, str]]] = {}  # a row's attributes and its cells' texts by class
        self.references: list[str] = []
        self.tags: set[str] = set()
        self._open: list[tuple[dict[str, str], list[str]]] = []
        self._row: dict[str, str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self.tags.add(tag)
        self.references += [attributes[name] for name in ("src", "href") if name in attributes]
        if tag in ("img", "meta"):
            if "id" in attributes:
                self.by_id[attributes["id"]] = attributes.get("src", "")
            return
        if tag == "tr":
            self._row = dict(attributes)
        self._open.append((attributes, []))

    def handle_endtag(self, tag: str) -> None:
        attributes, parts = self._open.pop()
        text = "".join(parts)
        if self._open:
            self._open[-1][1].append(text)
        if "id" in attributes:
            self.by_id[attributes["id"]] = text
        if tag == "td" and self._row is not None and "class" in attributes:
            self._row[attributes["class"]] = text
        if tag == "tr" and self._row is not None:
            if "class" in self._row:
                self.rows.setdefault(self._row["class"], []).append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][1].append(data)


def build(folder: Path) -> tuple[str, Page]:
    """Run the report as `make report` does; return the page's text and its parse."""
    assert report.main([str(folder)]) == 0
    text = (folder / report.REPORT).read_text(encoding="utf-8")
    return text, Page(text)


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    """A writable copy of the fixture grading run."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "grades"))


def fixture_grades() -> results.GradesTable:
    return results.read_grades(FIXTURE / "grades.csv")


def graded_rows(grades: results.GradesTable) -> list[dict[str, str]]:
    return [row for row in grades.rows if row["grading_status"].startswith("Completed")]


def score(grades: results.GradesTable, row: dict[str, str], question: str) -> float:
    return float(row[grades.score_columns[question]])


def section(text: str, question: str) -> str:
    return re.search(rf'<section class="question" id="failures-{re.escape(question)}".*?</section>', text, re.S)[0]


def test_charts_are_pngs_of_reasonable_size_and_embedded(run: Path) -> None:
    _, page = build(run)
    for name, element_id in ((report.HISTOGRAM, "score-histogram"), (report.PASS_RATES, "pass-rates")):
        png = run / name
        data = png.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert 5_000 < len(data) < 300_000, f"{name} is {len(data)} bytes"
        with Image.open(png) as image:
            image.verify()
        with Image.open(png) as image:
            assert 400 <= image.width <= 1600 and 200 <= image.height <= 1200
        assert page.by_id[element_id] == "data:image/png;base64," + base64.b64encode(data).decode()


def test_the_page_opens_with_what_the_class_got_wrong(run: Path) -> None:
    text, _ = build(run)
    order = [text.index(marker) for marker in ('id="summary"', 'id="failures"', 'id="failures-q1.1"',
                                               'id="failures-q2.2"', "<figure>", 'id="questions"', 'id="attention"',
                                               'id="points"')]
    assert order == sorted(order)


def test_counts_in_the_page_match_the_csv(run: Path) -> None:
    _, page = build(run)
    grades = fixture_grades()
    graded = graded_rows(grades)
    assert page.by_id["n-submissions"] == str(len(grades.rows))
    assert page.by_id["n-graded"] == str(len(graded))
    assert page.by_id["points-total"] == "22"
    totals = [float(row["total (22)"]) for row in graded]
    assert float(page.by_id["mean-total"]) == pytest.approx(statistics.fmean(totals), abs=0.005)
    assert float(page.by_id["median-total"]) == statistics.median(totals)

    points = {row["data-question"]: row["points"] for row in page.rows["points-row"]}
    assert points == {q: f"{grades.points[q]:g}" for q in QUESTIONS}
    table = {row["data-question"]: row for row in page.rows["question-row"]}
    assert set(table) == set(QUESTIONS)
    for question in QUESTIONS:
        full = sum(score(grades, row, question) == grades.points[question] for row in graded)
        assert table[question]["full-marks"] == str(full)
        assert table[question]["graded"] == str(len(graded))
        assert table[question]["pass-rate"] == f"{100 * full / len(graded):.0f}%"


def test_blank_and_ungraded_submissions_are_counted_apart_from_the_scores(run: Path) -> None:
    text, page = build(run)
    grades = fixture_grades()
    blank = [row["file"] for row in grades.rows if row["grading_status"].startswith("Blank")]
    assert blank == ["nina.ipynb"]
    assert page.by_id["n-blank"] == "1"
    assert int(page.by_id["n-failed"]) == len(grades.rows) - len(graded_rows(grades)) - 1
    graded = [float(row["total (22)"]) for row in graded_rows(grades)]
    every_score = [float(row["total (22)"]) for row in grades.rows if row["total (22)"]]
    assert len(every_score) > len(graded)
    assert float(page.by_id["mean-total"]) == pytest.approx(statistics.fmean(graded), abs=0.005)
    assert f"Total points of the {len(graded)} graded submissions (blank and ungraded ones left out)" in text
    assert "nina.ipynb" not in "".join(section(text, question) for question in QUESTIONS)


def test_every_question_has_its_failures_counted(run: Path) -> None:
    text, _ = build(run)
    grades = fixture_grades()
    graded = graded_rows(grades)
    for question in QUESTIONS:
        lost = sum(score(grades, row, question) < grades.points[question] for row in graded)
        assert f'<span class="lost">{lost}</span>' in section(text, question)
        counts = [int(count) for count in re.findall(r'<td class="count">(\d+)</td>', section(text, question))]
        assert sum(counts) == lost, question  # one first failure per student who lost points


def test_each_failure_names_who_hit_it(run: Path) -> None:
    _, page = build(run)
    who = {row["message"].split(" ")[0]: row["who"] for row in page.rows["failure"]}
    assert who["h3"] == "bob.ipynb, leo.ipynb"
    assert who["dldf2"] == "Carol Ng (carol.zip), Pat Doe; Sam Roe (submission_1234567)"
    assert who["all_dl_dweights[4]"] == "erin.ipynb, Pat Doe; Sam Roe (submission_1234567)"
    assert who["backward_pass"] == "grace.ipynb"
    assert all(row["who"] for row in page.rows["failure"])


def test_a_mistake_made_by_two_students_groups_together(run: Path) -> None:
    text, _ = build(run)
    q11 = section(text, "q1.1")  # bob and leo: different numbers
    assert '<td class="count">2</td><td class="message"><code>h3</code> = 0.753523, but the expected value is' in q11
    q12 = section(text, "q1.2")
    assert '<td class="count">2</td><td class="message"><code>dldf2</code> = 1.683058 has the wrong sign' in q12
    assert re.findall(r'<td class="count">(\d+)</td>', section(text, "q2.2")) == ["2", "1"]


def test_every_distinct_first_failure_is_listed_with_its_code_as_code(run: Path) -> None:
    """Eight students, each with another first failure of q2.2 (one reading the global `K`, the rarest
    here): each has a row of its own, commonest first; no message shows a backtick."""
    rows = (run / "grades.csv").read_text().splitlines()
    grace = next(row for row in rows if row.startswith("grace.ipynb,"))
    failures = [f"`all_dl_dweights[{layer}]` has the wrong sign (on the notebook's network)." for layer in range(7)]
    failures.append("`backward_pass` reads the notebook's global `K`: take the depth from its arguments.")
    template = (run / "results" / "grace.ipynb" / "results.json").read_text()
    for number, failure in enumerate(failures):
        name = f"student{number}.ipynb"
        rows.append(grace.replace("grace.ipynb", name))
        (run / "results" / name).mkdir()
        data = json.loads(template)
        for test in data["tests"]:
            if test["name"] == "q2.2":
                test["output"] = f"q2.2: 0 of 6 points\n❌ check (2 points): gradients\n     {failure}"
        (run / "results" / name / "results.json").write_text(json.dumps(data))
    (run / "grades.csv").write_text("\n".join(rows) + "\n")
    text, page = build(run)
    q22 = section(text, "q2.2")
    counts = [int(count) for count in re.findall(r'<td class="count">(\d+)</td>', q22)]
    assert counts == sorted(counts, reverse=True) and "other messages" not in q22
    shown = [row["message"] for row in page.rows["failure"]]
    assert "backward_pass reads the notebook's global K: take the depth from its arguments." in shown
    assert "<code>backward_pass</code> reads the notebook&#x27;s global <code>K</code>" in q22
    assert not any("`" in message for message in shown)


def test_many_who_hit_a_failure_fold_away_past_a_dozen(run: Path) -> None:
    rows = (run / "grades.csv").read_text().splitlines()
    bob = next(row for row in rows if row.startswith("bob.ipynb,"))
    for number in range(14):
        rows.append(bob.replace("bob.ipynb", f"bob{number:02d}.ipynb"))
        shutil.copytree(run / "results" / "bob.ipynb", run / "results" / f"bob{number:02d}.ipynb")
    (run / "grades.csv").write_text("\n".join(rows) + "\n")
    text, _ = build(run)
    q11 = section(text, "q1.1")
    assert '<td class="count">16</td>' in q11
    who = re.search(r'<td class="who">(.*?)<details><summary>and 4 more</summary>(.*?)</details>', q11)
    shown, folded = who.groups()
    assert len(shown.split(", ")) == report.LISTED_WHO and len(folded.split(", ")) == 4


def test_failed_blank_and_flagged_submissions_are_listed_with_their_status(run: Path) -> None:
    _, page = build(run)
    grades = fixture_grades()
    listed = {row["data-file"]: row for row in page.rows["attention"]}
    expected = {row["file"]: row for row in grades.rows if row["grading_status"] != "Completed" or row["integrity"]}
    assert {"mia.ipynb", "henry.zip", "nina.ipynb", "oscar.ipynb", "+plus.ipynb"} <= set(expected)
    assert set(listed) == set(expected)
    for name, row in expected.items():
        assert listed[name]["status"] == row["grading_status"]
    assert listed["+plus.ipynb"]["file"] == "=Zed Formula (+plus.ipynb)"  # as written, not as its guarded cell
    assert listed["oscar.ipynb"]["total"] == "–"  # a grader error has no score, not a zero


def test_a_grader_error_is_loud(run: Path) -> None:
    _, page = build(run)
    assert ("The grader itself failed on 1 submission(s), which have no score: grade them again (oscar.ipynb)."
            in page.by_id["notices"])


def test_the_summary_counts_each_submission_once(run: Path) -> None:
    _, page = build(run)
    grades = fixture_grades()
    graded = graded_rows(grades)
    troubled = [row for row in graded if row["grading_status"] != "Completed" or row["integrity"]]  # mia, +plus
    counts = {name: int(page.by_id[f"n-{name}"]) for name in ("submissions", "graded", "clean", "troubled", "blank",
                                                               "failed")}
    assert counts == {"submissions": len(grades.rows), "graded": len(graded), "clean": len(graded) - len(troubled),
                      "troubled": len(troubled), "blank": 1, "failed": len(grades.rows) - len(graded) - 1}
    assert counts["troubled"] + counts["blank"] + counts["failed"] == len(page.rows["attention"])


def test_the_page_needs_no_network_and_escapes_student_text(run: Path) -> None:
    text, page = build(run)
    assert not [ref for ref in page.references if re.match(r"\s*(https?:)?//", ref, re.I)]
    assert "@import" not in text and "url(" not in text
    assert page.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "ul", "li", "span",
                         "table", "tr", "th", "td", "code", "div", "em", "strong", "section", "figure", "img",
                         "figcaption", "a", "details", "summary", "bdi"}
    for snippet in HOSTILE:
        assert snippet not in text
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in text
    assert "&lt;img src=&quot;https://evil.example/x.png&quot;" in text


def test_the_page_is_deterministic_apart_from_the_date(run: Path) -> None:
    first, _ = build(run)
    charts = [(run / name).read_bytes() for name in (report.HISTOGRAM, report.PASS_RATES)]
    (run / "grades.csv").touch()
    second, _ = build(run)
    assert [(run / name).read_bytes() for name in (report.HISTOGRAM, report.PASS_RATES)] == charts
    undated = [re.sub(r'<p id="run-date">.*?</p>', "", page) for page in (first, second)]
    assert undated[0] == undated[1]


def test_the_date_comes_from_a_timestamp_file_if_present(run: Path) -> None:
    (run / report.TIMESTAMP_FILE).write_text("2026-11-27 18:04 UTC\n")
    _, page = build(run)
    assert page.by_id["run-date"] == "Grading run of 2026-11-27 18:04 UTC."


def test_flags_and_unknown_columns(run: Path) -> None:
    with (run / "grades.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    rows[0].append("late")
    for row in rows[1:]:
        if row[0] == "bob.ipynb":
            row[rows[0].index("integrity")] = "output edited <b>by hand</b>"
        row.append("no")
    with (run / "grades.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    text, page = build(run)
    listed = {row["data-file"]: row for row in page.rows["attention"]}
    assert listed["bob.ipynb"]["integrity"] == "output edited <b>by hand</b>"
    assert page.by_id["n-troubled"] == "3"  # bob, flagged but graded cleanly, mia and +plus; counted once each
    assert "output edited &lt;b&gt;by hand&lt;/b&gt;" in text
    assert "Columns without points were ignored: late." in page.by_id["notices"]
    assert {row["data-question"] for row in page.rows["question-row"]} == set(QUESTIONS)


def test_a_missing_folder_is_refused_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert report.main([str(tmp_path / "gardes")]) == 2
    assert "no grading run folder" in capsys.readouterr().err
    assert not (tmp_path / "gardes").exists()


def test_without_a_folder_it_reports_the_last_grading_run(run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(results, "LAST_RUN", tmp_path / "build" / "last-grading-run.json")
    results.remember_last_run(run)
    assert report.main([]) == 0
    assert (run / report.REPORT).is_file()
    assert f"report of the grading run in {run}" in capsys.readouterr().out
    shutil.rmtree(run)
    assert report.main([]) == 2
    assert f"no grading run folder {run} (where the last make grade wrote)" in capsys.readouterr().err


def test_an_empty_run_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "grades"
    folder.mkdir()
    text, page = build(folder)
    assert "No grades.csv in this folder" in text
    assert page.by_id["n-submissions"] == "0"
    assert "no-charts" in page.by_id
    assert not (folder / report.HISTOGRAM).exists()


def test_a_run_without_submissions_says_so(run: Path) -> None:
    build(run)
    lines = (run / "grades.csv").read_text().splitlines()
    (run / "grades.csv").write_text(lines[0] + "\n")
    text, page = build(run)  # the earlier report's charts must not survive
    assert "lists no submissions" in text
    assert page.by_id["n-graded"] == "0"
    assert not (run / report.HISTOGRAM).exists() and not (run / report.PASS_RATES).exists()
    assert {row["data-question"] for row in page.rows["points-row"]} == set(QUESTIONS)


BROKEN_CSV = {
    "empty csv": (b"", "has no `file` column"),
    "no file column": (b"name,score\nalice,3\n", "has no `file` column"),
    "binary csv": (b"\x00\xff\xfe" * 100, "has no `file` column"),
    "no points in the columns": (b"file,q1.1,grading_status\nalice.ipynb,4,Completed\n",
                                 "no question columns with their points"),
}


@pytest.mark.parametrize("damage", BROKEN_CSV)
def test_a_broken_csv_gives_a_page_that_says_so(run: Path, damage: str) -> None:
    data, said = BROKEN_CSV[damage]
    (run / "grades.csv").write_bytes(data)
    _, page = build(run)
    assert said in page.by_id["notices"]
    assert not (run / report.HISTOGRAM).exists()


@pytest.mark.parametrize("damage", ["corrupt", "missing", "no folder", "not a results file"])
def test_broken_results_give_a_page_that_says_so(run: Path, damage: str) -> None:
    bob = run / "results" / "bob.ipynb" / "results.json"
    if damage == "corrupt":
        bob.write_text('{"tests": [')
    elif damage == "missing":
        bob.unlink()
    elif damage == "no folder":
        shutil.rmtree(bob.parent)
    else:
        bob.write_text('["tests"]')
    text, page = build(run)
    assert "bob.ipynb: results.json" in page.by_id["notices"]
    assert f'<td class="message">{report.NO_RESULTS}</td>' in section(text, "q1.1")


def test_odd_results_and_scores_are_tolerated(run: Path) -> None:
    (run / "results" / "bob.ipynb" / "results.json").write_text(
        '{"tests": [1, {"name": "q1.1"}, {"name": "q1.1", "output": null}]}')
    csv_path = run / "grades.csv"
    csv_path.write_text("\ufeff" + csv_path.read_text().replace("carol@example.edu,4,2,", "carol@example.edu,4,abc,"))
    text, page = build(run)
    assert f'<td class="message">{report.NO_MESSAGE}</td>' in section(text, "q1.1")
    assert "Non-numeric scores, counted as short of full marks: carol.zip (q1.2)." in page.by_id["notices"]
    assert "<code>dldf2</code> = 1.683058 has the wrong sign" in section(text, "q1.2")


def test_failure_messages_are_read_from_otter_output() -> None:
    output = ("q1.1 results:\n    q1.1 - 1 result:\n        ✅ Test case passed\n\n    q1.1 - 2 result:\n"
              "        ❌ Test case failed\n        Error at line 18 in test q1.1:\n            check(x)\n"
              "        AssertionError: `h3` = 0.753523, but the expected value is 0.657421.\n\n"
              "    q1.1 - 3 result:\n        ❌ Test case failed\n        Error at line 3 in test q1.1:\n"
              "              x[2]\n        IndexError: index 2 is out of bounds\n        for axis 0 with size 2")
    assert report.failure_messages(output) == [
        "`h3` = 0.753523, but the expected value is 0.657421.",
        "IndexError: index 2 is out of bounds for axis 0 with size 2"]
    assert report.normalise("`all_f[1]` has 6 of 6 entries wrong (on K=1, q1.1): -2.5e-3 f0 is 0.657421.") == \
        "`all_f[#]` has # of # entries wrong (on K=#, q1.1): # f0 is #."


def test_names_show_in_one_direction_and_shared_identities_open_the_page(run: Path) -> None:
    """A right-to-left override in one student's name (as an older grades.csv or a hand edit may hold)
    turns no other label around: it is taken out, and every name and file is isolated; two rows
    with one SID are named at the top of the page."""
    grades = (run / "grades.csv").read_text(encoding="utf-8")
    grades = grades.replace("Carol Ng,2002", "Carol \u202egN,2002")
    grades = grades.replace("bob.ipynb,,,", "bob.ipynb,Bob,2002,", 1)
    (run / "grades.csv").write_text(grades, encoding="utf-8")
    text, page = build(run)
    assert "\u202e" not in text
    q12 = section(text, "q1.2")
    assert "<bdi>Carol gN</bdi> (<bdi>carol.zip</bdi>)" in q12
    assert re.search(r'<td class="who">(<bdi>[^<]*</bdi>( \(<bdi>[^<]*</bdi>\))?(, )?)+</td>', q12), q12
    assert ("Submissions that share an SID or an e-mail address with another (the integrity column flags them too): "
            "Bob (bob.ipynb) shares SID 2002 with carol.zip; Carol gN (carol.zip) shares SID 2002 with bob.ipynb."
            in page.by_id["notices"])
