# The Buildroot tree's targets (buildroot/, docs/buildroot.md).

.PHONY: buildroot-src buildroot-e2e

BUILDROOT_SRC_NAME = tally-src-$(VERSION)
DIST ?= dist

## buildroot-src: the sources with their Go modules vendored, for an offline
## Buildroot build: $(DIST)/tally-src-VERSION.tar.gz, its .sha256, and
## $(DIST)/buildroot-hashes/tally/VERSION/tally.hash for BR2_GLOBAL_PATCH_DIR.
## The modules are vendored into a temporary copy, never into this tree.
buildroot-src:
	@set -e; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	src="$$tmp/$(BUILDROOT_SRC_NAME)"; mkdir -p "$$src"; \
	if git rev-parse --git-dir >/dev/null 2>&1; then \
		git ls-files -z --cached --others --exclude-standard | \
			tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$$src"; \
		epoch=$$(git log -1 --format=%ct 2>/dev/null || date +%s); \
	else \
		tar --exclude=./bin --exclude=./dist --exclude=./data --exclude=./vendor -cf - . | tar -xf - -C "$$src"; \
		epoch=$$(date +%s); \
	fi; \
	rm -rf "$$src/vendor"; \
	(cd "$$src" && GOFLAGS=-modcacherw GOTOOLCHAIN=local $(GO) mod vendor); \
	mkdir -p "$(DIST)/buildroot-hashes/tally/$(VERSION)"; \
	out="$$(cd "$(DIST)" && pwd)/$(BUILDROOT_SRC_NAME).tar.gz"; \
	tar -C "$$tmp" --sort=name --mtime="@$$epoch" --owner=0 --group=0 --numeric-owner \
		-cf - "$(BUILDROOT_SRC_NAME)" | gzip -9n >"$$out"; \
	sum=$$(sha256sum "$$out" | cut -d' ' -f1); \
	echo "$$sum  $(BUILDROOT_SRC_NAME).tar.gz" >"$$out.sha256"; \
	{ echo "# Locally computed by make buildroot-src"; \
	  echo "sha256  $$sum  $(BUILDROOT_SRC_NAME).tar.gz"; } \
		>"$(DIST)/buildroot-hashes/tally/$(VERSION)/tally.hash"; \
	echo "wrote $$out"; \
	echo "      $$out.sha256"; \
	echo "      $(DIST)/buildroot-hashes/tally/$(VERSION)/tally.hash"

## buildroot-e2e: the Buildroot tree's tests (the init script run for real,
## the offline build of the source tarball, static checks)
buildroot-e2e:
	$(GO) test -count=1 -timeout 10m ./buildroot/...

e2e: buildroot-e2e
