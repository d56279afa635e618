#!/bin/sh
# make bench, inside the test host (booted with -smp 1 -icount shift=0,sleep=off, so
# a nanosecond is one instruction): the cost of a KVM hypercall round trip (nr 1,
# vapic_poll_irq) without kvmguard, with kvmguard loaded and no policy restricting
# hypercalls, and under scripts/bench.policy, which restricts hypercalls to nr 1.
# Prints "BENCH <state>: <hcbench output>" lines for scripts/bench.sh.
N=20000
bench() {
	out=$(/kvmguard/hcbench -n "$N" -r 1 -k 3) || out="failed"
	echo "BENCH $1: ${out#hcbench: }"
}

bench baseline
insmod /kvmguard/kvmguard.ko || { echo "BENCH loaded: insmod failed"; exit 0; }
bench loaded
if kvmguard apply /kvmguard/bench.policy; then
	bench restricted
	kvmguard policy show
else
	echo "BENCH restricted: kvmguard apply /kvmguard/bench.policy failed"
fi
rmmod kvmguard
