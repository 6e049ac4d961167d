package rights_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/rights"
	"github.com/tallyhq/tally/core/version"
)

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseLinesAccepts(t *testing.T) {
	v := version.MustParse
	cases := []struct {
		name, text string
		want       []core.FeatureLine
	}{
		{"empty", "", nil},
		{"only comments and blanks", "# rights for acme\n\n   \t\n  # indented comment\n", nil},
		{"minimal", "cad 1.0 10", []core.FeatureLine{{Name: "cad", Version: v("1.0"), Count: 10}}},
		{"version text kept", "sim 2022.01 007", []core.FeatureLine{{Name: "sim", Version: v("2022.01"), Count: 7}}},
		{"every option", `viewer 2.0 25 start=2025-01-01 expiry=2025-12-31 overdraft=5 metered undo=1h30m vendor="edition=pro" id=v-1`,
			[]core.FeatureLine{{ID: "v-1", Name: "viewer", Version: v("2.0"), Count: 25, Start: day("2025-01-01"), Expiry: day("2026-01-01"),
				Overdraft: 5, Metered: true, UndoInterval: 90 * time.Minute, VendorString: "edition=pro"}}},
		{"options in any order", "x 1 1 id=a metered reusable expiry=permanent",
			[]core.FeatureLine{{ID: "a", Name: "x", Version: v("1"), Count: 1, Metered: true, Reusable: true}}},
		{"uncounted", "reader 1.0 0 uncounted", []core.FeatureLine{{Name: "reader", Version: v("1.0"), Uncounted: true}}},
		{"overdraft only", "burst 1.0 0 overdraft=3", []core.FeatureLine{{Name: "burst", Version: v("1.0"), Overdraft: 3}}},
		{"one day", "day 1 1 start=2025-05-05 expiry=2025-05-05",
			[]core.FeatureLine{{Name: "day", Version: v("1"), Count: 1, Start: day("2025-05-05"), Expiry: day("2025-05-06")}}},
		{"largest count", "big 1 1000000000 overdraft=1000000000",
			[]core.FeatureLine{{Name: "big", Version: v("1"), Count: core.MaxCount, Overdraft: core.MaxCount}}},
		{"quoted vendor with escapes, spaces and a hash", `cad 1 1 vendor="say \"hi\" # not a comment \\ ok"  # a comment`,
			[]core.FeatureLine{{Name: "cad", Version: v("1"), Count: 1, VendorString: `say "hi" # not a comment \ ok`}}},
		{"empty vendor", `cad 1 1 vendor=""`, []core.FeatureLine{{Name: "cad", Version: v("1"), Count: 1}}},
		{"trailing comment and CRLF", "cad 1 2 # two seats\r\nviewer 1 3\r\n",
			[]core.FeatureLine{{Name: "cad", Version: v("1"), Count: 2}, {Name: "viewer", Version: v("1"), Count: 3}}},
		{"tabs", "cad\t1\t2\tmetered", []core.FeatureLine{{Name: "cad", Version: v("1"), Count: 2, Metered: true}}},
		{"unicode name", "zeichnung-ä 1 1", []core.FeatureLine{{Name: "zeichnung-ä", Version: v("1"), Count: 1}}},
		{"same feature twice", "cad 1 1\ncad 1 1", []core.FeatureLine{{Name: "cad", Version: v("1"), Count: 1}, {Name: "cad", Version: v("1"), Count: 1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := rights.ParseLines([]byte(c.text))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got\n%+v\nwant\n%+v", got, c.want)
			}
		})
	}
}

func TestParseLinesRefuses(t *testing.T) {
	cases := []struct {
		name, text, want string // want: the start of the error and a part of it
		sentinel         error
	}{
		{"too few fields", "cad 1.0", "line 1: ", core.ErrInvalidFeature},
		{"bad version", "# c\ncad one 1", "line 2: ", core.ErrInvalidFeature},
		{"negative count", "cad 1 -1", "line 1: ", core.ErrInvalidCount},
		{"plus sign", "cad 1 +1", "line 1: ", core.ErrInvalidCount},
		{"count too large", "cad 1 1000000001", "line 1: ", core.ErrInvalidCount},
		{"count overflows", "cad 1 99999999999999999999", "line 1: ", core.ErrInvalidCount},
		{"count not a number", "cad 1 ten", "line 1: ", core.ErrInvalidCount},
		{"overdraft too large", "cad 1 1 overdraft=1000000001", "line 1: ", core.ErrInvalidCount},
		{"overdraft empty", "cad 1 1 overdraft=", "line 1: ", core.ErrInvalidCount},
		{"count 0 counted", "cad 1 0", "line 1: ", core.ErrInvalidCount},
		{"uncounted with count", "cad 1 5 uncounted", "line 1: ", core.ErrInvalidFeature},
		{"uncounted with overdraft", "cad 1 0 uncounted overdraft=1", "line 1: ", core.ErrInvalidFeature},
		{"bad date", "cad 1 1 expiry=2025-02-30", "line 1: ", core.ErrInvalidFeature},
		{"date with time", "cad 1 1 start=2025-02-01T00:00:00Z", "line 1: ", core.ErrInvalidFeature},
		{"year too early", "cad 1 1 start=1969-12-31", "line 1: ", core.ErrInvalidFeature},
		{"year too late", "cad 1 1 expiry=9999-12-31", "line 1: ", core.ErrInvalidFeature},
		{"expires before start", "cad 1 1 start=2025-02-02 expiry=2025-02-01", "line 1: ", core.ErrInvalidFeature},
		{"bad duration", "cad 1 1 metered undo=soon", "line 1: ", core.ErrInvalidFeature},
		{"negative duration", "cad 1 1 metered undo=-1m", "line 1: ", core.ErrInvalidFeature},
		{"duration over a year", "cad 1 1 metered undo=8761h", "line 1: ", core.ErrInvalidFeature},
		{"undo without metered", "cad 1 1 undo=1m", "line 1: ", core.ErrInvalidFeature},
		{"undo on reusable", "cad 1 1 metered reusable undo=1m", "line 1: ", core.ErrInvalidFeature},
		{"reusable without metered", "cad 1 1 reusable", "line 1: ", core.ErrInvalidFeature},
		{"unknown option", "cad 1 1 colour=red", "line 1: ", core.ErrInvalidFeature},
		{"unknown flag", "cad 1 1 floating", "line 1: ", core.ErrInvalidFeature},
		{"flag with value", "cad 1 1 metered=yes", "line 1: ", core.ErrInvalidFeature},
		{"option without value", "cad 1 1 expiry", "line 1: ", core.ErrInvalidFeature},
		{"option twice", "cad 1 1 overdraft=1 overdraft=2", "line 1: ", core.ErrInvalidFeature},
		{"unterminated quote", `cad 1 1 vendor="abc`, "line 1: ", core.ErrInvalidFeature},
		{"bad escape", `cad 1 1 vendor="a\nb"`, "line 1: ", core.ErrInvalidFeature},
		{"backslash at the end", `cad 1 1 vendor="a\`, "line 1: ", core.ErrInvalidFeature},
		{"vendor too long", `cad 1 1 vendor=` + strings.Repeat("v", core.MaxVendorLen+1), "line 1: ", core.ErrInvalidFeature},
		{"name too long", strings.Repeat("n", core.MaxNameLen+1) + " 1 1", "line 1: ", core.ErrInvalidFeature},
		{"name with a quote", `"a\"b" 1 1`, "line 1: ", core.ErrInvalidFeature},
		{"name with a space", `"a b" 1 1`, "line 1: ", core.ErrInvalidFeature},
		{"empty name", `"" 1 1`, "line 1: ", core.ErrInvalidFeature},
		{"name with a control character", "a\x01b 1 1", "line 1: ", core.ErrInvalidFeature},
		{"not UTF-8", "caf\xe9 1 1", "line 1: ", core.ErrInvalidFeature},
		{"empty id", `cad 1 1 id=""`, "line 1: ", core.ErrInvalidFeature},
		{"id with a hash", `cad 1 1 id="a#1"`, "line 1: ", core.ErrInvalidFeature},
		{"id too long", "cad 1 1 id=" + strings.Repeat("i", 129), "line 1: ", core.ErrInvalidFeature},
		{"id twice", "cad 1 1 id=x\n\nviewer 1 1 id=x", "line 3: ", core.ErrInvalidFeature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := rights.ParseLines([]byte(c.text))
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			if !strings.HasPrefix(err.Error(), c.want) || !errors.Is(err, c.sentinel) {
				t.Fatalf("error %q, want it to start with %q and wrap %q", err, c.want, c.sentinel)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is more than one line: %q", err)
			}
		})
	}
}

func TestParseLinesTooMany(t *testing.T) {
	text := strings.Repeat("cad 1 1\n", core.MaxLinesPerSet)
	if lines, err := rights.ParseLines([]byte(text)); err != nil || len(lines) != core.MaxLinesPerSet {
		t.Fatalf("%d lines: %v", len(lines), err)
	}
	_, err := rights.ParseLines([]byte(text + "# comment\ncad 1 1\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "line 100002: ") {
		t.Fatalf("one line too many: %v", err)
	}
}
