/* SPDX-License-Identifier: GPL-2.0 */
/*
 * memg: helpers for the memory-rule selftests (mem_*): policies with memory
 * rules, VMs with memslots on chosen backings, MEMORY events, the KSM and
 * hugetlb knobs of the test host, child processes talked to over pipes.
 */
#ifndef KVMGUARD_SELFTEST_MEMG_H
#define KVMGUARD_SELFTEST_MEMG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/kvm.h>
#include <linux/kvmguard.h>

#include "gnl.h"
#include "kg.h"
#include "vm.h"

#define MEMG_PAGE	4096ull
#define MEMG_KIB	1024ull
#define MEMG_MIB	(1ull << 20)
#define MEMG_GIB	(1ull << 30)
#define MEMG_HUGE	(2ull << 20)	/* the x86 huge page hugetlbfs gives */

/* Slot number as KVM takes it: address space in bits 16-31. */
#define MEMG_SLOT(as, id)	(((uint32_t)(as) << 16) | (id))

/* One rule of a policy request; u8 or u64 by attribute. */
struct memg_rule {
	uint16_t type;
	uint64_t value;
};

#define MEMG_MODE(m)	{ KVMGUARD_A_POLICY_MODE, (m) }
#define MEMG_MAX(n)	{ KVMGUARD_A_POLICY_MEM_MAX, (n) }
#define MEMG_DIRTY(n)	{ KVMGUARD_A_POLICY_MEM_DIRTY_MAX, (n) }
#define MEMG_SHARED(s)	{ KVMGUARD_A_POLICY_MEM_SHARED, (s) }
#define MEMG_KSM(k)	{ KVMGUARD_A_POLICY_MEM_KSM, (k) }

/*
 * POLICY_NEW or POLICY_SET of @name with @domain (NULL: not sent) and
 * @rules, a list ended by type 0. 0 or -errno.
 */
int memg_policy(struct gnl *g, uint8_t cmd, const char *name, const char *domain,
		const struct memg_rule *rules);
#define memg_new(g, name, domain, ...)					\
	memg_policy(g, KVMGUARD_CMD_POLICY_NEW, name, domain,		\
		    (const struct memg_rule[]){ __VA_ARGS__, { 0, 0 } })
#define memg_set(g, name, ...)						\
	memg_policy(g, KVMGUARD_CMD_POLICY_SET, name, NULL,		\
		    (const struct memg_rule[]){ __VA_ARGS__, { 0, 0 } })

/*
 * Create a VM in this process (no memslot, no vCPU), find its id and, if
 * @policy is not NULL, VM_SET it. 0 or -errno.
 */
int memg_vm(struct gnl *g, struct vm *vm, const char *policy, uint64_t *id);
/* VM_GET of @id, -EBADMSG unless every field of KG_VM_REQUIRED is there. */
int memg_vm_get(struct gnl *g, uint64_t id, struct kg_vm *v);

/* KVM_CAP_MULTI_ADDRESS_SPACE (1 without it). */
int memg_nr_as(struct vm *vm);
/* KVM has KVM_SET_USER_MEMORY_REGION2 (6.8+). */
bool memg_has_region2(struct vm *vm);
/* vm_region() through KVM_SET_USER_MEMORY_REGION2. */
int memg_region2(struct vm *vm, uint32_t slot, uint32_t flags, uint64_t gpa,
		 uint64_t size, const void *hva);
/* KVM_GET_DIRTY_LOG of @slot (@size bytes): 0 or -errno. */
int memg_dirty_log(struct vm *vm, uint32_t slot, uint64_t size);

/* mmap helpers: NULL on failure. */
void *memg_anon(size_t size);		/* MAP_PRIVATE | MAP_ANONYMOUS, rw */
void *memg_reserve(size_t size);	/* PROT_NONE address space only */
void *memg_map_fd(int fd, size_t size, int flags, off_t off);
/* memfd of @size bytes (@flags: MFD_*); -errno. */
int memg_memfd(size_t size, unsigned int flags);
/* Is the VMA at @addr of @pid (0: self) VM_MERGEABLE ("mg" in smaps)? 1/0/-errno. */
int memg_vma_mergeable(pid_t pid, const void *addr);

/*
 * Collect MEMORY events of @vm_id (0: any) from @sub (subscribed with
 * hcg_subscribe) for at most @ms milliseconds, returning early once
 * @want (> 0) are stored. Returns how many were stored (at most @max).
 */
int memg_events(struct gnl *sub, uint64_t vm_id, int want, int ms,
		struct kg_event *ev, int max);
/* Drop whatever is queued on @sub. */
void memg_drain(struct gnl *sub);

/* Read/write an unsigned number in a sysfs/procfs file; 0 or -errno. */
int memg_get_ulong(const char *path, unsigned long *v);
int memg_put_ulong(const char *path, unsigned long v);
/* /proc/@pid/ksm_merging_pages, or -errno. */
long memg_ksm_merging(pid_t pid);

/* hugetlbfs for a test: free 2M huge pages and a mount. */
struct memg_huge {
	char dir[64];		/* a hugetlbfs mount point */
	bool mounted;		/* by us */
	unsigned long old_nr;
	bool nr_changed;
};

/*
 * Make @pages free 2M huge pages available (raising nr_hugepages) and find
 * or mount hugetlbfs. 0, or -errno with the reason in @why.
 */
int memg_huge_get(struct memg_huge *h, unsigned long pages, char *why, size_t wsz);
/* Undo memg_huge_get (unmount, old nr_hugepages). */
void memg_huge_put(struct memg_huge *h);

/* A forked child running fn(in, out, arg); its return value is its exit code. */
struct memg_child {
	pid_t pid;
	int to;		/* write end: to the child's @in */
	int from;	/* read end: from the child's @out */
};

typedef int (*memg_child_fn)(int in, int out, void *arg);
int memg_child_start(struct memg_child *c, memg_child_fn fn, void *arg);
/* Close the pipes (the child sees EOF), reap it: its exit code or -1. */
int memg_child_end(struct memg_child *c);
/* Whole-buffer pipe I/O: 0 or -1. */
int memg_write(int fd, const void *buf, size_t len);
int memg_read(int fd, void *buf, size_t len);

#endif
