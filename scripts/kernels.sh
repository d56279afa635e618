#!/usr/bin/env bash
# VERSION IMAGE HEADERS COMMON KBUILD come from resolve_lane_pkgs through eval.
# shellcheck disable=SC2153
# Fetch and unpack each test-matrix kernel into .cache/kernels/<lane>/ and write
# .cache/kernels/<lane>/env (LANE KVER VMLINUZ MODDIR KDIR).  Nothing is installed on
# this machine: images are unpacked with dpkg -x, never dpkg -i.
#   usage: scripts/kernels.sh [lane...]     (default: 6.1 6.12 debug)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

# Download pinned packages into $dir/debs (skipped when already there).
fetch() {
	local dir=$1 ver=$2 pkg
	shift 2
	mkdir -p "$dir/debs"
	for pkg in "$@"; do
		compgen -G "$dir/debs/${pkg}_*.deb" >/dev/null && continue
		# apt's _apt sandbox user cannot write here; the warning about it is noise.
		(cd "$dir/debs" && quiet apt-get download -q "$pkg=$ver")
	done
}

# Unpack debs into $dir/root once; a stamp records what was unpacked.
unpack() {
	local dir=$1 deb
	[ -e "$dir/root/.unpacked" ] && return 0
	rm -rf "$dir/root"
	mkdir -p "$dir/root"
	for deb in "$dir"/debs/*.deb; do
		dpkg -x "$deb" "$dir/root"
	done
	touch "$dir/root/.unpacked"
}

# The image packages ship no modules.dep (postinst runs depmod); generate it.
do_depmod() {
	local root=$1 kver=$2
	[ -s "$root/lib/modules/$kver/modules.dep" ] ||
		depmod -b "$root" "$kver"
}

write_env() {
	local dir=$1 lane=$2 kver=$3 kdir=$4
	local vmlinuz="$dir/root/boot/vmlinuz-$kver" moddir="$dir/root/lib/modules/$kver"
	[ -f "$vmlinuz" ] || die "lane $lane: no $vmlinuz"
	[ -d "$moddir" ] || die "lane $lane: no $moddir"
	[ -f "$kdir/Makefile" ] || die "lane $lane: no kernel headers at $kdir"
	printf 'LANE=%s\nKVER=%s\nVMLINUZ=%s\nMODDIR=%s\nKDIR=%s\n' \
		"$lane" "$kver" "$vmlinuz" "$moddir" "$kdir" >"$dir/env"
	cat "$dir/env"
}

lane_61() {
	local dir="$CACHE/kernels/6.1" kver pkgs
	pkgs=$(resolve_lane_pkgs 6.1) || exit 1
	eval "$pkgs"
	kver=${IMAGE#linux-image-}
	fetch "$dir" "$VERSION" "$IMAGE"
	unpack "$dir"
	do_depmod "$dir/root" "$kver"
	dir=$(realpath "$dir")
	# Build against the headers package deps.sh installed (Debian 12's own kernel).
	write_env "$dir" 6.1 "$kver" "/usr/src/$HEADERS"
}

lane_612() {
	local dir="$CACHE/kernels/6.12" kver kdir pkgs
	pkgs=$(resolve_lane_pkgs 6.12) || exit 1
	eval "$pkgs"
	kver=${IMAGE#linux-image-}
	# The headers package depends on the image; installing it would install a kernel
	# on this machine, so all four packages are only unpacked.
	fetch "$dir" "$VERSION" "$IMAGE" "$HEADERS" "$COMMON" "$KBUILD"
	unpack "$dir"
	do_depmod "$dir/root" "$kver"
	# The cache may be a symlink shared by several checkouts: write its real path,
	# the same from each of them.
	dir=$(realpath "$dir")
	kdir="$dir/root/usr/src/$HEADERS"
	# The arch headers include the common ones by absolute path: point it into the
	# cache.  (The scripts/tools symlinks are relative and already resolve there.)
	# Redone on every run, so a moved checkout still works.
	sed -i "s|^include .*/\(linux-headers-[^/]*-common/Makefile\)\$|include $dir/root/usr/src/\1|" \
		"$kdir/Makefile"
	write_env "$dir" 6.12 "$kver" "$kdir"
}

lane_debug() {
	local dir="$CACHE/kernels/debug" src kver deb
	src=$(shared_dir)/debug-kernel
	if ! compgen -G "$src/linux-image-*.deb" >/dev/null; then
		msg "SKIP debug lane: no $src/linux-image-*.deb"
		return 0
	fi
	mkdir -p "$dir/debs"
	for deb in "$src"/linux-image-*.deb "$src"/linux-headers-*.deb; do
		[ -e "$dir/debs/${deb##*/}" ] || cp "$deb" "$dir/debs/"
	done
	unpack "$dir"
	kver=$(basename "$(compgen -G "$dir/root/boot/vmlinuz-*" | head -n 1)")
	kver=${kver#vmlinuz-}
	do_depmod "$dir/root" "$kver"
	dir=$(realpath "$dir")
	write_env "$dir" debug "$kver" "$dir/root/usr/src/linux-headers-$kver"
}

lanes=("$@")
[ ${#lanes[@]} -gt 0 ] || read -r -a lanes <<<"$LANES_ALL"
for lane in "${lanes[@]}"; do
	case "$lane" in
	6.1) lane_61 ;;
	6.12) lane_612 ;;
	debug) lane_debug ;;
	*) die "unknown lane $lane (lanes: $LANES_ALL)" ;;
	esac
done
