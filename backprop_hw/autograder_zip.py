"""The Gradescope zip: otter's own, repacked reproducibly, with the hardened grading entry point.

Reaching past otter here is deliberate: otter's `run_autograder` runs the tests inside the
student's kernel. The repacked zip keeps everything otter generated (setup.sh, the environment,
the config, the tests and support files) and swaps only the command `run_autograder` runs for the
grader package `backprop_hw/autograder` (shipped as `backprop_grader/`), which keeps the tests in a
process the student cannot reach. The master's own settings (`feedback`, `gradescope_timeout`) and
the limits of calls into the student's functions (`call_seconds`) go into otter_config.json, and so
do the digests of the handed-out notebook's code cells, which the scan for tampering leaves out (see
`backprop_hw.autograder.submission`).
"""

import json
import zipfile
from pathlib import Path

import nbformat

from backprop_hw.autograder.submission import HANDED_OUT_CELLS, code_cell_digests
from backprop_hw.paths import GRADER_PACKAGE, ROOT, STUDENT_NOTEBOOK, ZIP_PACKAGE
from backprop_hw.zipfiles import write_zip

OTTER_COMMAND = "python /autograder/source/run_otter.py"
HARDENED_COMMAND = f"cd /autograder/source && python -m {ZIP_PACKAGE}.gradescope_run /autograder"
EXECUTABLES = ("run_autograder", "setup.sh")


def grader_files() -> dict[str, bytes]:
    """The shipped grader, as zip entries: every module of the package, and nothing else."""
    return {f"{ZIP_PACKAGE}/{path.name}": path.read_bytes() for path in sorted(GRADER_PACKAGE.glob("*.py"))}


def pack(otter_zip: Path, destination: Path, settings: dict) -> None:
    """Write the hardened, reproducible autograder zip built from otter's, with `settings` in its configuration."""
    with zipfile.ZipFile(otter_zip) as original:
        entries = {info.filename: original.read(info) for info in original.infolist() if not info.is_dir()}
    run_autograder = entries["run_autograder"].decode()
    if OTTER_COMMAND not in run_autograder:
        raise RuntimeError("otter's run_autograder has changed: update backprop_hw/autograder_zip.py")
    entries["run_autograder"] = run_autograder.replace(OTTER_COMMAND, HARDENED_COMMAND).encode()
    config = json.loads(entries["otter_config.json"])
    # The build writes the student notebook, in the same output tree, before the zip.
    handed_out = nbformat.read(destination.parents[1] / STUDENT_NOTEBOOK.relative_to(ROOT), as_version=4)
    config |= {**settings, HANDED_OUT_CELLS: sorted(code_cell_digests(handed_out))}
    entries["otter_config.json"] = (json.dumps(config, indent=2) + "\n").encode()
    del entries["run_otter.py"]
    write_zip(destination, entries | grader_files(), EXECUTABLES)
