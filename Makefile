# Two commands a person needs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Public datasets are downloaded from their publishers unless a local mirror is given;
# this workspace keeps one beside the repository, which is used when present.
MIRROR ?= $(or $(CINEREC_DATA_MIRROR),$(if $(wildcard ../shared/datasets),$(abspath ../shared/datasets),))
MIRROR_ENV := $(if $(MIRROR),CINEREC_DATA_MIRROR=$(MIRROR),)
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: demo test lint benchmark setup clean

setup: $(VENV)/.installed-dev

# What the demo needs: the package and its runtime dependencies (63 s here, 77 s with the
# test tools; the first answer of `make demo` counts the install too).
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(MIRROR_ENV) $(BIN)/cinerec demo

test: setup
	$(BIN)/ruff check cinerec tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(MIRROR_ENV) $(BIN)/pytest -q

benchmark: setup
	$(MIRROR_ENV) $(BIN)/python benchmarks/offline_accuracy.py

clean:  # the committed benchmark reports (reports/benchmarks) stay: the docs are generated from them
	rm -rf $(VENV) data bundles
	find reports -mindepth 1 -maxdepth 1 ! -name benchmarks -exec rm -rf {} +
