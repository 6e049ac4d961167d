################################################################################
#
# tally
#
################################################################################

# The sources are either the working tree this BR2_EXTERNAL lives in (local
# site method, for developers) or a tarball written by "make buildroot-src"
# in that tree, with the Go modules vendored (offline and CI builds). See
# docs/buildroot.md.
ifeq ($(BR2_PACKAGE_TALLY_SOURCE_TARBALL),y)
TALLY_TARBALL = $(call qstrip,$(BR2_PACKAGE_TALLY_TARBALL))
TALLY_SOURCE = $(notdir $(TALLY_TARBALL))
TALLY_VERSION = $(patsubst tally-src-%.tar.gz,%,$(TALLY_SOURCE))
TALLY_SITE = $(patsubst %/,%,$(dir $(TALLY_TARBALL)))
TALLY_SITE_METHOD = file
else ifeq ($(BR2_PACKAGE_TALLY),y)
TALLY_VERSION := $(shell git -C $(BR2_EXTERNAL_TALLY_PATH)/.. describe --tags --always --dirty 2>/dev/null || echo dev)
TALLY_SITE = $(BR2_EXTERNAL_TALLY_PATH)/..
TALLY_SITE_METHOD = local
endif

# A local package's version becomes "custom" inside the package
# infrastructure: tallyd is stamped with the real one, kept here.
TALLY_BUILD_VERSION := $(TALLY_VERSION)

# The sources carry no license file of their own.
TALLY_LICENSE = Proprietary
TALLY_REDISTRIBUTE = NO

TALLY_GOMOD = github.com/tallyhq/tally

# One static binary per role; tallyd always.
TALLY_BUILD_TARGETS = cmd/tallyd
ifeq ($(BR2_PACKAGE_TALLY_TALLYCTL),y)
TALLY_BUILD_TARGETS += cmd/tallyctl
endif
ifeq ($(BR2_PACKAGE_TALLY_AGENT),y)
TALLY_BUILD_TARGETS += cmd/tally-agent
endif
ifeq ($(BR2_PACKAGE_TALLY_BACKOFFICE),y)
TALLY_BUILD_TARGETS += cmd/tally-backoffice
endif
TALLY_BINS = $(notdir $(TALLY_BUILD_TARGETS))

# No cgo: the binaries are static whatever the C library. GOTOOLCHAIN=local
# turns a host-go older than go.mod's "go" line into a clear error instead
# of an attempt to download a newer toolchain.
TALLY_GO_ENV = CGO_ENABLED=0 GOTOOLCHAIN=local
TALLY_LDFLAGS = -X main.buildVersion=$(TALLY_BUILD_VERSION)
ifeq ($(BR2_STRIP_strip),y)
TALLY_LDFLAGS += -s -w
endif
# No build tags: the built-in connectors and the web UI are always in tallyd.
TALLY_TAGS =

# The package infrastructure vendors the Go modules in its download step,
# which a local package does not have. So a tree build vendors them into
# the build directory (never into the working tree) before building, from
# TALLY_GOPROXY or, with TALLY_GOPROXY=off, from the module cache
# TALLY_GOMODCACHE.
ifeq ($(BR2_PACKAGE_TALLY_SOURCE_TREE),y)
TALLY_GOPROXY ?= https://proxy.golang.org,direct
TALLY_GOMODCACHE ?=
TALLY_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude /bin --exclude /dist --exclude /data --exclude /bench \
	--exclude /vendor --exclude /output

define TALLY_VENDOR_MODULES
	rm -rf $(@D)/vendor
	cd $(@D) && $(HOST_GO_COMMON_ENV) $(TALLY_GO_ENV) \
		GOFLAGS=-modcacherw GOPROXY=$(TALLY_GOPROXY) \
		$(if $(TALLY_GOMODCACHE),GOMODCACHE=$(TALLY_GOMODCACHE)) \
		$(GO_BIN) mod vendor
endef
TALLY_PRE_BUILD_HOOKS += TALLY_VENDOR_MODULES
endif

# The default configuration, from the options.
TALLY_DATA_DIR = $(call qstrip,$(BR2_PACKAGE_TALLY_DATA_DIR))
TALLY_HTTPS_PORT = $(BR2_PACKAGE_TALLY_HTTPS_PORT)
TALLY_EXCHANGE_DIR = $(if $(BR2_PACKAGE_TALLY_CONNECTOR_DIR),$(call qstrip,$(BR2_PACKAGE_TALLY_CONNECTOR_DIR_PATH)))
TALLY_BACKOFFICE_URL = $(if $(BR2_PACKAGE_TALLY_CONNECTOR_HTTP),$(call qstrip,$(BR2_PACKAGE_TALLY_CONNECTOR_HTTP_URL)))
TALLY_CONFIG_ARGS = '$(TALLY_DATA_DIR)' '$(TALLY_HTTPS_PORT)' '$(TALLY_EXCHANGE_DIR)' '$(TALLY_BACKOFFICE_URL)'

ifeq ($(BR_BUILDING)$(BR2_PACKAGE_TALLY),yy)
ifeq ($(BR2_PACKAGE_TALLY_SOURCE_TARBALL),y)
ifeq ($(filter tally-src-%.tar.gz,$(TALLY_SOURCE)),)
$(error BR2_PACKAGE_TALLY_TARBALL is "$(TALLY_TARBALL)": name the dist/tally-src-VERSION.tar.gz that "make buildroot-src" wrote)
endif
endif
ifeq ($(BR2_INIT_SYSTEMD),y)
ifeq ($(filter /var/lib/%,$(TALLY_DATA_DIR)),)
$(error BR2_PACKAGE_TALLY_DATA_DIR "$(TALLY_DATA_DIR)": with systemd it must be below /var/lib (StateDirectory=))
endif
endif
endif

# The user tally owns the data directory (its home) and the exchange
# directory. Its id is chosen by Buildroot and may change between builds:
# S90tally and systemd's StateDirectory= hand the data directory to the
# current id at every start.
define TALLY_USERS
	tally -1 tally -1 * $(TALLY_DATA_DIR) - - Tally license server
endef

define TALLY_PERMISSIONS
	$(TALLY_DATA_DIR) d 700 tally tally - - - - -
	$(if $(TALLY_EXCHANGE_DIR),$(TALLY_EXCHANGE_DIR) d 750 tally tally - - - - -)
endef

# The binaries, and the default settings twice: in /etc, and as the factory
# defaults in /usr/share/tally (board/tally/post-build.sh puts those back
# into /etc if the board overlay's generic copies replaced them).
define TALLY_INSTALL_TARGET_CMDS
	$(foreach b,$(TALLY_BINS),\
		$(INSTALL) -D -m 0755 $(@D)/bin/$(b) $(TARGET_DIR)/usr/bin/$(b)$(sep))
	$(INSTALL) -d -m 0755 $(TARGET_DIR)/etc/tally $(TARGET_DIR)/etc/default \
		$(TARGET_DIR)/usr/share/tally
	sh $(TALLY_PKGDIR)/tally-config.sh json $(TALLY_CONFIG_ARGS) \
		> $(TARGET_DIR)/usr/share/tally/tallyd.json
	sh $(TALLY_PKGDIR)/tally-config.sh defaults '$(TALLY_DATA_DIR)' \
		> $(TARGET_DIR)/usr/share/tally/default
	$(INSTALL) -m 0644 $(TARGET_DIR)/usr/share/tally/tallyd.json \
		$(TARGET_DIR)/etc/tally/tallyd.json
	$(INSTALL) -m 0644 $(TARGET_DIR)/usr/share/tally/default \
		$(TARGET_DIR)/etc/default/tally
	echo '$(TALLY_BUILD_VERSION)' > $(TARGET_DIR)/usr/share/tally/version
	$(INSTALL) -d -m 0700 $(TARGET_DIR)$(TALLY_DATA_DIR)
endef

define TALLY_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(TALLY_PKGDIR)/S90tally \
		$(TARGET_DIR)/etc/init.d/S90tally
endef

define TALLY_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(TALLY_PKGDIR)/tally.service \
		$(TARGET_DIR)/usr/lib/systemd/system/tally.service
	$(SED) 's|^StateDirectory=tally$$|StateDirectory=$(patsubst /var/lib/%,%,$(TALLY_DATA_DIR))|' \
		$(if $(TALLY_EXCHANGE_DIR),\
			-e 's|^ReadWritePaths=-/var/lib/tally-exchange$$|ReadWritePaths=-$(TALLY_EXCHANGE_DIR)|',\
			-e '/^ReadWritePaths=-\/var\/lib\/tally-exchange$$/d') \
		$(TARGET_DIR)/usr/lib/systemd/system/tally.service
endef

$(eval $(golang-package))
