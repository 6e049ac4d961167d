package hw

import "testing"

func TestNotHardware(t *testing.T) {
	for name, want := range map[string]bool{
		"loop0": true, "ram0": true, "zram0": true, "dm-0": true, "md0": true,
		"md127": true, "nbd0": true, "sr0": true,
		"sda": false, "nvme0n1": false, "vda": false, "xvda": false,
		"mmcblk0": false, "mmcblk0boot0": false, "hda": false,
	} {
		if got := notHardware(name); got != want {
			t.Errorf("notHardware(%q) = %t, want %t", name, got, want)
		}
	}
}

func TestVPDUnitSerial(t *testing.T) {
	for _, tc := range []struct {
		name string
		page string
		want string
	}{
		{"libata pads on the left", "\x00\x80\x00\x14     WD-WX12A3456789", "WD-WX12A3456789"},
		{"SCSI pads on the right", "\x00\x80\x00\x0aABC123    ", "ABC123"},
		{"length shorter than the data", "\x00\x80\x00\x03ABC123", "ABC"},
		{"length past the end", "\x00\x80\x00\x20ABC", ""},
		{"another page", "\x00\x83\x00\x03ABC", ""},
		{"header only", "\x00\x80\x00\x00", ""},
		{"truncated header", "\x00\x80", ""},
		{"empty", "", ""},
	} {
		if got := vpdUnitSerial([]byte(tc.page)); got != tc.want {
			t.Errorf("%s: vpdUnitSerial(%q) = %q, want %q", tc.name, tc.page, got, tc.want)
		}
	}
}
