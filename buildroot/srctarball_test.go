package buildroot

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSourceTarballBuildsOffline runs make buildroot-src and builds its
// tarball the way Buildroot does: extracted with the top directory
// stripped, then for each target "go build" with GOFLAGS=-mod=vendor,
// GOPROXY=off and an empty GOPATH (so no module cache), for arm64, with the
// flags of package/pkg-golang.mk and tally.mk.
func TestSourceTarballBuildsOffline(t *testing.T) {
	if testing.Short() {
		t.Skip("vendors the modules and builds tallyd")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	_, vendorBefore := os.Stat(filepath.Join(repoDir, "vendor"))

	dist := t.TempDir()
	const version = "test-1"
	out, code := run(t, repoDir, os.Environ(), 5*time.Minute, "make", "-s", "buildroot-src", "DIST="+dist, "VERSION="+version)
	if code != 0 {
		t.Fatalf("make buildroot-src: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(repoDir, "vendor")); err == nil && vendorBefore != nil {
		t.Error("make buildroot-src vendored into the working tree")
	}

	tarball := filepath.Join(dist, "tally-src-"+version+".tar.gz")
	data, err := os.ReadFile(tarball)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	if got, want := readFile(t, tarball+".sha256"), hash+"  tally-src-"+version+".tar.gz\n"; got != want {
		t.Errorf(".sha256 = %q, want %q", got, want)
	}
	// Buildroot's hash file format, where BR2_GLOBAL_PATCH_DIR looks.
	brHash := readFile(t, filepath.Join(dist, "buildroot-hashes/tally", version, "tally.hash"))
	if !regexp.MustCompile(`(?m)^sha256  ` + hash + `  tally-src-` + version + `\.tar\.gz$`).MatchString(brHash) {
		t.Errorf("tally.hash:\n%s", brHash)
	}

	// Buildroot's support/download/go-post-process leaves a tarball alone
	// when a name matches ^[^/]*/vendor.
	build := t.TempDir()
	names := extract(t, tarball, build)
	vendored := false
	for _, n := range names {
		if regexp.MustCompile(`^[^/]*/vendor`).MatchString(n) {
			vendored = true
			break
		}
	}
	if !vendored {
		t.Fatal("the tarball has no vendor directory")
	}
	for _, f := range []string{"go.mod", "go.sum", "vendor/modules.txt", "cmd/tallyd/main.go", "buildroot/package/tally/S90tally"} {
		if _, err := os.Stat(filepath.Join(build, f)); err != nil {
			t.Errorf("tarball lacks %s", f)
		}
	}
	for _, f := range []string{"dist", "bin"} {
		if _, err := os.Stat(filepath.Join(build, f)); err == nil {
			t.Errorf("tarball holds %s/", f)
		}
	}

	gopath := t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"GO111MODULE=on", "GOFLAGS=-mod=vendor", "GOPROXY=off", "GOPATH=" + gopath,
		"GOCACHE=" + goEnv(t, "GOCACHE"), "GOOS=linux", "GOARCH=arm64",
		"CGO_ENABLED=0", "GOTOOLCHAIN=local",
	}
	out, code = run(t, build, env, 5*time.Minute, "go", "build", "-v",
		"-ldflags", "-X main.buildVersion="+version+" -s -w", "-modcacherw", "-tags", "", "-trimpath", "-buildvcs=false",
		"-o", filepath.Join(build, "bin/tallyd"), "github.com/tallyhq/tally/cmd/tallyd")
	if code != 0 {
		t.Fatalf("offline build: exit %d\n%s", code, out)
	}
	if entries, _ := os.ReadDir(filepath.Join(gopath, "pkg/mod")); len(entries) > 0 {
		t.Errorf("the build used the module cache: %v", entries)
	}
	f, err := elf.Open(filepath.Join(build, "bin/tallyd"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("tallyd is for %v, want aarch64", f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("tallyd is dynamically linked")
		}
	}
}

func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// extract unpacks a .tar.gz into dir without its top directory, as
// Buildroot's extract step does (--strip-components=1), and returns the
// names in the archive.
func extract(t *testing.T, tarball, dir string) []string {
	t.Helper()
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		_, rest, ok := strings.Cut(strings.TrimPrefix(h.Name, "./"), "/")
		if !ok || rest == "" {
			continue
		}
		if strings.Contains(rest, "..") {
			t.Fatalf("unsafe name %q", h.Name)
		}
		target := filepath.Join(dir, rest)
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(target, 0o755)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(target), 0o755)
			w, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(w, tr); err != nil {
				t.Fatal(err)
			}
			w.Close()
		case tar.TypeSymlink:
			os.MkdirAll(filepath.Dir(target), 0o755)
			os.Symlink(h.Linkname, target)
		}
	}
}
