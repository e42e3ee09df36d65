# Two entry points; each creates the virtual environment on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: train test lint peers

$(BIN)/losskit: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned to the release this machine serves as a CPU build;
	# the package itself only asks for torch>=2.4.
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[all,dev,reference]"
	touch $(BIN)/losskit

train: $(BIN)/losskit
	$(BIN)/losskit train $(ARGS)

lint: $(BIN)/losskit
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy

# Peer loss files (timm, lightly) from their pinned wheels, for the reference tests.
peers: $(BIN)/losskit
	-$(BIN)/python -m tests.peers

test: lint peers
	$(BIN)/pytest -n 2 $(ARGS)

