#!/usr/bin/env bash
# make check: install dependencies, fetch the kernels, run checkpatch and sparse, build
# the CLI and selftests and run the CLI's own tests (under valgrind), then for each lane
# build the module (W=1, warning-free), boot the QEMU test host and run the selftests.  Prints TAP as results come in, "<lane>: N passed, N failed" per lane
# and "N passed, N failed" (", N skipped" when any) as the very last line.
#   usage: scripts/check.sh [lane...]     (default: $KVMGUARD_LANES or 6.1 6.12 debug;
#                                          not yet the vmm lanes, see below)
# A vmm-<kernel lane> lane boots that kernel's test host with Debian's QEMU inside
# and runs selftests/vmm/run.sh instead of the selftests (real guests under
# kvmguard's rules; KVMGUARD_VMM_CASES="case ..." runs only those cases).  Not in
# the default lanes yet: its network guests sometimes stall before their shell
# under load (selftests/README); add vmm-6.1 vmm-6.12 to the default once they do not.
# Logs stay in .cache/log/: <lane>.log (the test host's console: TAP, kmemleak) and
# <lane>.kernel.log (the kernel's own serial console, everything it printed).
# KVMGUARD_BOOT_TIMEOUT (seconds) overrides the per-lane limit on one boot (1500 s;
# debug 3000 s).
# KVMGUARD_TESTS="name ..." runs only those selftests (for iterating on a few).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$TOP"

# The kernel lane a lane runs: vmm-6.1 runs 6.1's kernel and module.
klane() { echo "${1#vmm-}"; }
lanes=("$@")
[ ${#lanes[@]} -gt 0 ] || read -r -a lanes <<<"${KVMGUARD_LANES:-$LANES_ALL}"
LOGDIR="$CACHE/log"
mkdir -p "$LOGDIR"

# Kernel log lines that fail a lane; the debug kernel adds its sanitizers' reports.
BAD='WARNING:|BUG:|Oops|general protection|refcount_t:|list_add corruption|list_del corruption|kernel BUG|Call Trace'
BAD_DEBUG='KASAN|UBSAN|possible circular locking|suspicious RCU usage|sleeping function called from invalid context|inconsistent lock state'

n=0 passed=0 failed=0 skipped=0
declare -A lpass=() lfail=() lskip=()

# result <ok|fail|skip> <lane or -> <name> [diagnostic lines...]
result() {
	local st=$1 lane=$2 name=$3 line
	shift 3
	n=$((n + 1))
	case "$st" in
	ok) echo "ok $n $name"; passed=$((passed + 1)); lpass[$lane]=$((${lpass[$lane]:-0} + 1)) ;;
	skip) echo "ok $n $name # SKIP${1:+ $1}"; shift $#
		skipped=$((skipped + 1)); lskip[$lane]=$((${lskip[$lane]:-0} + 1)) ;;
	*) echo "not ok $n $name"; failed=$((failed + 1)); lfail[$lane]=$((${lfail[$lane]:-0} + 1)) ;;
	esac
	for line in "$@"; do printf '#   %s\n' "$line"; done
}

# Run a step quietly; on failure its output becomes the diagnostics of a not-ok line.
step() { # <lane> <name> <command...>
	local lane=$1 name=$2 out rc=0
	shift 2
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -eq 0 ]; then
		result ok "$lane" "$name"
	else
		mapfile -t diag < <(printf '%s\n' "$out" | tail -n 40)
		result fail "$lane" "$name" "${diag[@]}"
	fi
	return "$rc"
}

# Build the module for a lane; kbuild warnings (compiler, modpost) count as failures.
build_module() { # <lane>
	local log="$LOGDIR/$1-build.log" k
	k=$(klane "$1")  # a vmm lane shares its kernel lane's build directory
	make --no-print-directory modules KDIR="$KDIR" MODBUILD="$CACHE/build/$k" >"$log" 2>&1 ||
		{ cat "$log"; return 1; }
	# The selftests' test-only modules (selftests/modules), shipped by mkinitramfs.sh.
	[ "$k" != "$1" ] || make --no-print-directory -C selftests modules KDIR="$KDIR" \
		MODBUILD="$CACHE/build/$1-testmods" >>"$log" 2>&1 || { cat "$log"; return 1; }
	if grep -iE 'warning|error' "$log"; then return 1; fi
}

# The same sources with failure injection (KVMGUARD_FAULTS=1, kmod/fault_inject.h),
# for the fault selftests, which swap it in for the normal module; only when
# those run.  mkinitramfs.sh ships it as /kvmguard/faults/kvmguard.ko.
FAULT_TESTS="net_faults"
want_faults() { # <lane>
	local t
	case "$1" in vmm-*) return 1 ;; esac  # the vmm lanes run no selftests
	[ -n "${KVMGUARD_TESTS:-}" ] || return 0
	for t in $FAULT_TESTS; do
		case " $KVMGUARD_TESTS " in *" $t "*) return 0 ;; esac
	done
	return 1
}
build_faults_module() { # <lane>
	local log="$LOGDIR/$1-faults-build.log"
	make --no-print-directory -j2 modules KDIR="$KDIR" MODBUILD="$CACHE/build/$1-faults" \
		KVMGUARD_FAULTS=1 >"$log" 2>&1 || { cat "$log"; return 1; }
	if grep -iE 'warning|error' "$log"; then return 1; fi
}

# From a failed test's output (stdin), the kselftest cases that failed (from their
# "RUN" line to their "not ok" line; first 10 and last 5 lines of a longer one) and
# the last 3 lines; or the last 30 lines when there is no such case.
failure_context() {
	awk '/#  RUN / { n = 0 } { b[n++] = $0 }
	     /^[# ]*not ok [0-9]/ {
		for (i = 0; i < n; i++)
			if (n <= 15 || i < 10 || i >= n - 5) print b[i]
			else if (i == 10) print "# ... (" n - 15 " lines)"
		found = NR
	     }
	     { t[NR % 30] = $0 }
	     END {
		s = (found ? 3 : 30)
		for (i = NR - s + 1; i <= NR; i++) if (i > 0 && i > found) print t[i % 30]
	     }'
}

# Parse one lane's console (stdin) into results.
parse_console() { # <lane>
	local lane=$1 state=pre plan=0 seen=0 line name st
	local -a recent=()
	while IFS= read -r line; do
		line=${line%$'\r'}
		case "$state:$line" in
		*:KVMGUARD-SUITE-BEGIN) state=suite; continue ;;
		*:KVMGUARD-SUITE-END) state=post; continue ;;
		*:KVMGUARD-KMEMLEAK-BEGIN) state=kmemleak; continue ;;
		*:KVMGUARD-KMEMLEAK-END) state=post; continue ;;
		*:KVMGUARD-DMESG-BEGIN) state=dmesg; continue ;;
		*:KVMGUARD-DMESG-END) state=post; continue ;;
		*:KVMGUARD-HOST-DONE) state=finished; continue ;;
		esac
		case "$state:$line" in
		pre:"host: ok "* | post:"host: ok "*) result ok "$lane" "${line#host: ok }" ;;
		pre:"host: not ok "* | post:"host: not ok "*)
			result fail "$lane" "${line#host: not ok }" "${recent[@]}"; recent=() ;;
		suite:1..[0-9]*) plan=${line#1..}; plan=${plan%% *} ;;
		suite:"ok "[0-9]* | suite:"not ok "[0-9]*)
			seen=$((seen + 1))
			st=ok; [ "${line#not }" = "$line" ] || st=fail
			name=${line#not }; name=${name#ok }; name=${name#* }; name=${name#- }
			case "$name" in
			*"# SKIP"* | *"# skip"*)
				result skip "$lane" "$lane: ${name%% #*}" "$(printf '%s' "${name#*# [Ss][Kk][Ii][Pp]}" | sed 's/^ *//')" ;;
			*"# TODO"*) result ok "$lane" "$lane: $name" ;;
			*)
				if [ "$st" = ok ]; then result ok "$lane" "$lane: $name"
				else
					mapfile -t ctx < <(printf '%s\n' "${recent[@]}" | failure_context)
					result fail "$lane" "$lane: $name" "${ctx[@]}"
				fi ;;
			esac
			recent=() ;;
		suite:* | pre:* | post:*)
			# Context for the next failure: the suite's output before it.
			recent+=("$line")
			[ ${#recent[@]} -le 400 ] || recent=("${recent[@]:1}") ;;
		esac
	done
	if [ "$state" != finished ]; then
		# Timeout, panic or a hung guest: whatever the suite did not report failed.
		local missing=$((plan > seen ? plan - seen : 1))
		# The end of the console, and of the kernel's log (a lockup, a stall).
		mapfile -t recent < <(tail -n 15 "$LOGDIR/$lane.log"
			[ ! -s "$LOGDIR/$lane.kernel.log" ] ||
				{ echo "--- kernel log:"; tail -n 40 "$LOGDIR/$lane.kernel.log" | tr -d '\r'; })
		result fail "$lane" "$lane: test host finished the suite ($missing tests not reported)" \
			"${recent[@]}"
		local i
		for ((i = 1; i < missing; i++)); do
			result fail "$lane" "$lane: suite test $((seen + i + 1)) of $plan not reported"
		done
	elif [ "$plan" -gt 0 ] && [ "$seen" -ne "$plan" ]; then
		result fail "$lane" "$lane: suite reported $seen of $plan planned tests"
	elif [ "$plan" -eq 0 ]; then
		result fail "$lane" "$lane: suite printed no TAP plan"
	fi
}

# The kernel-log verdict for a lane: <lane>.kernel.log (else the dmesg section, else
# the whole console) from the suite's start marker on, plus, on the debug
# kernel, kmemleak reports that involve kvmguard.  Reports from before the suite
# (boot, KVM modules; kvmguard not loaded yet) are shown but do not fail the lane.
kernel_log_check() { # <lane>
	local lane=$1 log="$LOGDIR/$1.log" pat=$BAD text
	[ "$lane" = debug ] && pat="$pat|$BAD_DEBUG"
	if [ -s "$LOGDIR/$lane.kernel.log" ]; then
		# The kernel's own serial port: complete even when the guest hung.
		text=$(tr -d '\r' <"$LOGDIR/$lane.kernel.log")
	elif grep -q '^KVMGUARD-DMESG-END' "$log"; then
		text=$(sed -n '/^KVMGUARD-DMESG-BEGIN/,/^KVMGUARD-DMESG-END/p' "$log")
	else
		text=$(cat "$log")
	fi
	local marker='(kvmguard-test: suite begins|^KVMGUARD-SUITE-BEGIN)$'
	local -a bad=() early=()
	mapfile -t early < <(printf '%s\n' "$text" | awk -v m="$marker" '$0 ~ m { exit } 1' |
		grep -E -A 12 "$pat" | head -n 60)
	mapfile -t bad < <(printf '%s\n' "$text" | awk -v m="$marker" 'f; $0 ~ m { f = 1 }' |
		grep -E -A 12 "$pat" | head -n 80)
	if [ ${#early[@]} -gt 0 ]; then
		echo "# $lane: the kernel reported problems before the suite started (not counted):"
		printf '#   %s\n' "${early[@]}"
	fi
	# kmemleak: one report per "unreferenced object" block; keep those whose backtrace
	# names kvmguard or, the module being unloaded by then, has a frame inside it.
	# Ranges of kvmguard's code as "lo-hi" pairs of 16 hex digits, which awk can
	# compare as strings: the core from /proc/modules, and 64 KiB from .init.text.
	local -a leaks=() mod=()
	local ranges="" init
	read -r -a mod < <(sed -n 's/^KVMGUARD-MODULE //p' "$log" | tail -n 1) || true  # none if it hung
	if [ ${#mod[@]} -ge 6 ] && [[ ${mod[5]} =~ ^0x[0-9a-f]{16}$ ]]; then
		ranges=$(printf '%016x-%016x' "${mod[5]}" "$((mod[5] + mod[1]))")
		init=${mod[${#mod[@]} - 1]#init=}
		[[ $init =~ ^0x[0-9a-f]{16}$ ]] &&
			ranges+=$(printf ' %016x-%016x' "$init" "$((init + 65536))")
	fi
	mapfile -t leaks < <(sed -n '/^KVMGUARD-KMEMLEAK-BEGIN/,/^KVMGUARD-KMEMLEAK-END/p' "$log" |
		awk -v ranges="$ranges" '
		function flush() { if (hit) printf "%s", b; b = ""; hit = 0 }
		BEGIN {
			for (i = 0; i < 16; i++) hex16 = hex16 "[0-9a-f]"  # mawk: no {16}
			nr = split(ranges, r, " ")
		}
		/^unreferenced object/ { flush() }
		/^KVMGUARD-KMEMLEAK/ { next }
		{ b = b $0 "\n" }
		/kvmguard/ { hit = 1 }
		/ 0x/ {
			# A frame the kernel could not name prints as "0x<address>".
			rest = $0
			while (match(rest, "0x" hex16)) {
				a = substr(rest, RSTART + 2, 16)
				for (i = 1; i <= nr; i++)
					if (a >= substr(r[i], 1, 16) && a < substr(r[i], 18, 16)) hit = 1
				rest = substr(rest, RSTART + 18)
			}
		}
		END { flush() }' | head -n 80)
	if [ ${#bad[@]} -eq 0 ] && [ ${#leaks[@]} -eq 0 ]; then
		result ok "$lane" "$lane: kernel log clean"
	else
		result fail "$lane" "$lane: kernel log clean" "${bad[@]}" "${leaks[@]}"
	fi
}

# The plan and the summary; the summary is always the last line.
finish() {
	echo "1..$n"
	echo "# total $(($(date +%s) - started)) s"
	echo "$passed passed, $failed failed$([ "$skipped" -eq 0 ] || echo ", $skipped skipped")"
	[ "$failed" -eq 0 ]
}

echo "TAP version 13"
started=$(date +%s)

# Without the packages nothing below can run.
step - "dependencies installed (scripts/deps.sh)" scripts/deps.sh || { finish; exit 1; }
ready=()
for lane in "${lanes[@]}"; do
	if [ "$lane" = debug ] && ! compgen -G "$(shared_dir)/debug-kernel/linux-image-*.deb" >/dev/null; then
		result skip debug "debug: whole lane" "no ../shared/debug-kernel beside the repository"
		continue
	fi
	step "$lane" "$lane: kernel fetched and unpacked" scripts/kernels.sh "$(klane "$lane")" &&
		ready+=("$lane")
done

step - "checkpatch --strict on kmod/ and uapi/" make --no-print-directory checkpatch || true
sparse_kdirs=()
for lane in 6.1 6.12; do
	[ -s "$CACHE/kernels/$lane/env" ] && sparse_kdirs+=("$(sed -n 's/^KDIR=//p' "$CACHE/kernels/$lane/env")")
done
step - "sparse C=2 against ${#sparse_kdirs[@]} kernels" \
	make --no-print-directory sparse SPARSE_KDIRS="${sparse_kdirs[*]}" || true
built=0
step - "build userspace CLI and selftests" make --no-print-directory userspace selftests && built=1
[ "$built" -eq 0 ] || step - "CLI tests: unit, fake kernel, valgrind (make -C userspace test)" \
	make --no-print-directory -C userspace test || true

# Hung guests are killed: 1500 s for 6.1/6.12, 3000 s for debug. A suite takes a few
# minutes alone (the soak and fault tests reload the module dozens of times), and
# about twice that beside other test hosts on two cores (6.12 took 970 s so).
boot_limit() { case "$1" in debug) echo 3000 ;; vmm-*) echo 1200 ;; *) echo 1500 ;; esac; }
boot_lane() { # <lane> <initramfs>: the test host's console on stdout
	KVMGUARD_BOOT_TIMEOUT=${KVMGUARD_BOOT_TIMEOUT:-$(boot_limit "$1")} \
		KVMGUARD_KERNEL_LOG="$LOGDIR/$1.kernel.log" \
		scripts/boot.sh "$(klane "$1")" "$2" "$LOGDIR/$1.log" 2>&1
}
lane_done() { # <lane> <start time>
	echo "# $1: $(($(date +%s) - $2)) s"
	echo "$1: ${lpass[$1]:-0} passed, ${lfail[$1]:-0} failed${lskip[$1]:+, ${lskip[$1]} skipped}"
}

# Build each lane's module and initramfs.
lane_mode() { case "$1" in vmm-*) echo vmm ;; *) echo test ;; esac; }
declare -A initrd=() t0=()
for lane in "${ready[@]}"; do
	load_lane_env "$(klane "$lane")"
	rm -f "$CACHE/build/$lane-faults/kvmguard.ko"
	if step "$lane" "$lane: module builds warning-free (W=1) against $KVER" build_module "$lane" &&
		{ ! want_faults "$lane" || step "$lane" "$lane: failure-injection module builds warning-free" \
			build_faults_module "$lane"; } &&
		[ "$built" -eq 1 ] &&
		initrd[$lane]=$(scripts/mkinitramfs.sh "$lane" "$(lane_mode "$lane")" 2>"$LOGDIR/$lane-initramfs.log"); then
		:
	else
		[ ! -s "$LOGDIR/$lane-initramfs.log" ] || sed 's/^/#   /' "$LOGDIR/$lane-initramfs.log"
		result fail "$lane" "$lane: test host not booted (build failed)"
	fi
done

# What a real host gets from the tree (make install/uninstall, the systemd unit,
# the example config); after the lanes' builds, whose modules it installs.
[ "$built" -eq 0 ] || step - "packaging: make install/uninstall inverse, unit verified, example config a no-op" \
	make --no-print-directory packaging-check || true

# QEMU runs all of a guest's vCPUs on one host thread (boot.sh), so two test hosts
# fill two cores: the debug lane, by far the slowest, boots in the background while
# the others boot one after another; its results are printed when it is done.
bg=""
if [ -n "${initrd[debug]:-}" ] && [ ${#initrd[@]} -gt 1 ]; then
	bg=debug
	t0[debug]=$(date +%s)
	echo "# debug: booting the test host in the background (console: .cache/log/debug.log)"
	boot_lane debug "${initrd[debug]}" >/dev/null &
	bg_pid=$!
fi
for lane in "${ready[@]}"; do
	[ "$lane" != "$bg" ] || continue
	t0[$lane]=$(date +%s)
	if [ -n "${initrd[$lane]:-}" ]; then
		echo "# $lane: booting the test host (console: .cache/log/$lane.log)"
		parse_console "$lane" < <(boot_lane "$lane" "${initrd[$lane]}")
		kernel_log_check "$lane"
	fi
	lane_done "$lane" "${t0[$lane]}"
done
if [ -n "$bg" ]; then
	wait "$bg_pid" || true
	parse_console "$bg" <"$LOGDIR/$bg.log"
	kernel_log_check "$bg"
	lane_done "$bg" "${t0[$bg]}"
fi

finish
