# One-command set-up and run. Everything lives in .venv in the project root.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup chromium mediawiki serve test wheel-check index bench bench-incremental bench-scale load clean

setup: $(VENV)/.installed

# Debian's Chromium for the browser tests, driven by Playwright with executable_path (no `playwright install`).
SUDO := $(shell test "$$(id -u)" -eq 0 || echo sudo)
chromium:
	@command -v chromium >/dev/null || ($(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium)

# Debian's MediaWiki and PHP with SQLite for the real-wiki tests (tests/mediawiki.py installs a wiki on SQLite
# in a temporary folder with MediaWiki's own install.php and serves it with `php -S`; nothing is configured here).
mediawiki:
	@(test -f /usr/share/mediawiki/maintenance/install.php && php -m 2>/dev/null | grep -qx pdo_sqlite) || \
		($(SUDO) apt-get update && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mediawiki php-sqlite3 php-cli)

# torch first, pinned: a CPU build lies on this machine's disk, an unpinned one pulls CUDA (GBs).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test,wiki,scale]'
	touch $@

index: setup
	$(BIN)/rolesearch ingest

serve: setup
	@test -f index/CURRENT || $(BIN)/rolesearch ingest
	$(BIN)/rolesearch serve

test: setup chromium mediawiki
	$(BIN)/python -m pytest -q -rs

# The wheel built, installed into a fresh venv outside the checkout, and used there (help, ingest, search).
wheel-check: setup
	bash .ci/wheel-check

bench: setup
	$(BIN)/python bench/ingest_and_query.py

bench-incremental: setup
	$(BIN)/python bench/incremental.py

# The index at scale on generated articles (vectors from a cheap source; see bench/scale.py): make bench-scale SIZE=100000
SIZE ?= 10000
bench-scale: setup
	$(BIN)/python bench/scale.py --passages $(SIZE)

# Latency at 40 requests/s and throughput with 8 clients, against a server it starts on a free loopback port.
load: setup
	@test -f index/CURRENT || $(BIN)/rolesearch ingest
	$(BIN)/python bench/load.py --start
	$(BIN)/python bench/load.py --query-cache 5000

clean:
	rm -rf $(VENV) index/versions index/CURRENT index/.lock index/cache
