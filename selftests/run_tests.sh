#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Run the kvmguard selftests (busybox ash / POSIX sh) and print TAP 13.
# Loads the module from $KVMGUARD_KO first; leaves it loaded at the end.
# Usage: run_tests.sh [TEST...]   (default: all, in the fixed order below)

dir=$(cd "$(dirname "$0")" && pwd)
: "${KVMGUARD_KO:=/kvmguard/kvmguard.ko}"
: "${KVMGUARD_CLI:=/usr/sbin/kvmguard}"
# Running time of nl_fuzz and soak (guest-init.sh sets the lane's).
: "${KVMGUARD_FUZZ_SECONDS:=20}"
: "${KVMGUARD_SOAK_SECONDS:=30}"
export KVMGUARD_KO KVMGUARD_CLI KVMGUARD_FUZZ_SECONDS KVMGUARD_SOAK_SECONDS

# name:timeout-seconds, in run order; nl_fuzz's and soak's follow their running time.
fuzz_limit=$((KVMGUARD_FUZZ_SECONDS * 2 + 240))
soak_limit=$((KVMGUARD_SOAK_SECONDS * 2 + 510))
ALL="json_selftest:30 policies:240 malformed:180 privileges:120 events:120
binding:300 hypercalls:120 hc_cpuid:120 hc_matrix:300 hc_effects:240 hc_live:240 hc_hyperv:180 hc_paths:240 hc_sleep:180
vm_fields:120 vm_lifecycle:400 policy_race:300 vm_discovery:240 mem_limit:120 mem_smm:180 vm_check:120 mem_dirty:120 mem_dirty_track:120
mem_shared:180 mem_ksm:300 mem_remap:300 mem_events:300 mem_stress:300 net_tags:400 net_modes:240
net_macvtap:150 net_offload:120 net_lifecycle:240 net_guard:300 net_netns:400
net_vhost:400 net_escape:300 net_rmmod:180 net_bypass:240
net_faults:900 livepatch:400 tracing_off:120 nl_fuzz:$fuzz_limit soak:$soak_limit cli:600
audit:180 apply_safe:240"
[ $# -gt 0 ] && ALL=$(for t in "$@"; do for e in $ALL; do
	[ "${e%%:*}" = "$t" ] && echo "$e"; done; done)

tmp=${TMPDIR:-/tmp}/kvmguard-selftests.$$
mkdir -p "$tmp" || exit 1
trap 'rm -rf "$tmp"' EXIT

loaded() { [ -d /sys/module/kvmguard ]; }

echo "TAP version 13"
n=0
for e in $ALL; do n=$((n + 1)); done
echo "1..$n"

if ! loaded; then
	if [ -r "$KVMGUARD_KO" ]; then
		insmod "$KVMGUARD_KO" 2>&1 | sed 's/^/# insmod: /'
		loaded || echo "# insmod $KVMGUARD_KO failed"
	else
		echo "# $KVMGUARD_KO not readable"
	fi
fi

i=0
for e in $ALL; do
	i=$((i + 1))
	t=${e%%:*}
	limit=${e##*:}
	echo "# running $t (timeout ${limit}s)"
	{
		timeout "$limit" "$dir/$t" 2>&1
		echo $? > "$tmp/rc"
	} | sed 's/^/# /' | tee "$tmp/out"
	rc=$(cat "$tmp/rc" 2>/dev/null)
	rm -f "$tmp/rc"
	case "$rc" in
	0) echo "ok $i $t" ;;
	4) why=$(grep 'SKIP' "$tmp/out" | tail -n 1 | sed 's/.*SKIP *//')
	   echo "ok $i $t # SKIP ${why:-exit 4}" ;;
	*) echo "not ok $i $t # exit $rc" ;;
	esac
	# A failing test may have left the module out; later tests need it.
	if ! loaded && [ -r "$KVMGUARD_KO" ]; then
		echo "# $t left kvmguard unloaded; loading it again"
		insmod "$KVMGUARD_KO" 2>&1 | sed 's/^/# insmod: /'
	fi
done
# Tests clean up after themselves; show anything they left behind.
if [ -x "$KVMGUARD_CLI" ] && loaded; then
	"$KVMGUARD_CLI" dump 2>&1 | sed 's/^/# left after the suite: /'
fi
for d in /sys/fs/cgroup/kvmguard-*; do
	[ -d "$d" ] && echo "# left after the suite: cgroup ${d#/sys/fs/cgroup}"
done
echo "# kvmguard-selftests: done"
