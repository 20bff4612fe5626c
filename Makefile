# Two commands on a fresh machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_FILE ?= instance/demo-identities.json
# The issuer (discovery, the portal's callback, share links) follows the port it is served on.
OAUTH_ISSUER ?= http://$(HOST):$(PORT)
export OAUTH_ISSUER

.PHONY: run test test-long lint install install-dev clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

run: install
	$(FLASK) db upgrade
	$(FLASK) seed demo --out $(DEMO_FILE)
	@$(BIN)/python -m core.banner $(DEMO_FILE) http://$(HOST):$(PORT)
	@mkdir -p instance/prometheus && rm -f instance/prometheus/*.db
	PROMETHEUS_MULTIPROC_DIR=$(CURDIR)/instance/prometheus \
		$(BIN)/gunicorn --config gunicorn.conf.py --bind $(HOST):$(PORT) 'app:create_app()'

lint: install-dev
	$(BIN)/ruff check .

test: install-dev lint
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The long reliability runs (schemathesis over the contract, fuzzing, faults under load); .ci/run
# calls this after `make test`. A later -m wins over the one in pyproject's addopts.
test-long: install-dev
	$(BIN)/python -m pytest -m long $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) instance/prometheus
