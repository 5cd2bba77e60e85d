# One entry point for people and CI. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
DATA   ?= ../shared/data
HEAD   := export/heads/go_emotions-all-MiniLM-L6-v2
MODEL  := models/go_emotions-minilm-l6
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test lint demo serve head model emotion-model clean

# The venv is rebuilt when the dependency pins change. torch is pinned to the CPU wheel.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all]"
	touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest

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
	rm -rf $(VENV) build .pytest_cache .ruff_cache
