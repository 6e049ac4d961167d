package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tally.json")
	os.WriteFile(file, []byte(`{"dataDir":"/srv/tally","httpsPort":9443,"producerKeys":["a.pub"]}`), 0o600)
	tests := []struct {
		args  []string
		check func(config) bool
	}{
		{nil, func(c config) bool {
			return c.DataDir == "/var/lib/tally" && c.Bind == "0.0.0.0" && c.HTTPSPort == 8443 && c.RaftPort == 61616 && c.NodeID == ""
		}},
		{[]string{"--dev"}, func(c config) bool { return c.Dev && c.DataDir == "./data" && c.Bind == "127.0.0.1" }},
		{[]string{"--dev", "--data-dir", "/tmp/x", "--bind", "10.0.0.1"}, func(c config) bool { return c.DataDir == "/tmp/x" && c.Bind == "10.0.0.1" }},
		{[]string{"--config", file}, func(c config) bool {
			return c.DataDir == "/srv/tally" && c.HTTPSPort == 9443 && len(c.ProducerKeys) == 1
		}},
		{[]string{"--config", file, "--https-port", "7443", "--producer-key", "b.pub", "--producer-key", "c.pub"}, func(c config) bool {
			return c.HTTPSPort == 7443 && strings.Join(c.ProducerKeys, ",") == "b.pub,c.pub"
		}},
		{[]string{"--https-port", "0", "--node-id", "n1"}, func(c config) bool { return c.HTTPSPort == 0 && c.NodeID == "n1" }},
		{[]string{"--bootstrap-expect", "3"}, func(c config) bool { return c.BootstrapExpect == 3 && c.Join == "" }},
		{[]string{"--bootstrap-expect", "3", "--bootstrap-secret-file", "s"}, func(c config) bool { return c.BootstrapSecretFile == "s" }},
		{[]string{"--dead-server-timeout", "0"}, func(c config) bool { d, err := c.deadServerTimeout(); return d == 0 && err == nil }},
		{[]string{}, func(c config) bool { d, err := c.deadServerTimeout(); return d == 24*time.Hour && err == nil }},
		{[]string{"--bootstrap-expect", "1"}, func(c config) bool { return c.BootstrapExpect == 1 }},
	}
	for _, tt := range tests {
		c, err := loadConfig(tt.args)
		if err != nil || !tt.check(c) {
			t.Errorf("loadConfig(%v) = %+v, %v", tt.args, c, err)
		}
	}
}

func TestLoadConfigRefuses(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"dataDir":"x","colour":"blue"}`), 0o600)
	trailing := filepath.Join(dir, "trailing.json")
	os.WriteFile(trailing, []byte(`{"dataDir":"x"} {}`), 0o600)
	for _, args := range [][]string{
		{"--bind", "example.com"},
		{"--https-port", "70000"},
		{"--tls-cert", "c.pem"},
		{"--join", "a:8443"},
		{"--join-token", "tly1.x.y"},
		{"--bootstrap-expect", "-1"},
		{"--bootstrap-expect", "3", "--join", "a:8443", "--join-token", "tly1.x.y"},
		{"--bootstrap-secret-file", "secret"},
		{"--bootstrap-expect", "1", "--bootstrap-secret-file", "secret"},
		{"--dead-server-timeout", "5s"},
		{"--dead-server-timeout", "soon"},
		{"--dead-server-timeout", "-1h"},
		{"--log-format", "xml"},
		{"--node-id", "a b"},
		{"--config", bad},
		{"--config", trailing},
		{"--config", filepath.Join(dir, "missing.json")},
		{"--frobnicate"},
		{"extra"},
	} {
		if _, err := loadConfig(args); err == nil {
			t.Errorf("loadConfig(%v) accepted", args)
		}
	}
}
