# Attesta — `make help` lists the targets. The README's two commands are
# `make demo` (the main job) and `make test` (the whole test suite).
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
ENV := source tools/env.sh

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: install
install: ## Install the pinned toolchain (Foundry, solc, OpenZeppelin, forge-std) from npm
	npm ci --no-audit --no-fund --loglevel=error

.PHONY: demo
demo: ## The main job: a local Attesta network serving real inference (ARGS=--keep-running keeps it up)
	$(ENV) && cargo build --bins --locked && "$${CARGO_TARGET_DIR:-target}/debug/attesta-demo" $(ARGS)

.PHONY: devnet
devnet: ## Only a local chain with the contracts deployed (ARGS=--keep-running keeps it up)
	tools/devnet $(ARGS)

.PHONY: test
test: ## The whole test suite, as CI runs it (installs what it needs)
	tools/test

.PHONY: check
check: test ## Everything CI runs (slither included)

.PHONY: build
build: ## Compile the contracts and print their sizes
	$(ENV) && forge build --sizes

.PHONY: fmt
fmt: ## Format Solidity and Rust sources
	$(ENV) && forge fmt
	if [ -f Cargo.toml ]; then cargo fmt --all; fi

.PHONY: gas
gas: ## Refresh .gas-snapshot, snapshots/ and the gas tables of BENCHMARKS.md
	$(ENV) && forge snapshot --match-path 'test/gas/*' && forge test --match-path 'test/gas/*' && tools/gas-tables

.PHONY: bench
bench: ## Run every bench (sandbox, signatures, relayer pipeline), then make gas; rewrite BENCHMARKS.md's figures
	$(ENV) && tools/bench-book

.PHONY: abi
abi: ## Copy the contracts' ABIs into sdk/abi (the Rust bindings' source)
	$(ENV) && forge build && tools/sync-abi

.PHONY: coverage
coverage: ## Line and branch coverage of contracts/ (forge coverage)
	tools/coverage

.PHONY: slither
slither: ## Static analysis with slither (installs slither-analyzer from PyPI)
	tools/slither

.PHONY: fuzz-intense
fuzz-intense: ## A long fuzz and invariant campaign (FOUNDRY_PROFILE=intense)
	$(ENV) && FOUNDRY_PROFILE=intense forge test
