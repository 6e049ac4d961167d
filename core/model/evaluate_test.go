package model

import (
	"testing"

	"github.com/tallyhq/tally/core/hostid"
)

func TestEvaluateDesignExample(t *testing.T) {
	m := mustParse(t, designExample)
	mac := mustHostID(t, "00:11:22:33:44:55", hostid.Ethernet)
	tests := []struct {
		name   string
		device Device
		want   Action
		rule   int
	}{
		{"by MAC", Device{HostIDs: []hostid.HostID{mac}, Hostname: "kassel-1"}, Action{Kind: Use, Pool: "pune"}, 0},
		{"by host name", Device{Hostname: "pune-cad-07"}, Action{Kind: Use, Pool: "pune"}, 0},
		{"host name in upper case", Device{Hostname: "PUNE-CAD-07"}, Action{Kind: Use, Pool: "pune"}, 0},
		{"physical in kassel", Device{Hostname: "k1", HostType: "PHYSICAL", Attributes: map[string]string{"site": "kassel"}}, Action{Kind: Use, Pool: "kassel"}, 1},
		{"virtual in kassel falls through", Device{Hostname: "k1", HostType: "VIRTUAL", Attributes: map[string]string{"site": "kassel"}}, Action{Kind: Accept}, 2},
		{"first match wins", Device{Hostname: "pune-1", Attributes: map[string]string{"site": "kassel"}}, Action{Kind: Use, Pool: "pune"}, 0},
		{"nothing sent", Device{}, Action{Kind: Accept}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rule := m.Evaluate(&tt.device)
			if got != tt.want || rule != tt.rule {
				t.Errorf("Evaluate = %v, rule %d; want %v, rule %d", got, rule, tt.want, tt.rule)
			}
		})
	}
}

func TestEvaluateNoMatchAccepts(t *testing.T) {
	m := mustParse(t, `model "m" { partitions { partition "p" {} } on user("alice") { use "p" } on user("bob") { deny } }`)
	for _, d := range []*Device{{User: "carol"}, {}, nil} {
		if got, rule := m.Evaluate(d); got != (Action{Kind: Accept}) || rule != -1 {
			t.Errorf("Evaluate(%+v) = %v, %d; want accept, -1", d, got, rule)
		}
	}
	if got, rule := (&Model{}).Evaluate(&Device{}); got.Kind != Accept || rule != -1 {
		t.Errorf("a model without rules gave %v, %d", got, rule)
	}
	if got, rule := m.Evaluate(&Device{User: "bob"}); got.Kind != Deny || rule != 1 {
		t.Errorf("bob: %v, %d; want deny by rule 1", got, rule)
	}
}

// TestMatchers checks each matcher, and and/or/not, against devices.
func TestMatchers(t *testing.T) {
	mac := mustHostID(t, "00:11:22:33:44:55", hostid.Ethernet)
	uuid := mustHostID(t, "4c4c4544-0035-3010-8030-b4c04f4e4e32", hostid.UUID)
	serial := mustHostID(t, "SN-1", hostid.Serial)
	tests := []struct {
		cond   string
		device Device
		want   bool
	}{
		{`any()`, Device{}, true},

		{`hostid("00-11-22-33-44-55", ETHERNET)`, Device{HostIDs: []hostid.HostID{mac}}, true},
		{`hostid("001122334455", ETHERNET)`, Device{HostIDs: []hostid.HostID{serial, mac}}, true},
		{`hostid("00:11:22:33:44:56", ETHERNET)`, Device{HostIDs: []hostid.HostID{mac}}, false},
		{`hostid("{4C4C4544-0035-3010-8030-B4C04F4E4E32}", UUID)`, Device{HostIDs: []hostid.HostID{uuid}}, true},
		{`hostid("SN-1", SERIAL)`, Device{HostIDs: []hostid.HostID{serial}}, true},
		{`hostid("SN-1", STRING)`, Device{HostIDs: []hostid.HostID{serial}}, false}, // the type counts
		{`hostid("sn-1", SERIAL)`, Device{HostIDs: []hostid.HostID{serial}}, false},
		{`hostid("00:11:22:33:44:55", ETHERNET)`, Device{}, false},

		{`hostname("pune-*")`, Device{Hostname: "pune-cad-07"}, true},
		{`hostname("pune-*")`, Device{Hostname: "Pune-CAD-07"}, true},
		{`hostname("PUNE-*")`, Device{Hostname: "pune-cad-07"}, true},
		{`hostname("pune-?")`, Device{Hostname: "pune-12"}, false},
		{`hostname("pune-[0-9][0-9]")`, Device{Hostname: "PUNE-12"}, true},
		{`hostname("pune-*")`, Device{Hostname: "kassel-pune-1"}, false},
		{`hostname("pune")`, Device{Hostname: "pune.example.com"}, false},
		{`hostname("*")`, Device{}, true},

		{`hosttype(VIRTUAL)`, Device{HostType: "VIRTUAL"}, true},
		{`hosttype(virtual)`, Device{HostType: "virtual"}, true},
		{`hosttype(VIRTUAL)`, Device{HostType: "PHYSICAL"}, false},
		{`hosttype(UNKNOWN)`, Device{}, true},
		{`hosttype(UNKNOWN)`, Device{HostType: "UNKNOWN"}, true},
		{`hosttype(PHYSICAL)`, Device{}, false},

		{`dictionary("site", "kassel")`, Device{Attributes: map[string]string{"site": "kassel"}}, true},
		{`dictionary("site", "kassel")`, Device{Attributes: map[string]string{"site": "Kassel"}}, false},
		{`dictionary("site", "kassel")`, Device{Attributes: map[string]string{"Site": "kassel"}}, false},
		{`dictionary("site", "kassel")`, Device{Attributes: map[string]string{"site": "kassel-2"}}, false},
		{`dictionary("site", "kas*")`, Device{Attributes: map[string]string{"site": "kassel-2"}}, true},
		{`dictionary("site", "\\*")`, Device{Attributes: map[string]string{"site": "*"}}, true},
		{`dictionary("site", "\\*")`, Device{Attributes: map[string]string{"site": "x"}}, false},
		{`dictionary("site", "")`, Device{Attributes: map[string]string{"site": ""}}, true},
		{`dictionary("site", "")`, Device{}, false},
		{`dictionary("site", "*")`, Device{Attributes: map[string]string{"other": "x"}}, false},

		{`user("alice")`, Device{User: "alice"}, true},
		{`user("alice")`, Device{User: "Alice"}, false},
		{`user("alice")`, Device{}, false},

		{`not user("alice")`, Device{User: "bob"}, true},
		{`not not user("alice")`, Device{User: "alice"}, true},
		{`user("a") and user("b")`, Device{User: "a"}, false},
		{`user("a") or user("b")`, Device{User: "b"}, true},
		// and binds tighter than or: a or (b and c).
		{`user("a") or user("b") and any()`, Device{User: "a"}, true},
		{`(user("a") or user("b")) and hosttype(VIRTUAL)`, Device{User: "a"}, false},
		// not binds tighter than and: (not a) and b.
		{`not user("a") and any()`, Device{User: "b"}, true},
		{`not (user("b") and any())`, Device{User: "b"}, false},
		{`not user("b") or any()`, Device{User: "b"}, true},
		{`not (user("b") or any())`, Device{User: "b"}, false},
	}
	for _, tt := range tests {
		m := mustParse(t, `model "m" { on `+tt.cond+` { deny } }`)
		got, _ := m.Evaluate(&tt.device)
		if (got.Kind == Deny) != tt.want {
			t.Errorf("%s on %+v = %v, want %v", tt.cond, tt.device, got.Kind == Deny, tt.want)
		}
	}
}

func TestEvaluateDoesNotAllocate(t *testing.T) {
	m := mustParse(t, designExample)
	d := &Device{
		HostIDs:    []hostid.HostID{mustHostID(t, "SN-1", hostid.Serial)},
		Hostname:   "kassel-7",
		HostType:   "PHYSICAL",
		Attributes: map[string]string{"site": "kassel"},
	}
	allocs := testing.AllocsPerRun(100, func() {
		if a, _ := m.Evaluate(d); a.Pool != "kassel" {
			t.Fatalf("Evaluate gave %v", a)
		}
	})
	if allocs != 0 {
		t.Errorf("Evaluate allocates %v times per call", allocs)
	}
}
