# One entry point for newcomers and CI. Everything installs into ./.venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup render check test lint bench sizing-proof clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -c requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

## The main job: render the dev stack offline (no cluster, no Pulumi CLI needed).
render: setup
	$(BIN)/python -m components render --stack dev

## Every stack of the fleet against the policy rules (offline); fails on a mandatory violation.
check: setup
	$(BIN)/python -m components fleet check

## The test suite (offline).
test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .

## Speed figures (not part of `make test`; see docs/benchmarks.md).
bench: setup
	$(BIN)/python -m benchmarks

## The warm-pool sizing model checked by simulation over a grid (docs/sizing.md).
sizing-proof: setup
	$(BIN)/python -m components.sizing.proof

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
