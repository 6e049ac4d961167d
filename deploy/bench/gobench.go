package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// benchResult is one benchmark's metrics over its runs (unit -> values).
type benchResult map[string][]float64

// median of unit, and whether there was one.
func (r benchResult) median(unit string) (float64, bool) {
	v := slices.Clone(r[unit])
	if len(v) == 0 {
		return 0, false
	}
	slices.Sort(v)
	return v[len(v)/2], true
}

// goBench runs go test -bench pattern -json on pkg and returns the metrics
// of each benchmark by name (without the -GOMAXPROCS suffix).
func goBench(ctx context.Context, pkg, pattern string, args ...string) (map[string]benchResult, error) {
	cmdArgs := append([]string{"test", "-p", "1", "-run", "^$", "-bench", pattern, "-json"}, args...)
	cmdArgs = append(cmdArgs, pkg)
	logf("go %s", strings.Join(cmdArgs, " "))
	cmd := exec.CommandContext(ctx, "go", cmdArgs...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var text strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct{ Action, Output string }
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Action == "output" {
			text.WriteString(ev.Output)
		}
	}
	res := parseBench(text.String())
	if err != nil {
		return res, fmt.Errorf("go test %s: %v: %s", pkg, err, lastLines(text.String()+stderr.String(), 5))
	}
	return res, nil
}

// parseBench reads benchmark lines: name, iterations, then value unit pairs.
// Output events may split a line, so the text is joined first.
func parseBench(text string) map[string]benchResult {
	res := map[string]benchResult{}
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		if res[name] == nil {
			res[name] = benchResult{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			res[name][f[i+1]] = append(res[name][f[i+1]], v)
		}
	}
	return res
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " / ")
}

// goBenchmarks runs the existing Go benchmarks and maps them to targets.
func goBenchmarks(ctx context.Context, o *options, r *report) error {
	count := strconv.Itoa(o.count)
	var errs []string
	all := map[string]benchResult{}
	runs := []struct {
		pkg, pattern string
		args         []string
	}{
		{"./core/", "^BenchmarkCheckoutReturn$", []string{"-cpu", "1", "-benchmem", "-count", count}},
		{"./raft/", "^BenchmarkApplyDurable$", []string{"-count", count}},
		{"./transport/device/", "^(BenchmarkWebSocketCheckouts|BenchmarkTLSRoundTripFloor)$", []string{"-benchtime", benchN(o, 40000), "-count", count}},
		{"./cmd/tallyd/", "^BenchmarkNodeWebSocketCheckouts$", []string{"-benchtime", benchN(o, 40000), "-count", count}},
		{"./transport/discovery/", "^(BenchmarkDiscoverOffer|BenchmarkResponderRate)$", []string{"-count", count}},
		{"./transport/", "^(BenchmarkListDevices10k|BenchmarkListFeatures1k)$", []string{"-count", count}},
	}
	for _, run := range runs {
		if ctx.Err() != nil {
			break
		}
		res, err := goBench(ctx, run.pkg, run.pattern, run.args...)
		if err != nil {
			errs = append(errs, err.Error())
		}
		for k, v := range res {
			all[k] = v
		}
	}
	r.detail("goBenchmarks", all)

	if v, ok := all["BenchmarkCheckoutReturn"].median("pairs/s"); ok {
		r.add(figure{Target: targetEngine, Want: ">= 1,000,000/s", Got: fmt.Sprintf("%.0f/s", v), Value: v, Unit: "checkouts/s",
			Status: atLeast(v, 1e6), Source: "core BenchmarkCheckoutReturn, -cpu 1, median of " + count,
			Note: "a checkout and its return through State.Apply, 10,000 devices, 1,000 features"})
	}
	if b := all["BenchmarkNodeWebSocketCheckouts"]; b != nil {
		v, _ := b.median("checkouts/s")
		p99, _ := b.median("p99-ms")
		p50, _ := b.median("p50-ms")
		r.add(figure{Target: "WebSocket checkouts, one node in-process (Go benchmark)", Got: fmt.Sprintf("%.0f/s, p50 %.2f ms, p99 %.2f ms", v, p50, p99),
			Value: v, Unit: "checkouts/s", Status: statusInfo, Source: "cmd/tallyd BenchmarkNodeWebSocketCheckouts, 1,000 devices, clients in the same process",
			Note: "the target row itself is measured with real binaries (tally-agent load against tallyd)"})
	}
	for _, mode := range []string{"batched", "per-response"} {
		if b := all["BenchmarkWebSocketCheckouts/"+mode]; b != nil {
			v, _ := b.median("checkouts/s")
			p99, _ := b.median("p99-ms")
			r.add(figure{Target: "WebSocket checkouts, transport/device handler only, signatures " + mode, Got: fmt.Sprintf("%.0f/s, p99 %.2f ms", v, p99),
				Value: v, Unit: "checkouts/s", Status: statusInfo, Source: "transport/device BenchmarkWebSocketCheckouts/" + mode + ", 1,000 devices, in-memory store"})
		}
	}
	if v, ok := all["BenchmarkTLSRoundTripFloor"].median("round-trips/s"); ok {
		r.add(figure{Target: "TLS WebSocket round-trip floor (no Tally code)", Got: fmt.Sprintf("%.0f/s", v), Value: v, Unit: "round-trips/s",
			Status: statusInfo, Source: "transport/device BenchmarkTLSRoundTripFloor", Note: "what this machine allows before any Tally code runs"})
	}
	if v, ok := all["BenchmarkApplyDurable"].median("ops/s"); ok {
		r.add(figure{Target: "raft durable apply (group commit, fsync)", Got: fmt.Sprintf("%.0f/s", v), Value: v, Unit: "ops/s",
			Status: statusInfo, Source: "raft BenchmarkApplyDurable"})
	}
	if b := all["BenchmarkDiscoverOffer"]; b != nil {
		p99, _ := b.median("p99-ms")
		p50, _ := b.median("p50-ms")
		r.add(figure{Target: targetDiscovery, Want: "<= 50 ms", Got: fmt.Sprintf("p50 %.3f ms, p99 %.3f ms", p50, p99), Value: p99, Unit: "ms (p99)",
			Status: atMost(p99, 50), Source: "transport/discovery BenchmarkDiscoverOffer (signed OFFER over loopback UDP)",
			Note: "loopback, not a physical LAN: add the LAN's own round trip"})
	}
	if v, ok := all["BenchmarkResponderRate"].median("requests/s"); ok {
		r.add(figure{Target: "discovery responder rate", Got: fmt.Sprintf("%.0f requests/s", v), Value: v, Status: statusInfo, Source: "transport/discovery BenchmarkResponderRate"})
	}
	for _, name := range []string{"BenchmarkListDevices10k", "BenchmarkListFeatures1k"} {
		if v, ok := all[name].median("ns/op"); ok {
			r.add(figure{Target: "REST " + strings.TrimPrefix(name, "Benchmark"), Got: fmt.Sprintf("%.2f ms/page", v/1e6), Value: v / 1e6, Unit: "ms",
				Status: statusInfo, Source: "transport " + name})
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// benchN is a -benchtime of n iterations, a quarter of it in short runs.
func benchN(o *options, n int) string {
	if o.short {
		n /= 4
	}
	return strconv.Itoa(n) + "x"
}
