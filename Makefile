# HSN: the two commands are `make demo` and `make test`; everything else is a step of them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(CURDIR)/bin:/usr/local/go/bin:$(HOME)/.cargo/bin:$(PATH)

CARGO ?= cargo

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## Install missing Debian packages (as root) and check Go and Rust
	@hack/install-deps.sh

.PHONY: tools
tools: deps ## Build kube-apiserver, etcd, kubectl, kwok, helm, ... from Go modules into bin/
	@hack/build-tools.sh

.PHONY: crds
crds: ## Regenerate crds/*.yaml from the Rust types
	$(CARGO) run -q -p hsn-api --bin hsn-crdgen

.PHONY: build
build: deps ## Build every crate
	$(CARGO) build --workspace --all-targets

.PHONY: lint
lint: deps ## cargo fmt --check, clang-format --dry-run and clippy with warnings denied
	$(CARGO) fmt --all -- --check
	clang-format --dry-run --Werror ebpf/src/*.bpf.c ebpf/include/*.h
	$(CARGO) clippy --workspace --all-targets -- -D warnings

.PHONY: test
test: tools lint ## Everything CI runs: tools, lint, unit and real-API-server tests
	@echo "==> cargo test (a cold Rust build takes about 6 min on 2 cores)"
	$(CARGO) test --workspace --no-fail-fast

.PHONY: bench-ledger
bench-ledger: deps ## Ledger ingest vs the ed25519 batch-verify ceiling, Merkle, proofs, storage
	$(CARGO) bench -p hsn-ledger --bench ledger

.PHONY: demo
demo: tools ## Hub + two MEC clusters locally, the operator, the example network until Ready
	@hack/demo.sh up

.PHONY: demo-down
demo-down: ## Stop and delete the demo clusters
	@hack/demo.sh down
