package main

import (
	"strings"
	"testing"
)

func TestParseBench(t *testing.T) {
	text := "goos: linux\n" +
		"BenchmarkCheckoutReturn     \t 1000000\t      1411 ns/op\t    708862 pairs/s\t       0 B/op\n" +
		"BenchmarkCheckoutReturn     \t 1000000\t      1300 ns/op\t    769230 pairs/s\t       0 B/op\n" +
		"BenchmarkWebSocketCheckouts/batched-2 \t 10000\t 4231 checkouts/s\t 105.2 p50-ms\n" +
		"BenchmarkBroken-2 \t many\t 1 ns/op\n"
	res := parseBench(text)
	if v, ok := res["BenchmarkCheckoutReturn"].median("pairs/s"); !ok || v != 769230 {
		t.Errorf("median pairs/s = %v %v", v, ok)
	}
	if v, _ := res["BenchmarkWebSocketCheckouts/batched"].median("p50-ms"); v != 105.2 {
		t.Errorf("sub-benchmark without -2: %v (%v)", v, res)
	}
	if _, ok := res["BenchmarkBroken"]; ok {
		t.Error("a line without an iteration count was parsed")
	}
}

func TestReportSaysWhatIsMissed(t *testing.T) {
	r := &report{}
	r.add(figure{Target: targetSize, Want: "<= 25 MiB", Got: "18 MiB", Status: atMost(18, 25)})
	r.add(figure{Target: targetRSS, Want: "<= 40 MiB", Got: "83 MiB", Status: atMost(83, 40)})
	r.add(figure{Target: targetIdle, Want: "x", Got: "y", Status: statusMissed + " (extrapolated)"})
	r.finish()
	if len(r.Missed) != 2 {
		t.Fatalf("missed = %q", r.Missed)
	}
	md := string(r.markdown())
	for _, want := range []string{"## Missed targets", "**MISSED**", "idle RSS of tallyd: 83 MiB", targetEngine + " | ", "NOT MEASURED"} {
		if !strings.Contains(md, want) {
			t.Errorf("REPORT.md lacks %q:\n%s", want, md)
		}
	}
}
