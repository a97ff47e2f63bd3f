"""Hostile files and processes: whatever a student's files and processes look like, the grader's own
code ends with a result and a reason, and cleans up without ever failing.

- A table of submissions (odd names, deep and wide trees, closed folders, damaged and exotic zips,
  what operating systems and editors add): `find_notebook` and `read_notebook` give a notebook or
  a `SubmissionProblem` with a printable reason, never anything else, and `remove_tree` removes
  each case whole.
- A table of trees for `remove_tree`, as root and as an unprivileged user: removed whole, links
  never followed; a tree it cannot remove gives a note, never an exception.
- `/proc` read as bytes: a process whose name is not UTF-8 is found and killed.
- End to end (`sandbox`), beside the honest twin (attacks.py) on make grade's engine and on
  Gradescope's entry point: macOS's "Compress" zip and otter's own export earn what the notebook
  earns, unflagged; the other hostile submissions end with a result and a reason, earn no more than
  the twin, and leave no process behind.
"""

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from attacks import (HOSTILE_CELLS, TWIN_SCORES, write_attack, write_bad_crc_zip, write_deflate64_zip,
                     write_macos_zip, write_nested_folder, write_nested_zip, write_twin, write_zip)
from backprop_hw.autograder import gradescope_run
from backprop_hw.autograder.submission import (MAX_DEPTH, MAX_PATH_BYTES, SubmissionProblem, find_notebook,
                                               printable, read_notebook, remove_tree)
from backprop_hw.docker_engine import docker_input
from backprop_hw.grading_worker import stage
from backprop_hw.paths import STUDENT_NOTEBOOK
from backprop_hw.results import RESULTS_DIR, find_submissions
from conftest import QUESTIONS
from forked import in_a_child
from graders import Graded, grade_fast, grade_gradescope

ASSIGNMENT = "backpropagation"
NOTEBOOK = nbformat.writes(nbformat.v4.new_notebook(
    cells=[nbformat.v4.new_code_cell("x = 1")], metadata={"otter": {"assignment_name": ASSIGNMENT}})).encode()
UNPRIVILEGED = 65534  # nobody
GRADED = "graded"
NON_UTF8_NAME = b"\xff\xfe"  # a process's name, from the link it was started through


# ---------------------------------------------------------------------------------------------
# Where cases run, and as whom


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder that an unprivileged user can reach (pytest's own are root's alone), in memory where
    there is a memory file system: there, trees of thousands of folders are made in milliseconds."""
    memory = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="hostile-files-", dir=memory if os.access(memory, os.W_OK) else None))
    folder.chmod(0o755)
    yield folder
    assert remove_tree(folder) == []


def as_unprivileged(function: Callable[..., object], *arguments: object) -> object:
    """`function(*arguments)` in a child process as the unprivileged user (or here, if not root);
    what it returns must be JSON. An exception in it fails the test."""
    if os.geteuid() != 0:
        return function(*arguments)

    def unprivileged() -> object:
        os.setgroups([])
        os.setgid(UNPRIVILEGED)
        os.setuid(UNPRIVILEGED)
        return function(*arguments)

    return in_a_child(unprivileged)


# ---------------------------------------------------------------------------------------------
# Making odd files


def write_files(folder: Path, files: dict[str | bytes, bytes]) -> None:
    """Files under `folder`; names may be bytes (not UTF-8) and hold folders ("a/b")."""
    for name, data in files.items():
        path = Path(os.fsdecode(name)) if isinstance(name, bytes) else Path(name)
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)


def patched(path: Path, old: bytes, new: bytes) -> Path:
    """`path` with every `old` replaced by `new` (of the same length): in a zip, a member's name
    appears in its local header and in the index, and flags and methods are raw bytes too."""
    data = path.read_bytes()
    assert len(old) == len(new) and old in data
    path.write_bytes(data.replace(old, new))
    return path


def set_header_field(path: Path, local_offset: int, index_offset: int, value: int) -> Path:
    """Set a two-byte field of the first member, in its local header and in the index."""
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", local_offset), (b"PK\x01\x02", index_offset)):
        at = data.find(signature) + offset
        data[at:at + 2] = value.to_bytes(2, "little")
    path.write_bytes(bytes(data))
    return path


def nest(folder: Path, depth: int, name: bytes = b"d", beside: dict[bytes, bytes] | None = None) -> None:
    """`depth` folders, one inside the other, made with paths relative to each (so that any depth
    and any path length work), with files `beside` in the deepest."""
    folder.mkdir(parents=True, exist_ok=True)
    current = os.open(folder, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=current)
            inner = os.open(name, os.O_RDONLY, dir_fd=current)
            os.close(current)
            current = inner
        for file, data in (beside or {}).items():
            descriptor = os.open(file, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=current)
            os.write(descriptor, data)
            os.close(descriptor)
    finally:
        os.close(current)


# What makes a case's submission in the folder it is given (what it returns does not matter).
Builder = Callable[[Path], object]


def in_zip(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> Builder:
    return lambda folder: write_zip(folder / "export.zip", members, method)


def files(contents: dict[str | bytes, bytes]) -> Builder:
    return lambda folder: write_files(folder, contents)


def beside_nested_folders(depth: int, name: bytes = b"d") -> Builder:
    """The notebook beside `depth` nested folders (with a file in the deepest)."""
    return lambda folder: (write_files(folder, {"hw.ipynb": NOTEBOOK}), nest(folder, depth, name, {b"f": b"x"}))


def bad_crc(folder: Path) -> None:
    archive = write_zip(folder / "export.zip", [("hw.ipynb", NOTEBOOK)], zipfile.ZIP_STORED)
    patched(archive, b'"cells"', b'"Cells"')


def corrupt_deflate(folder: Path) -> None:
    archive = write_zip(folder / "export.zip", [("hw.ipynb", NOTEBOOK * 20)])
    data = bytearray(archive.read_bytes())
    start = data.find(b"hw.ipynb") + len("hw.ipynb")
    data[start + 40:start + 80] = bytes(range(40))
    archive.write_bytes(bytes(data))


def method(number: int) -> Builder:
    return lambda folder: set_header_field(write_zip(folder / "export.zip", [("hw.ipynb", NOTEBOOK)]), 8, 10, number)


def encrypted(folder: Path) -> None:
    set_header_field(write_zip(folder / "export.zip", [("hw.ipynb", NOTEBOOK)], zipfile.ZIP_STORED), 6, 8, 0x1)


def truncated(folder: Path) -> None:
    archive = write_zip(folder / "export.zip", [("hw.ipynb", NOTEBOOK)])
    archive.write_bytes(archive.read_bytes()[:len(archive.read_bytes()) // 2])


def utf8_flag_on_other_bytes(folder: Path) -> None:
    archive = write_zip(folder / "export.zip", [("hw.ipynb", NOTEBOOK), ("\u00e9\u00e9.txt", b"x")])
    patched(archive, "\u00e9\u00e9".encode(), b"\xff\xfe\xfd\xfc")  # é is two bytes in UTF-8


def cp437_names(folder: Path) -> None:
    archive = write_zip(folder / "export.zip", [("XY.ipynb", NOTEBOOK)])
    patched(archive, b"XY.ipynb", b"\xff\xfe.ipynb")  # no UTF-8 flag: read as cp437


def duplicate_member(folder: Path) -> None:
    with pytest.warns(UserWarning, match="Duplicate name"):
        write_zip(folder / "export.zip", [("hw.ipynb", NOTEBOOK), ("hw.ipynb", NOTEBOOK)])


def zip_in_zip(folder: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("hw.ipynb", NOTEBOOK)
    write_zip(folder / "export.zip", [("inner.zip", inner.getvalue())])


def closed(mode: int, what: str) -> Builder:
    """The notebook in a folder of `mode`, or of `mode` itself, or a zip of `mode` holding it."""
    def build(folder: Path) -> None:
        if what == "folder":
            write_files(folder, {"locked/hw.ipynb": NOTEBOOK})
            (folder / "locked").chmod(mode)
        elif what == "notebook":
            write_files(folder, {"hw.ipynb": NOTEBOOK})
            (folder / "hw.ipynb").chmod(mode)
        else:
            write_zip(folder / "export.zip", [("hw.ipynb", NOTEBOOK)]).chmod(mode)
    return build


def link_with_escapes(folder: Path) -> None:
    write_files(folder, {"hw.ipynb": NOTEBOOK})
    (folder / "\x1b]0;owned\x07\n.ipynb").symlink_to("/etc/passwd")


def fifo_not_utf8(folder: Path) -> None:
    write_files(folder, {"hw.ipynb": NOTEBOOK})
    os.mkfifo(folder / os.fsdecode(b"\xff\xfe.ipynb"))


# What operating systems and editors add, each beside one real notebook and alone.
JUNK = ["__MACOSX/._backpropagation.ipynb", "._backpropagation.ipynb", ".DS_Store", "sub/.DS_Store", "Thumbs.db",
        "desktop.ini", ".ipynb_checkpoints/backpropagation-checkpoint.ipynb", ".~backpropagation.ipynb",
        ".Trash-1000/files/old.ipynb", ".Trashes/501/old.ipynb", "$RECYCLE.BIN/S-1-5-21/$RABC.ipynb",
        "System Volume Information/IndexerVolumeGuid", ".Spotlight-V100/Store-V2/store.db",
        ".fseventsd/fseventsd-uuid", ".TemporaryItems/folders.501/old.ipynb", "__MACOSX/._export.zip",
        "._.OTTER_LOG", "sub/._model.pkl"]
JUNK_BYTES = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "  # an AppleDouble header: no notebook, zip or pickle


def junk_cases() -> dict[str, tuple[Builder, str]]:
    cases = {}
    for junk in JUNK:
        beside, alone = {junk: JUNK_BYTES, "backpropagation.ipynb": NOTEBOOK}, {junk: JUNK_BYTES}
        reason = "no .ipynb notebook in the submission" + (
            r" \(.* was ignored: operating systems and editors make such files\)" if junk.endswith(".ipynb") else "$")
        cases[f"{junk} beside the notebook"] = files(beside), GRADED
        cases[f"{junk} alone"] = files(alone), reason
        cases[f"{junk} beside the notebook in a zip"] = in_zip(list(beside.items())), GRADED
        cases[f"{junk} alone in a zip"] = in_zip(list(alone.items())), reason
    return cases


# {case: (what makes the submission folder, "graded" or a pattern its reason matches)}
CASES: dict[str, tuple[Builder, str]] = {
    # names
    "a file name that is not UTF-8": (files({b"\xff\xfe.txt": b"x", "hw.ipynb": NOTEBOOK}), GRADED),
    "a notebook name that is not UTF-8, with a newline": (files({b"\xff\xfe\n.ipynb": NOTEBOOK}), GRADED),
    "a folder name that is not UTF-8": (files({b"\xff/\xfe/hw.ipynb": NOTEBOOK}), GRADED),
    "names of 255 bytes": (files({"n" * 249 + ".ipynb": NOTEBOOK, "m" * 255: b"x", "o" * 255 + "/p" : b"y"}), GRADED),
    "control characters in names": (files({"hw\r\t\x1b[2J\x07.ipynb": NOTEBOOK, "\x01\x7f/\u202e.txt": b"x"}), GRADED),
    "a link named with terminal escapes": (link_with_escapes, r"symbolic link \(\ufffd\]0;owned\ufffd\ufffd\.ipynb\)"),
    "a fifo whose name is not UTF-8": (fifo_not_utf8, r"special file \(\ufffd\ufffd\.ipynb\)"),
    "two notebooks with odd names": (files({b"\xff.ipynb": NOTEBOOK, "\n.ipynb": NOTEBOOK}), "2 .ipynb notebooks"),
    # trees
    "1,500 nested folders beside the notebook": (beside_nested_folders(1_500),
                                                 f"folders nested more than {MAX_DEPTH} deep"),
    "1,500 nested folders of 200-byte names (a path past PATH_MAX)": (beside_nested_folders(1_500, b"n" * 200),
                                                                      f"a path longer than {MAX_PATH_BYTES} bytes"),
    f"the notebook {MAX_DEPTH - 1} folders down": (
        lambda folder: nest(folder, MAX_DEPTH - 1, beside={b"hw.ipynb": NOTEBOOK}), GRADED),
    "900 folders side by side": (lambda folder: [(folder / f"f{index}").mkdir() for index in range(900)]
                                 + [write_files(folder, {"hw.ipynb": NOTEBOOK})], GRADED),
    "5,000 files in one folder": (files({"hw.ipynb": NOTEBOOK} | {f"f{index}": b"" for index in range(5_000)}),
                                  "too large"),
    "a folder of mode 000 holding the notebook": (closed(0o000, "folder"), GRADED),
    "a notebook of mode 000": (closed(0o000, "notebook"), GRADED),
    "a zip of mode 000": (closed(0o000, "zip"), GRADED),
    # zips
    "a zip with a bad CRC-32": (bad_crc, r"hw.ipynb in export.zip is damaged \(BadZipFile\)"),
    "a zip with a corrupt Deflate stream": (corrupt_deflate, r"hw.ipynb in export.zip is damaged"),
    "a zip with a Deflate64 member": (method(9), "hw.ipynb in export.zip is compressed with Deflate64, which cannot"),
    "a zip with an unknown method": (method(99), "compressed with method 99, which cannot be read here"),
    "an encrypted zip": (encrypted, "hw.ipynb in export.zip is encrypted"),
    "a truncated zip": (truncated, "export.zip is not a readable zip file"),
    "a zero-byte zip": (files({"export.zip": b"", "hw.ipynb": NOTEBOOK}), "export.zip is not a readable zip file"),
    "a text file named .zip": (files({"export.zip": b"hello\n"}), "export.zip is not a readable zip file"),
    "a zip with .. and absolute member paths": (
        in_zip([("../../hw.ipynb", NOTEBOOK), ("/etc/cron.d/x", b"x"), ("..\\..\\y.txt", b"y")]), GRADED),
    "a zip with a duplicate member": (duplicate_member, "2 .ipynb notebooks"),
    "a zip inside a zip": (zip_in_zip, "no .ipynb notebook in the submission$"),
    "a zip whose UTF-8 names are not UTF-8": (utf8_flag_on_other_bytes, "export.zip is not a readable zip file"),
    "a zip whose names are not UTF-8 (cp437)": (cp437_names, GRADED),
    "a zip member name of 5,000 bytes": (in_zip([("hw.ipynb", NOTEBOOK), ("n" * 5_000, b"x")]),
                                         f"has a path longer than {MAX_PATH_BYTES} bytes"),
    "a zip of the notebook beside 1,200 nested folders": (
        in_zip([("hw.ipynb", NOTEBOOK), *[("d/" * level, b"") for level in range(1, 1_201)]]),
        f"export.zip has folders nested more than {MAX_DEPTH} deep"),
    "a zip compressed with bzip2": (in_zip([("hw.ipynb", NOTEBOOK)], zipfile.ZIP_BZIP2), GRADED),
    "a zip compressed with LZMA": (in_zip([("hw.ipynb", NOTEBOOK)], zipfile.ZIP_LZMA), GRADED),
    "a zip whose notebook is a folder": (in_zip([("hw.ipynb/", b""), ("hw.ipynb/x", b"x")]), "no .ipynb notebook"),
    "a notebook that is not UTF-8": (in_zip([("hw.ipynb", b"\xff\xfe{\x00")]), "the notebook cannot be read"),
    "a notebook nested 100,000 deep in JSON": (files({"hw.ipynb": b"[" * 100_000 + b"]" * 100_000}),
                                               "the notebook cannot be read"),
    **junk_cases(),
}


def graded_or_reason(folder: Path, scratch: Path) -> str:
    """GRADED if the submission's notebook is found and read, else the reason; anything else raises."""
    try:
        read_notebook(find_notebook(folder, scratch)[0], ASSIGNMENT)
    except SubmissionProblem as problem:
        reason = str(problem)
        assert reason and "\n" not in reason and printable(reason) == reason and len(reason) < 500, reason
        return reason
    return GRADED


@pytest.mark.parametrize("case", CASES)
def test_every_submission_gets_its_notebook_or_a_reason_and_is_removed_whole(shared_folder: Path, case: str) -> None:
    build, expected = CASES[case]
    top = shared_folder / "case"
    folder, scratch = top / "submission", top / "scratch"
    folder.mkdir(parents=True)
    scratch.mkdir()
    try:
        build(folder)
        outcome = graded_or_reason(folder, scratch)
        assert outcome == GRADED if expected == GRADED else re.search(expected, outcome), outcome
        assert {path.name for path in scratch.iterdir()} <= {"notebook-from-zip.ipynb"}
        assert sorted(path.name for path in top.iterdir()) == ["scratch", "submission"]
    finally:
        left_behind = remove_tree(top)
    assert left_behind == [] and not top.exists()


@pytest.mark.parametrize("what", ["folder", "notebook", "zip"])
def test_a_submission_the_grader_cannot_read_gets_a_reason(shared_folder: Path, what: str) -> None:
    """Mode 000 means nothing to root; a grader without root gets a reason instead of the notebook."""
    (shared_folder / "submission").mkdir()
    (shared_folder / "scratch").mkdir(mode=0o777)
    (shared_folder / "scratch").chmod(0o777)
    closed(0o000, what)(shared_folder / "submission")
    outcome = as_unprivileged(graded_or_reason, shared_folder / "submission", shared_folder / "scratch")
    expected = {"folder": r"a folder of the submission cannot be read \(locked: Permission denied\)",
                "notebook": r"the notebook cannot be read \(PermissionError\)",
                "zip": "export.zip is not a readable zip file"}[what]
    assert re.search(expected, outcome), outcome


# ---------------------------------------------------------------------------------------------
# remove_tree: any tree, as root and as an unprivileged user


def deep_long_names(top: Path) -> None:
    nest(top, 1_500, b"n" * 200 + b"\xff", {b"file": b"x", b"\xff\xfe\n": b"y"})


def wide(top: Path) -> None:
    top.mkdir()
    for index in range(3_000):
        (top / f"folder-{index}").mkdir()
        (top / f"file-{index}").write_bytes(b"x")


def closed_modes(top: Path) -> None:
    write_files(top, {"a/b/c/file": b"x", "a/b/other": b"y", "ro/file": b"z", "plain": b"p"})
    for path, mode in (("a/b/c/file", 0o000), ("a/b/c", 0o000), ("a/b", 0o500), ("a", 0o000), ("ro", 0o555),
                       ("plain", 0o000), ("", 0o500)):
        (top / path).chmod(mode)


def links_outward(top: Path) -> None:
    outside = top.parent / "outside"
    write_files(outside, {"kept.txt": b"kept"})
    write_files(top, {"sub/file": b"x"})
    (top / "to-a-file").symlink_to(outside / "kept.txt")
    (top / "sub" / "to-a-folder").symlink_to(outside, target_is_directory=True)
    (top / "dangling").symlink_to(top.parent / "nowhere")
    (top / "to-itself").symlink_to(top)


def special_and_odd_names(top: Path) -> None:
    write_files(top, {b"\xff\xfe/\x1b[2J\n": b"x", "\u202e/\x7f": b"y"})
    os.mkfifo(top / "fifo")
    with socket.socket(socket.AF_UNIX) as unix:
        unix.bind(str(top / "socket"))


def a_file(top: Path) -> None:
    top.write_bytes(b"just a file")


def a_link_to_a_folder(top: Path) -> None:
    write_files(top.parent / "outside", {"kept.txt": b"kept"})
    top.symlink_to(top.parent / "outside", target_is_directory=True)


TREES: dict[str, Builder] = {
    "1,500 nested folders of 200-byte names, not UTF-8 (paths far past PATH_MAX)": deep_long_names,
    "3,000 folders and 3,000 files side by side": wide,
    "files and folders of mode 000 and 500, the top too": closed_modes,
    "links to a file, to a folder, to nowhere and to the top": links_outward,
    "a fifo, a socket and names with escapes, newlines and bytes that are not UTF-8": special_and_odd_names,
    "a file where the folder was": a_file,
    "a link to a folder where the folder was": a_link_to_a_folder,
    "nothing at all": lambda top: None,
}


def make_and_remove(base: str, tree: str) -> dict:
    """Make the tree in `base`, remove it; what remove_tree said and what is left (JSON for a child)."""
    top = Path(base) / "top"
    TREES[tree](top)
    notes = remove_tree(top)
    outside = Path(base) / "outside" / "kept.txt"
    return {"notes": notes, "left": os.path.lexists(top),
            "outside kept": outside.read_bytes() == b"kept" if os.path.lexists(outside.parent) else None}


@pytest.mark.parametrize("user", ["root", "unprivileged"])
@pytest.mark.parametrize("tree", TREES)
def test_remove_tree_removes_any_tree_and_follows_no_link(shared_folder: Path, tree: str, user: str) -> None:
    if user == "unprivileged":
        if os.geteuid() == 0:
            os.chown(shared_folder, UNPRIVILEGED, UNPRIVILEGED)
        done = as_unprivileged(make_and_remove, str(shared_folder), tree)
    else:
        done = make_and_remove(str(shared_folder), tree)
    assert done["notes"] == [] and not done["left"], done
    assert done["outside kept"] in (True, None), "a link was followed"


@pytest.mark.sandbox  # needs root, to make a folder the unprivileged user cannot remove
def test_a_tree_that_cannot_be_removed_gives_a_note_never_an_exception(shared_folder: Path) -> None:
    top = shared_folder / "top"
    write_files(top, {"mine/file": b"x", "roots/secret": b"y"})
    for path in (top, top / "mine", top / "mine" / "file"):
        os.chown(path, UNPRIVILEGED, UNPRIVILEGED)
    (top / "roots").chmod(0o700)  # root's, closed to the user who removes the rest
    notes = as_unprivileged(lambda: remove_tree(top))
    assert len(notes) == 1 and notes[0].startswith(f"could not remove all of {top}: "), notes
    assert notes[0].endswith("the first: roots: Operation not permitted")
    assert sorted(path.name for path in top.iterdir()) == ["roots"]


# ---------------------------------------------------------------------------------------------
# make grade's staging copy, which once used shutil.copytree


def test_stage_copies_an_odd_folder_file_by_file(tmp_path: Path) -> None:
    contents = {b"\xff\xfe.ipynb": NOTEBOOK, "sub/\x1b[2J/notes.txt": b"x", "._junk": b"y", "empty.pkl": b""}
    write_files(tmp_path / "upload", contents)
    (tmp_path / "upload" / "empty-folder").mkdir()
    staged = stage(tmp_path / "upload", tmp_path / "staged")
    assert {os.fsencode(path.relative_to(staged)): path.read_bytes() for path in staged.rglob("*") if path.is_file()} \
        == {os.fsencode(name): data for name, data in contents.items()}


def test_stage_refuses_a_folder_nested_too_deep_before_copying_anything(shared_folder: Path) -> None:
    write_files(shared_folder / "upload", {"hw.ipynb": NOTEBOOK})
    nest(shared_folder / "upload", 1_500)
    with pytest.raises(SubmissionProblem, match=f"nested more than {MAX_DEPTH} deep"):
        stage(shared_folder / "upload", shared_folder / "staged")
    assert list((shared_folder / "staged").iterdir()) == []


def test_engine_docker_stages_through_the_same_path_and_under_names_of_its_own(tmp_path: Path) -> None:
    """ENGINE=docker hands otter grade one notebook per submission, found as make grade finds it: a
    link to a classmate's notebook is refused, not copied, and a folder `alice` and a notebook
    `alice.ipynb` (or any two names) never stage under one name."""
    batch, staging = tmp_path / "batch", tmp_path / "staging"
    staging.mkdir()
    write_files(batch, {"alice/hw.ipynb": b"folder", "alice.ipynb": b"notebook", "classmate/hw.ipynb": b"theirs"})
    write_zip(batch / "carol.zip", [("hw.ipynb", b"zipped"), ("__MACOSX/._hw.ipynb", b"junk")])
    (batch / "mallory").mkdir()
    (batch / "mallory" / "hw.ipynb").symlink_to(batch / "classmate" / "hw.ipynb")
    staged, refused = {}, {}
    for number, found in enumerate(find_submissions(batch)):
        try:
            notebook, flags = docker_input(found, number, staging)
            staged[found.name] = (notebook.name, notebook.read_bytes(), flags)
        except SubmissionProblem as problem:
            refused[found.name] = str(problem)
    assert staged == {"alice": ("0.ipynb", b"folder", []), "alice.ipynb": ("1.ipynb", b"notebook", []),
                      "carol.zip": ("2.ipynb", b"zipped", []), "classmate": ("3.ipynb", b"theirs", [])}
    assert refused == {"mallory": "the submission contains a symbolic link (hw.ipynb), which is never followed; "
                                  "submit the notebook itself"}
    assert sorted(path.name for path in staging.iterdir()) == ["0.ipynb", "1.ipynb", "2.ipynb", "3.ipynb"]


# ---------------------------------------------------------------------------------------------
# /proc, read as bytes


def start_renamed(folder: Path, **options: object) -> subprocess.Popen:
    """`sleep 600`, started through a link whose name (not UTF-8) becomes the process's name."""
    link = folder / os.fsdecode(NON_UTF8_NAME)
    link.symlink_to(shutil.which("sleep"))
    process = subprocess.Popen([link, "600"], **options)
    deadline = time.monotonic() + 5
    while process.pid not in processes_named(NON_UTF8_NAME):  # Popen may return before the kernel renames it
        assert time.monotonic() < deadline, "the process never took the link's name"
        time.sleep(0.01)
    return process


def processes_named(name: bytes) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_bytes() == name + b"\n":
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def test_user_processes_finds_a_process_whose_name_is_not_utf8(tmp_path: Path) -> None:
    process = start_renamed(tmp_path)
    try:
        assert (Path("/proc", str(process.pid), "status").read_bytes().split(b"\n")[0] ==
                b"Name:\t" + NON_UTF8_NAME)
        assert process.pid in gradescope_run.user_processes(os.getuid())
    finally:
        process.kill()
        process.wait()


@pytest.mark.sandbox  # needs root, to start a process as another user and kill it as that user
def test_kill_user_processes_kills_a_process_whose_name_is_not_utf8(shared_folder: Path) -> None:
    uid = 64_123  # a user of this test's alone (the sandboxes use 20000 and up, Gradescope's notebook nobody)
    process = start_renamed(shared_folder, user=uid, group=uid, extra_groups=[], start_new_session=True)
    try:
        gradescope_run.kill_user_processes(uid)
        assert process.wait(timeout=10) == -9
        assert gradescope_run.user_processes(uid) == []
    finally:
        process.kill()
        process.wait()


# ---------------------------------------------------------------------------------------------
# End to end, beside the honest twin, on make grade's engine and Gradescope's entry point

EXPORT = "otter's own export of the twin"
MACOS = "macOS's Compress of the twin"
NESTED_CELL, RENAMED = HOSTILE_CELLS
NESTED_FOLDER = "a folder of the twin beside 1,200 nested folders"
NESTED_ZIP = "a zip of the twin beside 1,200 nested folders"
BAD_CRC = "a zip of the twin with a bad CRC-32"
DEFLATE64 = "a zip of the twin compressed with Deflate64"
REFUSED = {NESTED_FOLDER: f"nested more than {MAX_DEPTH} deep", NESTED_ZIP: f"nested more than {MAX_DEPTH} deep",
           BAD_CRC: r"is damaged \(BadZipFile\)", DEFLATE64: "compressed with Deflate64"}
# What the notebook's submit cell does, outside a kernel: run the cells (their checks write otter's
# log), then export the saved notebook as the cell does.
EXPORT_SCRIPT = """
import nbformat
namespace = {"__name__": "__main__"}
for cell in nbformat.read("backpropagation.ipynb", as_version=4).cells:
    if cell.cell_type == "code" and "otter_ignore" not in cell.metadata.get("tags", []):
        exec("\\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))),
             namespace)
namespace["grader"].export("backpropagation.ipynb", export_path="export.zip", pdf=False, display_link=False)
"""


@pytest.fixture(scope="module")
def otter_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The twin as the notebook's submit cell exports it, made once for both paths: the zip holds
    otter's .OTTER_LOG."""
    work = tmp_path_factory.mktemp("otter-export")
    shutil.copytree(STUDENT_NOTEBOOK.parent / "tests", work / "tests")
    shutil.copy(STUDENT_NOTEBOOK.parent / "backprop_checks.py", work)
    write_twin(work / "backpropagation.ipynb")
    subprocess.run([sys.executable, "-c", EXPORT_SCRIPT], cwd=work, check=True, capture_output=True)
    with zipfile.ZipFile(work / "export.zip") as archive:
        assert {".OTTER_LOG", "backpropagation.ipynb", "__zip_filename__"} <= set(archive.namelist())
    return work / "export.zip"


def zipped_in_a_folder(write: Callable[[Path], Path]) -> Callable[[Path], Path]:
    """A folder submission holding the zip that `write` makes."""
    def folder(path: Path) -> Path:
        write(path / "export.zip")
        return path
    return folder


def write_hostile(folder: Path, names: list[str], otter_export: Path) -> dict[str, Path]:
    """The twin and each named hostile submission in `folder`: {name: path}."""
    writers: dict[str, Callable[[Path], Path]] = {
        EXPORT: lambda path: Path(shutil.copy(otter_export, path.with_suffix(".zip"))),
        MACOS: lambda path: write_macos_zip(path.with_suffix(".zip")),
        NESTED_FOLDER: write_nested_folder,
        NESTED_ZIP: lambda path: write_nested_zip(path.with_suffix(".zip")),
        BAD_CRC: zipped_in_a_folder(write_bad_crc_zip),
        DEFLATE64: zipped_in_a_folder(write_deflate64_zip),
        **{name: (lambda path, name=name: write_attack(*HOSTILE_CELLS[name], path.with_suffix(".ipynb")))
           for name in HOSTILE_CELLS}}
    paths = {"honest twin": write_twin(folder / "honest-twin.ipynb")}
    for index, name in enumerate(names):
        paths[name] = writers[name](folder / f"hostile-{index}")
    return paths


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory, otter_export: Path) -> Iterator[dict[str, Graded]]:
    """The twin and every hostile submission, graded in one batch by make grade's engine."""
    base = tmp_path_factory.mktemp("hostile-batch")
    names = [EXPORT, MACOS, NESTED_CELL, RENAMED, NESTED_FOLDER, NESTED_ZIP, BAD_CRC, DEFLATE64]
    try:
        paths = write_hostile(base / "submissions", names, otter_export)
        results = grade_fast(base / "submissions", base / "grades")
        for path in paths.values():
            results[path.name].row["log"] = (base / "grades" / RESULTS_DIR / path.name / "log.txt").read_text()
        yield {name: results[path.name] for name, path in paths.items()}
    finally:
        assert remove_tree(base) == []


@pytest.fixture(scope="module")
def gradescope(tmp_path_factory: pytest.TempPathFactory, otter_export: Path) -> Iterator[dict[str, Graded]]:
    """The hostile submissions that meet Gradescope's own code (its /proc, its scratch folder, the
    folder it unpacks an upload into), through the zip's entry point, two at a time. An uploaded
    zip is unpacked as Gradescope does, so the damaged zips come inside a folder."""
    base = tmp_path_factory.mktemp("hostile-gradescope")
    names = [EXPORT, MACOS, NESTED_CELL, RENAMED, NESTED_ZIP, BAD_CRC, DEFLATE64]
    try:
        paths = write_hostile(base / "submissions", names, otter_export)
        del paths["honest twin"]  # graded on this path by test_integrity.py: it earns TWIN_SCORES
        with ThreadPoolExecutor(max_workers=2) as pool:
            yield dict(zip(paths, pool.map(grade_gradescope, paths.values())))
    finally:
        assert remove_tree(base) == []


@pytest.mark.sandbox
def test_the_twin_scores_as_designed(batch: dict[str, Graded]) -> None:
    assert batch["honest twin"].scores == TWIN_SCORES


@pytest.mark.sandbox
@pytest.mark.parametrize("name", [EXPORT, MACOS])
def test_an_honest_export_earns_what_the_notebook_earns_unflagged(batch: dict[str, Graded],
                                                                 gradescope: dict[str, Graded], name: str) -> None:
    for graded in (batch[name], gradescope[name]):
        assert graded.scores == TWIN_SCORES, graded.visible
        assert "flag:" not in graded.notes, graded.notes
    assert batch[name].row["integrity"] == "" and batch[name].row["grading_status"].startswith("Completed")


@pytest.mark.sandbox
@pytest.mark.parametrize("name", [NESTED_CELL, RENAMED, NESTED_FOLDER, NESTED_ZIP, BAD_CRC, DEFLATE64])
def test_a_hostile_submission_ends_with_a_result_and_a_reason(batch: dict[str, Graded],
                                                              gradescope: dict[str, Graded], name: str) -> None:
    for path, graded in (("make grade", batch[name]), ("Gradescope", gradescope.get(name))):
        if graded is None:  # a folder upload is what Gradescope unpacks a zip into: NESTED_ZIP there
            continue
        assert set(graded.scores) == set(QUESTIONS), (path, graded.results)
        assert all(graded.scores[q] <= TWIN_SCORES[q] for q in QUESTIONS), (path, graded.scores)
        assert "Autograder failed" not in json.dumps(graded.results) and "grader error" not in graded.notes, path
        if name in REFUSED:
            assert re.search(f"not graded: .*{REFUSED[name]}", graded.visible), (path, graded.visible)
        else:
            assert graded.scores == TWIN_SCORES, (path, graded.visible)
            assert "could not remove" not in graded.notes, (path, graded.notes)
    status = batch[name].row["grading_status"]
    assert re.match("Not graded: " if name in REFUSED else "Completed", status), status


@pytest.mark.sandbox
def test_the_hostile_cells_ran_and_no_process_outlives_grading(batch: dict[str, Graded],
                                                               gradescope: dict[str, Graded]) -> None:
    """On Gradescope, a grading that ends at all has killed every process of the notebook's user
    (kill_user_processes waits until /proc lists none), which the renamed process once stopped."""
    assert "STARTED" in batch[RENAMED].row["log"] and "NESTED 1500" in batch[NESTED_CELL].row["log"]
    assert processes_named(NON_UTF8_NAME) == []
