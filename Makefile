# mmrec: `make book` (the main job) and `make test`. Both create .venv when absent.
# Other targets: lab, notebooks, nbval, unit, lint, labs, clean.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
NB     ?= $(sort $(wildcard notebooks/[0-9A]*.ipynb))
BOOK_HTML := book/_build/html/index.html

# Stored notebook outputs must not depend on a terminal: no progress bars, no TF C++ logs.
export MMREC_PROGRESS ?= 0
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0

# The flags that make executed notebooks comparable by nbval (see README, Troubleshooting).
NB_EXEC_FLAGS := --to notebook --execute --inplace \
	--ExecutePreprocessor.timeout=1800 \
	--NotebookClient.extra_arguments="['--IPKernelApp.capture_fd_output=False']"
NBVAL_FLAGS := --nbval --nbval-current-env --nbval-cell-timeout=1800 \
	--nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider
# Test processes (pytest-xdist), one file each at a time. Two halve nothing that is already
# parallel (TensorFlow uses both cores) but overlap the single-threaded parts: on a 2-core
# AMD EPYC, nbval from an empty cache took 25.7 min instead of 38.1, the whole of `make
# test` on a fresh clone 44.7 min instead of 57. Caches are locked, so a chapter that needs
# features another one is computing waits for them; each worker has its own numba cache
# (conftest.py). JOBS=0 runs everything in one process.
JOBS ?= 2
XDIST := -n $(JOBS) --dist loadfile

.PHONY: help install book book-stored browser-test test unit lint nbval seed-check notebooks lab labs labs-check mathjax clean serve

help:
	@echo "make book   - set up .venv, execute the notebooks, build the HTML book"
	@echo "make test   - set up .venv, ruff, unit tests, nbval, book from stored outputs"
	@echo "make lab    - JupyterLab on notebooks/"
	@echo "make notebooks [NB=notebooks/02_...ipynb] - re-execute notebooks in place"
	@echo "make labs   - regenerate the student versions in labs/"
	@echo "make seed-check [SEED_NB=...] - run the fast chapters with SEED = 1 (asserts must hold)"
	@echo "make serve [PORT=8000] - the live recommender demo on http://127.0.0.1:8000 (trains a MiniClips model once)"

install: $(STAMP)

$(STAMP): pyproject.toml requirements-nodeps.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
	@touch $@

lint: $(STAMP)
	$(BIN)/ruff check $(wildcard mmrec_lib tests benchmarks tools notebooks)

unit: $(STAMP)
	$(BIN)/python -m pytest tests -q $(XDIST) --durations=10 --ignore=tests/browser --ignore=tests/labs

nbval: $(STAMP)
	$(BIN)/python -m pytest $(NBVAL_FLAGS) $(XDIST) --durations=15 $(NB)

# The parameters cell invites a reader to change SEED: what a chapter asserts must hold for
# another seed too. The fast chapters run in CI; run all of them by hand after a data change
# (`make seed-check SEED_NB="$$(ls notebooks/[0-9A]*.ipynb)"`).
SEED_NB ?= notebooks/00_setup_and_overview.ipynb notebooks/02_text_understanding.ipynb \
	notebooks/06_evaluation.ipynb notebooks/A1_article_code_review.ipynb
seed-check: $(STAMP)
	$(BIN)/python tools/run_with_seed.py --seed 1 --jobs $(JOBS) $(SEED_NB)

# Then one stream per cell and name: a busy machine delivers a cell's prints in several
# messages, which nbval (it coalesces what it runs) would report as a different output.
notebooks: $(STAMP)
	$(BIN)/jupyter nbconvert $(NB_EXEC_FLAGS) $(NB)
	$(BIN)/jupyter nbconvert --to notebook --inplace --log-level=WARN \
		--CoalesceStreamsPreprocessor.enabled=True $(NB)

test: $(STAMP)
	$(MAKE) lint
	$(MAKE) unit
	$(MAKE) nbval
	$(MAKE) seed-check
	$(MAKE) labs-check
	$(MAKE) book-stored
	$(MAKE) browser-test

# Headless Chromium visits every chapter of the built book (skipped without Chromium).
browser-test: $(STAMP)
	$(BIN)/python -m pytest tests/browser -q -rs

mathjax: $(STAMP)
	$(BIN)/python tools/book.py mathjax

# The main job: execute every notebook (cached: only changed ones re-run) and build.
book: $(STAMP) mathjax
	$(BIN)/python tools/book.py build --execute
	@echo "The book is at $(abspath $(BOOK_HTML))"

# The book from the outputs stored in the notebooks (what `make test` builds).
book-stored: $(STAMP) mathjax
	$(BIN)/python tools/book.py build
	@echo "The book is at $(abspath $(BOOK_HTML))"

labs: $(STAMP)
	$(BIN)/python tools/make_labs.py

# The student versions: in sync with the notebooks, and they stop at the first stub.
labs-check: $(STAMP)
	$(BIN)/python tools/make_labs.py --check
	$(BIN)/python -m pytest tests/labs -q $(XDIST)

# As root (a container, a course VM) JupyterLab refuses to start without --allow-root.
LAB_FLAGS := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

lab: $(STAMP)
	$(BIN)/jupyter lab $(LAB_FLAGS) notebooks/

# The real-time demo (chapter 13): loads the MiniClips model saved in the cache, training it
# there first if absent, and serves it with uvicorn on 127.0.0.1 only.
PORT ?= 8000
serve: $(STAMP)
	$(BIN)/python -m mmrec_lib.serving --port $(PORT)

clean:
	rm -rf book/_build book/_static/mathjax .pytest_cache
