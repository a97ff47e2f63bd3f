"""The Gradescope zip: otter's own, repacked reproducibly, with the hardened grading entry point.

Reaching past otter here is deliberate: otter's `run_autograder` runs the tests inside the
student's kernel. The repacked zip keeps everything otter generated (setup.sh, the environment,
the config, the tests and support files) and swaps only the command `run_autograder` runs for
`backprop_grader/gradescope_run.py`, which keeps the tests in a process the student cannot reach.
"""

import zipfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
GRADER_FILES = ("harness.py", "trusted_grading.py", "gradescope_run.py")
OTTER_COMMAND = "python /autograder/source/run_otter.py"
HARDENED_COMMAND = "python /autograder/source/backprop_grader/gradescope_run.py"
EXECUTABLES = ("run_autograder", "setup.sh")
# A fixed date for every entry, so the archive is byte-for-byte reproducible.
ZIP_DATE = (2024, 1, 1, 0, 0, 0)


def pack(otter_zip: Path, destination: Path) -> None:
    """Write the hardened, reproducible autograder zip built from otter's."""
    with zipfile.ZipFile(otter_zip) as original:
        entries = {info.filename: original.read(info) for info in original.infolist() if not info.is_dir()}
    run_autograder = entries["run_autograder"].decode()
    if OTTER_COMMAND not in run_autograder:
        raise RuntimeError("otter's run_autograder has changed: update backprop_hw/autograder_zip.py")
    entries["run_autograder"] = run_autograder.replace(OTTER_COMMAND, HARDENED_COMMAND).encode()
    del entries["run_otter.py"]
    entries |= {f"backprop_grader/{name}": (PACKAGE / name).read_bytes() for name in GRADER_FILES}
    destination.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as repacked:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.external_attr = (0o755 if name in EXECUTABLES else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            repacked.writestr(info, entries[name])
