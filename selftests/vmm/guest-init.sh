#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# /init of the vmm lane's inner guest (busybox sh in a Linux guest that Debian's
# QEMU runs inside the test host).  Loads virtio_net, virtio_pci and 8021q, prints
#   VMMGUEST READY cpus=N
# on the serial console and then runs, one line at a time, the shell commands the
# test host writes to that console (selftests/vmm/run.sh: each command prints its
# own markers).  Nothing here decides a verdict: the host does.
/bin/busybox --install -s
export PATH=/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# kgnomod=1 on the kernel command line (an SMP guest that needs no network):
# no modules.
[ -n "${kgnomod:-}" ] || while read -r ko; do
	insmod "$ko" 2>/dev/null
done </etc/modules.list
ip link set lo up
# The host's commands must not come back as echo.
stty -echo 2>/dev/null </dev/ttyS0
exec </dev/ttyS0 >/dev/ttyS0 2>&1
dmesg -n 1
echo "VMMGUEST READY cpus=$(grep -c '^processor' /proc/cpuinfo)"
# Each line in a subshell: a syntax error must not end init.
while IFS= read -r line; do
	(eval "$line")
done
echo "VMMGUEST EOF"
poweroff -f
