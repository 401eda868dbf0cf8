# Comity — `make run` starts a local three-node federation; `make test` runs every test.
# Only Python 3.11+ and make are needed; everything else is installed here.

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= comity-demo

.PHONY: setup run check-demo test lint typecheck docs messages bench clean

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## Start the local federation (three nodes on loopback) and keep it running.
run: setup
	$(BIN)/comity demo --dir $(DEMO_DIR)

## Run the demo scenario once, verify every step, print JSON.
check-demo: setup
	$(BIN)/comity demo --check

lint: setup
	$(BIN)/ruff check src tests bench

typecheck: setup
	$(BIN)/mypy

## The whole suite: lint, types, and tests on SQLite and PostgreSQL.
test: setup
	@scripts/ensure-postgres.sh >/dev/null
	@scripts/ensure-chromium.sh >/dev/null
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

## Regenerate docs/cli.md from the command tree (a test checks it is current).
docs: setup
	$(BIN)/typer comity.cli utils docs --name comity --title "The comity command line" \
		--output docs/cli.md

## Refresh the web UI's message catalogs from the templates and code (then translate the
## new empty entries in src/comity/web/locale/*/LC_MESSAGES/comity.po; a test checks).
messages: setup
	$(BIN)/pybabel extract -F babel.cfg -k _ -k N_ --no-location --sort-output \
		--project Comity --copyright-holder "Comity contributors" \
		-o src/comity/web/locale/comity.pot .
	$(BIN)/pybabel update -D comity -i src/comity/web/locale/comity.pot \
		-d src/comity/web/locale --no-fuzzy-matching --ignore-obsolete

bench: setup
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,bench]'
	$(BIN)/python -m bench.federation --postgres --out bench/results/federation.json
	$(BIN)/python -m bench.ledger --out bench/results/ledger.json
	$(BIN)/python -m bench.evidence --out bench/results/evidence.json
	$(BIN)/python -m bench.requests --postgres --out bench/results/requests.json
	$(BIN)/python -m bench.taxii --out bench/results/taxii.json
	$(BIN)/python -m bench.registry_import --out bench/results/registry_import.json
	$(BIN)/python -m bench.rdap --out bench/results/rdap.json
	$(BIN)/python -m bench.ui --out bench/results/ui.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(DEMO_DIR)
