# Sportello: `make run` serves the demo, `make test` runs the whole suite.
VENV ?= .venv
PYTHON ?= python3
PORT ?= 5000
BIN = $(VENV)/bin
HTMX_VERSION ?= 2.0.11

.PHONY: run test install translations messages vendor bench clean

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
	PORTAL_ENV=development $(BIN)/flask --app app init-db
	PORTAL_ENV=development $(BIN)/flask --app app demo
	PORTAL_ENV=development PORT=$(PORT) $(BIN)/flask --app app run --port $(PORT)

test: translations
	$(BIN)/python -m pytest

bench: translations
	$(BIN)/python bench/run.py

# Refresh the vendored htmx from its npm package (then update static/vendor/README.md).
vendor:
	cd /tmp && rm -rf package && npm pack --silent htmx.org@$(HTMX_VERSION) && tar xzf htmx.org-$(HTMX_VERSION).tgz
	cp /tmp/package/dist/htmx.min.js static/vendor/htmx-$(HTMX_VERSION).min.js
	sha256sum static/vendor/htmx-$(HTMX_VERSION).min.js

clean:
	rm -rf $(VENV) instance .pytest_cache
