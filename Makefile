# Two commands set up a fresh machine: `make serve` and `make test` (each runs `setup` first).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
HOST    ?= 127.0.0.1
DATA    ?= ../shared/data

.PHONY: setup serve test lint typecheck pytest bench train eval weights weights-d16 proto clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

serve: setup
	$(BIN)/mcga serve --host $(HOST)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy model service tests

pytest: setup
	$(BIN)/pytest -q tests

test: lint typecheck pytest

bench: setup
	$(BIN)/mcga bench --json runs/bench.json --markdown BENCHMARKS.md

train: setup
	$(BIN)/mcga train all --data $(DATA) --out runs/train

eval: setup
	$(BIN)/mcga eval --data $(DATA)/cave --split val --out runs/eval/bundled.json --report runs/eval/report

weights: setup
	$(BIN)/mcga train all --data $(DATA) --out runs/weights --export model/weights/mcga_s2.pt

# The fast variant (d = 16): ~4x faster than MST++, less accurate (README, "Results").
weights-d16: setup
	$(BIN)/mcga train all --data $(DATA) --out runs/weights-d16 --latent-dim 16 --tta-tau 1.0 --export model/weights/mcga_s2_d16.pt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache runs

proto: setup
	$(BIN)/python -m service.grpc.codegen
