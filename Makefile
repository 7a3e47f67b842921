# Lectern — the README's commands.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi:app

.PHONY: run test lint format e2e bench install clean

$(BIN)/flask: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

install: $(BIN)/flask

run: install
	$(BIN)/flask db upgrade
	$(BIN)/flask seed-demo
	$(BIN)/flask run --host 127.0.0.1 --port 5000

test: install
	$(BIN)/pytest -q

e2e: install
	$(BIN)/pytest -q -m e2e tests/e2e

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The benchmark (docs/performance.md): seeds lectern_bench once (SEED=fresh seeds again), serves
# it with gunicorn, drives every scenario with wrk. BENCH_SECONDS shortens it; BENCH_ARGS passes
# options (--only complete,undo  --profile  --tune  --no-yardstick).
bench: install
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq wrk; fi; }
	$(BIN)/python -m tests.bench $(if $(SEED),--seed $(SEED)) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
