#!/usr/bin/env bash
# Boot a lane's kernel with an initramfs in QEMU (TCG, -cpu max emulates AMD SVM so
# kvm_amd works in the guest).  The serial console goes to stdout and to the log.
#   usage: scripts/boot.sh <lane> <initramfs> <logfile>
# Env: KVMGUARD_BOOT_TIMEOUT (seconds, default 1200), KVMGUARD_QEMU_EXTRA (more args),
#      KVMGUARD_INTERACTIVE=1 (make shell): the console is this terminal (Ctrl-A X
#      quits), no timeout and no log;
#      KVMGUARD_SMP (default 2), KVMGUARD_MEM (default 3G),
#      KVMGUARD_KERNEL_LOG=<file>: the kernel's own console goes to a second serial
#      port written to <file>, at full verbosity (guest-init.sh then writes to ttyS0),
#      so the kernel log survives a hung guest and never mixes with the TAP output.
# Exit status: QEMU's; 124 when the guest hung and was killed.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

lane=${1:?usage: boot.sh <lane> <initramfs> <logfile>}
initrd=${2:?initramfs}
log=${3:?logfile}
load_lane_env "$lane"
mkdir -p "$(dirname "$log")"

# panic=-1 reboots at once on a panic and -no-reboot turns that into a QEMU exit; no
# panic_on_oops, so an oops is printed and reported instead of hiding the rest.
append="panic=-1 kvm_amd.nested=1 ${KVMGUARD_APPEND:-}"
# shellcheck disable=SC2206 # extra QEMU args are split on purpose
extra=(${KVMGUARD_QEMU_EXTRA:-})
if [ -n "${KVMGUARD_KERNEL_LOG:-}" ]; then
	: >"$KVMGUARD_KERNEL_LOG"
	extra+=(-serial "file:$KVMGUARD_KERNEL_LOG")
	append="console=ttyS1 loglevel=7 $append"
else
	append="console=ttyS0 quiet loglevel=4 $append"
fi

# One TCG thread for all vCPUs: with one thread per vCPU, QEMU does not always
# make a code patch by one vCPU visible to another by the time the kernel's
# text_poke_bp() has synchronised them, and the guest kernel dies on a stale
# int3 ("Oops: int3" in patched code: static keys at boot, ftrace sites such as
# __kvm_emulate_hypercall+0x4 on 6.12). Guest-side concurrency is unchanged.
# The console is the first serial port (ttyS0): before any -serial in extra.
console=stdio
[ -z "${KVMGUARD_INTERACTIVE:-}" ] || console=mon:stdio
qemu=(qemu-system-x86_64 -machine q35 -accel "tcg,thread=single" -cpu max
	-smp "${KVMGUARD_SMP:-2}" -m "${KVMGUARD_MEM:-3G}"
	-display none -monitor none -serial "$console" -nic none -no-reboot
	-kernel "$VMLINUZ" -initrd "$initrd" -append "$append" "${extra[@]}")
[ -z "${KVMGUARD_INTERACTIVE:-}" ] || exec "${qemu[@]}"
set +e
# stdin from /dev/null: CI has none, and a tty would be put in raw mode.
timeout --kill-after=10 "${KVMGUARD_BOOT_TIMEOUT:-1200}" "${qemu[@]}" \
	</dev/null 2>&1 | tr -d '\r' | tee "$log"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 124 ] && msg "boot.sh: lane $lane timed out after ${KVMGUARD_BOOT_TIMEOUT:-1200}s, guest killed"
exit "$rc"
