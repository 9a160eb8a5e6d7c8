# Sportello: `make run` serves the demo, `make test` runs the whole suite.
VENV ?= .venv
PYTHON ?= python3
PORT ?= 5000
BIN = $(VENV)/bin
HTMX_VERSION ?= 2.0.11

# The demo utility's customer service and company, in every page's footer. Like any variable,
# override them on the command line or from the environment: make run PORTAL_SUPPORT_PHONE="0544 123456".
# The partita IVA is made up, with a valid check digit.
PORTAL_SUPPORT_PHONE ?= 800 123 456
PORTAL_SUPPORT_EMAIL ?= clienti@example.it
PORTAL_OFFICE_HOURS ?= lun-ven 8:30-17:30
PORTAL_GAS_EMERGENCY_PHONE ?= 800 900 999
PORTAL_LEGAL_NAME ?= Sportello Energia S.p.A.
PORTAL_ADDRESS ?= Via Esempio 1, 48121 Ravenna (RA)
PORTAL_VAT_NUMBER ?= 01234560397

# The targets that run the app on the demo instance (instance/): development settings (a random
# key kept in instance/secret_key, no public address needed) and the footer's details above.
DEMO_TARGETS = run operator
$(DEMO_TARGETS): export PORTAL_ENV = development
$(DEMO_TARGETS): export PORTAL_SUPPORT_PHONE := $(PORTAL_SUPPORT_PHONE)
$(DEMO_TARGETS): export PORTAL_SUPPORT_EMAIL := $(PORTAL_SUPPORT_EMAIL)
$(DEMO_TARGETS): export PORTAL_OFFICE_HOURS := $(PORTAL_OFFICE_HOURS)
$(DEMO_TARGETS): export PORTAL_GAS_EMERGENCY_PHONE := $(PORTAL_GAS_EMERGENCY_PHONE)
$(DEMO_TARGETS): export PORTAL_LEGAL_NAME := $(PORTAL_LEGAL_NAME)
$(DEMO_TARGETS): export PORTAL_ADDRESS := $(PORTAL_ADDRESS)
$(DEMO_TARGETS): export PORTAL_VAT_NUMBER := $(PORTAL_VAT_NUMBER)

.PHONY: run operator lint test install translations messages vendor bench load audit clean

# The virtualenv is rebuilt when the pinned requirements change.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# Compiled catalogues (.mo) are build output, made from translations/*/LC_MESSAGES/*.po.
translations: install
	$(BIN)/pybabel compile --directory translations

# After changing texts: collect them and merge them into the catalogues to translate.
messages: install
	$(BIN)/pybabel extract --mapping-file babel.cfg --keywords _l --output-file /tmp/sportello.pot \
		--ignore-dirs '.venv tests bench migrations' .
	$(BIN)/pybabel update --input-file /tmp/sportello.pot --output-dir translations

run: translations
	$(BIN)/flask --app app init-db
	$(BIN)/flask --app app demo
	PORT=$(PORT) $(BIN)/flask --app app run --port $(PORT)

# A back-office account on the demo: make operator EMAIL=anna@example.it [ADMIN=1] [PASSWORD=...].
# Without PASSWORD it makes one that meets the policy (a digit, both cases, a symbol) and prints it.
NEW_PASSWORD = $(BIN)/python -c 'import re, secrets; print(next(p for p in iter(lambda: secrets.token_urlsafe(12), "") \
	if all(re.search(c, p) for c in (r"[0-9]", "[a-z]", "[A-Z]", "[-_]"))))'

operator: install
	@test -n "$$EMAIL" || { echo "usage: make operator EMAIL=anna@example.it [ADMIN=1] [PASSWORD=...]" >&2; exit 2; }
	$(BIN)/flask --app app init-db
	@password="$$PASSWORD"; [ -n "$$password" ] || password=$$($(NEW_PASSWORD)); \
	$(BIN)/flask --app app create-operator "$$EMAIL" --password "$$password" $(if $(filter-out 0,$(ADMIN)),--admin) \
	&& { [ -n "$$PASSWORD" ] || echo "Password: $$password"; }

# The linter first (ruff.toml: unused and undefined names, import order, bugbear), then the suite.
lint: install
	$(BIN)/ruff check .

test: translations lint
	$(BIN)/python -m pytest

bench: translations
	$(BIN)/python bench/run.py

# Simulated customers under load (bench/load.py; LOAD_POSTGRES=postgresql://... adds a run on
# PostgreSQL, whose database it empties; LOAD_FAULT=worker|smtp|redis|postgres makes that fail
# during the run). Locust gets a virtualenv of its own, as pip-audit
# below: it brings its own Flask and gevent.
LOAD_VENV ?= $(VENV)/load
LOCUST_VERSION ?= 2.47.0
load: translations
	test -x $(LOAD_VENV)/bin/locust || { $(PYTHON) -m venv $(LOAD_VENV) && \
		$(LOAD_VENV)/bin/pip install --quiet --disable-pip-version-check locust==$(LOCUST_VERSION); }
	$(BIN)/python bench/load.py --locust $(LOAD_VENV)/bin/locust $(if $(LOAD_POSTGRES),--postgres $(LOAD_POSTGRES)) \
		$(if $(LOAD_FAULT),--fault $(LOAD_FAULT))

# Known vulnerabilities in the pinned requirements (PyPI's advisory data): not part of `make test`
# or CI, which may not reach the advisory service. pip-audit gets a virtualenv of its own, so its
# dependencies never change the app's or the tests'; inside .venv, so that every tool that leaves
# .venv out (ruff, pybabel, git, make clean) leaves it out too.
AUDIT_VENV ?= $(VENV)/audit
PIP_AUDIT_VERSION ?= 2.10.1
audit:
	test -x $(AUDIT_VENV)/bin/pip-audit || { $(PYTHON) -m venv $(AUDIT_VENV) && \
		$(AUDIT_VENV)/bin/pip install --quiet --disable-pip-version-check pip-audit==$(PIP_AUDIT_VERSION); }
	$(AUDIT_VENV)/bin/pip-audit --strict --progress-spinner off -r requirements.txt -r requirements-dev.txt

# Refresh the vendored htmx from its npm package (then update static/vendor/README.md).
vendor:
	cd /tmp && rm -rf package && npm pack --silent htmx.org@$(HTMX_VERSION) && tar xzf htmx.org-$(HTMX_VERSION).tgz
	cp /tmp/package/dist/htmx.min.js static/vendor/htmx-$(HTMX_VERSION).min.js
	sha256sum static/vendor/htmx-$(HTMX_VERSION).min.js

clean:
	rm -rf $(VENV) instance .pytest_cache
