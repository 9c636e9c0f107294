# broker-gateway: `make run` starts the gateway against the sandbox; `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
LOG_LEVEL ?= warning

.PHONY: run test lint schema sandbox clean redis-server chromium graphiql-assets

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
	$(BIN)/broker-gateway --log-level $(LOG_LEVEL) serve --host $(HOST) --port $(PORT) $(if $(CONFIG),--config $(CONFIG)) $(if $(VENUES),--venues $(VENUES))

## sandbox: start only the paper venues
sandbox: $(VENV)/.installed-run
	$(BIN)/broker-gateway sandbox --host $(HOST)

## test: every test (unit, sandbox, end-to-end over loopback HTTP; a real redis-server for the event bus;
## Debian's chromium for the explorer's browser test)
test: $(VENV)/.installed-test redis-server chromium tests/js/node_modules/.installed
	$(BIN)/python -m pytest -q

# The graphql-ws JavaScript client the subscription tests drive the gateway with (Node.js and npm).
tests/js/node_modules/.installed: tests/js/package.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "installing nodejs and npm (Debian packages)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	cd tests/js && npm install --no-package-lock --no-audit --no-fund --silent
	@touch $@

# The event-bus tests start a real redis-server on a free loopback port; install it where it is missing.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

# The explorer's browser test drives Debian's Chromium with Playwright (never a downloaded browser).
chromium:
	@test -x /usr/bin/chromium || { \
	  echo "installing chromium (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

## lint: ruff
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

## schema: regenerate schema/schema.graphql from the code
schema: $(VENV)/.installed-run
	$(BIN)/broker-gateway export-schema > schema/schema.graphql

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

## graphiql-assets: refresh the vendored GraphiQL files from the npm registry (pinned in tools/graphiql_assets.py); commit them
graphiql-assets:
	$(PYTHON) tools/graphiql_assets.py
