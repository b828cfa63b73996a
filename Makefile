# One-command set-up and run. Everything lives in .venv in the project root.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup serve test index bench bench-incremental clean

setup: $(VENV)/.installed

# torch first, pinned: a CPU build lies on this machine's disk, an unpinned one pulls CUDA (GBs).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

index: setup
	$(BIN)/rolesearch ingest

serve: setup
	@test -f index/CURRENT || $(BIN)/rolesearch ingest
	$(BIN)/rolesearch serve

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/ingest_and_query.py

bench-incremental: setup
	$(BIN)/python bench/incremental.py

clean:
	rm -rf $(VENV) index/versions index/CURRENT index/.lock index/cache
