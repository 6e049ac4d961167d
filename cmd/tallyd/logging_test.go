package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestLogSwitchFollowsTheProperties(t *testing.T) {
	var out bytes.Buffer
	logs := newLogSwitch(&out, "text")
	log := slog.New(logs).With("part", "test")

	log.Debug("hidden at info")
	log.Info("as text")
	if s := out.String(); strings.Contains(s, "hidden") || !strings.Contains(s, `msg="as text" part=test`) {
		t.Fatalf("text at info:\n%s", s)
	}

	out.Reset()
	logs.set("logging.format", "json")
	logs.set("logging.level", "debug")
	log.Debug("as json")
	var rec map[string]any
	if err := json.Unmarshal(out.Bytes(), &rec); err != nil || rec["msg"] != "as json" || rec["part"] != "test" || rec["level"] != "DEBUG" {
		t.Fatalf("json at debug: %q %v", out.String(), err)
	}

	out.Reset()
	logs.set("logging.level", "error")
	log.Warn("hidden at error")
	logs.set("logging.level", "nonsense") // ignored: core validates values
	logs.set("licensing.renewInterval", "20")
	log.Warn("still hidden")
	if out.Len() != 0 {
		t.Fatalf("logged below the level: %q", out.String())
	}
}
