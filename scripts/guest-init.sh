#!/bin/sh
# /init of the kvmguard test host (busybox sh inside the QEMU guest).
# /etc/kvmguard-host sets MODE (test|demo|smoke) and LANE.  Everything the host
# checks itself is printed as "host: ok|not ok <what>"; scripts/check.sh turns those
# and the suite's TAP lines into results.  Markers delimit the suite and dmesg.
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
. /etc/kvmguard-host

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
# Keep kernel messages off the console so they do not interleave with TAP;
# the whole log is printed after the suite.
dmesg -n 1
hostname kvmguard-test
ip link set lo up 2>/dev/null

host_result() { # <0|1> <what>
	if [ "$1" -eq 0 ]; then echo "host: ok $2"; else echo "host: not ok $2"; fi
}

rc=0
while read -r ko args; do
	# shellcheck disable=SC2086 # args are module parameters, split on purpose
	insmod "$ko" $args || { echo "# insmod $ko failed"; rc=1; }
done </etc/modules.list
host_result "$rc" "$LANE: load KVM and network modules"

rc=0
[ -c /dev/kvm ] || rc=1
[ "$rc" -eq 0 ] || echo "# /dev/kvm missing: kvm_amd did not load (QEMU needs -cpu max with SVM)"
host_result "$rc" "$LANE: /dev/kvm present"

echo "KVMGUARD-SUITE-BEGIN"
case "$MODE" in
smoke)
	ls -l /dev/kvm
	cat /sys/module/kvm_amd/parameters/nested 2>/dev/null
	;;
test)
	KVMGUARD_KO=/kvmguard/kvmguard.ko KVMGUARD_CLI=/usr/sbin/kvmguard \
		/kvmguard/selftests/run_tests.sh
	echo "# run_tests.sh exit $?"
	;;
demo)
	/kvmguard/demo.sh
	;;
esac
echo "KVMGUARD-SUITE-END"

if [ "$MODE" != smoke ]; then
	rc=0
	if grep -q '^kvmguard ' /proc/modules; then
		rmmod kvmguard || rc=1
	fi
	host_result "$rc" "$LANE: kvmguard unloads after the suite"
fi

# kmemleak (debug kernel): objects younger than 5 s are not reported, so scan twice.
if [ -w /sys/kernel/debug/kmemleak ]; then
	echo scan >/sys/kernel/debug/kmemleak
	sleep 6
	echo scan >/sys/kernel/debug/kmemleak
	echo "KVMGUARD-KMEMLEAK-BEGIN"
	cat /sys/kernel/debug/kmemleak
	echo "KVMGUARD-KMEMLEAK-END"
fi

echo "KVMGUARD-DMESG-BEGIN"
dmesg
echo "KVMGUARD-DMESG-END"
poweroff -f
