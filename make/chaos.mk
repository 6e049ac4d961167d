# The chaos harness (deploy/chaos): a cluster of tally containers under
# faults, with a fleet of devices, checked for linearizability, over-
# allocation, lost leases, one-time keys, the audit chain and convergence.
# Needs Docker and root (nsenter and iptables into the containers).

CHAOS_OUT   ?= chaos-out
CHAOS_FLAGS ?=
CHAOS        = $(GO) run ./deploy/chaos -image $(IMAGE):$(IMAGE_TAG) -out $(CHAOS_OUT) $(CHAOS_FLAGS)

.PHONY: chaos chaos-short

## chaos: the image and the previous commit's, then a three-node run
## that starts on the previous one and upgrades, and a five-node run, four
## minutes of nemeses each; fails when either finds an anomaly. The
## summaries go to chaos-out/RUN/summary.md
chaos: image chaos-prev-image
	@r=0; \
	$(CHAOS) -nodes 3 -duration 4m -upgrade-from $(CHAOS_PREV_IMAGE) || r=1; \
	$(CHAOS) -nodes 5 -duration 4m || r=1; \
	exit $$r

## chaos-short: the image, then a three-node run of about three minutes
## (one round of every nemesis), for CI
chaos-short: image
	$(CHAOS) -nodes 3 -duration 120s -hold 5s

# The previous release: there are no release tags, so the commit before
# this one (CHAOS_FROM names another). Its binaries are built in a git
# worktree and put in an image with this tree's Dockerfile.
CHAOS_FROM      ?= HEAD~1
CHAOS_FROM_REV   = $(shell git rev-parse --short $(CHAOS_FROM))
CHAOS_PREV_IMAGE = tally-prev:$(CHAOS_FROM_REV)
CHAOS_PREV_DIR  := dist/chaos-prev

.PHONY: chaos-prev-image chaos-upgrade

## chaos-prev-image: the image of CHAOS_FROM (default HEAD~1), built from a
## git worktree, as tally-prev:REV
chaos-prev-image:
	@set -e; rev=$(CHAOS_FROM_REV); tmp=$$(mktemp -d); wt=$$tmp/src; ctx=$(CHAOS_PREV_DIR); \
	git worktree add --detach -q $$wt $$rev; \
	trap "git worktree remove --force $$wt; rmdir $$tmp" EXIT; \
	rm -rf $$ctx; mkdir -p $$ctx/dist/image/root/etc $$ctx/dist/image/root/tmp $$ctx/dist/image/tally/data; \
	chmod 1777 $$ctx/dist/image/root/tmp; chmod 0700 $$ctx/dist/image/tally/data; \
	cp deploy/container/rootfs/etc/passwd deploy/container/rootfs/etc/group $$ctx/dist/image/root/etc/; \
	for c in $(IMAGE_CMDS); do \
		(cd $$wt && GOOS=linux GOARCH=$(IMAGE_ARCH) GOARM=7 $(BUILDENV) $(GO) build $(BUILDFLAGS) \
			-ldflags '-s -w -buildid= -X main.buildVersion='$$rev -o $(CURDIR)/$$ctx/dist/image/root/$$c ./cmd/$$c); \
	done; \
	cp Dockerfile $$ctx/; \
	$(DOCKER) buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0; \
	$(DOCKER) build -q --build-arg VERSION=$$rev -t $(CHAOS_PREV_IMAGE) $$ctx >/dev/null; \
	echo "built $(CHAOS_PREV_IMAGE)"

## chaos-upgrade: a three-node run that starts on the previous commit's
## image and upgrades node by node to this one, under the other nemeses
chaos-upgrade: image chaos-prev-image
	$(CHAOS) -nodes 3 -duration 150s -hold 6s -upgrade-from $(CHAOS_PREV_IMAGE)
