# The homework's build, checks and grading. `make` builds, `make test` checks.
PYTHON_BOOTSTRAP ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Everything in requirements.txt imports: a missing or broken .venv is rebuilt, never trusted.
VENV_OK := $(VENV)/.requirements-installed

.PHONY: all build test venv clean-venv pdfs

all: build

$(VENV_OK): requirements.txt
	@if ! $(PY) -c "import otter, numpy, matplotlib, nbformat, nbclient, pytest" 2>/dev/null; then \
		echo "creating $(VENV) from requirements.txt"; rm -rf $(VENV); $(PYTHON_BOOTSTRAP) -m venv $(VENV); fi
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

venv: $(VENV_OK)
	@$(PY) -c "import otter, numpy, matplotlib, nbformat, nbclient, pytest" 2>/dev/null || \
		{ echo "$(VENV) is broken: rebuilding"; rm -rf $(VENV); $(MAKE) --no-print-directory $(VENV_OK); }

build: venv
	$(PY) -m backprop_hw.build

test: venv
	$(PY) -m pytest package_tests

# PDFs need Chromium (or LaTeX), which otter does not find on every machine: optional, not committed.
pdfs: venv
	$(PY) -m otter export --exporter html solutions/backpropagation.ipynb solutions/backpropagation.pdf

clean-venv:
	rm -rf $(VENV)
