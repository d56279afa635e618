#!/usr/bin/env bash
# make packaging-check (run by make check after the lanes' modules are built; no QEMU,
# a few seconds): what a real host gets from this tree stays honest.
#  - make install DESTDIR=D, then make uninstall DESTDIR=D, leaves D empty; an
#    edited kvmguard.conf survives uninstall, nothing else does;
#  - the unit as installed passes systemd-analyze verify (its binaries and man page
#    resolved inside D);
#  - the installed CLI has no test redirection (KVMGUARD_TEST_PEER) and says the
#    VERSION; dkms.conf and debian/changelog carry the same VERSION;
#  - the shipped example config applies as a no-op (the CLI's test build against
#    userspace/tests/fakekernel.py's fake kernel), and every example line in it,
#    uncommented, is accepted.
# Env: KVMGUARD_PKG_LANE (lane whose module build to install; default: the first
#      lane already built, else 6.1).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$TOP"

fails=0
bad() { printf 'packaging-check: FAIL: %s\n' "$*" >&2; fails=$((fails + 1)); }
ok() { printf 'packaging-check: ok: %s\n' "$*"; }

version=$(cat VERSION)

# --- one version everywhere
dkms_version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' dkms.conf)
[ "$dkms_version" = "$version" ] || bad "dkms.conf PACKAGE_VERSION '$dkms_version' is not VERSION '$version'"
deb_version=$(sed -n '1s/^kvmguard (\([^)]*\)).*/\1/p' debian/changelog)
[ "${deb_version%%-*}" = "$version" ] || bad "debian/changelog version '$deb_version' is not VERSION '$version'"

# --- the lane whose module build to install (already built by check.sh: no rebuild)
lane=${KVMGUARD_PKG_LANE:-}
if [ -z "$lane" ]; then
	for l in $LANES_ALL; do
		if [ -f "$CACHE/build/$l/kvmguard.ko" ] && [ -s "$CACHE/kernels/$l/env" ]; then
			lane=$l
			break
		fi
	done
fi
lane=${lane:-6.1}
load_lane_env "$lane"
mk=(make --no-print-directory -s KDIR="$KDIR" MODBUILD="$CACHE/build/$lane")

D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT

# --- install, verify, uninstall
"${mk[@]}" install DESTDIR="$D" >"$D.log" 2>&1 || { cat "$D.log" >&2; rm -f "$D.log"; die "make install DESTDIR failed"; }
rm -f "$D.log"
krel=$(modinfo -F vermagic "$CACHE/build/$lane/kvmguard.ko" | awk '{ print $1 }')
for f in "lib/modules/$krel/extra/kvmguard.ko" usr/local/sbin/kvmguard \
	usr/local/share/man/man8/kvmguard.8 usr/local/lib/systemd/system/kvmguard.service \
	etc/kvmguard.conf; do
	[ -f "$D/$f" ] || bad "make install did not install /$f"
done
[ "$(modinfo -F version "$D/lib/modules/$krel/extra/kvmguard.ko")" = "$version" ] ||
	bad "the installed module's modinfo version is not $version"
[ "$("$D/usr/local/sbin/kvmguard" --version)" = "kvmguard $version (ABI version 1)" ] ||
	bad "kvmguard --version: $("$D/usr/local/sbin/kvmguard" --version)"
if grep -q KVMGUARD_TEST_PEER "$D/usr/local/sbin/kvmguard"; then
	bad "the installed kvmguard has the test redirection KVMGUARD_TEST_PEER"
fi
grep -q KVMGUARD_TEST_PEER userspace/tests/kvmguard-test 2>/dev/null ||
	bad "userspace/tests/kvmguard-test lacks KVMGUARD_TEST_PEER (the fake-kernel tests need it)"

# The unit as installed, its absolute paths resolved inside D.
unit="$D/usr/local/lib/systemd/system/kvmguard.service"
if command -v systemd-analyze >/dev/null; then
	vdir=$(mktemp -d)
	sed -e "s|=/usr/local/|=$D/usr/local/|g" -e "s| /etc/kvmguard.conf| $D/etc/kvmguard.conf|g" \
		"$unit" >"$vdir/kvmguard.service"
	if out=$(MANPATH="$D/usr/local/share/man" systemd-analyze verify "$vdir/kvmguard.service" 2>&1) &&
		[ -z "$out" ]; then
		ok "systemd-analyze verify kvmguard.service: clean"
	else
		bad "systemd-analyze verify kvmguard.service: $out"
	fi
	rm -rf "$vdir"
else
	bad "no systemd-analyze here (scripts/deps.sh installs systemd): the unit cannot be verified"
fi
grep -q "^ExecStart=/usr/local/sbin/kvmguard apply /etc/kvmguard.conf$" "$unit" ||
	bad "installed unit does not run /usr/local/sbin/kvmguard apply /etc/kvmguard.conf"

"${mk[@]}" uninstall DESTDIR="$D" >/dev/null
left=$(cd "$D" && find . -mindepth 1 | sort)
[ -z "$left" ] || bad "make uninstall left in DESTDIR: $(echo "$left" | tr '\n' ' ')"
[ -n "$left" ] || ok "make install DESTDIR=D && make uninstall DESTDIR=D leaves D empty"

# An edited config is the admin's: uninstall keeps it, and only it.
"${mk[@]}" install DESTDIR="$D" >/dev/null 2>&1
echo "bind default policy mine" >>"$D/etc/kvmguard.conf"
"${mk[@]}" uninstall DESTDIR="$D" >/dev/null 2>&1
left=$(cd "$D" && find . -mindepth 1 -type f | sort)
[ "$left" = "./etc/kvmguard.conf" ] || bad "uninstall with an edited config left: $left"
[ "$left" != "./etc/kvmguard.conf" ] || ok "make uninstall keeps an edited /etc/kvmguard.conf, only it"

# --- the example config against the fake kernel (needs CAP_NET_ADMIN)
if [ "$(id -u)" -ne 0 ]; then
	msg "packaging-check: not root, the example config is not checked against the fake kernel"
elif out=$(python3 - "$TOP" 2>&1 <<'EOF'
import os, subprocess, sys, tempfile
top = sys.argv[1]
sys.path.insert(0, os.path.join(top, "userspace", "tests"))
import fakekernel as fk
cli = os.path.join(top, "userspace", "tests", "kvmguard-test")
conf = os.path.join(top, "etc", "kvmguard.conf")
f = fk.Fake()
def apply(path, *opts):
    f.log.clear()
    p = subprocess.run([cli, "-v", "apply", *opts, path], capture_output=True,
                       env=f.env(), timeout=30)
    return p.returncode, p.stdout.decode(), p.stderr.decode(), f.changes()
# 1. as shipped, on a freshly loaded module: accepted, nothing sent
rc, out, err, ch = apply(conf)
if rc != 0 or out or ch:
    sys.exit("example config as shipped: exit %d, printed %r %r, sent %r" % (rc, out, err, ch))
# 2. its example lines, uncommented: all accepted by the CLI and the fake
lines = [l[1:] for l in open(conf) if l.startswith("#") and l[1:2].isalpha()
         and l[1:].split()[0] in ("policy", "bind", "net", "vm")]
if not lines:
    sys.exit("no example command lines found in the example config")
with tempfile.NamedTemporaryFile("w", suffix=".conf") as t:
    t.write("".join(lines))
    t.flush()
    rc, out, err, ch = apply(t.name)
    if rc != 0 or not ch:
        sys.exit("example lines uncommented: exit %d, sent %r\n%s%s" % (rc, ch, out, err))
    # and back to the shipped file: everything they made is removed again
    rc, out, err, ch = apply(conf)
    if rc != 0 or f.policies or f.binds:
        sys.exit("shipped config after the examples: exit %d, left %r %r" % (rc, f.policies, f.binds))
print("%d example lines accepted" % len(lines))
f.stop = True
EOF
); then
	ok "example kvmguard.conf applies as a no-op; $out"
else
	bad "example kvmguard.conf: $out"
fi

[ "$fails" -eq 0 ] || die "packaging-check: $fails failure(s)"
echo "packaging-check: all passed"
