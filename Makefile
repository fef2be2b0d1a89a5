# superattn: run `make help` for the list of targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
PROFILE     ?= demo
# The stamp's name carries a hash of pyproject.toml, so editing the dependencies re-runs setup.
DEPS_HASH   := $(shell sha256sum pyproject.toml | cut -c1-12)
STAMP       := $(VENV)/.installed-$(DEPS_HASH)

.PHONY: help setup test paper clean

help: ## List the targets with what they do
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-14s %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv and install the project (editable) with its notebook and dev extras
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[notebooks,dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@rm -f $(VENV)/.installed-*
	@touch $@

test: setup ## Run the whole test suite (CPU, offline)
	$(PY) -m pytest -q

paper: setup ## Regenerate the tables and figures (PROFILE=demo offline on the CPU; PROFILE=paper on a GPU)
	$(PY) -m sa_lib.paper --profile $(PROFILE)

clean: ## Remove build outputs (keeps .venv)
	rm -rf build .pytest_cache
