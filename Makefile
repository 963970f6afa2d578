# HMS Workflow Orchestration: `make run` and `make test` are all a fresh clone needs.
SHELL := /bin/bash
PORT ?= 8000
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Django 6.1 needs Python 3.12+. Look for python3.13 / python3.12 on PATH (pyenv shims that
# are not selected fail to run, so each candidate must actually start), then in pyenv's folder.
define find_python
for c in python3.13 python3.12 python3.14 python3; do \
  p=$$(command -v $$c 2>/dev/null) || continue; \
  $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; exit 0; }; \
done; \
for p in $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[234]* 2>/dev/null | sort -rV | sed 's|$$|/bin/python3|'); do \
  [ -x $$p ] && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; exit 0; }; \
done; exit 1
endef

.PHONY: run test test-fast lint format chaos bench bench-quick clean venv messages compilemessages

$(STAMP): pyproject.toml
	@py=$$($(find_python)) || { echo "error: no Python 3.12 or newer found (tried python3.13, python3.12, python3.14, python3 and ~/.pyenv/versions). Django 6.1 needs Python >= 3.12: install one, e.g. 'pyenv install 3.13'." >&2; exit 1; }; \
	echo "Using $$py ($$($$py --version))"; \
	[ -x $(PY) ] || $$py -m venv $(VENV); \
	$(PY) -m pip install -q --upgrade pip && \
	$(PY) -m pip install -q -e '.[test]' && touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	@echo "== Migrating the database (db.sqlite3)"
	@$(PY) manage.py migrate --noinput -v0
	@echo "== Loading the examples in workflows/ and the demo users"
	@$(PY) manage.py setup_demo --port $(PORT)
	@$(PY) manage.py run_all --port $(PORT)

# The whole suite on SQLite + the ORM broker, then again on PostgreSQL + the Redis broker
# when TEST_DATABASE_URL and TEST_REDIS_URL are set and reachable (.ci/run sets them).
# Without them that run is SKIPPED, unless HMS_REQUIRE_FULL_CI=1 (.ci/run sets it): then
# `make test` fails, as do the browser tests without chromium (tests/reachable.py).
test: $(STAMP)
	@echo "== Lint and format (ruff)"
	@$(VENV)/bin/ruff check -q . && $(VENV)/bin/ruff format -q --check .
	@echo "== Import contracts (layers, a pure core, no cycles)"
	@set -o pipefail; $(VENV)/bin/lint-imports --no-cache | tail -n +15
	@echo "== Suite on SQLite + django-q2 ORM broker"
	@env -u DATABASE_URL -u REDIS_URL $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)
	@code=0; $(PY) tests/reachable.py "$$TEST_DATABASE_URL" "$$TEST_REDIS_URL" || code=$$?; \
	if [ $$code -eq 3 ]; then exit 0; elif [ $$code -ne 0 ]; then exit $$code; fi; \
	echo "== Suite on PostgreSQL + django-q2 Redis broker"; \
	DATABASE_URL="$$TEST_DATABASE_URL" REDIS_URL="$$TEST_REDIS_URL" \
	  $(PY) -m pytest -q -p no:cacheprovider -m "not browser" $(PYTEST_ARGS)

lint: $(STAMP)
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports --no-cache

format: $(STAMP)
	@$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) db.sqlite3 var

# Translations (docs/pages.md, Languages). `messages` extracts every marked string into
# locale/{en,es}/LC_MESSAGES/django.po; it needs GNU gettext's xgettext (a system package).
# `compilemessages` writes the .mo files with polib (PyPI), no system package; they are
# committed, so `make run` and `make test` need neither.
messages: $(STAMP)
	@command -v xgettext >/dev/null || { echo "error: make messages needs GNU gettext's xgettext (Debian/Ubuntu: apt-get install gettext; macOS: brew install gettext). make compilemessages does not need it." >&2; exit 1; }
	@$(PY) manage.py makemessages -l en -l es --no-location --no-obsolete \
	  --ignore=var --ignore=bench --ignore=tests --ignore=docs --ignore=static --ignore=examples --ignore=workflows
	@echo "Now translate the new and fuzzy entries of locale/es/LC_MESSAGES/django.po, then: make compilemessages"

compilemessages: $(STAMP)
	@$(PY) manage.py compile_catalogues

# Chaos and load runs (tests/system/, docs/chaos.md) against PostgreSQL + Redis on 127.0.0.1.
# Each recreates its own database (hms_chaos, hms_load) and flushes its Redis database (10, 11).
# CHAOS_SIZE=small is the CI size; CHAOS_WEB=runserver|gunicorn, CHAOS_DB=postgres|sqlite pick
# the variant; LOAD_CLIENTS and LOAD_SECONDS size the load run.
.PHONY: load
chaos: $(STAMP)
	@$(PY) tests/system/chaos.py

load: $(STAMP)
	@$(PY) tests/system/load.py

# Benchmarks (docs/BENCHMARKS.md): every figure with its baseline from the same run, on SQLite
# + the ORM broker and on PostgreSQL + Redis (BENCH_DATABASE_URL, BENCH_REDIS_URL). The first
# run also creates bench/.venv-viewflow (the peer, AGPL: never a project dependency) and builds
# the million-instance databases it then caches (bench/results/, PostgreSQL hms_bench_1000000).
# Benchmarks need PostgreSQL and Redis on 127.0.0.1, and a C compiler for the HTTP figures'
# load generator (bench/hload.c; a prerequisite, docs/chaos.md; without one those figures
# are skipped); viewflow is installed into bench/.venv-viewflow only.
bench: $(STAMP)
	@$(PY) bench/run.py

bench-quick: $(STAMP)
	@$(PY) bench/run.py --quick
