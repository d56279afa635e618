#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# kvmguard example for libvirt: refuse a migration or a save of a guest
# whose kvmguard policy forbids the dirty tracking it needs, before QEMU
# starts it. Under `mem dirty-log max` QEMU aborts (the guest dies) when
# KVM refuses the tracking at run time; asked first, the operation fails
# and the guest keeps running.
#
# libvirt calls no hook on the source host before an outgoing migration
# or a save (its QEMU operations are prepare, start, started, stopped,
# release, migrate, restore, reconnect, attach; "migrate begin" runs on
# the DESTINATION, in the Prepare phase, before the source QEMU sends
# anything). So this script has two uses:
#
# 1. As /etc/libvirt/hooks/qemu (or /etc/libvirt/hooks/qemu.d/kvmguard,
#    libvirt 6.5+): on "GUEST migrate begin -" (destination) it refuses
#    the incoming migration when the policy that binds libvirt guests on
#    this host would refuse tracking the guest's memory: with the same
#    policies on every host (one apply file), the source's tracking would
#    be refused too, and the guest could not leave this host again.
#    libvirt aborts the migration; the source guest keeps running.
#    Every other operation passes (exit 0), with stdin copied through for
#    the operations that filter the domain XML.
#
# 2. On the source host, before `virsh migrate`, `virsh save`,
#    `virsh managedsave` or a memory snapshot of GUEST (a management layer
#    or a virsh wrapper calls it):
#        libvirt-hook-qemu.sh check GUEST
#    asks the module (`kvmguard vm check ID dirty-log all`) about the
#    running guest; exit 0: go ahead, 3: refused (do not migrate or save),
#    1: cannot tell.
#
# Environment: KVMGUARD (the CLI, default kvmguard), LIBVIRT_RUN (default
# /run/libvirt/qemu, where libvirt keeps GUEST.pid), KVMGUARD_PARTITION
# (the cgroup libvirt puts guests under, default /machine.slice).
set -u

KG=${KVMGUARD:-kvmguard}
RUN=${LIBVIRT_RUN:-/run/libvirt/qemu}
PARTITION=${KVMGUARD_PARTITION:-/machine.slice}

say() { echo "kvmguard hook: $*" >&2; }

# check GUEST: the running guest, by the pid libvirt recorded for it.
check_running() {
	guest=$1
	if ! pid=$(cat "$RUN/$guest.pid" 2>/dev/null) || [ -z "$pid" ]; then
		say "$guest: not running here (no $RUN/$guest.pid)"
		return 1
	fi
	id=$("$KG" vm list | awk -v p="$pid" 'NR > 1 && $2 == p { print $1; exit }')
	if [ -z "$id" ]; then
		say "$guest: kvmguard knows no VM of pid $pid"
		return 1
	fi
	out=$("$KG" vm check "$id" dirty-log all)
	rc=$?
	case $rc in
	0) return 0 ;;
	3) say "$guest (VM $id): dirty tracking of all its memory refused:"
	   printf '%s\n' "$out" | sed 's/^/  /' >&2
	   return 3 ;;
	*) return 1 ;;
	esac
}

# The policy a guest started here gets: the longest cgroup binding that
# contains the partition, else the default binding; empty for none.
policy_here() {
	"$KG" bind show | awk -v part="$PARTITION" '
		NR == 1 { next }
		$1 == "default" { def = $2 }
		$1 == "cgroup" {
			p = $2
			if ((p == "/" || part == p || index(part, p "/") == 1) &&
			    length(p) > best) { best = length(p); pol = $3 }
		}
		END { print (pol != "" ? pol : def) }'
}

# What a migration of the domain XML on stdin tracks, in bytes: <memory>
# (libvirt writes unit="KiB"), the ram and vram of its video models, and
# KVMGUARD_ROM (default 1 MiB) for firmware and option ROMs.
xml_memory() {
	tr '\n' ' ' | sed 's/</\n</g' | awk -v rom="${KVMGUARD_ROM:-1048576}" '
		/^<memory[ >]/ && /unit=.KiB./ && !mem {
			v = $0; sub(/^[^>]*>/, "", v); mem = v + 0
		}
		/^<model / && /type=/ {
			n = split($0, w, /[ \/>]/)
			for (i = 1; i <= n; i++)
				if (w[i] ~ /^(ram|vram)=.[0-9]+.$/) {
					v = w[i]; gsub(/[^0-9]/, "", v); video += v
				}
		}
		END { if (mem) printf "%.0f\n", (mem + video) * 1024 + rom }'
}

migrate_in() {
	guest=$1
	xml=$(cat)
	printf '%s\n' "$xml"		# the filter's output: the XML unchanged
	policy=$(policy_here) || return 0
	[ -n "$policy" ] || return 0
	json=$("$KG" -j policy show "$policy") || return 0
	max=$(printf '%s\n' "$json" |
		sed -n 's/.*"dirty_log_max":\([0-9][0-9]*\|null\).*/\1/p')
	mode=$(printf '%s\n' "$json" | sed -n 's/.*"mode":"\([a-z]*\)".*/\1/p')
	mem=$(printf '%s\n' "$xml" | xml_memory)
	[ -n "$max" ] && [ "$max" != null ] && [ -n "$mem" ] || return 0
	if awk -v m="$mem" -v x="$max" 'BEGIN { exit !(m > x) }'; then
		if [ "$mode" = audit ]; then
			say "$guest: policy $policy would audit tracking ${mem} bytes (budget $max)"
			return 0
		fi
		say "$guest: refusing incoming migration: policy $policy allows dirty tracking of $max bytes, a migration tracks about $mem"
		return 1
	fi
	return 0
}

case "${1:-}" in
check)
	[ $# -eq 2 ] || { echo "usage: $0 check GUEST" >&2; exit 2; }
	check_running "$2"
	exit $?
	;;
esac

# Called by libvirt: GUEST OPERATION SUB-OPERATION EXTRA.
case "${2:-} ${3:-}" in
"migrate begin")
	migrate_in "$1" || exit 1
	;;
"restore begin")
	cat		# a filter too: pass the XML on unchanged
	;;
esac
exit 0
