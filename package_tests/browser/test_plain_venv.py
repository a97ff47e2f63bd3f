"""A Jupyter whose Python has only a kernel: a plain `python -m venv` with ipykernel alone. The
set-up cell installs what the notebook imports from PyPI (for real: nothing is cached in the
repository), and Run All, cell by cell and stopping at the first error as Jupyter's does, reaches
the submission cell and its zip, for the blank and the solved notebook."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from backprop_hw import colab
from backprop_hw.paths import NOTEBOOK, ROOT

pytestmark = pytest.mark.browser

PACKAGES = colab.runtime_packages(colab.otter_requirement(ROOT / "requirements.txt"))  # module: pin


class PlainVenv:
    """A fresh virtual environment holding ipykernel (as pinned in requirements.txt) and nothing else,
    with a kernel spec for it."""

    def __init__(self, folder: Path) -> None:
        self.python = folder / "venv" / "bin" / "python"
        [ipykernel] = [pin for pin in colab.pins(ROOT / "requirements.txt") if pin.startswith("ipykernel==")]
        for command in ([sys.executable, "-m", "venv", str(folder / "venv")],
                        [str(self.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", ipykernel]):
            result = subprocess.run(command, capture_output=True, text=True)
            assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}"
        spec = folder / "kernels" / "plain"
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [str(self.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python (plain venv)", "language": "python"}))
        self.kernels = KernelSpecManager(kernel_dirs=[str(folder / "kernels")])
        # What a kernel started outside this test environment sees: no trace of .venv.
        path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(sys.prefix) not in Path(p).parents
                               and Path(p) != Path(sys.prefix) / "bin")
        self.env = {**{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}, "PATH": path}

    def imports(self, module: str) -> bool:
        return subprocess.run([str(self.python), "-c", f"import {module}"], capture_output=True).returncode == 0

    def installed(self, pin: str) -> str:
        """The pinned package's installed version."""
        name = pin.split("==")[0]
        return subprocess.run([str(self.python), "-c", f"import importlib.metadata as m; print(m.version({name!r}))"],
                              capture_output=True, text=True, check=True).stdout.strip()

    def run_all(self, built: str, folder: Path) -> nbformat.NotebookNode:
        """Run a copy of the built notebook, renamed and alone in `folder`, top to bottom like Run All:
        the first error stops the run (CellExecutionError)."""
        folder.mkdir()
        path = folder / "my homework.ipynb"
        shutil.copy(ROOT / built / NOTEBOOK, path)
        notebook = nbformat.read(path, as_version=4)
        manager = KernelManager(kernel_name="plain", kernel_spec_manager=self.kernels)
        try:
            NotebookClient(notebook, km=manager, timeout=900, resources={"metadata": {"path": str(folder)}}).execute(
                env=self.env)
        finally:
            if manager.has_kernel:  # nbclient leaves alone a kernel it was given
                manager.shutdown_kernel(now=True)
        return notebook


@pytest.fixture(scope="module")
def plain_venv(tmp_path_factory: pytest.TempPathFactory) -> PlainVenv:
    venv = PlainVenv(tmp_path_factory.mktemp("plain"))
    assert not any(venv.imports(module) for module in PACKAGES)  # only a kernel
    return venv


def outputs(cell: nbformat.NotebookNode, name: str) -> str:
    return "".join(output.get("text", "") for output in cell.outputs if output.get("name") == name)


def shown(cell: nbformat.NotebookNode) -> str:
    return "\n".join(output.get("text", "") + output.get("data", {}).get("text/html", "") for output in cell.outputs)


@pytest.mark.parametrize("built", ["student", "solutions"])
def test_run_all_in_a_plain_venv_reaches_the_zip(plain_venv: PlainVenv, built: str, tmp_path: Path) -> None:
    missing = [pin for module, pin in PACKAGES.items() if not plain_venv.imports(module)]
    notebook = plain_venv.run_all(built, tmp_path / "downloads")
    [set_up] = [cell for cell in notebook.cells if cell.source.startswith("#@title Set up the checks")]
    [closing] = [cell for cell in notebook.cells if cell.source.startswith("#@title Check everything and submit")]
    said = "The checks are set up. Run the cells in order; below each answer, its grader.check cell checks it.\n"
    if missing:
        assert outputs(set_up, "stdout") == f"Installing {', '.join(missing)} ...\n{said}"
    else:
        assert outputs(set_up, "stdout") == said  # nothing already installed is touched
    assert all(plain_venv.installed(pin) == pin.split("==")[1] for pin in PACKAGES.values())
    assert "here</a> to download it." in shown(closing) and "upload the zip file" in shown(closing)
    assert "Public checks: " in shown(closing)  # the summary, before the link
    assert outputs(closing, "stderr") == ""  # not otter's test kernel's notice either
    assert len(list((tmp_path / "downloads").glob("my homework_*.zip"))) == 1
