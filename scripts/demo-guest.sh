#!/bin/sh
# make demo, inside the test host (/kvmguard/demo.sh, run by /init): load kvmguard,
# start small KVM guests and show what the CLI sees.  Each command is echoed first.
run() {
	echo
	echo "# kvmguard $*"
	kvmguard "$@" || echo "(exit status $?)"
}
last_vm() { kvmguard vm list | awk '$1 ~ /^[0-9]+$/ { id = $1 } END { print id }'; }

echo "# insmod /kvmguard/kvmguard.ko"
insmod /kvmguard/kvmguard.ko || exit 1

# A guest started before any policy exists: it gets no policy.
/kvmguard/selftests/kvm_guest -v 2 -s 60 >/dev/null &
guest1=$!
sleep 2
run vm list
run apply /kvmguard/demo.policy
run policy show
run bind show

# A guest started the way libvirt does it, inside machine.slice: bound to "web".
mkdir -p /sys/fs/cgroup/machine.slice/machine-qemu-1-demo.scope
sh -c 'echo $$ >/sys/fs/cgroup/machine.slice/machine-qemu-1-demo.scope/cgroup.procs &&
	exec /kvmguard/selftests/kvm_guest -v 1 -s 60 >/dev/null' &
guest2=$!
sleep 2
run vm list
id=$(last_vm)
# Its network port: a tap a VMM doing virtio-net in userspace would use (one
# attached as a vhost-net backend is bound by itself).
/usr/sbin/ip tuntap add dev vnet-web mode tap && /usr/sbin/ip link set vnet-web up
[ -z "$id" ] || run net bind "$id" dev vnet-web
[ -z "$id" ] || run vm show "$id"
run policy show
run -j vm list

kill "$guest1" "$guest2" 2>/dev/null
wait
echo
echo "# rmmod kvmguard"
rmmod kvmguard
