# One task runner that matches the README: `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# setuptools prints a notice on every editable install that maps folders (ours: train/ → recipe_repl.train)
# saying folders named like the package may shadow it; that mapping is the design, so the notice is hidden.
PIP_QUIET := PYTHONWARNINGS="ignore:Editable installation"

.PHONY: run test check lint bench model svg clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(PIP_QUIET) $(BIN)/python -m pip install -q -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(PIP_QUIET) $(BIN)/python -m pip install -q -e '.[dev,train]'
	touch $@ $(RUN_STAMP)

## run: start the REPL on the shipped model (creates .venv on first use)
run: $(RUN_STAMP)
	$(BIN)/recipe-repl

## test: lint, check the import layering (import-linter) and the types (mypy --strict), run the whole test suite (installs dev + train extras into .venv)
test: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python scripts/lint_imports.py
	$(BIN)/python scripts/typecheck.py
	$(BIN)/python -m pytest -q

## check: the edit-test loop: ruff, the import layering, mypy --strict and the tests that need neither TensorFlow nor the slow marker, on CHECK_WORKERS pytest-xdist workers (0: in one process)
CHECK_WORKERS ?= 2
check: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python scripts/lint_imports.py
	$(BIN)/python scripts/typecheck.py
	$(BIN)/python -m pytest -q -m "not slow" -n $(CHECK_WORKERS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python scripts/lint_imports.py
	$(BIN)/python scripts/typecheck.py

## bench: speed ratios measured in one run on this machine
bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/bench_generation.py
	$(BIN)/python benchmarks/bench_batch.py
	$(BIN)/python benchmarks/bench_train.py

## model: retrain the shipped model from scratch, re-export it and rewrite its card (about 85 minutes on 2 CPU cores)
SHIPPED := --data builtin+wikibooks --vocab-size 5000 --units 256 --embedding-dim 128 --dropout 0.1 \
	--batch-size 64 --learning-rate 0.002 --lr-schedule cosine --epochs 32
model: $(DEV_STAMP)
	$(BIN)/recipe-repl train $(SHIPPED) --out runs/shipped --fresh
	$(BIN)/recipe-repl export runs/shipped --out models/recipes.onnx
	$(BIN)/python -m recipe_repl.export.model_card models/recipes.onnx --run runs/shipped --out models/MODEL_CARD.md

## svg: re-record docs/session.svg, docs/cells.svg and docs/saliency.svg on the shipped model (CELLS_UNIT: the unit :cells find c sentence ranks first)
CELLS_UNIT ?= 232
svg: $(DEV_STAMP)
	$(BIN)/python examples/record_session.py --model models/recipes.onnx --out docs/session.svg
	$(BIN)/python examples/record_session.py --model models/recipes.onnx --out docs/cells.svg --script cells --unit $(CELLS_UNIT)
	$(BIN)/python examples/record_session.py --model models/recipes.onnx --out docs/saliency.svg --script saliency

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
