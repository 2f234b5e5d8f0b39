# The two commands a newcomer needs: `make demo` and `make test`. Only Python 3.11+, git and make are assumed.
SHELL := bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
ADDR ?= 127.0.0.1:8000
STAMP := $(VENV)/.installed

.PHONY: demo test install messages lint bench clean-demo

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

messages: $(STAMP)
	$(PY) scripts/compile_messages.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The suite runs on every core (pytest-xdist); PYTEST_WORKERS=0 runs it in one process (e.g. for --pdb).
# Quicker local runs: make test PYTEST_ARGS="-m 'not browser and not slow'", or PYTEST_ARGS=--reuse-db.
PYTEST_WORKERS ?= auto
test: $(STAMP) messages
	DJANGO_SETTINGS_MODULE=config.test_settings $(MANAGE) makemigrations --check --dry-run
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# DEBUG=1 gives a per-checkout secret key and serves static files; never use this for a real deployment.
demo: export DEBUG = 1
demo: export TWO_FACTOR_ENFORCED ?= 0
demo: $(STAMP) messages
	$(MANAGE) migrate --noinput
	$(MANAGE) load_instruments
	$(MANAGE) seed_demo
	$(MANAGE) seed_screening_demo
	$(MANAGE) seed_case_demo
	$(MANAGE) seed_care_demo
	@echo ""
	@echo "Open http://$(ADDR)/  (Ctrl-C stops the web server and the task worker)"
	@trap 'kill $$worker 2>/dev/null' EXIT; \
	  $(MANAGE) qcluster & worker=$$!; \
	  $(MANAGE) runserver --noreload $(ADDR)

bench: $(STAMP) messages
	$(PY) benchmarks/run.py

clean-demo:
	rm -f db.sqlite3 db.sqlite3-wal db.sqlite3-shm
