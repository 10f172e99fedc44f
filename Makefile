# aim's tasks. `make demo` hosts the examples; `make test` runs every test
# against a real Docker engine (installed and started when missing).
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go

.PHONY: build test test-unit test-examples demo images bench clean

build:
	$(GO) build -o bin/aim ./cmd/aim

demo:
	scripts/demo.sh

images:
	images/build.sh all

# Every test: unit tests, integration tests against the real engine, and
# the examples' own tests.
test:
	scripts/ensure-docker.sh
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...
	$(MAKE) test-examples

# aim on Kubernetes, end to end: the local cluster of test/cluster (brought
# up and torn down when none runs; KEEP_CLUSTER=1 leaves it and the release
# up), the chart, the examples through the in-cluster gateway, and the wake
# benchmark recorded in docs/benchmarks.md. Needs root, Docker and about
# 4 GB of memory.
.PHONY: test-e2e-kube test-cluster-up test-cluster-down test-cluster-smoke
# A single-node Kubernetes built from source on this machine (test/cluster).
test-cluster-up:
	test/cluster/build.sh
	test/cluster/up.sh

test-cluster-down:
	test/cluster/down.sh

test-cluster-smoke: test-cluster-up
	test/cluster/smoke.sh

test-e2e-kube:
	$(GO) test -tags kube -count=1 -timeout 90m -v ./test/e2e-kube/

test-unit:
	$(GO) test -short ./...

test-examples: images
	$(MAKE) -C examples test

# Benchmarks against peers, measured in the same run; see docs/benchmarks.md.
bench: build
	scripts/ensure-docker.sh
	$(GO) run ./bench/wake -aim bin/aim -rounds 20
	$(GO) run ./bench/gateway -aim bin/aim

# The Kubernetes operator reconciling 1,000 and 5,000 Solutions on 100
# nodes simulated by kwok (about 2 hours, so not part of bench); see
# docs/benchmarks.md. Needs the binaries of test/cluster/build.sh and etcd.
.PHONY: bench-kube
bench-kube: build
	$(GO) run ./bench/kube -aim bin/aim

clean:
	rm -rf bin
