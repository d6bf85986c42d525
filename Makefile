# `make demo`: prepare .venv and run the main job on the embedded synthetic data.
# `make test`: prepare .venv and run the whole test suite (what CI runs).
# `make test-fast`: the test suite without the slow tier (subprocesses, torchrun, signals, the demo).
# `make lint`: ruff (lint + import order) on the code and tests, mypy on the package.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-fast lint clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python tools/run_demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist worksteal --durations=15 tests

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist worksteal -m "not slow" --durations=10 tests

# Both checks always run (one report of everything); lint fails if either fails.
lint: $(STAMP)
	$(BIN)/ruff check videovit tools tests; ruff_status=$$?; $(BIN)/mypy && exit $$ruff_status

clean-venv:
	rm -rf $(VENV)
