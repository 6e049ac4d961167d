package model

import (
	"path"
	"strings"

	"github.com/tallyhq/tally/core/hostid"
)

// Expr is the condition of a rule: a matcher, or matchers joined by and, or
// and not. String writes it in canonical form, with the parentheses the
// precedence (not, then and, then or) needs and no others.
type Expr interface {
	Match(d *Device) bool
	String() string
}

// Compile-time checks that every node is an Expr.
var (
	_ Expr = Or{}
	_ Expr = And{}
	_ Expr = Not{}
	_ Expr = HostIDMatcher{}
	_ Expr = HostnameMatcher{}
	_ Expr = HostTypeMatcher{}
	_ Expr = DictionaryMatcher{}
	_ Expr = UserMatcher{}
	_ Expr = AnyMatcher{}
)

// Or matches when any of its terms does. Parse gives it at least two terms,
// none of them an Or: "a or (b or c)" becomes one Or of a, b and c.
type Or struct{ Terms []Expr }

// And matches when all of its terms do. Parse gives it at least two terms,
// none of them an And.
type And struct{ Terms []Expr }

// Not matches when X does not.
type Not struct{ X Expr }

// HostIDMatcher matches a device that has ID among its HostIDs. ID is in
// canonical form, so "00-11-22-33-44-55" written in the model matches the
// device's "00:11:22:33:44:55".
type HostIDMatcher struct{ ID hostid.HostID }

// HostnameMatcher matches a device whose host name, lower-cased, matches
// Pattern, a lower-case glob in path.Match syntax.
type HostnameMatcher struct{ Pattern string }

// HostTypeMatcher matches a device of Type: "PHYSICAL", "VIRTUAL" or
// "UNKNOWN".
type HostTypeMatcher struct{ Type string }

// DictionaryMatcher matches a device that sent the attribute Key with a value
// that matches Value, a glob in path.Match syntax compared case-sensitively.
// A Value without *, ?, [ or \ matches only itself.
type DictionaryMatcher struct{ Key, Value string }

// UserMatcher matches a device whose user is exactly User.
type UserMatcher struct{ User string }

// AnyMatcher matches every device.
type AnyMatcher struct{}

// Match reports whether any term matches d.
func (e Or) Match(d *Device) bool {
	for _, t := range e.Terms {
		if t.Match(d) {
			return true
		}
	}
	return false
}

// Match reports whether every term matches d.
func (e And) Match(d *Device) bool {
	for _, t := range e.Terms {
		if !t.Match(d) {
			return false
		}
	}
	return true
}

// Match reports whether X does not match d.
func (e Not) Match(d *Device) bool { return !e.X.Match(d) }

// Match reports whether d has the HostID.
func (e HostIDMatcher) Match(d *Device) bool {
	for _, h := range d.HostIDs {
		if h == e.ID {
			return true
		}
	}
	return false
}

// Match reports whether d's host name matches the pattern, ignoring case.
func (e HostnameMatcher) Match(d *Device) bool {
	ok, _ := path.Match(e.Pattern, strings.ToLower(d.Hostname))
	return ok
}

// Match reports whether d is of the host type.
func (e HostTypeMatcher) Match(d *Device) bool {
	t := d.HostType
	if t == "" {
		t = "UNKNOWN"
	}
	return strings.EqualFold(t, e.Type)
}

// Match reports whether d sent the key with a value matching the pattern.
func (e DictionaryMatcher) Match(d *Device) bool {
	v, ok := d.Attributes[e.Key]
	if !ok {
		return false
	}
	ok, _ = path.Match(e.Value, v)
	return ok
}

// Match reports whether d's user is the one named.
func (e UserMatcher) Match(d *Device) bool { return d.User == e.User }

// Match is always true.
func (AnyMatcher) Match(*Device) bool { return true }

func (e Or) String() string                { return exprString(e) }
func (e And) String() string               { return exprString(e) }
func (e Not) String() string               { return exprString(e) }
func (e HostIDMatcher) String() string     { return exprString(e) }
func (e HostnameMatcher) String() string   { return exprString(e) }
func (e HostTypeMatcher) String() string   { return exprString(e) }
func (e DictionaryMatcher) String() string { return exprString(e) }
func (e UserMatcher) String() string       { return exprString(e) }
func (AnyMatcher) String() string          { return "any()" }

func exprString(e Expr) string {
	var b strings.Builder
	writeExpr(&b, e)
	return b.String()
}

// writeExpr writes e in canonical form. A term is put in parentheses when it
// binds more loosely than where it stands, or as loosely as its parent (an
// And within an And): only a model built by hand has those.
func writeExpr(b *strings.Builder, e Expr) {
	switch e := e.(type) {
	case Or:
		writeTerms(b, e.Terms, " or ", precOr)
	case And:
		writeTerms(b, e.Terms, " and ", precAnd)
	case Not:
		b.WriteString("not ")
		writeTerm(b, e.X, precAnd)
	case HostIDMatcher:
		b.WriteString("hostid(")
		b.WriteString(quote(e.ID.Value))
		b.WriteString(", ")
		b.WriteString(e.ID.Type.String())
		b.WriteString(")")
	case HostnameMatcher:
		b.WriteString("hostname(")
		b.WriteString(quote(e.Pattern))
		b.WriteString(")")
	case HostTypeMatcher:
		b.WriteString("hosttype(")
		b.WriteString(e.Type)
		b.WriteString(")")
	case DictionaryMatcher:
		b.WriteString("dictionary(")
		b.WriteString(quote(e.Key))
		b.WriteString(", ")
		b.WriteString(quote(e.Value))
		b.WriteString(")")
	case UserMatcher:
		b.WriteString("user(")
		b.WriteString(quote(e.User))
		b.WriteString(")")
	case AnyMatcher:
		b.WriteString("any()")
	case nil:
		b.WriteString("<nil>")
	default:
		b.WriteString(e.String())
	}
}

// Precedences, loosest first.
const (
	precOr = iota + 1
	precAnd
	precUnary
)

func precedence(e Expr) int {
	switch e.(type) {
	case Or:
		return precOr
	case And:
		return precAnd
	}
	return precUnary
}

func writeTerms(b *strings.Builder, terms []Expr, sep string, prec int) {
	for i, t := range terms {
		if i > 0 {
			b.WriteString(sep)
		}
		writeTerm(b, t, prec)
	}
}

// writeTerm writes t, in parentheses when it binds no tighter than prec.
func writeTerm(b *strings.Builder, t Expr, prec int) {
	if precedence(t) > prec {
		writeExpr(b, t)
		return
	}
	b.WriteString("(")
	writeExpr(b, t)
	b.WriteString(")")
}

// quote writes s as a string literal of the language: only " and \ are
// escaped, since Parse admits no control characters in strings.
func quote(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return `"` + s + `"`
	}
	var b strings.Builder
	b.Grow(len(s) + 4)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
