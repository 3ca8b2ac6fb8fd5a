# One entry point for readers, learners, instructors and CI.
#   make test   create .venv if needed, install, run every test (labkit + every notebook at the smoke profile)
#   make book   create/install, execute every notebook at the cpu profile, build the HTML book
#   make lab    JupyterLab on the notebooks
#   make bench  notebook wall times and the training loop's overhead, printed as figures
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# A range, never a pin: Colab and GPU machines keep their own torch. CI narrows it to the CPU wheel it has on disk.
TORCH_SPEC ?= torch>=2.3
STAMP  := $(VENV)/.labkit-installed
OFFLINE_ENV := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
BOOK_ENV := LABKIT_PROFILE=cpu LABKIT_HEADLESS=1 PLOTLY_RENDERER=plotly_mimetype+notebook_connected

.PHONY: install test checked-outputs book lab bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test,book]"
	touch $(STAMP)

# Notebooks with cells marked "# NBVAL_CHECK_OUTPUT": nbval compares those cells with their stored outputs.
CHECKED_NOTEBOOKS = $(shell grep -l "NBVAL_CHECK_OUTPUT" book/*.ipynb labs/*.ipynb labs/solutions/*.ipynb 2>/dev/null)
GUARD_ENV := LABKIT_PROFILE=smoke LABKIT_HEADLESS=1 LABKIT_NETGUARD=1 PYTHONPATH=$(CURDIR)/tests/netguard TOKENIZERS_PARALLELISM=false

test: $(STAMP)
	$(OFFLINE_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider tests
	$(if $(CHECKED_NOTEBOOKS),$(OFFLINE_ENV) $(GUARD_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider --nbval-lax $(CHECKED_NOTEBOOKS))

# After editing a cell marked NBVAL_CHECK_OUTPUT: run it at the smoke profile and store its output.
checked-outputs: $(STAMP)
	$(OFFLINE_ENV) $(GUARD_ENV) $(BIN)/python -m scripts.store_checked_outputs $(CHECKED_NOTEBOOKS)

book: $(STAMP)
	$(BOOK_ENV) $(BIN)/jupyter-book build . --warningiserror --keep-going --builder html
	@echo "Book built: $(CURDIR)/_build/html/index.html"

lab: $(STAMP)
	test -x $(BIN)/jupyter-lab || $(BIN)/python -m pip install --quiet -e ".[lab]"
	$(BIN)/jupyter-lab book labs

bench: $(STAMP)
	$(OFFLINE_ENV) $(BIN)/python -m scripts.bench

clean:
	rm -rf _build .pytest_cache
