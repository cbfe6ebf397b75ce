# leanpool: the two commands a fresh machine needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
EXTRAS ?= dev,docs,ray,serve,metrics

.PHONY: install test test-lean lint typecheck matrix coverage demo bench soak docs clean

install: $(STAMP)

# Re-run pip only when what to install changed: a second `make install` takes seconds.
$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	@touch $(STAMP)

lint: install
	$(VENV)/bin/ruff check leanpool tests examples bench noxfile.py
	$(VENV)/bin/ruff format --check leanpool tests examples bench noxfile.py

typecheck: install
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy noxfile.py

test: lint typecheck
	$(VENV)/bin/pytest -q

# `make test-lean`: the checks of `leanpool selftest` as tests, on real Lean (tests marked
# `lean`, tests/test_real_lean.py). Where elan is missing they skip, saying so; `make test` skips
# them too. LEANPOOL_TEST_LEAN_VERSION, LEANPOOL_TEST_PROJECT pick the Lean (default: the newest
# the REPL supports, no project).
test-lean: install
	$(VENV)/bin/pytest -q -m lean

# `make matrix`: the whole suite on every supported Python found (3.10 to 3.13), one nox session
# each (noxfile.py says how interpreters are found, and what happens when one or an extra's wheel
# is missing). `make test` stays on the one interpreter of .venv. MATRIX_ARGS go to nox, e.g.
# `make matrix MATRIX_ARGS="-s tests-3.12 -- tests/test_leanjson.py"`.
MATRIX_ARGS ?=
matrix: install
	$(VENV)/bin/nox $(MATRIX_ARGS)

# `make coverage`: the whole suite under coverage.py, worker and simulator processes measured
# too (.coveragerc); prints the line coverage of leanpool, HTML in build/coverage/html.
COVERAGE_DIR := $(CURDIR)/build/coverage
coverage: install
	rm -rf $(COVERAGE_DIR) && mkdir -p $(COVERAGE_DIR)
	LEANPOOL_COVERAGE_DIR=$(COVERAGE_DIR) $(VENV)/bin/coverage run -m pytest -q
	LEANPOOL_COVERAGE_DIR=$(COVERAGE_DIR) $(VENV)/bin/coverage combine -q
	LEANPOOL_COVERAGE_DIR=$(COVERAGE_DIR) $(VENV)/bin/coverage html -q -d $(COVERAGE_DIR)/html
	LEANPOOL_COVERAGE_DIR=$(COVERAGE_DIR) $(VENV)/bin/coverage report

# `make demo`: verify the example dataset with `leanpool verify`, on real Lean when elan is
# installed (set LEANPOOL_PROJECT to a Mathlib project for the Mathlib items), else on the REPL
# simulator. The dataset holds wrong proofs on purpose, so exit status 1 (some failed) is success.
DEMO_DATA   := examples/data/theorems.jsonl
DEMO_OUTPUT := build/demo-results.jsonl
DEMO_SIM    := --sim --sim-option import=Mathlib=2000ms,300mb
demo: install
	@if command -v elan >/dev/null 2>&1; then \
		$(VENV)/bin/leanpool verify $(DEMO_DATA) --progress -o $(DEMO_OUTPUT) \
			$(if $(LEANPOOL_PROJECT),--project $(LEANPOOL_PROJECT),); \
	else \
		$(VENV)/bin/leanpool verify $(DEMO_SIM) $(DEMO_DATA) --progress -o $(DEMO_OUTPUT); \
	fi; test $$? -le 1

docs: install
	$(VENV)/bin/mkdocs build --strict --site-dir build/site

# `make bench` (BENCH=quick|full|smoke): the benchmark suite on the REPL simulator, side by side
# with LeanInteract; writes bench/results/latest.{json,md} and plots (bench/README.md).
# Its own stamp: the `bench` extra (matplotlib, lean-interact) is installed on top of the others.
BENCH       ?= quick
BENCH_STAMP := $(VENV)/.bench-installed-stamp

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS),bench]'
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) -m bench.run --mode $(BENCH)

# `make soak` (SOAK_SECONDS=120): a long run of one pool under faults, kills and stops, checking
# that every request gets exactly one result, its own (bench/soak.py); prints a JSON report.
SOAK_SECONDS ?= 120
soak: install
	$(PY) -m bench.soak --seconds $(SOAK_SECONDS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info
