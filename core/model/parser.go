package model

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tallyhq/tally/core/hostid"
	"github.com/tallyhq/tally/core/version"
)

// ParseError is a mistake in a model text: its 1-based line and column (in
// characters, a tab counting one) and what is wrong.
type ParseError struct {
	Line, Col int
	Msg       string
}

// Error writes "line L, column C: message".
func (e *ParseError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Col, e.Msg)
}

// Parse reads a model text and checks it. Every error is a *ParseError.
func Parse(text string) (*Model, error) {
	if len(text) > MaxTextBytes {
		return nil, &ParseError{Line: 1, Col: 1, Msg: fmt.Sprintf("model text is %d bytes, at most %d", len(text), MaxTextBytes)}
	}
	if !utf8.ValidString(text) {
		return nil, invalidUTF8(text)
	}
	p := &parser{lex: newLexer(text)}
	m, err := p.parseModel()
	if err != nil {
		return nil, err
	}
	// The canonical form may be longer than the text (indentation,
	// canonical hostids); refuse a model whose canonical form Parse would
	// refuse, so that Parse(m.String()) always succeeds.
	if n := len(m.String()); n > MaxTextBytes {
		return nil, &ParseError{Line: 1, Col: 1, Msg: fmt.Sprintf("model is %d bytes in canonical form, at most %d", n, MaxTextBytes)}
	}
	return m, nil
}

// invalidUTF8 points at the first byte of text that is not UTF-8.
func invalidUTF8(text string) *ParseError {
	line, col := 1, 1
	for i, r := range text {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(text[i:]); n == 1 {
				break
			}
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return &ParseError{Line: line, Col: col, Msg: "text is not valid UTF-8"}
}

// allocKey names a feature version; ver is the version in a normal form, so
// that versions equal under version.Compare share a key.
type allocKey struct{ feature, ver string }

// allocTotals is what all pools together take of one feature version.
type allocTotals struct {
	percent       int64
	remainderPool string
}

type parser struct {
	lex   *lexer
	tok   token
	depth int // parentheses and nots around the current expression

	model     Model
	poolLines map[string]int // pool name → line of its definition
	allocs    int
	totals    map[allocKey]*allocTotals
}

func (p *parser) errorf(t token, format string, args ...any) *ParseError {
	return &ParseError{Line: t.line, Col: t.col, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) unexpected(want string) *ParseError {
	return p.errorf(p.tok, "unexpected %s, want %s", p.tok.describe(), want)
}

func (p *parser) advance() *ParseError {
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

// isKeyword reports whether the current token is the keyword kw.
func (p *parser) isKeyword(kw string) bool { return p.tok.kind == tokIdent && p.tok.text == kw }

// expect consumes a token of kind k and returns it; want describes it.
func (p *parser) expect(k tokenKind, want string) (token, *ParseError) {
	t := p.tok
	if t.kind != k {
		return t, p.unexpected(want)
	}
	return t, p.advance()
}

func (p *parser) expectKeyword(kw string) (token, *ParseError) {
	t := p.tok
	if !p.isKeyword(kw) {
		return t, p.unexpected(strconv.Quote(kw))
	}
	return t, p.advance()
}

// expectName consumes a non-empty string; what names it for errors.
func (p *parser) expectName(what string) (token, *ParseError) {
	t, err := p.expect(tokString, what+" (a string)")
	if err != nil {
		return t, err
	}
	if t.text == "" {
		return t, p.errorf(t, "%s is empty", what)
	}
	return t, nil
}

// parseModel reads: 'model' STRING '{' [partitions] {rule} '}' EOF.
func (p *parser) parseModel() (*Model, *ParseError) {
	if err := p.advance(); err != nil {
		return nil, err
	}
	if _, err := p.expectKeyword("model"); err != nil {
		return nil, err
	}
	name, err := p.expectName("the model name")
	if err != nil {
		return nil, err
	}
	p.model.Name = name.text
	if _, err := p.expect(tokLBrace, `"{"`); err != nil {
		return nil, err
	}
	want := `"partitions", "on" or "}"`
	if p.isKeyword("partitions") {
		if err := p.parsePartitions(); err != nil {
			return nil, err
		}
		want = `"on" or "}"`
	}
	for p.isKeyword("on") {
		if err := p.parseRule(); err != nil {
			return nil, err
		}
		want = `"on" or "}"`
	}
	if _, err := p.expect(tokRBrace, want); err != nil {
		return nil, err
	}
	if p.tok.kind != tokEOF {
		return nil, p.errorf(p.tok, "unexpected %s after the end of the model", p.tok.describe())
	}
	return &p.model, nil
}

// parsePartitions reads: 'partitions' '{' {partition} '}'.
func (p *parser) parsePartitions() *ParseError {
	if err := p.advance(); err != nil {
		return err
	}
	if _, err := p.expect(tokLBrace, `"{"`); err != nil {
		return err
	}
	p.poolLines = make(map[string]int)
	p.totals = make(map[allocKey]*allocTotals)
	for p.isKeyword("partition") {
		if err := p.parsePartition(); err != nil {
			return err
		}
	}
	_, err := p.expect(tokRBrace, `"partition" or "}"`)
	return err
}

// parsePartition reads: 'partition' STRING '{' {allocation} '}'.
func (p *parser) parsePartition() *ParseError {
	if len(p.model.Pools) == MaxPools {
		return p.errorf(p.tok, "more than %d partitions", MaxPools)
	}
	if err := p.advance(); err != nil {
		return err
	}
	name, err := p.expectName("the partition name")
	if err != nil {
		return err
	}
	if name.text == DefaultPool {
		return p.errorf(name, "the pool name %q is reserved for what no partition takes", DefaultPool)
	}
	if line, dup := p.poolLines[name.text]; dup {
		return p.errorf(name, "duplicate pool name %q (first defined on line %d)", name.text, line)
	}
	p.poolLines[name.text] = name.line
	if _, err := p.expect(tokLBrace, `"{"`); err != nil {
		return err
	}
	pool := Pool{Name: name.text}
	inPool := make(map[allocKey]int) // → line
	for p.tok.kind == tokString {
		if err := p.parseAllocation(&pool, inPool); err != nil {
			return err
		}
	}
	if _, err := p.expect(tokRBrace, `a feature name (a string) or "}"`); err != nil {
		return err
	}
	p.model.Pools = append(p.model.Pools, pool)
	return nil
}

// parseAllocation reads: STRING version amount, and checks it against the
// pool's other allocations and the other pools'.
func (p *parser) parseAllocation(pool *Pool, inPool map[allocKey]int) *ParseError {
	if p.allocs == MaxAllocations {
		return p.errorf(p.tok, "more than %d allocations", MaxAllocations)
	}
	p.allocs++
	feature, err := p.expectName("the feature name")
	if err != nil {
		return err
	}
	a := Allocation{Feature: feature.text}

	vt := p.tok
	if vt.kind != tokNumber && vt.kind != tokString {
		return p.unexpected("a version such as 1.0")
	}
	v, verr := version.Parse(vt.text)
	if verr != nil {
		return p.errorf(vt, "%v", verr)
	}
	a.Version = v
	if err := p.advance(); err != nil {
		return err
	}

	at := p.tok
	switch {
	case at.kind == tokNumber:
		n, err := p.parseCount(at)
		if err != nil {
			return err
		}
		if err := p.advance(); err != nil {
			return err
		}
		a.Kind, a.Amount = Absolute, n
		if p.tok.kind == tokPercent {
			if n > 100 {
				return p.errorf(at, "percentage %d%% is more than 100", n)
			}
			a.Kind = Percent
			if err := p.advance(); err != nil {
				return err
			}
		}
	case p.isKeyword("remainder"):
		a.Kind = Remainder
		if err := p.advance(); err != nil {
			return err
		}
	default:
		return p.unexpected(`a count, a percentage or "remainder"`)
	}

	key := allocKey{feature: a.Feature, ver: normalVersion(v)}
	if line, dup := inPool[key]; dup {
		return p.errorf(feature, "pool %q allocates %q %s twice (first on line %d)", pool.Name, a.Feature, v, line)
	}
	inPool[key] = feature.line
	tot := p.totals[key]
	if tot == nil {
		tot = &allocTotals{}
		p.totals[key] = tot
	}
	switch a.Kind {
	case Percent:
		tot.percent += a.Amount
		if tot.percent > 100 {
			return p.errorf(at, "percentages of %q %s sum to %d%% across pools, more than 100", a.Feature, v, tot.percent)
		}
	case Remainder:
		if tot.remainderPool != "" {
			return p.errorf(at, "more than one remainder for %q %s (pool %q has one already)", a.Feature, v, tot.remainderPool)
		}
		tot.remainderPool = pool.Name
	}
	pool.Allocations = append(pool.Allocations, a)
	return nil
}

// parseCount reads a whole number from 0 to MaxCount.
func (p *parser) parseCount(t token) (int64, *ParseError) {
	if strings.Contains(t.text, ".") {
		return 0, p.errorf(t, "count %s is not a whole number", t.text)
	}
	digits := strings.TrimLeft(t.text, "0")
	if len(digits) > len(strconv.Itoa(MaxCount)) {
		return 0, p.errorf(t, "count %s is more than %d", t.text, MaxCount)
	}
	n, _ := strconv.ParseInt("0"+digits, 10, 64) // at most 11 digits
	if n > MaxCount {
		return 0, p.errorf(t, "count %s is more than %d", t.text, MaxCount)
	}
	return n, nil
}

// normalVersion writes v so that versions equal under version.Compare give
// the same string: leading zeros and trailing zero components dropped.
func normalVersion(v version.Version) string {
	parts := strings.Split(v.String(), ".")
	for i, c := range parts {
		if c = strings.TrimLeft(c, "0"); c == "" {
			c = "0"
		}
		parts[i] = c
	}
	for len(parts) > 1 && parts[len(parts)-1] == "0" {
		parts = parts[:len(parts)-1]
	}
	return strings.Join(parts, ".")
}

// parseRule reads: 'on' expr '{' action [';'] '}'.
func (p *parser) parseRule() *ParseError {
	on := p.tok
	if len(p.model.Rules) == MaxRules {
		return p.errorf(on, "more than %d rules", MaxRules)
	}
	if err := p.advance(); err != nil {
		return err
	}
	cond, err := p.parseOr()
	if err != nil {
		return err
	}
	if _, err := p.expect(tokLBrace, `"and", "or" or "{"`); err != nil {
		return err
	}
	var act Action
	switch {
	case p.isKeyword("use"):
		if err := p.advance(); err != nil {
			return err
		}
		name, err := p.expectName("the pool name")
		if err != nil {
			return err
		}
		if name.text == DefaultPool {
			return p.errorf(name, `use "default" is written accept`)
		}
		if _, ok := p.poolLines[name.text]; !ok {
			return p.errorf(name, "use of undefined pool %q", name.text)
		}
		act = Action{Kind: Use, Pool: name.text}
	case p.isKeyword("accept"):
		act = Action{Kind: Accept}
		if err := p.advance(); err != nil {
			return err
		}
	case p.isKeyword("deny"):
		act = Action{Kind: Deny}
		if err := p.advance(); err != nil {
			return err
		}
	default:
		return p.unexpected(`"use", "accept" or "deny"`)
	}
	want := `";" or "}"`
	if p.tok.kind == tokSemicolon {
		want = `"}"`
		if err := p.advance(); err != nil {
			return err
		}
	}
	if _, err := p.expect(tokRBrace, want); err != nil {
		return err
	}
	p.model.Rules = append(p.model.Rules, Rule{Condition: cond, Action: act, Line: on.line})
	return nil
}

// parseOr reads: and {'or' and}, flattening nested Ors.
func (p *parser) parseOr() (Expr, *ParseError) {
	x, err := p.parseAnd()
	if err != nil || !p.isKeyword("or") {
		return x, err
	}
	terms := appendOr(nil, x)
	for p.isKeyword("or") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		y, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		terms = appendOr(terms, y)
	}
	return Or{Terms: terms}, nil
}

func appendOr(terms []Expr, x Expr) []Expr {
	if o, ok := x.(Or); ok {
		return append(terms, o.Terms...)
	}
	return append(terms, x)
}

// parseAnd reads: unary {'and' unary}, flattening nested Ands.
func (p *parser) parseAnd() (Expr, *ParseError) {
	x, err := p.parseUnary()
	if err != nil || !p.isKeyword("and") {
		return x, err
	}
	terms := appendAnd(nil, x)
	for p.isKeyword("and") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		y, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		terms = appendAnd(terms, y)
	}
	return And{Terms: terms}, nil
}

func appendAnd(terms []Expr, x Expr) []Expr {
	if a, ok := x.(And); ok {
		return append(terms, a.Terms...)
	}
	return append(terms, x)
}

// parseUnary reads: 'not' unary | '(' expr ')' | matcher. Each not and
// parenthesis counts toward MaxNesting, which bounds the recursion.
func (p *parser) parseUnary() (Expr, *ParseError) {
	switch {
	case p.isKeyword("not"), p.tok.kind == tokLParen:
		open := p.tok
		if p.depth == MaxNesting {
			return nil, p.errorf(open, "expression nested more than %d deep", MaxNesting)
		}
		p.depth++
		defer func() { p.depth-- }()
		if err := p.advance(); err != nil {
			return nil, err
		}
		if open.kind == tokIdent {
			x, err := p.parseUnary()
			if err != nil {
				return nil, err
			}
			return Not{X: x}, nil
		}
		x, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRParen, `"and", "or" or ")"`); err != nil {
			return nil, err
		}
		return x, nil
	case p.tok.kind == tokIdent:
		return p.parseMatcher()
	}
	return nil, p.unexpected(`a matcher, "not" or "("`)
}

// matcherNames lists the matchers, for the error about an unknown one.
const matcherNames = "hostid, hostname, hosttype, dictionary, user or any"

func isMatcher(name string) bool {
	switch name {
	case "hostid", "hostname", "hosttype", "dictionary", "user", "any":
		return true
	}
	return false
}

// parseMatcher reads one matcher and checks its arguments.
func (p *parser) parseMatcher() (Expr, *ParseError) {
	name := p.tok
	if !isMatcher(name.text) {
		if lower := strings.ToLower(name.text); isMatcher(lower) {
			return nil, p.errorf(name, "unknown matcher %q (matchers are lower-case: %s)", name.text, lower)
		}
		return nil, p.errorf(name, "unknown matcher %q (want %s)", name.text, matcherNames)
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if _, err := p.expect(tokLParen, `"("`); err != nil {
		return nil, err
	}
	var x Expr
	switch name.text {
	case "hostid":
		val, err := p.expect(tokString, "the hostid value (a string)")
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokComma, `","`); err != nil {
			return nil, err
		}
		tt, err := p.expect(tokIdent, "a hostid type (ETHERNET, UUID, SERIAL, STRING or USER)")
		if err != nil {
			return nil, err
		}
		typ, terr := hostid.ParseType(tt.text)
		if terr != nil {
			return nil, p.errorf(tt, "%v", terr)
		}
		id, herr := hostid.New(val.text, typ)
		if herr != nil {
			return nil, p.errorf(val, "%v", herr)
		}
		x = HostIDMatcher{ID: id}
	case "hostname":
		pat, err := p.expectName("the host name pattern")
		if err != nil {
			return nil, err
		}
		lower := strings.ToLower(pat.text)
		if err := checkGlob(p, pat, lower); err != nil {
			return nil, err
		}
		x = HostnameMatcher{Pattern: lower}
	case "hosttype":
		tt, err := p.expect(tokIdent, "a host type (PHYSICAL, VIRTUAL or UNKNOWN)")
		if err != nil {
			return nil, err
		}
		switch t := strings.ToUpper(tt.text); t {
		case "PHYSICAL", "VIRTUAL", "UNKNOWN":
			x = HostTypeMatcher{Type: t}
		default:
			return nil, p.errorf(tt, "unknown host type %q (want PHYSICAL, VIRTUAL or UNKNOWN)", tt.text)
		}
	case "dictionary":
		key, err := p.expectName("the dictionary key")
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokComma, `","`); err != nil {
			return nil, err
		}
		val, err := p.expect(tokString, "the dictionary value (a string)")
		if err != nil {
			return nil, err
		}
		if err := checkGlob(p, val, val.text); err != nil {
			return nil, err
		}
		x = DictionaryMatcher{Key: key.text, Value: val.text}
	case "user":
		u, err := p.expectName("the user name")
		if err != nil {
			return nil, err
		}
		x = UserMatcher{User: u.text}
	case "any":
		x = AnyMatcher{}
	}
	if _, err := p.expect(tokRParen, `")"`); err != nil {
		return nil, err
	}
	return x, nil
}

// checkGlob refuses a malformed pattern; path.Match checks the whole pattern
// even against the empty name.
func checkGlob(p *parser, t token, pattern string) *ParseError {
	if _, err := path.Match(pattern, ""); err != nil {
		return p.errorf(t, "invalid glob %s: %v", quote(t.text), err)
	}
	return nil
}
