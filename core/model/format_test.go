package model

import (
	"reflect"
	"testing"

	"github.com/tallyhq/tally/core/hostid"
)

func TestStringDesignExample(t *testing.T) {
	want := `model "sites" {
  partitions {
    partition "pune" {
      "cad" 1.0 10
      "viewer" 2.0 25%
    }
    partition "kassel" {
      "cad" 1.0 remainder
    }
  }
  on hostid("00:11:22:33:44:55", ETHERNET) or hostname("pune-*") { use "pune" }
  on dictionary("site", "kassel") and not hosttype(VIRTUAL) { use "kassel" }
  on any() { accept }
}
`
	if got := mustParse(t, designExample).String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
}

// checkRoundTrip asserts that Parse(m.String()) gives an equal model with
// the same String, and returns that String.
func checkRoundTrip(t *testing.T, m *Model) string {
	t.Helper()
	s := m.String()
	back, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(String()) failed: %v\n%s", err, s)
	}
	if got, want := withoutLines(back), withoutLines(m); !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse(String()) =\n%#v\nwant\n%#v\ntext:\n%s", got, want, s)
	}
	if s2 := back.String(); s2 != s {
		t.Fatalf("String() changed in a round trip:\n%s\nthen\n%s", s, s2)
	}
	return s
}

func TestStringRoundTrip(t *testing.T) {
	tests := []struct {
		text, canonical string // canonical "" when only the round trip is checked
	}{
		{text: designExample},
		{text: `model "m" {}`, canonical: "model \"m\" {\n}\n"},
		{text: `model "m" { partitions { partition "p" {} } on any() { use "p"; } }`,
			canonical: "model \"m\" {\n  partitions {\n    partition \"p\" {}\n  }\n  on any() { use \"p\" }\n}\n"},
		{text: `model "q\"\\" { partitions { partition "p\"" { "f\\" "2022.01" 007 "g" 1 100 % } } }`,
			canonical: "model \"q\\\"\\\\\" {\n  partitions {\n    partition \"p\\\"\" {\n      \"f\\\\\" 2022.01 7\n      \"g\" 1 100%\n    }\n  }\n}\n"},
		{text: `model "m" { on ((user("a"))) { deny } }`, canonical: "model \"m\" {\n  on user(\"a\") { deny }\n}\n"},
		{text: `model "m" { on (user("a") or user("b")) and not (user("c") and user("d")) or not not any() { deny } }`,
			canonical: "model \"m\" {\n  on (user(\"a\") or user(\"b\")) and not (user(\"c\") and user(\"d\")) or not not any() { deny }\n}\n"},
		{text: `model "m" { on user("a") or (user("b") or (user("c") and (user("d") and user("e")))) { deny } }`,
			canonical: "model \"m\" {\n  on user(\"a\") or user(\"b\") or user(\"c\") and user(\"d\") and user(\"e\") { deny }\n}\n"},
		{text: `model "m" { on hostid("00-11-22-AA-BB-CC", ethernet) and hostname("PUNE-*") and hosttype(virtual) and dictionary("k", "v\\*") { accept } }`,
			canonical: "model \"m\" {\n  on hostid(\"00:11:22:aa:bb:cc\", ETHERNET) and hostname(\"pune-*\") and hosttype(VIRTUAL) and dictionary(\"k\", \"v\\\\*\") { accept }\n}\n"},
		{text: "model \"ünï\" { on user(\"日本\") { deny } }"},
	}
	for _, tt := range tests {
		s := checkRoundTrip(t, mustParse(t, tt.text))
		if tt.canonical != "" && s != tt.canonical {
			t.Errorf("String() of %s =\n%s\nwant\n%s", tt.text, s, tt.canonical)
		}
	}
}

// TestStringOfBuiltModel checks that a model built by hand, with nestings
// Parse never makes, still prints with the parentheses it needs.
func TestStringOfBuiltModel(t *testing.T) {
	a, b, c := UserMatcher{User: "a"}, UserMatcher{User: "b"}, UserMatcher{User: "c"}
	tests := []struct {
		expr Expr
		want string
	}{
		{And{Terms: []Expr{a, And{Terms: []Expr{b, c}}}}, `user("a") and (user("b") and user("c"))`},
		{Or{Terms: []Expr{Or{Terms: []Expr{a, b}}, c}}, `(user("a") or user("b")) or user("c")`},
		{Not{X: Or{Terms: []Expr{a, b}}}, `not (user("a") or user("b"))`},
		{HostIDMatcher{ID: hostid.HostID{Value: "x", Type: hostid.User}}, `hostid("x", USER)`},
	}
	for _, tt := range tests {
		if got := tt.expr.String(); got != tt.want {
			t.Errorf("String() = %s, want %s", got, tt.want)
		}
	}
}
