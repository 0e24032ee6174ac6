# Makefile fragment for the local, Docker-free Kubernetes (e2e/).
# The top-level Makefile includes it: `include e2e/sandbox.mk`.
#
#   make k8s-binaries   build kube-apiserver/-controller-manager/-scheduler once (cached)
#   make sandbox-up     start etcd, the control plane, SANDBOX_NODES sluice-node agents, the S3
#                       server (MinIO) and, with SANDBOX_OPERATOR=process, the CRDs and the operator
#   make sandbox-down   stop everything and clean up (processes, netns, bridge)
#   make e2e-test       the e2e/ test suite (unit + end-to-end, against real binaries)
#
# Must run as root (network namespaces, bridge, bind mounts). Needs go >= 1.24
# (first builds of Kubernetes and MinIO only), iproute2 and flock (util-linux).

SLUICE_E2E_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
SLUICE_REPO_DIR := $(patsubst %/,%,$(dir $(abspath $(SLUICE_E2E_DIR))))

SLUICE_CACHE ?= $(HOME)/.cache/sluice
SLUICE_K8S_VERSION ?= v1.34.4
# e2e/ is its own cargo workspace with its own target dir, so its builds
# neither wait on nor invalidate the engine's.
E2E_TARGET_DIR ?= $(SLUICE_CACHE)/target-e2e
E2E_CARGO = cd $(SLUICE_E2E_DIR) && CARGO_TARGET_DIR=$(E2E_TARGET_DIR) SLUICE_CACHE=$(SLUICE_CACHE) SLUICE_K8S_VERSION=$(SLUICE_K8S_VERSION) cargo
SANDBOX_DIR ?= $(CURDIR)/.sandbox
SANDBOX_NODES ?= 1
# process|helm|none: how sandbox-up runs the operator. `process` builds it with
# `cargo build --workspace --bins` (root workspace, honouring CARGO_TARGET_DIR;
# the same features as `make test`, so it reuses its build),
# applies crds/*.yaml and runs the binary on the host; `helm` installs
# charts/sluice (CRDs, RBAC, the operator as pods of image sluice/operator,
# mapped to the same binary) with the pinned helm of scripts/helm.sh.
SANDBOX_OPERATOR ?= process
# 1: also a Kafka broker (scripts/kafka.sh) on the bridge gateway, in-cluster kafka.sluice-system:9092.
SANDBOX_KAFKA ?= 0
SLUICE_SANDBOX = $(E2E_TARGET_DIR)/debug/sluice-sandbox

export SLUICE_CACHE

.PHONY: k8s-binaries s3-binary sandbox-operator sandbox-up sandbox-down e2e-test e2e-build

k8s-binaries:
	SLUICE_CACHE=$(SLUICE_CACHE) bash $(SLUICE_E2E_DIR)/scripts/build-k8s.sh $(SLUICE_K8S_VERSION)

# MinIO, built once with `go install` into $(SLUICE_CACHE)/bin.
s3-binary:
	SLUICE_CACHE=$(SLUICE_CACHE) bash $(SLUICE_REPO_DIR)/scripts/s3-server.sh install >/dev/null

e2e-build:
	$(E2E_CARGO) build --bins

sandbox-operator:
	@if [ "$(SANDBOX_OPERATOR)" = process ] || [ "$(SANDBOX_OPERATOR)" = helm ]; then \
	  echo "cd $(SLUICE_REPO_DIR) && cargo build --workspace --bins"; \
	  cd $(SLUICE_REPO_DIR) && cargo build --workspace --bins; \
	fi
	@if [ "$(SANDBOX_OPERATOR)" = helm ]; then bash $(SLUICE_REPO_DIR)/scripts/helm.sh install >/dev/null; fi

sandbox-up: k8s-binaries s3-binary e2e-build sandbox-operator
	SANDBOX_OPERATOR=$(SANDBOX_OPERATOR) SANDBOX_KAFKA=$(SANDBOX_KAFKA) $(SLUICE_SANDBOX) up --dir $(SANDBOX_DIR) --nodes $(SANDBOX_NODES)

sandbox-down:
	@if [ -x $(SLUICE_SANDBOX) ]; then $(SLUICE_SANDBOX) down --dir $(SANDBOX_DIR); else echo "sandbox not built; nothing to stop"; fi

e2e-test: k8s-binaries s3-binary
	$(E2E_CARGO) test --no-fail-fast
