# mlcd: every developer and CI entry point. `make demo` and `make test` set up everything they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# the Python suite mostly waits (stand-in nodes, subprocesses): it runs on this many pytest-xdist workers;
# PYTEST_WORKERS=0 runs it in one process. Tests marked xdist_group("serial") share one worker.
PYTEST_WORKERS ?= 3

.PHONY: help setup system-deps test test-python test-groovy lint lint-python lint-groovy demo demo-deployer bench reliability test-slow wheel clean

help:
	@echo "make demo         the whole pipeline end to end on local stand-in DSS nodes"
	@echo "make demo-deployer  the same releases through a stand-in Project Deployer (one ends UNHEALTHY)"
	@echo "make test         every test: Python (unit, integration, contract) and Groovy, plus linters"
	@echo "make reliability  the full reliability suite (faults, kills, bad input, secrets, TLS)"
	@echo "make bench        benchmarks; writes bench/results/latest.md"
	@echo "make wheel        build the Python wheel into dist/"

system-deps:
	@bash scripts/system-deps.sh

# quiet: one line, the pip log only when the install fails
$(STAMP): pyproject.toml resources/mlcd/version.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "installing mlcd and its dependencies into $(VENV) (first run only; log in $(VENV)/install.log)..."
	@{ $(PY) -m pip install --quiet --upgrade pip && $(PY) -m pip install --quiet -e '.[dev]'; } \
		>$(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; echo "make: installing into $(VENV) failed"; exit 1; }
	@touch $(STAMP)

setup: system-deps $(STAMP)

lint-python: $(STAMP)
	$(VENV)/bin/ruff check python tests/python bench
	$(VENV)/bin/mypy

test-python: setup
	$(VENV)/bin/pytest -q -m "not slow and not reliability" -n $(PYTEST_WORKERS) --dist loadgroup \
		$(PYTEST_ARGS) tests/python

lint-groovy: system-deps
	scripts/groovy-compile.sh --self-test
	scripts/groovy-compile.sh
	scripts/groovy-lint.sh --self-test
	scripts/groovy-lint.sh
	tests/groovy-lint/cps-rules-fire.sh

test-groovy: system-deps $(STAMP)
	tests/groovy/run.sh

# the four suites share no files (Groovy builds in .groovy-build/, Python tests in temporary directories): they
# run at the same time, each one's output shown whole when it ends
test: setup
	@$(MAKE) --no-print-directory -j 4 --output-sync=target lint-python lint-groovy test-python test-groovy
	@echo "make test: all suites passed"

demo: $(STAMP)
	@$(PY) scripts/demo.py

demo-deployer: $(STAMP)
	@$(PY) scripts/demo_deployer.py

bench: setup
	@$(PY) bench/run.py

reliability: setup
	$(PY) scripts/reliability.py

wheel: $(STAMP)
	$(PY) -m pip wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) dist build .mlcd demo-out demo-out-deployer node_modules .groovy-build
