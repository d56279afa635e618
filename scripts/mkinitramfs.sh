#!/usr/bin/env bash
# Build the test host's initramfs for one lane: busybox, iproute2, the lane's
# KVM/network modules, kvmguard.ko, the CLI, the selftests and scripts/guest-init.sh
# as /init.
#   usage: scripts/mkinitramfs.sh <lane> [test|demo|smoke]   (default: test)
# smoke packs no project files: it only proves kvm_amd loads and /dev/kvm appears
# (bench/run.sh appends its own archive to it).
# Output: .cache/initramfs/<lane>-<mode>.cpio.gz (path printed on stdout).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

lane=${1:?usage: mkinitramfs.sh <lane> [test|demo|smoke]}
mode=${2:-test}
case "$mode" in test | demo | smoke) ;; *) die "unknown mode $mode" ;; esac
load_lane_env "$lane"

# Loaded by /init in this order (dependencies first).  kvm-amd is the only KVM
# backend QEMU's TCG can emulate (SVM).
MODULES="kvm kvm-amd tun tap macvtap vhost vhost_net bridge veth 8021q"
# tc for selftest net_bypass, where the kernel has it (the debug kernel has not:
# the test skips there).
OPTIONAL_MODULES="sch_ingress cls_matchall act_mirred"
KO=${KVMGUARD_KO:-$CACHE/build/$lane/kvmguard.ko}
# The failure-injection build (check.sh), for the fault selftests; shipped if built.
FAULTS_KO=${KVMGUARD_FAULTS_KO:-$CACHE/build/$lane-faults/kvmguard.ko}

out="$CACHE/initramfs/$lane-$mode.cpio.gz"
root="$CACHE/initramfs/$lane-$mode.root"
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,kvmguard/selftests}

# Copy a file to the same absolute path inside the initramfs.
put() {
	mkdir -p "$root$(dirname "$2")"
	cp -L "$1" "$root$2"
}

# Copy an ELF executable plus every shared library it needs (ld-linux included);
# the paths ldd prints on this machine are the paths the loader will look at.
put_elf() {
	local src=$1 dst=$2 lib
	put "$src" "$dst"
	# ldd fails on static binaries: nothing to add then.
	for lib in $(ldd "$src" 2>/dev/null | grep -oE '/[^ ]+' || true); do
		[ -e "$root$lib" ] || put "$lib" "$lib"
	done
}

is_elf() { [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ]; }

# Resolve module dependencies from modules.dep into load order (deps first).
declare -A seen=()
order=()
dep_line() { awk -F: -v m="$1" '$1 ~ "/"m"\\.ko(\\.[a-z]+)?$" { print; exit }' "$MODDIR/modules.dep"; }
add_mod_path() {
	local path=$1 line dep
	[ -n "${seen[$path]:-}" ] && return 0
	seen[$path]=1
	line=$(awk -F: -v p="$path" '$1 == p { print; exit }' "$MODDIR/modules.dep")
	# modules.dep lists a module's whole closure; loading right to left is valid.
	for dep in $(printf '%s\n' "${line#*:}" | tr ' ' '\n' | tac); do
		add_mod_path "$dep"
	done
	order+=("$path")
}
for m in $MODULES; do
	line=$(dep_line "$m")
	[ -n "$line" ] || line=$(dep_line "${m//-/_}")
	[ -n "$line" ] || die "lane $lane: module $m not in $MODDIR/modules.dep"
	add_mod_path "${line%%:*}"
done
for m in $OPTIONAL_MODULES; do
	line=$(dep_line "$m")
	if [ -n "$line" ]; then
		add_mod_path "${line%%:*}"
	else
		echo "lane $lane: no module $m (the tests that need it skip)" >&2
	fi
done

# Copy modules, decompressing .ko.xz/.ko.zst (6.12) so busybox insmod can load them.
: >"$root/etc/modules.list"
for path in "${order[@]}"; do
	dst="/lib/modules/$KVER/${path%.*}"
	case "$path" in
	*.ko) dst="/lib/modules/$KVER/$path" ;;
	esac
	mkdir -p "$root$(dirname "$dst")"
	case "$path" in
	*.ko.xz) xz -dc "$MODDIR/$path" >"$root$dst" ;;
	*.ko.zst) zstd -qdc "$MODDIR/$path" >"$root$dst" ;;
	*.ko.gz) gzip -dc "$MODDIR/$path" >"$root$dst" ;;
	*) cp "$MODDIR/$path" "$root$dst" ;;
	esac
	echo "$dst" >>"$root/etc/modules.list"
done

put /bin/busybox /bin/busybox
ln -s busybox "$root/bin/sh" # the kernel execs /init via #!/bin/sh
# iproute2's ip and bridge for the network selftests, which call them by full path:
# busybox's ip has no netns, tuntap, vlan or macvtap, and there is no busybox bridge
# (its sh runs its own ip applet for a bare "ip").  ip netns keeps its mounts in
# /var/run/netns; /run is a tmpfs in the test host.
for tool in ip bridge tc; do
	src=""
	for d in /usr/sbin /sbin /usr/bin /bin; do
		if [ -x "$d/$tool" ]; then src=$d/$tool; break; fi
	done
	[ -n "$src" ] || die "no iproute2 $tool on this machine (run scripts/deps.sh)"
	put_elf "$src" "/usr/sbin/$tool"
done
mkdir -p "$root/var"
ln -s /run "$root/var/run"
put "$TOP/scripts/guest-init.sh" /init
chmod 755 "$root/init"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
	>"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
# KVMGUARD_TESTS (names, space-separated) runs only those selftests.
printf 'MODE=%s\nLANE=%s\nKVER=%s\nTESTS="%s"\n' "$mode" "$lane" "$KVER" \
	"${KVMGUARD_TESTS:-}" >"$root/etc/kvmguard-host"

if [ "$mode" != smoke ]; then
	[ -f "$KO" ] || die "no $KO (build the module for lane $lane first)"
	put "$KO" /kvmguard/kvmguard.ko
	[ "$mode" != test ] || [ ! -f "$FAULTS_KO" ] || put "$FAULTS_KO" /kvmguard/faults/kvmguard.ko
	[ -x "$TOP/userspace/kvmguard" ] || die "no userspace/kvmguard (make userspace)"
	put_elf "$TOP/userspace/kvmguard" /usr/sbin/kvmguard
	# Contract with selftests/Makefile: print-install-files lists what the host needs,
	# relative to selftests/.
	files=$(make -s --no-print-directory -C "$TOP/selftests" print-install-files) ||
		die "make -C selftests print-install-files failed"
	for f in $files; do
		src="$TOP/selftests/$f"
		[ -e "$src" ] || die "selftests lists $f but $src does not exist (make selftests)"
		if is_elf "$src"; then
			put_elf "$src" "/kvmguard/selftests/$f"
		else
			put "$src" "/kvmguard/selftests/$f"
		fi
		[ -x "$src" ] && chmod 755 "$root/kvmguard/selftests/$f"
	done
	# The selftests' test-only modules for this lane (check.sh builds them); a
	# test that needs one skips without it.
	for f in "${KVMGUARD_TESTMODS:-$CACHE/build/$lane-testmods}"/*.ko; do
		[ ! -f "$f" ] || put "$f" "/kvmguard/selftests/modules/${f##*/}"
	done
	if [ "$mode" = demo ]; then
		put "$TOP/scripts/demo.policy" /kvmguard/demo.policy
		put "$TOP/scripts/demo-guest.sh" /kvmguard/demo.sh
		chmod 755 "$root/kvmguard/demo.sh"
	fi
fi

mkdir -p "$(dirname "$out")"
(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) |
	gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
