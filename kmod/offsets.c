// SPDX-License-Identifier: GPL-2.0
/*
 * Structure offsets and constants for hypercall_entry.S and net_entry.S,
 * turned into offsets.h at build time the way the kernel makes
 * asm-offsets.h.
 */
#include <linux/kbuild.h>
#include <linux/if_ether.h>
#include <linux/kvm_host.h>
#include <linux/skbuff.h>

#include "compat.h"
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
	DEFINE(KG_VM_CACHE_SHIFT, KVMGUARD_VM_CACHE_SHIFT);
	DEFINE(KG_VM_CACHE_SLOTS, KVMGUARD_VM_CACHE_SLOTS);
	OFFSET(KG_DEV_IFINDEX, net_device, ifindex);
	OFFSET(KG_SKB_DEV, sk_buff, dev);
	OFFSET(KG_SKB_PROTOCOL, sk_buff, protocol);
	OFFSET(KG_SKB_VLAN, sk_buff, vlan_proto);	/* and vlan_tci */
	KVMGUARD_SKB_VLAN_PRESENT_OFFSETS();
	DEFINE(KG_ETH_P_8021Q, (__force u16)htons(ETH_P_8021Q));
	DEFINE(KG_ETH_P_8021AD, (__force u16)htons(ETH_P_8021AD));
	OFFSET(KG_PORT_DEV, kvmguard_port, dev);
	OFFSET(KG_PORT_STATS, kvmguard_port, stats);
	OFFSET(KG_PORT_TO_GUEST_VLAN, kvmguard_port, to_guest_vlan);
	OFFSET(KG_PORT_FROM_GUEST_VLAN, kvmguard_port, from_guest_vlan);
	DEFINE(KG_PORT_NO_VLAN, PORT_NO_VLAN);
	DEFINE(KG_PORT_VLAN_MASK, PORT_VLAN_MASK);
	OFFSET(KG_STATS_TAGGED, port_stats, tagged);
	OFFSET(KG_STATS_DELIVERED, port_stats, delivered);
	DEFINE(KG_NET_CACHE_MASK, (1 << KVMGUARD_NET_CACHE_BITS) - 1);
	return 0;
}
