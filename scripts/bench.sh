#!/usr/bin/env bash
# make bench: instructions per KVM hypercall round trip on the 6.1 and 6.12 test
# hosts, without kvmguard, with it loaded, and with a policy restricting hypercalls.
# QEMU runs with -smp 1 -icount shift=0,sleep=off: the guest clock advances 1 ns per
# emulated instruction, so the numbers repeat exactly (see DESIGN.md).
#   usage: scripts/bench.sh [lane...]     (default: 6.1 6.12)
# Consoles: .cache/log/bench-<lane>.log.  Exits non-zero if a number is missing.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$TOP"

lanes=("$@")
[ ${#lanes[@]} -gt 0 ] || lanes=(6.1 6.12)

scripts/deps.sh
scripts/kernels.sh "${lanes[@]}" >/dev/null
make --no-print-directory -s userspace >/dev/null
mkdir -p "$CACHE/bench"
# Static: nothing to resolve inside the initramfs.
gcc -O2 -Wall -Wextra -Werror -static -o "$CACHE/bench/hcbench" scripts/bench/hcbench.c

fail=0
printf '%-6s %12s %12s %12s %9s\n' lane baseline loaded restricted overhead
for lane in "${lanes[@]}"; do
	load_lane_env "$lane"
	make --no-print-directory -s modules KDIR="$KDIR" MODBUILD="$CACHE/build/$lane" >/dev/null
	initrd=$(scripts/mkinitramfs.sh "$lane" bench)
	log="$CACHE/log/bench-$lane.log"
	KVMGUARD_SMP=1 KVMGUARD_QEMU_EXTRA="-icount shift=0,sleep=off" \
		KVMGUARD_BOOT_TIMEOUT=${KVMGUARD_BOOT_TIMEOUT:-600} \
		scripts/boot.sh "$lane" "$initrd" "$log" >/dev/null || true
	# "BENCH <state>: nr 1: <x> ns per hypercall ..." -> x
	get() { sed -n "s/^BENCH $1: nr [0-9]*: \([0-9.]*\) ns per hypercall.*/\1/p" "$log"; }
	base=$(get baseline) loaded=$(get loaded) restricted=$(get restricted)
	ratio=-
	if [ -n "$base" ] && [ -n "$restricted" ]; then
		ratio=$(awk -v a="$restricted" -v b="$base" 'BEGIN { printf "%.4fx", a / b }')
	fi
	printf '%-6s %12s %12s %12s %9s\n' "$lane" "${base:--}" "${loaded:--}" "${restricted:--}" "$ratio"
	if [ -z "$base" ] || [ -z "$loaded" ] || [ -z "$restricted" ]; then
		grep '^BENCH' "$log" | grep -v ' ns per hypercall' | sed 's/^/  /' || true
		fail=1
	fi
done
echo "(instructions per hypercall round trip, nr 1; overhead = restricted / baseline)"
exit "$fail"
