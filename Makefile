# One task runner that matches the README: `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# setuptools prints a notice on every editable install that maps folders (ours: train/ → recipe_repl.train)
# saying folders named like the package may shadow it; that mapping is the design, so the notice is hidden.
PIP_QUIET := PYTHONWARNINGS="ignore:Editable installation"

.PHONY: run test check lint bench model model-fresh lecture-model epochs svg clean

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

## bench: speed ratios measured in one run on this machine (training: the default loop and the shipped levers, tied + sampled 1024)
bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/bench_generation.py
	$(BIN)/python benchmarks/bench_batch.py
	$(BIN)/python benchmarks/bench_train.py --variants "default;tied, sampled 1024"

## model: retrain the shipped model, re-export it and rewrite its card (59 minutes on a fresh clone, 2 quiet CPU cores: 40 epochs of 69-82 s; 108 minutes with other work beside it);
## interrupted, `make model` again continues the run after its last epoch (`make model-fresh` starts over)
SHIPPED := --data builtin+wikibooks --vocab-size 5000 --units 256 --embedding-dim 256 --tie-embeddings \
	--sampled-softmax 1024 --dropout 0.15 --word-dropout 0.2 --batch-size 32 --learning-rate 0.005 \
	--lr-schedule cosine --epochs 40
MODEL_RUN ?= runs/shipped
# per-epoch exports (RUN/epochs/epoch-NNN.onnx) are kept for the package's "watch it learn" epochs
KEEP_EPOCHS ?= 1,2,4,8,last
model: $(DEV_STAMP)
	$(call train_or_resume,$(SHIPPED) --keep-epochs $(KEEP_EPOCHS),$(MODEL_RUN))
	$(BIN)/recipe-repl export $(MODEL_RUN) --out models/recipes.onnx
	$(BIN)/python -m recipe_repl.export.model_card models/recipes.onnx --run $(MODEL_RUN) --out models/MODEL_CARD.md

model-fresh: $(DEV_STAMP)
	rm -rf $(MODEL_RUN)
	$(MAKE) model

## lecture-model: the lecture's own model (Generative Deep Learning, ch. 5): its exact settings on the
## Epicurious recipes (`recipe-repl data epicurious` first), exported to $(LECTURE_RUN)/lecture.onnx
LECTURE := --vocab-size 10000 --seq-len 200 --embedding-dim 100 --units 128 --batch-size 32 \
	--learning-rate 0.001 --lr-schedule constant --dropout 0 --no-mask --no-clean
LECTURE_DATA ?= epicurious
LECTURE_EPOCHS ?= 25
LECTURE_RUN ?= runs/lecture
lecture-model: $(DEV_STAMP)
	$(call train_or_resume,--data $(LECTURE_DATA) $(LECTURE) --epochs $(LECTURE_EPOCHS),$(LECTURE_RUN))
	$(BIN)/recipe-repl export $(LECTURE_RUN) --out $(LECTURE_RUN)/lecture.onnx

# train FLAGS into RUN, or continue RUN after its last completed epoch when it holds a checkpoint
# (a resumed run keeps its settings: flags that differ are an error naming them)
train_or_resume = if [ -f $(2)/checkpoint.weights.h5 ]; then \
		$(BIN)/recipe-repl train $(1) --out $(2) --resume; \
	else \
		$(BIN)/recipe-repl train $(1) --out $(2); \
	fi

## epochs: ship int8 copies of a run's kept epochs 1, 2, 4, 8 and the last (middle ones dropped to fit) into models/epochs (12 MB at most, for
## `:compare-models epochs`) and rewrite their tables in the model card and the README (the run must have been
## trained with --keep-epochs)
RUN ?= runs/shipped
epochs: $(DEV_STAMP)
	$(BIN)/python -m recipe_repl.export.ship_epochs $(RUN) --out models/epochs --card models/MODEL_CARD.md --readme README.md

## svg: re-record docs/session.svg, docs/cells.svg and docs/saliency.svg on the shipped model (CELLS_UNIT: the unit :cells find c sentence ranks first)
CELLS_UNIT ?= 190
svg: $(DEV_STAMP)
	$(BIN)/python examples/record_session.py --model models/recipes.onnx --out docs/session.svg
	$(BIN)/python examples/record_session.py --model models/recipes.onnx --out docs/cells.svg --script cells --unit $(CELLS_UNIT) --seed 3
	$(BIN)/python examples/record_session.py --model models/recipes.onnx --out docs/saliency.svg --script saliency

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
