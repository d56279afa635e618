#!/usr/bin/env bash
# Install everything the build and the QEMU test host need (Debian 12, as root).
# Idempotent and quiet: it only talks to apt when something is missing, and prints
# apt's output only when apt fails.  Also enables bookworm-backports (6.12 kernel
# packages are downloaded from there, never installed).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

export DEBIAN_FRONTEND=noninteractive
BACKPORTS=/etc/apt/sources.list.d/kvmguard-backports.sources

PKGS=(
	gcc make libc6-dev perl bc kmod cpio xz-utils zstd gzip
	sparse dwarves libelf1 libssl3          # sparse for C=2; pahole+libs for 6.12 kbuild
	libnl-3-dev libnl-genl-3-dev pkg-config  # the CLI and the selftests
	qemu-system-x86 busybox-static          # the test host
	seabios                                 # the vmm lanes: QEMU's firmware inside it
	iproute2                                # ip, bridge in the test host (network selftests)
	linux-source-6.1                        # checkpatch.pl and the kselftest headers
	valgrind shellcheck python3             # the CLI's own tests (userspace/tests)
)

# The mirror and keyring of the machine's own bookworm source (deb822 *.sources or a
# classic sources.list line), printed as "URI SIGNED-BY".  Never hard-code a mirror.
bookworm_source() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		if [ ! -e "$f" ] || [ "$f" = "$BACKPORTS" ]; then continue; fi
		awk 'BEGIN { RS = ""; FS = "\n" }
		{
			types = uris = suites = signed = ""
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^[ \t]*#/ || $i !~ /:/) continue
				k = tolower($i); sub(/:.*/, "", k)
				v = $i; sub(/^[^:]*:[ \t]*/, "", v)
				if (k == "types") types = v
				else if (k == "uris") uris = v
				else if (k == "suites") suites = v
				else if (k == "signed-by") signed = v
			}
			split(uris, u, /[ \t]+/)
			if ((" " types " ") ~ / deb / && (" " suites " ") ~ / bookworm /) {
				print u[1], signed; exit
			}
		}' "$f"
	done
	[ -e /etc/apt/sources.list ] &&
		awk '$1 == "deb" {
			signed = ""; i = 2
			if ($2 ~ /^\[/) {
				for (; i <= NF; i++) {
					if ($i ~ /^\[?signed-by=/) { signed = $i; sub(/.*signed-by=/, "", signed); sub(/\]$/, "", signed) }
					if ($i ~ /\]$/) { i++; break }
				}
			}
			if ($(i + 1) == "bookworm") { print $i, signed; exit }
		}' /etc/apt/sources.list
	return 0
}

# Write the backports source if it is missing or differs; returns 0 when it changed.
ensure_backports() {
	local uri signed want
	read -r uri signed < <(bookworm_source | head -n 1) || true
	[ -n "${uri:-}" ] || die "no 'bookworm' apt source found to derive bookworm-backports from"
	want=$(printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
		"$uri" "${signed:-/usr/share/keyrings/debian-archive-keyring.gpg}")
	[ "$(cat "$BACKPORTS" 2>/dev/null)" = "$want" ] && return 1
	printf '%s\n' "$want" >"$BACKPORTS"
	return 0
}

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

updated=0
apt_update() {
	[ "$updated" -eq 1 ] && return 0
	quiet apt-get update -q -o DPkg::Lock::Timeout=600
	updated=1
}

[ "$(id -u)" -eq 0 ] || {
	# Not root: fine when everything is already there, otherwise we cannot help.
	for p in "${PKGS[@]}"; do installed "$p" || die "$p missing; run scripts/deps.sh as root"; done
	exit 0
}

if ensure_backports || ! apt-cache madison linux-image-amd64 | grep -q bookworm-backports; then
	apt_update
fi

# Debian 12's own kernel headers (6.1 lane, default KDIR), resolved from the pinned
# linux-image-amd64 version rather than named here.
pkgs=$(resolve_lane_pkgs 6.1) || exit 1
eval "$pkgs"
PKGS+=("$HEADERS")

missing=()
for p in "${PKGS[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
	apt_update
	# A fresh machine may still be running unattended-upgrades: wait for its lock.
	quiet apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"
fi
