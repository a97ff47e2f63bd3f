"""Where things are: every path of the repository that more than one module needs, defined once."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "backpropagation"
NOTEBOOK = f"{NAME}.ipynb"
ASSIGNMENT = ROOT / "assignment"
MASTER = ASSIGNMENT / NOTEBOOK
STUDENT_NOTEBOOK = ROOT / "student" / NOTEBOOK
SOLUTIONS_NOTEBOOK = ROOT / "solutions" / NOTEBOOK
AUTOGRADER_ZIP = ROOT / "autograder" / f"{NAME}-autograder.zip"
EXAMPLES = ROOT / "examples" / "submissions"
GRADER_PACKAGE = ROOT / "backprop_hw" / "autograder"  # shipped in the zip as ZIP_PACKAGE
ZIP_PACKAGE = "backprop_grader"
