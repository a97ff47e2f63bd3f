"""Reading a submission without trusting it (`backprop_hw/autograder/submission.py`): its one notebook,
from a folder or an export zip, refusing links, special files, trees nested too deep and archives
too large from their index alone, and ignoring what operating systems and editors add; pickles told
from otter's own log by their opcodes, never loaded; the notebook parsed as JSON; its code cells and
checks; the integrity flags, which no notebook of the homework's own raises.
"""

import json
import os
import pickle
import stat
import time
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest

from backprop_hw.autograder import submission
from backprop_hw.autograder.submission import (MAX_BYTES, SUSPICIOUS, Cell, SubmissionProblem, archive_members,
                                               check_calls, checkpoints, code_cells, find_notebook, read_notebook,
                                               regular_files, scan_for_tampering)
from backprop_hw.paths import EXAMPLES, SOLUTIONS_NOTEBOOK, STUDENT_NOTEBOOK
from conftest import QUESTIONS

ASSIGNMENT = "backpropagation"


def notebook(*sources: str, name: str | None = ASSIGNMENT, ignored: tuple[int, ...] = ()) -> nbformat.NotebookNode:
    """A notebook of code cells; the cells at `ignored` carry otter's `otter_ignore` tag."""
    cells = [nbformat.v4.new_code_cell(source) for source in sources]
    for index in ignored:
        cells[index].metadata["tags"] = ["otter_ignore"]
    made = nbformat.v4.new_notebook(cells=cells)
    if name is not None:
        made.metadata["otter"] = {"assignment_name": name}
    return made


def notebook_bytes(*sources: str) -> bytes:
    return nbformat.writes(notebook(*sources)).encode()


def write_notebook(path: Path, *sources: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(notebook_bytes(*sources))
    return path


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def claim_sizes(archive: Path, sizes: dict[str, int]) -> None:
    """Make the zip's index (its central directory) claim that members unpack to `sizes` bytes;
    their data stays as small as it was, so only a reader of the index can see the claim."""
    data = bytearray(archive.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_length = int.from_bytes(data[at + 28:at + 30], "little")
        name = data[at + 46:at + 46 + name_length].decode()
        if name in sizes:
            data[at + 24:at + 28] = sizes[name].to_bytes(4, "little")
        at = data.find(b"PK\x01\x02", at + 4)
    archive.write_bytes(bytes(data))


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """A submission folder and an empty scratch folder."""
    (tmp_path / "submission").mkdir()
    (tmp_path / "scratch").mkdir()
    return tmp_path / "submission", tmp_path / "scratch"


# ---------------------------------------------------------------------------------------------
# find_notebook: the one notebook of a folder


def test_find_notebook_finds_the_one_notebook(folders: tuple[Path, Path]) -> None:
    folder, scratch = folders
    path = write_notebook(folder / "anything.ipynb", "x = 1")
    (folder / "notes.txt").write_text("hello")
    assert find_notebook(folder, scratch) == (path, [])
    assert list(scratch.iterdir()) == []


def test_find_notebook_finds_a_notebook_in_a_subfolder(folders: tuple[Path, Path]) -> None:
    folder, scratch = folders
    path = write_notebook(folder / "deep" / "er" / "hw.ipynb", "x = 1")
    assert find_notebook(folder, scratch)[0] == path


def test_find_notebook_refuses_a_folder_without_a_notebook(folders: tuple[Path, Path]) -> None:
    folder, scratch = folders
    (folder / "backpropagation.py").write_text("x = 1")
    with pytest.raises(SubmissionProblem, match="no .ipynb notebook"):
        find_notebook(folder, scratch)


def test_find_notebook_refuses_two_notebooks(folders: tuple[Path, Path]) -> None:
    folder, scratch = folders
    write_notebook(folder / "one.ipynb", "x = 1")
    write_notebook(folder / "sub" / "two.ipynb", "x = 2")
    with pytest.raises(SubmissionProblem, match="2 .ipynb notebooks"):
        find_notebook(folder, scratch)


def test_find_notebook_ignores_jupyter_checkpoints(folders: tuple[Path, Path]) -> None:
    folder, scratch = folders
    path = write_notebook(folder / "hw.ipynb", "x = 1")
    write_notebook(folder / ".ipynb_checkpoints" / "hw-checkpoint.ipynb", "x = 0")
    assert find_notebook(folder, scratch)[0] == path


def test_find_notebook_extracts_a_zipped_notebook_under_a_name_of_ours(folders: tuple[Path, Path]) -> None:
    folder, scratch = folders
    content = notebook_bytes("x = 42")
    write_zip(folder / "export.zip", {"../../escape.ipynb": content, "backprop_checks.py": b"# helpers"})
    found, flags = find_notebook(folder, scratch)
    assert found.parent == scratch and found.name == "notebook-from-zip.ipynb"
    assert found.read_bytes() == content
    assert list(scratch.iterdir()) == [found]
    assert not (scratch.parent / "escape.ipynb").exists() and not (scratch.parent.parent / "escape.ipynb").exists()
    assert flags == []


def test_find_notebook_refuses_two_notebooks_in_a_zip_before_extracting(folders: tuple[Path, Path]) -> None:
    folder, scratch = folders
    write_zip(folder / "export.zip", {"a.ipynb": notebook_bytes("x = 1"), "b/b.ipynb": notebook_bytes("x = 2")})
    with pytest.raises(SubmissionProblem, match="2 .ipynb notebooks"):
        find_notebook(folder, scratch)
    assert list(scratch.iterdir()) == []


def test_find_notebook_counts_notebooks_in_zips_and_folders_together(folders: tuple[Path, Path]) -> None:
    folder, scratch = folders
    write_notebook(folder / "hw.ipynb", "x = 1")
    write_zip(folder / "export.zip", {"hw.ipynb": notebook_bytes("x = 2")})
    with pytest.raises(SubmissionProblem, match="2 .ipynb notebooks"):
        find_notebook(folder, scratch)
    assert list(scratch.iterdir()) == []


def test_find_notebook_refuses_a_zip_whose_index_claims_more_than_max_bytes(folders: tuple[Path, Path]) -> None:
    folder, scratch = folders
    archive = write_zip(folder / "export.zip", {"hw.ipynb": notebook_bytes("x = 1"),
                                                "data1.bin": b"0" * 100, "data2.bin": b"0" * 100})
    claim_sizes(archive, {"data1.bin": MAX_BYTES // 2, "data2.bin": MAX_BYTES // 2 + 1})
    assert archive.stat().st_size < 10_000
    with pytest.raises(SubmissionProblem, match="too large to grade"):
        find_notebook(folder, scratch)
    assert list(scratch.iterdir()) == []


def test_archive_members_accepts_a_zip_right_at_max_bytes(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "export.zip", {"data1.bin": b"0", "data2.bin": b"0"})
    claim_sizes(archive, {"data1.bin": MAX_BYTES // 2, "data2.bin": MAX_BYTES // 2})
    assert sum(info.file_size for info in archive_members(archive)) == MAX_BYTES


def test_find_notebook_refuses_a_zipped_notebook_claiming_more_than_the_notebook_limit(
        folders: tuple[Path, Path]) -> None:
    folder, scratch = folders
    archive = write_zip(folder / "export.zip", {"hw.ipynb": notebook_bytes("x = 1")})
    claim_sizes(archive, {"hw.ipynb": submission.MAX_NOTEBOOK_BYTES + 1})
    with pytest.raises(SubmissionProblem, match="larger than 32 MB"):
        find_notebook(folder, scratch)
    assert list(scratch.iterdir()) == []


def test_find_notebook_refuses_a_zip_with_too_many_members(folders: tuple[Path, Path],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    folder, scratch = folders
    monkeypatch.setattr(submission, "MAX_ARCHIVE_MEMBERS", 3)
    write_zip(folder / "export.zip", {"hw.ipynb": notebook_bytes("x = 1")} | {f"f{i}": b"" for i in range(3)})
    with pytest.raises(SubmissionProblem, match="too large to grade"):
        find_notebook(folder, scratch)


def test_find_notebook_refuses_a_zip_member_that_is_a_symlink(folders: tuple[Path, Path]) -> None:
    folder, scratch = folders
    archive = write_zip(folder / "export.zip", {"hw.ipynb": notebook_bytes("x = 1")})
    link = zipfile.ZipInfo("tests")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(archive, "a") as opened:
        opened.writestr(link, "/autograder/source/tests")
    with pytest.raises(SubmissionProblem, match=r"symbolic link \(tests\)"):
        find_notebook(folder, scratch)
    assert list(scratch.iterdir()) == []


def test_find_notebook_refuses_a_file_that_is_not_a_zip(folders: tuple[Path, Path]) -> None:
    folder, scratch = folders
    write_notebook(folder / "hw.ipynb", "x = 1")
    (folder / "export.zip").write_bytes(b"PK not really")
    with pytest.raises(SubmissionProblem, match="export.zip is not a readable zip file"):
        find_notebook(folder, scratch)


@pytest.mark.parametrize("where", ["link.ipynb", "sub/link", "sub/deeper/link.zip"])
def test_find_notebook_refuses_a_symlink_anywhere_and_leaves_its_target(tmp_path: Path,
                                                                        folders: tuple[Path, Path],
                                                                        where: str) -> None:
    folder, scratch = folders
    target = write_notebook(tmp_path / "outside" / "secret.ipynb", "secret = 1")
    before = target.read_bytes()
    if "/" not in where:
        (folder / "readme.txt").write_text("no notebook but the link")
    else:
        write_notebook(folder / "hw.ipynb", "x = 1")
    (folder / where).parent.mkdir(parents=True, exist_ok=True)
    (folder / where).symlink_to(target)
    with pytest.raises(SubmissionProblem, match="symbolic link"):
        find_notebook(folder, scratch)
    assert target.read_bytes() == before
    assert list(scratch.iterdir()) == []


def test_find_notebook_refuses_a_symlink_to_a_folder(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    folder, scratch = folders
    write_notebook(tmp_path / "outside" / "other.ipynb", "x = 2")
    write_notebook(folder / "hw.ipynb", "x = 1")
    (folder / "more").symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(SubmissionProblem, match=r"symbolic link \(more\)"):
        find_notebook(folder, scratch)


def test_find_notebook_refuses_a_fifo(folders: tuple[Path, Path]) -> None:
    folder, scratch = folders
    write_notebook(folder / "hw.ipynb", "x = 1")
    os.mkfifo(folder / "pipe.ipynb")
    with pytest.raises(SubmissionProblem, match=r"special file \(pipe.ipynb\)"):
        find_notebook(folder, scratch)


def test_regular_files_refuses_too_many_files(folders: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    folder, _ = folders
    monkeypatch.setattr(submission, "MAX_FILES", 3)
    for index in range(3):
        (folder / f"f{index}").write_text("x")
    assert len(regular_files(folder)) == 3
    (folder / "f3").write_text("x")
    with pytest.raises(SubmissionProblem, match="too large"):
        regular_files(folder)


def test_regular_files_refuses_too_many_bytes(folders: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    folder, _ = folders
    monkeypatch.setattr(submission, "MAX_BYTES", 100)
    (folder / "a").write_bytes(b"x" * 60)
    assert len(regular_files(folder)) == 1
    (folder / "b").write_bytes(b"x" * 60)
    with pytest.raises(SubmissionProblem, match="too large"):
        regular_files(folder)


def test_find_notebook_refuses_a_notebook_over_the_size_limit(folders: tuple[Path, Path],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    folder, scratch = folders
    write_notebook(folder / "hw.ipynb", "x = 1" + " " * 2000)
    monkeypatch.setattr(submission, "MAX_NOTEBOOK_BYTES", 1000)
    with pytest.raises(SubmissionProblem, match="larger than"):
        find_notebook(folder, scratch)


# ---------------------------------------------------------------------------------------------
# Trees too deep or too long to be work


@pytest.mark.parametrize("depth, refused", [(submission.MAX_DEPTH, False), (submission.MAX_DEPTH + 1, True)])
def test_folders_and_zips_are_refused_past_the_depth_limit(tmp_path: Path, depth: int, refused: bool) -> None:
    """The limit counts the names of a path; a folder of the submission and a zip's index agree."""
    deep = "/".join(["d"] * (depth - 1)) + "/notes.txt"
    for where in ("folder", "zip"):
        folder, scratch = tmp_path / where / "submission", tmp_path / where / "scratch"
        scratch.mkdir(parents=True)
        write_notebook(folder / "hw.ipynb", "x = 1")
        if where == "zip":
            write_zip(folder / "export.zip", {deep: b"x"})
        else:
            (folder / deep).parent.mkdir(parents=True)
            (folder / deep).write_text("x")
        if refused:
            with pytest.raises(SubmissionProblem, match=f"folders nested more than {submission.MAX_DEPTH} deep"):
                find_notebook(folder, scratch)
        else:
            assert find_notebook(folder, scratch)[0] == folder / "hw.ipynb"


def test_folders_and_zips_are_refused_past_the_path_length_limit(folders: tuple[Path, Path]) -> None:
    folder, scratch = folders
    write_notebook(folder / "hw.ipynb", "x = 1")
    long = "/".join(["n" * 250] * 5)
    write_zip(folder / "export.zip", {long: b"x"})
    with pytest.raises(SubmissionProblem, match=f"export.zip has a path longer than {submission.MAX_PATH_BYTES} bytes"):
        find_notebook(folder, scratch)
    (folder / "export.zip").unlink()
    (folder / long).parent.mkdir(parents=True)
    (folder / long).write_text("x")
    with pytest.raises(SubmissionProblem, match=f"the submission has a path longer than {submission.MAX_PATH_BYTES}"):
        find_notebook(folder, scratch)


def test_folders_count_towards_the_file_limit(folders: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    folder, scratch = folders
    monkeypatch.setattr(submission, "MAX_FILES", 3)
    write_notebook(folder / "hw.ipynb", "x = 1")
    (folder / "a" / "b").mkdir(parents=True)
    assert find_notebook(folder, scratch)[0] == folder / "hw.ipynb"
    (folder / "c").mkdir()
    with pytest.raises(SubmissionProblem, match="over 3 files and folders"):
        find_notebook(folder, scratch)


# ---------------------------------------------------------------------------------------------
# What operating systems and editors add


MAC_JUNK = {"__MACOSX/._backpropagation.ipynb": b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ",
            ".DS_Store": b"\x00\x00\x00\x01Bud1", "__MACOSX/._.DS_Store": b"\x00\x05\x16\x07"}


def test_find_notebook_ignores_what_macos_compress_adds(folders: tuple[Path, Path]) -> None:
    folder, scratch = folders
    content = notebook_bytes("x = 1")
    write_zip(folder / "backpropagation.zip", {"backpropagation.ipynb": content, **MAC_JUNK})
    found, flags = find_notebook(folder, scratch)
    assert found.read_bytes() == content and flags == []


@pytest.mark.parametrize("junk", ["._hw.ipynb", ".ipynb_checkpoints/hw-checkpoint.ipynb", ".~hw.ipynb",
                                  "__MACOSX/sub/._hw.ipynb", "Thumbs.db", "desktop.ini", ".DS_Store",
                                  "sub/.DS_Store", ".Trash-1000/files/old.ipynb", "._export.zip",
                                  "__MACOSX/._.OTTER_LOG"])
def test_find_notebook_ignores_os_and_editor_files_in_folders_and_zips(tmp_path: Path, junk: str) -> None:
    for where in ("folder", "zip"):
        folder, scratch = tmp_path / where / "submission", tmp_path / where / "scratch"
        scratch.mkdir(parents=True)
        files = {"hw.ipynb": notebook_bytes("x = 1"), junk: b"\x00\x05\x16\x07 not what its name says"}
        if where == "zip":
            write_zip(folder / "export.zip", files)
        else:
            for name, data in files.items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(data)
        found, flags = find_notebook(folder, scratch)
        assert read_notebook(found, ASSIGNMENT).cells[0].source == "x = 1" and flags == [], where
        (folder / "hw.ipynb").unlink() if where == "folder" else write_zip(folder / "export.zip", {junk: b"\x00"})
        with pytest.raises(SubmissionProblem, match="no .ipynb notebook in the submission") as refused:
            find_notebook(folder, scratch)
        if junk.endswith(".ipynb"):
            assert "was ignored: operating systems and editors make such files" in str(refused.value)


# ---------------------------------------------------------------------------------------------
# Pickles: otter's own log and plain data pass, anything more is flagged (none is loaded)


def otter_log(path: Path) -> Path:
    """A log as otter's own checks append it: a start, a check whose cases failed, a check of a
    question that does not exist (its error pickled through dill) and a check of every question."""
    from otter.check.logs import EventType, LogEntry
    from otter.test_files import GradingResults
    from otter.test_files.exception_test import ExceptionTestFile

    test = ExceptionTestFile.from_file(str(STUDENT_NOTEBOOK.parent / "tests" / "q1.1.py"))
    test.run({})
    path.parent.mkdir(parents=True, exist_ok=True)
    for entry in (LogEntry(EventType.INIT), LogEntry(EventType.CHECK, results=test, question="q1.1"),
                  LogEntry(EventType.CHECK, question="q9.9", success=False,
                           error=FileNotFoundError("Test q9.9 does not exist")),
                  LogEntry(EventType.END_CHECK_ALL, results=GradingResults([test]))):
        entry.flush_to_file(str(path))
    return path


class Payload:
    """Unpickling this would run code."""

    def __reduce__(self):
        return exec, ("open('/tmp/unpickled', 'w')",)


class DillType:
    """Unpickling this would make a code object through dill, the first step to running any code."""

    def __reduce__(self):
        import dill._dill

        return dill._dill._load_type, ("CodeType",)


def test_find_notebook_raises_no_flag_for_otters_own_log_or_plain_data(folders: tuple[Path, Path]) -> None:
    folder, scratch = folders
    path = write_notebook(folder / "hw.ipynb", "x = 1")
    otter_log(folder / ".OTTER_LOG")
    (folder / "sub").mkdir()
    (folder / "sub" / "state.pickle").write_bytes(pickle.dumps({"scores": [1.5, None], "name": "x"}))
    (folder / "empty.pkl").write_bytes(b"")
    assert find_notebook(folder, scratch) == (path, [])


def test_find_notebook_flags_pickles_that_would_import_more_than_otters_log(folders: tuple[Path, Path]) -> None:
    folder, scratch = folders
    path = write_notebook(folder / "hw.ipynb", "x = 1")
    (folder / "sub").mkdir()
    for name in (".OTTER_LOG", "model.pkl", "sub/state.pickle", "notes.OTTER_LOG.txt"):
        (folder / name).write_bytes(pickle.dumps(Payload()))
    found, flags = find_notebook(folder, scratch)
    assert found == path
    assert sorted(flags) == sorted(f"submission contains {name}, a pickle that would import builtins.exec if "
                                   "loaded; it was ignored (pickles are never loaded)"
                                   for name in (".OTTER_LOG", "model.pkl", "state.pickle"))
    assert not Path("/tmp/unpickled").exists()


def test_find_notebook_reads_the_pickles_in_a_zip_the_same_way(folders: tuple[Path, Path], tmp_path: Path) -> None:
    folder, scratch = folders
    honest = otter_log(tmp_path / "log" / ".OTTER_LOG").read_bytes()
    write_zip(folder / "export.zip", {"hw.ipynb": notebook_bytes("x = 1"), ".OTTER_LOG": honest,
                                      "__zip_filename__": b"hw.zip"})
    assert find_notebook(folder, scratch)[1] == []
    write_zip(folder / "export.zip", {"hw.ipynb": notebook_bytes("x = 1"),
                                      ".OTTER_LOG": honest + pickle.dumps(Payload())})
    assert find_notebook(folder, scratch)[1] == ["submission contains .OTTER_LOG, a pickle that would import "
                                                 "builtins.exec if loaded; it was ignored (pickles are never loaded)"]


def test_find_notebook_flags_pickles_too_large_to_read(folders: tuple[Path, Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    folder, scratch = folders
    write_notebook(folder / "hw.ipynb", "x = 1")
    (folder / "a.pkl").write_bytes(pickle.dumps(bytes(600_000)))
    (folder / "b.pkl").write_bytes(pickle.dumps(bytes(600_000)))
    monkeypatch.setattr(submission, "MAX_PICKLE_BYTES", 1 << 20)
    assert find_notebook(folder, scratch)[1] == [
        f"submission contains {name}, a pickle that makes the submission's pickles larger than 1 MB; it was "
        "ignored (pickles are never loaded)" for name in ("a.pkl", "b.pkl")]


@pytest.mark.parametrize("data, problem", [
    (pickle.dumps(Payload()), "would import builtins.exec if loaded"),
    (pickle.dumps(Payload(), protocol=0), "would import __builtin__.exec if loaded"),
    (pickle.dumps(DillType()), "would import dill._dill._load_type('CodeType',) if loaded"),
    (pickle.dumps(np.zeros(2)), "would import numpy._core.multiarray._reconstruct if loaded"),
    (b"\x80\x02\x82\xf0.", "would import extension 240 of copyreg if loaded"),
    (b"\x80\x04\x8c\x08builtins\x8c\x04exec\x93N\x85R.", "would import builtins.exec if loaded"),
    (b"\x80\x04\x8c\x08builtins\x94\x8c\x04eval\x94h\x00h\x01\x93.", "would import builtins.eval if loaded"),
    (b"\x80\x04N\x8c\x04exec\x93.", "would import a name it computes if loaded"),
    (b"garbage", "is not a readable pickle"),
    (b"\x80\x04N", "is not a readable pickle"),
    (b"\x80\x04\x93.", "is not a readable pickle"),
    (b"\x80\x04" + b"(" * 200_000 + b".", "is not a readable pickle"),
], ids=["exec", "exec protocol 0", "dill code type", "numpy", "copyreg extension", "stack global", "memo",
        "computed name", "not a pickle", "no stop", "empty stack", "too many marks"])
def test_pickle_problem_names_what_loading_would_import(data: bytes, problem: str) -> None:
    assert submission.pickle_problem(data) == problem


@pytest.mark.parametrize("data", [b"", pickle.dumps(None), pickle.dumps([1, "builtins", ("exec",), {2: b"x"}]),
                                  pickle.dumps(ValueError("raised"))],
                         ids=["empty", "None", "plain data", "built-in exception"])
def test_pickle_problem_accepts_plain_data(data: bytes) -> None:
    assert submission.pickle_problem(data) is None


def test_pickle_problem_accepts_otters_log_of_hundreds_of_checks(tmp_path: Path) -> None:
    """Otter appends a pickle per event; a long log is framed (protocol 4) in many places."""
    log = otter_log(tmp_path / ".OTTER_LOG").read_bytes() * 60
    assert len(log) > 500_000
    assert submission.pickle_problem(log) is None


# ---------------------------------------------------------------------------------------------
# read_notebook: JSON only, for this assignment


@pytest.mark.parametrize("content", [b"", b"{not json", b"[]", b"{}", b"\x00\x01\x02", b'{"cells": 3}'],
                         ids=["empty", "corrupt", "list", "empty object", "binary", "wrong cells"])
def test_read_notebook_refuses_what_is_not_a_notebook(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "hw.ipynb"
    path.write_bytes(content)
    with pytest.raises(SubmissionProblem, match="cannot be read"):
        read_notebook(path, ASSIGNMENT)


def test_read_notebook_refuses_another_assignment(tmp_path: Path) -> None:
    path = tmp_path / "hw.ipynb"
    path.write_text(nbformat.writes(notebook("x = 1", name="gradient-descent")))
    with pytest.raises(SubmissionProblem, match="for assignment 'gradient-descent', not 'backpropagation'"):
        read_notebook(path, ASSIGNMENT)


def test_read_notebook_refuses_a_notebook_with_no_assignment_name(tmp_path: Path) -> None:
    path = tmp_path / "hw.ipynb"
    path.write_text(nbformat.writes(notebook("x = 1", name=None)))
    with pytest.raises(SubmissionProblem, match="for assignment 'None'"):
        read_notebook(path, ASSIGNMENT)
    assert read_notebook(path, None).cells[0].source == "x = 1"


def test_read_notebook_reads_the_student_notebook() -> None:
    read = read_notebook(STUDENT_NOTEBOOK, ASSIGNMENT)
    assert read.metadata["otter"]["assignment_name"] == ASSIGNMENT
    assert len(read.cells) > 10


@pytest.mark.parametrize("tags", [None, 5, "otter_ignore"])
def test_a_notebook_with_malformed_tags_is_refused_or_read_never_a_crash(tmp_path: Path, tags: object) -> None:
    """nbformat only logs a schema violation. Whatever a submission's cell metadata holds, reading
    it and listing its code cells gives cells or a SubmissionProblem (the student's "not graded"),
    never another exception (which both engines report as the grader's own failure)."""
    made = notebook("x = 1")
    made.cells[0].metadata["tags"] = tags
    path = tmp_path / "hw.ipynb"
    path.write_text(json.dumps(made))
    try:
        cells = code_cells(read_notebook(path, ASSIGNMENT))
    except SubmissionProblem:
        return
    assert [cell.source for cell in cells] in ([], ["x = 1"])


# ---------------------------------------------------------------------------------------------
# code_cells and check_calls


def test_code_cells_skips_otter_ignore_and_markdown() -> None:
    made = notebook("setup = 1", "x = 1", "grader.export()", ignored=(0, 2))
    made.cells.insert(1, nbformat.v4.new_markdown_cell("grader.check('q1.1')"))
    assert code_cells(made) == [Cell("x = 1", ())]


def test_code_cells_turns_check_and_pip_lines_into_pass() -> None:
    source = ('x = 1\ngrader.check("q1.1")\nif x:\n    grader.check("q1.2")\n!pip install numpy\n'
              '%pip install otter-grader\ngrader.check_all()\ngrader.export(pdf=False)\ny = 2')
    [cell] = code_cells(notebook(source))
    assert cell.source == "x = 1\npass\nif x:\n    pass\npass\npass\npass\npass\ny = 2"
    assert cell.checks == ("q1.1", "q1.2")


def test_code_cells_leaves_lines_that_only_mention_checks() -> None:
    source = 'result = grader.check("q1.1")\n# grader.check("q1.2")\nprint("grader.check")\nmypip = 1'
    [cell] = code_cells(notebook(source))
    assert cell.source == source
    assert cell.checks == ("q1.1",)


def test_code_cells_keeps_a_cell_with_a_check_over_two_lines_runnable() -> None:
    """`grader.check(` may be split over lines; grading must still be able to run the rest of the cell."""
    [cell] = code_cells(notebook('x = 1\ngrader.check(\n    "q1.1")\ny = 2'))
    assert cell.checks == ("q1.1",)
    compile(cell.source, "<cell>", "exec")  # raises SyntaxError if the replacement broke the cell


@pytest.mark.parametrize("source, questions", [
    ('grader.check("q1.1")', ["q1.1"]),
    ("grader.check('q2.2')", ["q2.2"]),
    ('x = 1\ngrader.check("q1.1")\ngrader.check("q1.2")', ["q1.1", "q1.2"]),
    ('for i in range(2):\n    grader.check("q1.3")', ["q1.3"]),
    ('%matplotlib inline\nimport numpy as np\ngrader.check("q2.1")', ["q2.1"]),
    ('!pip install numpy\ngrader.check("q2.1")', ["q2.1"]),
    ('x = %time 1 + 1\ngrader.check("q1.1")', ["q1.1"]),
    ('%%capture\nx = 1\ngrader.check("q1.2")', ["q1.2"]),
    ('display(grader.check("q1.3"))', ["q1.3"]),
])
def test_check_calls_finds_real_calls(source: str, questions: list[str]) -> None:
    assert check_calls(source) == questions


@pytest.mark.parametrize("source", [
    '# grader.check("q1.1")',
    'x = 1  # grader.check("q1.1")',
    'text = "grader.check(\'q1.1\')"',
    'text = """\ngrader.check("q1.1")\n"""',
    'def f():\n    """grader.check("q1.1")"""',
    'text = f"grader.check(\'q1.1\') for {x}"',
    "text = f'''{x}\ngrader.check(\"q1.1\")\n'''",
    'grader.check(question)',
    'grader.check(f"q1.{n}")',
    'grader.check()',
    'other.check("q1.1")',
    'grader.checks("q1.1")',
    'grader.inner.check("q1.1")',
    'check("q1.1")',
    'grader.check_all()',
    'grader.check("q1.1"',  # does not parse: checks nothing
])
def test_check_calls_ignores_what_is_not_a_call(source: str) -> None:
    assert check_calls(source) == []


def test_cells_of_shell_escapes_cost_the_grader_a_bounded_time() -> None:
    """IPython's transformer would take hours on these; past a budget a cell checks nothing."""
    escapes = "\n".join(["!e"] * 20_000)
    many = "\n".join(["!e"] * 40) + '\ngrader.check("q1.1")'
    started = time.monotonic()
    cells = code_cells(notebook(escapes, escapes, *[many] * 100, 'x = 1\ngrader.check("q1.2")'))
    assert time.monotonic() - started < 5
    assert cells[0].checks == () and cells[-1].checks == ("q1.2",)
    assert 0 < sum(cell.checks == ("q1.1",) for cell in cells) < 100


def test_checkpoints_picks_the_last_real_check_and_puts_unchecked_questions_at_the_end() -> None:
    cells = [Cell("a", ()), Cell("b", ("q1.1",)), Cell("c", ("q1.2", "q9.9")), Cell("d", ("q1.1",)), Cell("e", ())]
    assert checkpoints(cells, list(QUESTIONS)) == {"q1.1": 3, "q1.2": 2, "q1.3": 5, "q2.1": 5, "q2.2": 5}


def test_checkpoints_of_no_cells_are_all_at_zero() -> None:
    assert checkpoints([], ["q1.1"]) == {"q1.1": 0}


def test_the_student_notebook_checks_every_question_once_in_order() -> None:
    cells = code_cells(read_notebook(STUDENT_NOTEBOOK, ASSIGNMENT))
    plan = checkpoints(cells, list(QUESTIONS))
    assert sorted(plan.values()) == [plan[q] for q in QUESTIONS]
    assert all(at < len(cells) and cells[at].checks == (q,) for q, at in plan.items())
    assert not any("grader.check(" in cell.source or "pip install" in cell.source for cell in cells)


# ---------------------------------------------------------------------------------------------
# scan_for_tampering


TAMPERING = [
    ("import pickle\npickle.load(open('x', 'rb'))", "uses pickles or otter's log"),
    ("open('.OTTER_LOG', 'wb')", "uses pickles or otter's log"),
    ("import dill", "uses pickles or otter's log"),
    ("open('/autograder/results/results.json', 'w')", "touches the grader's files"),
    ("import os\nos.listdir('/autograder')", "touches the grader's files"),
    ("np.allclose = lambda *a, **k: True", "replaces library functions"),
    ("numpy.isclose=lambda *a: True", "replaces library functions"),
    ("math.isfinite = lambda x: True", "replaces library functions"),
    ("setattr(np, 'allclose', lambda *a: True)", "replaces library functions"),
    ("import builtins\nbuiltins.float = int", "replaces library functions"),
    ("np.random.default_rng = lambda *a: None", "replaces library functions"),
    ("import numpy\nnumpy.testing.assert_allclose = lambda *a, **k: None", "replaces library functions"),
    ("setattr(np.linalg, 'norm', abs)", "replaces library functions"),
    ("import numpy.testing as npt\nnpt.assert_allclose = print", "replaces library functions"),
    ("from numpy import random as r\nr.default_rng = print", "replaces library functions"),
    ("random_module = np.random\nrandom_module.Generator.normal = print", "replaces library functions"),
    ("vars(np)['isclose'] = print", "replaces library functions"),
    ("np.__dict__['isclose'] = print", "replaces library functions"),
    ("del np.random.default_rng", "replaces library functions"),
    ("import backprop_checks as check\ncheck.RTOL_EXACT = 1.0", "replaces library functions"),
    ("from backprop_checks import _close as c\nc.__code__ = (lambda *a: True).__code__", "replaces library functions"),
    ("%%time\nmath.pi = 3", "replaces library functions"),
    ("%time np.random.default_rng = print", "replaces library functions"),
    ("import otter.test_files", "reaches into otter's test runner"),
    ("from otter.execute import grade_notebook", "reaches into otter's test runner"),
    ("ExceptionTestFile.run = lambda *a: None", "reaches into otter's test runner"),
    ("class A:\n    def __eq__(self, other):\n        return True", "defines comparison or conversion methods"),
    ("class B(float):\n    def  __float__(self):\n        return 1.0", "defines comparison or conversion methods"),
    ("class C:\n    def __array__(self):\n        return None", "defines comparison or conversion methods"),
    ("import os\nos._exit(0)", "manipulates the interpreter"),
    ("import sys\nsys.modules['numpy'] = None", "manipulates the interpreter"),
    ("import ctypes", "manipulates the interpreter"),
    ("import signal\nsignal.alarm(0)", "manipulates the interpreter"),
    ("os.setsid()", "manipulates the interpreter"),
    ("os.write(1, b'{}')", "writes to raw file descriptors or reaches other processes"),
    ("os.dup2(3, 1)", "writes to raw file descriptors or reaches other processes"),
    ("os.kill(1, 9)", "writes to raw file descriptors or reaches other processes"),
    ("open('/proc/self/fd/1', 'w')", "writes to raw file descriptors or reaches other processes"),
    ("import socket", "reaches for the network"),
    ("from urllib.request import urlopen", "reaches for the network"),
    ("import requests\nrequests.post('http://example.org', data=str(f0))", "reaches for the network"),
]


@pytest.mark.parametrize("source, reason", TAMPERING)
def test_scan_for_tampering_flags_code_aimed_at_the_grader(source: str, reason: str) -> None:
    honest = Cell("x = 1", ())
    assert scan_for_tampering([honest, Cell(source, ())]) == [reason]


def test_every_suspicious_pattern_has_an_example() -> None:
    assert {reason for _, reason in TAMPERING} == set(SUSPICIOUS.values())


def test_scan_for_tampering_reports_each_reason_once_in_order() -> None:
    cells = [Cell(source, ()) for source, _ in reversed(TAMPERING)]
    assert scan_for_tampering(cells) == list(SUSPICIOUS.values())


@pytest.mark.parametrize("source", [
    "if np.pi == 3.14: pass", "x = np.zeros(3)", "import os\nos.path.join('a', 'b')", "results = [1]",
    "signals = 1", "pickled_value = 2", "def __init__(self): pass", "# the grader requests the values",
    "np.random.seed(0)\nrng = np.random.default_rng(0)\nrng.bit_generator.state = rng.bit_generator.state",
    "weights = np.zeros((2, 2))\nweights[0, 0] = 1\nweights.shape = (4,)", "a = np.pi\nb = [a]\nb[0] = 2",
    "np.set_printoptions(precision=3)\nimport numpy.linalg as la\nnorm = la.norm(np.ones(2))",
    "from math import pi\nx = pi\ncircle = {}\ncircle['r'] = x",
])
def test_scan_for_tampering_leaves_honest_code(source: str) -> None:
    assert scan_for_tampering([Cell(source, ())]) == []


@pytest.mark.parametrize("path", [SOLUTIONS_NOTEBOOK, STUDENT_NOTEBOOK], ids=["solutions", "student"])
def test_the_homeworks_own_notebooks_raise_no_flag(path: Path) -> None:
    assert scan_for_tampering(code_cells(read_notebook(path, ASSIGNMENT))) == []


# Examples that an honest workflow could not produce, and what flags them.
FLAGGED_EXAMPLES = {"kernel-death.zip": ["manipulates the interpreter"]}  # it ends its process with os._exit(3)


def example_notebooks() -> dict[str, bytes]:
    """Every notebook among the example submissions (those in zips too): {path: content}."""
    found = {}
    for path in sorted(EXAMPLES.rglob("*")):
        if path.suffix == ".ipynb":
            found[str(path.relative_to(EXAMPLES))] = path.read_bytes()
        elif path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                found |= {f"{path.name}/{name}": archive.read(name) for name in archive.namelist()
                          if name.endswith(".ipynb")}
    return found


@pytest.mark.parametrize("name", example_notebooks())
def test_the_example_notebooks_raise_no_flag_but_for_a_kernel_death(tmp_path: Path, name: str) -> None:
    path = tmp_path / "hw.ipynb"
    path.write_bytes(example_notebooks()[name])
    try:
        cells = code_cells(read_notebook(path, None))
    except SubmissionProblem:  # the broken examples
        assert name in ("corrupt.ipynb", "empty.ipynb")
        return
    assert scan_for_tampering(cells) == FLAGGED_EXAMPLES.get(name.split("/")[0], [])
