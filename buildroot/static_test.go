package buildroot

import (
	"bufio"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildrootSymbols are the symbols of Buildroot itself that this tree uses,
// with where Buildroot defines them (checked in Buildroot's tree; see
// docs/buildroot.md for the release).
var buildrootSymbols = map[string]string{
	"BR2_aarch64":                                "arch/Config.in",
	"BR2_x86_64":                                 "arch/Config.in",
	"BR2_cortex_a53":                             "arch/Config.in.arm",
	"BR2_cortex_a72":                             "arch/Config.in.arm",
	"BR2_ARM_FPU_VFPV4":                          "arch/Config.in.arm",
	"BR2_TOOLCHAIN_BUILDROOT_CXX":                "package/gcc/Config.in.host",
	"BR2_STRIP_strip":                            "Config.in",
	"BR2_INIT_SYSTEMD":                           "system/Config.in",
	"BR2_TARGET_GENERIC_HOSTNAME":                "system/Config.in",
	"BR2_TARGET_GENERIC_ISSUE":                   "system/Config.in",
	"BR2_TARGET_GENERIC_PASSWD_SHA512":           "system/Config.in",
	"BR2_TARGET_ENABLE_ROOT_LOGIN":               "system/Config.in",
	"BR2_TARGET_GENERIC_ROOT_PASSWD":             "system/Config.in",
	"BR2_TARGET_GENERIC_GETTY":                   "system/Config.in",
	"BR2_TARGET_GENERIC_GETTY_PORT":              "system/Config.in",
	"BR2_SYSTEM_DHCP":                            "system/Config.in",
	"BR2_ROOTFS_DEVICE_CREATION_DYNAMIC_MDEV":    "system/Config.in",
	"BR2_ROOTFS_OVERLAY":                         "system/Config.in",
	"BR2_ROOTFS_POST_BUILD_SCRIPT":               "system/Config.in",
	"BR2_ROOTFS_POST_IMAGE_SCRIPT":               "system/Config.in",
	"BR2_ROOTFS_POST_SCRIPT_ARGS":                "system/Config.in",
	"BR2_TARGET_ROOTFS_EXT2":                     "fs/ext2/Config.in",
	"BR2_TARGET_ROOTFS_EXT2_4":                   "fs/ext2/Config.in",
	"BR2_TARGET_ROOTFS_EXT2_SIZE":                "fs/ext2/Config.in",
	"BR2_TARGET_ROOTFS_TAR":                      "fs/tar/Config.in",
	"BR2_PACKAGE_HOST_LINUX_HEADERS_CUSTOM_6_6":  "package/linux-headers/Config.in.host",
	"BR2_PACKAGE_HOST_LINUX_HEADERS_CUSTOM_6_12": "package/linux-headers/Config.in.host",
	"BR2_LINUX_KERNEL":                           "linux/Config.in",
	"BR2_LINUX_KERNEL_CUSTOM_VERSION":            "linux/Config.in",
	"BR2_LINUX_KERNEL_CUSTOM_VERSION_VALUE":      "linux/Config.in",
	"BR2_LINUX_KERNEL_CUSTOM_TARBALL":            "linux/Config.in",
	"BR2_LINUX_KERNEL_CUSTOM_TARBALL_LOCATION":   "linux/Config.in",
	"BR2_LINUX_KERNEL_USE_CUSTOM_CONFIG":         "linux/Config.in",
	"BR2_LINUX_KERNEL_CUSTOM_CONFIG_FILE":        "linux/Config.in",
	"BR2_LINUX_KERNEL_DEFCONFIG":                 "linux/Config.in",
	"BR2_LINUX_KERNEL_DTS_SUPPORT":               "linux/Config.in",
	"BR2_LINUX_KERNEL_INTREE_DTS_NAME":           "linux/Config.in",
	"BR2_LINUX_KERNEL_INSTALL_TARGET":            "linux/Config.in",
	"BR2_LINUX_KERNEL_NEEDS_HOST_OPENSSL":        "linux/Config.in",
	"BR2_PACKAGE_RPI_FIRMWARE":                   "package/rpi-firmware/Config.in",
	"BR2_PACKAGE_RPI_FIRMWARE_VARIANT_PI4":       "package/rpi-firmware/Config.in",
	"BR2_PACKAGE_RPI_FIRMWARE_CONFIG_FILE":       "package/rpi-firmware/Config.in",
	"BR2_PACKAGE_RPI_FIRMWARE_CMDLINE_FILE":      "package/rpi-firmware/Config.in",
	"BR2_PACKAGE_HOST_DOSFSTOOLS":                "package/dosfstools/Config.in.host",
	"BR2_PACKAGE_HOST_GENIMAGE":                  "package/genimage/Config.in.host",
	"BR2_PACKAGE_HOST_MTOOLS":                    "package/mtools/Config.in.host",
	"BR2_TARGET_GRUB2":                           "boot/grub2/Config.in",
	"BR2_TARGET_GRUB2_INSTALL_TOOLS":             "boot/grub2/Config.in",
	"BR2_PACKAGE_HOST_GO":                        "package/go/Config.in.host",
	"BR2_PACKAGE_HOST_GO_TARGET_ARCH_SUPPORTS":   "package/go/Config.in.host",
}

// buildrootFiles are the files of Buildroot's tree, relative to its top,
// that the defconfigs and scripts name.
var buildrootFiles = map[string]bool{
	"board/qemu/aarch64-virt/linux.config": true,
	"board/raspberrypi/post-build.sh":      true,
	"board/raspberrypi/post-image.sh":      true,
	"board/raspberrypi/config_4_64bit.txt": true,
	"board/raspberrypi/cmdline.txt":        true,
	"board/pc/post-build.sh":               true,
	"board/pc/genimage-bios.cfg":           true,
	"board/pc/linux.config":                true,
	"support/scripts/genimage.sh":          true,
}

var symbolRe = regexp.MustCompile(`\bBR2_[A-Za-z0-9_]+`)

// known reports whether s is defined by the tree or by Buildroot, which
// also provides the BR2_EXTERNAL variables.
func known(defined map[string]bool, s string) bool {
	return defined[s] || buildrootSymbols[s] != "" || s == "BR2_EXTERNAL" || s == "BR2_EXTERNAL_TALLY_PATH"
}

// definedSymbols returns the symbols the tree's Config.in files define.
func definedSymbols(t *testing.T) map[string]bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(treeDir, "package/*/Config.in"))
	files = append(files, filepath.Join(treeDir, "Config.in"))
	def := regexp.MustCompile(`(?m)^\s*(?:menu)?config\s+(BR2_\w+)`)
	defined := map[string]bool{}
	for _, f := range files {
		for _, m := range def.FindAllStringSubmatch(readFile(t, f), -1) {
			defined[m[1]] = true
		}
	}
	return defined
}

// TestExternalTree checks the files that make buildroot/ a BR2_EXTERNAL.
func TestExternalTree(t *testing.T) {
	if !strings.HasPrefix(readFile(t, filepath.Join(treeDir, "external.desc")), "name: TALLY\n") {
		t.Error("external.desc does not start with name: TALLY")
	}
	source := regexp.MustCompile(`(?m)^source "\$BR2_EXTERNAL_TALLY_PATH/(.+)"$`)
	for _, m := range source.FindAllStringSubmatch(readFile(t, filepath.Join(treeDir, "Config.in")), -1) {
		if _, err := os.Stat(filepath.Join(treeDir, m[1])); err != nil {
			t.Errorf("Config.in sources %s: %v", m[1], err)
		}
	}
	if !strings.Contains(readFile(t, filepath.Join(treeDir, "external.mk")), "$(BR2_EXTERNAL_TALLY_PATH)/package/*/*.mk") {
		t.Error("external.mk does not include the packages' .mk files")
	}
}

// TestPackageSymbols checks that tally.mk uses only symbols that exist and
// that every option of the package is used.
func TestPackageSymbols(t *testing.T) {
	defined := definedSymbols(t)
	mk := readFile(t, filepath.Join(treeDir, "package/tally/tally.mk"))
	used := map[string]bool{}
	for _, s := range symbolRe.FindAllString(mk, -1) {
		used[s] = true
		if !known(defined, s) {
			t.Errorf("tally.mk uses %s, which no Config.in defines", s)
		}
	}
	for s := range defined {
		if !used[s] && s != "BR2_PACKAGE_TALLY_SOURCE_TREE" {
			// SOURCE_TREE is the other branch of the source choice.
			t.Errorf("option %s is not used by tally.mk", s)
		}
	}
	if !used["BR2_PACKAGE_TALLY_SOURCE_TREE"] {
		t.Error("tally.mk does not look at BR2_PACKAGE_TALLY_SOURCE_TREE")
	}
	// What Config.in depends on or selects exists too.
	cfg := readFile(t, filepath.Join(treeDir, "package/tally/Config.in"))
	for _, s := range symbolRe.FindAllString(cfg, -1) {
		if !known(defined, s) {
			t.Errorf("Config.in names %s, which is neither the package's nor a known Buildroot symbol", s)
		}
	}
	if !regexp.MustCompile(`(?m)^\tdepends on BR2_PACKAGE_HOST_GO_TARGET_ARCH_SUPPORTS$`).MatchString(cfg) {
		t.Error("BR2_PACKAGE_TALLY must depend on BR2_PACKAGE_HOST_GO_TARGET_ARCH_SUPPORTS")
	}
}

// TestDefconfigs checks that every defconfig names only known symbols and
// files, and configures what an appliance needs.
func TestDefconfigs(t *testing.T) {
	defined := definedSymbols(t)
	defconfigs, _ := filepath.Glob(filepath.Join(treeDir, "configs/*_defconfig"))
	want := []string{"tally_qemu_aarch64_virt_defconfig", "tally_raspberrypi4_64_defconfig", "tally_x86_64_defconfig"}
	var names []string
	for _, d := range defconfigs {
		names = append(names, filepath.Base(d))
	}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("defconfigs %v, want %v", names, want)
	}
	notSet := regexp.MustCompile(`^# (BR2_\w+) is not set$`)
	setting := regexp.MustCompile(`^(BR2_\w+)=(.*)$`)
	for _, d := range defconfigs {
		t.Run(filepath.Base(d), func(t *testing.T) {
			values := map[string]string{}
			sc := bufio.NewScanner(strings.NewReader(readFile(t, d)))
			for n := 1; sc.Scan(); n++ {
				line := sc.Text()
				var sym, value string
				if m := notSet.FindStringSubmatch(line); m != nil {
					sym = m[1]
				} else if m := setting.FindStringSubmatch(line); m != nil {
					sym, value = m[1], m[2]
				} else if line == "" || strings.HasPrefix(line, "#") {
					continue
				} else {
					t.Errorf("line %d: %q is neither a setting nor a comment", n, line)
					continue
				}
				if !known(defined, sym) {
					t.Errorf("line %d: %s is neither the tree's nor a known Buildroot symbol", n, sym)
				}
				if _, dup := values[sym]; dup {
					t.Errorf("line %d: %s set twice", n, sym)
				}
				values[sym] = value
				if strings.HasPrefix(value, `"`) != strings.HasSuffix(value, `"`) {
					t.Errorf("line %d: unbalanced quotes", n)
				}
				checkPaths(t, n, strings.Trim(value, `"`))
			}
			for sym, v := range map[string]string{
				"BR2_PACKAGE_TALLY":            "y",
				"BR2_SYSTEM_DHCP":              `"eth0"`,
				"BR2_TARGET_GENERIC_GETTY":     "y",
				"BR2_TARGET_ENABLE_ROOT_LOGIN": "y",
				"BR2_ROOTFS_OVERLAY":           `"$(BR2_EXTERNAL_TALLY_PATH)/board/tally/rootfs-overlay"`,
				"BR2_TARGET_ROOTFS_EXT2_4":     "y",
			} {
				if values[sym] != v {
					t.Errorf("%s=%s, want %s", sym, values[sym], v)
				}
			}
			// The root password comes from the build, never the defconfig.
			if v := values["BR2_TARGET_GENERIC_ROOT_PASSWD"]; v != `"$(TALLY_ROOT_PASSWORD)"` {
				t.Errorf("BR2_TARGET_GENERIC_ROOT_PASSWD=%s", v)
			}
			for _, s := range []string{"BR2_ROOTFS_POST_BUILD_SCRIPT", "BR2_ROOTFS_POST_IMAGE_SCRIPT"} {
				script := map[string]string{"BR2_ROOTFS_POST_BUILD_SCRIPT": "post-build.sh", "BR2_ROOTFS_POST_IMAGE_SCRIPT": "post-image.sh"}[s]
				if !strings.Contains(values[s], "$(BR2_EXTERNAL_TALLY_PATH)/board/tally/"+script) {
					t.Errorf("%s=%s does not run board/tally/%s", s, values[s], script)
				}
			}
			if (values["BR2_PACKAGE_HOST_LINUX_HEADERS_CUSTOM_6_12"] == "y") == (values["BR2_PACKAGE_HOST_LINUX_HEADERS_CUSTOM_6_6"] == "y") {
				t.Error("want exactly one kernel headers series")
			}
		})
	}
}

// checkPaths checks every path a defconfig value names: in this tree (after
// $(BR2_EXTERNAL_TALLY_PATH)) it must exist; in Buildroot's it must be one
// of buildrootFiles.
func checkPaths(t *testing.T, line int, value string) {
	t.Helper()
	for _, word := range strings.Fields(value) {
		switch {
		case strings.HasPrefix(word, "$(BR2_EXTERNAL_TALLY_PATH)/"):
			p := filepath.Join(treeDir, strings.TrimPrefix(word, "$(BR2_EXTERNAL_TALLY_PATH)/"))
			if _, err := os.Stat(p); err != nil {
				t.Errorf("line %d: %v", line, err)
			}
		case strings.HasPrefix(word, "board/") || strings.HasPrefix(word, "support/"):
			if !buildrootFiles[word] {
				t.Errorf("line %d: %s is not a Buildroot file this test knows", line, word)
			}
		}
	}
}

// TestScriptsBuildrootFiles checks the Buildroot files the board scripts
// name against the same list.
func TestScriptsBuildrootFiles(t *testing.T) {
	re := regexp.MustCompile(`\b(?:board|support)/[\w./-]+\.(?:sh|cfg|txt|config)\b`)
	for _, f := range []string{"board/tally/post-build.sh", "board/tally/post-image.sh"} {
		for _, p := range re.FindAllString(readFile(t, filepath.Join(treeDir, f)), -1) {
			if !buildrootFiles[p] && !strings.HasPrefix(p, "board/tally/") {
				t.Errorf("%s names %s, not a Buildroot file this test knows", f, p)
			}
		}
	}
}

var scripts = []string{
	"package/tally/S90tally",
	"package/tally/tally-config.sh",
	"board/tally/post-build.sh",
	"board/tally/post-image.sh",
}

// TestShellScripts checks the scripts' syntax with every sh at hand, and
// with shellcheck when it is installed.
func TestShellScripts(t *testing.T) {
	shells := [][]string{{"sh", "-n"}}
	if bb, err := exec.LookPath("busybox"); err == nil {
		shells = append(shells, []string{bb, "sh", "-n"})
	}
	for _, s := range scripts {
		path := filepath.Join(treeDir, s)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s is not executable", s)
		}
		if !strings.HasPrefix(readFile(t, path), "#!/bin/sh\n") {
			t.Errorf("%s does not start with #!/bin/sh", s)
		}
		for _, sh := range shells {
			if out, err := exec.Command(sh[0], append(sh[1:], path)...).CombinedOutput(); err != nil {
				t.Errorf("%s %s: %v\n%s", strings.Join(sh, " "), s, err, out)
			}
		}
	}
	shellcheck, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Log("shellcheck is not installed: skipped")
		return
	}
	var paths []string
	for _, s := range scripts {
		paths = append(paths, filepath.Join(treeDir, s))
	}
	if out, err := exec.Command(shellcheck, append([]string{"-s", "sh"}, paths...)...).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

// TestSystemdUnit checks the unit's promises; systemd-analyze verifies it
// when it is installed.
func TestSystemdUnit(t *testing.T) {
	unit := readFile(t, filepath.Join(treeDir, "package/tally/tally.service"))
	for _, want := range []string{
		"\nExecStart=/usr/bin/tallyd --config /etc/tally/tallyd.json $TALLYD_ARGS\n",
		"\nEnvironmentFile=-/etc/default/tally\n",
		"\nUser=tally\n", "\nRestart=always\n", "\nStateDirectory=tally\n",
		"\nReadWritePaths=-/var/lib/tally-exchange\n",
		"\nKillSignal=SIGTERM\n", "\nTimeoutStopSec=30s\n",
		"\nNoNewPrivileges=yes\n", "\nProtectSystem=strict\n",
		"\nWantedBy=multi-user.target\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("tally.service lacks %q", strings.TrimSpace(want))
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		return
	}
	out, _ := exec.Command(analyze, "verify", "--man=no", filepath.Join(treeDir, "package/tally/tally.service")).CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// The binary is on the target, not here.
		if line != "" && !strings.Contains(line, "/usr/bin/tallyd") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
}

// TestOverlayIsPackageDefault keeps the overlay's settings equal to what
// the package writes for its default options.
func TestOverlayIsPackageDefault(t *testing.T) {
	overlay := filepath.Join(treeDir, "board/tally/rootfs-overlay")
	if got, want := readFile(t, filepath.Join(overlay, "etc/tally/tallyd.json")),
		tallyConfig(t, "json", "/var/lib/tally", "8443", "/var/lib/tally-exchange", "https://backoffice.example.com"); got != want {
		t.Errorf("overlay tallyd.json:\n%s\nthe package's default:\n%s", got, want)
	}
	if got, want := readFile(t, filepath.Join(overlay, "etc/default/tally")), tallyConfig(t, "defaults", "/var/lib/tally"); got != want {
		t.Errorf("overlay etc/default/tally:\n%s\nthe package's default:\n%s", got, want)
	}
	motd := readFile(t, filepath.Join(overlay, "etc/motd"))
	for _, want := range []string{"https://<this address>:8443/", "/var/lib/tally/initial-admin-password", "S90tally"} {
		if !strings.Contains(motd, want) {
			t.Errorf("motd lacks %q", want)
		}
	}
}

// configKeys returns the JSON keys of a struct type in cmd/tallyd.
func configKeys(t *testing.T, typeName string) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, filepath.Join(repoDir, "cmd/tallyd"), func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	tag := regexp.MustCompile(`json:"([^",]+)`)
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				ts, ok := n.(*ast.TypeSpec)
				if !ok || ts.Name.Name != typeName {
					return true
				}
				for _, field := range ts.Type.(*ast.StructType).Fields.List {
					if field.Tag == nil {
						continue
					}
					v, _ := strconv.Unquote(field.Tag.Value)
					if m := tag.FindStringSubmatch(v); m != nil {
						keys[m[1]] = true
					}
				}
				return false
			})
		}
	}
	if len(keys) == 0 {
		t.Fatalf("no JSON keys found for %s in cmd/tallyd", typeName)
	}
	return keys
}

// TestDefaultConfigKeys checks the overlay's tallyd.json against the keys
// of tallyd's config and connector types.
func TestDefaultConfigKeys(t *testing.T) {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(treeDir, "board/tally/rootfs-overlay/etc/tally/tallyd.json"))), &cfg); err != nil {
		t.Fatal(err)
	}
	keys, connectorKeys := configKeys(t, "config"), configKeys(t, "connectorConfig")
	for k := range cfg {
		if !keys[k] {
			t.Errorf("tallyd.json has %q, which tallyd's config does not", k)
		}
	}
	var connectors map[string]map[string]json.RawMessage
	if err := json.Unmarshal(cfg["connectors"], &connectors); err != nil {
		t.Fatal(err)
	}
	var names []string
	for name, c := range connectors {
		names = append(names, name)
		for k := range c {
			if !connectorKeys[k] {
				t.Errorf("connector %s has %q, which tallyd's connector config does not", name, k)
			}
		}
	}
	sort.Strings(names)
	if !reflect.DeepEqual(names, []string{"dir", "http"}) {
		t.Errorf("connectors %v, want dir and http", names)
	}
}

// TestTallydAcceptsDefaultConfigs starts tallyd with the overlay's config
// and with the package's for other options (tallyd refuses a config with a
// key it does not know), with the data directory and ports moved by flags.
func TestTallydAcceptsDefaultConfigs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tallyd")
	}
	bin := tallyd(t)
	configs := map[string]string{
		"overlay":        readFile(t, filepath.Join(treeDir, "board/tally/rootfs-overlay/etc/tally/tallyd.json")),
		"no connectors":  tallyConfig(t, "json", "/var/lib/tally", "443", "", ""),
		"dir connector":  tallyConfig(t, "json", "/data", "9443", "/data/exchange", ""),
		"http connector": tallyConfig(t, "json", "/data", "9443", "", "https://bo.example.com:9443/tally"),
	}
	for name, config := range configs {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "tallyd.json")
			writeFile(t, file, config, 0o644)
			port := freePort(t)
			cmd := exec.Command(bin, "--config", file, "--data-dir", filepath.Join(dir, "data"),
				"--https-port", strconv.Itoa(port), "--discovery-port", "0", "--raft-port", strconv.Itoa(freePort(t)), "--bind", "127.0.0.1")
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer func() {
				cmd.Process.Signal(syscall.SIGTERM)
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("tallyd after SIGTERM: %v\n%s", err, out.String())
					}
				case <-time.After(30 * time.Second):
					cmd.Process.Kill()
					t.Errorf("tallyd did not stop on SIGTERM\n%s", out.String())
				}
			}()
			deadline := time.Now().Add(time.Minute)
			for {
				if _, err := health(port); err == nil {
					return
				}
				select {
				case err := <-done:
					done <- err
					t.Fatalf("tallyd refused the config: %v\n%s", err, out.String())
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("tallyd not healthy within a minute\n%s", out.String())
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}

	// The check has teeth: tallyd refuses a key it does not know.
	file := filepath.Join(t.TempDir(), "tallyd.json")
	writeFile(t, file, `{"dataDir": "/tmp/x", "httpPort": 8443}`, 0o644)
	out, err := exec.Command(bin, "--config", file).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "httpPort") {
		t.Errorf("tallyd with an unknown key: %v, %s", err, out)
	}
}
