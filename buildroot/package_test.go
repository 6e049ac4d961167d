package buildroot

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The package's make logic runs in GNU make with the few Buildroot helpers
// it uses stubbed as Buildroot defines them (qstrip and sep from
// support/misc/utils.mk, INSTALL and SED from package/Makefile.in), and
// golang-package empty: what is checked is what tally.mk itself computes
// and its install commands, run into a temporary target directory.
const harness = `
BR2_EXTERNAL_TALLY_PATH := {{TREE}}
include {{CONFIG}}
qstrip = $(strip $(subst ",,$(1)))
define sep


endef
INSTALL := install
SED := sed -i -e
TARGET_DIR := {{TARGET}}
TALLY_PKGDIR := $(BR2_EXTERNAL_TALLY_PATH)/package/tally/
golang-package :=
include $(TALLY_PKGDIR)tally.mk

print-%:
	$(info $($*))@:

{{BUILD}}/.stamp_target_installed:
	$(TALLY_INSTALL_TARGET_CMDS)
	$(TALLY_INSTALL_INIT_SYSV)
	$(TALLY_INSTALL_INIT_SYSTEMD)
`

type makePackage struct {
	t              *testing.T
	dir            string
	target, build  string
	makefile, conf string
}

// newMakePackage writes the harness for the options in config (the lines
// of a Buildroot .config).
func newMakePackage(t *testing.T, config string) *makePackage {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	dir := t.TempDir()
	m := &makePackage{t: t, dir: dir, target: filepath.Join(dir, "target"), build: filepath.Join(dir, "build/tally-custom")}
	m.conf = filepath.Join(dir, "dot-config")
	writeFile(t, m.conf, config, 0o644)
	mk := strings.NewReplacer("{{TREE}}", treeDir, "{{CONFIG}}", m.conf, "{{TARGET}}", m.target, "{{BUILD}}", m.build).Replace(harness)
	m.makefile = filepath.Join(dir, "Makefile")
	writeFile(t, m.makefile, mk, 0o644)
	return m
}

func (m *makePackage) make(vars []string, goals ...string) (string, int) {
	m.t.Helper()
	args := append([]string{"-s", "-f", m.makefile}, vars...)
	return run(m.t, m.dir, os.Environ(), time.Minute, "make", append(args, goals...)...)
}

func (m *makePackage) value(name string) string {
	m.t.Helper()
	out, code := m.make(nil, "print-"+name)
	if code != 0 {
		m.t.Fatalf("make print-%s: exit %d\n%s", name, code, out)
	}
	return strings.TrimSpace(out)
}

// install runs the install commands with fake binaries for the build
// targets.
func (m *makePackage) install() {
	m.t.Helper()
	for _, b := range strings.Fields(m.value("TALLY_BINS")) {
		writeFile(m.t, filepath.Join(m.build, "bin", b), "#!/bin/sh\necho "+b+"\n", 0o755)
	}
	if out, code := m.make(nil, filepath.Join(m.build, ".stamp_target_installed")); code != 0 {
		m.t.Fatalf("install: exit %d\n%s", code, out)
	}
}

const defaultOptions = `BR2_PACKAGE_TALLY=y
BR2_PACKAGE_TALLY_SOURCE_TREE=y
BR2_PACKAGE_TALLY_TALLYCTL=y
BR2_PACKAGE_TALLY_DATA_DIR="/var/lib/tally"
BR2_PACKAGE_TALLY_HTTPS_PORT=8443
BR2_PACKAGE_TALLY_CONNECTOR_DIR=y
BR2_PACKAGE_TALLY_CONNECTOR_DIR_PATH="/var/lib/tally-exchange"
BR2_PACKAGE_TALLY_CONNECTOR_HTTP=y
BR2_PACKAGE_TALLY_CONNECTOR_HTTP_URL="https://backoffice.example.com"
BR2_STRIP_strip=y
BR2_INIT_BUSYBOX=y
`

// TestPackageDefaults checks tally.mk with the options' defaults: the local
// tree, tallyd and tallyctl, and a default config equal to the overlay's.
func TestPackageDefaults(t *testing.T) {
	m := newMakePackage(t, defaultOptions)

	want := map[string]string{
		"TALLY_SITE":          treeDir + "/..",
		"TALLY_SITE_METHOD":   "local",
		"TALLY_GOMOD":         "github.com/tallyhq/tally",
		"TALLY_BUILD_TARGETS": "cmd/tallyd cmd/tallyctl",
		"TALLY_GO_ENV":        "CGO_ENABLED=0 GOTOOLCHAIN=local",
		"TALLY_LICENSE":       "Proprietary",
	}
	for name, w := range want {
		if got := m.value(name); got != w {
			t.Errorf("%s = %q, want %q", name, got, w)
		}
	}
	version := m.value("TALLY_BUILD_VERSION")
	if version == "" {
		t.Error("TALLY_BUILD_VERSION is empty")
	}
	if got, w := m.value("TALLY_LDFLAGS"), "-X main.buildVersion="+version+" -s -w"; got != w {
		t.Errorf("TALLY_LDFLAGS = %q, want %q", got, w)
	}
	if got := m.value("TALLY_PRE_BUILD_HOOKS"); got != "TALLY_VENDOR_MODULES" {
		t.Errorf("a tree build must vendor the modules first; TALLY_PRE_BUILD_HOOKS = %q", got)
	}
	vendor := m.value("TALLY_VENDOR_MODULES")
	for _, w := range []string{"rm -rf", "/vendor", "GOPROXY=https://proxy.golang.org,direct", "mod vendor"} {
		if !strings.Contains(vendor, w) {
			t.Errorf("TALLY_VENDOR_MODULES lacks %q: %s", w, vendor)
		}
	}
	for _, w := range []string{"--exclude /dist", "--exclude /vendor", "--exclude /bin"} {
		if !strings.Contains(m.value("TALLY_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS"), w) {
			t.Errorf("rsync exclusions lack %q", w)
		}
	}

	// makeusers: username uid group gid password home shell groups comment
	users := strings.Fields(m.value("TALLY_USERS"))
	if len(users) < 9 || users[0] != "tally" || users[2] != "tally" || users[4] != "*" || users[5] != "/var/lib/tally" {
		t.Errorf("TALLY_USERS = %q", m.value("TALLY_USERS"))
	}
	// makedevs: name type mode uid gid major minor start inc count
	perms := strings.Split(strings.TrimSpace(m.value("TALLY_PERMISSIONS")), "\n")
	if len(perms) != 2 || strings.Join(strings.Fields(perms[0]), " ") != "/var/lib/tally d 700 tally tally - - - - -" ||
		strings.Join(strings.Fields(perms[1]), " ") != "/var/lib/tally-exchange d 750 tally tally - - - - -" {
		t.Errorf("TALLY_PERMISSIONS = %q", perms)
	}

	m.install()
	for _, b := range []string{"tallyd", "tallyctl"} {
		if fi, err := os.Stat(filepath.Join(m.target, "usr/bin", b)); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("/usr/bin/%s: %v %v", b, fi, err)
		}
	}
	if _, err := os.Stat(filepath.Join(m.target, "usr/bin/tally-agent")); err == nil {
		t.Error("tally-agent installed though not chosen")
	}
	overlay := filepath.Join(treeDir, "board/tally/rootfs-overlay")
	for _, f := range []string{"etc/tally/tallyd.json", "etc/default/tally"} {
		if got, w := readFile(t, filepath.Join(m.target, f)), readFile(t, filepath.Join(overlay, f)); got != w {
			t.Errorf("/%s from the default options differs from the overlay's:\n%s\nwant\n%s", f, got, w)
		}
	}
	if got := strings.TrimSpace(readFile(t, filepath.Join(m.target, "usr/share/tally/version"))); got != version {
		t.Errorf("/usr/share/tally/version = %q, want %q", got, version)
	}
	if fi, err := os.Stat(filepath.Join(m.target, "var/lib/tally")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("/var/lib/tally: %v %v", fi, err)
	}
	if got, w := readFile(t, filepath.Join(m.target, "etc/init.d/S90tally")), readFile(t, filepath.Join(treeDir, "package/tally/S90tally")); got != w {
		t.Error("/etc/init.d/S90tally differs from package/tally/S90tally")
	}
	if got, w := readFile(t, filepath.Join(m.target, "usr/lib/systemd/system/tally.service")), readFile(t, filepath.Join(treeDir, "package/tally/tally.service")); got != w {
		t.Errorf("with the default paths the unit must be installed unchanged; got\n%s", got)
	}
}

// TestPackageOptions checks the other choices: every binary, the tarball
// of make buildroot-src, no connectors, another port and data directory.
func TestPackageOptions(t *testing.T) {
	m := newMakePackage(t, `BR2_PACKAGE_TALLY=y
BR2_PACKAGE_TALLY_SOURCE_TARBALL=y
BR2_PACKAGE_TALLY_TARBALL="$(BR2_EXTERNAL_TALLY_PATH)/../dist/tally-src-1.2.3.tar.gz"
BR2_PACKAGE_TALLY_TALLYCTL=y
BR2_PACKAGE_TALLY_AGENT=y
BR2_PACKAGE_TALLY_BACKOFFICE=y
BR2_PACKAGE_TALLY_DATA_DIR="/var/lib/tally-data"
BR2_PACKAGE_TALLY_HTTPS_PORT=9443
BR2_INIT_SYSTEMD=y
`)
	want := map[string]string{
		"TALLY_VERSION":         "1.2.3",
		"TALLY_SOURCE":          "tally-src-1.2.3.tar.gz",
		"TALLY_SITE":            treeDir + "/../dist",
		"TALLY_SITE_METHOD":     "file",
		"TALLY_BUILD_TARGETS":   "cmd/tallyd cmd/tallyctl cmd/tally-agent cmd/tally-backoffice",
		"TALLY_LDFLAGS":         "-X main.buildVersion=1.2.3",
		"TALLY_PRE_BUILD_HOOKS": "",
	}
	for name, w := range want {
		if got := m.value(name); got != w {
			t.Errorf("%s = %q, want %q", name, got, w)
		}
	}
	if perms := strings.TrimSpace(m.value("TALLY_PERMISSIONS")); strings.Contains(perms, "\n") {
		t.Errorf("no exchange directory without the dir connector: %q", perms)
	}

	m.install()
	for _, b := range []string{"tallyd", "tallyctl", "tally-agent", "tally-backoffice"} {
		if _, err := os.Stat(filepath.Join(m.target, "usr/bin", b)); err != nil {
			t.Error(err)
		}
	}
	config := readFile(t, filepath.Join(m.target, "etc/tally/tallyd.json"))
	if !strings.Contains(config, `"httpsPort": 9443,`) || !strings.Contains(config, `"dataDir": "/var/lib/tally-data"`) || strings.Contains(config, "connectors") {
		t.Errorf("tallyd.json:\n%s", config)
	}
	if !strings.Contains(readFile(t, filepath.Join(m.target, "etc/default/tally")), `TALLY_DATA_DIR="/var/lib/tally-data"`) {
		t.Error("/etc/default/tally does not name the data directory")
	}
	unit := readFile(t, filepath.Join(m.target, "usr/lib/systemd/system/tally.service"))
	if !strings.Contains(unit, "\nStateDirectory=tally-data\n") || strings.Contains(unit, "ReadWritePaths") {
		t.Errorf("unit for /var/lib/tally-data without an exchange directory:\n%s", unit)
	}
}

// TestPackageRefusals checks the options tally.mk refuses when building.
func TestPackageRefusals(t *testing.T) {
	for _, c := range []struct{ name, config, want string }{
		{"tarball name", "BR2_PACKAGE_TALLY=y\nBR2_PACKAGE_TALLY_SOURCE_TARBALL=y\nBR2_PACKAGE_TALLY_TARBALL=\"/tmp/tally.tgz\"\n", "BR2_PACKAGE_TALLY_TARBALL"},
		{"no tarball", "BR2_PACKAGE_TALLY=y\nBR2_PACKAGE_TALLY_SOURCE_TARBALL=y\n", "BR2_PACKAGE_TALLY_TARBALL"},
		{"systemd data dir", "BR2_PACKAGE_TALLY=y\nBR2_PACKAGE_TALLY_SOURCE_TREE=y\nBR2_INIT_SYSTEMD=y\nBR2_PACKAGE_TALLY_DATA_DIR=\"/srv/tally\"\n", "below /var/lib"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newMakePackage(t, c.config)
			out, code := m.make([]string{"BR_BUILDING=y"}, "print-TALLY_VERSION")
			if code == 0 || !strings.Contains(out, c.want) {
				t.Errorf("exit %d, %q; want an error naming %q", code, out, c.want)
			}
			// menuconfig must still work to fix it.
			if out, code := m.make(nil, "print-TALLY_VERSION"); code != 0 {
				t.Errorf("without BR_BUILDING: exit %d, %q", code, out)
			}
		})
	}
}
