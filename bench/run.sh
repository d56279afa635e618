#!/usr/bin/env bash
# make bench: what kvmguard costs on KVM's exit paths, on memslot changes and
# on the vhost-net packet paths, in instructions.
#
# Boots each lane's test host once in QEMU with -smp 1 -icount shift=0,sleep=off
# (the host's clock then advances 1 ns per emulated instruction: DESIGN.md,
# "Measuring overhead") and runs bench/guest.sh there, which alternates, ROUNDS
# times, (a) kvmguard not loaded, (b) loaded with no policy (the bench VMs'
# taps bound to them, no network rule), (c) loaded with a default-bound policy
# allowing only vapic_poll_irq, (d) loaded with a default-bound policy setting
# every memory rule (so that they allow the bench VM), (e) loaded with a
# default-bound policy `net tag 100`, (f) loaded, no policy for the bench VMs
# but another VM's tap on the bridge tagged 100 (what an untagged VM pays
# once any VM is tagged), and for the packet workloads (g) not loaded, with
# the bridge tagging VLAN 100 itself (VLAN filtering; the same frames on the
# uplink and in the rings as in (e)), and times six workloads in each:
# bench/kvmbench.c's hypercall loop (handled in KVM), I/O port loop (an exit
# to the VMM each time) and memslot create + delete loop
# (KVM_SET_USER_MEMORY_REGION), and bench/vhostbench.c's 64-byte frames
# through vhost-net as a VMM with a KVM VM drives it: vhost-tx (guest TX ring
# -> tap -> bridge -> veth into a netns), vhost-rx (AF_PACKET in that netns ->
# veth -> bridge -> tap -> guest RX ring; tagged VLAN 100 in (e)),
# and vhost-a2b (one guest's TX ring -> tap -> bridge -> tap -> another
# guest's RX ring). In (e) vhost-rx's frames come tagged from the uplink and
# are untagged in software by the veth's receive path (a NIC would do it in
# hardware): that is in its (e) number too; vhost-a2b has no such part.
# Prints the medians in instructions per round trip (memslot: per create +
# delete pair; vhost-*: per frame), their ratio to (a), and MISSED where a
# ratio is above its target:
#   loaded (b): <= 1.001x; allowlist (c): hypercall, memslot <= 1.01x,
#   pio <= 1.001x; memory rules (d): memslot <= 1.01x, hypercall and
#   pio <= 1.001x; net tag (e) and mixed (f): hypercall, pio, memslot
#   <= 1.001x; vhost-* <= 1.01x in every configuration. A second table
#   compares the packet rows of (e) with (g): kvmguard's tagging against
#   the bridge's (no target).
#
# BENCH_PROFILE=1 (make profile) adds where those instructions go, by
# function: QEMU loads bench/kgprof.c, a TCG plugin built here, which counts
# the instructions of each code address in the timed runs (the programs mark
# them: bench/kgprof.h); the test host boots with nokaslr and prints its
# kallsyms; bench/profile.py then prints, per workload and configuration,
# the functions that run at least 1 instruction per round trip more or
# fewer than in (a), and what kvmguard's own code runs. The plugin does not
# change the guest's instruction counts (the tables stay valid); the boot
# takes 2 to 2.5 times as long.
#
#   usage: bench/run.sh [lane...]        (default: 6.1 6.12)
# Env: BENCH_ROUNDS (default 5), BENCH_N_HYPERCALL (40000), BENCH_N_PIO (40000),
#      BENCH_N_MEMSLOT (2000), BENCH_N_VHOST (8000 frames), BENCH_WORKLOADS
#      (default: all six, space-separated), BENCH_PROFILE (0; 1 to profile),
#      KVMGUARD_BOOT_TIMEOUT (default here 900 s per lane).
# Work files and the consoles: .cache/bench-run/ (console: <lane>.log;
# profile: <lane>.profile, from the plugin's files in <lane>.prof/).
# Exit status: 0 when every number (and with BENCH_PROFILE=1, every profile)
# was measured, 1 otherwise (a missed target is not a failure).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"
cd "$TOP"

lanes=("$@")
[ ${#lanes[@]} -gt 0 ] || lanes=(6.1 6.12)
ROUNDS=${BENCH_ROUNDS:-5}
N_HC=${BENCH_N_HYPERCALL:-40000}
N_PIO=${BENCH_N_PIO:-40000}
N_MEM=${BENCH_N_MEMSLOT:-2000}
N_VHOST=${BENCH_N_VHOST:-8000}
WORKLOADS=${BENCH_WORKLOADS:-hypercall pio memslot vhost-tx vhost-rx vhost-a2b}
PROFILE=${BENCH_PROFILE:-0}
WORK="$CACHE/bench-run"
mkdir -p "$WORK/bin"
case "$PROFILE" in
0 | 1) ;;
*) die "BENCH_PROFILE=$PROFILE: 0 or 1" ;;
esac
# The plugin's path and argument go through QEMU's comma-separated -plugin
# option and boot.sh's word splitting.
[ "$PROFILE" = 0 ] || [[ "$WORK" != *[,[:space:]]* ]] ||
	die "BENCH_PROFILE: $WORK has a comma or a space"

scripts/deps.sh
scripts/kernels.sh "${lanes[@]}" >/dev/null

# Static: nothing to resolve inside the initramfs.
gcc -O2 -Wall -Wextra -Werror -static -o "$WORK/bin/kvmbench" bench/kvmbench.c
gcc -O2 -Wall -Wextra -Werror -static -Iselftests -o "$WORK/bin/vhostbench" \
	bench/vhostbench.c selftests/vhostdrv.c
# Loaded by QEMU, on this machine.
[ "$PROFILE" = 0 ] ||
	gcc -O2 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden \
		-o "$WORK/kgprof.so" bench/kgprof.c
# The CLI sets the policy in the test host.
cli="$TOP/userspace/kvmguard"
[ -x "$cli" ] || quiet make --no-print-directory userspace

# Copy a file into the overlay, and for an ELF every library ldd lists.
put() { # <root> <src> <dst>
	local root=$1 src=$2 dst=$3 lib
	mkdir -p "$root$(dirname "$dst")"
	cp -L "$src" "$root$dst"
	for lib in $(ldd "$src" 2>/dev/null | grep -oE '/[^ ]+' || true); do
		[ -e "$root$lib" ] || put "$root" "$lib" "$lib"
	done
}

# The test host's initramfs: the smoke image (busybox, the lane's KVM
# modules) and, appended, an archive with our /init and files (the kernel
# unpacks concatenated archives in order, later files replacing earlier).
build_initramfs() { # <lane> <module build dir> -> path on stdout
	local lane=$1 ko=$2/kvmguard.ko smoke root img
	# Kbuild puts the module at the top of its build directory (older trees:
	# kmod/); take the newer.
	[ ! "$2/kmod/kvmguard.ko" -nt "$ko" ] || ko=$2/kmod/kvmguard.ko
	smoke=$(scripts/mkinitramfs.sh "$lane" smoke)
	root="$WORK/$lane.root"
	img="$WORK/$lane.cpio.gz"
	rm -rf "$root"
	mkdir -p "$root/bench"
	put "$root" bench/guest.sh /init
	chmod 755 "$root/init"
	put "$root" "$WORK/bin/kvmbench" /bench/kvmbench
	put "$root" "$WORK/bin/vhostbench" /bench/vhostbench
	put "$root" "$ko" /bench/kvmguard.ko
	put "$root" "$cli" /usr/sbin/kvmguard
	printf 'ROUNDS=%s\nN_hypercall=%s\nN_pio=%s\nN_memslot=%s\nN_vhost=%s\nWORKLOADS="%s"\nPROFILE=%s\n' \
		"$ROUNDS" "$N_HC" "$N_PIO" "$N_MEM" "$N_VHOST" "$WORKLOADS" "$PROFILE" \
		>"$root/bench/bench.conf"
	{
		cat "$smoke"
		(cd "$root" && find . -print0 | LC_ALL=C sort -z |
			cpio --null -o -H newc --quiet | gzip -1)
	} >"$img.tmp"
	mv "$img.tmp" "$img"
	echo "$img"
}

# Medians of one lane's console into "lane workload a b c d e f g" lines; checks that
# every round measured every configuration and that the hook was present in
# (c) only. Problems go to stderr, and the status is 1.
summarize() { # <lane> <log>
	awk -v lane="$1" -v rounds="$ROUNDS" -v workloads="$WORKLOADS" '
	function median(key,   n, i, j, t, v) {
		n = cnt[key]
		for (i = 1; i <= n; i++) v[i] = val[key, i]
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
		return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
	$1 == "BENCH" && $2 == lane { key = $3 " " $4; val[key, ++cnt[key]] = $6 }
	$1 == "BENCH-ERROR" { print "bench: " $0 > "/dev/stderr"; bad = 1 }
	$1 == "BENCH-HOOK" && $2 == lane {
		want = $3 == "c" ? "yes" : "no"
		if ($5 != want && $5 != "unknown") {
			print "bench: " lane ": config " $3 " round " $4 ": hypercall hook present: " $5 \
				" (expected " want ")" > "/dev/stderr"
			bad = 1
		}
	}
	$1 == "BENCH-END" && $2 == lane { ended = 1 }
	/BUG:|WARNING:|Oops|Call Trace/ && !oops++ {
		print "bench: " lane ": the kernel log reports a problem: " $0 > "/dev/stderr"
	}
	END {
		if (!ended) { print "bench: " lane ": the test host did not finish" > "/dev/stderr"; bad = 1 }
		nw = split(workloads, w, " ")
		for (i = 1; i <= nw; i++) {
			line = lane " " w[i]
			for (c = 1; c <= 7; c++) {
				key = substr("abcdefg", c, 1) " " w[i]
				if (c == 7 && w[i] !~ /^vhost-/) {
					line = line " -"	# g: packets only
					continue
				}
				if (cnt[key] != rounds) {
					print "bench: " lane ": " key ": " cnt[key] + 0 " of " rounds " rounds measured" > "/dev/stderr"
					bad = 1
				}
				line = line " " (cnt[key] ? sprintf("%.2f", median(key)) : "-")
			}
			print line
		}
		exit bad
	}' "$2"
}

results=()
samples=()
profiles=()
status=0
for lane in "${lanes[@]}"; do
	load_lane_env "$lane"
	# Our own build directory: make check may be building $CACHE/build/<lane>.
	modbuild="$CACHE/build/bench-$lane"
	if ! quiet make --no-print-directory modules KDIR="$KDIR" MODBUILD="$modbuild" ||
		! initrd=$(build_initramfs "$lane" "$modbuild"); then
		msg "bench: $lane: cannot build the module or the initramfs"
		status=1
		continue
	fi
	log="$WORK/$lane.log"
	qemu_extra="-icount shift=0,sleep=off"
	append=${KVMGUARD_APPEND:-}
	if [ "$PROFILE" = 1 ]; then
		# kgprof writes <lane>.prof/w.<k>. The names come from this
		# boot's kallsyms; nokaslr gives every profiled boot the same
		# addresses, so that raw window files compare across boots.
		rm -rf "$WORK/$lane.prof"
		mkdir -p "$WORK/$lane.prof"
		qemu_extra+=" -plugin $WORK/kgprof.so,out=$WORK/$lane.prof/w"
		append+=" nokaslr"
	fi
	msg "bench: $lane: booting the test host (-smp 1 -icount shift=0,sleep=off$(
		[ "$PROFILE" = 0 ] || echo ", profiled"); console: $log)"
	t0=$(date +%s)
	KVMGUARD_SMP=1 KVMGUARD_QEMU_EXTRA="$qemu_extra" KVMGUARD_APPEND="$append" \
		KVMGUARD_BOOT_TIMEOUT=${KVMGUARD_BOOT_TIMEOUT:-900} \
		scripts/boot.sh "$lane" "$initrd" "$log" >/dev/null 2>&1 || true
	msg "bench: $lane: $(($(date +%s) - t0)) s"
	out=$(summarize "$lane" "$log") || status=1
	mapfile -t -O "${#results[@]}" results <<<"$out"
	mapfile -t -O "${#samples[@]}" samples < <(grep "^BENCH $lane " "$log" || true)
	if [ "$PROFILE" = 1 ]; then
		python3 bench/profile.py "$lane" "$log" "$WORK/$lane.prof/w" \
			>"$WORK/$lane.profile" || status=1
		profiles+=("$WORK/$lane.profile")
	fi
done

# Instructions per round trip (medians), ratio to (a), MISSED above target.
echo
printf '%s\n' "${results[@]}" | awk '
	function ratio(x, base, max,   r) {
		if (x == "-" || base == "-" || base == 0) return "-"
		r = x / base
		return sprintf("%.3fx%s", r, r > max ? " MISSED" : "")
	}
	function num(x) { return x == "-" ? "-" : sprintf("%.0f", x) }
	function row(a, b, c, d, e, f, g, h, i, j, k, l, m) {
		printf "%-5s %-10s %-9s %-7s %-14s %-10s %-14s %-9s %-14s %-7s %-14s %-7s %s\n",
			a, b, c, d, e, f, g, h, i, j, k, l, m
	}
	BEGIN {
		row("lane", "workload", "unloaded", "loaded", "ratio", "allowlist", "ratio",
			"memrules", "ratio", "nettag", "ratio", "mixed", "ratio")
	}
	NF == 9 {
		net = $2 ~ /^vhost-/
		row($1, $2, num($3), num($4), ratio($4, $3, net ? 1.01 : 1.001),
			num($5), ratio($5, $3, net ? 1.01 : $2 == "pio" ? 1.001 : 1.01),
			num($6), ratio($6, $3, net || $2 == "memslot" ? 1.01 : 1.001),
			num($7), ratio($7, $3, net ? 1.01 : 1.001),
			num($8), ratio($8, $3, net ? 1.01 : 1.001))
	}'
echo
echo "Tagged VLAN 100 by kvmguard (nettag) and by the bridge (VLAN filtering, not loaded):"
printf '%s\n' "${results[@]}" | awk '
	function row(a, b, c, d, e, f, g, h) {
		printf "%-5s %-10s %-9s %-14s %-7s %-8s %-7s %s\n", a, b, c, d, e, f, g, h
	}
	function ratio(x, base) {
		return x == "-" || base == "-" || base == 0 ? "-" : sprintf("%.3fx", x / base)
	}
	BEGIN { row("lane", "workload", "unloaded", "bridge-tagged", "ratio", "nettag", "ratio",
		    "nettag/bridge-tagged") }
	NF == 9 && $2 ~ /^vhost-/ {
		row($1, $2, sprintf("%.0f", $3), $9 == "-" ? "-" : sprintf("%.0f", $9), ratio($9, $3),
		    $7 == "-" ? "-" : sprintf("%.0f", $7), ratio($7, $3), ratio($7, $9))
	}'
echo
echo "Targets: loaded <= 1.001x; allowlist: hypercall, memslot <= 1.01x, pio <= 1.001x;"
echo "memrules: memslot <= 1.01x, hypercall and pio <= 1.001x; nettag, mixed: hypercall,"
echo "pio, memslot <= 1.001x; vhost-* <= 1.01x in every configuration."
echo "mixed: the bench VMs untagged while another VM's port on the bridge is tagged."
echo "Medians of $ROUNDS interleaved rounds (a b c d e f g), instructions per round trip"
echo "(memslot: per create + delete pair; vhost-*: per 64-byte frame):"
printf '  %s\n' "${results[@]}"
echo "Samples (BENCH lane config workload round per-trip t(N)ns t(1 or N/8)ns N):"
printf '  %s\n' "${samples[@]}"
for f in "${profiles[@]}"; do
	printf '\nProfile (%s):\n' "${f#"$TOP"/}"
	cat "$f"
done
exit "$status"
