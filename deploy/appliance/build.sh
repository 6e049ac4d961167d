#!/usr/bin/env bash
#
# build.sh assembles the arm64 Tally appliance image from parts this
# machine can get, into $OUT (make appliance-arm64 runs it):
#
#   vmlinuz               Debian bookworm's arm64 kernel (linux-image-arm64's)
#   initramfs.cpio.gz     busybox-static (arm64), the kernel modules of QEMU's
#                         virt machine, tallyd and tally-agent (arm64, static),
#                         buildroot/package/tally/S90tally and the Buildroot
#                         rootfs overlay, and deploy/appliance/rootfs (/init,
#                         inittab, rcS, rcK, udhcpc's script, the tally user)
#   manifest              what went in, with versions
#
# The .deb files come from Debian's archive through apt with a private state
# directory (no dpkg architecture is added to this machine, no root needed)
# and are kept in $CACHE, so a rebuild downloads nothing; the package lists
# are refreshed when they are a day old. KERNEL_PACKAGE names a kernel
# package other than the one linux-image-arm64 depends on.
set -euo pipefail

: "${OUT:=dist/appliance-arm64}"
: "${CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/tally-appliance}"
: "${GO:=go}"
: "${LDFLAGS:=-s -w}"
: "${OVERLAY:=buildroot/board/tally/rootfs-overlay}"
: "${INIT_SCRIPT:=buildroot/package/tally/S90tally}"
: "${KERNEL_PACKAGE:=}"
HERE=deploy/appliance

# The kernel modules QEMU's virt machine needs beyond what Debian builds in
# (PCI virtio transport, network, disk, entropy); their dependencies are
# added and ordered from the modules themselves.
MODULES="virtio_pci virtio_net virtio_blk virtio-rng"

die() { echo "appliance: $*" >&2; exit 1; }
for f in "$INIT_SCRIPT" "$OVERLAY/etc/default/tally" "$OVERLAY/etc/tally/tallyd.json"; do
	[ -e "$f" ] || die "$f is missing"
done
command -v apt-get >/dev/null || die "apt-get is needed to fetch Debian's arm64 packages"
command -v dpkg-deb >/dev/null || die "dpkg-deb is needed to unpack them"

# --- Debian packages ------------------------------------------------------

apt_root=$CACHE/apt
debs=$CACHE/debs
mkdir -p "$apt_root/etc/apt.conf.d" "$apt_root/etc/preferences.d" "$apt_root/lists/partial" \
	"$apt_root/archives/partial" "$debs"
[ -e "$apt_root/status" ] || : >"$apt_root/status"
cat >"$apt_root/sources.list" <<'EOF'
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
EOF
# APT_CONFIG is read before apt's configuration directory, so this machine's
# apt settings (other architectures, hooks) stay out.
cat >"$apt_root/apt.conf" <<EOF
Dir::Etc::SourceList "$apt_root/sources.list";
Dir::Etc::SourceParts "/nonexistent";
Dir::Etc::Parts "$apt_root/etc/apt.conf.d";
Dir::Etc::PreferencesParts "$apt_root/etc/preferences.d";
Dir::State "$apt_root";
Dir::State::Lists "$apt_root/lists";
Dir::State::status "$apt_root/status";
Dir::Cache "$apt_root";
Dir::Cache::archives "$apt_root/archives";
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
APT::Sandbox::User "root";
Acquire::Languages "none";
Debug::NoLocking "true";
EOF
export APT_CONFIG=$apt_root/apt.conf

if [ -z "$(find "$apt_root/lists" -name '*_Packages' -mmin -1440 2>/dev/null | head -1)" ]; then
	echo "appliance: apt-get update (arm64, private lists in $apt_root)"
	ok=
	for try in 1 2 3; do
		if apt-get -q -o Acquire::Retries=3 update >"$apt_root/update.log" 2>&1; then ok=1; break; fi
		sleep $((try * 5))
	done
	[ -n "$ok" ] || { cat "$apt_root/update.log" >&2; die "apt-get update failed"; }
fi

# candidate PACKAGE prints the version apt would install.
candidate() { apt-cache policy "$1" | awk '/Candidate:/ {print $2}'; }

if [ -z "$KERNEL_PACKAGE" ]; then
	KERNEL_PACKAGE=$(apt-cache depends linux-image-arm64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	[ -n "$KERNEL_PACKAGE" ] || die "linux-image-arm64 names no kernel package"
fi

# fetch PACKAGE prints the path of its cached .deb, downloading it if needed.
fetch() {
	local pkg=$1 version file
	version=$(candidate "$pkg")
	if [ -z "$version" ] || [ "$version" = "(none)" ]; then
		die "no arm64 package $pkg"
	fi
	file=$debs/${pkg}_${version//:/%3a}_arm64.deb
	if [ ! -s "$file" ]; then
		echo "appliance: download $pkg $version" >&2
		(cd "$debs" && apt-get -q -o Acquire::Retries=3 download "$pkg=$version" >&2) || die "download $pkg failed"
	fi
	[ -s "$file" ] || die "$file is missing after the download"
	echo "$file"
}

kernel_deb=$(fetch "$KERNEL_PACKAGE")
busybox_deb=$(fetch busybox-static)

work=$OUT/work
rm -rf "$work"
mkdir -p "$work/kernel" "$work/busybox"
dpkg-deb -x "$kernel_deb" "$work/kernel"
dpkg-deb -x "$busybox_deb" "$work/busybox"
kver=$(ls "$work/kernel/lib/modules")
[ "$(echo "$kver" | wc -w)" = 1 ] || die "expected one kernel in $kernel_deb, found: $kver"
moddir=$work/kernel/lib/modules/$kver

# --- kernel modules in dependency order ----------------------------------

declare -A seen=()
order=()
# add MODULE appends MODULE's dependencies, then MODULE, to order. A
# module Debian builds into the kernel is left out.
add() {
	local name=${1//-/_} path deps dep
	[ -n "${seen[$name]:-}" ] && return 0
	seen[$name]=1
	if grep -q "/${name}.ko\$" "$moddir/modules.builtin" 2>/dev/null ||
		grep -q "/${1}.ko\$" "$moddir/modules.builtin" 2>/dev/null; then
		return 0
	fi
	path=$(cd "$moddir" && find kernel -name "${name}.ko" -o -name "${name//_/-}.ko" | head -1)
	[ -n "$path" ] || die "module $1 is neither built in nor in $KERNEL_PACKAGE"
	# A module's .modinfo section holds "depends=a,b" (no kmod needed).
	deps=$(tr '\0' '\n' <"$moddir/$path" | sed -n 's/^depends=//p' | head -1)
	for dep in ${deps//,/ }; do
		add "$dep"
	done
	order+=("$path")
}
for m in $MODULES; do
	add "$m"
done

# --- binaries ---------------------------------------------------------------

bin=$work/bin
mkdir -p "$bin"
for cmd in tallyd tally-agent; do
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 "$GO" build -trimpath -ldflags "$LDFLAGS" -o "$bin/$cmd" "./cmd/$cmd"
done
"$GO" build -o "$bin/mkinitramfs" "./$HERE/mkinitramfs"

# --- root file system --------------------------------------------------------

root=$work/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/init.d,proc,sys,dev,run,tmp,root,var/log,var/lib/tally,lib/modules/"$kver"}
ln -s ../run "$root/var/run"
install -m 0755 "$work/busybox/bin/busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp -R "$HERE/rootfs/." "$root/"
cp -R "$OVERLAY/." "$root/"
install -m 0755 "$INIT_SCRIPT" "$root/etc/init.d/S90tally"
install -m 0755 "$bin/tallyd" "$bin/tally-agent" "$root/usr/bin/"
: >"$root/etc/modules.order"
for path in "${order[@]}"; do
	mkdir -p "$root/lib/modules/$kver/$(dirname "$path")"
	cp "$moddir/$path" "$root/lib/modules/$kver/$path"
	echo "$kver/$path" >>"$root/etc/modules.order"
done
chmod 0755 "$root/init" "$root/etc/init.d/rcS" "$root/etc/init.d/rcK" "$root/usr/share/udhcpc/default.script"
chmod 0700 "$root/root" "$root/var/lib/tally"
chmod 1777 "$root/tmp"

"$bin/mkinitramfs" -root "$root" -o "$OUT/initramfs.cpio.gz" -node /dev/console:c:5:1:600 -node /dev/null:c:1:3:666
cp "$work/kernel/boot/vmlinuz-$kver" "$OUT/vmlinuz"

{
	echo "kernel: $KERNEL_PACKAGE $(candidate "$KERNEL_PACKAGE") ($kver)"
	echo "busybox: busybox-static $(candidate busybox-static)"
	echo "modules: $(for p in "${order[@]}"; do basename "$p" .ko; done | tr '\n' ' ')"
	echo "tally: $(git describe --tags --always --dirty 2>/dev/null || echo dev)"
	echo "init script: $INIT_SCRIPT"
	echo "overlay: $OVERLAY"
} >"$OUT/manifest"
rm -rf "$work"
echo "appliance: $OUT/vmlinuz $OUT/initramfs.cpio.gz ($(du -h "$OUT/initramfs.cpio.gz" | cut -f1))"
sed 's/^/appliance: /' "$OUT/manifest"
