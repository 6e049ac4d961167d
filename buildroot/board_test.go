package buildroot

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeTarget is what the target directory looks like when Buildroot runs
// the post-build scripts: the package installed with some options, then
// the board overlay copied over it.
func fakeTarget(t *testing.T, options string) (target string) {
	t.Helper()
	m := newMakePackage(t, options)
	m.install()
	overlay := filepath.Join(treeDir, "board/tally/rootfs-overlay")
	if out, err := exec.Command("cp", "-a", overlay+"/.", m.target).CombinedOutput(); err != nil {
		t.Fatalf("copy the overlay: %v\n%s", err, out)
	}
	return m.target
}

func boardEnv(target, config string) []string {
	return append(os.Environ(), "TARGET_DIR="+target, "BR2_CONFIG="+config)
}

// TestPostBuild runs board/tally/post-build.sh on a target built with a
// non-default port and data directory.
func TestPostBuild(t *testing.T) {
	options := strings.NewReplacer(`HTTPS_PORT=8443`, `HTTPS_PORT=9443`, `DATA_DIR="/var/lib/tally"`, `DATA_DIR="/var/lib/tally-data"`).Replace(defaultOptions)
	target := fakeTarget(t, options)
	config := filepath.Join(t.TempDir(), ".config")
	writeFile(t, config, "#\n# Automatically generated file; DO NOT EDIT.\n# Buildroot 2026.05 Configuration\n#\nBR2_aarch64=y\nBR2_DEFCONFIG=\"/src/tally/buildroot/configs/tally_qemu_aarch64_virt_defconfig\"\n", 0o644)
	writeFile(t, filepath.Join(target, "etc/shadow"), "root:$6$salt$hash:19000:0:99999:7:::\n", 0o600)
	script := filepath.Join(treeDir, "board/tally/post-build.sh")

	// The overlay's generic copies replaced the package's settings.
	if strings.Contains(readFile(t, filepath.Join(target, "etc/tally/tallyd.json")), "9443") {
		t.Fatal("the overlay did not replace tallyd.json: the test does not test anything")
	}
	if out, code := run(t, t.TempDir(), boardEnv(target, config), time.Minute, "sh", script, target); code != 0 {
		t.Fatalf("post-build.sh: exit %d\n%s", code, out)
	}
	if got, want := readFile(t, filepath.Join(target, "etc/tally/tallyd.json")), readFile(t, filepath.Join(target, "usr/share/tally/tallyd.json")); got != want || !strings.Contains(got, `"httpsPort": 9443`) {
		t.Errorf("tallyd.json is not the package's:\n%s", got)
	}
	if got := readFile(t, filepath.Join(target, "etc/default/tally")); !strings.Contains(got, `TALLY_DATA_DIR="/var/lib/tally-data"`) {
		t.Errorf("/etc/default/tally is not the package's:\n%s", got)
	}
	motd := readFile(t, filepath.Join(target, "etc/motd"))
	if !strings.Contains(motd, ":9443/") || !strings.Contains(motd, "/var/lib/tally-data/initial-admin-password") {
		t.Errorf("motd does not name the port and data directory:\n%s", motd)
	}
	info := readFile(t, filepath.Join(target, "etc/tally/build-info"))
	version := strings.TrimSpace(readFile(t, filepath.Join(target, "usr/share/tally/version")))
	for _, want := range []string{"version=" + version + "\n", "buildroot=2026.05\n", "defconfig=tally_qemu_aarch64_virt_defconfig\n", "built="} {
		if !strings.Contains(info, want) {
			t.Errorf("build-info lacks %q:\n%s", want, info)
		}
	}

	// A config of the user's own (not the overlay's) is kept.
	writeFile(t, filepath.Join(target, "etc/tally/tallyd.json"), "{\"dataDir\": \"/data\"}\n", 0o644)
	if out, code := run(t, t.TempDir(), boardEnv(target, config), time.Minute, "sh", script, target); code != 0 {
		t.Fatalf("post-build.sh: exit %d\n%s", code, out)
	}
	if got := readFile(t, filepath.Join(target, "etc/tally/tallyd.json")); got != "{\"dataDir\": \"/data\"}\n" {
		t.Errorf("a config of one's own was replaced: %s", got)
	}

	// No image with a root login without password.
	writeFile(t, filepath.Join(target, "etc/shadow"), "root::19000:0:99999:7:::\n", 0o600)
	out, code := run(t, t.TempDir(), boardEnv(target, config), time.Minute, "sh", script, target)
	if code == 0 || !strings.Contains(out, "TALLY_ROOT_PASSWORD") {
		t.Errorf("empty root password: exit %d, %q; want a failure naming TALLY_ROOT_PASSWORD", code, out)
	}
}

// TestPostImage runs board/tally/post-image.sh for each kind of board.
func TestPostImage(t *testing.T) {
	script := filepath.Join(treeDir, "board/tally/post-image.sh")

	t.Run("qemu", func(t *testing.T) {
		options := strings.Replace(defaultOptions, "HTTPS_PORT=8443", "HTTPS_PORT=9443", 1)
		target := fakeTarget(t, options)
		if out, err := exec.Command("sh", filepath.Join(treeDir, "board/tally/post-build.sh"), target).CombinedOutput(); err != nil {
			t.Fatalf("post-build.sh: %v\n%s", err, out)
		}
		config := filepath.Join(t.TempDir(), ".config")
		writeFile(t, config, "BR2_aarch64=y\n", 0o644)
		images := t.TempDir()
		if out, code := run(t, t.TempDir(), boardEnv(target, config), time.Minute, "sh", script, images); code != 0 {
			t.Fatalf("post-image.sh: exit %d\n%s", code, out)
		}
		start := filepath.Join(images, "start-qemu.sh")
		fi, err := os.Stat(start)
		if err != nil || fi.Mode().Perm()&0o111 == 0 {
			t.Fatalf("start-qemu.sh: %v %v", fi, err)
		}
		body := readFile(t, start)
		for _, want := range []string{"qemu-system-aarch64 -M virt", "root=/dev/vda", "/Image", "/rootfs.ext4", `hostfwd=tcp::${TALLY_HOST_PORT:-8443}-:9443"`} {
			if !strings.Contains(body, want) {
				t.Errorf("start-qemu.sh lacks %q:\n%s", want, body)
			}
		}
		if out, err := exec.Command("sh", "-n", start).CombinedOutput(); err != nil {
			t.Errorf("start-qemu.sh: sh -n: %v\n%s", err, out)
		}
	})

	t.Run("rpi4", func(t *testing.T) {
		// Buildroot's own script, run from the Buildroot tree with the
		// same arguments; here a stand-in that records them.
		buildroot := t.TempDir()
		record := filepath.Join(t.TempDir(), "args")
		writeFile(t, filepath.Join(buildroot, "board/raspberrypi/post-image.sh"), "#!/bin/sh\necho \"$@\" >"+record+"\n", 0o755)
		config := filepath.Join(t.TempDir(), ".config")
		writeFile(t, config, "BR2_aarch64=y\nBR2_PACKAGE_RPI_FIRMWARE=y\n", 0o644)
		images := t.TempDir()
		if out, code := run(t, buildroot, boardEnv(t.TempDir(), config), time.Minute, "sh", script, images, "--extra"); code != 0 {
			t.Fatalf("post-image.sh: exit %d\n%s", code, out)
		}
		if got := strings.TrimSpace(readFile(t, record)); got != images+" --extra" {
			t.Errorf("board/raspberrypi/post-image.sh got %q, want %q", got, images+" --extra")
		}
		if _, err := os.Stat(filepath.Join(images, "start-qemu.sh")); err == nil {
			t.Error("start-qemu.sh written for a Raspberry Pi")
		}
	})

	t.Run("x86_64", func(t *testing.T) {
		config := filepath.Join(t.TempDir(), ".config")
		writeFile(t, config, "BR2_x86_64=y\n", 0o644)
		images := t.TempDir()
		if out, code := run(t, t.TempDir(), boardEnv(t.TempDir(), config), time.Minute, "sh", script, images, "-c", "board/pc/genimage-bios.cfg"); code != 0 {
			t.Fatalf("post-image.sh: exit %d\n%s", code, out)
		}
		if entries, _ := os.ReadDir(images); len(entries) != 0 {
			t.Errorf("post-image.sh wrote %v for a PC; genimage.sh makes its image", entries)
		}
	})
}
