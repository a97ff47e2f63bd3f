"""Grading integrity: attacks earn no more than their honest twins, leak nothing, and every
submission still gets a valid result, through `make grade` and through the Gradescope entry point.
"""

import os
import re
import socket
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from attacks import (ATTACKS, BATCH_ATTACKS, HIDDEN_PHASE, INSTRUCTOR_SECRET, MESSAGE_CHOICE_SCORES, NETWORK_REFUSED,
                     TABLE_SCORES, TWIN_SCORES, UNFLAGGED, lookup_table, write_attack, write_large_zip, write_link_folder, write_message_choice,
                     write_names_of_its_own, write_network_probe, write_otter_log_zip, write_relay, write_slow_part_1, write_stall, write_table_lookup,
                     write_twin)
from backprop_hw.paths import SOLUTIONS_NOTEBOOK
from backprop_hw.results import RESULTS_DIR
from built import TOY, TOY_OTHER, scores
from conftest import POINTS, QUESTIONS
from backprop_hw import sandbox
from graders import Graded, autograder_with, grade_fast, grade_gradescope
from corpus.answers import BASELINE
from corpus.scenarios import public_values
from hidden_values import hidden_messages, long_numbers, recorded_draws
from in_process import InProcess, case_results, notebook_cells

pytestmark = pytest.mark.sandbox

HIDDEN_ONLY_NAMES = ("test_forward_every_step_follows", "test_exact_at_a_kink", "test_inputs_unchanged")
PICKLE = ".OTTER_LOG pickle in an export zip"
LINK = "a folder whose notebook is a link to the solutions"
LARGE_ZIP = "an export zip of 2.6 MB that unpacks to 2.6 GB"
NETWORK = "sockets of every family, a connection to a listening server and an io_uring"
SPECIAL = (PICKLE, LINK, LARGE_ZIP, NETWORK)
ALL_ATTACKS = [*ATTACKS, *SPECIAL]
# Attacks on notebooks of their own shape, beside twins of that shape.
RELAY = "answers relayed between questions checked in reverse order"
RELAY_TWIN = "the relay's honest twin: no work in q1.1 and q1.2, checks in reverse order"
RELAY_TWIN_SCORES = scores("q1.1", "q1.2")
STALL = "a notebook that answers the grader for itself, then stops reading while a 4 MB cell is sent"
CHOICES = ("hidden messages' details chosen by the code, one way", "hidden messages' details chosen by the code, another")
# The batch is an export: its submission_metadata.yml, the instructor's, names the twin (with a
# right-to-left override in the name) and its copy, with one SID; a student's folder holds one too.
NAMES = "a student's folder whose own submission_metadata.yml names it and a classmate, and twenty empty folders"
TWIN_AGAIN = "the honest twin again, under the same SID"
INSTRUCTORS_METADATA = """honest-twin.ipynb:
  :submitters:
  - :name: "Ada \\u202eniwT"
    :sid: '9001'
    :email: ada@example.edu
{again}:
  :submitters:
  - :name: Ada Again
    :sid: '9001'
    :email: ada.again@example.edu
"""
TABLE = "answers looked up in a table of every hidden value of three earlier gradings, answers included"
TABLE_TWIN = "the table's honest twin: the same lookups in a table of the public values"
SHAPED = [RELAY, RELAY_TWIN, *CHOICES, TABLE, TABLE_TWIN]
# Limits short enough that a notebook reaches them in seconds: 3 s a cell (the notebook's overall
# limit leaves each question's checks time for the slow Part 1's reruns, on a loaded machine too).
SHORT_LIMITS = {"cell_seconds": 3, "wall_seconds": 120}
# The attacks on what Gradescope's path does its own way; the rest meet the same code as in make grade.
GRADESCOPE_ATTACKS = ["write results.json and modules of its own, then kill the grader",
                      "forge answers on the grading pipe", "an answer nested 100,000 levels deep",
                      "a process that outlives grading and forges the results",
                      "read the submission metadata and the hidden tests, and show them", PICKLE, NETWORK]


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@pytest.fixture(scope="module")
def listener() -> socket.socket:
    """A server on 127.0.0.1 that the network attack tries to reach (as it would one elsewhere)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        yield server


@pytest.fixture(scope="module")
def tables() -> dict[str, dict]:
    """For TABLE, every value the hidden cases drew, answers included, in three gradings of the
    baseline run in this process (more than a submission could ever record and send on), with the
    public values; for its twin, the public values alone (the tests handed out hold them)."""
    student = InProcess.running(notebook_cells(BASELINE))
    with recorded_draws() as drawn:
        for _ in range(3):
            for question in QUESTIONS:
                case_results(student, question, hidden=True)
    public_toy = [TOY, TOY_OTHER]
    public_networks = [public_values("q2.1"), public_values("q2.2")]
    return {TABLE: lookup_table(public_toy + [v for v in drawn if "beta0" in v],
                                public_networks + [v for v in drawn if "weights" in v]),
            TABLE_TWIN: lookup_table(public_toy, public_networks)}


def write_submissions(folder: Path, names: list[str], marker: Path, port: int,
                      tables: dict[str, dict]) -> dict[str, Path]:
    """Every named attack (and the twin) as a submission in `folder`: {name: path}."""
    attacks = ATTACKS | BATCH_ATTACKS
    paths = {"honest twin": write_twin(folder / "honest-twin.ipynb")}
    for name in names:
        target = folder / slug(name)
        if name in attacks:
            paths[name] = write_attack(*attacks[name], target.with_suffix(".ipynb"))
        elif name == PICKLE:
            paths[name] = write_otter_log_zip(target.with_suffix(".zip"), marker)
        elif name == LINK:
            paths[name] = write_link_folder(target)
        elif name in (RELAY, RELAY_TWIN):
            paths[name] = write_relay(target.with_suffix(".ipynb"), relay=name == RELAY)
        elif name == STALL:
            paths[name] = write_stall(target.with_suffix(".ipynb"))
        elif name == NETWORK:
            paths[name] = write_network_probe(target.with_suffix(".ipynb"), port)
        elif name in tables:
            paths[name] = write_table_lookup(target.with_suffix(".ipynb"), tables[name])
        elif name == NAMES:
            paths[name] = write_names_of_its_own(target, paths["honest twin"].name)
        elif name == TWIN_AGAIN:
            paths[name] = write_twin(target.with_suffix(".ipynb"))
        elif name in CHOICES:
            paths[name] = write_message_choice(target.with_suffix(".ipynb"), CHOICES.index(name))
        else:
            paths[name] = write_large_zip(target)
    return paths


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory, listener: socket.socket, tables: dict) -> dict[str, Graded]:
    """The twin and every attack, graded by `make grade` with a secret in the instructor's environment."""
    base = tmp_path_factory.mktemp("integrity-batch")
    paths = write_submissions(base / "submissions", [*ALL_ATTACKS, *BATCH_ATTACKS, *SHAPED, NAMES, TWIN_AGAIN],
                              base / "unpickled-marker", listener.getsockname()[1], tables)
    (base / "submissions" / "submission_metadata.yml").write_text(INSTRUCTORS_METADATA.format(again=paths[TWIN_AGAIN].name))
    mode = stat.S_IMODE(os.stat(SOLUTIONS_NOTEBOOK).st_mode)
    os.environ["INSTRUCTOR_TOKEN"] = INSTRUCTOR_SECRET
    try:
        results = grade_fast(base / "submissions", base / "grades")
    finally:
        del os.environ["INSTRUCTOR_TOKEN"]
    assert sorted(results) == sorted(path.name for path in paths.values())  # a row per entry, and no other
    assert stat.S_IMODE(os.stat(SOLUTIONS_NOTEBOOK).st_mode) == mode, "the link's target was changed"
    assert not (base / "unpickled-marker").exists(), "a submitted pickle was loaded"
    graded = {name: results[path.name] for name, path in paths.items()}
    for name, path in paths.items():
        graded[name].row["log"] = (base / "grades" / RESULTS_DIR / path.name / "log.txt").read_text()
    return graded


@pytest.fixture(scope="module")
def gradescope(tmp_path_factory: pytest.TempPathFactory, listener: socket.socket, tables: dict) -> dict[str, Graded]:
    """The twin and the attacks on what Gradescope's path does its own way (its files, its results,
    its processes, its notebook), through the zip's entry point, two at a time; /autograder is left
    world-writable, the worst mode Gradescope could give it. The others meet the same trusted code
    as in `make grade`."""
    base = tmp_path_factory.mktemp("integrity-gradescope")
    paths = write_submissions(base / "submissions", [*GRADESCOPE_ATTACKS, *(name for name in SHAPED if name != TABLE_TWIN), STALL], base / "unpickled-marker",
                              listener.getsockname()[1], tables)  # the table's twin: make grade's batch only
    # The stall ends at the wall-clock limit of a cell, which is 30 s on Gradescope: here, 3 s.
    short = autograder_with({"cell_seconds": SHORT_LIMITS["cell_seconds"],
                             "gradescope_timeout": SHORT_LIMITS["wall_seconds"]}, base / "short-limits.zip")

    def grade(name: str) -> Graded:
        return grade_gradescope(paths[name], mode=0o777, **({"autograder": short} if name == STALL else {}))

    with ThreadPoolExecutor(max_workers=2) as pool:
        graded = dict(zip(paths, pool.map(grade, paths)))
    assert not (base / "unpickled-marker").exists(), "a submitted pickle was loaded"
    return graded


def test_honest_twin_scores_as_designed(batch: dict[str, Graded], gradescope: dict[str, Graded]) -> None:
    for graded in (batch, gradescope):
        assert graded["honest twin"].scores == TWIN_SCORES
        assert "flag:" not in graded["honest twin"].notes


@pytest.mark.parametrize("attack", ALL_ATTACKS + list(BATCH_ATTACKS))
def test_attack_earns_no_more_than_its_twin(batch: dict[str, Graded], gradescope: dict[str, Graded], attack: str) -> None:
    for graded in (batch, gradescope) if attack in gradescope else (batch,):
        attacked = graded[attack].scores
        assert set(attacked) == set(QUESTIONS) and all(attacked[q] <= TWIN_SCORES[q] for q in QUESTIONS), attacked


@pytest.mark.parametrize("attack", [attack for attack in ALL_ATTACKS if attack not in UNFLAGGED])
def test_attack_is_flagged_or_refused(batch: dict[str, Graded], gradescope: dict[str, Graded], attack: str) -> None:
    for graded in (batch, gradescope) if attack in gradescope else (batch,):
        result = graded[attack]
        assert "flag:" in result.notes or "not graded" in result.visible.lower(), result.notes


@pytest.mark.parametrize("attack", ALL_ATTACKS + list(BATCH_ATTACKS))
def test_attack_leaks_no_hidden_test(batch: dict[str, Graded], gradescope: dict[str, Graded], attack: str) -> None:
    """No hidden case's name, no number in a hidden message (the hidden values are drawn at grading
    time: a message is the only way one could show), and nothing printed during the hidden cases in the log."""
    for graded in (batch, gradescope) if attack in gradescope else (batch,):
        shown, log = graded[attack].visible, graded[attack].row.get("log", "")
        assert not any(name in shown + log for name in HIDDEN_ONLY_NAMES)
        assert not long_numbers(hidden_messages(shown)), hidden_messages(shown)
        assert HIDDEN_PHASE not in log


def test_no_hidden_number_in_error_names_shapes_or_lengths(batch: dict[str, Graded]) -> None:
    """The attack fails each hidden case with an error named, an array shaped, or a list as long as a
    number it computes from a hidden weight: graded again (here, in this process), on other networks,
    it reads the same text, with no number in it."""
    attack = "hidden data in error names, shapes and lengths"
    student = InProcess.running(notebook_cells({**BASELINE, "q2.2": ATTACKS[attack][1]}))
    again = [message for _, message in case_results(student, "q2.2", hidden=True).values()]
    shown = hidden_messages(batch[attack].output("q2.2"))
    assert "`backward_pass`" in shown and shown.splitlines() == again
    assert not re.findall(r"\d{2,}", shown), shown


def test_no_hidden_case_runs_before_the_public_ones(batch: dict[str, Graded]) -> None:
    attack = "a check in a comment runs hidden cases early, and a public message echoes what they gave"
    assert "stashed: nothing yet" in batch[attack].output("q2.1")
    assert batch["an early real check of a later question"].scores == TWIN_SCORES  # judges nothing early either


def test_crafted_answers_cannot_crash_the_grader(batch: dict[str, Graded], gradescope: dict[str, Graded]) -> None:
    for graded in (batch, gradescope):
        result = graded["an answer nested 100,000 levels deep"]
        assert result.scores == TWIN_SCORES, result.visible  # the hidden checks ran again in a fresh process
        assert "broke the grading protocol" in result.notes


def test_forged_reports_leave_no_trace_in_the_status(batch: dict[str, Graded], gradescope: dict[str, Graded]) -> None:
    for graded, attacks in ((batch, ("forge answers on the grading pipe",
                                     "patch the harness so that its reports say everything went fine")),
                            (gradescope, ("forge answers on the grading pipe",))):
        for attack in attacks:
            assert "FORGED" not in graded[attack].notes + graded[attack].row.get("grading_status", "")


def test_the_autograder_folder_stays_closed(gradescope: dict[str, Graded]) -> None:
    shown = gradescope["read the submission metadata and the hidden tests, and show them"].output("q2.1")
    assert "found: nothing readable" in shown and "A. Student" not in shown


def test_what_the_notebook_leaves_behind_cannot_stop_the_replay(batch: dict[str, Graded],
                                                                gradescope: dict[str, Graded]) -> None:
    for graded in (batch, gradescope):
        result = graded["write results.json and modules of its own, then kill the grader"]
        assert result.scores == TWIN_SCORES, result.visible  # a grade, not "Autograder failed"
        assert "replayed" in result.notes


def test_student_text_is_shown_printable_and_never_stops_the_batch(batch: dict[str, Graded]) -> None:
    result = batch["an error message that no file can hold, with terminal escapes"]
    shown = result.visible + result.row["log"] + result.row["grading_status"]
    assert "raised ValueError" in result.output("q2.1")
    assert "\x1b" not in shown and "\x07" not in shown and not re.search("[\ud800-\udfff]", shown)


def test_the_process_ending_in_a_hidden_case_is_told_apart_and_carries_no_number(batch: dict[str, Graded]) -> None:
    parameter = batch["an exit code that carries a hidden parameter"]
    assert "stopped during the hidden checks" in parameter.output("q1.3")
    code = r"exit code \d+|killed by signal \d+"  # a shell's 128 + N reads as signal N
    assert not re.search(code, parameter.visible)  # its number is the notebook's to choose
    assert re.search(code, parameter.row["grading_status"])  # the instructor still sees it
    called = batch["a function that ends the process when a hidden case calls it"]
    assert not called.row["grading_status"].startswith("Completed"), called.row
    assert "HarnessStopped" not in called.visible and "stopped during the hidden checks" in called.output("q2.2")


def test_cells_of_escapes_cost_the_grader_bounded_time(batch: dict[str, Graded]) -> None:
    result = batch["cells of shell escapes that would take IPython's transformer hours"]
    assert result.scores == TWIN_SCORES and "ran past" in result.row["grading_status"], result.row


def test_links_and_oversized_archives_are_refused(batch: dict[str, Graded]) -> None:
    assert "symbolic link" in batch[LINK].visible
    assert "too large" in batch[LARGE_ZIP].visible


def test_the_instructor_environment_never_reaches_the_sandbox(batch: dict[str, Graded]) -> None:
    result = batch["read the instructor's environment and memory"]
    assert "FOUND" in result.row["log"]  # the probe ran
    assert INSTRUCTOR_SECRET not in result.row["log"] + result.visible


def test_a_submission_is_limited_as_a_whole(batch: dict[str, Graded]) -> None:
    memory = batch["three processes that together use too much memory"]
    assert "ran out of memory" in memory.row["grading_status"], memory.row
    assert re.search(r"HOGS allocated=[0-2] ended=[1-3]", memory.row["log"]), memory.row["log"][-300:]
    cpu = float(re.search(r"CPU-SHARE ([\d.]+)", batch["busy processes that try to take every CPU"].row["log"])[1])
    assert cpu < 1.3, f"8 busy processes got {cpu:.2f} CPUs; one submission may use one"
    processes = int(re.search(r"PROCESSES (\d+)", batch["a fork bomb"].row["log"])[1])
    assert processes < 64


def test_hidden_case_outputs_show_no_test_source(gradescope: dict[str, Graded]) -> None:
    for graded in gradescope.values():
        assert "def test_" not in graded.visible and "REFERENCE_VALUES" not in graded.visible
        notes = next(t for t in graded.results["tests"] if t["name"].startswith("Grading notes"))
        assert notes["visibility"] == "hidden"
        assert "not graded" in graded.visible.lower() or (
            "no network: sockets but AF_UNIX refused (seccomp), as this platform gives no network namespace "
            "(unshare(CLONE_NEWNET) failed: Operation not permitted); nothing to do" in notes["output"])


def test_the_notebook_reaches_no_network(batch: dict[str, Graded], gradescope: dict[str, Graded],
                                         listener: socket.socket) -> None:
    """Every socket but AF_UNIX, and io_uring, is refused on both paths: on Gradescope by the seccomp
    filter alone (the container gives no network namespace), which the notes say held."""
    for graded in (batch, gradescope):
        assert NETWORK_REFUSED in graded[NETWORK].output("q2.1"), graded[NETWORK].output("q2.1")
    assert "no network: sockets but AF_UNIX refused (seccomp)" in gradescope[NETWORK].notes
    with pytest.raises(BlockingIOError):
        listener.accept()  # nobody ever connected


def test_answers_relayed_between_questions_checked_in_reverse_order_earn_nothing(
        batch: dict[str, Graded], gradescope: dict[str, Graded]) -> None:
    """The q1.1 and q1.2 cells look their answers up in a store that the q1.2 and q1.3 cells fill with
    the exact values the checks give them: judged in the questions' order, nothing is there yet."""
    for graded in (batch, gradescope):
        assert graded[RELAY_TWIN].scores == RELAY_TWIN_SCORES
        assert graded[RELAY].scores == RELAY_TWIN_SCORES, graded[RELAY].visible


def test_only_the_instructor_names_submitters(batch: dict[str, Graded]) -> None:
    """A student's folder that holds a submission_metadata.yml is one row like any other: graded as
    the folder it is, named by nobody, and its file changes no other row (the instructor's names the
    twin, without the right-to-left override, and flags the SID it gives two rows)."""
    twin, again, named = (batch[name].row for name in ("honest twin", TWIN_AGAIN, NAMES))
    assert (twin["name"], twin["sid"]) == ("Ada niwT", "9001") and twin["grading_status"] == "Completed"
    assert named["name"] == named["sid"] == named["email"] == "" and batch[NAMES].scores == TWIN_SCORES
    assert "submission_metadata.yml in it was not read" in named["grading_status"]
    assert twin["integrity"] == f"shares SID 9001 with {again['file']}" and again["integrity"].startswith("shares SID")
    assert not named["integrity"]


def test_a_table_of_earlier_gradings_earns_nothing_beyond_the_public_values(
        batch: dict[str, Graded], gradescope: dict[str, Graded], tables: dict[str, dict]) -> None:
    """Every question's hidden inputs are drawn anew at each grading, and apart from every other
    question's: a table of all that earlier gradings sent (their answers too), looked up by
    parameters and by network, is worth what a table of the public values is."""
    assert len(tables[TABLE]["forward"]) > len(tables[TABLE_TWIN]["forward"]) + 20
    assert batch[TABLE_TWIN].scores == TABLE_SCORES, batch[TABLE_TWIN].visible
    for graded in (batch, gradescope):
        assert graded[TABLE].scores == TABLE_SCORES, graded[TABLE].visible


def test_hidden_messages_carry_nothing_the_students_code_chose(batch: dict[str, Graded],
                                                              gradescope: dict[str, Graded]) -> None:
    """Two notebooks that, on hidden inputs only, change different given values, get different layers
    and entries wrong, and fail on different networks, read the same text."""
    for graded in (batch, gradescope):
        first, second = (graded[name] for name in CHOICES)
        assert first.scores == second.scores == MESSAGE_CHOICE_SCORES, first.visible
        assert first.visible == second.visible


def test_a_stalled_pipe_ends_at_the_wall_clock_limit(short_batch: dict[str, Graded],
                                                     gradescope: dict[str, Graded]) -> None:
    for graded in (short_batch, gradescope):
        result = graded[STALL]
        assert result.scores == TWIN_SCORES, result.visible  # the checks ran in a replay
        assert "wall-clock limit" in result.notes + result.row.get("grading_status", "")


@pytest.fixture(scope="module")
def short_batch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Graded]:
    """make grade with SHORT_LIMITS: the stall, and Part 1 in one cell that takes 1.5 s more beside
    the same notebook without it (the checks run that cell again 15 times: 22 s, each question's
    reruns from its own share of the time)."""
    base = tmp_path_factory.mktemp("short-limits")
    paths = {STALL: write_stall(base / "submissions" / "stall.ipynb"),
             "slow": write_slow_part_1(base / "submissions" / "slow.ipynb", 1.5),
             "quick": write_slow_part_1(base / "submissions" / "quick.ipynb", 0.0)}
    results = grade_fast(base / "submissions", base / "grades", sandbox.Limits(**SHORT_LIMITS))
    return {name: results[path.name] for name, path in paths.items()}


def test_an_honest_slow_cell_has_the_time_for_the_checks_running_it_again(short_batch: dict[str, Graded]) -> None:
    for name in ("slow", "quick"):
        assert short_batch[name].scores == POINTS, short_batch[name].visible
        assert short_batch[name].row["grading_status"].startswith("Completed"), short_batch[name].row
