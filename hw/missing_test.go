package hw

import "testing"

func TestMissing(t *testing.T) {
	for _, v := range []string{
		"", "  ", "\x00", "unknown", "Unknown",
		"None", "Not Specified", "Not Applicable", "Not Available", "N/A",
		"To be filled by O.E.M.", "To Be Filled By O.E.M.", " to be filled by o.e.m.\n",
		"Default string", "System Serial Number", "Base Board Serial Number",
		"System manufacturer", "System Product Name",
		"0", "000000000000", "0123456789",
		"00000000-0000-0000-0000-000000000000",
		"FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", "ffffffff-ffff-ffff-ffff-ffffffffffff",
		"03000200-0400-0500-0006-000700080009",
		"00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff",
		"0x00000000", "0xffffffff",
	} {
		if !missing(v) {
			t.Errorf("missing(%q) = false, want true", v)
		}
	}
	for _, v := range []string{
		"ZM19AS012345", "S62ANJ0R123456X", "0x1a2b3c4d", "100000003a0f6b1c",
		"00000000-0000-0000-0000-ac1f6b123456", "00:e0:4c:68:01:02",
		"01", "10", "f0", "Supermicro", "QEMU", "unknown-7", "Default",
	} {
		if missing(v) {
			t.Errorf("missing(%q) = true, want false", v)
		}
	}
}
