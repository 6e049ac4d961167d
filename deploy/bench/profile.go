package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// profiles are the hot paths profiled: the in-process node benchmark holds
// the server and its clients in one process, so the profile shows both
// (the client side is deviceproto and devicetest).
var profiles = []struct{ name, pkg, bench, benchtime string }{
	{"websocket-node", "./cmd/tallyd/", "^BenchmarkNodeWebSocketCheckouts$", "60000x"},
	{"engine", "./core/", "^BenchmarkCheckoutReturn$", "3000000x"},
}

// profileHotPaths runs the benchmarks with -cpuprofile and writes the top
// functions into out/profile-NAME.txt.
func profileHotPaths(ctx context.Context, o *options, r *report) error {
	for _, p := range profiles {
		prof := filepath.Join(o.work, p.name+".pprof")
		bt := p.benchtime
		if o.short {
			bt = strings.Replace(bt, "000x", "00x", 1)
		}
		args := []string{"test", "-run", "^$", "-bench", p.bench, "-benchtime", bt, "-count", "1", "-cpuprofile", prof, "-o", filepath.Join(o.work, p.name+".test"), p.pkg}
		if p.name == "engine" {
			args = append(args, "-cpu", "1")
		}
		logf("go %s", strings.Join(args, " "))
		if out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("profile %s: %v: %s", p.name, err, lastLines(string(out), 3))
		}
		top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=40", filepath.Join(o.work, p.name+".test"), prof).Output()
		if err != nil {
			return fmt.Errorf("pprof %s: %v", p.name, err)
		}
		cum, _ := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=150", filepath.Join(o.work, p.name+".test"), prof).Output()
		if err := os.MkdirAll(o.out, 0o755); err != nil {
			return err
		}
		file := filepath.Join(o.out, "profile-"+p.name+".txt")
		text := fmt.Sprintf("go %s\n\n== flat\n%s\n== cumulative\n%s", strings.Join(args, " "), top, cum)
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			return err
		}
		r.Profiles = append(r.Profiles, filepath.Base(file))
		r.Notes = append(r.Notes, fmt.Sprintf("Profile %s, the functions with the most CPU of their own: %s (%s).", p.name, strings.Join(topFlat(string(top), 8), ", "), filepath.Base(file)))
		if p.name == "websocket-node" {
			shares := hotShares(string(cum))
			r.detail("profileWebsocketNode", shares)
			var parts []string
			for _, h := range hotPaths {
				if v, ok := shares[h.label]; ok {
					parts = append(parts, fmt.Sprintf("%s %.0f%%", h.label, v))
				}
			}
			r.Notes = append(r.Notes, "Where the CPU of the in-process WebSocket node benchmark goes (cumulative share of all samples, "+
				"server and its 1,000 clients together, overlapping): "+strings.Join(parts, ", ")+
				". On this machine the WebSocket targets are bound by CPU per request, servers and load generators "+
				"sharing two cores, not by the durable log, which alone applies far faster (see raft durable apply); "+
				"the TLS round-trip floor bounds what any server could do here.")
		}
	}
	return nil
}

// hotPaths are the groups a profile's cumulative shares are reported by:
// the first line whose function contains match gives the share.
var hotPaths = []struct{ label, match string }{
	{"device handler (server)", "transport/device.(*conn)."},
	{"client side (generator)", "devicetest.BenchCheckouts.func3"},
	{"JSON decode", "encoding/json.Unmarshal"},
	{"JSON encode", "encoding/json.Marshal"},
	{"WebSocket/TLS writes", "gorilla/websocket.(*Conn).WriteMessage"},
	{"write syscalls", "syscall.write"},
	{"TLS handshakes", "crypto/tls.(*Conn).HandshakeContext"},
	{"signing", "transport/device.(*batchSigner)"},
	{"raft", "tally/raft."},
	{"engine (core.Apply)", "tally/core.(*State).Apply"},
	{"allocation", "runtime.mallocgc"},
	{"GC workers", "runtime.gcBgMarkWorker"},
}

// hotShares reads pprof -top -cum output: label -> cum%.
func hotShares(top string) map[string]float64 {
	shares := map[string]float64{}
	for _, h := range hotPaths {
		for _, l := range strings.Split(top, "\n") {
			f := strings.Fields(l)
			if len(f) < 6 || !strings.Contains(f[5], h.match) {
				continue
			}
			if v, err := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64); err == nil {
				shares[h.label] = v
			}
			break
		}
	}
	return shares
}

// topFlat reads pprof -top output: the first n functions as "name flat%".
func topFlat(top string, n int) []string {
	var out []string
	for _, l := range strings.Split(top, "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || !strings.HasSuffix(f[1], "%") || f[1] == "flat%" {
			continue
		}
		name := strings.Join(f[5:], " ")
		name = strings.TrimPrefix(name, "github.com/tallyhq/tally/")
		out = append(out, name+" "+f[1])
		if len(out) == n {
			break
		}
	}
	return out
}
