#!/usr/bin/env bash
# make deb: the Debian packages kvmguard and kvmguard-dkms, built with
# `dpkg-buildpackage -us -uc -b` from a copy of the tree (the files git knows
# about, committed or not; no .cache) in .cache/deb/kvmguard-<VERSION>/, then
# checked by lintian when it is installed.  The .deb files end up in .cache/deb/.
# As root it first installs what is missing of the build dependencies (Debian
# 12's debhelper, dh-dkms, dpkg-dev, libnl) and lintian, saying what it installs.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$TOP"

version=$(cat VERSION)
out="$CACHE/deb"
src="$out/kvmguard-$version"

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
missing=()
for p in dpkg-dev debhelper dh-dkms libnl-3-dev libnl-genl-3-dev pkg-config lintian; do
	installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}: install them (apt-get install) or run as root"
	msg "make deb: installing ${missing[*]} (apt-get, Debian's own archive)"
	export DEBIAN_FRONTEND=noninteractive
	quiet apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"
fi

rm -rf "$out"
mkdir -p "$src"
if git -C "$TOP" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$TOP" ls-files -z --cached --others --exclude-standard |
		(cd "$TOP" && cpio --null -pdm --quiet "$src")
else
	tar -C "$TOP" --exclude=./.cache -cf - . | tar -C "$src" -xf -
fi

msg "make deb: dpkg-buildpackage -us -uc -b in $src"
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1 ||
	{ tail -n 40 "$out/build.log" >&2; die "dpkg-buildpackage failed; see $out/build.log"; }
changes=$(compgen -G "$out/kvmguard_${version}_*.changes" | head -n 1)
if command -v lintian >/dev/null; then
	# Errors fail; warnings and notes are printed.
	lintian --fail-on error "$changes" | tee "$out/lintian.log" >&2 ||
		die "lintian reports errors (see $out/lintian.log)"
fi
ls "$out"/*.deb
