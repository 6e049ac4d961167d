// Package version parses and compares the dotted numeric versions of feature
// lines ("1.0", "6.1.3", "2022.01").
//
// Versions compare component by component as numbers, a missing component
// counting as zero, so "1" == "1.0" < "1.0.1" < "1.10" < "2022.01". A request
// for version v is served by any line whose version is at least v. The text a
// version was written with is kept for display, so "2022.01" prints as it was
// given.
package version

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxComponents is the largest number of dotted components a version may have.
const MaxComponents = 6

// maxText bounds the written form; longer input is refused before parsing.
const maxText = 64

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("invalid version")

// Version is a parsed dotted numeric version. The zero value is not a valid
// version; use Parse or MustParse. Versions are comparable with ==, which is
// true only when both parts and text are the same; use Compare for order.
type Version struct {
	parts [MaxComponents]uint32
	n     uint8
	text  string
}

// Parse reads a dotted numeric version: one to MaxComponents decimal
// components of at most nine digits each, separated by single dots.
func Parse(s string) (Version, error) {
	if s == "" {
		return Version{}, fmt.Errorf("%w: empty", ErrInvalid)
	}
	if len(s) > maxText {
		return Version{}, fmt.Errorf("%w: %d characters, at most %d", ErrInvalid, len(s), maxText)
	}
	var v Version
	for i, comp := range strings.Split(s, ".") {
		if i >= MaxComponents {
			return Version{}, fmt.Errorf("%w %q: more than %d components", ErrInvalid, s, MaxComponents)
		}
		if comp == "" {
			return Version{}, fmt.Errorf("%w %q: empty component", ErrInvalid, s)
		}
		if len(comp) > 9 {
			return Version{}, fmt.Errorf("%w %q: component %q has more than 9 digits", ErrInvalid, s, comp)
		}
		for _, c := range comp {
			if c < '0' || c > '9' {
				return Version{}, fmt.Errorf("%w %q: component %q is not a number", ErrInvalid, s, comp)
			}
		}
		n, _ := strconv.ParseUint(comp, 10, 32) // nine digits always fit
		v.parts[i] = uint32(n)
		v.n = uint8(i + 1)
	}
	v.text = s
	return v, nil
}

// MustParse is Parse for constants in code and tests; it panics on bad input.
func MustParse(s string) Version {
	v, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return v
}

// Compare returns -1, 0 or +1 as a is less than, equal to or greater than b.
func Compare(a, b Version) int {
	for i := range MaxComponents {
		switch {
		case a.parts[i] < b.parts[i]:
			return -1
		case a.parts[i] > b.parts[i]:
			return 1
		}
	}
	return 0
}

// Serves reports whether a line of version v serves a request for version want.
func (v Version) Serves(want Version) bool { return Compare(v, want) >= 0 }

// IsZero reports whether v is the zero Version (never a parsed one).
func (v Version) IsZero() bool { return v.n == 0 }

// String returns the version as it was written.
func (v Version) String() string { return v.text }

// MarshalText writes the version as it was written.
func (v Version) MarshalText() ([]byte, error) {
	if v.IsZero() {
		return nil, fmt.Errorf("%w: empty", ErrInvalid)
	}
	return []byte(v.text), nil
}

// UnmarshalText parses a version, refusing bad input.
func (v *Version) UnmarshalText(b []byte) error {
	p, err := Parse(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}
