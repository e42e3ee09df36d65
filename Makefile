# Two entry points (train, test); each creates the virtual environment on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: train test lint peers gpu-wheels gpu-check

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


# A GPU machine without network: `make gpu-wheels` here downloads what it lacks (pydantic and its
# dependencies for its Python, GPU_PYTHON; pytorch-metric-learning for the reference tests) into
# .gpu-wheels/; there, `make gpu-check` installs them into a temporary folder and runs the CUDA
# tests, the CUDA benchmarks and two short CUDA trainings (benchmarks/gpu_check.py).
GPU_PYTHON ?= 3.12
GPU_PY ?= python3
PIP ?= $(PY) -m pip
WHEELS := .gpu-wheels

gpu-wheels:
	$(PIP) download --quiet --only-binary=:all: --dest $(WHEELS) \
		--python-version $(GPU_PYTHON) --platform manylinux2014_x86_64 pydantic
	$(PIP) download --quiet --only-binary=:all: --dest $(WHEELS) --no-deps \
		"pytorch-metric-learning>=2.5"

gpu-check:
	PYTHONPATH=src $(GPU_PY) benchmarks/gpu_check.py --wheels $(WHEELS) $(ARGS)
