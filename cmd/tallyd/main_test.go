package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestDevPrintsTheDemoFeatures(t *testing.T) {
	var out bytes.Buffer
	now := func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
	if err := run([]string{"--dev"}, &out, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"cad      2.0      10         4     6",
		"viewer   1.0      uncounted  1",
		"sim      2022.01  5          2     3          2026-03-31 12:00",
		"press-line-1",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCommandLine(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"version"}, &out, time.Now); err != nil || !strings.HasPrefix(out.String(), "tallyd ") {
		t.Fatalf("version: %q %v", out.String(), err)
	}
	for _, args := range [][]string{{}, {"--nope"}, {"--dev", "extra"}} {
		if err := run(args, &out, time.Now); err == nil {
			t.Errorf("tallyd %v: no error", args)
		}
	}
}
