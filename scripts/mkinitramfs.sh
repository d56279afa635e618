#!/usr/bin/env bash
# Build the test host's initramfs for one lane: busybox, iproute2, the lane's
# KVM/network modules, kvmguard.ko, the CLI, the selftests and scripts/guest-init.sh
# as /init.
#   usage: scripts/mkinitramfs.sh <lane> [test|demo|smoke|vmm]   (default: test;
#          lanes vmm-6.1 and vmm-6.12: vmm)
# smoke packs no project files: it only proves kvm_amd loads and /dev/kvm appears
# (bench/run.sh appends its own archive to it).
# vmm (lane vmm-<kernel lane>, make check's vmm lanes) packs, instead of the
# selftests, Debian's qemu-system-x86_64 with its libraries and firmware, the
# lane's own vmlinuz and a busybox initramfs for the inner guest (built here from
# busybox-static and the lane's virtio_net, virtio_pci and 8021q), and
# selftests/vmm/run.sh as the suite runner guest-init.sh calls
# (/kvmguard/selftests/run_tests.sh).
# Output: .cache/initramfs/<lane>-<mode>.cpio.gz (path printed on stdout).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

lane=${1:?usage: mkinitramfs.sh <lane> [test|demo|smoke|vmm]}
case "$lane" in
vmm-*) mode=${2:-vmm}; [ "$mode" = vmm ] || die "lane $lane: mode vmm only" ;;
*) mode=${2:-test} ;;
esac
case "$mode" in test | demo | smoke) ;; vmm) [ "${lane#vmm-}" != "$lane" ] ||
	die "mode vmm needs lane vmm-<kernel lane>" ;; *) die "unknown mode $mode" ;; esac
# A vmm lane runs the kernel of the lane it names.
load_lane_env "${lane#vmm-}"

# Loaded by /init in this order (dependencies first).  kvm-amd is the only KVM
# backend QEMU's TCG can emulate (SVM).
MODULES="kvm kvm-amd tun tap macvtap vhost vhost_net bridge veth 8021q"
# tc for selftest net_bypass, where the kernel has it (the debug kernel has not:
# the test skips there).
OPTIONAL_MODULES="sch_ingress cls_matchall act_mirred"
KO=${KVMGUARD_KO:-$CACHE/build/${lane#vmm-}/kvmguard.ko}
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

# Resolve module dependencies from modules.dep into load order (deps first):
# resolve_modules "REQUIRED..." "OPTIONAL..." sets order[].  A required module
# the kernel has built in (modules.builtin) needs nothing.
declare -A seen=()
order=()
dep_line() { awk -F: -v m="$1" '$1 ~ "/"m"\\.ko(\\.[a-z]+)?$" { print; exit }' "$MODDIR/modules.dep"; }
builtin_mod() { grep -qE "/(${1}|${1//-/_})\.ko\$" "$MODDIR/modules.builtin" 2>/dev/null; }
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
resolve_modules() {
	local m line
	seen=()
	order=()
	for m in $1; do
		line=$(dep_line "$m")
		[ -n "$line" ] || line=$(dep_line "${m//-/_}")
		if [ -z "$line" ] && builtin_mod "$m"; then continue; fi
		[ -n "$line" ] || die "lane $lane: module $m not in $MODDIR/modules.dep"
		add_mod_path "${line%%:*}"
	done
	for m in $2; do
		line=$(dep_line "$m")
		if [ -n "$line" ]; then
			add_mod_path "${line%%:*}"
		else
			echo "lane $lane: no module $m (the tests that need it skip)" >&2
		fi
	done
}

# Copy order[]'s modules under root $1 and list them in $1/etc/modules.list,
# decompressing .ko.xz/.ko.zst (6.12) so busybox insmod can load them.
copy_modules() {
	local r=$1 path dst
	mkdir -p "$r/etc"
	: >"$r/etc/modules.list"
	for path in "${order[@]}"; do
		dst="/lib/modules/$KVER/${path%.*}"
		case "$path" in
		*.ko) dst="/lib/modules/$KVER/$path" ;;
		esac
		mkdir -p "$r$(dirname "$dst")"
		case "$path" in
		*.ko.xz) xz -dc "$MODDIR/$path" >"$r$dst" ;;
		*.ko.zst) zstd -qdc "$MODDIR/$path" >"$r$dst" ;;
		*.ko.gz) gzip -dc "$MODDIR/$path" >"$r$dst" ;;
		*) cp "$MODDIR/$path" "$r$dst" ;;
		esac
		echo "$dst" >>"$r/etc/modules.list"
	done
}
resolve_modules "$MODULES" "$OPTIONAL_MODULES"
copy_modules "$root"

# Pack an initramfs directory $1 into the gzip'd cpio $2.
pack() {
	(cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) |
		gzip -1 >"$2.tmp"
	mv "$2.tmp" "$2"
}

# The vmm lane: Debian's QEMU (binary, libraries, the firmware a -nodefaults pc
# guest with -kernel loads) and the inner guest (kernel, busybox initramfs).
VMM_GUEST_MODULES="virtio_pci virtio_net 8021q"
vmm_payload() {
	local q f groot="$CACHE/initramfs/$lane-guest.root"
	q=$(command -v qemu-system-x86_64) || die "no qemu-system-x86_64 (run scripts/deps.sh)"
	put_elf "$q" /usr/bin/qemu-system-x86_64
	# QEMU looks in <bindir>/../share/qemu and ../share/seabios.
	for f in /usr/share/seabios/bios-256k.bin /usr/share/qemu/kvmvapic.bin \
		/usr/share/qemu/linuxboot_dma.bin; do
		[ -e "$f" ] || die "no $f (qemu-system-x86 and seabios, scripts/deps.sh)"
		put "$f" "$f"
	done
	put "$VMLINUZ" /kvmguard/vmm/vmlinuz
	rm -rf "$groot"
	mkdir -p "$groot"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp}
	cp /bin/busybox "$groot/bin/busybox"
	if ! is_elf "$groot/bin/busybox" || ldd "$groot/bin/busybox" >/dev/null 2>&1; then
		die "/bin/busybox is not static (busybox-static, scripts/deps.sh)"
	fi
	ln -s busybox "$groot/bin/sh"
	cp "$TOP/selftests/vmm/guest-init.sh" "$groot/init"
	chmod 755 "$groot/init"
	resolve_modules "$VMM_GUEST_MODULES" ""
	copy_modules "$groot"
	pack "$groot" "$root/kvmguard/vmm/guest.cpio.gz"
	put "$TOP/selftests/vmm/run.sh" /kvmguard/selftests/run_tests.sh
	chmod 755 "$root/kvmguard/selftests/run_tests.sh"
}

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
# KVMGUARD_TESTS (names, space-separated) runs only those selftests; in a vmm
# lane KVMGUARD_VMM_CASES only those cases.  guest-init.sh runs a vmm lane as a
# test lane (its run_tests.sh is selftests/vmm/run.sh).
tests=${KVMGUARD_TESTS:-}
[ "$mode" != vmm ] || tests=${KVMGUARD_VMM_CASES:-}
printf 'MODE=%s\nLANE=%s\nKVER=%s\nTESTS="%s"\n' "${mode/vmm/test}" "$lane" "$KVER" \
	"$tests" >"$root/etc/kvmguard-host"

if [ "$mode" != smoke ]; then
	[ -f "$KO" ] || die "no $KO (build the module for lane $lane first)"
	put "$KO" /kvmguard/kvmguard.ko
	[ "$mode" != test ] || [ ! -f "$FAULTS_KO" ] || put "$FAULTS_KO" /kvmguard/faults/kvmguard.ko
	[ -x "$TOP/userspace/kvmguard" ] || die "no userspace/kvmguard (make userspace)"
	put_elf "$TOP/userspace/kvmguard" /usr/sbin/kvmguard
fi
if [ "$mode" = test ] || [ "$mode" = demo ]; then
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

if [ "$mode" = vmm ]; then
	vmm_payload
fi

mkdir -p "$(dirname "$out")"
pack "$root" "$out"
echo "$out"
