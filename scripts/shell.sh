#!/usr/bin/env bash
# make shell: an interactive root shell in the 6.1 test host (QEMU, TCG), with
# kvmguard loaded, the CLI, the example /etc/kvmguard.conf, scripts/demo.policy
# and /kvmguard/selftests/kvm_guest to start KVM guests: the README's tour runs
# there.  `exit` powers the test host off; Ctrl-A X kills QEMU.
# Builds what it needs first, like make demo (scripts/deps.sh installs missing
# packages).  The serial console is this terminal, nothing is logged.
#   Env: KVMGUARD_SHELL_LANE (default 6.1; 6.12 and debug work too).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$TOP"
lane=${KVMGUARD_SHELL_LANE:-6.1}

scripts/deps.sh
scripts/kernels.sh "$lane" >/dev/null
load_lane_env "$lane"
make --no-print-directory -s modules KDIR="$KDIR" MODBUILD="$CACHE/build/$lane" >/dev/null
make --no-print-directory -s userspace selftests >/dev/null
# The demo image (module, CLI, selftests, demo.policy), plus an archive appended to
# it: /kvmguard/demo.sh, which /init runs, becomes the shell.
demo=$(scripts/mkinitramfs.sh "$lane" demo)
work="$CACHE/initramfs/$lane-shell.root"
img="$CACHE/initramfs/$lane-shell.cpio.gz"
rm -rf "$work"
mkdir -p "$work/kvmguard" "$work/etc"
cp etc/kvmguard.conf "$work/etc/kvmguard.conf"
cat >"$work/kvmguard/demo.sh" <<EOF
#!/bin/sh
# make shell, inside the test host: load kvmguard, then a login shell on the console.
insmod /kvmguard/kvmguard.ko || echo "insmod kvmguard failed"
cat <<'BANNER'

kvmguard test host: Debian kernel $KVER, QEMU TCG with nested SVM, kvmguard loaded.
  kvmguard --version; kvmguard vm list; kvmguard -v apply /kvmguard/demo.policy
  /kvmguard/selftests/kvm_guest -v 2 -s 600 &      # a KVM guest, 2 vCPUs, 600 s
  # a guest the way libvirt starts one, in machine.slice:
  mkdir -p /sys/fs/cgroup/machine.slice/machine-qemu-1-demo.scope
  sh -c 'echo \$\$ >/sys/fs/cgroup/machine.slice/machine-qemu-1-demo.scope/cgroup.procs &&
      exec /kvmguard/selftests/kvm_guest -v 1 -s 600' &
  /usr/sbin/ip tuntap add dev vnet-web mode tap     # a port to "net bind"
  kvmguard monitor &                                # violations as they happen
/etc/kvmguard.conf is the shipped example. exit powers off; Ctrl-A X kills QEMU.
BANNER
cd /root
HOME=/root PS1='kvmguard-test:\w# ' setsid cttyhack sh -l
EOF
chmod 755 "$work/kvmguard/demo.sh"
{
	cat "$demo"
	(cd "$work" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet | gzip -1)
} >"$img.tmp"
mv "$img.tmp" "$img"
echo "booting the $lane test host (Ctrl-A X kills it)..." >&2
KVMGUARD_INTERACTIVE=1 exec scripts/boot.sh "$lane" "$img" /dev/null
