// Package hw owns the identity of the machine Tally runs on: the HostIDs an
// administrator or the back office can bind licenses to, whether the machine
// is physical or virtual, and its vendor and product names. It reads sysfs and
// procfs through github.com/jaypipes/ghw and through a few reads of its own,
// always under one root directory (Config.Root) so that tests can point it at
// a fixture tree; it never runs external tools and never writes to stdout or
// stderr.
//
// # What becomes a HostID
//
//   - ETHERNET: the permanent MAC address of every physical network interface.
//     An interface is physical when its sysfs entry does not live under
//     devices/virtual and it has a device link; this drops lo, bridges, veth,
//     docker, tun, bonds and the like. A MAC the kernel made up at random or
//     that user space set (addr_assign_type other than 0) is not an identity,
//     so ghw does not report it and neither does hw.
//   - UUID: the DMI product UUID.
//   - SERIAL: the system serial (DMI product_serial), the board serial (DMI
//     board_serial, or the device tree's serial-number on boards without DMI
//     such as the Raspberry Pi), then the serial of every disk.
//
// # Order
//
// HostIDs come in a stable order: ETHERNET by interface name, then UUID, then
// SERIAL with the system's (SMBIOS type 1) first, then the board's and the
// disks' by device name. Names sort as
// plain strings ("eth10" before "eth2"). A value already listed with the same
// type is not listed again.
//
// # Missing values
//
// Firmware fills fields it does not know with placeholder text, and ghw
// answers "unknown" without an error when it cannot read a file. hw treats
// both as missing, never as an identity: after trimming space and NULs and
// ignoring case, "", "unknown", "None", "Not Specified", "Not Applicable",
// "Not Available", "N/A", "To be filled by O.E.M.", "Default string",
// "System Serial Number", "Base Board Serial Number", "System manufacturer",
// "System Product Name", "0123456789", the UUID
// 03000200-0400-0500-0006-000700080009 that many AMI boards share, and any
// value whose digits (ignoring "-", ":", spaces and a leading "0x") are all 0
// or all F. A value that hostid.New refuses is skipped as well. Missing data
// is never an error: a container with nothing readable yields no HostIDs and
// the type Unknown.
//
// # Fallbacks
//
// Where ghw reads only one place, hw reads the others:
//
//   - Disk serials: ghw reads the udev database (/run/udev/data), which
//     Buildroot firmware does not have. When ghw has no serial, hw reads
//     /sys/block/<dev>/device/serial (NVMe controllers, MMC and SD cards, which
//     give the CID serial as hex such as 0x1a2b3c4d, exactly as udev's
//     ID_SERIAL does), /sys/block/<dev>/serial (virtio-blk), and the unit
//     serial number VPD page /sys/block/<dev>/device/vpd_pg80 (SCSI, and SATA
//     disks through libata). Loop, RAM, zram, device-mapper, md, nbd and
//     optical (sr) devices are skipped: they are not hardware of this machine
//     or repeat a disk beneath them.
//   - Device tree: ghw reads /sys/firmware/devicetree/base; hw also reads
//     /proc/device-tree when that is all there is.
//
// # Physical or virtual
//
// A machine is Virtual when its DMI vendor or product names a hypervisor
// (QEMU, KVM, VMware, VirtualBox, Xen, Microsoft Virtual Machine, Amazon EC2
// except the .metal instances, Google Compute Engine, Parallels, Bochs), when
// /sys/hypervisor/type names one, when the CPU flags in /proc/cpuinfo include
// "hypervisor", or when the device tree has a hypervisor node or is QEMU's
// "linux,dummy-virt". Otherwise it is Physical when DMI or a device tree is
// readable, and Unknown when neither is. A container sees the host's DMI and
// CPU flags, so it reports the type of the host it runs on.
//
// DMI serials and the product UUID are readable only by root; run as another
// user, hw simply finds them missing.
package hw
