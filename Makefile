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

.PHONY: bench-operator
bench-operator: tools ## Operator: plan() at 10,000 edges x 100 supers; 5 kwok clusters x 200 nodes end to end
	$(CARGO) bench -p hsn-operator --bench plan
	$(CARGO) bench -p hsn-operator --bench operator -- --clusters 5 --nodes 200

.PHONY: bench-ledger
bench-ledger: deps tools ## Ledger ingest vs the ed25519 batch-verify ceiling, Merkle, proofs, storage; 4 validators vs one ledger
	$(CARGO) bench -p hsn-ledger --bench ledger
	$(CARGO) bench -p hsn-ledger --bench replicated

.PHONY: bench-datapath
bench-datapath: deps ## Datapath (root): edge XDP ns/packet vs XDP_PASS, 10 vs 100k prefixes, IP-in-IP vs plain XDP redirect; in netns the XDP tunnel vs Linux forwarding, plain and IP in IP
	$(CARGO) bench -p hsn-ebpf --bench datapath

IMAGE_TAG ?= 0.1.0
.PHONY: images
images: ## Build the hsn-operator, hsn-agent and hsn-ledger images (needs a container engine)
	@command -v docker >/dev/null && docker info >/dev/null 2>&1 || { echo "error: images need a running container engine (docker); this machine has none: make images-local builds them without one" >&2; exit 1; }
	docker build -f operator/Dockerfile -t ghcr.io/hsn-io/hsn-operator:$(IMAGE_TAG) .
	docker build -f node-agent/Dockerfile -t ghcr.io/hsn-io/hsn-agent:$(IMAGE_TAG) .
	docker build -f ledger/Dockerfile -t ghcr.io/hsn-io/hsn-ledger:$(IMAGE_TAG) .

IMAGES_DIR ?= target/images
.PHONY: images-local
images-local: deps ## The same images plus the pause image without a daemon: OCI archives in $(IMAGES_DIR) (hack/images.sh)
	$(CARGO) build --release --locked -p hsn-operator -p hsn-agent -p hsn-ledger --bins
	IMAGE_TAG=$(IMAGE_TAG) CARGO_PROFILE=release hack/images.sh build $(IMAGES_DIR)

.PHONY: kind-up
kind-up: ## kind: hub + two MEC clusters, images (make images) loaded, chart installed, MECs registered
	@IMAGE_TAG=$(IMAGE_TAG) hack/kind-up.sh up

.PHONY: kind-test
kind-test: kind-up ## The e2e suite against the kind clusters (kind/README.md)
	eval "$$(IMAGE_TAG=$(IMAGE_TAG) hack/kind-up.sh env)" && $(CARGO) test -p hsn-operator --test e2e -- --nocapture

.PHONY: kind-down
kind-down: ## Delete the kind clusters
	@hack/kind-up.sh down

.PHONY: demo
demo: tools ## Hub + two MEC clusters locally, the operator, the example network until Ready
	@hack/demo.sh up

.PHONY: demo-down
demo-down: ## Stop and delete the demo clusters
	@hack/demo.sh down
