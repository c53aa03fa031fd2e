# One entry point for newcomers and CI. Everything installs into ./.venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup render check test test-profile coverage lint schema clean toolchain e2e e2e-node local-cluster bench bench-claims bench-engine bench-admission sizing-proof

setup: $(STAMP)

# Setup talks on stderr only: `make render > dev.yaml` must write nothing but YAML.
$(STAMP): requirements.txt requirements.lock pyproject.toml
	@echo "setting up $(VENV) (pinned: requirements.txt + requirements.lock)" >&2
	@{ $(PYTHON) -m venv $(VENV) \
	  && $(BIN)/pip install --quiet --upgrade pip \
	  && $(BIN)/pip install --quiet -r requirements.txt -c requirements.lock \
	  && $(BIN)/pip install --quiet --no-deps -e . ; } >&2
	@# The policy pack's virtualenv (policies/PulumiPolicy.yaml) is the project's: same pins.
	@ln -sfn ../$(VENV) policies/venv
	@touch $(STAMP)

## The main job: render the dev stack offline (no cluster, no Pulumi CLI needed).
render: setup
	@$(BIN)/python -m sandbox_infra render --stack dev

## Every stack of the fleet against the policy rules (offline); fails on a mandatory violation.
check: setup
	@$(BIN)/python -m sandbox_infra fleet check

## The test suite (offline; the e2e tests are left out), spread over the machine's cores.
test: setup
	@$(BIN)/python -m pytest -m "not e2e" -n auto

## Where the offline suite's time goes: the 15 slowest tests and the time per file.
test-profile: setup
	@$(BIN)/python -m benchmarks.suite_profile

## Line coverage of components/, policies/ and sandbox_infra/ by the offline suite.
coverage: setup
	@$(BIN)/python -m pytest -m "not e2e" -n auto -q -p no:cacheprovider --cov=components --cov=sandbox_policy \
		--cov=sandbox_infra --cov-report=term:skip-covered --cov-report=xml:.cache/coverage.xml

## Build etcd, kube-apiserver, the agent-sandbox controller and the Pulumi engine pieces
## from Go modules into ~/.cache/sandbox-infra/toolchain (cached; see tools/README.md).
toolchain:
	@tools/build.sh

## End-to-end tests against a live control plane; each skips with the reason when a
## binary it needs could not be built (-rsP: skip reasons and the API server messages printed).
## Modules own their control planes, so they run side by side, a whole module per worker
## (--dist loadfile), the longest first (measured: docs/benchmarks.md). --no-loadscope-reorder keeps
## this order: by default xdist starts the modules with the most tests first, which left the longest
## single test (the README's) to the end. E2E_WORKERS=0 runs them one after the other in one process.
E2E_WORKERS ?= 2
E2E_FIRST = tests/e2e/test_readme_deploy.py tests/e2e/test_yaml_example.py tests/e2e/test_pulumi_engine.py \
	tests/e2e/test_pulumi_upgrade.py tests/e2e/test_monitoring.py tests/e2e/test_pulumi_stacks.py \
	tests/e2e/test_pulumi_fleet.py tests/e2e/test_api_server.py tests/e2e/test_admission.py tests/e2e/test_pool_readiness.py
# Every file named, in this order (a directory argument would collect them alphabetically).
E2E_FILES = $(E2E_FIRST) $(filter-out $(E2E_FIRST) tests/e2e/test_node.py,$(sort $(wildcard tests/e2e/test_*.py)))
e2e: setup
	@$(BIN)/python -m pytest -m e2e -rsP -n $(E2E_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15 $(E2E_FILES)

## End-to-end tests on a real node (containerd + runc from Debian, the kubelet from tools/build.sh):
## pods that really run. Root only; each test skips with the reason when a piece is missing.
e2e-node: setup
	@$(BIN)/python -m pytest -m e2e -rsP tests/e2e/test_node.py

## A local control plane (the e2e one) to run `pulumi up` against, until Ctrl-C; see README.
local-cluster: setup
	@$(BIN)/python -m tests.e2e.local_cluster

## Claim-to-bound latency, warm claims vs cold sandboxes, on the e2e control plane (prints figures).
bench-claims: setup
	@$(BIN)/python -m benchmarks.claim_latency

## Admission latency of the dev stack's objects, generated policies in enforce vs off (prints figures).
bench-admission: setup
	@$(BIN)/python -m benchmarks.admission_latency

## `pulumi up` / no-op `up` / `preview` of the dev stack against kubectl apply / re-apply / diff of the
## same objects, side by side on two fresh e2e control planes (prints times and ratios).
bench-engine: setup
	@tools/build.sh kubectl >&2
	@$(BIN)/python -m benchmarks.pulumi_engine

lint: setup
	@$(BIN)/ruff check .

## The component package's schema (provider/schema.json), inferred from the components' args
## classes; tests/test_package.py fails until it is regenerated after an API change.
schema: setup
	@$(BIN)/python -m sandbox_infra.package

## Speed figures (not part of `make test`; see docs/benchmarks.md).
bench: setup
	@$(BIN)/python -m benchmarks

## The warm-pool sizing model checked by simulation over a grid (docs/sizing.md).
sizing-proof: setup
	@$(BIN)/python -m components.sizing.proof

clean:
	@rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
