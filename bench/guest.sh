#!/bin/sh
# /init of the `make bench` test host (busybox sh; QEMU -smp 1 -icount
# shift=0,sleep=off, so a nanosecond of the host's clock is one instruction).
# Packed by bench/run.sh over the smoke initramfs of scripts/mkinitramfs.sh,
# whose /etc/modules.list (KVM and network modules) and /etc/kvmguard-host
# (LANE) it uses.
#
# ROUNDS times, interleaved, each workload of /bench/kvmbench (hypercall,
# pio, memslot) and of /bench/vhostbench (vhost-tx, vhost-rx, vhost-a2b)
# under
#   a: kvmguard not loaded
#   b: kvmguard loaded, no policy (no hypercall hook by design; the bench
#      VMs' taps are bound to them, without a network rule)
#   c: kvmguard loaded, default binding to a policy that restricts hypercalls
#      to vapic_poll_irq (nr 1), the call the hypercall workload makes
#   d: kvmguard loaded, default binding to a policy that sets every memory
#      rule so that the bench VM's memslots are allowed: mem max 1G, shared
#      backing only within its domain, KSM denied, dirty-log max 32M
#   e: kvmguard loaded, default binding to a policy with `net tag 100`: the
#      bench VMs' taps are access ports of VLAN 100
#   f: kvmguard loaded, no default binding, so the bench VMs' taps are bound
#      without a network rule, while another VM (vhostbench hold, created
#      under e's binding) has tap kgc on the bridge as a VLAN 100 access port:
#      what an untagged VM pays on a host where some VM is tagged
#   g: (vhost-* only) kvmguard not loaded, VLAN 100 done by the bridge the
#      usual way instead: br0 with VLAN filtering, the taps untagged members
#      of VLAN 100 (pvid), vup a tagged one; the same frames on the uplink
#      and in the guests' rings as in e, without kvmguard
# and prints "BENCH <lane> <config> <workload> <round> <bench output>".
# Anything that keeps a number from being measured prints "BENCH-ERROR ...".
# With PROFILE=1 (BENCH_PROFILE=1 bench/run.sh) it also prints the kernel's
# text symbols for bench/profile.py (ksyms below).
#
# The network (set up once, IPv6 off so the host sends nothing of its own):
# bridge br0 (no STP, no VLAN filtering) with the persistent taps kga, kgb
# and kgc (vnet_hdr) and the veth vup, whose peer vup-p is in netns "up";
# static fdb entries 02:00:00:00:00:0b on kgb and 0c on vup.
# vhost-tx: guest A's TX ring -> kga -> br0 -> vup -> vup-p; vhost-rx: an
# AF_PACKET socket on vup-p (frames tagged 100 in e) -> vup -> br0 -> kgb ->
# guest B's RX ring; vhost-a2b: A's TX ring -> kga -> br0 -> kgb -> B's RX
# ring. iproute2 (in the smoke image: /usr/sbin/ip, /usr/sbin/bridge, /var/run
# -> /run) is called by full path (busybox's sh prefers its applets).
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
# shellcheck disable=SC1091 # from the initramfs
. /etc/kvmguard-host
# shellcheck disable=SC1091
. /bench/bench.conf # ROUNDS N_hypercall N_pio N_memslot N_vhost WORKLOADS PROFILE
: "${ROUNDS:?}" "${N_hypercall:?}" "${N_pio:?}" "${N_memslot:?}" "${N_vhost:?}" "${WORKLOADS:?}"
: "${PROFILE:?}"
IP=/usr/sbin/ip
BRIDGE=/usr/sbin/bridge
VID=100

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
dmesg -n 1
# No khugepaged, which scans every 10 s of the test host's clock and was
# seen collapsing pages in the middle of a measured run: with it, one
# configuration's hypercall row came out 10 instructions high in every
# round, and another's when the runs before it changed.
echo never >/sys/kernel/mm/transparent_hugepage/enabled
echo never >/sys/kernel/mm/transparent_hugepage/defrag

error() { echo "BENCH-ERROR $LANE: $*"; }

while read -r ko args; do
	# shellcheck disable=SC2086 # module parameters
	insmod "$ko" $args || error "insmod $ko failed"
done </etc/modules.list
[ -c /dev/kvm ] || error "no /dev/kvm"
[ -c /dev/vhost-net ] || error "no /dev/vhost-net"

# Empty slabs stay cached, in the caches of the modules above too. SLUB
# gives an empty slab back to the page allocator once its cache holds
# min_partial partial ones (5 to 10 by default); on 6.1 some cache then got
# a new slab page, zeroed (init_on_alloc), about every 65 frames in some
# runs and not in others: steps of about 100 instructions a frame between
# rounds and configurations, which BENCH_PROFILE=1 showed in
# clear_page_erms and allocate_slab. With 64 they stayed within 15 (6.1,
# two rounds).
for f in /sys/kernel/slab/*/min_partial; do
	echo 64 >"$f" || error "cannot set $f"
done

# The bench network (see the top); 0 or 1.
net_setup() {
	[ -x $IP ] && [ -x $BRIDGE ] && [ -d /var/run ] || return 1
	for f in all default; do
		echo 1 >/proc/sys/net/ipv6/conf/$f/disable_ipv6 || return 1
	done
	$IP link set lo up &&
		$IP link add br0 type bridge stp_state 0 forward_delay 0 &&
		$IP link set br0 up || return 1
	for t in kga kgb kgc; do
		$IP tuntap add dev $t mode tap vnet_hdr &&
			$IP link set $t master br0 &&
			$IP link set $t up || return 1
	done
	$IP netns add up &&
		$IP netns exec up sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
			net.ipv6.conf.default.disable_ipv6=1 &&
		$IP link add vup type veth peer name vup-p netns up &&
		$IP link set vup master br0 &&
		$IP link set vup up &&
		$IP netns exec up $IP link set lo up &&
		$IP netns exec up $IP link set vup-p up &&
		$BRIDGE fdb add 02:00:00:00:00:0b dev kgb master static &&
		$BRIDGE fdb add 02:00:00:00:00:0c dev vup master static || return 1
	# g's VLAN setup: unused (and ignored by the bridge) until g switches
	# VLAN filtering on
	for t in kga kgb kgc; do
		$BRIDGE vlan add dev $t vid $VID pvid untagged &&
			$BRIDGE vlan del dev $t vid 1 || return 1
	done
	$BRIDGE vlan add dev vup vid $VID &&
		$BRIDGE vlan del dev vup vid 1 &&
		$BRIDGE fdb add 02:00:00:00:00:0b dev kgb master static vlan $VID &&
		$BRIDGE fdb add 02:00:00:00:00:0c dev vup master static vlan $VID
}
net_setup || error "cannot set up the bench network"

# Is an ftrace hook (kvmguard's direct call) on KVM's hypercall function,
# kvm_emulate_hypercall (6.1) or __kvm_emulate_hypercall (6.12)? yes/no/unknown
hooked() {
	f=/sys/kernel/tracing/enabled_functions
	[ -r "$f" ] || { echo unknown; return; }
	if grep -q '^_*kvm_emulate_hypercall' "$f"; then echo yes; else echo no; fi
}

# PROFILE=1: the text symbols that bench/profile.py names the profile's code
# addresses by, between "BENCH-KSYM-BEGIN <lane> <round> <config>" and
# "BENCH-KSYM-END": all of them before round 1 (round 0, config -), then
# before each configuration with kvmguard loaded, kvmguard's own (every
# round loads it afresh, possibly elsewhere) and ftrace's trampolines (the
# hooks' ftrace_ops have them; they come and go with the policies, and may
# reuse the module's freed init code, whose symbols stay listed).
ksyms() { # <round> <config>
	[ "$PROFILE" = 1 ] || return 0
	echo "BENCH-KSYM-BEGIN $LANE $1 $2"
	if [ "$1" -eq 0 ]; then
		grep ' [tTwW] ' /proc/kallsyms
	else
		grep -E ' [tTwW] .*\[(kvmguard|__builtin__ftrace)\]$' /proc/kallsyms
	fi
	echo "BENCH-KSYM-END $LANE $1 $2"
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
	# d's policy goes too: e has a network rule and nothing else
	e) out=$(kvmguard policy add benchnet net tag $VID 2>&1 &&
		kvmguard bind default policy benchnet 2>&1 &&
		kvmguard policy del benchmem 2>&1 &&
		kvmguard policy show benchnet 2>&1) &&
		echo "BENCH-POLICY $LANE e $round $(echo "$out" | tr '\n' ' ')" ;;
	# a VM with e's policy holds kgc; then no default binding
	# (hold.out goes first: the last round's "ready" must not count)
	f) rm -f /tmp/hold.out
		/bench/vhostbench hold kgc >/tmp/hold.out 2>&1 &
		holder=$!
		i=0
		while ! grep -q ready /tmp/hold.out && [ $i -lt 30 ]; do
			sleep 1
			i=$((i + 1))
		done
		if grep -q ready /tmp/hold.out; then
			out=$(kvmguard unbind default 2>&1 && kvmguard vm list 2>&1) &&
				echo "BENCH-POLICY $LANE f $round $(echo "$out" | tr '\n' ' ')"
		else
			# say what the holder does
			out="holder $holder not ready after ${i}s: $(cat /tmp/hold.out)"
			# shellcheck disable=SC2009 # busybox ps: pid, state, command
			out="$out; $(ps | grep '[v]host' | tr '\n' ';')"
			out="$out; $(tr '\0' ' ' </proc/"$holder"/cmdline 2>&1)"
			out="$out; wchan $(cat /proc/"$holder"/wchan 2>&1)"
			out="$out; $(grep State /proc/"$holder"/status 2>&1)"
			false
		fi ;;
	esac || {
		error "kvmguard CLI cannot set the config $1 policy: $out"
		return 1
	}
}

measure() { # <config>
	for w in $WORKLOADS; do
		case "$1$w" in
		g[!v]*) continue ;;	# g is about packets only
		esac
		case "$w" in
		hypercall) cmd="/bench/kvmbench $w $N_hypercall" ;;
		pio) cmd="/bench/kvmbench $w $N_pio" ;;
		memslot) cmd="/bench/kvmbench $w $N_memslot" ;;
		# 4,000 shared mappings under one slot: a few pairs are plenty
		memslot-many) cmd="/bench/kvmbench $w 4" ;;
		vhost-a2b) cmd="/bench/vhostbench pair $N_vhost" ;;
		*) cmd="/bench/vhostbench ${w#vhost-} $N_vhost" ;;
		esac
		# e, g: taps are access ports of VLAN $VID (vhostbench checks it)
		case "$1$w" in
		[eg]vhost-*) cmd="$cmd $VID" ;;
		esac
		# Deferred work of what ran before ends first (an idle second
		# costs nothing under icount sleep=off).
		sleep 1
		if out=$($cmd 2>&1); then
			echo "BENCH $LANE $1 $w $round $out"
		else
			error "config $1 $w round $round: $out"
		fi
	done
}

echo "BENCH-BEGIN $LANE $(uname -r)"
ksyms 0 -
round=1
while [ "$round" -le "$ROUNDS" ]; do
	measure a
	if $IP link set br0 type bridge vlan_filtering 1; then
		measure g
	else
		error "cannot switch VLAN filtering on"
	fi
	$IP link set br0 type bridge vlan_filtering 0 ||
		error "cannot switch VLAN filtering off"
	if insmod /bench/kvmguard.ko; then
		ksyms "$round" b
		echo "BENCH-HOOK $LANE b $round $(hooked)"
		measure b
		holder=
		for c in c d e f; do
			if set_policy "$c"; then
				ksyms "$round" "$c"
				echo "BENCH-HOOK $LANE $c $round $(hooked)"
				measure "$c"
			fi
		done
		if [ -n "$holder" ]; then
			kill "$holder"
			wait "$holder"
		fi
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
