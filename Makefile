# The two commands: `make setup` (once), then `make test`. `make run` runs the case library.
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

.PHONY: setup test run validate coverage fuzz clean

setup:  ## create .venv and install the project with its pinned dependencies
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .

$(PY):
	@echo "No $(VENV) yet: run 'make setup' first." >&2; exit 1

test: $(PY)  ## the harness's own tests and every YAML case, through the reference and torch
	$(PY) -m pytest

run: $(PY)  ## the main job: the whole case library through `conformance run`
	$(VENV)/bin/conformance run $(CASES)

validate: $(PY)  ## check every case file without running it
	$(VENV)/bin/conformance validate $(CASES)

coverage: $(PY)  ## which features the case library exercises, and the empty cells
	$(VENV)/bin/conformance coverage $(CASES)

fuzz: $(PY)  ## a longer fuzz campaign; findings land in fuzz-findings/ as case files
	$(VENV)/bin/conformance fuzz $(if $(IMPL),--impl $(IMPL)) --seed $(SEED) --max-examples $(EXAMPLES) --workers $(WORKERS) --invalid-rate 0.2

clean:
	rm -rf .pytest_cache .benchmarks .hypothesis build *.egg-info
