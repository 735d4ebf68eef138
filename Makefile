# Two commands on a fresh machine: `make run` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PARAPHEUR_INSTANCE_DIR ?= $(CURDIR)/instance

.PHONY: run test lint system-packages clean translations translations-update bench bench-quick \
        bench-sign bench-batch bench-load bench-memory

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

translations: $(STAMP)
	$(BIN)/pybabel compile --use-fuzzy -d parapheur/translations -D messages >/dev/null

## translations-update: collect new French strings into the English catalog (then translate them)
translations-update: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k N_ --ignore-dirs=.venv --ignore-dirs=tests \
	  -o parapheur/translations/messages.pot . >/dev/null
	$(BIN)/pybabel update -i parapheur/translations/messages.pot -d parapheur/translations -l en

## run: install, initialise the instance with demo data, serve on http://127.0.0.1:5000
run: $(STAMP) translations
	$(BIN)/parapheur init
	$(BIN)/parapheur demo
	@echo "Parapheur : http://127.0.0.1:5000"
	$(BIN)/parapheur serve --host 127.0.0.1 --port 5000

## system-packages: Debian packages the tests need (installed only when run as root)
system-packages:
	@missing=""; \
	for pair in softhsm2-util:softhsm2 pdfsig:poppler-utils qpdf:qpdf chromium:chromium; do \
	  cmd=$${pair%%:*}; pkg=$${pair##*:}; command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "Missing Debian packages (run as root to install):$$missing"; fi; \
	fi

## test: install what the tests need and run the whole suite
test: $(STAMP) translations system-packages
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 --dist loadgroup --ignore=tests/browser $(PYTEST_ARGS)
	@# Playwright's sync API keeps an event loop running in its process, which pyHanko's sync calls
	@# (asyncio.run) cannot share: the browser tests get a process of their own.
	$(BIN)/pytest tests/browser $(PYTEST_ARGS)

## bench: the four benchmarks of bench/ (figures in README.md, Performance); bench-quick for a smoke run
bench: $(STAMP)
	for b in sign batch load memory; do $(BIN)/python -m bench.$$b || exit 1; done

bench-quick: $(STAMP)
	for b in sign batch load memory; do $(BIN)/python -m bench.$$b --quick || exit 1; done

## bench-sign, bench-batch, bench-load, bench-memory: one benchmark (BENCH_ARGS=--quick / --json)
bench-sign bench-batch bench-load bench-memory: bench-%: $(STAMP)
	$(BIN)/python -m bench.$* $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) instance .pytest_cache test-artifacts
