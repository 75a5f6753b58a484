# Quick start: `make demo` trains a small ViT with SMMix on real handwritten digits; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The PyTorch build to install first; override for another platform, e.g. TORCH_SPEC="torch torchvision".
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# pytest-xdist runs one test process per core; one thread each keeps them from fighting over the cores.
TEST_ENV := $(OFFLINE) OMP_NUM_THREADS=1

.PHONY: install test test-full mutation demo lint docs clean

$(VENV)/.installed: pyproject.toml setup.py smmix_hf/data/_jpeg_region.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# `make test` leaves out the tests marked `full` (full-size checkpoints that take minutes on a CPU); `make test-full`
# runs everything.
test: install
	$(TEST_ENV) $(PY) -m pytest -q -n 2 --durations=15 -m "not full"

test-full: install
	$(TEST_ENV) $(PY) -m pytest -q -n 2 --durations=30

# Breaks the trainer's wiring on purpose, one bug at a time, and shows which reference test catches each.
mutation: install
	$(OFFLINE) $(PY) scripts/mutation_check.py

demo: install
	$(OFFLINE) $(PY) run_smmix.py --config configs/demo.yaml

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The docs site (mkdocs.yml), built strictly: a broken link or anchor, a page left out of the nav or a missing snippet
# fails the build.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) outputs site
