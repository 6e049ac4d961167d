package model

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
)

// designExample is the model from DESIGN.md section 2, verbatim.
const designExample = `model "sites" {
  partitions {
    partition "pune" { "cad" 1.0 10  "viewer" 2.0 25% }
    partition "kassel" { "cad" 1.0 remainder }
  }
  on hostid("00:11:22:33:44:55", ETHERNET) or hostname("pune-*") { use "pune" }
  on dictionary("site", "kassel") and not hosttype(VIRTUAL) { use "kassel" }
  on any() { accept }        // default pool
}
`

func mustHostID(t *testing.T, value string, typ hostid.Type) hostid.HostID {
	t.Helper()
	h, err := hostid.New(value, typ)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func mustParse(t *testing.T, text string) *Model {
	t.Helper()
	m, err := Parse(text)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, text)
	}
	return m
}

// withoutLines returns a copy of m with every Rule.Line zero, the one field
// that does not survive a round trip through String.
func withoutLines(m *Model) Model {
	c := *m
	c.Rules = append([]Rule(nil), m.Rules...)
	for i := range c.Rules {
		c.Rules[i].Line = 0
	}
	return c
}

func TestParseDesignExample(t *testing.T) {
	got := mustParse(t, designExample)
	want := &Model{
		Name: "sites",
		Pools: []Pool{
			{Name: "pune", Allocations: []Allocation{
				{Feature: "cad", Version: version.MustParse("1.0"), Kind: Absolute, Amount: 10},
				{Feature: "viewer", Version: version.MustParse("2.0"), Kind: Percent, Amount: 25},
			}},
			{Name: "kassel", Allocations: []Allocation{
				{Feature: "cad", Version: version.MustParse("1.0"), Kind: Remainder},
			}},
		},
		Rules: []Rule{
			{
				Condition: Or{Terms: []Expr{
					HostIDMatcher{ID: mustHostID(t, "00:11:22:33:44:55", hostid.Ethernet)},
					HostnameMatcher{Pattern: "pune-*"},
				}},
				Action: Action{Kind: Use, Pool: "pune"},
				Line:   6,
			},
			{
				Condition: And{Terms: []Expr{
					DictionaryMatcher{Key: "site", Value: "kassel"},
					Not{X: HostTypeMatcher{Type: "VIRTUAL"}},
				}},
				Action: Action{Kind: Use, Pool: "kassel"},
				Line:   7,
			},
			{Condition: AnyMatcher{}, Action: Action{Kind: Accept}, Line: 8},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse(design example) =\n%#v\nwant\n%#v", got, want)
	}
	if got.PoolIndex("pune") != 1 || got.PoolIndex("kassel") != 2 || got.PoolIndex("default") != 0 || got.PoolIndex("x") != 0 {
		t.Errorf("PoolIndex: pune=%d kassel=%d default=%d x=%d", got.PoolIndex("pune"), got.PoolIndex("kassel"), got.PoolIndex("default"), got.PoolIndex("x"))
	}
}

func TestParseForms(t *testing.T) {
	tests := []struct {
		name string
		text string
		want Model
	}{
		{
			name: "empty model",
			text: `model "m" {}`,
			want: Model{Name: "m"},
		},
		{
			name: "empty partitions block",
			text: `model "m" { partitions { } }`,
			want: Model{Name: "m"},
		},
		{
			name: "empty partition, comments of every kind, semicolon",
			text: "# hash\nmodel /* block\n comment */ \"m\" { // line\n partitions { partition \"p\" {} }\n on any() { use \"p\"; }\n}",
			want: Model{Name: "m", Pools: []Pool{{Name: "p"}}, Rules: []Rule{
				{Condition: AnyMatcher{}, Action: Action{Kind: Use, Pool: "p"}, Line: 5},
			}},
		},
		{
			name: "version as a string, escapes, zero counts, leading zeros",
			text: `model "a\"b\\c" { partitions { partition "p" { "f" "2022.01" 007 "g" 6.1.3 0% "h" 1 0 } } }`,
			want: Model{Name: `a"b\c`, Pools: []Pool{{Name: "p", Allocations: []Allocation{
				{Feature: "f", Version: version.MustParse("2022.01"), Kind: Absolute, Amount: 7},
				{Feature: "g", Version: version.MustParse("6.1.3"), Kind: Percent, Amount: 0},
				{Feature: "h", Version: version.MustParse("1"), Kind: Absolute, Amount: 0},
			}}}},
		},
		{
			name: "limits of counts and percentages",
			text: `model "m" { partitions { partition "p" { "f" 1.0 1000000000 "g" 1.0 100 % } } }`,
			want: Model{Name: "m", Pools: []Pool{{Name: "p", Allocations: []Allocation{
				{Feature: "f", Version: version.MustParse("1.0"), Kind: Absolute, Amount: 1_000_000_000},
				{Feature: "g", Version: version.MustParse("1.0"), Kind: Percent, Amount: 100},
			}}}},
		},
		{
			name: "percentages of one version across pools may reach 100",
			text: `model "m" { partitions { partition "a" { "f" 1 60% } partition "b" { "f" 1.0 40% "f" 2.0 100% } partition "c" { "f" 1 remainder } } }`,
			want: Model{Name: "m", Pools: []Pool{
				{Name: "a", Allocations: []Allocation{{Feature: "f", Version: version.MustParse("1"), Kind: Percent, Amount: 60}}},
				{Name: "b", Allocations: []Allocation{
					{Feature: "f", Version: version.MustParse("1.0"), Kind: Percent, Amount: 40},
					{Feature: "f", Version: version.MustParse("2.0"), Kind: Percent, Amount: 100},
				}},
				{Name: "c", Allocations: []Allocation{{Feature: "f", Version: version.MustParse("1"), Kind: Remainder}}},
			}},
		},
		{
			name: "precedence: not over and over or",
			text: `model "m" { on user("a") or user("b") and not user("c") { deny } }`,
			want: Model{Name: "m", Rules: []Rule{{
				Condition: Or{Terms: []Expr{
					UserMatcher{User: "a"},
					And{Terms: []Expr{UserMatcher{User: "b"}, Not{X: UserMatcher{User: "c"}}}},
				}},
				Action: Action{Kind: Deny}, Line: 1,
			}}},
		},
		{
			name: "parentheses group, and chains flatten",
			text: `model "m" { on (user("a") or user("b")) and ((user("c") and user("d"))) { deny } }`,
			want: Model{Name: "m", Rules: []Rule{{
				Condition: And{Terms: []Expr{
					Or{Terms: []Expr{UserMatcher{User: "a"}, UserMatcher{User: "b"}}},
					UserMatcher{User: "c"},
					UserMatcher{User: "d"},
				}},
				Action: Action{Kind: Deny}, Line: 1,
			}}},
		},
		{
			name: "or chains flatten through parentheses",
			text: `model "m" { on user("a") or (user("b") or user("c")) { deny } }`,
			want: Model{Name: "m", Rules: []Rule{{
				Condition: Or{Terms: []Expr{UserMatcher{User: "a"}, UserMatcher{User: "b"}, UserMatcher{User: "c"}}},
				Action:    Action{Kind: Deny}, Line: 1,
			}}},
		},
		{
			name: "canonical hostids, any-case type names, lower-cased host name pattern",
			text: `model "m" { on hostid("00-11-22-AA-BB-CC", ethernet) or hostid("{4C4C4544-0035-3010-8030-B4C04F4E4E32}", Uuid) or hostid(" SN 1 ", SERIAL) or hosttype(physical) or hostname("PUNE-[A-C]*") { accept } }`,
			want: Model{Name: "m", Rules: []Rule{{
				Condition: Or{Terms: []Expr{
					HostIDMatcher{ID: hostid.HostID{Value: "00:11:22:aa:bb:cc", Type: hostid.Ethernet}},
					HostIDMatcher{ID: hostid.HostID{Value: "4c4c4544-0035-3010-8030-b4c04f4e4e32", Type: hostid.UUID}},
					HostIDMatcher{ID: hostid.HostID{Value: "SN 1", Type: hostid.Serial}},
					HostTypeMatcher{Type: "PHYSICAL"},
					HostnameMatcher{Pattern: "pune-[a-c]*"},
				}},
				Action: Action{Kind: Accept}, Line: 1,
			}}},
		},
		{
			name: "not not, dictionary glob and empty value",
			text: `model "m" { on not not dictionary("k", "v*") or dictionary("e", "") { accept } }`,
			want: Model{Name: "m", Rules: []Rule{{
				Condition: Or{Terms: []Expr{
					Not{X: Not{X: DictionaryMatcher{Key: "k", Value: "v*"}}},
					DictionaryMatcher{Key: "e", Value: ""},
				}},
				Action: Action{Kind: Accept}, Line: 1,
			}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustParse(t, tt.text)
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("Parse =\n%#v\nwant\n%#v", *got, tt.want)
			}
		})
	}
}

// pools writes a model text whose partitions block holds body.
func pools(body string) string {
	return "model \"m\" {\n  partitions {\n" + body + "  }\n}\n"
}

func TestParseErrors(t *testing.T) {
	huge := strings.Repeat(" ", MaxTextBytes-len(`model "m" {}`)+1)
	tests := []struct {
		name      string
		text      string
		line, col int
		phrase    string
	}{
		{"empty text", "", 1, 1, `unexpected end of text, want "model"`},
		{"upper-case keyword", `MODEL "m" {}`, 1, 1, `unexpected "MODEL", want "model"`},
		{"unexpected token", "model \"m\" {\n  foo\n}", 2, 3, `unexpected "foo", want "partitions", "on" or "}"`},
		{"unexpected token after partitions", "model \"m\" {\n  partitions {}\n  partitions {}\n}", 3, 3, `unexpected "partitions", want "on" or "}"`},
		{"missing brace", `model "m" { on any() { accept }`, 1, 32, `unexpected end of text, want "on" or "}"`},
		{"text after the model", "model \"m\" {}\n}", 2, 1, "after the end of the model"},
		{"unexpected character", `model "m" { on any() & any() { accept } }`, 1, 22, `unexpected character '&'`},
		{"lone slash", `model "m" / {}`, 1, 11, `unexpected character '/'`},
		{"unterminated string", `model "m {}`, 1, 7, "unterminated string"},
		{"unterminated string at newline", "model \"m\" {\n on user(\"bob\n) { deny } }", 2, 10, "unterminated string"},
		{"unterminated string after backslash", `model "m\`, 1, 7, "unterminated string"},
		{"bad escape", `model "a\n" {}`, 1, 9, `bad escape \n`},
		{"control character in string", "model \"a\tb\" {}", 1, 9, "control character U+0009"},
		{"unterminated comment", "model \"m\" {\n /* never\n closed", 2, 2, "unterminated /* comment"},
		{"invalid UTF-8", "model \"m\" {\n # caf\xe9\n}", 2, 7, "not valid UTF-8"},
		{"empty model name", `model "" {}`, 1, 7, "the model name is empty"},
		{"unknown matcher", "model \"m\" {\n  on ip(\"10.0.0.1\") { accept }\n}", 2, 6, `unknown matcher "ip"`},
		{"upper-case matcher", `model "m" { on HOSTNAME("x") { accept } }`, 1, 16, `matchers are lower-case: hostname`},
		{"keyword as matcher", `model "m" { on or { accept } }`, 1, 16, `unknown matcher "or"`},
		{"missing matcher", `model "m" { on { accept } }`, 1, 16, `want a matcher, "not" or "("`},
		{"missing action", `model "m" { on any() { } }`, 1, 24, `want "use", "accept" or "deny"`},
		{"unclosed parenthesis", `model "m" { on (any() { accept } }`, 1, 23, `want "and", "or" or ")"`},
		{"two semicolons", `model "m" { on any() { accept;; } }`, 1, 31, `unexpected ";", want "}"`},
		{"duplicate pool name", pools("    partition \"p\" {}\n    partition \"q\" {}\n    partition \"p\" {}\n"), 5, 15, `duplicate pool name "p" (first defined on line 3)`},
		{"default is reserved", pools("    partition \"default\" {}\n"), 3, 15, `"default" is reserved`},
		{"empty pool name", pools("    partition \"\" {}\n"), 3, 15, "the partition name is empty"},
		{"use of an undefined pool", "model \"m\" {\n  on any() { use \"nowhere\" }\n}", 2, 18, `use of undefined pool "nowhere"`},
		{"use of default", "model \"m\" {\n  on any() { use \"default\" }\n}", 2, 18, `written accept`},
		{"same feature version twice in a pool", pools("    partition \"p\" {\n      \"cad\" 1.0 1\n      \"cad\" 1.0 2\n    }\n"), 5, 7, `pool "p" allocates "cad" 1.0 twice (first on line 4)`},
		{"same version written differently", pools("    partition \"p\" { \"cad\" 1.0 1 \"cad\" 01.0.0 2 }\n"), 3, 33, `allocates "cad" 01.0.0 twice`},
		{"percentages over 100", pools("    partition \"a\" { \"cad\" 1.0 60% }\n    partition \"b\" { \"cad\" 1 41% }\n"), 4, 29, `percentages of "cad" 1 sum to 101%`},
		{"two remainders", pools("    partition \"a\" { \"cad\" 1.0 remainder }\n    partition \"b\" { \"cad\" 1 remainder }\n"), 4, 29, `more than one remainder for "cad" 1 (pool "a" has one already)`},
		{"percentage over 100", pools("    partition \"a\" { \"cad\" 1.0 101% }\n"), 3, 31, "percentage 101% is more than 100"},
		{"count too large", pools("    partition \"a\" { \"cad\" 1.0 1000000001 }\n"), 3, 31, "count 1000000001 is more than 1000000000"},
		{"count far too large", pools("    partition \"a\" { \"cad\" 1.0 99999999999999999999999 }\n"), 3, 31, "is more than 1000000000"},
		{"fractional count", pools("    partition \"a\" { \"cad\" 1.0 2.5 }\n"), 3, 31, "count 2.5 is not a whole number"},
		{"negative count", pools("    partition \"a\" { \"cad\" 1.0 -1 }\n"), 3, 31, "unexpected character '-'"},
		{"missing amount", pools("    partition \"a\" { \"cad\" 1.0 }\n"), 3, 31, `want a count, a percentage or "remainder"`},
		{"invalid version", pools("    partition \"a\" { \"cad\" 1..0 1 }\n"), 3, 27, `invalid version "1..0"`},
		{"missing version", pools("    partition \"a\" { \"cad\" remainder }\n"), 3, 27, "want a version"},
		{"empty feature name", pools("    partition \"a\" { \"\" 1.0 1 }\n"), 3, 21, "the feature name is empty"},
		{"invalid hostid value", `model "m" { on hostid("00:11:22:33:44", ETHERNET) { deny } }`, 1, 23, "invalid hostid value"},
		{"invalid hostid type", `model "m" { on hostid("x", IMEI) { deny } }`, 1, 28, `unknown hostid type "IMEI"`},
		{"hostid type as a string", `model "m" { on hostid("x", "STRING") { deny } }`, 1, 28, "want a hostid type"},
		{"unknown host type", `model "m" { on hosttype(CLOUD) { deny } }`, 1, 25, `unknown host type "CLOUD"`},
		{"invalid host name glob", "model \"m\" {\n  on hostname(\"pune-[\") { deny }\n}", 2, 15, `invalid glob "pune-["`},
		{"invalid dictionary glob", `model "m" { on dictionary("site", "a\\") { deny } }`, 1, 35, `invalid glob "a\\"`},
		{"empty host name pattern", `model "m" { on hostname("") { deny } }`, 1, 25, "the host name pattern is empty"},
		{"empty dictionary key", `model "m" { on dictionary("", "x") { deny } }`, 1, 27, "the dictionary key is empty"},
		{"empty user", `model "m" { on user("") { deny } }`, 1, 21, "the user name is empty"},
		{"any with an argument", `model "m" { on any(1) { deny } }`, 1, 20, `unexpected number 1, want ")"`},
		{"text too long", `model "m" {}` + huge, 1, 1, "model text is 1048577 bytes, at most 1048576"},
		{"nesting too deep with not", "model \"m\" {\n  on " + strings.Repeat("not ", 65) + "any() { deny }\n}", 2, 6 + 64*4, "nested more than 64 deep"},
		{"nesting too deep with parentheses", `model "m" { on ` + strings.Repeat("(", 65) + "any()" + strings.Repeat(")", 65) + " { deny } }", 1, 16 + 64, "nested more than 64 deep"},
		{"too many pools", pools("    partition \"p\" {}\n" + manyPools(MaxPools)), 3 + MaxPools, 5, "more than 1000 partitions"},
		{"too many allocations", pools("    partition \"p\" {\n" + manyAllocations(MaxAllocations+1) + "    }\n"), 4 + MaxAllocations, 7, "more than 10000 allocations"},
		{"too many rules", "model \"m\" {\n" + strings.Repeat("  on any() { accept }\n", MaxRules+1) + "}\n", 2 + MaxRules, 3, "more than 10000 rules"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.text)
			if err == nil {
				t.Fatalf("Parse succeeded, want an error:\n%s", m)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is a %T, want *ParseError", err, err)
			}
			if pe.Line != tt.line || pe.Col != tt.col || !strings.Contains(pe.Msg, tt.phrase) {
				t.Errorf("error = %q\nwant line %d, column %d, containing %q", err, tt.line, tt.col, tt.phrase)
			}
			if want := fmt.Sprintf("line %d, column %d: %s", pe.Line, pe.Col, pe.Msg); err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
		})
	}
}

// manyPools writes n partitions named q0, q1, ... one per line.
func manyPools(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "    partition \"q%d\" {}\n", i)
	}
	return b.String()
}

// manyAllocations writes n allocations of distinct features, one per line.
func manyAllocations(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "      \"f%d\" 1.0 1\n", i)
	}
	return b.String()
}

func TestParseAtTheLimits(t *testing.T) {
	texts := map[string]string{
		"pools":       pools(manyPools(MaxPools)),
		"allocations": pools("    partition \"p\" {\n" + manyAllocations(MaxAllocations) + "    }\n"),
		"rules":       "model \"m\" {\n" + strings.Repeat("  on any() { accept }\n", MaxRules) + "}\n",
		"nesting":     `model "m" { on ` + strings.Repeat("not (", MaxNesting/2) + "any()" + strings.Repeat(")", MaxNesting/2) + " { deny } }",
	}
	for name, text := range texts {
		if _, err := Parse(text); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParseCanonicalFormTooLong(t *testing.T) {
	// Twelve-digit MACs grow by five bytes each in canonical form, so text
	// just under the limit gives a canonical form over it.
	term := `hostid("001122334455",ETHERNET)or `
	n := (MaxTextBytes - 100) / len(term)
	text := `model "m"{on ` + strings.Repeat(term, n) + `any(){deny}}`
	if len(text) > MaxTextBytes {
		t.Fatalf("test text is %d bytes", len(text))
	}
	_, err := Parse(text)
	var pe *ParseError
	if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "in canonical form") {
		t.Fatalf("Parse error = %v, want one about the canonical form", err)
	}
}

func TestParseDeepNestingIsQuick(t *testing.T) {
	for _, text := range []string{
		`model "m" { on ` + strings.Repeat("(", 100_000),
		`model "m" { on ` + strings.Repeat("not ", 100_000) + "any() { deny } }",
		`model "m" { on ` + strings.Repeat("(not ", 100_000),
	} {
		start := time.Now()
		_, err := Parse(text)
		var pe *ParseError
		if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "nested more than 64 deep") {
			t.Errorf("Parse error = %v, want the nesting error", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Parse took %v", d)
		}
	}
}
