# One entry point for readers, learners, instructors and CI.
#   make test   create .venv if needed, install, run every test (labkit + every notebook at the smoke profile)
#   make book   create/install, execute every notebook at the cpu profile (cached), build the HTML book
#   make lab    JupyterLab at the repository root (chapters in book/, labs in labs/)
#   make e2e    browser tests: the labs in a real JupyterLab, and the built book offline (headless Chromium)
#   make bench  every notebook's cpu-profile time (slowest first) and the training loop's overhead
#   make course the labs' learner and instructor notebooks, generated from their one source each in course/
#   make grade  SUBMISSIONS=folder: grade learners' lab notebooks offline into a score table
#   make colab-check  the README's Colab set-up cell in an environment with only Colab's preinstalls
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# A range, never a pin: Colab and GPU machines keep their own torch. CI narrows it to the CPU wheel it has on disk.
TORCH_SPEC ?= torch>=2.3
# On a CPU-only machine: make install TORCH_INDEX=https://download.pytorch.org/whl/cpu (the CPU build, not CUDA's GBs).
TORCH_INDEX ?=
STAMP  := $(VENV)/.labkit-installed
OFFLINE_ENV := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
# The book: executed at BOOK_PROFILE into Jupyter Book's execution cache, BOOK_JOBS notebooks at a time
# (scripts/book_cache.py), then built; cpu builds into _build/html, another profile into _build/<profile>/_build/html.
BOOK_PROFILE ?= cpu
BOOK_JOBS ?= 2
BOOK_ENV := LABKIT_HEADLESS=1 PLOTLY_RENDERER=plotly_mimetype+notebook_connected TOKENIZERS_PARALLELISM=false
# make lab: JupyterLab at the repository root. In a container: make lab LAB_IP=0.0.0.0 (as root, --allow-root is added).
LAB_IP ?= 127.0.0.1
LAB_PORT ?= 8888
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
# make e2e: Debian's Chromium (installed when missing; Playwright's own browser download needs the internet)
CHROMIUM ?= /usr/bin/chromium

.PHONY: install test checked-outputs book book-smoke lab e2e e2e-deps bench course grade colab-check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e ".[test,book]"
	touch $(STAMP)

# Notebooks with cells marked "# NBVAL_CHECK_OUTPUT": nbval compares those cells with their stored outputs.
CHECKED_NOTEBOOKS = $(shell grep -l "NBVAL_CHECK_OUTPUT" book/*.ipynb labs/*.ipynb labs/solutions/*.ipynb 2>/dev/null)
GUARD_ENV := LABKIT_PROFILE=smoke LABKIT_HEADLESS=1 LABKIT_NETGUARD=1 PYTHONPATH=$(CURDIR)/tests/netguard TOKENIZERS_PARALLELISM=false

# LABKIT_KEEP_EXECUTED: where tests/test_notebooks.py keeps each executed notebook, so that `make e2e`'s smoke
# book takes them into its execution cache instead of running every notebook a second time.
TEST_ENV := PLOTLY_RENDERER=plotly_mimetype+notebook_connected LABKIT_KEEP_EXECUTED=$(CURDIR)/_build/executed/smoke

test: $(STAMP)
	$(OFFLINE_ENV) $(TEST_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider tests
	$(if $(CHECKED_NOTEBOOKS),$(OFFLINE_ENV) $(GUARD_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider --nbval-lax $(CHECKED_NOTEBOOKS))

# After editing a cell marked NBVAL_CHECK_OUTPUT: run it at the smoke profile and store its output.
checked-outputs: $(STAMP)
	$(OFFLINE_ENV) $(GUARD_ENV) $(BIN)/python -m scripts.store_checked_outputs $(CHECKED_NOTEBOOKS)

book: $(STAMP)
	$(BOOK_ENV) $(BIN)/python -m scripts.book_cache build --profile $(BOOK_PROFILE) --jobs $(BOOK_JOBS)

# The small book the browser tests read (smoke profile, offline).
book-smoke: $(STAMP)
	$(OFFLINE_ENV) $(BOOK_ENV) $(BIN)/python -m scripts.book_cache build --profile smoke --jobs $(BOOK_JOBS)

lab: $(STAMP)
	test -x $(BIN)/jupyter-lab || $(BIN)/python -m pip install --quiet -e ".[lab]" "$(TORCH_SPEC)"
	@echo "JupyterLab at the repository root: chapters in book/, labs in labs/ (solutions in labs/solutions/)."
	@echo "Open the URL with the token that JupyterLab prints below (http://$(LAB_IP):$(LAB_PORT)/lab?token=...)."
	$(BIN)/jupyter-lab --notebook-dir="$(CURDIR)" --ip=$(LAB_IP) --port=$(LAB_PORT) --no-browser $(ALLOW_ROOT)

e2e-deps: $(STAMP)
	test -x $(CHROMIUM) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	$(BIN)/python -c "import playwright, jupyterlab" 2>/dev/null || \
	  $(BIN)/python -m pip install --quiet "playwright>=1.40" "jupyterlab>=4.0" "$(TORCH_SPEC)"

# A warning in the smoke build (e.g. a broken cross-reference) does not stop the browser tests, which check
# the pages themselves; `make book` is where warnings fail the build.
e2e: e2e-deps
	$(MAKE) book-smoke || echo "make e2e: the smoke book built with warnings (above); testing what was built"
	$(OFFLINE_ENV) LABKIT_E2E=1 CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e

# make course: labs/<lab>.ipynb (learners) and labs/solutions/<id>-solutions.ipynb (instructors), generated from
# course/ (otter-grader's format); never edit the generated notebooks by hand (a test compares them with course/).
course: $(STAMP)
	$(BIN)/python -m scripts.course

# make grade SUBMISSIONS=folder [LAB=lab04b]: grade learners' notebooks offline (otter run, a time limit, no
# network) into $(GRADES)/scores.csv and feedback.csv.
SUBMISSIONS ?=
LAB ?=
GRADES ?= _build/grades
GRADE_TIMEOUT ?= 600
GRADE_JOBS ?= 1
grade: $(STAMP)
	$(if $(SUBMISSIONS),,$(error make grade needs SUBMISSIONS=<folder of notebooks>))
	$(OFFLINE_ENV) $(BIN)/python -m scripts.grade "$(SUBMISSIONS)" $(if $(LAB),--lab $(LAB)) --out $(GRADES) --timeout $(GRADE_TIMEOUT) --jobs $(GRADE_JOBS)

# make colab-check: the README's Colab cell in a fresh environment with only Colab's preinstalls, then labs there.
colab-check: $(STAMP)
	$(OFFLINE_ENV) $(BIN)/python -m scripts.colab_check $(COLAB_LABS)

bench: $(STAMP)
	$(OFFLINE_ENV) $(BOOK_ENV) $(BIN)/python -m scripts.bench

clean:
	rm -rf _build .pytest_cache
