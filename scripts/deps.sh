#!/usr/bin/env bash
# Install everything the build and the QEMU test host need (Debian 12, as root).
# Idempotent and quiet: it only talks to apt when something is missing, says what it
# adds or installs, and prints apt's output only when apt fails.  Needs
# bookworm-backports (6.12 kernel packages are downloaded from there, never
# installed): an already configured source is reused, else one is added.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

export DEBIAN_FRONTEND=noninteractive
# KVMGUARD_APT_DIR: another /etc/apt, to try the source handling on a copy.
APT_DIR=${KVMGUARD_APT_DIR:-/etc/apt}
BACKPORTS=$APT_DIR/sources.list.d/kvmguard-backports.sources

PKGS=(
	gcc make libc6-dev perl bc kmod cpio xz-utils zstd gzip
	sparse dwarves libelf1 libssl3          # sparse for C=2; pahole+libs for 6.12 kbuild
	libnl-3-dev libnl-genl-3-dev pkg-config  # the CLI and the selftests
	qemu-system-x86 busybox-static          # the test host
	seabios                                 # the vmm lanes: QEMU's firmware inside it
	iproute2                                # ip, bridge in the test host (network selftests)
	linux-source-6.1                        # checkpatch.pl and the kselftest headers
	valgrind shellcheck python3             # the CLI's own tests (userspace/tests)
	systemd                                 # systemd-analyze verify (make packaging-check)
)

# Every "deb" source of the machine, one line per suite: "FILE URI SUITE SIGNED-BY"
# (deb822 *.sources stanzas that are not "Enabled: no", and classic one-line
# sources.list / *.list entries).  Never hard-code a mirror: it comes from here.
apt_sources() {
	local f
	for f in "$APT_DIR"/sources.list.d/*.sources; do
		[ -e "$f" ] || continue
		awk -v file="$f" 'BEGIN { RS = ""; FS = "\n" }
		{
			types = uris = suites = signed = ""; enabled = "yes"
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^[ \t]*#/ || $i !~ /:/) continue
				k = tolower($i); sub(/:.*/, "", k)
				v = $i; sub(/^[^:]*:[ \t]*/, "", v)
				if (k == "types") types = v
				else if (k == "uris") uris = v
				else if (k == "suites") suites = v
				else if (k == "signed-by") signed = v
				else if (k == "enabled") enabled = tolower(v)
			}
			if ((" " types " ") !~ / deb / || enabled == "no") next
			split(uris, u, /[ \t]+/); n = split(suites, s, /[ \t]+/)
			for (j = 1; j <= n; j++) if (s[j] != "") print file, u[1], s[j], (signed == "" ? "-" : signed)
		}' "$f"
	done
	for f in "$APT_DIR"/sources.list "$APT_DIR"/sources.list.d/*.list; do
		[ -e "$f" ] || continue
		awk -v file="$f" '$1 == "deb" {
			signed = "-"; i = 2
			if ($2 ~ /^\[/) {
				for (; i <= NF; i++) {
					if ($i ~ /^\[?signed-by=/) { signed = $i; sub(/.*signed-by=/, "", signed); sub(/\]$/, "", signed) }
					if ($i ~ /\]$/) { i++; break }
				}
			}
			print file, $i, $(i + 1), signed
		}' "$f"
	done
	return 0
}

# bookworm-backports (the 6.12 kernel packages are downloaded from it, never
# installed): reuse a source the machine already has; else add ours, from the
# mirror and keyring of the machine's own bookworm source.  Says what it changes;
# returns 0 when it changed something.
ensure_backports() {
	local file uri signed want
	if read -r file uri _ signed < <(apt_sources |
		awk -v ours="$BACKPORTS" '$1 != ours && $3 == "bookworm-backports"' | head -n 1); then
		[ -e "$BACKPORTS" ] || return 1
		msg "deps.sh: bookworm-backports is configured in $file: removing our duplicate $BACKPORTS"
		rm -f "$BACKPORTS"
		return 0
	fi
	read -r file uri _ signed < <(apt_sources |
		awk -v ours="$BACKPORTS" '$1 != ours && $3 == "bookworm"' | head -n 1) || true
	[ -n "${uri:-}" ] || die "no 'bookworm' apt source found to derive bookworm-backports from"
	[ "$signed" != - ] || signed=/usr/share/keyrings/debian-archive-keyring.gpg
	want=$(printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
		"$uri" "$signed")
	[ "$(cat "$BACKPORTS" 2>/dev/null)" = "$want" ] && return 1
	msg "deps.sh: adding apt source bookworm-backports ($uri, from $file) as $BACKPORTS" \
		"(for the 6.12 kernel packages, which are downloaded and unpacked, never installed)"
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
	msg "deps.sh: installing with apt-get: ${missing[*]}"
	quiet apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"
fi
