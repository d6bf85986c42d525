# `make demo`: prepare .venv and run the main job on the embedded synthetic data.
# `make test`: prepare .venv and run the test suite (what CI runs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test clean-venv

venv: $(STAMP)

$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python tools/run_demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --durations=15 tests

clean-venv:
	rm -rf $(VENV)
