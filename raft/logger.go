package raft

import (
	"bytes"
	"context"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// newHCLogger returns an hclog.Logger for raft that writes warnings and
// errors through logger. Raft's informational chatter (elections, snapshots)
// is dropped: this package logs what an operator needs itself.
func newHCLogger(logger *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:        "raft",
		Level:       hclog.Warn,
		Output:      &slogWriter{logger: logger},
		DisableTime: true,
	})
}

// slogWriter turns hclog's text lines ("[WARN]  raft: message: k=v") into
// slog records at the matching level.
type slogWriter struct {
	logger *slog.Logger
}

func (w *slogWriter) Write(p []byte) (int, error) {
	for line := range bytes.Lines(p) {
		text := strings.TrimSpace(string(line))
		if text == "" {
			continue
		}
		level := slog.LevelWarn
		if tag, rest, ok := strings.Cut(text, "]"); ok && strings.HasPrefix(tag, "[") {
			text = strings.TrimSpace(rest)
			switch tag[1:] {
			case "ERROR":
				level = slog.LevelError
			case "INFO":
				level = slog.LevelInfo
			case "DEBUG", "TRACE":
				level = slog.LevelDebug
			}
		}
		// Every start of a node begins with an election; that is no warning.
		if level == slog.LevelWarn && strings.Contains(text, "heartbeat timeout reached, starting election") {
			level = slog.LevelInfo
		}
		w.logger.Log(context.Background(), level, text, "component", "raft")
	}
	return len(p), nil
}
