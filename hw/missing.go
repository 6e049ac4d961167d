package hw

import "strings"

// missing reports whether v is no value at all: empty, ghw's "unknown", or
// one of the placeholders firmware writes where it has nothing to say.
func missing(v string) bool {
	v = strings.ToLower(strings.Trim(v, " \t\r\n\x00"))
	switch v {
	case "",
		"unknown", // ghw's answer when it cannot read a file
		"none",
		"not specified",
		"not applicable",
		"not available",
		"n/a",
		"to be filled by o.e.m.",
		"default string",
		"system serial number",
		"base board serial number",
		"system manufacturer",
		"system product name",
		"0123456789",
		"03000200-0400-0500-0006-000700080009": // the product UUID many AMI boards share
		return true
	}
	return allSame(v, '0') || allSame(v, 'f')
}

// allSame reports whether every digit of v is d, ignoring the separators of
// MACs and UUIDs, spaces, and a leading "0x". Such a value is a blank field
// (all zeros) or erased memory (all F), never a serial.
func allSame(v string, d rune) bool {
	v = strings.TrimPrefix(v, "0x")
	digits := 0
	for _, r := range v {
		switch r {
		case '-', ':', ' ':
		case d:
			digits++
		default:
			return false
		}
	}
	return digits > 0
}
