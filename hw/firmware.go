package hw

import (
	"strings"

	"github.com/jaypipes/ghw"
)

// firmware is what the DMI tables or the device tree say about the machine.
type firmware struct {
	dmi        bool   // /sys/class/dmi/id is readable
	deviceTree string // the device tree directory under the root, "" when there is none
	vendor     string
	product    string
	uuid       string
	// systemSerial is the SMBIOS system (type 1) serial, boardSerial the
	// baseboard's (type 2) or the device tree's.
	systemSerial string
	boardSerial  string
}

// deviceTreeDirs are where Linux shows the device tree, in the order hw
// looks. ghw reads only the first.
func deviceTreeDirs() [][]string {
	return [][]string{
		{"sys", "firmware", "devicetree", "base"},
		{"proc", "device-tree"},
	}
}

// readFirmware takes ghw's DMI (or device tree) answers and fills what is
// missing from a device tree that ghw did not read.
func readFirmware(fs sysfs, product *ghw.ProductInfo, board *ghw.BaseboardInfo) firmware {
	fw := firmware{
		dmi:          fs.isDir("sys", "class", "dmi", "id"),
		vendor:       present(product.Vendor),
		product:      present(product.Name),
		uuid:         present(product.UUID),
		systemSerial: present(product.SerialNumber),
		boardSerial:  present(board.SerialNumber),
	}
	for _, dir := range deviceTreeDirs() {
		if fs.isDir(dir...) {
			fw.deviceTree = fs.path(dir...)
			break
		}
	}
	if fw.deviceTree == "" {
		return fw
	}
	dt := sysfs{root: fw.deviceTree}
	if fw.boardSerial == "" {
		fw.boardSerial = present(dt.attr("serial-number"))
	}
	if fw.product == "" {
		fw.product = present(dt.attr("model"))
	}
	if fw.vendor == "" {
		// The vendor prefix of the most specific "compatible" entry, as ghw
		// gives it: "raspberrypi" for "raspberrypi,4-model-b".
		vendor, _, _ := strings.Cut(firstString(dt.read("compatible")), ",")
		fw.vendor = present(vendor)
	}
	return fw
}

// machineType gathers the evidence for the machine's type.
func (fw firmware) machineType(fs sysfs) MachineType {
	e := evidence{
		vendor:            fw.vendor,
		product:           fw.product,
		hypervisorType:    present(fs.attr("sys", "hypervisor", "type")),
		cpuHypervisorFlag: cpuHypervisorFlag(fs.read("proc", "cpuinfo")),
		firmwareTables:    fw.dmi || fw.deviceTree != "",
	}
	if fw.deviceTree != "" {
		dt := sysfs{root: fw.deviceTree}
		e.deviceTreeHypervisor = dt.exists("hypervisor") ||
			strings.Contains(string(dt.read("compatible")), "linux,dummy-virt")
	}
	return e.machineType()
}

// evidence is what the machine's type is decided from.
type evidence struct {
	vendor, product      string // from DMI or the device tree
	hypervisorType       string // /sys/hypervisor/type, e.g. "xen"
	cpuHypervisorFlag    bool   // "hypervisor" among the CPU flags
	deviceTreeHypervisor bool   // a /hypervisor node, or QEMU's "linux,dummy-virt" board
	firmwareTables       bool   // DMI or a device tree is readable
}

// machineType is Virtual on any sign of a hypervisor, Physical when the
// firmware tables were readable and show none, and Unknown when there was
// nothing to look at.
func (e evidence) machineType() MachineType {
	switch {
	case virtualPlatform(e.vendor, e.product), e.hypervisorType != "", e.cpuHypervisorFlag, e.deviceTreeHypervisor:
		return Virtual
	case e.firmwareTables:
		return Physical
	default:
		return Unknown
	}
}

// virtualPlatform reports whether a DMI vendor and product name a platform
// that only hypervisors present.
func virtualPlatform(vendor, product string) bool {
	v, p := strings.ToLower(vendor), strings.ToLower(product)
	switch {
	case v == "amazon ec2":
		// Bare-metal instances carry the same vendor.
		return !strings.HasSuffix(p, ".metal")
	case strings.Contains(v, "qemu"), strings.Contains(p, "qemu"),
		strings.Contains(p, "kvm"),
		strings.Contains(v, "vmware"), strings.Contains(p, "vmware"),
		strings.Contains(v, "innotek"), strings.Contains(p, "virtualbox"),
		v == "xen", strings.HasPrefix(p, "hvm domu"),
		strings.HasPrefix(v, "microsoft") && p == "virtual machine",
		p == "google compute engine",
		strings.Contains(v, "parallels"), strings.Contains(p, "parallels"),
		v == "bochs", p == "bochs":
		return true
	default:
		return false
	}
}

// cpuHypervisorFlag reports whether the first "flags" line of /proc/cpuinfo
// lists "hypervisor", which x86 CPUs show inside a virtual machine.
func cpuHypervisorFlag(cpuinfo []byte) bool {
	for line := range strings.Lines(string(cpuinfo)) {
		key, flags, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(key) != "flags" {
			continue
		}
		for f := range strings.FieldsSeq(flags) {
			if f == "hypervisor" {
				return true
			}
		}
		return false
	}
	return false
}

// present returns v trimmed, or "" when it is missing.
func present(v string) string {
	if missing(v) {
		return ""
	}
	return strings.Trim(v, " \t\r\n\x00")
}

// firstString returns the first string of a device tree string list.
func firstString(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\x00")
	return strings.TrimSpace(s)
}
