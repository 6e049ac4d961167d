package core

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/tallyhq/tally/core/version"
)

// Limits on what a feature line may hold.
const (
	MaxCount       = 1_000_000_000 // counts, overdraft and requests
	MaxNameLen     = 64            // feature names
	MaxVendorLen   = 1024          // vendor strings
	MaxLinesPerSet = 100_000       // lines in one rights load
)

// FeatureLine is one right to use a feature: a count of a version, valid from
// Start until Expiry (or forever when Expiry is zero), from one rights source.
type FeatureLine struct {
	// ID names the line across reloads of its source; leases and consumed
	// counts follow it. When empty, LoadRights sets it to "<source>#<n>".
	ID      string          `json:"id"`
	Name    string          `json:"name"`
	Version version.Version `json:"version"`
	Count   int64           `json:"count"`
	// Start is when the line becomes usable; zero means at once.
	Start time.Time `json:"start,omitzero"`
	// Expiry is when the line stops being usable; zero means permanent.
	Expiry time.Time `json:"expiry,omitzero"`
	// Overdraft counts may be granted past Count and are marked as overdraft.
	Overdraft int64 `json:"overdraft,omitempty"`
	// Metered lines record usage. A metered line that is not Reusable
	// consumes its counts: a count returned later than UndoInterval after it
	// was granted is gone for good.
	Metered      bool          `json:"metered,omitempty"`
	Reusable     bool          `json:"reusable,omitempty"`
	UndoInterval time.Duration `json:"undoInterval,omitempty"`
	// Uncounted lines grant any count to anyone.
	Uncounted    bool   `json:"uncounted,omitempty"`
	VendorString string `json:"vendorString,omitempty"`
	// Source names the activation or rights file the line came from.
	Source string `json:"source"`
}

// activeAt reports whether the line is usable at t.
func (l *FeatureLine) activeAt(t time.Time) bool {
	return !t.Before(l.Start) && (l.Expiry.IsZero() || t.Before(l.Expiry))
}

// validate checks a line and names the first problem.
func (l *FeatureLine) validate() error {
	if err := validateFeatureName(l.Name); err != nil {
		return err
	}
	if l.Version.IsZero() {
		return fmt.Errorf("%w: feature %q has no version", ErrInvalidFeature, l.Name)
	}
	if l.Count < 0 || l.Count > MaxCount {
		return fmt.Errorf("%w: feature %q count %d is outside 0..%d", ErrInvalidCount, l.Name, l.Count, MaxCount)
	}
	if l.Overdraft < 0 || l.Overdraft > MaxCount {
		return fmt.Errorf("%w: feature %q overdraft %d is outside 0..%d", ErrInvalidCount, l.Name, l.Overdraft, MaxCount)
	}
	if l.Uncounted && (l.Count != 0 || l.Overdraft != 0) {
		return fmt.Errorf("%w: uncounted feature %q must have count and overdraft 0", ErrInvalidFeature, l.Name)
	}
	if !l.Uncounted && l.Count == 0 && l.Overdraft == 0 {
		return fmt.Errorf("%w: feature %q has neither count nor overdraft", ErrInvalidCount, l.Name)
	}
	if !l.Expiry.IsZero() && !l.Expiry.After(l.Start) {
		return fmt.Errorf("%w: feature %q expires (%s) before it starts (%s)", ErrInvalidFeature, l.Name,
			l.Expiry.Format(time.RFC3339), l.Start.Format(time.RFC3339))
	}
	if l.UndoInterval < 0 || l.UndoInterval > 365*24*time.Hour {
		return fmt.Errorf("%w: feature %q undo interval %s is outside 0..1 year", ErrInvalidFeature, l.Name, l.UndoInterval)
	}
	if l.UndoInterval != 0 && (!l.Metered || l.Reusable) {
		return fmt.Errorf("%w: feature %q has an undo interval but is not metered and non-reusable", ErrInvalidFeature, l.Name)
	}
	if l.Reusable && !l.Metered {
		return fmt.Errorf("%w: feature %q is reusable but not metered", ErrInvalidFeature, l.Name)
	}
	if len(l.VendorString) > MaxVendorLen {
		return fmt.Errorf("%w: feature %q vendor string longer than %d bytes", ErrInvalidFeature, l.Name, MaxVendorLen)
	}
	if err := validateLabel("line id", l.ID, 128); err != nil {
		return err
	}
	return nil
}

// consumes reports whether counts freed from this line may be used up.
func (l *FeatureLine) consumes() bool { return l.Metered && !l.Reusable }

// validateFeatureName accepts 1..MaxNameLen printable characters without
// spaces or quotes, so names survive every text form (model, CSV, CLI).
func validateFeatureName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty feature name", ErrInvalidFeature)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: feature name %.20q… longer than %d bytes", ErrInvalidFeature, name, MaxNameLen)
	}
	if isPlainASCII(name) {
		return nil
	}
	for _, r := range name {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) || r == '"' || r == '\\' {
			return fmt.Errorf("%w: feature name %q has a space, quote or control character", ErrInvalidFeature, name)
		}
	}
	return nil
}

// isPlainASCII reports whether s is printable ASCII without spaces, quotes
// or backslashes: the common case, checked without decoding runes.
func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// validateLabel checks free text such as aliases, IDs and group names: at most
// max bytes of printable characters. Empty is allowed; callers that need a
// value check that themselves.
func validateLabel(what, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidCommand, what, max)
	}
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return fmt.Errorf("%w: %s %q has a control character", ErrInvalidCommand, what, s)
	}
	return nil
}
