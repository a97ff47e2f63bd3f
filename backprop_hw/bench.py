"""Time `make grade` against a sequential `otter run` loop on the same submissions.

    python -m backprop_hw.bench [--copies 5]

The set is the well-formed example submissions (ones `otter run` can finish: it has no timeout),
each copied `--copies` times. Both ways are timed from the command line, start-up included; the
scores must agree question by question. Prints both times, seconds per submission and the ratio.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backprop_hw.paths import AUTOGRADER_ZIP, EXAMPLES, ROOT
from backprop_hw.results import GRADES_CSV, read_grades
WELL_FORMED = ("correct.ipynb", "partly-wrong.ipynb", "blank.ipynb", "export.zip")


def make_set(folder: Path, copies: int, names: tuple[str, ...] = WELL_FORMED) -> list[Path]:
    """Copy each example `copies` times into `folder`; return the copies."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for copy in range(copies):
        for name in names:
            path = folder / f"{copy:02d}-{name}"
            shutil.copy(EXAMPLES / name, path)
            paths.append(path)
    return paths


def time_make_grade(folder: Path, out: Path) -> tuple[float, dict[str, dict[str, float]]]:
    """Seconds `python -m backprop_hw.grading` takes on `folder`, and its scores by file and question."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "backprop_hw.grading", str(folder), "--out", str(out)], check=True,
                   cwd=ROOT, stdout=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    grades = read_grades(out / GRADES_CSV)
    return seconds, {row["file"]: {question: float(row[grades.score_columns[question]]) for question in grades.points}
                     for row in grades.rows}


def time_otter_run(paths: list[Path], out: Path) -> tuple[float, dict[str, dict[str, float]]]:
    """Seconds a sequential `otter run` loop takes on `paths`, and its scores by file and question."""
    scores = {}
    started = time.monotonic()
    for path in paths:
        output = out / path.name
        output.mkdir(parents=True)
        subprocess.run([sys.executable, "-m", "otter", "run", "-a", str(AUTOGRADER_ZIP), "-o", str(output), str(path)],
                       check=True, capture_output=True, cwd=output)
        results = json.loads((output / "results.json").read_text())
        scores[path.name] = {test["name"]: float(test["score"]) for test in results["tests"] if "score" in test}
    return time.monotonic() - started, scores


def bench(copies: int, names: tuple[str, ...] = WELL_FORMED) -> dict:
    """Run both ways on the same set; return times, the ratio and any disagreements."""
    with tempfile.TemporaryDirectory(prefix="backprop-bench-") as temporary:
        folder = Path(temporary)
        paths = make_set(folder / "submissions", copies, names)
        ours, our_scores = time_make_grade(folder / "submissions", folder / "grades")
        theirs, their_scores = time_otter_run(paths, folder / "otter-run")
    disagreements = [f"{name}: make grade {our_scores.get(name)} != otter run {scores}"
                     for name, scores in their_scores.items() if our_scores.get(name) != scores]
    return {"submissions": len(paths), "make_grade_seconds": ours, "otter_run_seconds": theirs,
            "ratio": theirs / ours, "disagreements": disagreements, "scores": their_scores}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=5, help="copies of each well-formed example (default 5)")
    result = bench(parser.parse_args().copies)
    n = result["submissions"]
    print(f"{n} submissions ({', '.join(WELL_FORMED)} x {n // len(WELL_FORMED)})")
    print(f"  make grade (sandboxed, parallel): {result['make_grade_seconds']:6.1f} s"
          f"  ({result['make_grade_seconds'] / n:.2f} s per submission)")
    print(f"  otter run loop (unsandboxed):     {result['otter_run_seconds']:6.1f} s"
          f"  ({result['otter_run_seconds'] / n:.2f} s per submission)")
    print(f"  throughput ratio: {result['ratio']:.1f}x")
    for line in result["disagreements"]:
        print(f"  SCORES DISAGREE: {line}")
    return 1 if result["disagreements"] else 0


if __name__ == "__main__":
    sys.exit(main())
