# The arm64 appliance image and its end-to-end test (deploy/appliance): a
# Debian arm64 kernel and a busybox initramfs holding tallyd, the Buildroot
# tree's S90tally and rootfs overlay, booted under qemu-system-aarch64.

APPLIANCE_ARM64 := dist/appliance-arm64

.PHONY: appliance-arm64 e2e-appliance

## appliance-arm64: the image (vmlinuz, initramfs.cpio.gz, manifest) into
## dist/appliance-arm64, from Debian bookworm's linux-image-arm64 and
## busybox-static (arm64 .debs fetched with apt into a private state
## directory and cached in ~/.cache/tally-appliance) and tallyd and
## tally-agent built static for linux/arm64; deploy/appliance/build.sh
appliance-arm64:
	OUT=$(APPLIANCE_ARM64) GO='$(GO)' LDFLAGS='$(LDFLAGS)' deploy/appliance/build.sh

## e2e-appliance: the image, then boots it under qemu-system-aarch64 (TCG,
## UEFI) and checks health, the HostIDs, a checkout from the host and a
## graceful poweroff (TALLY_E2E=1 go test ./deploy/appliance); needs
## qemu-system-arm and qemu-efi-aarch64
e2e-appliance: appliance-arm64
	TALLY_E2E=1 TALLY_APPLIANCE=$(CURDIR)/$(APPLIANCE_ARM64) \
		$(GO) test -count=1 -timeout 15m -v ./deploy/appliance/

e2e: e2e-appliance
