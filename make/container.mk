# The container image (Dockerfile, FROM scratch) and its end-to-end test:
# the three-node cluster of deploy/compose.yaml with devices, a leader
# killed and brought back (deploy/container).

DOCKER     ?= docker
IMAGE      ?= tally
IMAGE_TAG  ?= $(subst +,-,$(VERSION))
IMAGE_ARCH ?= $(shell $(GO) env GOARCH)
IMAGE_DIR  := dist/image
IMAGE_CMDS := tallyd tallyctl tally-agent

.PHONY: image e2e-container

## image: the container image $(IMAGE):$(IMAGE_TAG) (also tagged latest):
## the static linux binaries, built here as `make cross` builds them into
## dist/linux-ARCH, staged in dist/image with /etc/passwd, /etc/group and
## an empty /data, then `docker build`; prints the image's size
image:
	@set -e; bin=dist/linux-$(IMAGE_ARCH); mkdir -p $$bin; \
	for c in $(IMAGE_CMDS); do \
		GOOS=linux GOARCH=$(IMAGE_ARCH) GOARM=7 $(BUILD) -o $$bin/$$c ./cmd/$$c; \
	done; \
	rm -rf $(IMAGE_DIR); mkdir -p $(IMAGE_DIR)/root/etc $(IMAGE_DIR)/root/tmp $(IMAGE_DIR)/tally/data; \
	chmod 1777 $(IMAGE_DIR)/root/tmp; chmod 0700 $(IMAGE_DIR)/tally/data; \
	cp deploy/container/rootfs/etc/passwd deploy/container/rootfs/etc/group $(IMAGE_DIR)/root/etc/; \
	for c in $(IMAGE_CMDS); do cp $$bin/$$c $(IMAGE_DIR)/root/; done; \
	$(DOCKER) buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0; \
	$(DOCKER) build -q --build-arg VERSION=$(VERSION) -t $(IMAGE):$(IMAGE_TAG) -t $(IMAGE):latest . >/dev/null; \
	echo "built $(IMAGE):$(IMAGE_TAG), $$($(DOCKER) image inspect -f '{{.Size}}' $(IMAGE):$(IMAGE_TAG) | awk '{printf "%.1f MB", $$1/1e6}')"

## e2e-container: the image, then the compose cluster end to end
## (TALLY_E2E=1 go test ./deploy/container), bounded to a few minutes
e2e-container: image
	TALLY_E2E=1 TALLY_IMAGE=$(IMAGE):$(IMAGE_TAG) $(GO) test -count=1 -timeout 9m -v ./deploy/container/

e2e: e2e-container
