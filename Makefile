# Two commands do all the set-up: `make demo` and `make test`. Both build .venv from scratch when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

# Two stamps: the demo's install (torch, termmon and its train extra) and, on top of it, what `make test`
# needs (the dev tools), so `make demo` on a fresh clone installs no linters or test runners.
# torch goes in first and alone, pinned: letting pip resolve "torch>=..." would fetch the newest CUDA build.
$(VENV)/.demo-installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[train]'
	touch $@

$(VENV)/.installed: $(VENV)/.demo-installed
	$(BIN)/pip install -q -c constraints.txt -e '.[train,dev]'
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/termmon demo

lint: setup
	$(BIN)/ruff check termmon tests benchmarks
	$(BIN)/ruff format --check termmon tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
