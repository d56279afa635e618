/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Differences between the kernels kvmguard supports (Debian 12's 6.1 and
 * 6.12 from bookworm-backports). Every version test lives here.
 */
#ifndef _KVMGUARD_COMPAT_H
#define _KVMGUARD_COMPAT_H

#include <linux/kvm_host.h>

/* 6.8 renamed the address-space count and made it a per-VM property. */
#ifdef KVM_MAX_NR_ADDRESS_SPACES
#define kvmguard_nr_as_ids(kvm)	kvm_arch_nr_memslot_as_ids(kvm)
#else
#define kvmguard_nr_as_ids(kvm)	KVM_ADDRESS_SPACE_NUM
#endif

#endif /* _KVMGUARD_COMPAT_H */
