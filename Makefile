# leanpool: the two commands a fresh machine needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
EXTRAS ?= dev

.PHONY: install test lint typecheck demo bench docs clean

install: $(STAMP)

# Re-run pip only when the project's metadata changed: a second `make install` takes seconds.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	@touch $(STAMP)

lint: install
	$(VENV)/bin/ruff check leanpool tests examples bench
	$(VENV)/bin/ruff format --check leanpool tests examples bench

typecheck: install
	$(VENV)/bin/mypy

test: lint typecheck
	$(VENV)/bin/pytest -q

demo: install
	$(PY) -m leanpool.testing._demo

bench: install
	@echo "make bench: not yet implemented (the benchmark suite is a later issue)."

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info
