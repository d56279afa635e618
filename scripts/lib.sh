# shellcheck shell=bash
# Shared helpers for the kvmguard build/test scripts.  Source it, don't run it.

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${KVMGUARD_CACHE:-$TOP/.cache}
LANES_ALL="6.1 6.12 debug"  # the test matrix; used by kernels.sh and check.sh
export TOP CACHE LANES_ALL

msg() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ../shared beside the repository (CI puts a copy there too).
shared_dir() {
	local d
	d=$(cd "$TOP/.." && pwd)/shared
	[ -d "$d" ] && printf '%s\n' "$d"
}

# Run a command quietly; show its output only if it fails.
quiet() {
	local out rc=0
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -ne 0 ]; then
		printf '%s\n' "$out" >&2
		msg "failed ($rc): $*"
	fi
	return "$rc"
}

# Highest version of a package available from a suite matching $2 (extended regex on the
# madison "archive/suite" column) whose version matches $3.
apt_best_version() {
	apt-cache madison "$1" 2>/dev/null |
		awk -F'|' -v s="$2" -v v="$3" '
			{ gsub(/ /, "", $2); if ($3 ~ s && $2 ~ v) print $2 }' |
		sort -uV | tail -n 1
}

# First "Depends:" target of pkg=version that matches a regex.  Pinning the version
# matters: unpinned, apt-cache depends shows the newest (backports) version.
apt_dep_of() {
	apt-cache depends "$1" 2>/dev/null |
		sed -n 's/^ *|\{0,1\}Depends: //p' | { grep -E "$2" || true; } | head -n 1
}

# Resolve the concrete Debian package names for a lane and cache them in
# $CACHE/kernels/<lane>/pkgs (VERSION, IMAGE, HEADERS, COMMON, KBUILD).
resolve_lane_pkgs() {
	local lane=$1 f="$CACHE/kernels/$1/pkgs" ver="" image="" headers="" common="" kbuild=""
	if [ -s "$f" ]; then
		cat "$f"
		return 0
	fi
	case "$lane" in
	6.1)  ver=$(apt_best_version linux-image-amd64 'bookworm(-security|-updates)?/' '^6\.1\.') ;;
	6.12) ver=$(apt_best_version linux-image-amd64 'bookworm-backports/' '^6\.12\.') ;;
	*) die "no Debian packages for lane $lane" ;;
	esac
	[ -n "$ver" ] || die "lane $lane: no linux-image-amd64 version found (apt-get update?)"
	image=$(apt_dep_of "linux-image-amd64=$ver" '^linux-image-')
	headers=$(apt_dep_of "linux-headers-amd64=$ver" '^linux-headers-')
	common=$(apt_dep_of "$headers=$ver" '^linux-headers-.*-common$')
	kbuild=$(apt_dep_of "$headers=$ver" '^linux-kbuild-')
	if [ -z "$image" ] || [ -z "$headers" ] || [ -z "$common" ] || [ -z "$kbuild" ]; then
		die "lane $lane: cannot resolve image/headers/common/kbuild packages for $ver"
	fi
	mkdir -p "${f%/*}"
	printf 'VERSION=%s\nIMAGE=%s\nHEADERS=%s\nCOMMON=%s\nKBUILD=%s\n' \
		"$ver" "$image" "$headers" "$common" "$kbuild" >"$f.tmp"
	mv "$f.tmp" "$f"
	cat "$f"
}

# Load a lane's env file (KVER, VMLINUZ, MODDIR, KDIR) into the current shell.
load_lane_env() {
	local f="$CACHE/kernels/$1/env"
	[ -s "$f" ] || die "lane $1 not prepared: run scripts/kernels.sh $1"
	# shellcheck disable=SC1090
	. "$f"
}
