# broker-gateway: `make run` starts the gateway against the sandbox; `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint schema sandbox clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $@ $(VENV)/.installed-run

## run: start the gateway; without CONFIG=file.toml it runs against the in-process sandbox venues
run: $(VENV)/.installed-run
	$(BIN)/broker-gateway serve --host $(HOST) --port $(PORT) $(if $(CONFIG),--config $(CONFIG))

## sandbox: start only the paper venues
sandbox: $(VENV)/.installed-run
	$(BIN)/broker-gateway sandbox --host $(HOST)

## test: every test (unit, sandbox, end-to-end over loopback HTTP)
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

## lint: ruff
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

## schema: regenerate schema/schema.graphql from the code
schema: $(VENV)/.installed-run
	$(BIN)/broker-gateway export-schema > schema/schema.graphql

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
