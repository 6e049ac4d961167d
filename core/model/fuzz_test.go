package model

import (
	"errors"
	"reflect"
	"testing"

	"github.com/tallyhq/tally/core/hostid"
)

// FuzzParse checks that Parse never panics, that every error is a
// *ParseError with a position, and that a model it accepts survives a round
// trip through String. The seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	devices := []*Device{
		{},
		{
			HostIDs:    []hostid.HostID{{Value: "00:11:22:33:44:55", Type: hostid.Ethernet}},
			Hostname:   "Pune-1",
			HostType:   "VIRTUAL",
			User:       "alice",
			Attributes: map[string]string{"site": "kassel"},
		},
	}
	f.Fuzz(func(t *testing.T, text string) {
		m, err := Parse(text)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 || pe.Col < 1 || pe.Msg == "" {
				t.Fatalf("error %#v is not a positioned *ParseError", err)
			}
			return
		}
		s := m.String()
		back, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(String()) failed: %v\n%s", err, s)
		}
		if s2 := back.String(); s2 != s {
			t.Fatalf("String() changed in a round trip:\n%s\nthen\n%s", s, s2)
		}
		if !reflect.DeepEqual(withoutLines(back), withoutLines(m)) {
			t.Fatalf("Parse(String()) gave a different model:\n%s", s)
		}
		for _, d := range devices {
			a1, r1 := m.Evaluate(d)
			a2, r2 := back.Evaluate(d)
			if a1 != a2 || r1 != r2 {
				t.Fatalf("round trip changed the verdict for %+v: %v %d, then %v %d", d, a1, r1, a2, r2)
			}
			if a1.Kind == Use && m.PoolIndex(a1.Pool) == 0 {
				t.Fatalf("use of pool %q that PoolIndex does not know", a1.Pool)
			}
		}
	})
}
