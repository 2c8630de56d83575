# mlsteps: `make demo` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CACHE      := $(CURDIR)/.cache
VEGA_VER   := 3.2.1
ORT_VER    := 1.30.0
VGW_VER    := v1.7.0
VEGA       := $(CACHE)/vega/data/penguins.json
ORT_LIB    := $(CACHE)/lib/libonnxruntime.so.1
VERSITYGW  := $(CACHE)/bin/versitygw
BIN        := $(CURDIR)/bin/mlsteps
GO_PKGS    := ./...
# where the checked-in compiled example runs (TestExamplesCompile compares)
EXAMPLE_CLUSTER := --root 's3://ml-artifacts/mlsteps?region=us-east-1' --image ghcr.io/mlsteps/mlsteps:0.1.0

export MLSTEPS_ORT_LIB := $(ORT_LIB)
export CGO_ENABLED := 1

.PHONY: help setup apt build test demo bench fuzz fmt vet clean manifests

help:
	@echo "make demo   - set up, then import the penguins dataset into a split Dataset artifact"
	@echo "make test   - set up, then gofmt check, go vet and every test"
	@echo "make bench  - benchmarks one package at a time, each beside its reference; ends with the table in bench/results.md"
	@echo "make fuzz   - a short run of every fuzz target"
	@echo "make manifests - regenerate manifests/ (Argo templates per step, RBAC, kustomization)"
	@echo "make setup  - fetch ONNX Runtime, the vega datasets and the S3-compatible test server into .cache/"

## setup: idempotent, and offline once everything is in .cache/.
setup: $(VEGA) $(ORT_LIB) $(VERSITYGW) apt

apt:
	@bash scripts/setup-apt.sh

$(VEGA):
	@mkdir -p $(CACHE)/npm $(CACHE)/vega
	cd $(CACHE)/npm && npm pack --silent vega-datasets@$(VEGA_VER) >/dev/null
	tar xzf $(CACHE)/npm/vega-datasets-$(VEGA_VER).tgz -C $(CACHE)/vega --strip-components=1
	@touch $@

$(ORT_LIB):
	@mkdir -p $(CACHE)/npm $(CACHE)/lib
	cd $(CACHE)/npm && npm pack --silent onnxruntime-node@$(ORT_VER) >/dev/null
	tar xzf $(CACHE)/npm/onnxruntime-node-$(ORT_VER).tgz -C $(CACHE)/lib --strip-components=5 package/bin/napi-v6/linux/x64/libonnxruntime.so.1
	rm -f $(CACHE)/npm/onnxruntime-node-$(ORT_VER).tgz
	@touch $@

$(VERSITYGW):
	@mkdir -p $(CACHE)/bin
	GOBIN=$(CACHE)/bin go install github.com/versity/versitygw/cmd/versitygw@$(VGW_VER)

## build: one binary, shared by every test that runs it as a process.
build:
	@mkdir -p bin
	go build -o $(BIN) ./cmd/mlsteps

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	go vet $(GO_PKGS)

test: setup build fmt vet
	MLSTEPS_BIN=$(BIN) go test -count=1 -timeout 30m $(GO_PKGS)

demo: setup build
	@bash scripts/demo.sh $(BIN)

bench: setup build
	@mkdir -p bench
	MLSTEPS_BIN=$(BIN) go test -p 1 -run '^$$' -bench . -benchtime 1x -count 1 -timeout 45m $(GO_PKGS) 2>&1 | go run ./scripts/benchtable -out bench/results.md

fuzz:
	@set -e; for pkg in $$(go list ./...); do \
	  for target in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$target"; \
	    go test -run '^$$' -fuzz "^$$target$$" -fuzztime $${FUZZTIME:-10s} $$pkg; \
	  done; \
	done

## manifests: regenerate manifests/ from the step contracts and examples/penguins/compiled/ (CI fails when stale).
manifests: build
	rm -rf manifests/argo manifests/kfp
	$(BIN) manifests manifests
	$(BIN) describe --markdown > docs/steps.md
	@mkdir -p examples/penguins/compiled
	$(BIN) compile examples/penguins/pipeline.yaml --target argo $(EXAMPLE_CLUSTER) -o examples/penguins/compiled/argo.yaml
	$(BIN) compile examples/penguins/pipeline.yaml --target kfp $(EXAMPLE_CLUSTER) -o examples/penguins/compiled/kfp.yaml

clean:
	rm -rf bin .demo
