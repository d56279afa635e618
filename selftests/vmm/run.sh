#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The vmm lane's suite (make check lanes vmm-6.1, vmm-6.12): Debian's own
# qemu-system-x86_64 runs small Linux guests (the lane's own kernel, a busybox
# initramfs: selftests/vmm/guest-init.sh) under kvmguard rules, inside the test
# host.  QEMU's HMP is driven through -monitor pipe:, each guest through its
# serial console (-serial pipe:), and every case is asserted from both sides:
# what the guest sees and what `kvmguard vm show` and `kvmguard monitor` report.
# mkinitramfs.sh installs it as /kvmguard/selftests/run_tests.sh, which
# guest-init.sh runs.  Prints TAP 13, one line per case; a case that cannot run
# (no QEMU, no /dev/kvm, module not loadable) is a SKIP, never a pass.
#   usage: run.sh [CASE...]    (default: all, see CASES)
# Env: KVMGUARD_KO, KVMGUARD_CLI (as run_tests.sh).
# shellcheck disable=SC2016 # sh -c '...' scripts take their arguments as $1...
# shellcheck disable=SC2013 # pid files hold one pid a line

: "${KVMGUARD_KO:=/kvmguard/kvmguard.ko}"
: "${KVMGUARD_CLI:=/usr/sbin/kvmguard}"
CLI=$KVMGUARD_CLI
QEMU=/usr/bin/qemu-system-x86_64
GKERNEL=/kvmguard/vmm/vmlinuz
GINITRD=/kvmguard/vmm/guest.cpio.gz
IP=/usr/sbin/ip
W=/tmp/vmm
CG=/sys/fs/cgroup
# The README's allowlist for SMP Linux guests (README.rst, scripts/demo.policy).
README_ALLOW=kick_cpu,send_ipi,sched_yield

CASES="access_port userspace_bind trunk isolate pause_cont smp_hypercalls_none
smp_readme_allowlist mem_max_exact ksm_default shared_memfd vm_check_hotadd
hotadd_past_max vm_check_migrate migrate_dirty_budget"
[ $# -eq 0 ] || CASES=$*
# shellcheck disable=SC2086,SC2116 # one line, single spaces
CASES=$(echo $CASES)

echo "TAP version 13"
plan=0
for c in $CASES; do plan=$((plan + 1)); done
echo "1..$plan"

# --- results -------------------------------------------------------------
n=0
want() { case " $CASES " in *" $1 "*) return 0 ;; esac; return 1; }
tap() { # <ok|fail|skip> <case> [reason]
	n=$((n + 1))
	case "$1" in
	ok) echo "ok $n $2" ;;
	skip) echo "ok $n $2 # SKIP $3" ;;
	*) echo "not ok $n $2${3:+ # $3}" ;;
	esac
	echo "$2" >>"$W/done"
	echo "<6>kvmguard-vmm: case $2: $1" >/dev/kmsg 2>/dev/null
}
# Cases end with a verdict from the checks they made: check <what> <command...>
# prints "# PASS|FAIL what" and remembers a failure until verdict <case>.
bad=0
check() {
	what=$1
	shift
	if "$@"; then echo "# PASS $what"; else echo "# FAIL $what"; bad=1; fi
}
verdict() { # <case>
	if [ "$bad" -eq 0 ]; then tap ok "$1"; else tap fail "$1"; fi
	bad=0
}
skip_all() { # <reason>
	for c in $CASES; do
		grep -qx "$c" "$W/done" 2>/dev/null || tap skip "$c" "$1"
	done
	echo "# kvmguard-selftests: done"
	exit 0
}
not() { ! "$@"; }
not_in() { # <value> <values...>: true when value is none of them
	v=$1
	shift
	for x in "$@"; do [ "$v" != "$x" ] || return 1; done
}
same_count() { [ -n "$1" ] && [ "$1" = "$2" ]; }
skip_case() { want "$1" && ! grep -qx "$1" "$W/done" && tap skip "$1" "$2"; }

rm -rf "$W"
mkdir -p "$W"
: >"$W/done"
echo 0 >"$W/seq"

[ -x "$QEMU" ] || skip_all "no $QEMU in the test host"
[ -c /dev/kvm ] || skip_all "no /dev/kvm"
[ -x "$CLI" ] || skip_all "no CLI $CLI"
{ [ -r "$GKERNEL" ] && [ -r "$GINITRD" ]; } || skip_all "no inner guest kernel/initramfs"
if [ ! -d /sys/module/kvmguard ]; then
	insmod "$KVMGUARD_KO" 2>&1 | sed 's/^/# insmod: /'
	[ -d /sys/module/kvmguard ] || skip_all "kvmguard not loadable"
fi

t_start=$(date +%s)
elapsed() { echo "$(($(date +%s) - t_start))"; }
# Progress goes to the kernel log too (check.sh keeps <lane>.kernel.log).
log() {
	echo "# [$(elapsed)s] $*"
	echo "<6>kvmguard-vmm: [$(elapsed)s] $*" >/dev/kmsg 2>/dev/null
}

# --- QEMU and guests -----------------------------------------------------
# vm_start <name> <policy|-> <qemu args...>: QEMU in cgroup kgvmm-<name>, bound
# to <policy>; HMP on $W/<name>.mon.{in,out} (text in $W/<name>.hmp), serial
# console on $W/<name>.ser.{in,out} (text in $W/<name>.con), stderr in
# $W/<name>.err; pid in $W/<name>.pid.
vm_start() {
	name=$1 pol=$2
	shift 2
	mkdir -p "$CG/kgvmm-$name"
	[ "$pol" = - ] || "$CLI" bind cgroup "/kgvmm-$name" policy "$pol" ||
		echo "# bind cgroup /kgvmm-$name policy $pol failed"
	for f in mon.in mon.out ser.in ser.out; do mkfifo "$W/$name.$f"; done
	: >"$W/$name.hmp"
	: >"$W/$name.con"
	# QEMU opens the fifos read-write, so neither side blocks on open.
	cat "$W/$name.mon.out" >>"$W/$name.hmp" &
	echo $! >"$W/$name.readers"
	cat "$W/$name.ser.out" >>"$W/$name.con" &
	echo $! >>"$W/$name.readers"
	# A waiter in the cgroup runs QEMU, writes its pid and, once it is gone,
	# its exit status ($W/<name>.rc): the cases read both from any subshell.
	rm -f "$W/$name.pid" "$W/$name.rc"
	sh -c 'echo $$ >"$0/cgroup.procs" || exit 1
		pf=$1 rf=$2
		shift 2
		"$@" </dev/null &
		echo $! >"$pf"
		wait $!
		echo $? >"$rf"' "$CG/kgvmm-$name" "$W/$name.pid" "$W/$name.rc" \
		"$QEMU" -accel kvm -nodefaults -display none -no-reboot -m 128 \
		-monitor "pipe:$W/$name.mon" -serial "pipe:$W/$name.ser" "$@" \
		</dev/null >"$W/$name.err" 2>&1 &
	echo $! >>"$W/waiters"
	i=0
	while [ ! -s "$W/$name.pid" ] && [ "$i" -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	cat "$W/$name.pid" >>"$W/qemu.pids" 2>/dev/null
}
# A Linux guest: the lane's kernel and the busybox initramfs, -cpu host.
# <smp> 1: a network guest, which loads virtio and 8021q (one vCPU: module
# loading's cross-CPU code patching stalled a 2-vCPU guest under nested TCG for
# minutes); 2: an SMP guest that loads no module (kgnomod, guest-init.sh).
guest_start() { # <name> <policy> <smp> [qemu args...]
	g=$1 gp=$2 smp=$3
	shift 3
	# loglevel 4: a guest that stalls shows where on its console.
	ga="console=ttyS0 loglevel=4 panic=-1"
	[ "$smp" -eq 1 ] || ga="$ga kgnomod=1"
	vm_start "$g" "$gp" -cpu host -smp "$smp" -kernel "$GKERNEL" -initrd "$GINITRD" \
		-append "$ga" "$@"
}
qpid() { cat "$W/$1.pid" 2>/dev/null; }
alive() { [ ! -e "$W/$1.rc" ] && [ -s "$W/$1.pid" ] && kill -0 "$(qpid "$1")" 2>/dev/null; }
# QEMU's exit status once it has gone, "running" if it still runs after <s> s.
exit_status() { # <name> <seconds>
	i=0
	while [ "$i" -lt "$2" ]; do
		[ ! -s "$W/$1.rc" ] || { cat "$W/$1.rc"; return 0; }
		[ -s "$W/$1.pid" ] || { echo "not started"; return 0; }
		sleep 1
		i=$((i + 1))
	done
	echo running
}
vm_id() { # <name>: kvmguard's id of the VM QEMU created
	"$CLI" vm list 2>/dev/null | awk -v p="$(qpid "$1")" '$2 == p { print $1; exit }'
}
# The bytes of a "memory...: X (N bytes)" line of vm show.
vm_bytes() { # <id> <label>
	"$CLI" vm show "$1" 2>/dev/null | sed -n "s/^$2: .*(\([0-9]*\) bytes)/\1/p"
}
# A counter of a net device line of vm show ("tag denied", "delivered", ...).
dev_count() { # <id> <dev> <counter>: 0 when not listed
	v=$("$CLI" vm show "$1" 2>/dev/null | grep "^net device $2:" |
		sed -n "s/.*[:,] $3 \([0-9]*\).*/\1/p")
	echo "${v:-0}"
}
# Write to a fifo without blocking forever if QEMU went away.
to_fifo() { timeout 5 sh -c 'printf "%s\n" "$1" >"$2"' - "$1" "$2"; }

# Wait until <file> from byte <offset> on matches <ERE>; fails after <s> seconds.
wait_for() { # <file> <offset> <ERE> <seconds>
	i=0
	while [ "$i" -lt "$4" ]; do
		tail -c +"$(($2 + 1))" "$1" | tr -d '\r' | grep -qE "$3" && return 0
		sleep 1
		i=$((i + 1))
	done
	return 1
}
size() { wc -c <"$1"; }

# hmp <name> <command>: run an HMP command, print what QEMU answered.
# The answer is what follows the echoed command line (readline redraws it,
# each redraw ending with ESC [K).
hmp() {
	off=$(size "$W/$1.hmp")
	to_fifo "$2" "$W/$1.mon.in" || return 1
	# The next prompt ends the answer; "info status" is a cheap fence.
	to_fifo "info status" "$W/$1.mon.in" || return 1
	wait_for "$W/$1.hmp" "$off" 'VM status' 20
	tail -c +"$((off + 1))" "$W/$1.hmp" | tr -d '\r' | tr '\033' '~' | sed 's/.*~\[K//; s/~\[[0-9;]*[A-Za-z]//g'
}
hmp_status() { hmp "$1" "info status" | sed -n 's/.*VM status: \([a-z]*\).*/\1/p' | tail -n 1; }

# gsh <name> <seconds> <command>: run a shell command in the guest; its output
# on stdout, its exit status as ours (124: no answer in time).
gsh() {
	s=$(($(cat "$W/seq") + 1))
	echo "$s" >"$W/seq"
	off=$(size "$W/$1.con")
	# One line: the guest reads the console line by line.
	to_fifo "echo @@B$s; { $(printf '%s' "$3" | tr '\n\t' '  '); } 2>&1; echo @@E$s rc=\$?" \
		"$W/$1.ser.in" || return 124
	if ! wait_for "$W/$1.con" "$off" "@@E$s rc=[0-9]+" "$2"; then
		log "guest $1: no answer in $2 s to: $(printf '%s' "$3" | head -n 1 | cut -c1-60)"
		echo "# guest $1's console since ($(size "$W/$1.con") bytes in all):"
		tail -c +"$((off + 1))" "$W/$1.con" | tr -d '\r' | tail -n 6 | sed 's/^/#   /'
		return 124
	fi
	tail -c +"$((off + 1))" "$W/$1.con" | tr -d '\r' |
		sed -n "/@@B$s\$/,/@@E$s rc=/p" | sed '1d;$d'
	rc=$(tail -c +"$((off + 1))" "$W/$1.con" | tr -d '\r' | sed -n "s/.*@@E$s rc=\([0-9]*\).*/\1/p")
	return "${rc:-1}"
}
# Wait for a guest to reach its shell (fails at once if QEMU has gone).
guest_ready() { # <name> <seconds>
	i=0
	while [ "$i" -lt "$2" ]; do
		tr -d '\r' <"$W/$1.con" | grep -q 'VMMGUEST READY' && return 0
		alive "$1" || return 1
		sleep 1
		i=$((i + 1))
		[ $((i % 60)) -ne 0 ] || log "waiting for guest $1 (${i}s): console $(size "$W/$1.con") bytes: $(tr -d '\r' <"$W/$1.con" | grep . | tail -n 1 | cut -c1-100)"
	done
	return 1
}
guest_cpus() { tr -d '\r' <"$W/$1.con" | sed -n 's/.*VMMGUEST READY cpus=\([0-9]*\).*/\1/p' | head -n 1; }

vm_stop() { # <name>: quit QEMU (HMP, then SIGKILL) and its fifo readers
	if alive "$1"; then
		to_fifo quit "$W/$1.mon.in" >/dev/null 2>&1
		i=0
		while alive "$1" && [ "$i" -lt 10 ]; do sleep 1; i=$((i + 1)); done
		kill -9 "$(qpid "$1")" 2>/dev/null
	fi
	for p in $(cat "$W/$1.readers" 2>/dev/null); do kill "$p" 2>/dev/null; done
	"$CLI" unbind cgroup "/kgvmm-$1" >/dev/null 2>&1
	rmdir "$CG/kgvmm-$1" 2>/dev/null
	return 0
}
show_tail() { # <file> <lines>: diagnostics
	tr -d '\r' <"$1" | tail -n "$2" | sed 's/^/#   /'
}
events_of() { # <vm id>: this VM's events so far
	grep -E " id=$1 " "$W/events" 2>/dev/null
}

cleanup() {
	for p in $(cat "$W/qemu.pids" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	for f in "$W"/*.readers; do
		for p in $(cat "$f" 2>/dev/null); do kill "$p" 2>/dev/null; done
	done
	[ -z "${mon_pid:-}" ] || kill "$mon_pid" 2>/dev/null
	wait
	for d in "$CG"/kgvmm-*; do
		[ -d "$d" ] || continue
		"$CLI" unbind cgroup "/${d##*/}" >/dev/null 2>&1
		rmdir "$d" 2>/dev/null
	done
	for p in $("$CLI" policy show 2>/dev/null | awk '$1 ~ /^kgvmm-/ { print $1 }'); do
		"$CLI" policy del "$p" >/dev/null 2>&1
	done
	$IP netns del kgvpeer 2>/dev/null
	for d in kgvbr kgvp0 kgvtA kgvtB; do $IP link del "$d" 2>/dev/null; done
}
trap cleanup EXIT

# --- the network: a flat bridge, a peer with VLAN 100 and 200 devices ---------
# kgvbr: no VLAN filtering.  Netns kgvpeer: kgvp1 (veth into the bridge) with
# kgvp1.100 10.0.100.2 and kgvp1.200 10.0.200.2.  Taps kgvtA and kgvtB.
PEER="$IP netns exec kgvpeer"
# The subnet of a VLAN: 10.0.100.0/24, 10.0.200.0/24, 10.0.30.0/24 (VLAN 300).
vnet() { if [ "$1" = 300 ]; then echo 10.0.30; else echo "10.0.$1"; fi; }
net_setup() {
	$IP link add kgvbr type bridge &&
	$IP link set kgvbr up &&
	$IP netns add kgvpeer &&
	$IP link add kgvp0 type veth peer name kgvp1 netns kgvpeer &&
	$IP link set kgvp0 master kgvbr up &&
	$IP -n kgvpeer link set lo up &&
	$IP -n kgvpeer link set kgvp1 address 52:54:00:77:00:02 up &&
	for v in 100 200 300; do
		$IP -n kgvpeer link add link kgvp1 name "kgvp1.$v" type vlan id "$v" &&
		$IP -n kgvpeer addr add "$(vnet "$v").2/24" dev "kgvp1.$v" &&
		$IP -n kgvpeer link set "kgvp1.$v" up || return 1
	done &&
	for t in kgvtA kgvtB; do
		$IP tuntap add dev "$t" mode tap vnet_hdr &&
		$IP link set "$t" master kgvbr up || return 1
	done
}
MAC_A=52:54:00:77:00:0a
MAC_B=52:54:00:77:00:0b
nic() { # <tap> <mac> <vhost on|off>
	echo "-netdev tap,id=n0,ifname=$1,script=no,downscript=no,vhost=$3" \
		"-device virtio-net-pci,netdev=n0,mac=$2,romfile="
}
# ping from a guest: succeeds when any reply came back.
gping() { # <guest> <address>
	gsh "$1" 40 "ping -c 3 -w 8 $2 >/dev/null"
}
peer_rx() { # <guest> <dev>: rx_packets of a guest device
	gsh "$1" 20 "cat /sys/class/net/$2/statistics/rx_packets" | tr -dc '0-9'
}

"$CLI" monitor >"$W/events" 2>&1 &
mon_pid=$!

netok=1
if ! net_setup; then
	echo "# network setup failed (bridge, veth, VLAN devices, taps)"
	netok=0
fi

# Policies: all kgvmm-*, enforce.
pol() { # <name> <options...>
	p=$1
	shift
	# shellcheck disable=SC2068 # options are words
	"$CLI" policy add "kgvmm-$p" mode enforce $@ || echo "# policy add kgvmm-$p $* failed"
}
pol access net tag 100
pol trunk net trunk 100,200
pol hcnone hypercalls none
pol hcreadme hypercalls allow "$README_ALLOW"
pol memmax mem max 128M
pol ksm mem ksm deny
pol shared mem shared deny
pol hotadd mem max 300M
pol dirty mem dirty-log max 16M

# --- boot the two network guests; the memory cases run meanwhile ------------
NETG=0
ok=0
if [ "$netok" -eq 1 ] && { want access_port || want userspace_bind || want trunk ||
	want isolate || want pause_cont; }; then
	NETG=1
	log "starting guests A (vhost=on, net tag 100) and B (vhost=off, trunk 100,200)"
	# shellcheck disable=SC2046 # nic prints words
	guest_start A kgvmm-access 1 $(nic kgvtA $MAC_A on)
	# shellcheck disable=SC2046
	guest_start B kgvmm-trunk 1 $(nic kgvtB $MAC_B off)
fi

# A VM on firmware only (seabios, no boot device): enough for the memory rules,
# which act when QEMU maps guest memory; cheap under nested TCG.
fw_start() { vm_start "$@" -cpu host -smp 1; }

# e. mem max at exactly the guest's RAM (issue 15 finding 3).
if want mem_max_exact; then
	log "mem_max_exact: -m 128 under mem max 128M"
	fw_start E kgvmm-memmax
	st=$(exit_status E 15)
	id=$(vm_id E)
	echo "# QEMU: $st; status $(hmp_status E 2>/dev/null); vm show: $("$CLI" vm show "$id" 2>/dev/null | grep -E '^(memory|memslots|memory denied):' | tr '\n' ';')"
	check "QEMU -m 128 runs under mem max 128M" [ "$st" = running ]
	[ "$st" = running ] || show_tail "$W/E.err" 5
	check "VM status running" [ "$(hmp_status E)" = running ]
	vm_stop E
	verdict mem_max_exact
fi

# f. mem ksm deny with QEMU's defaults (mem-merge=on; finding 5).
if want ksm_default; then
	log "ksm_default: mem ksm deny, QEMU's default mem-merge=on"
	fw_start F kgvmm-ksm
	st=$(exit_status F 10)
	id=$(vm_id F)
	sleep 5
	check "QEMU runs under mem ksm deny" [ "$st" = running ]
	ev=$(events_of "$id" | grep ' memory ' | grep 'rule=ksm')
	nev=$(printf '%s' "$ev" | grep -c .)
	printf '%s\n' "$ev" | sed 's/^/#   event: /'
	echo "# vm show: $("$CLI" vm show "$id" 2>/dev/null | grep '^memory denied' )"
	check "one KSM report for the VM's default request (got $nev)" [ "$nev" -eq 1 ]
	check "reported as the VMM's default request (vmm_default=1)" \
		sh -c 'printf "%s\n" "$1" | grep -q "vmm_default=1"' - "$ev"
	vm_stop F
	verdict ksm_default
fi

# g. mem shared deny with a shared memfd backend: refused at start.
if want shared_memfd; then
	log "shared_memfd: memory-backend-memfd,share=on under mem shared deny"
	fw_start G kgvmm-shared -object memory-backend-memfd,id=ram0,size=128M,share=on \
		-machine memory-backend=ram0
	st=$(exit_status G 30)
	echo "# QEMU: exit $st; stderr:"
	show_tail "$W/G.err" 4
	check "QEMU does not run" [ "$st" != running ]
	check "QEMU exits with an error status" not_in "$st" running 0 "not started"
	check "its error names the refusal" grep -qiE 'not permitted|denied|error' "$W/G.err"
	check "a memory rule=shared event" sh -c 'grep " memory " "$1" | grep -q "rule=shared"' - "$W/events"
	vm_stop G
	verdict shared_memfd
fi

# h. hot-added DIMM past mem max.  vm check (issue 15 deliverable 5) first, then
# the hot-add itself: the refusal must hold; QEMU's fate is recorded.
if want vm_check_hotadd || want hotadd_past_max; then
	log "hotadd: -m 128,slots=2,maxmem=1G under mem max 300M, a 256M DIMM"
	fw_start H kgvmm-hotadd -m 128,slots=2,maxmem=1G
	st=$(exit_status H 10)
	id=$(vm_id H)
	before=$(vm_bytes "$id" memory)
	echo "# QEMU: $st; VM $id memory $before bytes"
	if want vm_check_hotadd; then
		out=$("$CLI" vm check "$id" mem add 256M 2>&1)
		rc=$?
		echo "# kvmguard vm check $id mem add 256M: exit $rc: $out" | head -n 3
		check "vm check refuses a 256M add past mem max 300M (exit 3)" [ "$rc" -eq 3 ]
		out=$("$CLI" vm check "$id" mem add 16M 2>&1)
		rc=$?
		echo "# kvmguard vm check $id mem add 16M: exit $rc: $out" | head -n 3
		check "vm check allows a 16M add within mem max" [ "$rc" -eq 0 ]
		verdict vm_check_hotadd
	fi
	if want hotadd_past_max; then
		hmp H "object_add memory-backend-ram,id=dimm1,size=256M" >/dev/null
		ans=$(hmp H "device_add pc-dimm,id=d1,memdev=dimm1")
		st=$(exit_status H 10)
		after=$(vm_bytes "$id" memory)
		echo "# device_add answered: $(printf '%s' "$ans" | grep -v '^(qemu)' | head -n 3 | tr '\n' ' ')"
		echo "# QEMU after the hot-add: $st$(
			[ "$st" = running ] || echo " (134 = SIGABRT: QEMU aborts on a refused memslot)")"
		show_tail "$W/H.err" 3
		echo "# VM memory before $before, after ${after:-gone}"
		check "the DIMM was refused: no memory past mem max 300M" \
			[ "${after:-0}" -le $((300 << 20)) ]
		check "a memory rule=limit event" sh -c \
			'grep " id=$2 " "$1" | grep " memory " | grep -q "rule=limit"' - "$W/events" "$id"
		verdict hotadd_past_max
	fi
	vm_stop H
fi

# h. migrate to a file under mem dirty-log max 16M.
if want vm_check_migrate || want migrate_dirty_budget; then
	log "migrate: -m 128 under mem dirty-log max 16M, migrate to a file"
	fw_start M kgvmm-dirty
	st=$(exit_status M 10)
	id=$(vm_id M)
	echo "# QEMU: $st; VM $id"
	if want vm_check_migrate; then
		out=$("$CLI" vm check "$id" dirty-log all 2>&1)
		rc=$?
		echo "# kvmguard vm check $id dirty-log all: exit $rc: $out" | head -n 3
		check "vm check refuses dirty-tracking all RAM under a 16M budget (exit 3)" [ "$rc" -eq 3 ]
		"$CLI" policy set kgvmm-dirty mem dirty-log max none
		out=$("$CLI" vm check "$id" dirty-log all 2>&1)
		rc=$?
		echo "# without a budget: exit $rc: $out" | head -n 3
		check "vm check allows it without a budget" [ "$rc" -eq 0 ]
		"$CLI" policy set kgvmm-dirty mem dirty-log max 16M
		verdict vm_check_migrate
	fi
	if want migrate_dirty_budget; then
		ans=$(hmp M "migrate \"exec:cat >$W/mig.bin\"")
		sleep 5
		st=$(exit_status M 10)
		[ "$st" != running ] || echo "# info migrate: $(hmp M 'info migrate' | grep -i 'status' | head -n 2 | tr '\n' ' ')"
		echo "# migrate answered: $(printf '%s' "$ans" | grep -v '^(qemu)' | head -n 3 | tr '\n' ' ')"
		echo "# QEMU after migrate: $st$(
			[ "$st" = running ] || echo " (134 = SIGABRT: QEMU aborts on a refused memslot)")"
		show_tail "$W/M.err" 3
		dt=$(vm_bytes "$id" "memory dirty-tracked")
		echo "# dirty-tracked now: ${dt:-VM gone}"
		check "dirty tracking never went past the 16M budget" [ "${dt:-0}" -le $((16 << 20)) ]
		check "a memory rule=dirty_log event" sh -c \
			'grep " id=$2 " "$1" | grep " memory " | grep -q "rule=dirty"' - "$W/events" "$id"
		verdict migrate_dirty_budget
	fi
	vm_stop M
fi

# --- a, c, b on the two network guests ---------------------------------------
if [ "$NETG" -eq 1 ]; then
	ok=1
	for g in A B; do
		if guest_ready "$g" 400; then
			log "guest $g ready ($(guest_cpus "$g") CPUs)"
		else
			ok=0
			log "guest $g did not reach its shell; console and QEMU's stderr:"
			show_tail "$W/$g.con" 15
			show_tail "$W/$g.err" 5
		fi
	done
	IDA=$(vm_id A)
	IDB=$(vm_id B)
	echo "# VM A id $IDA, VM B id $IDB"
	if [ "$ok" -eq 1 ]; then
		gsh A 30 "ip link set eth0 up && ip addr add 10.0.100.10/24 dev eth0 &&
			vconfig add eth0 200 >/dev/null && ip addr add 10.0.200.10/24 dev eth0.200 &&
			ip link set eth0.200 up" || echo "# guest A: network setup failed"
		gsh B 30 "ip link set eth0 up && for v in 100 200 300; do
			a=10.0.\$v; [ \$v != 300 ] || a=10.0.30;
			vconfig add eth0 \$v >/dev/null && ip addr add \$a.11/24 dev eth0.\$v &&
			ip link set eth0.\$v up; done" || echo "# guest B: network setup failed"
	fi
fi

if want access_port; then
	if [ "$NETG" -eq 1 ] && [ "$ok" -eq 1 ]; then
		log "access_port: A under net tag 100 (vhost-net)"
		"$CLI" vm show "$IDA" | grep -E '^(net device|policy)' | sed 's/^/#   /'
		check "A's tap is bound through vhost-net" sh -c \
			'"$1" vm show "$2" | grep -q "^net device kgvtA: .*bound by vhost"' - "$CLI" "$IDA"
		check "A reaches the VLAN 100 peer 10.0.100.2" gping A 10.0.100.2
		td0=$(dev_count "$IDA" kgvtA "tag denied")
		check "A does not reach the VLAN 200 peer through its own eth0.200" \
			not gping A 10.0.200.2
		td1=$(dev_count "$IDA" kgvtA "tag denied")
		echo "# tag denied before $td0, after $td1"
		check "A's tagged frames counted as tag denied" [ "${td1:-0}" -gt "${td0:-0}" ]
		check "and evented (net rule=tag dev=kgvtA)" sh -c \
			'grep " net " "$1" | grep "rule=tag" | grep -q "dev=kgvtA"' - "$W/events"
		# The peer on VLAN 200 toward A's MAC: dropped on the host side.
		rx0=$(peer_rx A eth0.200)
		$PEER ip neigh replace 10.0.200.10 lladdr "$MAC_A" dev kgvp1.200
		$PEER ping -c 3 -w 4 10.0.200.10 >/dev/null 2>&1
		sleep 2
		echo "# the test host's busiest tasks after the peer's VLAN 200 frames toward A:"
		top -b -n 1 2>/dev/null | sed -n '4,12p' | sed 's/^/#   /'
		rx1=$(peer_rx A eth0.200)
		echo "# A eth0.200 rx_packets before $rx0, after $rx1"
		check "VLAN 200 frames toward A never reach it" same_count "$rx0" "$rx1"
		verdict access_port
	else
		tap fail access_port "no network or guest A or B did not boot"
	fi
fi

if want userspace_bind; then
	if [ "$NETG" -eq 1 ] && [ "$ok" -eq 1 ]; then
		log "userspace_bind: B with vhost=off, net bind"
		check "B's tap is not bound by itself (vhost=off)" sh -c \
			'! "$1" vm show "$2" | grep -q "^net device kgvtB:"' - "$CLI" "$IDB"
		check "net bind $IDB dev kgvtB" "$CLI" net bind "$IDB" dev kgvtB
		"$CLI" vm show "$IDB" | grep -E '^net device' | sed 's/^/#   /'
		check "vm show: kgvtB bound by manual" sh -c \
			'"$1" vm show "$2" | grep -q "^net device kgvtB: .*bound by manual"' - "$CLI" "$IDB"
		verdict userspace_bind
	else
		tap fail userspace_bind "no network or guest A or B did not boot"
	fi
fi

if want trunk; then
	if [ "$NETG" -eq 1 ] && [ "$ok" -eq 1 ]; then
		log "trunk: B under net trunk 100,200 (userspace virtio-net, bound by hand)"
		"$CLI" net bind "$IDB" dev kgvtB >/dev/null 2>&1
		check "B reaches 10.0.100.2 through eth0.100" gping B 10.0.100.2
		check "B reaches 10.0.200.2 through eth0.200" gping B 10.0.200.2
		td0=$(dev_count "$IDB" kgvtB "tag denied")
		check "B does not reach 10.0.30.2 through eth0.300" not gping B 10.0.30.2
		td1=$(dev_count "$IDB" kgvtB "tag denied")
		echo "# B tag denied before $td0, after $td1"
		check "B's VLAN 300 frames counted as tag denied" [ "${td1:-0}" -gt "${td0:-0}" ]
		verdict trunk
	else
		tap fail trunk "no network or guest A or B did not boot"
	fi
fi

if want isolate; then
	if [ "$NETG" -eq 1 ] && [ "$ok" -eq 1 ]; then
		log "isolate: A (access 100) and B (trunk, eth0.100) with net isolate on, live"
		check "A reaches B (10.0.100.11) before isolation" gping A 10.0.100.11
		"$CLI" policy set kgvmm-access net isolate on &&
			"$CLI" policy set kgvmm-trunk net isolate on ||
			echo "# policy set ... net isolate on failed"
		i0=$(($(dev_count "$IDA" kgvtA "isolate denied") + $(dev_count "$IDB" kgvtB "isolate denied")))
		check "isolated: A does not reach B" not gping A 10.0.100.11
		i1=$(($(dev_count "$IDA" kgvtA "isolate denied") + $(dev_count "$IDB" kgvtB "isolate denied")))
		echo "# isolate denied on kgvtA + kgvtB before $i0, after $i1"
		check "counted as isolate denied" [ "${i1:-0}" -gt "${i0:-0}" ]
		check "isolated A still reaches the peer" gping A 10.0.100.2
		check "isolated B still reaches the peer" gping B 10.0.100.2
		"$CLI" policy set kgvmm-access net isolate off
		"$CLI" policy set kgvmm-trunk net isolate off
		check "isolation off: A reaches B again" gping A 10.0.100.11
		verdict isolate
	else
		tap fail isolate "no network or guest A or B did not boot"
	fi
fi

# b. HMP stop, VLAN 200 frames toward the stopped guest, cont (finding 1).
if want pause_cont; then
	if [ "$NETG" -eq 1 ] && [ "$ok" -eq 1 ]; then
		log "pause_cont: stop A, VLAN 200 frames toward it, cont"
		rx0=$(peer_rx A eth0.200)
		sd0=$(dev_count "$IDA" kgvtA "segment denied")
		hmp A stop >/dev/null
		check "HMP stop: A paused" [ "$(hmp_status A)" = paused ]
		"$CLI" vm show "$IDA" | grep -E '^net device' | sed 's/^/#   while stopped: /'
		$PEER ip neigh replace 10.0.200.10 lladdr "$MAC_A" dev kgvp1.200
		$PEER ping -c 5 -i 0.2 -w 3 10.0.200.10 >/dev/null 2>&1
		hmp A cont >/dev/null
		check "HMP cont: A running" [ "$(hmp_status A)" = running ]
		sleep 2
		rx1=$(peer_rx A eth0.200)
		sd1=$(dev_count "$IDA" kgvtA "segment denied")
		echo "# A eth0.200 rx_packets before stop $rx0, after cont $rx1;" \
			"segment denied $sd0 -> $sd1"
		check "A received no VLAN 200 frame sent while it was stopped" \
			same_count "$rx0" "$rx1"
		check "the frames were counted on A's port (segment denied)" \
			[ "${sd1:-0}" -ge $((${sd0:-0} + 5)) ]
		check "A still reaches the VLAN 100 peer after cont" gping A 10.0.100.2
		verdict pause_cont
	else
		tap fail pause_cont "no network or guest A or B did not boot"
	fi
fi
if [ "$NETG" -eq 1 ]; then
	for g in A B; do
		echo "# the end of guest $g's console:"
		show_tail "$W/$g.con" 8
	done
	vm_stop A
	vm_stop B
fi

# d. SMP guests under hypercalls none and the README's allowlist, QEMU's default
# -cpu host (PV spinlocks, PV IPIs, PV sched_yield advertised; finding 2).
if want smp_hypercalls_none || want smp_readme_allowlist; then
	# Both boot at once, after the others have gone: a guest hung on a denied
	# kick keeps its other vCPU spinning, which slowed everything beside it.
	# ${SMP_LIMIT}s from their start (one guest boots in 30-150 s).
	SMP_LIMIT=420
	log "smp: starting guests N (hypercalls none) and R (allow $README_ALLOW), -smp 2"
	smp_t0=$(date +%s)
	want smp_hypercalls_none && guest_start N kgvmm-hcnone 2
	want smp_readme_allowlist && guest_start R kgvmm-hcreadme 2
	deadline=$((smp_t0 + SMP_LIMIT))
	for g in N R; do
		case $g in N) c=smp_hypercalls_none ;; *) c=smp_readme_allowlist ;; esac
		want "$c" || continue
		left=$((deadline - $(date +%s)))
		[ "$left" -ge 1 ] || left=1
		if guest_ready "$g" "$left"; then
			log "guest $g ready"
		else
			log "guest $g did not reach its shell $(($(date +%s) - smp_t0))s after its start; its console:"
			show_tail "$W/$g.con" 8
		fi
		id=$(vm_id "$g")
		check "guest $g reached its shell" grep -q 'VMMGUEST READY' "$W/$g.con"
		check "with 2 CPUs online" [ "$(guest_cpus "$g")" = 2 ]
		check "and answers on its console" [ "$(gsh "$g" 30 "echo alive")" = alive ]
		echo "# hypercall events of VM $id: $(events_of "$id" | grep -c ' hypercall ')"
		events_of "$id" | grep ' hypercall ' | head -n 3 | sed 's/^/#   /'
		verdict "$c"
	done
	vm_stop N
	vm_stop R
fi

# Anything asked for that no branch above reported.
for c in $CASES; do
	grep -qx "$c" "$W/done" || tap fail "$c" "not run (unknown case?)"
done
log "vmm cases done"
echo "# kvmguard-selftests: done"
