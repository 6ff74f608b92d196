# Two commands on a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,server,guard,redis,postgres

.PHONY: install run test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/jotkit serve $(ARGS)

lint: install
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/bench_jose.py
	$(BIN)/python benchmarks/count_jose.py --peers
	$(BIN)/python benchmarks/bench_server.py
	$(BIN)/python benchmarks/bench_guard.py
	$(BIN)/python benchmarks/bench_propagation.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
