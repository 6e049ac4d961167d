package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tallyhq/tally/webui"
)

// TestUIAndEvents starts a node and checks the wiring of the admin UI: the
// UI at /, the API's JSON 404 beside it, the events WebSocket hearing of a
// change applied through raft, and its close at shutdown.
func TestUIAndEvents(t *testing.T) {
	cfg, err := loadConfig([]string{"--dev", "--data-dir", t.TempDir(), "--https-port", "0", "--discovery-port", "0", "--node-id", "ui"})
	if err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		if k == "TALLY_ADMIN_PASSWORD" {
			return "ui test password"
		}
		return ""
	}
	d, err := start(context.Background(), cfg, slog.New(slog.DiscardHandler), newLogSwitch(io.Discard, "text"), env)
	if err != nil {
		t.Fatal(err)
	}
	go d.http.Serve(d.listener)
	stopped := false
	defer func() {
		if !stopped {
			d.shutdown(10 * time.Second)
		}
	}()
	insecure := &tls.Config{InsecureSkipVerify: true}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: insecure}}
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := client.Get(d.url + strings.TrimPrefix(path, "/"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := get("/"); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
		resp.Header.Get("Content-Security-Policy") != webui.ContentSecurityPolicy {
		t.Errorf("GET /: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := get("/api/v1/nothing"); resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("GET /api/v1/nothing: %d %v", resp.StatusCode, resp.Header)
	}

	resp, err := client.Post(d.url+"api/v1/auth/login", "application/json", strings.NewReader(`{"user":"admin","password":"ui test password"}`))
	if err != nil {
		t.Fatal(err)
	}
	var login struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()

	dialer := websocket.Dialer{TLSClientConfig: insecure, HandshakeTimeout: 10 * time.Second}
	origin := strings.TrimSuffix(d.url, "/")
	ws, _, err := dialer.Dial(strings.Replace(origin, "https://", "wss://", 1)+"/api/v1/events", http.Header{"Origin": {origin}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	read := func() (ev struct {
		Type, Code string
		Topics     []string
	}) {
		t.Helper()
		ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		if err := ws.ReadJSON(&ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	ws.WriteJSON(map[string]string{"token": login.Token})
	if ev := read(); ev.Type != "ready" {
		t.Fatalf("first event %+v", ev)
	}
	req, _ := http.NewRequest("PUT", d.url+"api/v1/properties/server.pageSize", strings.NewReader(`{"value":"9"}`))
	req.Header.Set("Authorization", "Bearer "+login.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err = client.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("set a property: %v %v", resp, err)
	}
	resp.Body.Close()
	// Other changes (the demo's ticks change nothing) may come first.
	for {
		ev := read()
		if ev.Type == "changed" && slices.Contains(ev.Topics, "properties") {
			if !slices.Contains(ev.Topics, "audit") {
				t.Errorf("an administrator's change without audit: %v", ev.Topics)
			}
			break
		}
	}

	stopped = true
	if err := d.shutdown(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	for {
		ev := read()
		if ev.Type == "error" {
			if ev.Code != "shutting_down" {
				t.Errorf("at shutdown: %+v", ev)
			}
			break
		}
	}
}

// TestWatchCluster: a change of what the cluster looks like is reported
// once, and an unchanged look is not.
func TestWatchCluster(t *testing.T) {
	var shape atomic.Value
	shape.Store("Leader n1 n1=a/true")
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	// Each look waits for the test to take it, so that a look the test
	// took after a change sees the change.
	looks := make(chan struct{})
	look := func() string {
		select {
		case looks <- struct{}{}:
		case <-ctx.Done():
		}
		return shape.Load().(string)
	}
	done := make(chan struct{})
	go func() { watchCluster(ctx, time.Millisecond, look, func() { calls.Add(1) }); close(done) }()
	waitLooks := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-looks:
			case <-time.After(10 * time.Second):
				t.Fatal("watchCluster stopped looking")
			}
		}
	}
	waitLooks(5)
	if calls.Load() != 0 {
		t.Fatalf("%d changes reported for an unchanged cluster", calls.Load())
	}
	shape.Store("Follower n2 n1=a/true n2=b/true")
	waitLooks(5)
	if calls.Load() != 1 {
		t.Fatalf("%d changes reported for one change", calls.Load())
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("watchCluster did not stop")
	}
}
