# The two commands: `make setup` (once), then `make test`. `make run` runs the case library;
# `make bench` times it (IMPL=MODULE:FUNCTION to time a plug-in).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CASES  ?= cases
# `make fuzz`: a longer campaign than the one in `make test`. Override on the command line, e.g.
# `make fuzz SEED=7 EXAMPLES=20000 WORKERS=4 IMPL=mypkg.conv:conv2d`.
SEED     ?= 0
EXAMPLES ?= 10000
WORKERS  ?= 2
IMPL     ?=

.PHONY: setup test test-slow test-all lint docs run validate report bound-ratios kill-matrix bench coverage fuzz wheel frameworks matrix matrix-xfail clean

setup:  ## create .venv and install the project with its pinned dependencies
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .

$(PY):
	@echo "No $(VENV) yet: run 'make setup' first." >&2; exit 1

test: $(PY)  ## the fast tier: every module's tests and every YAML case, through the reference and torch (2 workers: pytest-xdist)
	$(PY) -m pytest -m "not slow" -n 2

test-slow: $(PY)  ## the slow tier alone (kill matrix, wheel install, whole-library plug-in runs, fuzz, parallel runs)
	$(PY) -m pytest -m slow

test-all: $(PY)  ## both tiers in one run: everything `make test` deselects as well
	$(PY) -m pytest

lint: $(PY)  ## ruff (lint and format check) and mypy, as configured in pyproject.toml
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

docs: $(PY)  ## the docs site with its API reference: build/site/index.html (mkdocs.yml; warnings fail)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir build/site

run: $(PY)  ## the main job: the whole case library through `conformance run`
	$(VENV)/bin/conformance run $(CASES)

validate: $(PY)  ## check every case file without running it
	$(VENV)/bin/conformance validate $(CASES)

report: $(PY)  ## the case library as a static HTML report with explanations and pictures: build/report/index.html
	$(VENV)/bin/conformance run $(CASES) -q --html build/report

bound-ratios: $(PY)  ## how much of the error bound torch uses on network layers, per dtype (docs/tolerance.md)
	$(PY) scripts/bound_ratios.py

kill-matrix: $(PY)  ## which library cases catch which planted classic bug (tests/plugins/classic_bugs.py)
	$(PY) -W ignore -m tests.kill_matrix

bench: $(PY)  ## time every case: pytest-benchmark (saved in .benchmarks/), then the `conformance bench` table
	mkdir -p reports
	$(PY) -m pytest benchmarks/test_case_benchmarks.py -q -p no:cacheprovider --benchmark-enable \
		--benchmark-autosave --benchmark-json=reports/pytest-benchmark.json $(if $(IMPL),--conv-impl $(IMPL) --conv-no-isolate)
	$(VENV)/bin/conformance bench $(CASES) --json reports/bench.json $(if $(IMPL),--impl $(IMPL))

coverage: $(PY)  ## which features the case library exercises, and the empty cells
	$(VENV)/bin/conformance coverage $(CASES)

fuzz: $(PY)  ## a longer fuzz campaign; findings land in fuzz-findings/ as case files
	$(VENV)/bin/conformance fuzz $(if $(IMPL),--impl $(IMPL)) --seed $(SEED) --max-examples $(EXAMPLES) --workers $(WORKERS) --invalid-rate 0.2

wheel: $(PY)  ## the installable package, case library inside, for other repos' CI: dist/*.whl (docs/gate.md)
	$(PY) -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation -w dist .

# The optional frameworks of the conformance matrix (docs/frameworks.md), pinned exactly by
# constraints-frameworks.txt (which also repeats torch==2.13.0 and numpy's pin, so pip never moves them).
# Idempotent: a second run finds every pin satisfied and installs nothing.
FRAMEWORK_PACKAGES ?= jax jaxlib onnx onnxruntime onnxscript tensorflow-cpu keras openvino tinygrad \
	"mlx[cpu]" ai-edge-litert iree-base-compiler iree-base-runtime
# Columns whose pins clash with .venv's get their own venv, .venv-frameworks/<name>, from
# constraints-frameworks-<name>.txt (paddle: opt_einsum 3.3.0 against TensorFlow's 3.4.0; executorch:
# about fifty packages .venv must not get); the matrix's worker for that column runs that venv's
# Python (conformance/frameworks/__init__.py).
FRAMEWORK_VENVS ?= paddle executorch
FRAMEWORKS_DIR  ?= .venv-frameworks
frameworks: $(PY)  ## install the matrix's frameworks into .venv and .venv-frameworks/ (sizes and times: docs/ci.md; not part of `make setup`)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints-frameworks.txt $(FRAMEWORK_PACKAGES)
	@for name in $(FRAMEWORK_VENVS); do \
		test -x $(FRAMEWORKS_DIR)/$$name/bin/python || $(PYTHON) -m venv $(FRAMEWORKS_DIR)/$$name || exit 1; \
		$(FRAMEWORKS_DIR)/$$name/bin/python -m pip install --quiet --disable-pip-version-check \
			-r constraints-frameworks-$$name.txt || exit 1; \
	done

# MATRIX_IMPLS: e.g. `make matrix MATRIX_IMPLS="--impl jax --impl onnxruntime"`; default: every built-in
# (one that is not installed is a column saying how to install it).
MATRIX_IMPLS ?=
matrix: $(PY)  ## the case library through every installed framework: build/matrix/ (index.html, matrix.json, junit.xml)
	$(VENV)/bin/conformance matrix $(CASES) $(MATRIX_IMPLS) --json build/matrix/matrix.json \
		--html build/matrix --junit build/matrix/junit.xml

matrix-xfail: $(PY)  ## after a deliberate change: pin each column's current failures in xfail/<impl>.yaml (review the diff)
	$(VENV)/bin/conformance matrix $(CASES) $(MATRIX_IMPLS) -q --update-xfail

clean:
	rm -rf .pytest_cache .benchmarks .hypothesis .mypy_cache .ruff_cache build dist *.egg-info
