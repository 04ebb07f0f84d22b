# Stampbook — the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One stamp file per install flavour: `make run` installs the runtime
# dependencies only; `make test` and `make lint` need the dev extra, so after a
# `make run` they still install it (and a `make run` after them installs nothing new).
RUNTIME := $(VENV)/.installed-runtime
INSTALLED := $(VENV)/.installed-dev
HOST ?= 127.0.0.1
PORT ?= 8000
## The address printed in stamp page URLs and the demo: a phone on your network
## needs your machine's LAN address, e.g. make run HOST=0.0.0.0 PUBLIC_URL=http://192.168.1.20:8000
ifndef PUBLIC_URL
PUBLIC_URL := $(or $(STAMPBOOK_PUBLIC_URL),http://$(HOST):$(PORT))
endif
PYTEST_ARGS ?=

.PHONY: run test test-fast install browser wrk lint format check bench bench-quick bench-scale bench-dashboard clean docs-assets

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

## The SDK (clients/python) is its own distribution the server depends on: installed from
## this checkout in the same pip call, never fetched by name from an index.
$(RUNTIME): pyproject.toml clients/python/pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e ./clients/python -e .
	@touch $(RUNTIME)

$(INSTALLED): pyproject.toml clients/python/pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e ./clients/python -e '.[dev]'
	@touch $(INSTALLED)

install: $(INSTALLED)

run: export STAMPBOOK_PUBLIC_URL = $(PUBLIC_URL)

## make run: install (runtime only), migrate the SQLite default, print the demo key and URLs, serve on :8000
run: $(RUNTIME)
	@case "$(PUBLIC_URL)" in *//0.0.0.0[:/]*|*//0.0.0.0) \
	  echo "note: $(PUBLIC_URL) is no address a phone can open; add PUBLIC_URL=http://<this machine's LAN address>:$(PORT)" >&2;; esac
	$(BIN)/stampbook db upgrade
	$(BIN)/stampbook demo
	$(BIN)/stampbook serve --host $(HOST) --port $(PORT)

## make test: install what the tests need, then the whole suite on SQLite and PostgreSQL
## (the 20 slowest tests listed at the end: the suite must stay under 10 minutes)
test: $(INSTALLED) browser proxy-tools
	$(BIN)/python -m pytest --durations=20 $(PYTEST_ARGS)

## make test-fast: the inner loop: SQLite only, no browser, no slow tests (seconds, not minutes)
test-fast: $(INSTALLED)
	STAMPBOOK_TEST_DATABASES=sqlite $(BIN)/python -m pytest -m "not browser and not slow" -q $(PYTEST_ARGS)

## Debian's Chromium drives the browser tests (no browser download is possible here);
## fonts-nanum gives the Korean page's screenshots real glyphs.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-nanum; \
	fi
	@test -x /usr/bin/chromium || { echo "chromium is required for the browser tests" >&2; exit 1; }

## Debian's nginx (nginx-light on Debian 12; plain nginx where there is no -light) runs deploy/nginx/stampbook.conf in tests/test_nginx_proxy.py, and
## systemd-analyze checks deploy/systemd/ (neither is started as a service).
.PHONY: proxy-tools
proxy-tools:
	@if [ ! -x /usr/sbin/nginx ] || ! command -v systemd-analyze >/dev/null 2>&1; then \
	  echo "installing Debian's nginx and systemd-analyze for the deployment tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light systemd \
	    || $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx systemd; \
	fi
	@test -x /usr/sbin/nginx || { echo "nginx is required for the proxy tests" >&2; exit 1; }
	@command -v systemd-analyze >/dev/null || { echo "systemd-analyze is required" >&2; exit 1; }

lint: $(INSTALLED)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/mypy bench/run.py bench/bare_app.py bench/harness.py bench/load.py bench/cpu.py bench/report.py bench/scale.py bench/dashboard_scale.py bench/seed.py bench/sink.py bench/import_rows.py bench/inprocess.py
	$(BIN)/lint-imports
	$(BIN)/ruff check clients
	$(BIN)/ruff format --check clients

format: $(INSTALLED)
	$(BIN)/ruff format src tests bench clients
	$(BIN)/ruff check --fix src tests bench clients

check: lint test

## make bench: the full run (PostgreSQL and SQLite: Stampbook as shipped against the bare
## baseline under load, then the scale scenario); exits non-zero when a target is missed
bench: $(INSTALLED) wrk
	$(BIN)/python bench/run.py

## make bench-scale: only the scale scenario (1,000,000 stamps on PostgreSQL, 200,000 on SQLite)
bench-scale: $(INSTALLED) wrk
	$(BIN)/python bench/run.py --scale-only

## make bench-dashboard: only the dashboard at scale (#14: overview < 300 ms, search < 100 ms)
bench-dashboard: $(INSTALLED)
	$(BIN)/python bench/run.py --dashboard-only

## make bench-quick: the same load table and targets on a short run (under a minute), no scale
bench-quick: $(INSTALLED) wrk
	$(BIN)/python bench/run.py --quick

## Debian's wrk is the load generator of the benchmarks
wrk:
	@if ! command -v wrk >/dev/null 2>&1; then \
	  echo "installing Debian's wrk for the benchmarks"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk; \
	fi
	@command -v wrk >/dev/null 2>&1 || { echo "wrk is required for the benchmarks" >&2; exit 1; }

## make docs-assets: fetch the pinned Swagger UI and ReDoc from the npm registry again
## (npm pack) into src/stampbook/kit/docs_assets; the files are committed, so only to update
SWAGGER_UI_VERSION := 5.35.0
REDOC_VERSION := 2.5.4
DOCS_ASSETS := src/stampbook/kit/docs_assets
docs-assets:
	@tmp=$$(mktemp -d) && cd $$tmp && \
	  npm pack --silent swagger-ui-dist@$(SWAGGER_UI_VERSION) redoc@$(REDOC_VERSION) >/dev/null && \
	  mkdir swagger redoc && tar xzf swagger-ui-dist-*.tgz -C swagger && tar xzf redoc-*.tgz -C redoc && \
	  cd $(CURDIR) && \
	  cp $$tmp/swagger/package/swagger-ui-bundle.js $$tmp/swagger/package/swagger-ui.css \
	     $$tmp/swagger/package/favicon-32x32.png $$tmp/swagger/package/swagger-ui-bundle.js.LICENSE.txt $(DOCS_ASSETS)/ && \
	  cp $$tmp/swagger/package/LICENSE $(DOCS_ASSETS)/LICENSE.swagger-ui && \
	  cp $$tmp/swagger/package/NOTICE $(DOCS_ASSETS)/NOTICE.swagger-ui && \
	  cp $$tmp/redoc/package/bundles/redoc.standalone.js $$tmp/redoc/package/bundles/redoc.standalone.js.LICENSE.txt $(DOCS_ASSETS)/ && \
	  cp $$tmp/redoc/package/LICENSE $(DOCS_ASSETS)/LICENSE.redoc && \
	  rm -rf $$tmp && cd $(DOCS_ASSETS) && sha256sum -- *.js *.css *.png LICENSE.* NOTICE.*

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache tests/artifacts
