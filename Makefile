# Flixly: `make run` starts the whole product, `make test` runs the suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

# The first interpreter that is Python 3.12 or newer.
SYSTEM_PYTHON := $(shell for p in python3.13 python3.12 python3; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
	echo $$p; break; fi; done)

.PHONY: run install setup test test-fast lint format bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@if [ -z "$(SYSTEM_PYTHON)" ]; then echo "Flixly needs Python 3.12 or newer (python3.12 / python3.13 on PATH)." >&2; exit 1; fi
	@test -x $(PY) || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed

setup: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_credit_packs
	$(PY) manage.py sync_catalog
	$(PY) manage.py collectstatic --noinput -v 0  # DJANGO_DEBUG=false serves only collected files

run: setup
	@echo ""
	@echo "  Flixly is starting at http://$(HOST):$(PORT)/  (Ctrl-C stops web, workers and beat)"
	@echo "  E-mails are printed below: the verification link by web, reminders and warnings by worker."
	@echo ""
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" BIND=$(HOST):$(PORT) FLIXLY_SITE_URL=$${FLIXLY_SITE_URL:-http://$(HOST):$(PORT)} honcho -f Procfile start

test: install
	$(PY) -m pytest -m "not postgres and not redis" $(PYTEST_ARGS)
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		DATABASE_URL="$$TEST_DATABASE_URL" REDIS_URL="$$TEST_REDIS_URL" FLIXLY_VAR_DIR=var/test-pg \
		$(PY) -m pytest -m "postgres or redis" $(PYTEST_ARGS); \
	elif [ "$$CI" = "true" ]; then \
		echo "CI needs TEST_DATABASE_URL and TEST_REDIS_URL for the PostgreSQL/Redis tests." >&2; exit 1; \
	else \
		echo "Skipped the PostgreSQL/Redis pass: set TEST_DATABASE_URL and TEST_REDIS_URL to run it."; \
	fi

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) bench/run.py

clean:
	rm -rf var/test var/test-pg var/test-deploy
