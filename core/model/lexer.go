package model

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokenKind uint8

const (
	tokEOF tokenKind = iota
	tokIdent
	tokString
	tokNumber
	tokLBrace
	tokRBrace
	tokLParen
	tokRParen
	tokComma
	tokSemicolon
	tokPercent
)

// token is one lexical token. For a string, text is the value with escapes
// resolved; for an identifier or number, the text as written.
type token struct {
	kind      tokenKind
	text      string
	line, col int
}

// describe names a token for an error message.
func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of text"
	case tokIdent:
		return fmt.Sprintf("%q", t.text)
	case tokString:
		s := t.text
		if utf8.RuneCountInString(s) > 40 {
			s = string([]rune(s)[:40]) + "..."
		}
		return "string " + quote(s)
	case tokNumber:
		return "number " + t.text
	}
	return fmt.Sprintf("%q", t.text)
}

var punctuation = [...]tokenKind{
	'{': tokLBrace, '}': tokRBrace, '(': tokLParen, ')': tokRParen,
	',': tokComma, ';': tokSemicolon, '%': tokPercent,
}

// lexer cuts valid UTF-8 text into tokens, counting lines and columns in
// characters (a tab is one column). Every step moves forward, so it runs in
// time linear in the text.
type lexer struct {
	src       string
	pos       int
	line, col int
}

func newLexer(src string) *lexer { return &lexer{src: src, line: 1, col: 1} }

func (l *lexer) errorf(line, col int, format string, args ...any) *ParseError {
	return &ParseError{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// skip moves past s[pos:pos+n], which holds no newline.
func (l *lexer) skip(n int) {
	l.col += utf8.RuneCountInString(l.src[l.pos : l.pos+n])
	l.pos += n
}

// skipSpace moves past white space and comments.
func (l *lexer) skipSpace() *ParseError {
	for l.pos < len(l.src) {
		rest := l.src[l.pos:]
		switch {
		case rest[0] == '\n':
			l.pos++
			l.line++
			l.col = 1
		case rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\r':
			l.skip(1)
		case rest[0] == '#' || strings.HasPrefix(rest, "//"):
			n := strings.IndexByte(rest, '\n')
			if n < 0 {
				n = len(rest)
			}
			l.skip(n)
		case strings.HasPrefix(rest, "/*"):
			n := strings.Index(rest[2:], "*/")
			if n < 0 {
				return l.errorf(l.line, l.col, "unterminated /* comment")
			}
			comment := rest[:n+4]
			if nl := strings.Count(comment, "\n"); nl > 0 {
				l.line += nl
				last := strings.LastIndexByte(comment, '\n')
				l.col = 1 + utf8.RuneCountInString(comment[last+1:])
				l.pos += len(comment)
			} else {
				l.skip(len(comment))
			}
		default:
			return nil
		}
	}
	return nil
}

func (l *lexer) next() (token, *ParseError) {
	if err := l.skipSpace(); err != nil {
		return token{}, err
	}
	t := token{line: l.line, col: l.col}
	if l.pos >= len(l.src) {
		t.kind = tokEOF
		return t, nil
	}
	c := l.src[l.pos]
	switch {
	case c == '"':
		return l.lexString(t)
	case isDigit(c):
		n := l.pos
		for n < len(l.src) && (isDigit(l.src[n]) || l.src[n] == '.') {
			n++
		}
		t.kind, t.text = tokNumber, l.src[l.pos:n]
		l.skip(n - l.pos)
		return t, nil
	case isLetter(c):
		n := l.pos
		for n < len(l.src) && (isLetter(l.src[n]) || isDigit(l.src[n])) {
			n++
		}
		t.kind, t.text = tokIdent, l.src[l.pos:n]
		l.skip(n - l.pos)
		return t, nil
	case int(c) < len(punctuation) && punctuation[c] != tokEOF:
		t.kind, t.text = punctuation[c], l.src[l.pos:l.pos+1]
		l.skip(1)
		return t, nil
	}
	r, _ := utf8.DecodeRuneInString(l.src[l.pos:])
	return token{}, l.errorf(t.line, t.col, "unexpected character %q", r)
}

// lexString reads a double-quoted string starting at l.pos. The only escapes
// are \" and \\; a newline, a control character or the end of the text
// before the closing quote is an error.
func (l *lexer) lexString(t token) (token, *ParseError) {
	t.kind = tokString
	start := l.pos + 1
	var b strings.Builder // used only once an escape is seen
	escaped := false
	i, col := start, l.col+1
	for {
		if i >= len(l.src) || l.src[i] == '\n' {
			return token{}, l.errorf(t.line, t.col, "unterminated string")
		}
		c := l.src[i]
		switch {
		case c == '"':
			if escaped {
				t.text = b.String()
			} else {
				t.text = l.src[start:i]
			}
			l.pos, l.col = i+1, col+1
			return t, nil
		case c == '\\':
			if i+1 >= len(l.src) || (l.src[i+1] != '"' && l.src[i+1] != '\\') {
				if i+1 >= len(l.src) || l.src[i+1] == '\n' {
					return token{}, l.errorf(t.line, t.col, "unterminated string")
				}
				r, _ := utf8.DecodeRuneInString(l.src[i+1:])
				return token{}, l.errorf(t.line, col, `bad escape \%c in string (only \" and \\ are allowed)`, r)
			}
			if !escaped {
				escaped = true
				b.WriteString(l.src[start:i])
			}
			b.WriteByte(l.src[i+1])
			i += 2
			col += 2
		default:
			r, n := utf8.DecodeRuneInString(l.src[i:])
			if unicode.IsControl(r) {
				return token{}, l.errorf(t.line, col, "control character %U in string", r)
			}
			if escaped {
				b.WriteString(l.src[i : i+n])
			}
			i += n
			col++
		}
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' }
