package hw

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/jaypipes/ghw"

	"github.com/tallyhq/tally/core/hostid"
)

func eth(v string) hostid.HostID    { return hostid.HostID{Value: v, Type: hostid.Ethernet} }
func uuid(v string) hostid.HostID   { return hostid.HostID{Value: v, Type: hostid.UUID} }
func serial(v string) hostid.HostID { return hostid.HostID{Value: v, Type: hostid.Serial} }

func requireLinux(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("hw reads Linux sysfs")
	}
}

// fixtures maps each tree under testdata to the Machine Detect must find
// there. testdata/README.md describes the trees.
var fixtures = map[string]Machine{
	// An x86 server: DMI, two NICs (enp3s0 sorts before eth0), a Wi-Fi NIC
	// with a random MAC, docker0/veth/lo; a SATA disk with its serial in the
	// udev database, an NVMe disk with its serial only in sysfs, and an
	// optical drive and loop device that are skipped.
	"physical": {
		HostIDs: []hostid.HostID{
			eth("3c:ec:ef:12:34:57"), // enp3s0, upper case in sysfs
			eth("3c:ec:ef:12:34:56"), // eth0
			uuid("00000000-0000-0000-0000-ac1f6b123456"),
			serial("S123456X9A12345"), // system (SMBIOS type 1)
			serial("ZM19AS012345"),    // board
			serial("S4EWNX0R912345K"), // nvme0n1, from sysfs
			serial("S62ANJ0R123456X"), // sda, from udev's ID_SERIAL_SHORT
		},
		Type:    Physical,
		Vendor:  "Supermicro",
		Product: "SYS-5019C-MR",
	},
	// A QEMU/KVM guest without udev: virtio NIC, virtio disks (one with a
	// serial, one with an empty one), zram; no board serial.
	"vm": {
		HostIDs: []hostid.HostID{
			eth("52:54:00:12:34:56"),
			uuid("8f0c2a3e-5b7d-4c1a-9e2f-0a1b2c3d4e5f"),
			serial("tally-vm-root"),
		},
		Type:    Virtual,
		Vendor:  "QEMU",
		Product: "Standard PC (Q35 + ICH9, 2009)",
	},
	// A Raspberry Pi 4: no DMI, a device tree with serial-number and model,
	// one NIC, an SD card whose CID serial is hex.
	"raspberrypi": {
		HostIDs: []hostid.HostID{
			eth("dc:a6:32:0a:0b:0c"),
			serial("100000003a0f6b1c"),
			serial("0x1a2b3c4d"),
		},
		Type:    Physical,
		Vendor:  "raspberrypi",
		Product: "Raspberry Pi 4 Model B Rev 1.4",
	},
	// The device tree only under /proc/device-tree, where ghw does not look.
	"pi-proc-device-tree": {
		HostIDs: []hostid.HostID{serial("10000000c0ffee42")},
		Type:    Physical,
		Vendor:  "raspberrypi",
		Product: "Raspberry Pi Compute Module 4 Rev 1.0",
	},
	// A Firecracker-style guest: no DMI and no device tree, so only the
	// "hypervisor" CPU flag tells that it is virtual.
	"microvm": {
		HostIDs: []hostid.HostID{eth("02:fc:00:00:00:01"), serial("181663492949957")},
		Type:    Virtual,
	},
	// A container: CPU flags without "hypervisor", a virtual eth0 and lo.
	"container": {Type: Unknown},
	// A white-box board whose DMI is all placeholders, an all-zero MAC, a
	// plain directory in /sys/class/net with no device link, a SATA disk
	// whose serial is only in VPD page 0x80, an eMMC with a zero serial.
	"oem-filler": {
		HostIDs: []hostid.HostID{
			eth("00:e0:4c:68:01:02"),
			serial("WD-WX12A3456789"),
		},
		Type: Physical,
	},
}

func TestDetectFixtures(t *testing.T) {
	requireLinux(t)
	for name, want := range fixtures {
		t.Run(name, func(t *testing.T) {
			got, err := Detect(Config{Root: filepath.Join("testdata", name)})
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if !slices.Equal(got.HostIDs, want.HostIDs) {
				t.Errorf("HostIDs:\n got %v\nwant %v", got.HostIDs, want.HostIDs)
			}
			if got.Type != want.Type {
				t.Errorf("Type = %s, want %s", got.Type, want.Type)
			}
			if got.Vendor != want.Vendor || got.Product != want.Product {
				t.Errorf("Vendor, Product = %q, %q, want %q, %q", got.Vendor, got.Product, want.Vendor, want.Product)
			}
		})
	}
}

func TestEveryFixtureHasExpectations(t *testing.T) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "fuzz" {
			continue // go test's fuzz corpus, not a machine
		}
		if _, ok := fixtures[e.Name()]; e.IsDir() && !ok {
			t.Errorf("testdata/%s has no entry in fixtures", e.Name())
		}
	}
}

func TestDetectEmptyRootIsUnknownWithoutError(t *testing.T) {
	requireLinux(t)
	got, err := Detect(Config{Root: t.TempDir()})
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	if len(got.HostIDs) != 0 || got.Type != Unknown || got.Vendor != "" || got.Product != "" {
		t.Errorf("Detect = %+v, want an empty Machine of type UNKNOWN", got)
	}
}

func TestDetectRootMustBeADirectory(t *testing.T) {
	requireLinux(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{filepath.Join(t.TempDir(), "absent"), file} {
		if _, err := Detect(Config{Root: root}); err == nil {
			t.Errorf("Detect(Root %s) succeeded, want an error", root)
		}
	}
}

func TestDetectIgnoresGHWEnvironment(t *testing.T) {
	requireLinux(t)
	want, err := Detect(Config{})
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	t.Setenv("GHW_CHROOT", filepath.Join("testdata", "physical"))
	got, err := Detect(Config{})
	if err != nil {
		t.Fatalf("Detect with GHW_CHROOT: %v", err)
	}
	if !slices.Equal(got.HostIDs, want.HostIDs) || got.Type != want.Type {
		t.Errorf("GHW_CHROOT changed what Detect reads: got %+v, want %+v", got, want)
	}
}

// TestDetectOnThisMachine runs on whatever machine the tests run on, so it
// asserts only what holds everywhere.
func TestDetectOnThisMachine(t *testing.T) {
	requireLinux(t)
	m, err := Detect(Config{})
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	t.Logf("this machine: %+v", m)
	seen := make(map[hostid.HostID]bool)
	for _, id := range m.HostIDs {
		canon, err := hostid.New(id.Value, id.Type)
		if err != nil || canon != id {
			t.Errorf("HostID %v is not canonical (New gives %v, %v)", id, canon, err)
		}
		if seen[id] {
			t.Errorf("HostID %v listed twice", id)
		}
		seen[id] = true
	}
	switch m.Type {
	case Physical, Virtual, Unknown:
	default:
		t.Errorf("Type = %q", m.Type)
	}
}

func TestDetectUnsupportedOffLinux(t *testing.T) {
	if runtime.GOOS == "linux" {
		t.Skip("Linux is supported")
	}
	if _, err := Detect(Config{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Detect: %v, want ErrUnsupported", err)
	}
}

func TestGHWPanicBecomesError(t *testing.T) {
	load := func(...any) (int, error) { panic("index out of range") }
	if _, err := fromGHW("things", load, nil); err == nil {
		t.Error("a panic in ghw did not become an error")
	}
}

func TestIDListSkipsMissingInvalidAndRepeated(t *testing.T) {
	var ids idList
	ids.add(hostid.Ethernet, "00:00:00:00:00:00", "not a mac", "AA-BB-CC-00-11-22", "aa:bb:cc:00:11:22")
	ids.add(hostid.Serial, "unknown", "", "ABC123", " ABC123 ")
	want := []hostid.HostID{eth("aa:bb:cc:00:11:22"), serial("ABC123")}
	if !slices.Equal(ids.list, want) {
		t.Errorf("got %v, want %v", ids.list, want)
	}
}

// TestEachHypervisorSignAlone builds trees that hold one sign of a hypervisor
// each, on top of a readable DMI that says nothing of one.
func TestEachHypervisorSignAlone(t *testing.T) {
	requireLinux(t)
	dmi := map[string]string{"sys/class/dmi/id/sys_vendor": "Dell Inc.", "sys/class/dmi/id/product_name": "PowerEdge R740"}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  MachineType
	}{
		{"DMI alone", dmi, Physical},
		{"DMI vendor", map[string]string{"sys/class/dmi/id/sys_vendor": "VMware, Inc."}, Virtual},
		{"DMI product", map[string]string{"sys/class/dmi/id/sys_vendor": "Red Hat", "sys/class/dmi/id/product_name": "KVM"}, Virtual},
		{"/sys/hypervisor/type", with(dmi, "sys/hypervisor/type", "xen\n"), Virtual},
		{"empty /sys/hypervisor/type", with(dmi, "sys/hypervisor/type", ""), Physical},
		{"CPU flag", with(dmi, "proc/cpuinfo", "flags\t\t: fpu hypervisor\n"), Virtual},
		{"device tree alone", map[string]string{"sys/firmware/devicetree/base/model": "Pine64 ROCK64\x00"}, Physical},
		{"device tree hypervisor node", map[string]string{"sys/firmware/devicetree/base/hypervisor/compatible": "xen,xen\x00"}, Virtual},
		{"QEMU virt board", map[string]string{"proc/device-tree/compatible": "linux,dummy-virt\x00"}, Virtual},
		{"CPU flags without hypervisor, no firmware tables", map[string]string{"proc/cpuinfo": "flags\t\t: fpu\n"}, Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tc.files {
				path := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			m, err := Detect(Config{Root: root})
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if m.Type != tc.want {
				t.Errorf("Type = %s, want %s", m.Type, tc.want)
			}
		})
	}
}

// with returns a copy of files with one more.
func with(files map[string]string, name, content string) map[string]string {
	out := maps.Clone(files)
	out[name] = content
	return out
}

// TestOrderDoesNotDependOnGHW hands over interfaces and disks out of order:
// ghw lists them as the directory reads, which hw does not rely on.
func TestOrderDoesNotDependOnGHW(t *testing.T) {
	fs := sysfs{root: filepath.Join("testdata", "physical")}
	nics := []*ghw.NIC{
		{Name: "eth0", MACAddress: "3c:ec:ef:12:34:56"},
		{Name: "enp3s0", MACAddress: "3C:EC:EF:12:34:57"},
	}
	if got, want := ethernetAddresses(fs, nics), []string{"3C:EC:EF:12:34:57", "3c:ec:ef:12:34:56"}; !slices.Equal(got, want) {
		t.Errorf("ethernetAddresses = %q, want %q", got, want)
	}
	disks := []*ghw.Disk{
		{Name: "sdb", SerialNumber: "B"},
		{Name: "nvme0n1", SerialNumber: "N"},
		{Name: "sda", SerialNumber: "A"},
	}
	if got, want := diskSerials(fs, disks), []string{"N", "A", "B"}; !slices.Equal(got, want) {
		t.Errorf("diskSerials = %q, want %q", got, want)
	}
}
