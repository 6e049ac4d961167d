#!/bin/sh
#
# Post-image script of the Tally boards. $1 is the images directory; the
# board is read from the Buildroot config (BR2_CONFIG), since the
# arguments of BR2_ROOTFS_POST_SCRIPT_ARGS belong to the board scripts this
# one runs beside.
#
#  - qemu aarch64 virt: writes start-qemu.sh next to the images, which
#    boots them with the web UI forwarded to https://localhost:8443/.
#  - Raspberry Pi 4: makes sdcard.img with Buildroot's own
#    board/raspberrypi/post-image.sh (genimage), which is given the same
#    arguments.
#  - x86_64 PC: nothing; support/scripts/genimage.sh makes disk.img.

set -eu

BINARIES="${1:-${BINARIES_DIR:?}}"

enabled() {
	grep -q "^$1=y\$" "${BR2_CONFIG:?}"
}

if enabled BR2_PACKAGE_RPI_FIRMWARE; then
	# Run from the Buildroot tree, as all post-image scripts are.
	exec board/raspberrypi/post-image.sh "$@"
fi

if enabled BR2_aarch64; then
	cat >"$BINARIES/start-qemu.sh" <<'EOF'
#!/bin/sh
# Boots the Tally appliance image under QEMU (aarch64 virt, no accelerator
# needed). The web UI: https://localhost:${TALLY_HOST_PORT:-8443}/
# Stop with "poweroff" at the console, or Ctrl-A X.
IMAGES="$(cd "$(dirname "$0")" && pwd)"
exec qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 2 -m 1024 -nographic \
	-kernel "$IMAGES/Image" \
	-append "rootwait root=/dev/vda console=ttyAMA0" \
	-netdev "user,id=eth0,hostfwd=tcp::${TALLY_HOST_PORT:-8443}-:8443" \
	-device virtio-net-device,netdev=eth0 \
	-drive "file=$IMAGES/rootfs.ext4,if=none,format=raw,id=hd0" \
	-device virtio-blk-device,drive=hd0 \
	"$@"
EOF
	# The guest's port is the one the image's tallyd.json names.
	port=$(sed -n 's/^ *"httpsPort": *\([0-9][0-9]*\).*/\1/p' \
		"${TARGET_DIR:-/nonexistent}/etc/tally/tallyd.json" 2>/dev/null || true)
	if [ -n "$port" ] && [ "$port" != 8443 ]; then
		sed -i "s|-:8443\"|-:$port\"|" "$BINARIES/start-qemu.sh"
	fi
	chmod 755 "$BINARIES/start-qemu.sh"
fi
