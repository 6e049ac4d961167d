#!/bin/sh
#
# Post-build script of the Tally boards: runs after the rootfs overlay was
# copied, before the filesystem images are made. $1 is the target directory.
#
#  - The package's settings (from its options, kept in /usr/share/tally)
#    win over the board overlay's generic copies; a copy that differs from
#    the overlay's came from an overlay of your own and is kept.
#  - /etc/motd names the port and data directory actually configured.
#  - /etc/tally/build-info records what was built.
#  - The image must not let anyone in as root without a password.
#
# Ownership of the data directory is not set here (this script does not run
# as root): the package's TALLY_USERS and TALLY_PERMISSIONS do it in the
# fakeroot step, and S90tally again at every start.

set -eu

TARGET="${1:-${TARGET_DIR:?}}"
BOARD_DIR="$(cd "$(dirname "$0")" && pwd)"
OVERLAY="$BOARD_DIR/rootfs-overlay"

# restore FACTORY TARGET_FILE OVERLAY_FILE
restore() {
	if [ -f "$TARGET/$1" ] && cmp -s "$TARGET/$2" "$OVERLAY/$2"; then
		cp "$TARGET/$1" "$TARGET/$2"
	fi
}
restore usr/share/tally/tallyd.json etc/tally/tallyd.json
restore usr/share/tally/default etc/default/tally

config="$TARGET/etc/tally/tallyd.json"
if [ -f "$config" ]; then
	port=$(sed -n 's/^ *"httpsPort": *\([0-9][0-9]*\).*/\1/p' "$config")
	data=$(sed -n 's/^ *"dataDir": *"\([^"]*\)".*/\1/p' "$config")
	if [ -f "$TARGET/etc/motd" ] && [ -n "$port" ] && [ -n "$data" ]; then
		sed -i -e "s|:8443/|:$port/|" -e "s|/var/lib/tally/|$data/|" "$TARGET/etc/motd"
	fi
	[ -n "$data" ] && mkdir -p "$TARGET$data" && chmod 700 "$TARGET$data"
fi

# What was built: the version the package stamped into tallyd, and the
# Buildroot release and defconfig.
version=unknown
[ -f "$TARGET/usr/share/tally/version" ] && version=$(cat "$TARGET/usr/share/tally/version")
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
	built=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
else
	built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
fi
mkdir -p "$TARGET/etc/tally"
{
	echo "version=$version"
	echo "built=$built"
	if [ -n "${BR2_CONFIG:-}" ] && [ -f "$BR2_CONFIG" ]; then
		sed -n 's/^# Buildroot \(.*\) Configuration$/buildroot=\1/p' "$BR2_CONFIG"
		sed -n 's/^BR2_DEFCONFIG="\(.*\)"$/\1/p' "$BR2_CONFIG" | sed 's|^.*/|defconfig=|'
	fi
} >"$TARGET/etc/tally/build-info"

# Root password policy: console login as root only with a password, which
# the build is given (make TALLY_ROOT_PASSWORD=… or menuconfig).
if [ -f "$TARGET/etc/shadow" ] && grep -q '^root::' "$TARGET/etc/shadow"; then
	echo "post-build.sh: root would have no password: build with make TALLY_ROOT_PASSWORD=… (or set BR2_TARGET_GENERIC_ROOT_PASSWD)" >&2
	exit 1
fi
