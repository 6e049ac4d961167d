package version

import (
	"errors"
	"testing"
)

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1", "1.0", 0},
		{"1.0", "1.0.1", -1},
		{"1.9", "1.10", -1},
		{"2.0", "1.99.99", 1},
		{"2022.01", "2022.1", 0},
		{"2022.01", "2021.12", 1},
		{"6.1.3", "6.1.2", 1},
		{"0", "0.0.0.0.0.1", -1},
	}
	for _, tt := range tests {
		got := Compare(MustParse(tt.a), MustParse(tt.b))
		if got != tt.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if back := Compare(MustParse(tt.b), MustParse(tt.a)); back != -tt.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.b, tt.a, back, -tt.want)
		}
	}
}

func TestServes(t *testing.T) {
	if !MustParse("2.0").Serves(MustParse("1.0")) {
		t.Error("a 2.0 line must serve a 1.0 request")
	}
	if MustParse("1.0").Serves(MustParse("2.0")) {
		t.Error("a 1.0 line must not serve a 2.0 request")
	}
	if !MustParse("1.0").Serves(MustParse("1.0")) {
		t.Error("a line serves a request for its own version")
	}
}

func TestParseKeepsText(t *testing.T) {
	v := MustParse("2022.01")
	if v.String() != "2022.01" {
		t.Fatalf("String() = %q, want 2022.01", v.String())
	}
	b, err := v.MarshalText()
	if err != nil || string(b) != "2022.01" {
		t.Fatalf("MarshalText = %q, %v", b, err)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, s := range []string{"", ".", "1.", ".1", "1..2", "a", "1.a", "-1", "+1", "1.0-beta", " 1.0",
		"1.2.3.4.5.6.7", "1234567890", "1.0 ", "１.0"} {
		if _, err := Parse(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) error = %v, want ErrInvalid", s, err)
		}
	}
	var v Version
	if err := v.UnmarshalText([]byte("x")); err == nil {
		t.Error("UnmarshalText accepted x")
	}
	if _, err := (Version{}).MarshalText(); err == nil {
		t.Error("MarshalText of zero Version must fail")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1.0", "6.1.3", "2022.01", "", "1..2", "999999999.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Parse(s)
		if err != nil {
			return
		}
		if v.String() != s {
			t.Fatalf("String() = %q, want %q", v.String(), s)
		}
		if Compare(v, v) != 0 {
			t.Fatal("a version must equal itself")
		}
	})
}
