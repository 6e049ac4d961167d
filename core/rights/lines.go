package rights

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/version"
)

// Bounds of the text form that core does not state itself.
const (
	maxLineIDLen = 128                  // core's bound on line IDs
	maxUndo      = 365 * 24 * time.Hour // core's bound on undo intervals
	dateLayout   = "2006-01-02"
	minYear      = 1970
	maxYear      = 9998 // an expiry ends the day after its date, which must still encode
)

// ParseLines reads feature lines in the text form described in the package
// documentation. Every error names the line ("line 3: ...") and wraps
// core.ErrInvalidFeature or core.ErrInvalidCount. The lines it returns have
// no source (a rights file or core sets it) and the IDs given with id=, or
// none, in which case core names them after their source.
func ParseLines(text []byte) ([]core.FeatureLine, error) {
	var lines []core.FeatureLine
	idLine := map[string]int{}
	for n, raw := range bytes.Split(text, []byte("\n")) {
		lineNo := n + 1
		l, ok, err := parseLine(raw)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		if !ok {
			continue
		}
		if len(lines) == core.MaxLinesPerSet {
			return nil, fmt.Errorf("line %d: %w: more than %d lines", lineNo, core.ErrInvalidFeature, core.MaxLinesPerSet)
		}
		if l.ID != "" {
			if first, dup := idLine[l.ID]; dup {
				return nil, fmt.Errorf("line %d: %w: id %q is already used on line %d", lineNo, core.ErrInvalidFeature, l.ID, first)
			}
			idLine[l.ID] = lineNo
		}
		lines = append(lines, l)
	}
	return lines, nil
}

// parseLine reads one line of text; ok is false for a blank or comment line.
func parseLine(raw []byte) (l core.FeatureLine, ok bool, err error) {
	if !utf8.Valid(raw) {
		return l, false, fmt.Errorf("%w: not valid UTF-8", core.ErrInvalidFeature)
	}
	fields, err := splitFields(strings.TrimSuffix(string(raw), "\r"))
	if err != nil || len(fields) == 0 {
		return l, false, err
	}
	if len(fields) < 3 {
		return l, false, fmt.Errorf("%w: want NAME VERSION COUNT [options], got %d fields", core.ErrInvalidFeature, len(fields))
	}
	if err := checkName(fields[0]); err != nil {
		return l, false, err
	}
	l.Name = fields[0]
	if l.Version, err = version.Parse(fields[1]); err != nil {
		return l, false, fmt.Errorf("%w: feature %q: %w", core.ErrInvalidFeature, l.Name, err)
	}
	if l.Count, err = parseCount("count", fields[2]); err != nil {
		return l, false, err
	}
	if err := parseOptions(&l, fields[3:]); err != nil {
		return l, false, err
	}
	if err := checkLine(&l); err != nil {
		return l, false, err
	}
	return l, true, nil
}

// parseOptions reads the key=value options and flags after the count.
func parseOptions(l *core.FeatureLine, opts []string) error {
	seen := map[string]bool{}
	for _, opt := range opts {
		key, value, hasValue := strings.Cut(opt, "=")
		if seen[key] {
			return fmt.Errorf("%w: feature %q: %s given twice", core.ErrInvalidFeature, l.Name, key)
		}
		seen[key] = true
		flag := func(b *bool) error {
			if hasValue {
				return fmt.Errorf("%w: feature %q: %s takes no value", core.ErrInvalidFeature, l.Name, key)
			}
			*b = true
			return nil
		}
		var err error
		switch key {
		case "metered":
			err = flag(&l.Metered)
		case "reusable":
			err = flag(&l.Reusable)
		case "uncounted":
			err = flag(&l.Uncounted)
		case "start", "expiry", "overdraft", "undo", "vendor", "id":
			if !hasValue {
				return fmt.Errorf("%w: feature %q: %s needs a value (%s=...)", core.ErrInvalidFeature, l.Name, key, key)
			}
			err = setOption(l, key, value)
		default:
			return fmt.Errorf("%w: feature %q: unknown option %q", core.ErrInvalidFeature, l.Name, opt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// setOption sets one key=value option of a line.
func setOption(l *core.FeatureLine, key, value string) error {
	var err error
	switch key {
	case "start":
		l.Start, err = parseDate(l.Name, key, value)
	case "expiry":
		if value == "permanent" {
			return nil
		}
		var last time.Time
		last, err = parseDate(l.Name, key, value)
		l.Expiry = last.AddDate(0, 0, 1) // usable through the whole of its last day
	case "overdraft":
		l.Overdraft, err = parseCount("overdraft", value)
	case "undo":
		l.UndoInterval, err = time.ParseDuration(value)
		if err != nil || l.UndoInterval < 0 || l.UndoInterval > maxUndo {
			return fmt.Errorf("%w: feature %q: undo %q is not a duration between 0 and %s", core.ErrInvalidFeature, l.Name, value, maxUndo)
		}
	case "vendor":
		if len(value) > core.MaxVendorLen {
			return fmt.Errorf("%w: feature %q: vendor string longer than %d bytes", core.ErrInvalidFeature, l.Name, core.MaxVendorLen)
		}
		l.VendorString = value
	case "id":
		err = checkID(l.Name, value)
		l.ID = value
	}
	return err
}

// checkLine applies core's rules for a whole line, so that a line that
// parses is a line core accepts.
func checkLine(l *core.FeatureLine) error {
	switch {
	case l.Uncounted && (l.Count != 0 || l.Overdraft != 0):
		return fmt.Errorf("%w: uncounted feature %q must have count 0 and no overdraft", core.ErrInvalidFeature, l.Name)
	case !l.Uncounted && l.Count == 0 && l.Overdraft == 0:
		return fmt.Errorf("%w: feature %q has count 0 and no overdraft (write uncounted for an unlimited line)", core.ErrInvalidCount, l.Name)
	case !l.Expiry.IsZero() && !l.Expiry.After(l.Start):
		return fmt.Errorf("%w: feature %q expires before it starts", core.ErrInvalidFeature, l.Name)
	case l.Reusable && !l.Metered:
		return fmt.Errorf("%w: feature %q is reusable but not metered", core.ErrInvalidFeature, l.Name)
	case l.UndoInterval != 0 && (!l.Metered || l.Reusable):
		return fmt.Errorf("%w: feature %q has an undo interval but is not metered and non-reusable", core.ErrInvalidFeature, l.Name)
	}
	return nil
}

// splitFields splits a line into whitespace-separated fields, stopping at a
// '#' outside quotes. A quoted part of a field ("...") may hold spaces and
// '#'; inside it `\"` is a quote and `\\` a backslash.
func splitFields(s string) ([]string, error) {
	var fields []string
	for i := 0; i < len(s); {
		c := s[i]
		if c == ' ' || c == '\t' {
			i++
			continue
		}
		if c == '#' {
			break
		}
		var b strings.Builder
		for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '#' {
			if s[i] != '"' {
				b.WriteByte(s[i])
				i++
				continue
			}
			end, err := unquote(s, i+1, &b)
			if err != nil {
				return nil, err
			}
			i = end
		}
		fields = append(fields, b.String())
	}
	return fields, nil
}

// unquote copies the quoted text starting at s[i] (after the opening quote)
// into b and returns the index after the closing quote.
func unquote(s string, i int, b *strings.Builder) (int, error) {
	for ; i < len(s); i++ {
		switch s[i] {
		case '"':
			return i + 1, nil
		case '\\':
			if i+1 == len(s) || (s[i+1] != '"' && s[i+1] != '\\') {
				return 0, fmt.Errorf("%w: only \\\" and \\\\ may follow a backslash in quotes", core.ErrInvalidFeature)
			}
			i++
		}
		b.WriteByte(s[i])
	}
	return 0, fmt.Errorf("%w: unterminated quote", core.ErrInvalidFeature)
}

// checkName accepts what core accepts as a feature name: 1 to MaxNameLen
// bytes of printable characters without spaces, quotes or backslashes.
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty feature name", core.ErrInvalidFeature)
	}
	if len(name) > core.MaxNameLen {
		return fmt.Errorf("%w: feature name %.20q… longer than %d bytes", core.ErrInvalidFeature, name, core.MaxNameLen)
	}
	if strings.IndexFunc(name, func(r rune) bool {
		return !unicode.IsPrint(r) || unicode.IsSpace(r) || r == '"' || r == '\\'
	}) >= 0 {
		return fmt.Errorf("%w: feature name %q has a space, quote, backslash or control character", core.ErrInvalidFeature, name)
	}
	return nil
}

// checkID accepts line IDs of 1 to 128 printable characters without '#',
// which core uses in the IDs it makes for lines that have none.
func checkID(name, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: feature %q: empty id", core.ErrInvalidFeature, name)
	case len(id) > maxLineIDLen:
		return fmt.Errorf("%w: feature %q: id longer than %d bytes", core.ErrInvalidFeature, name, maxLineIDLen)
	case strings.ContainsRune(id, '#'):
		return fmt.Errorf("%w: feature %q: id %q contains '#'", core.ErrInvalidFeature, name, id)
	case strings.IndexFunc(id, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return fmt.Errorf("%w: feature %q: id %q has a control character", core.ErrInvalidFeature, name, id)
	}
	return nil
}

// parseCount reads a decimal count of 0 to core.MaxCount.
func parseCount(what, s string) (int64, error) {
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, fmt.Errorf("%w: %s %q is not a whole number", core.ErrInvalidCount, what, s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if errors.Is(err, strconv.ErrRange) || n > core.MaxCount {
		return 0, fmt.Errorf("%w: %s %s is outside 0..%d", core.ErrInvalidCount, what, s, core.MaxCount)
	}
	return n, err
}

// parseDate reads a YYYY-MM-DD date as midnight UTC.
func parseDate(name, key, s string) (time.Time, error) {
	t, err := time.Parse(dateLayout, s)
	if err != nil || t.Year() < minYear || t.Year() > maxYear {
		return time.Time{}, fmt.Errorf("%w: feature %q: %s %q is not a date YYYY-MM-DD between %d and %d", core.ErrInvalidFeature, name, key, s, minYear, maxYear)
	}
	return t, nil
}
