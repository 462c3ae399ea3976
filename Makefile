# paystream — `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FAULTS_SCALE ?= 10

.PHONY: help setup up down status test faults test-unit lint fmt run bench

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

setup: $(STAMP) ## Create the Python venv and install paystream with its dev tools

up: setup ## Install what is missing and start Kafka, PostgreSQL, Redis and anvil
	$(BIN)/paystream stack up

down: setup ## Stop the local stack (data is kept)
	$(BIN)/paystream stack down

status: setup ## Show each service's address and health
	$(BIN)/paystream stack status

run: setup ## The whole engine end to end: stack, contracts, worker, deposits, payments, summary
	$(BIN)/paystream demo

bench: up ## Benchmarks: pipeline vs raw-Kafka and no-op-Faust baselines, capacity, latency; ledger writes; restart with history; the merchant API
	$(BIN)/paystream bench run
	$(BIN)/paystream bench store
	$(BIN)/paystream bench restart
	$(BIN)/paystream bench gateway

test: lint up ## Lint (layers included), start the stack and run the whole test suite against it
	$(BIN)/python -m pytest

faults: up ## The fault suite (tests/faults) with 10x the payments and faults (FAULTS_SCALE=N to change)
	PAYSTREAM_FAULTS_SCALE=$(FAULTS_SCALE) $(BIN)/python -m pytest tests/faults -m faults

test-unit: setup ## The unit tests only (no service needed)
	$(BIN)/python -m pytest tests/unit

lint: setup ## ruff, mypy --strict and the import-layer contracts (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: setup ## Format the code and apply ruff's safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
