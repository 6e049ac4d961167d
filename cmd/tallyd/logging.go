package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
)

// logSwitch is the daemon's slog handler: text or JSON, at a level, both
// changeable while running so that the logging.* properties take effect at
// once on every node.
type logSwitch struct {
	level  *slog.LevelVar
	json   *atomic.Bool
	text   slog.Handler
	asJSON slog.Handler
}

func newLogSwitch(w io.Writer, format string) *logSwitch {
	level := new(slog.LevelVar)
	opts := &slog.HandlerOptions{Level: level}
	s := &logSwitch{
		level:  level,
		json:   new(atomic.Bool),
		text:   slog.NewTextHandler(w, opts),
		asJSON: slog.NewJSONHandler(w, opts),
	}
	s.json.Store(format == "json")
	return s
}

// set applies a logging.* property; other names and unknown values are
// ignored (core has validated them).
func (s *logSwitch) set(name, value string) {
	switch name {
	case "logging.format":
		s.json.Store(value == "json")
	case "logging.level":
		var l slog.Level
		if err := l.UnmarshalText([]byte(strings.ToUpper(value))); err == nil {
			s.level.Set(l)
		}
	}
}

func (s *logSwitch) current() slog.Handler {
	if s.json.Load() {
		return s.asJSON
	}
	return s.text
}

func (s *logSwitch) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= s.level.Level()
}

func (s *logSwitch) Handle(ctx context.Context, r slog.Record) error {
	return s.current().Handle(ctx, r)
}

func (s *logSwitch) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logSwitch{level: s.level, json: s.json, text: s.text.WithAttrs(attrs), asJSON: s.asJSON.WithAttrs(attrs)}
}

func (s *logSwitch) WithGroup(name string) slog.Handler {
	return &logSwitch{level: s.level, json: s.json, text: s.text.WithGroup(name), asJSON: s.asJSON.WithGroup(name)}
}
