#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Developer check: run tests/guest-cli.sh in the QEMU test host against a
# kvmguard.ko, without touching the shared .cache/initramfs images: copies
# the lane's test initramfs tree (make check builds it) to a temporary
# directory, adds this CLI, its libraries and the script, and boots it.
#   usage: tests/qemu.sh [LANE] [KVMGUARD.KO]    (from userspace/, after make)
# KVMGUARD.KO defaults to what make builds for the lane.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
lane=${1:-6.1}
ko=${2:-$top/.cache/build/$lane/kvmguard.ko}
base=$top/.cache/initramfs/$lane-test.root
[ -d "$base" ] || { echo "no $base: run make check (or scripts/mkinitramfs.sh $lane) once" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -a "$base" "$tmp/root"
cp "$ko" "$tmp/root/kvmguard/kvmguard.ko"
cp "$top/userspace/kvmguard" "$tmp/root/usr/sbin/kvmguard"
for lib in $(ldd "$top/userspace/kvmguard" | grep -oE '/[^ ]+'); do
	mkdir -p "$tmp/root$(dirname "$lib")"
	cp -L "$lib" "$tmp/root$lib"
done
[ -x "$top/selftests/kvm_guest" ] && cp "$top/selftests/kvm_guest" "$tmp/root/kvmguard/selftests/"
make -s -C "$top/userspace" tests/hcguest
cp "$top/userspace/tests/hcguest" "$tmp/root/kvmguard/hcguest"
cp "$top/userspace/tests/guest-cli.sh" "$tmp/root/kvmguard/demo.sh"
sed -i 's/^MODE=.*/MODE=demo/' "$tmp/root/etc/kvmguard-host"
(cd "$tmp/root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) |
	gzip -1 >"$tmp/initrd.cpio.gz"
KVMGUARD_BOOT_TIMEOUT=${KVMGUARD_BOOT_TIMEOUT:-300} \
	"$top/scripts/boot.sh" "$lane" "$tmp/initrd.cpio.gz" "$tmp/boot.log" >/dev/null || true
sed -n '/^KVMGUARD-SUITE-BEGIN/,/^KVMGUARD-SUITE-END/{/^KVMGUARD-SUITE/d;p}' "$tmp/boot.log"
grep -q '^1\.\.[0-9]' "$tmp/boot.log" && ! grep -q '^not ok' "$tmp/boot.log"
