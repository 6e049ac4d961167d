package main

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func openTestStore(t *testing.T) *store {
	t.Helper()
	s, err := openStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.close() })
	return s
}

// TestBooks: entitlements are activated up to their count across servers,
// returned, refused when unknown or too large; usage windows are recorded
// once however often they are sent; an unregistered server gets nothing.
func TestBooks(t *testing.T) {
	s := openTestStore(t)
	if err := s.addEntitlement(entitlement{ActivationID: "ACT-1", Feature: "cad", Version: "1.0", Count: 10}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []entitlement{{ActivationID: "ACT-1", Feature: "cad", Version: "1.0", Count: 1}, {ActivationID: "X", Feature: "cad", Version: "1.0"},
		{ActivationID: "Y", Feature: "cad", Version: "1.0", Count: 1, Expiry: "soon"}} {
		if err := s.addEntitlement(bad); err == nil {
			t.Fatalf("accepted %+v", bad)
		}
	}
	if _, err := s.exchange(exchange{Server: "A", Now: t0}); !errors.Is(err, errUnknownServer) {
		t.Fatalf("an unregistered server: %v", err)
	}
	for _, fp := range []string{"A", "B"} {
		if err := s.register(fp, []byte("cert "+fp), t0); err != nil {
			t.Fatal(err)
		}
	}
	w := func(n int) json.RawMessage { return json.RawMessage(`{"checkouts":` + string(rune('0'+n)) + `}`) }
	res, err := s.exchange(exchange{Server: "A", Now: t0, Windows: map[uint64]json.RawMessage{1: w(1), 2: w(2)},
		Asks: []activation{{"ACT-1", 7}, {"NOPE", 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sequence != 1 || res.UsageAck != 2 || len(res.Held) != 1 || res.Held[0].Allocated["A"] != 7 ||
		res.Activations[0].Result != "ok" || res.Activations[1].Result != "unknown" {
		t.Fatalf("first exchange %+v", res)
	}
	// B wants 4 of the 3 left: refused; then 3: granted.
	if res, _ := s.exchange(exchange{Server: "B", Now: t0, Asks: []activation{{"ACT-1", 4}}}); res.Activations[0].Result != "exceeds" || len(res.Held) != 0 {
		t.Fatalf("over the entitlement: %+v", res)
	}
	if res, _ := s.exchange(exchange{Server: "B", Now: t0, Asks: []activation{{"ACT-1", 3}}}); res.Activations[0].Result != "ok" || res.Held[0].Allocated["B"] != 3 {
		t.Fatalf("the rest: %+v", res)
	}
	// A sends window 2 again with window 3: only 3 is new; A returns all.
	res, err = s.exchange(exchange{Server: "A", Now: t0, Windows: map[uint64]json.RawMessage{2: w(9), 3: w(3)}, Asks: []activation{{"ACT-1", 0}}})
	if err != nil || res.Sequence != 2 || res.UsageAck != 3 || len(res.Held) != 0 {
		t.Fatalf("second exchange %+v %v", res, err)
	}
	usage, _ := s.usage()
	if len(usage) != 3 || string(usage[1].Body) != string(w(2)) {
		t.Fatalf("usage %+v", usage)
	}
	ents, _ := s.entitlements()
	if ents[0].free() != 7 {
		t.Fatalf("after A returned: %d free", ents[0].free())
	}
	// Registering again keeps the books.
	s.register("A", []byte("cert A"), t0.Add(time.Hour))
	srvs, _ := s.servers()
	if srvs[0].ResponseSequence != 2 || !srvs[0].Registered.Equal(t0) {
		t.Fatalf("servers %+v", srvs)
	}
}
