# Cross builds: the flags make cross uses, for the tests that build the same
# way, and the test suites that run for arm64 and arm under qemu-user.

## print-build-flags: what make build and make cross give go build, one per
## line: NAME=value for the environment, then one argument a line
.PHONY: print-build-flags
print-build-flags:
	@printf '%s\n' $(BUILDENV) $(BUILDFLAGS) '-ldflags=$(LDFLAGS)'

# The packages whose tests run under qemu-user: those that need no browser,
# container or program built for the host, and whose timing holds up under
# emulation on two cores (transport/discovery's network-namespace test runs
# only as root with ip, and passes under qemu-user too). Left out: plugins
# (it starts connectors built for the target as child processes, which
# qemu-user without binfmt_misc cannot run), cmd/tallyd (its scripts run the
# host's binaries, a browser and network namespaces), cmd/tally-agent (its
# discovery tests broadcast on the real network and hear any Tally server
# there), raft (elections time out under emulation, and it takes minutes)
# and transport (minutes under emulation; its rules run in core, its wire
# in transport/device and transport/deviceproto).
TEST_ARM_PKGS ?= ./core/... ./hw ./webui \
	./plugins/builtin ./plugins/dir ./plugins/httpconn \
	./raft/clustertls \
	./transport/device ./transport/deviceproto ./transport/discovery ./transport/mdns \
	./cmd/tallyctl ./cmd/tally-backoffice
QEMU_AARCH64 ?= qemu-aarch64-static
QEMU_ARM     ?= qemu-arm-static

## test-arm: TEST_ARM_PKGS for linux/arm64 and linux/arm (GOARM=7) under
## qemu-user (Debian package qemu-user-static), in -short mode. Go's
## signal-based asynchronous preemption can wedge a program under
## qemu-user (golang/go#67355, #70329), so the tests run without it.
.PHONY: test-arm
test-arm:
	@for q in $(QEMU_AARCH64) $(QEMU_ARM); do command -v $$q >/dev/null || \
		{ echo "test-arm: $$q not found (Debian package qemu-user-static)"; exit 1; }; done
	GODEBUG=asyncpreemptoff=1 GOOS=linux GOARCH=arm64 $(BUILDENV) $(GO) test -count=1 -short -exec $(QEMU_AARCH64) $(TEST_ARM_PKGS)
	GODEBUG=asyncpreemptoff=1 GOOS=linux GOARCH=arm GOARM=7 $(BUILDENV) $(GO) test -count=1 -short -exec $(QEMU_ARM) $(TEST_ARM_PKGS)
