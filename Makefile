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

.PHONY: help setup test test-fast test-browser app paper clean data-coco demo-annotations references train-demo train-ablations model-card bench official gpu-check

help: ## List the targets with what they do
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-17s %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv and install the project (editable) with its notebook, dev and app extras
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[notebooks,dev,app]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@rm -f $(VENV)/.installed-*
	@touch $@

test: setup ## Run the test suite and every notebook on its smoke parameters (nbval; CPU, offline)
	$(PY) -m pytest -q tests notebooks

test-fast: setup ## The quick loop: the tests not marked slow (no notebooks, subprocesses, DDP, complexity); under 2 min
	$(PY) -m pytest -q -m "not slow" tests

CHROMIUM       ?= /usr/bin/chromium
CHROMEDRIVER   ?= /usr/bin/chromedriver
test-browser: setup ## Drive the attention explorer in JupyterLab and the web app with headless Chromium (needs Debian's chromium, chromium-driver)
	@test -x $(CHROMIUM) && test -x $(CHROMEDRIVER) || { \
	  echo "test-browser: $(CHROMIUM) or $(CHROMEDRIVER) is missing: apt-get install chromium chromium-driver" >&2; exit 1; }
	CHROMIUM=$(CHROMIUM) CHROMEDRIVER=$(CHROMEDRIVER) $(PY) -m pytest -q browser_tests

HOST ?= 127.0.0.1
PORT ?= 7860
app: setup ## Serve the web app (sa-app) on http://127.0.0.1:7860 until Ctrl-C (HOST=..., PORT=..., PHOTOS=folder)
	$(VENV)/bin/sa-app --host $(HOST) --port $(PORT) $(if $(PHOTOS),--photos $(PHOTOS),)

RETRAIN ?= 0
paper: setup ## Run the notebooks and regenerate every figure and table (PROFILE=demo on the CPU; PROFILE=paper on a GPU; RETRAIN=1)
	$(PY) -m sa_lib.cli.paper --profile $(PROFILE) $(if $(filter 1 yes true,$(RETRAIN)),--retrain,)

COCO_SPLITS ?= val train
data-coco: setup ## Download, verify (md5) and extract COCO 2017 into SUPERATTN_DATA/coco (default ~/.cache/superattn); COCO_SPLITS=val for val only
	$(PY) -m sa_lib.cli.coco download --splits $(COCO_SPLITS)

demo-annotations: setup ## Regenerate data/demo/annotations.json (automatic object masks of the demo photos)
	$(PY) -m sa_lib.cli.demo_annotations

references: setup ## Rank the top-4 references of every target (PROFILE=demo|paper) and write the evaluation pairs
	$(PY) -m sa_lib.cli.references --profile $(PROFILE)

VARIANTS ?= none standard super transfer
train-demo: setup ## Train the demo checkpoints on this CPU and write checkpoints/demo-{none,standard,super,transfer}
	for v in $(VARIANTS); do \
	  $(PY) -m sa_lib.cli.train --profile demo --variant $$v --overwrite --export checkpoints/demo-$$v.safetensors || exit 1; \
	done
	$(if $(filter transfer,$(VARIANTS)),$(PY) -m sa_lib.cli.calibrate_chroma checkpoints/demo-transfer.safetensors \
	  --blend checkpoints/demo-standard.safetensors)
	$(PY) -m sa_lib.cli.model_card

READINGS ?= qk key-init lab-loss no-remap
train-ablations: setup ## Train demo-super with each of this project's departures from the paper undone (docs/faithfulness.md): checkpoints/demo-super-paper-*
	for r in $(READINGS); do \
	  $(PY) -m sa_lib.cli.train --profile demo --variant super --paper-reading $$r \
	    --overwrite --export checkpoints/demo-super-paper-$$r.safetensors || exit 1; \
	done
	$(PY) -m sa_lib.cli.model_card

OFFICIAL ?= checkpoints/official.safetensors
official: setup ## Download the authors' released checkpoint (Google Drive, gdown) and vgg19_bn, convert them to checkpoints/official.safetensors
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[official]' || \
	  echo "official: could not install gdown; the download step below will say what to do by hand" >&2
	$(PY) -m sa_lib.cli.convert_official --download -o $(OFFICIAL)

model-card: setup ## Re-measure the shipped demo checkpoints and rewrite checkpoints/MODEL_CARD.md
	$(PY) -m sa_lib.cli.model_card

bench: setup ## Run the benchmarks (minutes; not part of the tests): see benchmarks/README.md
	$(PY) benchmarks/end_to_end.py
	for v in none standard super; do $(PY) benchmarks/train_throughput.py --profile demo --variant $$v; done
	$(PY) benchmarks/complexity.py
	$(PY) benchmarks/mode_quality.py
	$(PY) benchmarks/colourfulness_tradeoff.py
	$(PY) benchmarks/slic_backends.py
	$(PY) benchmarks/slic_quality.py
	$(PY) benchmarks/official.py
	$(PY) benchmarks/suggest_cache.py --count 1000
	$(PY) benchmarks/suggest_gray_targets.py

gpu-check: setup ## On a CUDA machine: torch SLIC, paper-profile throughput fp32/bf16, attention agreement, a DDP/NCCL step -> BENCHMARKS.md (no GPU: one line, exit 0)
	$(PY) benchmarks/gpu_check.py

clean: ## Remove build outputs (keeps .venv)
	rm -rf build .pytest_cache
