#!/usr/bin/env bash
# make demo: boot the 6.1 test host and run scripts/demo-guest.sh in it (kvmguard
# loaded, small KVM guests, the CLI listing VMs and applying scripts/demo.policy).
# Prints the demo's output; the whole console is kept in .cache/log/demo.log.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$TOP"
lane=6.1

scripts/deps.sh
scripts/kernels.sh "$lane" >/dev/null
load_lane_env "$lane"
make --no-print-directory -s modules KDIR="$KDIR" MODBUILD="$CACHE/build/$lane" >/dev/null
make --no-print-directory -s userspace selftests >/dev/null
initrd=$(scripts/mkinitramfs.sh "$lane" demo)
echo "booting the $lane test host (about 10 s under QEMU TCG)..."
# Show only what the demo prints (between the suite markers), not the boot.
KVMGUARD_BOOT_TIMEOUT=${KVMGUARD_BOOT_TIMEOUT:-300} \
	scripts/boot.sh "$lane" "$initrd" "$CACHE/log/demo.log" |
	sed -n '/^KVMGUARD-SUITE-BEGIN/,/^KVMGUARD-SUITE-END/{/^KVMGUARD-SUITE/d;p}'
grep -q '^KVMGUARD-SUITE-END' "$CACHE/log/demo.log" ||
	die "the demo did not finish; see $CACHE/log/demo.log"
