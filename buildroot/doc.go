// Package buildroot holds no Go code of Tally's: the directory is a
// BR2_EXTERNAL tree that puts Tally into firmware images built with
// Buildroot (docs/buildroot.md), and this package holds its tests.
//
// The tree:
//
//	external.desc, Config.in, external.mk   the BR2_EXTERNAL named TALLY
//	package/tally/                          the golang-package, its options,
//	                                        S90tally, tally.service and
//	                                        tally-config.sh (the default settings)
//	board/tally/                            rootfs overlay, post-build and
//	                                        post-image scripts
//	configs/                                qemu aarch64 virt, Raspberry Pi 4
//	                                        (64-bit) and x86_64 PC defconfigs
//
// A real Buildroot build needs Buildroot and the network, so the tests check
// what can be checked without them: the init script is run for real, with
// its paths moved under a temporary root (TALLY_ROOT), against a tallyd built
// from this tree; the package's make logic runs in GNU make with the few
// Buildroot helpers it uses stubbed; the board scripts run on a fake target
// directory; the source tarball of "make buildroot-src" is built offline
// exactly as the golang-package infrastructure builds it; and the symbols of
// the defconfigs and Config.in files are checked against each other.
package buildroot
