# Two commands on a fresh machine: `make run` and `make test` (see README.md).
# Both install from the committed uv.lock (`uv sync --frozen`), never from a fresh resolution;
# `make upgrade` is the one deliberate way to move the lock to newer releases.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TOOLS := .tools
UV := $(TOOLS)/bin/uv
# The other supported Pythons: `make test-pythons` runs the suite on each one found.
OTHER_PYTHONS ?= 3.12 3.13
# uv uses this machine's interpreters only; it never downloads one.
export UV_PYTHON_DOWNLOADS := never

.PHONY: install run lint test test-pythons upgrade bench fuzz clean

# uv itself, pinned with hashes, in a venv of its own so that syncing .venv never removes it.
$(UV): tools/uv-requirements.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --require-hashes -r tools/uv-requirements.txt
	touch $@

install: $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --all-extras --quiet --python $(PYTHON)

run: install
	$(BIN)/jotkit serve $(ARGS)

lint: install
	$(BIN)/ruff check src tests benchmarks examples fuzz
	$(BIN)/ruff format --check src tests benchmarks examples fuzz
	$(BIN)/mypy

test: lint
	JOTKIT_UV=$(abspath $(UV)) $(BIN)/pytest $(PYTEST_ARGS)

# The suite on each other supported Python, each in its own venv from the same lock. A Python
# this machine lacks is skipped with the reason; PYTEST_ARGS narrows the run (CI: the JOSE core
# and the guard).
test-pythons: $(UV)
	@for version in $(OTHER_PYTHONS); do \
	  interpreter=$$(tools/find-python $$version) || { \
	    if [ "$$CI" = true ]; then echo "CI=true: Python $$version is required"; exit 1; fi; \
	    echo "skipped Python $$version"; continue; }; \
	  echo "== Python $$version ($$interpreter)"; \
	  UV_PROJECT_ENVIRONMENT=$(VENV)-$$version $(UV) sync --frozen --all-extras --quiet \
	    --python $$interpreter || exit 1; \
	  JOTKIT_UV=$(abspath $(UV)) $(VENV)-$$version/bin/pytest $(PYTEST_ARGS) || exit 1; \
	done

# Move the lock to the newest releases the ranges in pyproject.toml allow, then run everything
# against them. Commit uv.lock with whatever the new releases needed fixed.
upgrade: $(UV)
	$(UV) lock --upgrade --python $(PYTHON)
	$(MAKE) test test-pythons

bench: install
	$(BIN)/python benchmarks/bench_jose.py
	$(BIN)/python benchmarks/count_jose.py --peers
	$(BIN)/python benchmarks/bench_server.py
	$(BIN)/python benchmarks/bench_guard.py
	$(BIN)/python benchmarks/bench_propagation.py
	$(BIN)/python benchmarks/count_refresh.py
	$(BIN)/python benchmarks/bench_scale.py

# Coverage-guided fuzzing of the JOSE core (atheris, the lock's `fuzz` group) in a venv of its
# own, for FUZZ_SECONDS (default 300); not part of `make test` or CI. Findings are written as
# crash-* files and make the run fail; fuzz/corpus/ keeps what it learnt for the next run.
FUZZ_SECONDS ?= 300
fuzz: $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV)-fuzz $(UV) sync --frozen --no-dev --group fuzz --quiet \
	  --python $(PYTHON)
	$(VENV)-fuzz/bin/python fuzz/fuzz_jose.py -max_total_time=$(FUZZ_SECONDS) \
	  -print_final_stats=1 -artifact_prefix=fuzz/ fuzz/corpus

clean:
	rm -rf $(VENV) $(VENV)-3.* $(VENV)-fuzz $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
