package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
)

// getHistory asks GET /api/v1/history with query and decodes the answer
// strictly: a point without "used" must not have the field at all.
func (e *testEnv) getHistory(t *testing.T, query string) (historyResponse, []map[string]json.RawMessage) {
	t.Helper()
	r := e.do("GET", "/api/v1/history"+query, "", "", true)
	if r.status != http.StatusOK {
		t.Fatalf("history%s: %d %s", query, r.status, r.body)
	}
	var h historyResponse
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		t.Fatalf("history %s: %v", r.body, err)
	}
	var raw struct {
		Points []map[string]json.RawMessage `json:"points"`
	}
	json.Unmarshal(r.body, &raw)
	if h.Points == nil {
		t.Fatalf("history%s: points is null, want a list", query)
	}
	return h, raw.Points
}

func usedOf(t *testing.T, h historyResponse) []int64 {
	t.Helper()
	out := make([]int64, len(h.Points))
	for i, p := range h.Points {
		if p.Used == nil {
			t.Fatalf("point %d has no used: %+v", i, p)
		}
		out[i] = *p.Used
	}
	return out
}

func TestHistorySamples(t *testing.T) {
	online := map[hostid.HostID]bool{testMAC(1): true}
	e := newTestEnv(t, func(c *Config) {
		c.Online = func(id hostid.HostID) bool { return online[id] }
	})
	ctx := context.Background()
	h, raw := e.getHistory(t, "")
	if h.IntervalSeconds != 60 || len(h.Points) != 0 || len(raw) != 0 {
		t.Fatalf("before any sample: %+v", h)
	}

	e.server.sampleHistory(ctx) // t0: dev1 online, cad 2 used
	e.clock.advance(time.Minute)
	online[testMAC(2)] = true
	e.store.mustApply(t, &core.Checkout{Device: testMAC(2), Feature: "cad", Version: version.MustParse("1.0"), Count: 3})
	e.server.sampleHistory(ctx) // t0+1m: two online, cad 5 used

	h, raw = e.getHistory(t, "")
	if len(h.Points) != 2 || h.Points[0].At != t0.Format(time.RFC3339) || h.Points[1].At != t0.Add(time.Minute).Format(time.RFC3339) ||
		h.Points[0].DevicesOnline != 1 || h.Points[1].DevicesOnline != 2 {
		t.Fatalf("devices online: %+v", h.Points)
	}
	if _, ok := raw[0]["used"]; ok {
		t.Errorf("a point without a feature has used: %v", raw[0])
	}
	for query, want := range map[string][]int64{
		"?feature=cad":             {2, 5},
		"?feature=cad&version=1.0": {2, 5},
		"?feature=cad&version=1":   {2, 5}, // "1" is "1.0"
		// Held by the rights and never used: a flat line.
		"?feature=viewer":             {0, 0},
		"?feature=viewer&version=2.0": {0, 0},
	} {
		h, _ := e.getHistory(t, query)
		if got := usedOf(t, h); !slices.Equal(got, want) {
			t.Errorf("history%s: used %v, want %v", query, got, want)
		}
	}
	// Unknown features, and versions the rights do not hold, have no points.
	for _, query := range []string{"?feature=nope", "?feature=cad&version=2.0", "?feature=" + url.QueryEscape("cad 1.0")} {
		if h, _ := e.getHistory(t, query); len(h.Points) != 0 {
			t.Errorf("history%s: %+v, want no points", query, h.Points)
		}
	}
	wantError(t, e.do("GET", "/api/v1/history?feature=cad&version=1.x", "", "", true), http.StatusBadRequest, "bad_version")
	wantError(t, e.do("GET", "/api/v1/history?version=1.0", "", "", true), http.StatusBadRequest, "bad_query")
	wantError(t, e.do("GET", "/api/v1/history", "", "", false), http.StatusUnauthorized, "unauthorized")

	// Versions of one feature add up; a version later gone from the rights
	// keeps its history.
	e.store.mustApply(t, &core.LoadRights{Source: "more", Sequence: 1, Lines: []core.FeatureLine{
		{ID: "cad-2", Name: "cad", Version: version.MustParse("2.0"), Count: 5},
	}})
	e.store.mustApply(t, &core.Checkout{Device: testMAC(3), Feature: "cad", Version: version.MustParse("2.0"), Count: 4})
	e.clock.advance(time.Minute)
	e.server.sampleHistory(ctx)
	for query, want := range map[string][]int64{
		"?feature=cad":             {2, 5, 9},
		"?feature=cad&version=2.0": {0, 0, 4},
	} {
		h, _ := e.getHistory(t, query)
		if got := usedOf(t, h); !slices.Equal(got, want) {
			t.Errorf("history%s: used %v, want %v", query, got, want)
		}
	}
}

// TestHistoryWraps: the history keeps 24 hours; older samples give way.
func TestHistoryWraps(t *testing.T) {
	e := newTestEnv(t, func(c *Config) {
		c.HistoryInterval = time.Hour // 24 samples
		c.OnlineCount = func() int { return 7 }
	})
	ctx := context.Background()
	for i := range 30 {
		e.store.mustApply(t, &core.Checkout{Device: testMAC(1), Feature: "cad", Version: version.MustParse("1.0"), Count: int64(1 + i%10)})
		e.server.sampleHistory(ctx)
		e.clock.advance(time.Hour)
	}
	h, _ := e.getHistory(t, "?feature=cad")
	if h.IntervalSeconds != 3600 || len(h.Points) != 24 {
		t.Fatalf("%v s, %d points, want 3600 s and 24", h.IntervalSeconds, len(h.Points))
	}
	for k, p := range h.Points {
		i := k + 6 // the first six samples are gone
		if p.At != t0.Add(time.Duration(i)*time.Hour).Format(time.RFC3339) || *p.Used != int64(1+i%10) || p.DevicesOnline != 7 {
			t.Fatalf("point %d: %+v used %d, want sample %d", k, p, *p.Used, i)
		}
	}
	if got := newHistorySampler(time.Second); len(got.times) != maxHistoryPoints {
		t.Errorf("1 s interval: %d points, want at most %d", len(got.times), maxHistoryPoints)
	}
	if got := newHistorySampler(0); got.interval != time.Minute || len(got.times) != 1440 {
		t.Errorf("default: %s, %d points", got.interval, len(got.times))
	}
}

// TestHistoryLazyRings: a feature version gets a ring only once used, and a
// change of use between samples is reported.
func TestHistoryLazyRings(t *testing.T) {
	h := newHistorySampler(time.Minute)
	v1, v2 := version.MustParse("1.0"), version.MustParse("2.0")
	if h.add(t0, 0, []featureUse{{"a", v1, 0}, {"b", v1, 0}}) {
		t.Error("the first sample reports a change")
	}
	if len(h.features) != 0 {
		t.Errorf("rings for unused features: %v", h.features)
	}
	if !h.add(t0.Add(time.Minute), 0, []featureUse{{"a", v1, 3}, {"b", v1, 0}}) {
		t.Error("a use that began is not a change")
	}
	if h.add(t0.Add(2*time.Minute), 0, []featureUse{{"a", v1, 3}, {"b", v1, 0}, {"a", v2, 0}}) {
		t.Error("the same use is a change")
	}
	if len(h.features) != 1 || len(h.features["a"]) != 1 {
		t.Errorf("rings %v, want one for a 1.0", h.features)
	}
	if !h.add(t0.Add(3*time.Minute), 0, nil) {
		t.Error("a use that ended (its rights gone) is not a change")
	}
	if got := h.points("a", nil, false); len(got) != 4 || *got[0].Used != 0 || *got[1].Used != 3 || *got[3].Used != 0 {
		t.Errorf("points %+v", got)
	}
}

// TestRunHistory: RunHistory samples at once and stops with its context.
func TestRunHistory(t *testing.T) {
	e := newTestEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.server.RunHistory(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if h, _ := e.getHistory(t, ""); len(h.Points) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no sample at start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RunHistory did not stop")
	}
	// A store that cannot be read gives no sample rather than a zero one.
	e.store.setNotApplied(true)
	e.server.sampleHistory(context.Background())
	e.store.setNotApplied(false)
	if h, _ := e.getHistory(t, ""); len(h.Points) != 1 {
		t.Errorf("%d points after a failed sample", len(h.Points))
	}
}
