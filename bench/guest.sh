#!/bin/sh
# /init of the `make bench` test host (busybox sh; QEMU -smp 1 -icount
# shift=0,sleep=off, so a nanosecond of the host's clock is one instruction).
# Packed by bench/run.sh over the smoke initramfs of scripts/mkinitramfs.sh,
# whose /etc/modules.list (KVM modules) and /etc/kvmguard-host (LANE) it uses.
#
# ROUNDS times, interleaved, each workload of /bench/kvmbench (hypercall,
# pio, memslot) under
#   a: kvmguard not loaded
#   b: kvmguard loaded, no policy (no hypercall hook by design)
#   c: kvmguard loaded, default binding to a policy that restricts hypercalls
#      to vapic_poll_irq (nr 1), the call the hypercall workload makes
#   d: kvmguard loaded, default binding to a policy that sets every memory
#      rule so that the bench VM's memslots are allowed: mem max 1G, shared
#      backing only within its domain, KSM denied, dirty-log max 32M
# and prints "BENCH <lane> <config> <workload> <round> <kvmbench output>".
# Anything that keeps a number from being measured prints "BENCH-ERROR ...".
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
# shellcheck disable=SC1091 # from the initramfs
. /etc/kvmguard-host
# shellcheck disable=SC1091
. /bench/bench.conf # ROUNDS N_hypercall N_pio N_memslot
: "${ROUNDS:?}" "${N_hypercall:?}" "${N_pio:?}" "${N_memslot:?}"

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
dmesg -n 1

error() { echo "BENCH-ERROR $LANE: $*"; }

while read -r ko args; do
	# shellcheck disable=SC2086 # module parameters
	insmod "$ko" $args || error "insmod $ko failed"
done </etc/modules.list
[ -c /dev/kvm ] || error "no /dev/kvm"

# Is an ftrace hook (kvmguard's direct call) on KVM's hypercall function,
# kvm_emulate_hypercall (6.1) or __kvm_emulate_hypercall (6.12)? yes/no/unknown
hooked() {
	f=/sys/kernel/tracing/enabled_functions
	[ -r "$f" ] || { echo unknown; return; }
	if grep -q '^_*kvm_emulate_hypercall' "$f"; then echo yes; else echo no; fi
}

set_policy() { # <config>
	case "$1" in
	c) out=$(kvmguard policy add bench hypercalls allow vapic_poll_irq 2>&1 &&
		kvmguard bind default policy bench 2>&1) ;;
	# c's policy goes: while any policy restricts hypercalls, the hook is on
	d) out=$(kvmguard policy add benchmem domain bench mem max 1G \
		mem shared domain mem ksm deny mem dirty-log max 32M 2>&1 &&
		kvmguard bind default policy benchmem 2>&1 &&
		kvmguard policy del bench 2>&1 &&
		kvmguard policy show benchmem 2>&1) &&
		echo "BENCH-POLICY $LANE d $round $(echo "$out" | tr '\n' ' ')" ;;
	esac || {
		error "kvmguard CLI cannot set the config $1 policy: $out"
		return 1
	}
}

measure() { # <config>
	for w in hypercall pio memslot; do
		case "$w" in
		hypercall) n=$N_hypercall ;;
		pio) n=$N_pio ;;
		*) n=$N_memslot ;;
		esac
		if out=$(/bench/kvmbench "$w" "$n" 2>&1); then
			echo "BENCH $LANE $1 $w $round $out"
		else
			error "config $1 $w round $round: $out"
		fi
	done
}

echo "BENCH-BEGIN $LANE $(uname -r)"
round=1
while [ "$round" -le "$ROUNDS" ]; do
	measure a
	if insmod /bench/kvmguard.ko; then
		echo "BENCH-HOOK $LANE b $round $(hooked)"
		measure b
		for c in c d; do
			if set_policy "$c"; then
				echo "BENCH-HOOK $LANE $c $round $(hooked)"
				measure "$c"
			fi
		done
		rmmod kvmguard || { error "rmmod kvmguard failed"; break; }
	else
		error "insmod kvmguard.ko failed"
	fi
	round=$((round + 1))
done
echo "BENCH-END $LANE"
echo "BENCH-DMESG-BEGIN"
dmesg
echo "BENCH-DMESG-END"
poweroff -f
