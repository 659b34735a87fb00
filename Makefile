# Two commands for a newcomer: `make demo` and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export DAGSTER_HOME := $(CURDIR)

.PHONY: demo test lint test-fast ui bench bench-quick clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/glacier-pipelines demo

# The whole suite in two phases. First every test not marked `alone`, slow ones included, on
# TEST_WORKERS pytest-xdist workers (each test has its own databases, queues, ports and folders;
# --dist loadgroup hands out one test at a time, longest first as conftest.py orders them, and at
# most two tests running Dagster's daemon, webserver or Celery at once). Then the few marked
# `alone` (the broker restart, sub-second timeouts) one at a time, with nothing else running.
TEST_WORKERS ?= 3
test: lint
	$(BIN)/python -m pytest -m "not alone" -n $(TEST_WORKERS) --dist loadgroup
	$(BIN)/python -m pytest -m alone

# ruff (pyflakes and syntax errors, and the formatting `ruff format` gives) and mypy over the package; all configured in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -n 2

# Benchmarks (not part of the tests): see bench/README.md. They need RabbitMQ on 127.0.0.1:5672;
# the peers (s5cmd, aws cli, rclone) are used when installed and left out otherwise.
bench: $(STAMP)
	$(BIN)/python bench/intake.py --requests 10000 --rounds 3
	$(BIN)/python bench/large_file.py --size-mib 2048 --rounds 3
	$(BIN)/python bench/memory.py --sizes-mib 1024,4096
	$(BIN)/python bench/small_files.py --files 10000 --rounds 3
	$(BIN)/python bench/region.py --files 10000 --rounds 3 --latency-ms 20

bench-quick: $(STAMP)
	$(BIN)/python bench/intake.py --requests 2000 --rounds 1 --out bench/results/intake-quick.json
	$(BIN)/python bench/large_file.py --quick --out bench/results/large_file-quick
	$(BIN)/python bench/memory.py --quick --out bench/results/memory-quick
	$(BIN)/python bench/small_files.py --quick --out bench/results/small_files-quick
	$(BIN)/python bench/region.py --quick --out bench/results/region-quick

ui: $(STAMP)
	$(BIN)/dagster dev -w workspace.yaml

clean:
	rm -rf $(VENV) .glacier *.egg-info
