// Package hostid names devices: a HostID is a value of a type (ETHERNET,
// UUID, SERIAL, STRING, USER), written in one canonical form so that the same
// identity always compares equal.
//
// Canonical forms: ETHERNET is six lower-case hex pairs joined by colons
// ("00:11:22:aa:bb:cc"; dashes, dots or no separators are accepted on input);
// UUID is the 8-4-4-4-12 lower-case form (braces and upper case accepted);
// SERIAL, STRING and USER are printable text of 1 to 128 bytes with surrounding
// space trimmed.
package hostid

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Type is the kind of a HostID.
type Type uint8

// The HostID types. The zero Type is invalid.
const (
	Ethernet Type = iota + 1
	UUID
	Serial
	String
	User
)

var typeNames = [...]string{Ethernet: "ETHERNET", UUID: "UUID", Serial: "SERIAL", String: "STRING", User: "USER"}

// MaxValueLen bounds the text of a HostID value.
const MaxValueLen = 128

var (
	// ErrUnknownType is wrapped when a type name is not one of the HostID types.
	ErrUnknownType = errors.New("unknown hostid type")
	// ErrInvalidValue is wrapped when a value is not valid for its type.
	ErrInvalidValue = errors.New("invalid hostid value")
)

// ParseType reads a type name such as "ETHERNET" (case-insensitive).
func ParseType(s string) (Type, error) {
	for t, name := range typeNames {
		if name != "" && strings.EqualFold(s, name) {
			return Type(t), nil
		}
	}
	return 0, fmt.Errorf("%w %q (want ETHERNET, UUID, SERIAL, STRING or USER)", ErrUnknownType, s)
}

// String returns the type's name, e.g. "ETHERNET".
func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// MarshalText writes the type's name.
func (t Type) MarshalText() ([]byte, error) {
	if int(t) >= len(typeNames) || typeNames[t] == "" {
		return nil, fmt.Errorf("%w %d", ErrUnknownType, uint8(t))
	}
	return []byte(typeNames[t]), nil
}

// UnmarshalText reads a type name.
func (t *Type) UnmarshalText(b []byte) error {
	p, err := ParseType(string(b))
	if err != nil {
		return err
	}
	*t = p
	return nil
}

// HostID is one identity of a device in canonical form. It is comparable and
// can be used as a map key.
type HostID struct {
	Value string `json:"value"`
	Type  Type   `json:"type"`
}

// New returns the canonical HostID for value of type t, or an error that
// names what is wrong with it.
func New(value string, t Type) (HostID, error) {
	v, err := Canonical(value, t)
	if err != nil {
		return HostID{}, err
	}
	return HostID{Value: v, Type: t}, nil
}

// Parse is New with the type given by name.
func Parse(value, typeName string) (HostID, error) {
	t, err := ParseType(typeName)
	if err != nil {
		return HostID{}, err
	}
	return New(value, t)
}

// String writes "value (TYPE)".
func (h HostID) String() string { return h.Value + " (" + h.Type.String() + ")" }

// Canonical returns the canonical form of value for type t.
func Canonical(value string, t Type) (string, error) {
	if len(value) > 4*MaxValueLen {
		return "", fmt.Errorf("%w: %s value longer than %d bytes", ErrInvalidValue, t, MaxValueLen)
	}
	switch t {
	case Ethernet:
		if isCanonicalHex(value, 2, ':', 6) {
			return value, nil
		}
		return canonicalMAC(value)
	case UUID:
		if len(value) == 36 && isCanonicalUUID(value) {
			return value, nil
		}
		return canonicalUUID(value)
	case Serial, String, User:
		return canonicalText(value, t)
	default:
		return "", fmt.Errorf("%w %d", ErrUnknownType, uint8(t))
	}
}

func canonicalMAC(s string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	var digits string
	switch {
	case len(v) == 12:
		digits = v
	case len(v) == 17 && sepEvery(v, 2, v[2]) && (v[2] == ':' || v[2] == '-'):
		digits = strings.ReplaceAll(v, v[2:3], "")
	case len(v) == 14 && sepEvery(v, 4, '.'):
		digits = strings.ReplaceAll(v, ".", "")
	default:
		return "", fmt.Errorf("%w: ETHERNET %q is not six hex pairs", ErrInvalidValue, s)
	}
	if len(digits) != 12 {
		return "", fmt.Errorf("%w: ETHERNET %q has mixed separators", ErrInvalidValue, s)
	}
	if _, err := hex.DecodeString(digits); err != nil {
		return "", fmt.Errorf("%w: ETHERNET %q is not hexadecimal", ErrInvalidValue, s)
	}
	var out strings.Builder
	for i := 0; i < 12; i += 2 {
		if i > 0 {
			out.WriteByte(':')
		}
		out.WriteString(digits[i : i+2])
	}
	return out.String(), nil
}

// isCanonicalHex reports whether s is groups of n lower-case hex digits
// joined by sep, count groups in all: the canonical form, which needs no work.
func isCanonicalHex(s string, n int, sep byte, count int) bool {
	if len(s) != count*(n+1)-1 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (i+1)%(n+1) == 0 {
			if s[i] != sep {
				return false
			}
		} else if !isLowerHex(s[i]) {
			return false
		}
	}
	return true
}

func isCanonicalUUID(s string) bool {
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isLowerHex(s[i]) {
				return false
			}
		}
	}
	return true
}

func isLowerHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// sepEvery reports whether v has sep after every group of n characters.
func sepEvery(v string, n int, sep byte) bool {
	for i := n; i < len(v); i += n + 1 {
		if v[i] != sep {
			return false
		}
	}
	return true
}

func canonicalUUID(s string) (string, error) {
	u := strings.ToLower(strings.TrimSpace(s))
	u = strings.TrimPrefix(strings.TrimSuffix(u, "}"), "{")
	digits := strings.ReplaceAll(u, "-", "")
	if len(digits) != 32 || (len(u) != 32 && len(u) != 36) {
		return "", fmt.Errorf("%w: UUID %q is not 32 hex digits", ErrInvalidValue, s)
	}
	if len(u) == 36 && (u[8] != '-' || u[13] != '-' || u[18] != '-' || u[23] != '-') {
		return "", fmt.Errorf("%w: UUID %q is not in 8-4-4-4-12 form", ErrInvalidValue, s)
	}
	if _, err := hex.DecodeString(digits); err != nil {
		return "", fmt.Errorf("%w: UUID %q is not hexadecimal", ErrInvalidValue, s)
	}
	return digits[0:8] + "-" + digits[8:12] + "-" + digits[12:16] + "-" + digits[16:20] + "-" + digits[20:32], nil
}

func canonicalText(s string, t Type) (string, error) {
	v := strings.TrimSpace(s)
	switch {
	case v == "":
		return "", fmt.Errorf("%w: %s value is empty", ErrInvalidValue, t)
	case len(v) > MaxValueLen:
		return "", fmt.Errorf("%w: %s value longer than %d bytes", ErrInvalidValue, t, MaxValueLen)
	case !utf8.ValidString(v):
		return "", fmt.Errorf("%w: %s value is not UTF-8", ErrInvalidValue, t)
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return "", fmt.Errorf("%w: %s value %q has a control character", ErrInvalidValue, t, v)
		}
	}
	return v, nil
}
