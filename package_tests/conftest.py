"""Shared by the package tests: the paths of the built homework, a check that the committed zip
holds the grader's current source, and the rule for tests that need a sandbox.

Tests marked `sandbox` grade in bubblewrap sandboxes as root. Where that is impossible they are
skipped with the reason, unless BACKPROP_REQUIRE_SANDBOX=1 (as `.ci/run` sets): then they fail.
"""

import functools
import os
import zipfile

import pytest

from backprop_hw import autograder_zip, sandbox
from backprop_hw.paths import ASSIGNMENT, AUTOGRADER_ZIP
from built import POINTS, QUESTIONS  # noqa: F401 (what the build made: the tests import them from here)


def stale_zip_files() -> list[str]:
    """The grader files whose copy in the committed zip differs from the source."""
    expected = autograder_zip.grader_files() | {f"files/{name}": (ASSIGNMENT / name).read_bytes()
                                                for name in ("backprop_checks.py", "backprop_reference.py")}
    with zipfile.ZipFile(AUTOGRADER_ZIP) as archive:
        shipped = {name: archive.read(name) for name in archive.namelist()
                   if name.startswith(f"{autograder_zip.ZIP_PACKAGE}/") or name in expected}
    return sorted(name for name in expected.keys() | shipped.keys() if expected.get(name) != shipped.get(name))


def pytest_sessionstart(session: pytest.Session) -> None:
    stale = stale_zip_files()
    if stale:
        pytest.exit(f"the autograder zip is stale ({', '.join(stale)} differ from the source): run make", returncode=1)


# `make test` runs each module whole on one of three pytest workers (--dist loadscope), in the order
# of the items: the longest modules go first (with --durations=0 on two cores: about 120 and 105 s,
# much of it waiting on clocks, then 45, 40, 35, 25 and 20 s), so that the workers end together and
# the short ones fill in at the end.
LONGEST_FIRST = ("test_grading", "test_integrity", "test_changed_master", "test_colab", "test_corpus",
                 "test_hostile_files", "test_package")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.module.__name__.rsplit(".", 1)[-1]
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each module keeps its own order


@functools.cache
def sandbox_problem() -> str | None:
    try:
        sandbox.find_bwrap()
    except sandbox.SandboxUnavailable as error:
        return str(error)
    return None


@pytest.fixture(autouse=True)
def _sandbox_available(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("sandbox") is None:
        return
    problem = sandbox_problem()
    if problem and os.environ.get("BACKPROP_REQUIRE_SANDBOX") == "1":
        pytest.fail(f"this test grades in a sandbox, which cannot run here: {problem}")
    if problem:
        pytest.skip(f"grading sandbox unavailable: {problem}")
