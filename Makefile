# ltos-traffic: every target creates or reuses .venv and installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NET ?= grid6x6
CONTROLLER ?= ltos

.DEFAULT_GOAL := help

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# the CPU wheel first: a bare torch requirement would pull a multi-GB CUDA build
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev,pettingzoo,parquet,ray,resco]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with its dev extras

run: $(STAMP) ## Run the main job: LToS on the 6x6 grid (shipped checkpoint), summary table
	$(VENV)/bin/ltos-traffic run --net $(NET) --controller $(CONTROLLER)

test: $(STAMP) ## Run the default test suite (no slow learning runs)
	$(PY) -m pytest -q

test-slow: $(STAMP) ## Run the slow learning tests
	$(PY) -m pytest -q -m slow

lint: $(STAMP) ## ruff and mypy
	$(VENV)/bin/ruff check ltos_traffic baselines tests benchmarks experiments
	$(VENV)/bin/ruff format --check ltos_traffic baselines tests benchmarks experiments
	$(VENV)/bin/mypy

format: $(STAMP) ## Format the code with ruff
	$(VENV)/bin/ruff format ltos_traffic baselines tests benchmarks experiments

bench: $(STAMP) ## Benchmarks: ratios against raw SUMO, measured in one run
	$(PY) benchmarks/bench.py

clean: ## Remove caches and build outputs (keeps .venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info

.PHONY: help install run test test-slow lint format bench clean
