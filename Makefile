# `make help` lists the targets. Each one installs what it needs first (Debian packages that are
# missing, then the virtualenv in .venv), so `make run` and `make test` work on a fresh machine.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
BENCH_ARGS ?=

# Debian packages, by what needs them. Only the missing ones are installed (see apt_install).
RUN_PACKAGES := tesseract-ocr tesseract-ocr-eng tesseract-ocr-san tesseract-ocr-hin \
	tesseract-ocr-tam tesseract-ocr-osd poppler-utils redis-server python3-venv $(BUILD_PACKAGES)
# What pip needs to build tesserocr against the system's libtesseract (requirements.txt), so
# that the Tesseract kept loaded is the `tesseract` command's own. Every venv step installs them.
BUILD_PACKAGES := libtesseract-dev libleptonica-dev pkg-config g++ python3-dev
# The browser tests drive Debian's chromium; Noto renders the Devanagari and Tamil pages; the
# searchable PDF export is checked with `qpdf --check`. The PostgreSQL variants of the tests
# run on a throw-away cluster of the server's binaries (the test session's own initdb, on a
# free port: tests/support.py PostgresCluster).
TEST_PACKAGES := $(RUN_PACKAGES) chromium fonts-noto-core postgresql qpdf
# OCRmyPDF 17 rasterizes with pypdfium2 and writes PDF/A itself: it needs only Tesseract.
# Ghostscript is optional for it and left out, so both sides of the benchmark render alike.
BENCH_PACKAGES := $(RUN_PACKAGES)

##@ Run

.PHONY: run
run: system-deps venv ## Start Redis (if none answers), the worker and the web app
	$(PY) -m app.devserver

.PHONY: flower
flower: venv-ops ## Start Flower, the Celery dashboard, on http://localhost:5555 (no login)
	$(VENV)/bin/celery -A worker flower --port=5555 --address=127.0.0.1

.PHONY: cleanup
cleanup: venv ## Remove old staged uploads, export files and job pages (DRY_RUN=1 to list)
	$(VENV)/bin/flask --app app cleanup $(if $(DRY_RUN),--dry-run)

##@ Test

.PHONY: test
test: system-deps-test venv-dev ## Run the test suite (extra pytest options: PYTEST_ARGS="-k name")
	$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: chaos
chaos: system-deps-test venv-dev ## Run the fault suite: kills workers and Redis mid-job (slow)
	$(PY) -m pytest -m chaos $(PYTEST_ARGS)
	@echo; echo "Bad input, as an editor sees it (docs/reliability.md):"
	@$(PY) -m tests.chaos.bad_input

.PHONY: load
load: system-deps-test venv-dev ## Run the load suite: many pages, projects and users (slow)
	$(PY) -m pytest -m load -s $(PYTEST_ARGS)

.PHONY: bench
bench: system-deps-bench venv-bench ## Measure OCR speed against OCRmyPDF (BENCH_ARGS=...)
	$(PY) -m tests.bench.run $(BENCH_ARGS)

.PHONY: bench-editor
bench-editor: system-deps-test venv-dev ## How soon the editor of a 3600 x 4800 page is ready (Chromium)
	$(PY) -m tests.bench.editor_ready $(BENCH_ARGS)

##@ Code

.PHONY: lint
lint: venv-dev ## Check code style (ruff check, ruff format --check)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: format
format: venv-dev ## Sort imports and reformat the code in place
	$(VENV)/bin/ruff check --select I --fix .
	$(VENV)/bin/ruff format .

.PHONY: docs
docs: ## List the documentation and check its links between files
	@echo "The documentation is Markdown in the repository:"
	@for f in README.md docs/*.md; do echo "  $$f"; done
	@broken=0; \
	for f in README.md docs/*.md; do \
	  for link in $$(grep -oE '\]\([^)#]+' "$$f" | sed 's/^](//' | grep -vE '^[a-z]+:'); do \
	    [ -e "$$(dirname "$$f")/$$link" ] || { echo "broken link in $$f: $$link"; broken=1; }; \
	  done; \
	done; \
	if [ $$broken = 0 ]; then echo "All links between files resolve."; fi; \
	exit $$broken

##@ Housekeeping

.PHONY: clean
clean: ## Remove the virtualenv, caches and test artifacts (never data/)
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis tests/artifacts
	find . -name __pycache__ -type d -prune -not -path './data/*' -exec rm -rf {} +

.PHONY: help
help: ## List the targets
	@awk 'BEGIN { FS = ":.*## " } \
	  /^##@/ { printf "\n%s\n", substr($$0, 5) } \
	  /^[a-z][a-z-]*:.*## / { printf "  make %-17s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo

##@ Internals (the targets above run these)

# Installs those of the packages in $(1) that are missing, with one `apt-get update` first.
# A package counts as present when what the project uses of it works, so a Tesseract or Redis
# installed some other way is not installed again. Fast when nothing is missing.
define apt_install
	@present() { \
	  case "$$1" in \
	    tesseract-ocr) command -v tesseract ;; \
	    tesseract-ocr-*) tesseract --list-langs 2>/dev/null | grep -qx "$${1#tesseract-ocr-}" ;; \
	    poppler-utils) command -v pdftoppm ;; \
	    redis-server) command -v redis-server ;; \
	    python3-venv) $(PYTHON) -c 'import ensurepip, venv' ;; \
	    chromium) command -v chromium ;; \
	    libtesseract-dev) pkg-config --exists tesseract ;; \
	    libleptonica-dev) pkg-config --exists lept ;; \
	    pkg-config) command -v pkg-config ;; \
	    g++) command -v g++ ;; \
	    python3-dev) $(PYTHON) -c 'import os, sys, sysconfig; \
	      sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' ;; \
	    postgresql) command -v initdb || compgen -G '/usr/lib/postgresql/*/bin/initdb' ;; \
	    *) dpkg-query -W -f='$${Status}' "$$1" | grep -q 'ok installed' ;; \
	  esac >/dev/null 2>&1; \
	}; \
	missing=; \
	for p in $(1); do present $$p || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "System packages: all present."; exit 0; fi; \
	echo "System packages missing:$$missing"; \
	if ! command -v apt-get >/dev/null; then \
	  echo "No apt-get here: install the equivalents of:$$missing, then run make again."; exit 1; \
	fi; \
	sudo=; \
	if [ "$$(id -u)" != 0 ]; then \
	  command -v sudo >/dev/null || { echo "Not root and no sudo: install:$$missing"; exit 1; }; \
	  sudo=sudo; \
	fi; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	  $$missing || exit 1; \
	for p in $$missing; do \
	  present $$p || { echo "Installed $$p, but it still does not work: see above."; exit 1; }; \
	done
endef

.PHONY: system-deps system-deps-test system-deps-bench
system-deps: ## Install the missing Debian packages the app needs
	$(call apt_install,$(RUN_PACKAGES))

system-deps-test: ## ... and those the tests need
	$(call apt_install,$(TEST_PACKAGES))

system-deps-bench: ## ... and those the benchmark needs
	$(call apt_install,$(BENCH_PACKAGES))

# The virtualenv, with a stamp per requirements level: pip runs again only when a requirements
# file is newer than the stamp. Each level includes the ones before it, so it stamps them too.
.PHONY: venv venv-dev venv-bench venv-ops
venv: $(VENV)/.installed-run ## Create .venv with the app's requirements
	@echo "Virtualenv $(VENV): up to date with requirements.txt."
venv-dev: $(VENV)/.installed-dev ## ... and the test and lint tools
	@echo "Virtualenv $(VENV): up to date with requirements-dev.txt."
venv-bench: $(VENV)/.installed-bench ## ... and OCRmyPDF for the benchmark
	@echo "Virtualenv $(VENV): up to date with requirements-bench.txt."
venv-ops: $(VENV)/.installed-ops ## ... the app's requirements and Flower
	@echo "Virtualenv $(VENV): up to date with requirements-ops.txt."

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "$(PYTHON) is older than 3.11: run make PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: requirements.txt | $(VENV)/bin/python
	$(call apt_install,$(BUILD_PACKAGES))
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	@touch $@

$(VENV)/.installed-ops: requirements.txt requirements-ops.txt | $(VENV)/bin/python
	$(call apt_install,$(BUILD_PACKAGES))
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-ops.txt
	@touch $(VENV)/.installed-run $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(call apt_install,$(BUILD_PACKAGES))
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	@touch $(VENV)/.installed-run $@

$(VENV)/.installed-bench: requirements.txt requirements-dev.txt requirements-bench.txt \
		| $(VENV)/bin/python
	$(call apt_install,$(BUILD_PACKAGES))
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-bench.txt
	@touch $(VENV)/.installed-run $(VENV)/.installed-dev $@
