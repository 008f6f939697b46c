# Two commands set up everything on a fresh machine: `make demo` and `make test`.
#
# Both use ./.venv. `make demo` installs only what running tradeloop needs (the package with its
# report extra); `make test` installs the whole dev toolchain (`.[dev]`: tests, linters, mypy,
# Playwright). Each has its own stamp, so either can run first and the other adds what it lacks.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
VENV_STAMP    := $(VENV)/.created
RUNTIME_STAMP := $(VENV)/.runtime
DEV_STAMP     := $(VENV)/.installed

.PHONY: demo test lint mutation mutation-check bench bench-sweep bench-scale clean

$(VENV_STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	touch $(VENV_STAMP)

# the runtime: tradeloop and matplotlib for the report, nothing for development
$(RUNTIME_STAMP): pyproject.toml $(VENV_STAMP)
	$(BIN)/pip install --quiet -e '.[report]'
	touch $(RUNTIME_STAMP)

# the dev toolchain; it includes the runtime, so it renews that stamp too
$(DEV_STAMP): pyproject.toml $(VENV_STAMP)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP) $(RUNTIME_STAMP)

demo: $(RUNTIME_STAMP)
	$(BIN)/tradeloop demo --out results/demo

test: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check --fix src tests bench examples
	$(BIN)/ruff format src tests bench examples

# mutation testing of the pure core (execution/core, config in pyproject's [tool.mutmut]): a
# fresh full run, then the score per module (killed / (mutants - mutation/equivalents.toml));
# mutation-check also fails below the committed floor (mutation/floor.txt). CI runs it.
mutation: $(DEV_STAMP)
	rm -rf mutants
	TRADELOOP_MUTATION=1 $(BIN)/mutmut run > mutants.log 2>&1 || { tail -50 mutants.log; exit 1; }
	tail -c 300 mutants.log | tr '\r' '\n' | tail -3
	$(BIN)/python scripts/mutation_score.py $(MUTATION_FLAGS)

mutation-check:
	$(MAKE) mutation MUTATION_FLAGS=--check

bench: $(DEV_STAMP)
	$(BIN)/python bench/bench_sma.py
	$(BIN)/python bench/bench_sync_vs_async.py

# serial vs local pool vs Ray on a 100-run sweep of 100,000 bars (a few minutes)
bench-sweep: $(DEV_STAMP)
	$(BIN)/python bench/bench_sweep.py

# bars/s and peak RSS on 1M-20M bars, in memory and streamed from Parquet (a few minutes)
bench-scale: $(DEV_STAMP)
	$(BIN)/python bench/bench_scale.py

clean:
	rm -rf $(VENV) results .pytest_cache .mypy_cache .ruff_cache
