/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Differences between the kernels kvmguard supports (Debian 12's 6.1 and
 * 6.12 from bookworm-backports). Every version test lives here; the
 * KVMGUARD_HAVE_* macros come from Kbuild, which probes the kernel headers.
 */
#ifndef _KVMGUARD_COMPAT_H
#define _KVMGUARD_COMPAT_H

/*
 * 6.10 split the decoded part of KVM's hypercall handling out into the
 * exported __kvm_emulate_hypercall(vcpu, nr, a0, a1, a2, a3, op_64_bit,
 * cpl): the hook goes there, after KVM's own Xen and Hyper-V dispatch.
 * Before, it goes to kvm_emulate_hypercall(vcpu) and decodes by itself.
 */
#ifdef KVMGUARD_HAVE_INNER_HYPERCALL
#define KVMGUARD_HC_INNER 1
#endif

/*
 * Up to 6.1 a bit of struct sk_buff says whether the frame has a tag in
 * its metadata (vlan_proto and vlan_tci may hold a stale one without it);
 * 6.2 dropped the bit, and zeroes the two instead.
 */
#ifdef KVMGUARD_HAVE_SKB_VLAN_PRESENT
#define KVMGUARD_SKB_VLAN_PRESENT_BIT 1
#endif

#ifdef __ASSEMBLY__

/* Return-stack accounting for direct-call trampolines (6.2+). */
#ifdef CONFIG_MITIGATION_CALL_DEPTH_TRACKING
#define KVMGUARD_CALL_DEPTH_ACCOUNT CALL_DEPTH_ACCOUNT
#else
#define KVMGUARD_CALL_DEPTH_ACCOUNT
#endif

#else /* !__ASSEMBLY__ */

#include <linux/fs.h>
#include <linux/ftrace.h>
#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/netlink.h>
#include <linux/ptrace.h>
#include <linux/rtnetlink.h>
#include <linux/skbuff.h>
#include <linux/userfaultfd_k.h>
#include <net/sch_generic.h>

/* 6.8 renamed the address-space count and made it a per-VM property. */
#ifdef KVM_MAX_NR_ADDRESS_SPACES
#define kvmguard_nr_as_ids(kvm)	kvm_arch_nr_memslot_as_ids(kvm)
#else
#define kvmguard_nr_as_ids(kvm)	KVM_ADDRESS_SPACE_NUM
#endif

/* 6.12 made struct ftrace_regs opaque; on x86 it holds a struct pt_regs. */
#ifdef arch_ftrace_regs
#define kvmguard_ftrace_regs(fregs)	(&arch_ftrace_regs(fregs)->regs)
#else
#define kvmguard_ftrace_regs(fregs)	(&(fregs)->regs)
#endif

/*
 * 6.5 renamed the ftrace_ops flavour of the direct-call API. @ops already
 * has its filter; on error the caller frees it.
 */
static inline int kvmguard_direct_attach(struct ftrace_ops *ops, void *entry)
{
#ifdef KVMGUARD_HAVE_FTRACE_DIRECT_MULTI
	return register_ftrace_direct_multi(ops, (unsigned long)entry);
#else
	return register_ftrace_direct(ops, (unsigned long)entry);
#endif
}

static inline void kvmguard_direct_detach(struct ftrace_ops *ops, void *entry)
{
#ifdef KVMGUARD_HAVE_FTRACE_DIRECT_MULTI
	unregister_ftrace_direct_multi(ops, (unsigned long)entry);
	ftrace_free_filter(ops);
#else
	unregister_ftrace_direct(ops, (unsigned long)entry, true);
#endif
}

/*
 * 6.8 added KVM_SET_USER_MEMORY_REGION2: __kvm_set_memory_region() takes
 * the longer struct (same leading fields) for both ioctls since.
 */
#ifdef KVMGUARD_HAVE_MEMORY_REGION2
#define kvmguard_memory_region	kvm_userspace_memory_region2
#else
#define kvmguard_memory_region	kvm_userspace_memory_region
#endif

/* 6.4 added prctl(PR_SET_MEMORY_MERGE): KSM for all of a process. */
#ifdef KVMGUARD_HAVE_KSM_MERGE_ANY
#define KVMGUARD_KSM_MERGE_ANY_SYMBOL	"ksm_enable_merge_any"

static inline bool kvmguard_mm_merge_any(struct mm_struct *mm)
{
	return test_bit(MMF_VM_MERGE_ANY, &mm->flags);
}
#else
#define KVMGUARD_KSM_MERGE_ANY_SYMBOL	NULL

static inline bool kvmguard_mm_merge_any(struct mm_struct *mm)
{
	return false;
}
#endif

/*
 * mremap() growing a mapping in place. Up to 6.6 it goes through
 * vma_merge(mm, prev, addr, end, vm_flags, anon_vma, file, ...) with
 * prev the mapping and [addr, end) free; vma_merge() is called the same
 * way by mmap_region() and copy_vma() (checked themselves) and, over
 * ranges already mapped, by mprotect() and the like, which are not an
 * extension. 6.7 gave it vma_merge_extend(vmi, vma, delta) of its own.
 * Tells the mapping @vma that grows over [@start, @end).
 */
#ifndef KVMGUARD_HAVE_VMA_MERGE
#define KVMGUARD_VMA_EXTEND_SYMBOL	"vma_merge_extend"
#define KVMGUARD_VMA_ADJUST_SYMBOL	NULL

static inline bool kvmguard_vma_extension(struct pt_regs *regs,
					  struct vm_area_struct **vma,
					  unsigned long *start,
					  unsigned long *end)
{
	*vma = (void *)regs_get_kernel_argument(regs, 1);
	*start = (*vma)->vm_end;
	*end = *start + regs_get_kernel_argument(regs, 2);
	return true;
}

static inline bool kvmguard_vma_adjust_growth(struct pt_regs *regs,
					      struct vm_area_struct **vma,
					      unsigned long *start,
					      unsigned long *end)
{
	return false;
}
#else
#define KVMGUARD_VMA_EXTEND_SYMBOL	"vma_merge"

static inline bool kvmguard_vma_extension(struct pt_regs *regs,
					  struct vm_area_struct **vma,
					  unsigned long *start,
					  unsigned long *end)
{
	struct vm_area_struct *prev = (void *)regs_get_kernel_argument(regs, 1);
	unsigned long vm_flags = regs_get_kernel_argument(regs, 4);
	/* The seventh argument, above the return address. */
	struct file *file = (void *)regs_get_kernel_stack_nth(regs, 1);

	*vma = prev;
	*start = regs_get_kernel_argument(regs, 2);
	*end = regs_get_kernel_argument(regs, 3);
	return prev && *start == prev->vm_end && file == prev->vm_file &&
	       !((vm_flags ^ prev->vm_flags) & ~VM_SOFTDIRTY) &&
	       !find_vma_intersection(prev->vm_mm, *start, *end);
}

/*
 * A mapping whose vm_ops has a close() (SysV shm) cannot be merged, so
 * mremap() grows it with __vma_adjust(vma, start, end, pgoff, NULL, NULL)
 * instead; every other caller passes an insert or expand, or does not
 * grow the mapping over free address space.
 */
#define KVMGUARD_VMA_ADJUST_SYMBOL	"__vma_adjust"

static inline bool kvmguard_vma_adjust_growth(struct pt_regs *regs,
					      struct vm_area_struct **vma,
					      unsigned long *start,
					      unsigned long *end)
{
	*vma = (void *)regs_get_kernel_argument(regs, 0);
	*start = (*vma)->vm_end;
	*end = regs_get_kernel_argument(regs, 2);
	return !regs_get_kernel_argument(regs, 4) &&
	       !regs_get_kernel_argument(regs, 5) &&
	       regs_get_kernel_argument(regs, 1) == (*vma)->vm_start &&
	       *end > *start &&
	       !find_vma_intersection((*vma)->vm_mm, *start, *end);
}
#endif

/* For offsets.c: where that bit is. */
#ifdef KVMGUARD_SKB_VLAN_PRESENT_BIT
#define KVMGUARD_SKB_VLAN_PRESENT_OFFSETS() do {			\
	DEFINE(KG_SKB_VLAN_PRESENT, PKT_VLAN_PRESENT_OFFSET);		\
	DEFINE(KG_SKB_VLAN_PRESENT_BIT, 1 << PKT_VLAN_PRESENT_BIT);	\
} while (0)
#else
#define KVMGUARD_SKB_VLAN_PRESENT_OFFSETS() do { } while (0)
#endif

/*
 * The task that owns @mm (for a VM's mm: its creator, or another thread of
 * it), where the kernel keeps track (memory cgroups); NULL if not or none.
 * Caller holds rcu_read_lock().
 */
static inline struct task_struct *kvmguard_mm_owner(struct mm_struct *mm)
{
#ifdef CONFIG_MEMCG
	return rcu_dereference(mm->owner);
#else
	return NULL;
#endif
}

/* Is KVM's Xen emulation built (6.12: yes; Debian's 6.1: no)? */
#ifdef CONFIG_KVM_XEN
#define KVMGUARD_KVM_XEN	1
#else
#define KVMGUARD_KVM_XEN	0
#endif

/* Does KVM route this VM's hypercalls to its Xen emulation? */
static inline bool kvmguard_xen_hypercalls(struct kvm *kvm)
{
#ifdef CONFIG_KVM_XEN
	return READ_ONCE(kvm->arch.xen_hvm_config.flags) &
	       KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL;
#else
	return false;
#endif
}

/* Has the VMM turned KVM's Xen emulation on for this VM? */
static inline bool kvmguard_xen_mode(struct kvm *kvm)
{
#ifdef CONFIG_KVM_XEN
	return READ_ONCE(kvm->arch.xen_hvm_config.flags) ||
	       READ_ONCE(kvm->arch.xen_hvm_config.msr);
#else
	return false;
#endif
}

/* 6.10+ hides the Hyper-V state behind CONFIG_KVM_HYPERV. */
static inline bool kvmguard_hv_hypercalls(struct kvm_vcpu *vcpu)
{
#if defined(CONFIG_KVM_HYPERV) || !defined(KVMGUARD_HC_INNER)
	return READ_ONCE(vcpu->arch.hyperv_enabled) &&
	       READ_ONCE(vcpu->kvm->arch.hyperv.hv_guest_os_id);
#else
	return false;
#endif
}

/*
 * Dirty tracking outside KVM (memory_dirty.c): the functions that set it,
 * hooked by name; NULL where the kernel has no such function. The
 * userfaultfd core takes the context since 6.8 (its struct public since),
 * the mm before; its fills take their write-protect flag as the last
 * argument (6.1: mcopy_atomic(mm, dst, src, len, mmap_changing, mode);
 * 6.12: mfill_atomic_copy(ctx, dst, src, len, flags)).
 */
#ifdef CONFIG_MEM_SOFT_DIRTY
#define KVMGUARD_CLEAR_REFS_FN		"clear_refs_write"
#else
#define KVMGUARD_CLEAR_REFS_FN		NULL
#endif

#if defined(CONFIG_USERFAULTFD) && defined(CONFIG_HAVE_ARCH_USERFAULTFD_WP)
#define KVMGUARD_UFFD_WP_FN		"mwriteprotect_range"
#ifdef KVMGUARD_HAVE_UFFD_CTX
#define KVMGUARD_UFFD_COPY_FN		"mfill_atomic_copy"
#define KVMGUARD_UFFD_COPY_FLAGS	4
#define KVMGUARD_UFFD_FILL_WP		((__force unsigned long)MFILL_ATOMIC_WP)
#define KVMGUARD_UFFD_CONTINUE_FN	"mfill_atomic_continue"
#define KVMGUARD_UFFD_REGISTER_FN	"userfaultfd_register_range"
#define kvmguard_uffd_mm(ctx)	(((struct userfaultfd_ctx *)(ctx))->mm)
#else
#define KVMGUARD_UFFD_COPY_FN		"mcopy_atomic"
#define KVMGUARD_UFFD_COPY_FLAGS	5
#define KVMGUARD_UFFD_FILL_WP		UFFDIO_COPY_MODE_WP
#define KVMGUARD_UFFD_CONTINUE_FN	NULL	/* no write-protected mode */
#define KVMGUARD_UFFD_REGISTER_FN	NULL	/* inlined in the ioctl */
#define kvmguard_uffd_mm(mm)	((struct mm_struct *)(mm))
#endif
#else
#define KVMGUARD_UFFD_WP_FN		NULL
#define KVMGUARD_UFFD_COPY_FN		NULL
#define KVMGUARD_UFFD_COPY_FLAGS	0
#define KVMGUARD_UFFD_FILL_WP		0
#define KVMGUARD_UFFD_CONTINUE_FN	NULL
#define KVMGUARD_UFFD_REGISTER_FN	NULL
#define kvmguard_uffd_mm(mm)	((struct mm_struct *)(mm))
#endif

/* 6.7 added PAGEMAP_SCAN, which can write-protect as it scans. */
#if defined(PAGEMAP_SCAN) && defined(CONFIG_USERFAULTFD)
#define KVMGUARD_PAGEMAP_SCAN_FN	"do_pagemap_cmd"
#define KVMGUARD_PAGEMAP_SCAN		PAGEMAP_SCAN
#else
#define KVMGUARD_PAGEMAP_SCAN_FN	NULL
#define KVMGUARD_PAGEMAP_SCAN		0
#endif

/*
 * 6.6+ attaches tc BPF programs without a qdisc (tcx): where, for
 * net_bypass.c. Both functions take rtnl after they found the device.
 */
#ifdef CONFIG_NET_XGRESS
#define KVMGUARD_TCX_PROG_ATTACH	"tcx_prog_attach"
#define KVMGUARD_TCX_LINK_ATTACH	"tcx_link_attach"
#else
#define KVMGUARD_TCX_PROG_ATTACH	NULL
#define KVMGUARD_TCX_LINK_ATTACH	NULL
#endif

/*
 * Can tc filters or programs run on @dev's frames (net_bypass.c)? 6.6+
 * (CONFIG_NET_XGRESS) keeps an entry per direction for a clsact or
 * ingress qdisc and tcx programs alike; before, a clsact or ingress
 * qdisc is the ingress queue's. Under rtnl.
 */
static inline bool kvmguard_dev_has_tc(struct net_device *dev)
{
#ifdef CONFIG_NET_XGRESS
	return rtnl_dereference(dev->tcx_ingress) ||
	       rtnl_dereference(dev->tcx_egress);
#else
	struct netdev_queue *q = dev_ingress_queue(dev);

	return q && rtnl_dereference(q->qdisc_sleeping) != &noop_qdisc;
#endif
}

/*
 * 6.2 added formatted extack messages, kept in the extack itself
 * (NL_SET_ERR_MSG_FMT). Before, the message must outlive the request
 * handler: it is copied to @keep (@size bytes), which the caller keeps
 * until the ack is sent.
 */
static inline void kvmguard_extack_msg(struct netlink_ext_ack *extack,
				       const char *msg, char *keep,
				       size_t size)
{
#ifdef NL_SET_ERR_MSG_FMT
	NL_SET_ERR_MSG_FMT(extack, "%s", msg);
#else
	strscpy(keep, msg, size);
	if (extack)
		extack->_msg = keep;
#endif
}

#endif /* __ASSEMBLY__ */
#endif /* _KVMGUARD_COMPAT_H */
