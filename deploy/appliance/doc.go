// Package appliance tests the arm64 Tally appliance image end to end: the
// image `make appliance-arm64` assembles (build.sh) boots under
// qemu-system-aarch64 with UEFI firmware and no accelerator, starts tallyd
// through buildroot/package/tally/S90tally with the Buildroot rootfs
// overlay, answers on the forwarded port 8443, grants a checkout to
// tally-agent on the host, reports the HostIDs QEMU gave it, and stops
// tallyd gracefully when `poweroff` is typed on its console.
//
// The image is a kernel and a gzip cpio initramfs, nothing more:
//
//   - vmlinuz, Debian bookworm's arm64 kernel (the package linux-image-arm64
//     depends on), with the modules QEMU's virt machine needs beyond what
//     Debian builds in: virtio_pci, virtio_net, virtio_blk, virtio-rng and
//     their dependencies, loaded in dependency order by /init.
//   - busybox from Debian's busybox-static, as shell, init and tools.
//   - tallyd and tally-agent for linux/arm64, static and stripped.
//   - S90tally and the overlay exactly as the Buildroot tree has them, and
//     rootfs/ from here: /init, the inittab, rcS and rcK as Buildroot's,
//     udhcpc's script, and the user tally that Buildroot's package creates.
//
// /init mounts the pseudo file systems, sets the host name from
// tally.hostname= on the kernel command line, loads the modules, lets the
// group tally read the DMI serials and UUID (root's alone otherwise, and
// tallyd runs as tally), brings up lo and eth0 by DHCP, and becomes busybox
// init. tally.dev=1 on the command line exports TALLYD_ARGS="--dev --bind
// 0.0.0.0" to the init scripts, so that S90tally can start tallyd with the
// demo producer's rights and reachable through QEMU's port forwarding.
// "poweroff" makes busybox init run rcK (S90tally stop), print the end of
// tallyd's log on the console (the image keeps nothing once it is off),
// sync and power off.
//
// HostIDs: on the arm virt machine QEMU's SMBIOS tables reach the guest
// only through UEFI, so the test boots QEMU_EFI.fd with -kernel, -initrd
// and -append (EDK2 loads the kernel from fw_cfg). QEMU's -smbios type=1
// sets the product serial and UUID, type=2 the board serial, the -nic the
// MAC and the virtio-blk disk its serial; package hw reports the MAC, the
// UUID, the board serial and the disk serial (not the product serial).
//
// The test runs only with TALLY_E2E=1; `make e2e-appliance` builds the
// image and runs it. It needs qemu-system-aarch64 and the firmware (Debian:
// qemu-system-arm, qemu-efi-aarch64) and boots the image in TALLY_APPLIANCE
// (default dist/appliance-arm64). Every wait is bounded and QEMU is killed
// when the test ends.
package appliance
