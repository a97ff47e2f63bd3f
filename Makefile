# The homework's build, checks and grading. `make` builds, `make test` checks, `make help` lists the rest.
# Every path, the ones given on the command line included, is relative to this file's folder, whatever
# folder make runs from (`make -C path` or `make -f path/Makefile`): recipes run there.
# The Makefile's path is MAKEFILE_LIST taken whole (after its leading space), not make's last word of
# it: a folder's name may hold spaces.
HERE := $(shell makefile='$(MAKEFILE_LIST)'; cd "$$(dirname "$${makefile# }")" && pwd)
IN_HERE := cd "$(HERE)" &&
PYTHON_BOOTSTRAP ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The venv is trusted only if it was installed from this very requirements.txt (a copy is kept
# inside it, once its key packages imported) and those packages are still there (found, not
# imported: importing them takes a second of every make); otherwise it is rebuilt from scratch,
# with exactly the packages the file lists (--no-deps: it is a complete freeze).
VENV_STAMP := $(VENV)/installed-requirements.txt
KEY_PACKAGES := otter numpy matplotlib nbformat nbclient pytest jsonschema jupyterlab playwright
VENV_IMPORTS := $(PY) -c "import importlib, sys; [importlib.import_module(name) for name in sys.argv[1:]]" $(KEY_PACKAGES)
VENV_FOUND := $(PY) -c "import importlib.util, sys; sys.exit(any(importlib.util.find_spec(name) is None for name in sys.argv[1:]))" $(KEY_PACKAGES)

# The course's settings live in the master, where every build reads them.
ifeq ($(origin COLAB_REPO),command line)
$(error COLAB_REPO is set in the master now: `colab_repo: org/repo` in the ASSIGNMENT CONFIG of assignment/backpropagation.ipynb)
endif

.PHONY: all help venv build test test-fast test-browser report pdfs clean-venv grade gradescope-check bench bench-gradescope examples
all: build

help:
	@echo "Targets (run from any folder; paths are relative to $(HERE)):"
	@echo "  make                      build student/, solutions/, tests/, the Gradescope zip and the examples"
	@echo "                            from assignment/backpropagation.ipynb, and list what to commit"
	@echo "                            (make VERBOSE=1: otter's report of each failing case, and tracebacks)"
	@echo "  make test                 the package's own test suite (about 2.5 minutes)"
	@echo "  make grade SUBMISSIONS=folder OUT=folder"
	@echo "                            grade a folder of submissions into OUT (default grades/); into an OUT"
	@echo "                            that holds an earlier run, or with PREVIOUS=folder, it says whose"
	@echo "                            scores changed (OUT/changes.csv and the top of the report)"
	@echo "  make report [GRADES=folder]  report.html of the last make grade (or of GRADES)"
	@echo "  make gradescope-check [SUBMISSION=notebook]"
	@echo "                            run the Gradescope zip on one submission (default: the solutions)"
	@echo "  make test-browser         the student's side in headless Chromium"
	@echo "  make test-fast            the unit tests alone, in seconds"
	@echo "  make bench                make grade against a plain otter run loop"
	@echo "  make bench-gradescope     the Gradescope zip on slow and hung notebooks, in Gradescope's default container"
	@echo "  make clean-venv           remove .venv (the next make creates it again)"

venv:
	@$(IN_HERE) if ! { cmp -s requirements.txt $(VENV_STAMP) && $(VENV_FOUND) 2>/dev/null; }; then \
		echo "creating $(VENV): installing the $$(grep -c '==' requirements.txt) packages that requirements.txt pins" \
			"(about 750 MB, a minute or two; pip's log goes to $(VENV)/pip-install.log) ..."; \
		rm -rf $(VENV) && $(PYTHON_BOOTSTRAP) -m venv $(VENV) && \
		{ $(PY) -m pip install --disable-pip-version-check --no-deps -r requirements.txt > $(VENV)/pip-install.log 2>&1 \
			|| { tail -n 30 $(VENV)/pip-install.log; exit 1; }; } && \
		$(VENV_IMPORTS) && cp requirements.txt $(VENV_STAMP) && echo "$(VENV) is ready"; \
	fi

# Everything the master makes, the example submissions and the README's badge included; then what
# changed since the last commit. The course's settings (the Colab repository of the badges, the
# feedback policy) are in the master's ASSIGNMENT CONFIG.
build: venv
	@$(IN_HERE) $(PY) -m backprop_hw.build $(if $(VERBOSE),--verbose)

# The example submissions alone (made from the student and solutions notebooks; part of build).
examples: venv
	@$(IN_HERE) $(PY) -m backprop_hw.examples

# The package's own test suite (package_tests/, configured in pyproject.toml), each module whole on
# one worker (its shared fixtures made once), the longest first (see conftest.py; --no-loadscope-reorder
# keeps that order instead of xdist's, which sorts by the number of tests). One worker more than there
# are cores: several tests wait on a clock (a worker killed at fifteen times the wall-clock limit, a
# stalled pipe, notebooks that loop until their limit), and the extra worker runs tests meanwhile.
# The grading tests need root and bubblewrap; BACKPROP_REQUIRE_SANDBOX=1 makes their absence a failure.
# Python writes its bytecode caches (__pycache__/, ignored by git) even where the environment says not
# to: without them every one of the suite's Python processes compiles the package and pytest rewrites
# every test module's asserts again, seconds of a run that is held to 150 s.
PYTEST := PYTHONDONTWRITEBYTECODE= $(PY) -m pytest
test: venv
	@$(IN_HERE) $(PYTEST) -n $$(( $$(nproc) + 1 )) --dist loadscope --no-loadscope-reorder -m "not browser"

# The unit tests alone: no notebook kernel, no sandbox, seconds.
test-fast: venv
	@$(IN_HERE) $(PYTEST) -m "not slow and not sandbox and not browser"

# The student's evening in headless Chromium (Debian's: apt-get install chromium fonts-noto-color-emoji):
# JupyterLab 4 and Notebook 7 on 127.0.0.1, the report page offline, and a plain venv with only
# ipykernel running both notebooks (package_tests/browser, marked `browser`). Screenshots go to
# build/screenshots/.
test-browser: venv
	@$(IN_HERE) $(PYTEST) -m browser package_tests/browser

# Grade every submission in SUBMISSIONS (notebooks, export zips, Gradescope export folders), each in
# its own bubblewrap sandbox, into OUT: grades.csv and results/<file>/{results.json,feedback.txt,log.txt}.
# ENGINE=docker hands the batch to otter grade's containers instead. OUT is remembered (in
# build/last-grading-run.json) for `make report`. When OUT holds an earlier run (or PREVIOUS names
# another run's folder), OUT/changes.csv lists whose scores changed, on which question and by how much.
SUBMISSIONS ?= examples/submissions
OUT ?= grades
ENGINE ?= bwrap
grade: venv
	@$(IN_HERE) $(PY) -m backprop_hw.grading "$(SUBMISSIONS)" --out "$(OUT)" --engine $(ENGINE) \
		$(if $(PREVIOUS),--previous "$(PREVIOUS)")

# Run the autograder zip's run_autograder as Gradescope would, in a sandbox, check results.json
# against Gradescope's format, and print what the student sees; both are kept in build/gradescope-check/.
# Default SUBMISSION: the solutions, which must score full marks.
gradescope-check: venv
	@$(IN_HERE) $(PY) -m backprop_hw.gradescope_check $(if $(SUBMISSION),"$(SUBMISSION)")

# make grade against a sequential otter run loop on the same submissions: both times and the ratio.
BENCH_COPIES ?= 5
bench: venv
	@$(IN_HERE) $(PY) -m backprop_hw.bench --copies $(BENCH_COPIES)

# The zip's run_autograder on slow and hung notebooks, each in a cgroup held to Gradescope's default
# container (half a CPU, 768 MB): time to results.json, peak memory and points per question.
# BENCH_JOBS notebooks at once (each in its own container).
BENCH_JOBS ?= 1
bench-gradescope: venv
	@$(IN_HERE) $(PY) -m backprop_hw.bench_gradescope --jobs $(BENCH_JOBS)

# The instructor report of a grading run: report.html and its two charts, in GRADES (default: the
# folder the last make grade wrote to, else grades).
report: venv
	@$(IN_HERE) $(PY) -m backprop_hw.report $(if $(GRADES),"$(GRADES)")

# PDFs need Chromium (or LaTeX), which otter does not find on every machine: optional, not committed.
pdfs: venv
	@$(IN_HERE) $(PY) -m otter export --exporter html solutions/backpropagation.ipynb solutions/backpropagation.pdf

clean-venv:
	@$(IN_HERE) rm -rf $(VENV)
