"""The grader that ships: this package is copied, file for file, into the autograder zip as
`backprop_grader/`, and runs on Gradescope as well as in `make grade`.

The rule: modules here import only the standard library, otter-grader, numpy, nbformat and
IPython (what otter's grading environment has; the harness also warms up matplotlib), and each
other by relative import. Never `backprop_hw`: it is not in the zip. `harness.py` imports nothing
of this package at all, because its source alone is run (`python -I -c SOURCE`) as the student's
process.
`package_tests/test_layout.py` enforces both.

- `harness.py`: the untrusted half, in the student's process.
- `trusted.py`: the trusted half; runs the tests and asks the harness for answers.
- `submission.py`: finds and reads a submission without trusting it.
- `feedback.py`: Gradescope's results.json, under the assignment's feedback policy.
- `gradescope_run.py`: Gradescope's entry point.
- `seccomp.py`: the system calls a student's process may not make (sockets but AF_UNIX, keyrings, ...).
"""
