package raft

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestRaftLinesKeepTheirLevels(t *testing.T) {
	var out bytes.Buffer
	w := &slogWriter{logger: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	w.Write([]byte("[WARN]  raft: heartbeat timeout reached, starting election: last-leader-addr= last-leader-id=\n" +
		"[ERROR] raft: failed to commit logs: error=\"disk full\"\n" +
		"[WARN]  raft: failed to contact quorum\n\n"))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{"level=INFO", "level=ERROR", "level=WARN"}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines:\n%s", len(lines), out.String())
	}
	for i, l := range lines {
		if !strings.Contains(l, want[i]) || !strings.Contains(l, "component=raft") {
			t.Errorf("line %d: %s, want %s", i+1, l, want[i])
		}
	}
}
