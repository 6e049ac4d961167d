package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The shipped binaries, as make cross builds them: tallyd for linux/arm64
// must stay small enough for an appliance's flash and come out the same
// twice, and no binary may link a package it has no business with. The
// flags come from the Makefile (make print-build-flags), the one place that
// says how Tally is built.

// maxTallydSize is the most the stripped linux/arm64 tallyd may weigh.
const maxTallydSize = 25 << 20

// The platform the size and reproducibility tests build for.
const crossGOOS, crossGOARCH = "linux", "arm64"

// linkAllowList is what each binary may link for linux/arm64 besides the
// standard library and Tally's own packages: the modules it needs, and the
// packages allowed to import the standard library's testing package (it
// must not be linked, but hashicorp/raft and go-plugin ship test helpers in
// their main packages). A module that is not here fails TestDepsAllowed;
// add it only when the binary needs it.
var linkAllowList = map[string]struct {
	modules         []string
	testingImporter []string
	// requires are Tally's packages the binary must link.
	requires []string
}{
	"tallyd": {
		modules: []string{
			// replication: hashicorp/raft on raft-boltdb/v2 (bbolt, and bolt
			// for its migration from v1), with their metrics and logging
			"github.com/hashicorp/raft", "github.com/hashicorp/raft-boltdb/v2", "go.etcd.io/bbolt",
			"github.com/boltdb/bolt", "github.com/hashicorp/go-msgpack/v2", "github.com/hashicorp/go-metrics",
			"github.com/armon/go-metrics", "github.com/hashicorp/go-immutable-radix", "github.com/hashicorp/golang-lru",
			"github.com/hashicorp/go-hclog", "github.com/fatih/color", "github.com/mattn/go-colorable", "github.com/mattn/go-isatty",
			// connectors: go-plugin over gRPC
			"github.com/hashicorp/go-plugin", "github.com/hashicorp/yamux", "github.com/oklog/run",
			"google.golang.org/grpc", "google.golang.org/protobuf", "github.com/golang/protobuf",
			"google.golang.org/genproto/googleapis/rpc",
			// the network: device WebSocket, mDNS, HTTP/2
			"github.com/gorilla/websocket", "github.com/miekg/dns", "golang.org/x/net", "golang.org/x/text",
			// hostids of the machine
			"github.com/jaypipes/ghw", "github.com/jaypipes/pcidb", "gopkg.in/yaml.v3", "golang.org/x/sys",
			"golang.org/x/crypto",
		},
		testingImporter: []string{"github.com/hashicorp/raft", "github.com/hashicorp/go-plugin"},
		// The built-in connectors run as `tallyd connector dir|http`.
		requires: []string{"github.com/tallyhq/tally/plugins/dir", "github.com/tallyhq/tally/plugins/httpconn"},
	},
	"tallyctl": {
		modules: []string{"golang.org/x/crypto"},
	},
	"tally-agent": {
		modules: []string{
			"github.com/gorilla/websocket", "github.com/miekg/dns", "golang.org/x/net",
			"github.com/jaypipes/ghw", "github.com/jaypipes/pcidb", "gopkg.in/yaml.v3", "golang.org/x/sys",
		},
	},
	"tally-backoffice": {
		modules: []string{"golang.org/x/crypto", "go.etcd.io/bbolt"},
	},
}

// forbiddenPackages may be linked by no binary: a profiler on the admin
// port, test code.
var forbiddenPackages = []string{"net/http/pprof", "testing"}

// TestCrossSize: the stripped linux/arm64 tallyd, built as make cross
// builds it, is at most 25 MiB.
func TestCrossSize(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tallyd for linux/arm64")
	}
	bin := filepath.Join(t.TempDir(), "tallyd")
	buildTallyd(t, moduleRoot(t), bin)
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tallyd %s/%s: %d bytes (%.1f MiB)", crossGOOS, crossGOARCH, fi.Size(), float64(fi.Size())/(1<<20))
	if fi.Size() > maxTallydSize {
		t.Fatalf("tallyd %s/%s is %.1f MiB, more than %d MiB", crossGOOS, crossGOARCH, float64(fi.Size())/(1<<20), maxTallydSize>>20)
	}
}

// TestCrossReproducible: two builds of the same source give the same bytes,
// even from another directory without the git repository (no paths, build
// IDs or VCS stamps in the binary).
func TestCrossReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tallyd for linux/arm64 twice")
	}
	root := moduleRoot(t)
	elsewhere := filepath.Join(t.TempDir(), "tally-source")
	copyTallydSource(t, root, elsewhere)
	first := filepath.Join(t.TempDir(), "tallyd")
	second := filepath.Join(t.TempDir(), "tallyd")
	buildTallyd(t, root, first)
	buildTallyd(t, elsewhere, second)
	a, b := fileSHA256(t, first), fileSHA256(t, second)
	t.Logf("sha256 %s", a)
	if a != b {
		t.Fatalf("tallyd built in %s and in %s differs: sha256 %s and %s (go version -m shows what was stamped)", root, elsewhere, a, b)
	}
}

// TestDepsAllowed: each binary links only the standard library, Tally's
// own packages and the modules its entry in linkAllowList names, never a
// package of forbiddenPackages, and every package it must.
func TestDepsAllowed(t *testing.T) {
	goCmd := goCommand(t)
	root := moduleRoot(t)
	for name, allowed := range linkAllowList {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(goCmd, "list", "-deps", "-f",
				`{"path":{{printf "%q" .ImportPath}},"std":{{.Standard}},"module":{{with .Module}}{{printf "%q" .Path}}{{else}}""{{end}},"imports":[{{range $i, $p := .Imports}}{{if $i}},{{end}}{{printf "%q" $p}}{{end}}]}`,
				"./cmd/"+name)
			cmd.Dir = root
			cmd.Env = crossEnv(nil)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, stderrOf(err))
			}
			g := parseDepGraph(t, out)
			cmdPkg := "github.com/tallyhq/tally/cmd/" + name
			modules := append([]string{"github.com/tallyhq/tally"}, allowed.modules...)
			denied := func(p depPackage) bool { return !p.Std && !slices.Contains(modules, p.Module) }

			// Name the packages where the binary crosses into a module it
			// may not use, each with who imports it; the packages behind them
			// only by count.
			var behind []string
			for _, p := range g.order {
				if !denied(g.pkgs[p]) {
					continue
				}
				importers := g.importersOf(p, func(q string) bool { return !denied(g.pkgs[q]) })
				if len(importers) == 0 {
					behind = append(behind, p)
					continue
				}
				t.Errorf("%s links %s (module %s, not on its allow-list), imported by %s: %s\n"+
					"\tif %s needs it, add the module to linkAllowList in cmd/tallyd/build_test.go",
					name, p, g.pkgs[p].Module, strings.Join(importers, ", "), strings.Join(g.pathTo(cmdPkg, p), " → "), name)
			}
			if len(behind) > 0 {
				t.Errorf("%s links %d more packages through those: %s", name, len(behind), strings.Join(behind, ", "))
			}

			for _, f := range forbiddenPackages {
				for _, p := range g.order {
					if p != f && !strings.HasPrefix(p, f+"/") {
						continue
					}
					importers := g.importersOf(p, func(q string) bool {
						return p != "testing" || !slices.Contains(allowed.testingImporter, q)
					})
					if len(importers) > 0 {
						t.Errorf("%s links %s, which no binary may link, imported by %s: %s",
							name, p, strings.Join(importers, ", "), strings.Join(g.pathTo(cmdPkg, p), " → "))
					}
				}
			}
			for _, r := range allowed.requires {
				if _, ok := g.pkgs[r]; !ok {
					t.Errorf("%s does not link %s", name, r)
				}
			}
		})
	}
}

// depPackage is one line of `go list -deps`.
type depPackage struct {
	Path    string   `json:"path"`
	Std     bool     `json:"std"`
	Module  string   `json:"module"`
	Imports []string `json:"imports"`
}

// depGraph is a binary's packages and who imports whom.
type depGraph struct {
	order []string // as go list gives them: dependencies first
	pkgs  map[string]depPackage
}

func parseDepGraph(t *testing.T, out []byte) depGraph {
	t.Helper()
	g := depGraph{pkgs: map[string]depPackage{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var p depPackage
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("go list line %q: %v", sc.Text(), err)
		}
		g.order = append(g.order, p.Path)
		g.pkgs[p.Path] = p
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return g
}

// importersOf returns the packages that import p and pass keep.
func (g depGraph) importersOf(p string, keep func(string) bool) []string {
	var out []string
	for _, q := range g.order {
		if slices.Contains(g.pkgs[q].Imports, p) && keep(q) {
			out = append(out, q)
		}
	}
	return out
}

// pathTo returns a shortest import chain from one package to another.
func (g depGraph) pathTo(from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == to {
			var chain []string
			for ; p != ""; p = prev[p] {
				chain = append(chain, p)
			}
			slices.Reverse(chain)
			return chain
		}
		for _, q := range g.pkgs[p].Imports {
			if _, seen := prev[q]; !seen {
				prev[q] = p
				queue = append(queue, q)
			}
		}
	}
	return []string{from, "…", to}
}

// buildTallyd builds tallyd from the module in dir into out for
// crossGOOS/crossGOARCH, with make cross's flags.
func buildTallyd(t *testing.T, dir, out string) {
	t.Helper()
	env, flags := crossBuildFlags(t)
	args := append([]string{"build"}, flags...)
	cmd := exec.Command(goCommand(t), append(args, "-o", out, "./cmd/tallyd")...)
	cmd.Dir = dir
	cmd.Env = crossEnv(env)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, b)
	}
}

// crossBuildFlags returns what make cross gives go build: the environment
// (NAME=value) and the flags, from make print-build-flags.
func crossBuildFlags(t *testing.T) (env, flags []string) {
	t.Helper()
	makeCmd, err := exec.LookPath("make")
	if err != nil {
		t.Skip("no make command to read the build flags from the Makefile")
	}
	cmd := exec.Command(makeCmd, "-s", "--no-print-directory", "print-build-flags")
	cmd.Dir = moduleRoot(t)
	// Run as a make of its own, not as part of one that runs the tests.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make print-build-flags: %v\n%s", err, stderrOf(err))
	}
	for line := range strings.Lines(string(out)) {
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
		case strings.HasPrefix(line, "-"):
			flags = append(flags, line)
		case strings.Contains(line, "="):
			env = append(env, line)
		default:
			t.Fatalf("make print-build-flags printed %q, neither NAME=value nor a flag", line)
		}
	}
	if !slices.ContainsFunc(flags, func(f string) bool { return strings.HasPrefix(f, "-ldflags=") }) {
		t.Fatalf("make print-build-flags printed no -ldflags:\n%s", out)
	}
	return env, flags
}

// crossEnv is this process's environment for crossGOOS/crossGOARCH with
// CGO off, then extra.
func crossEnv(extra []string) []string {
	env := append(os.Environ(), "GOOS="+crossGOOS, "GOARCH="+crossGOARCH, "CGO_ENABLED=0")
	return append(env, extra...)
}

// copyTallydSource copies what building tallyd reads (go.mod, go.sum and
// the files of the module's packages it links) from root to dst.
func copyTallydSource(t *testing.T, root, dst string) {
	t.Helper()
	cmd := exec.Command(goCommand(t), "list", "-deps", "-f",
		`{{if and .Module .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .SFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}`,
		"./cmd/tallyd")
	cmd.Dir = root
	cmd.Env = crossEnv(nil)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderrOf(err))
	}
	files := append(strings.Fields(string(out)), filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum"))
	for _, f := range files {
		rel, err := filepath.Rel(root, f)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("%s is outside %s", f, root)
		}
		copyFile(t, f, filepath.Join(dst, rel))
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// moduleRoot is the directory of Tally's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(goCommand(t), "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("not in a module")
	}
	return filepath.Dir(gomod)
}

func goCommand(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	return goCmd
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return fmt.Sprint(err)
}
