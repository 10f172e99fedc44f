# aim's tasks. `make demo` hosts the examples; `make test` runs every test
# against a real Docker engine (installed and started when missing).
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go

.PHONY: build test test-unit test-examples test-security demo images bench clean

build:
	$(GO) build -o bin/aim ./cmd/aim

demo:
	scripts/demo.sh

images:
	images/build.sh all

# Every test: go.mod and go.sum tidy, unit tests, integration tests against
# the real engine, the examples' own tests, then aim on Kubernetes
# (test-kube). CI runs this. The cluster's parts build in the background
# from the start (scripts/prebuild-cluster.sh); test-kube waits for them.
test:
	scripts/ensure-docker.sh
	scripts/ensure-test-deps.sh
	scripts/prebuild-cluster.sh
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 50m ./...
	$(MAKE) fuzz
	$(MAKE) test-examples
	$(MAKE) test-kube

# The hostile-tenant cases alone (docs/security.md); `make test` runs them
# too, as part of test/e2e. Needs root and Docker.
test-security:
	scripts/ensure-docker.sh
	$(GO) test -count=1 -timeout 20m -v -run '^(TestCookieIsolation|TestHostConfusion|TestEgress|TestAbuseContained|TestFaults|TestSmuggling|TestLoad)$$' ./test/e2e/

# aim on Kubernetes (scripts/test-kube.sh): generated files and the chart
# checked, the cluster's parts built (cached in ~/.cache/aim/kube; a cold
# build takes 20-35 min on two cores), the operator against envtest, then
# the local cluster of test/cluster brought up, its smoke check, test/e2e-kube
# (the chart, the examples through the in-cluster gateway, the wake
# benchmark, logged), and the cluster taken down
# whatever failed. KEEP_CLUSTER=1 leaves it up. Needs root, Docker and
# about 4 GB of memory.
.PHONY: test-kube test-e2e-kube test-cluster-up test-cluster-down test-cluster-smoke
test-kube:
	scripts/test-kube.sh

# A single-node Kubernetes built from source on this machine (test/cluster).
test-cluster-up:
	test/cluster/build.sh
	test/cluster/up.sh

test-cluster-down:
	test/cluster/down.sh

test-cluster-smoke: test-cluster-up
	test/cluster/smoke.sh

# test/e2e-kube alone: brings the cluster up (and down) itself when none
# runs.
test-e2e-kube:
	$(GO) test -tags kube -count=1 -timeout 60m -v ./test/e2e-kube/

# Go's native fuzzing, FUZZTIME per target, on every parser of untrusted
# input: manifests, uploaded build contexts, request heads, Host headers,
# a solution's Set-Cookie, access-log fields and providers' Markdown. A
# failure leaves its input in the package's testdata/fuzz/ to keep.
FUZZTIME ?= 20s
FUZZ_TARGETS := ./internal/spec:FuzzParse ./internal/buildctx:FuzzCheck \
	./internal/gateway:FuzzParseRequest ./internal/gateway:FuzzHost \
	./internal/gateway:FuzzSafeSetCookie ./internal/gateway:FuzzAppendAccess \
	./internal/markdown:FuzzHTML
.PHONY: fuzz
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "==> fuzzing $${t#*:} in $${t%%:*} for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done

test-unit:
	$(GO) test -short ./...

test-examples: images
	$(MAKE) -C examples test

# Benchmarks against peers, measured in the same run; see docs/benchmarks.md.
bench: build
	scripts/ensure-docker.sh
	$(GO) run ./bench/wake -aim bin/aim -rounds 20
	$(GO) run ./bench/gateway -aim bin/aim
	$(GO) run ./bench/catalog -docs docs/benchmarks.md

# Every case of bench/gateway once, a few seconds each (under 2 minutes):
# proof that the harness works, not a result.
.PHONY: bench-gateway-smoke
bench-gateway-smoke: build
	scripts/ensure-docker.sh
	$(GO) run ./bench/gateway -aim bin/aim -solutions 0 -rounds 1 -duration 2s -warmup 0

# The Kubernetes operator reconciling 1,000 and 5,000 Solutions on 100
# nodes simulated by kwok (about 2 hours, so not part of bench); see
# docs/benchmarks.md. Needs the binaries of test/cluster/build.sh and etcd.
.PHONY: bench-kube
bench-kube: build
	$(GO) run ./bench/kube -aim bin/aim

clean:
	rm -rf bin
