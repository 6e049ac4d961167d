# Tally build. Every target works on a fresh machine with Go installed.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# The binaries are reproducible: a commit gives the same bytes on any machine
# with the same Go. -trimpath drops the paths of the build machine, -buildid=
# the build ID, -buildvcs=false Go's VCS stamp (VERSION names the commit).
# cmd/tallyd/build_test.go builds with these flags too (make print-build-flags).
BUILDENV   := CGO_ENABLED=0
BUILDFLAGS := -trimpath -buildvcs=false
LDFLAGS    := -s -w -buildid= -X main.buildVersion=$(VERSION)
BUILD      := $(BUILDENV) $(GO) build $(BUILDFLAGS) -ldflags '$(LDFLAGS)'
CMDS     := tallyd tallyctl tally-agent tally-backoffice
TARGETS  := linux/amd64 linux/arm64 linux/arm
FUZZTIME ?= 30s
export GOTOOLCHAIN ?= local

.PHONY: all build cross test bench run lint fuzz clean screenshots

all: lint test build

## build: the binaries for this machine, into bin/
build:
	@mkdir -p bin
	$(foreach c,$(CMDS),$(BUILD) -o bin/$(c) ./cmd/$(c) &&) true

## cross: static binaries for linux/amd64, linux/arm64 and linux/arm (GOARM=7),
## reproducible, into dist/OS-ARCH/, and their SHA-256 sums in dist/SHA256SUMS
cross:
	@set -e; for t in $(TARGETS); do \
		os=$${t%/*}; arch=$${t#*/}; dir=dist/$$os-$$arch; mkdir -p $$dir; \
		GOOS=$$os GOARCH=$$arch GOARM=7 $(BUILD) -o $$dir/ $(CMDS:%=./cmd/%); \
		echo "built $$dir"; \
	done
	@cd dist && sha256sum $(foreach t,$(TARGETS),$(CMDS:%=$(subst /,-,$(t))/%)) >SHA256SUMS
	@echo "wrote dist/SHA256SUMS"

## test: the whole test suite (unit, property, fuzz seeds, integration)
test:
	$(GO) test -count=1 ./...

## bench: every target of DESIGN.md section 8, measured by deploy/bench
## (the Go benchmarks through go test -json, and the real binaries built as
## make cross builds them), into bench/REPORT.md and bench/report.json with
## the machine, commit and date, each figure beside its target. BENCH_SHORT=1
## runs small loads that finish in a few minutes; BENCH_IDLE=N sets the idle
## device connections (default 100,000); BENCHFLAGS passes more flags
## (go run ./deploy/bench -h lists them).
BENCHCOUNT ?= 3
BENCHFLAGS ?=
bench:
	$(GO) run ./deploy/bench -out bench -count $(BENCHCOUNT) $(BENCHFLAGS)

## screenshots: the browser tests again, saving the main views of the web
## UI into docs/screenshots
screenshots:
	@mkdir -p docs/screenshots
	TALLY_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run 'TestWebUI' ./cmd/tallyd/

## run: the demo (a single node with the demo producer's rights)
run:
	$(GO) run ./cmd/tallyd --dev

## lint: gofmt and go vet, failing on any finding
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## fuzz: each fuzz target for FUZZTIME (default 30s)
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

clean:
	rm -rf bin dist

# The appliance's targets (firmware, images, containers, e2e) live in make/;
# included last so that all stays the default goal.
-include make/*.mk
