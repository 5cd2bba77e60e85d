# One entry point for people and CI. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
DATA   ?= ../shared/data
HEAD   := export/heads/go_emotions-all-MiniLM-L6-v2
MODEL  := models/go_emotions-minilm-l6
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup browser test lint security demo serve head model emotion-model bench-peers clean

# The venv is rebuilt when the dependency pins change. torch is pinned to the CPU wheel.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all]"
	touch $(STAMP)

setup: $(STAMP)

# The docs page's browser test (tests/e2e/test_docs_page.py) drives Debian's chromium; without
# it that test is skipped. CI installs it.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update -q && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; }

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# checkov's dependencies clash with the project's pins: it has a venv of its own.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV    := .venv-checkov
CHECKOV_STAMP   := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
CHECKOV         := $(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download

$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $(CHECKOV_STAMP)

# Scan what we ship to run: the images, the kustomizations as rendered (checkov renders them
# with kubectl, overlays included) and the compose files (checkov has secret checks for
# those). Each suppression sits in the scanned file with its reason.
security: $(CHECKOV_STAMP)
	@command -v kubectl >/dev/null || { echo "make security: checkov needs kubectl"; exit 1; }
	$(CHECKOV) --framework dockerfile kustomize secrets -d deploy
	$(CHECKOV) --framework secrets -f docker-compose.yml -f docker-compose.gpu.yml -f docker-compose.monitoring.yml \
		-f docker-compose.tracing.yml

# The peers `emotriton bench` drives when they are installed: Triton's perf_analyzer and
# infinity-emb, in a venv of their own (their pins clash with the project's). No torchvision:
# infinity-emb 0.0.78 does not start beside torchvision under torch 2.13. perf_analyzer also
# needs Debian's libb64-0d.
PEERS_VENV  := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed

$(PEERS_STAMP): constraints-peers.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet -c constraints-peers.txt \
		"infinity-emb[server,optimum]" tritonclient nvidia-cuda-runtime-cu12
	touch $(PEERS_STAMP)

bench-peers: $(PEERS_STAMP)
	@ldconfig -p | grep -q libb64.so.0d || echo "perf_analyzer needs libb64: apt-get install libb64-0d"

# Export the default model into model_repository/, serve it, classify examples.
demo: setup
	$(BIN)/python scripts/demo.py

# Reproduce the committed default head (embeddings are cached under ~/.cache/emotriton).
head: setup
	$(BIN)/emotriton train-head --data $(DATA)/go_emotions --out $(HEAD)

# Reproduce the committed default model: all-MiniLM-L6-v2 fine-tuned on go_emotions
# (34 minutes here on 2 shared CPU cores; docs/default-model.md).
model: setup
	$(BIN)/emotriton finetune --data $(DATA)/go_emotions --out $(MODEL)

# The six-label dair-ai emotion classifier of docs/emotion-model.md (not committed).
emotion-model: setup
	$(BIN)/emotriton finetune --data $(DATA)/emotion --out build/emotion-minilm-l6

serve: setup
	$(BIN)/emotriton serve --repository model_repository

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(PEERS_VENV) build .pytest_cache .ruff_cache
