// SPDX-License-Identifier: GPL-2.0
/*
 * Structure offsets and constants for hypercall_entry.S and net_entry.S,
 * turned into offsets.h at build time the way the kernel makes
 * asm-offsets.h.
 */
#include <linux/kbuild.h>
#include <linux/hash.h>
#include <linux/kvm_host.h>
#include <linux/skbuff.h>

#include "kvmguard.h"
#include "net.h"

int main(void);

int main(void)
{
	OFFSET(KG_VCPU_KVM, kvm_vcpu, kvm);
	OFFSET(KG_VCPU_RAX, kvm_vcpu, arch.regs[VCPU_REGS_RAX]);
	OFFSET(KG_VCPU_HYPERV_ENABLED, kvm_vcpu, arch.hyperv_enabled);
	OFFSET(KG_VM_KVM, kvmguard_vm, kvm);
	OFFSET(KG_VM_HC_ALLOW, kvmguard_vm, hc_allow);
	OFFSET(KG_VM_HC_COUNTS, kvmguard_vm, hc_counts);
	DEFINE(KG_HC_CACHE_SHIFT, KVMGUARD_HC_CACHE_SHIFT);
	DEFINE(KG_HC_CACHE_SLOTS, KVMGUARD_HC_CACHE_SLOTS);
	OFFSET(KG_SKB_DEV, sk_buff, dev);
	OFFSET(KG_PORT_DEV, kvmguard_port, dev);
	DEFINE(KG_NET_CACHE_BITS, KVMGUARD_NET_CACHE_BITS);
	DEFINE(KG_GOLDEN_RATIO_64, GOLDEN_RATIO_64);
	return 0;
}
