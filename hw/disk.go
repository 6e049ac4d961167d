package hw

import (
	"encoding/binary"
	"slices"
	"strings"

	"github.com/jaypipes/ghw"
)

// diskSerials returns the serials of the machine's disks, ordered by device
// name. ghw's serial comes from the udev database; where there is none (no
// udev, as on Buildroot) the serial is read from sysfs.
func diskSerials(fs sysfs, disks []*ghw.Disk) []string {
	hardware := slices.DeleteFunc(slices.Clone(disks), func(d *ghw.Disk) bool {
		return d == nil || notHardware(d.Name)
	})
	slices.SortFunc(hardware, func(a, b *ghw.Disk) int { return strings.Compare(a.Name, b.Name) })
	serials := make([]string, 0, len(hardware))
	for _, d := range hardware {
		serial := d.SerialNumber
		if missing(serial) {
			serial = sysfsDiskSerial(fs, d.Name)
		}
		serials = append(serials, serial)
	}
	return serials
}

// notHardware reports whether a block device is a software device (loop,
// RAM, zram, device-mapper, md, nbd) or an optical drive, none of which
// identify the machine.
func notHardware(name string) bool {
	for _, prefix := range []string{"loop", "ram", "zram", "dm-", "md", "nbd", "sr"} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// sysfsDiskSerial reads a disk's serial from sysfs, or returns "".
func sysfsDiskSerial(fs sysfs, dev string) string {
	candidates := []string{
		// NVMe controller or subsystem; MMC and SD cards ("0x1a2b3c4d").
		fs.attr("sys", "block", dev, "device", "serial"),
		// virtio-blk.
		fs.attr("sys", "block", dev, "serial"),
		// SCSI disks, and SATA disks through libata's translation.
		vpdUnitSerial(fs.read("sys", "block", dev, "device", "vpd_pg80")),
	}
	for _, serial := range candidates {
		if !missing(serial) {
			return serial
		}
	}
	return ""
}

// vpdUnitSerial decodes the SCSI Unit Serial Number VPD page (0x80): a
// four-byte header whose last two bytes give the length of the serial that
// follows. It returns "" for anything else.
func vpdUnitSerial(page []byte) string {
	if len(page) < 4 || page[1] != 0x80 {
		return ""
	}
	n := int(binary.BigEndian.Uint16(page[2:4]))
	if n > len(page)-4 {
		return ""
	}
	return strings.Trim(string(page[4:4+n]), " \x00")
}
