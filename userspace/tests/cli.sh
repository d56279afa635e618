#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# kvmguard CLI: exit codes, usage, and the "module not loaded" path, each
# run under valgrind when it is installed (VALGRIND=0 to skip). Run from
# userspace/ after make.
KG=${KG:-./kvmguard}
fails=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ "${VALGRIND:-1}" != 0 ] && command -v valgrind >/dev/null; then
	VG="valgrind -q --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all --error-exitcode=99"
else
	VG=
fi

# expect CODE ARGS...: run, compare the exit code; output in $tmp/out, err
expect() {
	want=$1
	shift
	$VG "$KG" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	got=$?
	if [ "$got" != "$want" ]; then
		echo "FAIL: kvmguard $*: exit $got, expected $want"
		sed 's/^/  | /' "$tmp/err"
		fails=$((fails + 1))
	fi
}

# has FILE TEXT: the file contains the exact line
has() {
	if ! grep -qxF -- "$2" "$tmp/$1"; then
		echo "FAIL: $1 of the last command lacks: $2"
		sed 's/^/  | /' "$tmp/$1"
		fails=$((fails + 1))
	fi
}

empty() {
	if [ -s "$tmp/$1" ]; then
		echo "FAIL: $1 of the last command should be empty"
		sed 's/^/  | /' "$tmp/$1"
		fails=$((fails + 1))
	fi
}

expect 0 --help
has out "Usage: kvmguard [-j] [-v] [-f] COMMAND [ARGS]"
empty err
expect 0 help
has out "  kvmguard [-j] monitor"
expect 0 -h
expect 0 -V
has out "kvmguard $(cat ../VERSION) (ABI version 1)"

expect 2
has err "Usage: kvmguard [-j] [-v] [-f] COMMAND [ARGS]"
empty out
expect 2 -x vm list
has err "kvmguard: unknown option '-x'"
expect 2 frob
has err "kvmguard: unknown command 'frob'"
# a usage error: the error and a one-line hint, not the whole usage
has err "Try 'kvmguard --help' for more information."
if grep -q '^Usage:' "$tmp/err"; then
	echo "FAIL: a usage error printed the whole usage"
	fails=$((fails + 1))
fi
expect 2 -x vm list
has err "Try 'kvmguard --help' for more information."
expect 2 vm show 0
has err "kvmguard: invalid VM id '0': expected a positive integer"
expect 2 policy add web mem max 4X
has err "kvmguard: invalid mem max '4X': expected bytes with an optional K, M, G or T suffix (such as 4G), or none"
empty out
expect 2 policy set web mem dirty-log max -16M
has err "kvmguard: invalid mem dirty-log max '-16M': a size cannot be negative"
expect 2 policy add web mem max 16777216T
has err "kvmguard: invalid mem max '16777216T': more than 2^64 - 1 bytes"
expect 2 policy add web mem swap deny
has err "kvmguard: unknown policy option 'mem swap': expected mem max, mem shared, mem ksm or mem dirty-log max"
expect 2 policy set web mem shared
has err "kvmguard: 'mem shared' needs a value: allow, deny or domain"
expect 2 policy set web mem ksm maybe
has err "kvmguard: invalid mem ksm value 'maybe': expected allow or deny"
expect 2 policy add 'a b'
has err "kvmguard: invalid policy name 'a b': use 1 to 31 characters of A-Z a-z 0-9 . _ -"
expect 2 policy set web
has err "kvmguard: 'policy set' needs something to change"
expect 2 bind cgroup machine.slice policy web
has err "kvmguard: invalid cgroup path 'machine.slice': it must be absolute (start with '/')"
expect 2 bind pid abc policy web
has err "kvmguard: invalid pid 'abc': expected a positive integer"
expect 2 unbind
has err "kvmguard: missing selector: default, cgroup PATH or pid PID"
expect 2 policy add web net trunk 100,,200
has err "kvmguard: invalid net trunk '100,,200': an entry is empty (separate VIDs and ranges with single commas)"
expect 2 policy set web net trunk 0-10
has err "kvmguard: invalid net trunk '0-10': VID 0 is reserved (use VIDs 1 to 4094 and ranges such as 100,200-210, or none)"
expect 2 policy set web net trunk 4095
has err "kvmguard: invalid net trunk '4095': VID 4095 is reserved (use VIDs 1 to 4094 and ranges such as 100,200-210, or none)"
expect 2 policy set web net trunk 100-5000
has err "kvmguard: invalid net trunk '100-5000': VID 5000 is out of range (use VIDs 1 to 4094 and ranges such as 100,200-210, or none)"
expect 2 policy add web net tag 0
has err "kvmguard: invalid net tag '0': VID 0 is reserved (use a VID 1 to 4094, or none)"
expect 2 policy add web net isolate yes
has err "kvmguard: invalid net isolate value 'yes': expected off or on"
expect 2 net bind 3 dev a/b
has err "kvmguard: invalid interface name 'a/b': use 1 to 15 characters without '/', ':' or blanks"
expect 2 net unbind tap0
has err "kvmguard: expected 'dev IFNAME' or 'ifindex N', not 'tap0'"
expect 0 help
has out "  kvmguard net bind ID dev IFNAME|ifindex N"
has out "  net tag VID|none   net trunk VIDLIST|none   net isolate on|off"
expect 2 apply
expect 2 vm list -j
has err "kvmguard: unexpected argument '-j'"

# apply reads and checks the whole file before it talks to the kernel
printf 'policy add a\nbind default policy b\n' >"$tmp/bad.conf"
expect 1 apply "$tmp/bad.conf"
has err "$tmp/bad.conf:2: policy b is not defined in this file"
expect 1 apply "$tmp/missing.conf"
has err "kvmguard: cannot open $tmp/missing.conf: No such file or directory"

if [ -d /sys/module/kvmguard ]; then
	echo "SKIP: the kvmguard module is loaded; not testing its absence"
else
	msg='kvmguard: the kvmguard module is not loaded (generic netlink family "kvmguard" not found)'
	for cmd in "vm list" "-j vm list" "vm show 1" "vm set 1 policy a" \
		"policy add a" "policy set a mode audit" "policy del a" \
		"policy add a mem max 4G mem shared deny mem ksm deny" \
		"policy set a mem dirty-log max 0" \
		"policy add a net tag 100 net trunk 200-210 net isolate on" \
		"net bind 1 dev tap0" "net unbind dev tap0" \
		"policy show" "-j policy show a" "bind default policy a" \
		"unbind pid 3" "bind show" "monitor" "-j monitor" "dump"; do
		# shellcheck disable=SC2086
		expect 1 $cmd
		has err "$msg"
		empty out
	done
	# hypercalls allow all|none are hypercalls all|none: no usage error
	expect 1 policy add a hypercalls allow none
	has err "$msg"
	expect 1 policy set a hypercalls allow all
	has err "$msg"
	printf 'policy add a\n' | $VG "$KG" apply - >"$tmp/out" 2>"$tmp/err"
	[ $? = 1 ] || { echo "FAIL: apply - without module"; fails=$((fails + 1)); }
	has err "$msg"
fi

if [ $fails != 0 ]; then
	echo "cli: $fails failure(s)"
	exit 1
fi
echo "cli: all tests passed${VG:+ (under valgrind)}"
