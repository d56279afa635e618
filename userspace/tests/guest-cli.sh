#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# kvmguard CLI against the real module, inside the QEMU test host (busybox sh).
# Loads $KVMGUARD_KO when the module is not loaded; uses $KVM_GUEST (the
# selftests' kvm_guest) for live VMs when it exists. Prints TAP; exit 1 on a
# failure. Leaves no policies or bindings behind (it ends with apply /dev/null).
# ok() never fails, so "test && ok || not_ok" is an if-then-else here.
# shellcheck disable=SC2015,SC2181
K=${KVMGUARD_CLI:-kvmguard}
KO=${KVMGUARD_KO:-/kvmguard/kvmguard.ko}
KVM_GUEST=${KVM_GUEST:-/kvmguard/selftests/kvm_guest}
HCGUEST=${HCGUEST:-/kvmguard/hcguest}
T=$(mktemp -d)
n=0
fails=0

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1))
	fails=$((fails + 1))
	echo "not ok $n - $1"
	sed 's/^/# out: /' "$T/out"
	sed 's/^/# err: /' "$T/err"
}
# t WANT_EXIT DESCRIPTION ARGS...: run the CLI, check the exit status
t() {
	want=$1 what=$2
	shift 2
	"$K" "$@" >"$T/out" 2>"$T/err" </dev/null
	rc=$?
	if [ "$rc" = "$want" ]; then ok "$what"; else not_ok "$what (exit $rc, want $want)"; fi
}
# has out|err TEXT: the last command printed this exact line
has() {
	if grep -qxF -- "$2" "$T/$1"; then ok "  $1: $2"; else not_ok "  $1 lacks: $2"; fi
}

if ! grep -q '^kvmguard ' /proc/modules; then
	t 1 "no module: clear message" vm list
	has err 'kvmguard: the kvmguard module is not loaded (generic netlink family "kvmguard" not found)'
	insmod "$KO" || { echo "Bail out! insmod $KO failed"; exit 1; }
	loaded=1
fi

t 0 "apply /dev/null empties the module" apply /dev/null
t 0 "policy add" policy add web mode audit domain tenant-a
t 1 "policy add: EEXIST" policy add web
grep -q '^kvmguard: cannot add policy web: File exists' "$T/err" && ok "  EEXIST message" || not_ok "  EEXIST message"
t 0 "policy add db" policy add db
t 0 "policy set changes only mode" policy set db mode audit
t 0 "policy show NAME json" -j policy show web
has out '{"name":"web","mode":"audit","domain":"tenant-a","hypercalls":null,"hyperv":"allow","xen":"allow","mem":{"max":null,"shared":"allow","ksm":"allow","dirty_log_max":null},"net":{"tag":null,"trunk":[],"isolate":false},"vms":0,"bindings":0}'
t 1 "policy set unknown: ENOENT" policy set nope mode audit
t 0 "bind cgroup (trailing slash)" bind cgroup /machine.slice/ policy web
t 0 "bind default" bind default policy db
t 0 "bind pid" bind pid $$ policy db
t 1 "bind a missing pid" bind pid 999999 policy db
t 0 "bind show json" -j bind show
has out "[{\"selector\":\"default\",\"policy\":\"db\"},{\"selector\":\"cgroup\",\"cgroup\":\"/machine.slice\",\"policy\":\"web\"},{\"selector\":\"pid\",\"pid\":$$,\"policy\":\"db\"}]"
t 1 "policy del while bound: EBUSY" policy del web
grep -q '^kvmguard: cannot delete policy web: Device or resource busy' "$T/err" && ok "  EBUSY message" || not_ok "  EBUSY message"
t 0 "dump" dump
cp "$T/out" "$T/dump"
has out "policy add db mode audit"
has out "policy add web mode audit domain tenant-a"
has out "bind cgroup /machine.slice policy web"
"$K" -v apply - <"$T/dump" >"$T/out" 2>"$T/err"
[ $? = 0 ] && [ ! -s "$T/out" ] && ok "dump | apply -v - changes nothing" || not_ok "dump | apply -v - changes nothing"

cat >"$T/a.conf" <<'CONF'
policy add web mode enforce
policy add fresh mode audit domain d2
bind default policy fresh
bind cgroup /machine.slice policy web
CONF
t 0 "apply converges" -v apply "$T/a.conf"
# a module that reports the hypercall (memory, network) rules gets them in POLICY_SET too
grep -qxE 'policy set web mode enforce domain none( hypercalls all hyperv allow( xen allow)?( mem max none mem shared allow mem ksm allow mem dirty-log max none( net tag none net trunk none net isolate off)?)?)?' "$T/out" &&
	ok "  policy set web" || not_ok "  policy set web"
has out "unbind pid $$"
has out "policy del db"
# the root cgroup and a path the CLI normalises
t 0 "bind cgroup /" bind cgroup / policy web
t 0 "bind cgroup //a//b/" bind cgroup //a//b/ policy web
t 0 "bind show" bind show
grep -qE '^cgroup / +web$' "$T/out" && ok "  cgroup / kept as /" || not_ok "  cgroup / kept as /"
grep -qE '^cgroup /a/b +web$' "$T/out" && ok "  //a//b/ sent as /a/b" || not_ok "  //a//b/ sent as /a/b"
"$K" dump | "$K" -v apply - >"$T/out" 2>"$T/err"
[ $? = 0 ] && [ ! -s "$T/out" ] && ok "  dump | apply - with them changes nothing" ||
	not_ok "  dump | apply - with them changes nothing"
t 0 "unbind cgroup /" unbind cgroup /
t 0 "unbind cgroup /a/b/" unbind cgroup /a/b/
t 0 "apply again sends nothing" -v apply "$T/a.conf"
[ -s "$T/out" ] && not_ok "  second apply printed changes" || ok "  second apply printed nothing"
t 0 "policy show" policy show
awk '$1 == "fresh" { print $2, $3, $4, $5, $6, $7 }' "$T/out" >"$T/row"
grep -qxF "audit d2 0 1 all allow" "$T/row" && ok "  row of fresh" || not_ok "  row of fresh"

# the hypercall and Hyper-V rules (ABI of ea3c314; older modules refuse them)
"$K" policy add hc hypercalls allow kick_cpu,send_ipi hyperv deny >"$T/out" 2>"$T/err"
if [ $? = 0 ]; then
	ok "policy add with rules"
	t 0 "dump shows the rules" dump
	has out "policy add hc mode enforce hypercalls allow kick_cpu,send_ipi hyperv deny"
	t 0 "-j policy show hc" -j policy show hc
	has out '{"name":"hc","mode":"enforce","domain":null,"hypercalls":[5,10],"hyperv":"deny","xen":"allow","mem":{"max":null,"shared":"allow","ksm":"allow","dirty_log_max":null},"net":{"tag":null,"trunk":[],"isolate":false},"vms":0,"bindings":0}'
	t 0 "policy set hypercalls none" policy set hc hypercalls none
	t 0 "dump" dump
	has out "policy add hc mode enforce hypercalls none hyperv deny"
	printf 'policy add hc\n' >"$T/r.conf"
	t 0 "apply resets the rules" apply "$T/r.conf"
	t 0 "dump" dump
	has out "policy add hc mode enforce"
	if [ -x "$HCGUEST" ] && [ -c /dev/kvm ]; then
		# a guest calling send_ipi (10) under a policy that allows only kick_cpu
		t 0 "policy for the hypercall guest" policy set hc hypercalls allow kick_cpu mode enforce
		mkdir -p /sys/fs/cgroup/kvmguard-hc
		t 0 "bind its cgroup" bind cgroup /kvmguard-hc policy hc
		"$K" -j monitor >"$T/hcmon" 2>&1 &
		m=$!
		sleep 1
		sh -c 'echo $$ >/sys/fs/cgroup/kvmguard-hc/cgroup.procs && exec "$0" "$@"' \
			"$HCGUEST" 10 60 >"$T/hc.out" 2>&1 &
		g=$!
		i=0
		while [ ! -s "$T/hc.out" ] && [ $i -lt 20 ]; do
			sleep 1
			i=$((i + 1))
		done
		sleep 2
		hcpid=$(head -n 1 "$T/hc.out")
		"$K" vm list >"$T/vms"
		id=$(awk -v p="$hcpid" '$2 == p { print $1 }' "$T/vms")
		[ -n "$id" ] || { echo "# no VM of pid '$hcpid'"; sed 's/^/# /' "$T/vms"; }
		t 0 "vm show of the hypercall guest" vm show "$id"
		grep -qE '^hypercall 10 send_ipi: allowed 0, denied [1-9][0-9]*$' "$T/out" &&
			ok "  send_ipi denied and counted" || not_ok "  send_ipi denied and counted"
		t 0 "-j vm show" -j vm show "$id"
		grep -qE '"hypercalls":\[\{"nr":10,"allowed":0,"denied":[1-9][0-9]*\}\]' "$T/out" &&
			ok "  json counters" || not_ok "  json counters"
		kill -TERM "$hcpid"
		wait "$g"
		sed 's/^/# hcguest: /' "$T/hc.out"
		# KVM_EPERM (1): the guest saw the refusal
		grep -qE '^loops [0-9]+ rax (4294967295|18446744073709551615|-1)$' "$T/hc.out" &&
			ok "  the guest got -KVM_EPERM" || not_ok "  the guest got -KVM_EPERM"
		sleep 1
		kill -INT "$m"
		wait "$m"
		grep -qE "^\{\"event\":\"hypercall\",\"time_ns\":[0-9]+,\"vm\":\{\"id\":$id,\"pid\":$hcpid,\"comm\":\"hcguest\"\},\"policy\":\"hc\",\"nr\":10,\"action\":\"denied\",\"count\":[1-9][0-9]*\}\$" "$T/hcmon" &&
			ok "monitor -j: hypercall event" || { sed 's/^/# /' "$T/hcmon"; not_ok "monitor -j: hypercall event"; }
		t 0 "unbind its cgroup" unbind cgroup /kvmguard-hc
		rmdir /sys/fs/cgroup/kvmguard-hc 2>/dev/null
	else
		echo "# SKIP hypercall guest: no $HCGUEST or /dev/kvm"
	fi
	t 0 "restore" apply "$T/a.conf"
elif grep -q 'Invalid argument' "$T/err"; then
	echo "# SKIP rules: this module predates them: $(cat "$T/err")"
else
	not_ok "policy add with rules"
fi

# the memory rules (older modules refuse them)
"$K" policy add mem mem max 4G mem shared domain mem ksm deny mem dirty-log max 16MiB domain d1 >"$T/out" 2>"$T/err"
if [ $? = 0 ]; then
	ok "policy add with memory rules"
	t 0 "-j policy show mem" -j policy show mem
	has out '{"name":"mem","mode":"enforce","domain":"d1","hypercalls":null,"hyperv":"allow","xen":"allow","mem":{"max":4294967296,"shared":"domain","ksm":"deny","dirty_log_max":16777216},"net":{"tag":null,"trunk":[],"isolate":false},"vms":0,"bindings":0}'
	t 0 "policy set mem max none, dirty-log max 0" policy set mem mem max none mem dirty-log max 0
	t 0 "dump" dump
	has out "policy add mem mode enforce domain d1 mem shared domain mem ksm deny mem dirty-log max 0"
	"$K" dump | "$K" -v apply - >"$T/out" 2>"$T/err"
	[ $? = 0 ] && [ ! -s "$T/out" ] && ok "  dump | apply - with memory rules changes nothing" ||
		not_ok "  dump | apply - with memory rules changes nothing"
	t 0 "policy show" policy show
	awk '$1 == "mem" { print $8, $9, $10, $11 }' "$T/out" >"$T/row"
	grep -qxF "none domain deny 0" "$T/row" && ok "  memory columns of mem" || not_ok "  memory columns of mem"
	t 0 "restore" apply "$T/a.conf"
elif grep -q 'Invalid argument' "$T/err"; then
	echo "# SKIP memory rules: this module predates them: $(cat "$T/err")"
else
	not_ok "policy add with memory rules"
fi

# the network rules (older modules refuse them)
"$K" policy add net net tag 100 net trunk 300,200-210 net isolate on >"$T/out" 2>"$T/err"
if [ $? = 0 ]; then
	ok "policy add with network rules"
	t 0 "-j policy show net" -j policy show net
	has out '{"name":"net","mode":"enforce","domain":null,"hypercalls":null,"hyperv":"allow","xen":"allow","mem":{"max":null,"shared":"allow","ksm":"allow","dirty_log_max":null},"net":{"tag":100,"trunk":[200,201,202,203,204,205,206,207,208,209,210,300],"isolate":true},"vms":0,"bindings":0}'
	t 0 "policy set net trunk 1-4094, tag none" policy set net net trunk 1-4094 net tag none
	t 0 "dump" dump
	has out "policy add net mode enforce net trunk 1-4094 net isolate on"
	"$K" dump | "$K" -v apply - >"$T/out" 2>"$T/err"
	[ $? = 0 ] && [ ! -s "$T/out" ] && ok "  dump | apply - with network rules changes nothing" ||
		not_ok "  dump | apply - with network rules changes nothing"
	t 0 "policy show" policy show
	awk '$1 == "net" { print $12, $13, $14 }' "$T/out" >"$T/row"
	grep -qxF "none 1-4094 on" "$T/row" && ok "  network columns of net" || not_ok "  network columns of net"
	t 2 "net trunk 0 is refused" policy set net net trunk 0,5
	has err "kvmguard: invalid net trunk '0,5': VID 0 is reserved (use VIDs 1 to 4094 and ranges such as 100,200-210, or none)"
	t 1 "net bind of a loopback" net bind 1 dev lo
	t 1 "net unbind of an unbound device" net unbind dev lo
	t 1 "net unbind of no device" net unbind dev kg-nodev
	grep -q "^kvmguard: cannot unbind kg-nodev: No such device" "$T/err" &&
		ok "  ENODEV message" || not_ok "  ENODEV message"
	t 0 "restore" apply "$T/a.conf"
elif grep -q 'Invalid argument' "$T/err"; then
	echo "# SKIP network rules: this module predates them: $(cat "$T/err")"
else
	not_ok "policy add with network rules"
fi

if [ -x "$KVM_GUEST" ] && [ -c /dev/kvm ]; then
	"$K" monitor >"$T/mon" 2>&1 &
	m1=$!
	"$K" -j monitor >"$T/monj" 2>&1 &
	m2=$!
	sleep 1
	mkdir -p /sys/fs/cgroup/machine.slice/machine-qemu-9-cli.scope
	sh -c 'echo $$ >/sys/fs/cgroup/machine.slice/machine-qemu-9-cli.scope/cgroup.procs &&
		exec "$0" -v 1 -s 100 -m 32' "$KVM_GUEST" >/dev/null &
	g=$!
	sleep 4
	id=$("$K" vm list | awk -v p="$g" '$2 == p { print $1 }')
	[ -n "$id" ] && ok "vm list shows the guest (id $id)" || not_ok "vm list shows the guest"
	t 0 "vm show" vm show "$id"
	has out "cgroup: /machine.slice/machine-qemu-9-cli.scope"
	has out "policy: web"
	has out "bound by: cgroup"
	grep -qE '^memory denied: limit [0-9]+, shared [0-9]+, ksm [0-9]+, dirty_log [0-9]+$' "$T/out" &&
		ok "  memory denied counters" || not_ok "  memory denied counters"
	t 0 "vm set" vm set "$id" policy fresh
	t 0 "vm show json" -j vm show "$id"
	grep -q "\"policy\":\"fresh\",\"bound_by\":\"explicit\"" "$T/out" && ok "  explicit" || not_ok "  explicit"
	kill "$g"
	wait "$g"
	sleep 1
	kill -INT "$m1"
	kill -TERM "$m2"
	wait "$m1" && ok "monitor exits 0 on SIGINT" || not_ok "monitor exits 0 on SIGINT"
	wait "$m2" && ok "monitor -j exits 0 on SIGTERM" || not_ok "monitor -j exits 0 on SIGTERM"
	grep -q " vm_create id=$id pid=$g comm=kvm_guest policy=web\$" "$T/mon" && ok "monitor: vm_create" || { cat "$T/mon"; not_ok "monitor: vm_create"; }
	grep -q " vm_destroy id=$id pid=$g comm=kvm_guest policy=fresh\$" "$T/mon" && ok "monitor: vm_destroy" || not_ok "monitor: vm_destroy"
	grep -q "^{\"event\":\"vm_create\",\"time_ns\":[0-9]*,\"vm\":{\"id\":$id,\"pid\":$g,\"comm\":\"kvm_guest\"},\"policy\":\"web\"}\$" "$T/monj" && ok "monitor -j: vm_create" || { cat "$T/monj"; not_ok "monitor -j: vm_create"; }
	rmdir /sys/fs/cgroup/machine.slice/machine-qemu-9-cli.scope 2>/dev/null
else
	echo "# SKIP live VM checks: no $KVM_GUEST or /dev/kvm"
fi

if su -s /bin/sh nobody -c true 2>/dev/null; then
	cp "$(command -v "$K")" "$T/kg" && chmod 755 "$T" "$T/kg"
	su -s /bin/sh nobody -c "$T/kg vm list" >"$T/out" 2>"$T/err"
	[ $? = 1 ] && ok "unprivileged: exit 1" || not_ok "unprivileged: exit 1"
	has err "kvmguard: cannot list VMs: Operation not permitted (CAP_NET_ADMIN is required)"
	su -s /bin/sh nobody -c "$T/kg monitor" >"$T/out" 2>"$T/err"
	has err "kvmguard: cannot subscribe to kvmguard events: Operation not permitted (CAP_NET_ADMIN is required)"
fi

t 0 "apply /dev/null removes everything" apply /dev/null
t 0 "dump is empty" dump
[ -s "$T/out" ] && not_ok "  dump not empty" || ok "  dump empty"
[ -n "${loaded:-}" ] && rmmod kvmguard
rm -rf "$T"
echo "1..$n"
[ "$fails" = 0 ]
