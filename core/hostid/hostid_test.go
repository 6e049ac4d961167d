package hostid

import (
	"errors"
	"testing"
)

func TestCanonical(t *testing.T) {
	tests := []struct {
		value string
		typ   Type
		want  string
	}{
		{"00:11:22:AA:bb:cc", Ethernet, "00:11:22:aa:bb:cc"},
		{"00-11-22-aa-bb-cc", Ethernet, "00:11:22:aa:bb:cc"},
		{"001122AABBCC", Ethernet, "00:11:22:aa:bb:cc"},
		{"0011.22aa.bbcc", Ethernet, "00:11:22:aa:bb:cc"},
		{"{4C4C4544-0035-3010-8030-B4C04F4E4E32}", UUID, "4c4c4544-0035-3010-8030-b4c04f4e4e32"},
		{"4c4c454400353010 8030b4c04f4e4e32", UUID, ""},
		{"4c4c4544003530108030b4c04f4e4e32", UUID, "4c4c4544-0035-3010-8030-b4c04f4e4e32"},
		{"  SN-12345 ", Serial, "SN-12345"},
		{"alice", User, "alice"},
		{"pune-cad-07", String, "pune-cad-07"},
	}
	for _, tt := range tests {
		got, err := Canonical(tt.value, tt.typ)
		if tt.want == "" {
			if err == nil {
				t.Errorf("Canonical(%q, %s) = %q, want an error", tt.value, tt.typ, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Canonical(%q, %s) = %q, %v; want %q", tt.value, tt.typ, got, err, tt.want)
		}
	}
}

func TestRefuses(t *testing.T) {
	bad := []struct {
		value string
		typ   Type
	}{
		{"00:11:22:aa:bb", Ethernet},
		{"00:11:22:aa:bb:cc:dd", Ethernet},
		{"00:11:22:aa:bb:zz", Ethernet},
		{"0:011:22:aa:bb:cc", Ethernet},
		{"not-a-uuid", UUID},
		{"4c4c4544-0035-3010-8030-b4c04f4e4e3", UUID},
		{"4c4c45440-035-3010-8030-b4c04f4e4e32", UUID},
		{"", Serial},
		{"   ", String},
		{"a\x00b", User},
		{string(make([]byte, 200)), Serial},
		{"x", Type(0)},
		{"x", Type(99)},
	}
	for _, b := range bad {
		if _, err := New(b.value, b.typ); !errors.Is(err, ErrInvalidValue) && !errors.Is(err, ErrUnknownType) {
			t.Errorf("New(%q, %d) error = %v, want a hostid error", b.value, b.typ, err)
		}
	}
}

func TestParseType(t *testing.T) {
	for _, name := range []string{"ETHERNET", "uuid", "Serial", "STRING", "USER"} {
		typ, err := ParseType(name)
		if err != nil {
			t.Fatalf("ParseType(%q): %v", name, err)
		}
		b, _ := typ.MarshalText()
		var back Type
		if err := back.UnmarshalText(b); err != nil || back != typ {
			t.Fatalf("round trip of %q gave %v, %v", name, back, err)
		}
	}
	if _, err := ParseType("IMEI"); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("ParseType(IMEI) error = %v, want ErrUnknownType", err)
	}
}
