package hw

import "testing"

func TestVirtualPlatform(t *testing.T) {
	for _, tc := range []struct {
		vendor, product string
		virtual         bool
	}{
		{"QEMU", "Standard PC (Q35 + ICH9, 2009)", true},
		{"Red Hat", "KVM", true},
		{"VMware, Inc.", "VMware Virtual Platform", true},
		{"VMware, Inc.", "VMware20,1", true},
		{"innotek GmbH", "VirtualBox", true},
		{"Oracle Corporation", "VirtualBox", true},
		{"Xen", "HVM domU", true},
		{"Microsoft Corporation", "Virtual Machine", true},
		{"Amazon EC2", "t3.micro", true},
		{"Amazon EC2", "m5.metal", false},
		{"Google", "Google Compute Engine", true},
		{"Parallels Software International Inc.", "Parallels Virtual Platform", true},
		{"Parallels International GmbH.", "Parallels ARM Virtual Machine", true},
		{"Bochs", "Bochs", true},
		{"Microsoft Corporation", "Surface Pro 7", false},
		{"Dell Inc.", "PowerEdge R740", false},
		{"Supermicro", "SYS-5019C-MR", false},
		{"raspberrypi", "Raspberry Pi 4 Model B Rev 1.4", false},
		{"", "", false},
	} {
		if got := virtualPlatform(tc.vendor, tc.product); got != tc.virtual {
			t.Errorf("virtualPlatform(%q, %q) = %t, want %t", tc.vendor, tc.product, got, tc.virtual)
		}
	}
}

func TestMachineType(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    evidence
		want MachineType
	}{
		{"nothing readable", evidence{}, Unknown},
		{"DMI of real hardware", evidence{vendor: "Dell Inc.", product: "PowerEdge R740", firmwareTables: true}, Physical},
		{"DMI of placeholders", evidence{firmwareTables: true}, Physical},
		{"device tree without hypervisor", evidence{vendor: "raspberrypi", firmwareTables: true}, Physical},
		{"DMI of a hypervisor", evidence{vendor: "QEMU", firmwareTables: true}, Virtual},
		{"hypervisor CPU flag", evidence{cpuHypervisorFlag: true}, Virtual},
		{"hypervisor CPU flag under real DMI", evidence{vendor: "Dell Inc.", firmwareTables: true, cpuHypervisorFlag: true}, Virtual},
		{"/sys/hypervisor/type", evidence{hypervisorType: "xen", firmwareTables: true}, Virtual},
		{"device tree hypervisor", evidence{deviceTreeHypervisor: true, firmwareTables: true}, Virtual},
	} {
		if got := tc.e.machineType(); got != tc.want {
			t.Errorf("%s: machineType = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestCPUHypervisorFlag(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cpuinfo string
		want    bool
	}{
		{"x86 guest", "processor\t: 0\nflags\t\t: fpu vme hypervisor lahf_lm\n", true},
		{"x86 host", "processor\t: 0\nflags\t\t: fpu vme lahf_lm\n", false},
		{"only the first flags line counts", "flags\t: fpu\nflags\t: hypervisor\n", false},
		{"a flag that only contains the word", "flags\t: not_hypervisor hypervisorx\n", false},
		{"ARM has Features, not flags", "processor\t: 0\nFeatures\t: fp asimd\n", false},
		{"empty", "", false},
	} {
		if got := cpuHypervisorFlag([]byte(tc.cpuinfo)); got != tc.want {
			t.Errorf("%s: cpuHypervisorFlag = %t, want %t", tc.name, got, tc.want)
		}
	}
}
