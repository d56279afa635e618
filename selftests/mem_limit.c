// SPDX-License-Identifier: GPL-2.0
/*
 * mem_limit: POLICY_MEM_MAX, the cap on the bytes a VM's user memslots map.
 * Policy messages carry every memory rule, at its default too. With a cap
 * of 0 one page is refused (EDQUOT); a VM may fill its cap exactly and not
 * one page more; deleting a memslot frees its bytes; moves and flags-only
 * changes keep the total; memslots of address space 1 (x86 SMM) count;
 * 64-bit sizes are summed without truncation; KVM_SET_USER_MEMORY_REGION2
 * is checked too (6.8+). A refusal changes nothing: KVM has no such slot
 * (deleting it gives KVM's EINVAL), VM_MEMSLOTS/VM_MEM_BYTES are unchanged,
 * and VM_MEM_LIMIT_DENIED counts every refusal exactly. Edits apply at once
 * to later changes and leave existing memslots alone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "kg.h"
#include "memg.h"
#include "vm.h"

#define P "kgml-"
#define MEM_SIZE (16 * MEMG_MIB)
#define DIRTY KVM_MEM_LOG_DIRTY_PAGES

FIXTURE(lim) {
	struct gnl g;
	struct vm vm;
	uint64_t id;
	char *mem;
};

FIXTURE_SETUP(lim)
{
	self->vm.fd = -1;
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm, NULL, &self->id));
	self->mem = memg_anon(MEM_SIZE);
	ASSERT_NE(NULL, self->mem);
}

FIXTURE_TEARDOWN(lim)
{
	if (self->vm.fd >= 0)
		vm_destroy(&self->vm);
	if (self->mem)
		munmap(self->mem, MEM_SIZE);
	kg_cleanup(&self->g, P);
	gnl_close(&self->g);
}

#define VMGET(v) ASSERT_EQ(0, memg_vm_get(&self->g, self->id, &(v)))
/* KVM_SET_USER_MEMORY_REGION of @size bytes of self->mem at @off. */
#define REGION(slot, flags, gpa, size, off) \
	vm_region(&self->vm, slot, flags, gpa, size, self->mem + (off))
/* Deleting a slot KVM does not have fails with KVM's own EINVAL. */
#define KVM_LACKS(slot) EXPECT_EQ(-EINVAL, vm_region(&self->vm, slot, 0, 0, 0, NULL))

TEST_F(lim, policy_reports_memory_rules)
{
	struct kg_policy p;
	struct kg_vm v;

	ASSERT_EQ(0, kg_policy_new(&self->g, P "def", -1, NULL));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "def", &p));
	EXPECT_EQ(KG_POLICY_MEM, p.present & KG_POLICY_MEM);
	EXPECT_EQ(KVMGUARD_MEM_UNLIMITED, p.mem_max);
	EXPECT_EQ(KVMGUARD_MEM_UNLIMITED, p.mem_dirty_max);
	EXPECT_EQ(KVMGUARD_MEM_SHARED_ALLOW, p.mem_shared);
	EXPECT_EQ(KVMGUARD_KSM_ALLOW, p.mem_ksm);

	/* POLICY_SET changes only what it names. */
	ASSERT_EQ(0, memg_set(&self->g, P "def", MEMG_MAX(12345 * MEMG_PAGE)));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "def", &p));
	EXPECT_EQ(12345 * MEMG_PAGE, p.mem_max);
	EXPECT_EQ(KVMGUARD_MEM_UNLIMITED, p.mem_dirty_max);
	EXPECT_EQ(KVMGUARD_MEM_SHARED_ALLOW, p.mem_shared);
	EXPECT_EQ(KVMGUARD_KSM_ALLOW, p.mem_ksm);
	ASSERT_EQ(0, memg_set(&self->g, P "def", MEMG_DIRTY(0),
			      MEMG_SHARED(KVMGUARD_MEM_SHARED_DOMAIN),
			      MEMG_KSM(KVMGUARD_KSM_DENY)));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "def", &p));
	EXPECT_EQ(12345 * MEMG_PAGE, p.mem_max);
	EXPECT_EQ(0ULL, p.mem_dirty_max);
	EXPECT_EQ(KVMGUARD_MEM_SHARED_DOMAIN, p.mem_shared);
	EXPECT_EQ(KVMGUARD_KSM_DENY, p.mem_ksm);
	ASSERT_EQ(0, memg_set(&self->g, P "def", MEMG_MAX(KVMGUARD_MEM_UNLIMITED)));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "def", &p));
	EXPECT_EQ(KVMGUARD_MEM_UNLIMITED, p.mem_max);

	/* A fresh VM: every memory field, all zero. */
	VMGET(v);
	EXPECT_EQ(0ULL, v.mem_bytes);
	EXPECT_EQ(0ULL, v.mem_shared_bytes);
	EXPECT_EQ(0ULL, v.mem_dirty_bytes);
	EXPECT_EQ(0ULL, v.mem_limit_denied);
	EXPECT_EQ(0ULL, v.mem_shared_denied);
	EXPECT_EQ(0ULL, v.mem_ksm_denied);
	EXPECT_EQ(0ULL, v.mem_dirty_denied);
}

TEST_F(lim, no_policy_no_limit)
{
	char *big = memg_reserve(6 * MEMG_GIB);
	struct kg_vm v;

	ASSERT_NE(NULL, big);
	ASSERT_EQ(0, vm_region(&self->vm, 0, 0, 0, 6 * MEMG_GIB, big));
	VMGET(v);
	EXPECT_EQ(6 * MEMG_GIB, v.mem_bytes);
	EXPECT_EQ(0ULL, v.mem_limit_denied);
	ASSERT_EQ(0, vm_region(&self->vm, 0, 0, 0, 0, NULL));
	munmap(big, 6 * MEMG_GIB);
}

TEST_F(lim, zero_refuses_one_page)
{
	struct kg_vm v;

	ASSERT_EQ(0, memg_new(&self->g, P "zero", NULL, MEMG_MAX(0)));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "zero"));
	EXPECT_EQ(-EDQUOT, REGION(0, 0, 0, MEMG_PAGE, 0));
	EXPECT_EQ(-EDQUOT, REGION(MEMG_SLOT(0, 7), DIRTY, 0x100000, MEMG_PAGE, 0));
	VMGET(v);
	EXPECT_EQ(0U, v.memslots);
	EXPECT_EQ(0ULL, v.mem_bytes);
	EXPECT_EQ(0ULL, v.mem_dirty_bytes);
	EXPECT_EQ(2ULL, v.mem_limit_denied);
	EXPECT_EQ(0ULL, v.mem_dirty_denied);
	KVM_LACKS(0);
	KVM_LACKS(7);

	/* Lifting the cap: the same request goes through, nothing stale. */
	ASSERT_EQ(0, memg_set(&self->g, P "zero", MEMG_MAX(KVMGUARD_MEM_UNLIMITED)));
	EXPECT_EQ(0, REGION(0, 0, 0, MEMG_PAGE, 0));
	VMGET(v);
	EXPECT_EQ(1U, v.memslots);
	EXPECT_EQ(MEMG_PAGE, v.mem_bytes);
	EXPECT_EQ(2ULL, v.mem_limit_denied);
}

TEST_F(lim, exactly_at_the_limit)
{
	struct kg_vm v;

	ASSERT_EQ(0, memg_new(&self->g, P "1m", NULL, MEMG_MAX(MEMG_MIB)));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "1m"));
	EXPECT_EQ(0, REGION(0, 0, 0, 512 * MEMG_KIB, 0));
	EXPECT_EQ(0, REGION(1, 0, 1 * MEMG_MIB, 256 * MEMG_KIB, 1 * MEMG_MIB));
	EXPECT_EQ(0, REGION(2, 0, 2 * MEMG_MIB, 256 * MEMG_KIB, 2 * MEMG_MIB));
	VMGET(v);
	EXPECT_EQ(3U, v.memslots);
	EXPECT_EQ(MEMG_MIB, v.mem_bytes);
	EXPECT_EQ(0ULL, v.mem_limit_denied);

	/* One page over. */
	EXPECT_EQ(-EDQUOT, REGION(3, 0, 3 * MEMG_MIB, MEMG_PAGE, 3 * MEMG_MIB));
	/* Bigger than the whole cap on its own. */
	EXPECT_EQ(-EDQUOT, REGION(4, 0, 4 * MEMG_MIB, 2 * MEMG_MIB, 4 * MEMG_MIB));
	VMGET(v);
	EXPECT_EQ(3U, v.memslots);
	EXPECT_EQ(MEMG_MIB, v.mem_bytes);
	EXPECT_EQ(2ULL, v.mem_limit_denied);
	KVM_LACKS(3);
	KVM_LACKS(4);

	/* A delete frees its bytes, and only those. */
	ASSERT_EQ(0, vm_region(&self->vm, 1, 0, 0, 0, NULL));
	VMGET(v);
	EXPECT_EQ(2U, v.memslots);
	EXPECT_EQ(768 * MEMG_KIB, v.mem_bytes);
	/* KVM's own refusal (overlap) within the cap is no violation. */
	EXPECT_EQ(-EEXIST, REGION(6, 0, 0, MEMG_PAGE, 6 * MEMG_MIB));
	EXPECT_EQ(-EDQUOT, REGION(3, 0, 3 * MEMG_MIB, 256 * MEMG_KIB + MEMG_PAGE, 3 * MEMG_MIB));
	EXPECT_EQ(0, REGION(3, 0, 3 * MEMG_MIB, 256 * MEMG_KIB, 3 * MEMG_MIB));
	EXPECT_EQ(-EDQUOT, REGION(5, 0, 5 * MEMG_MIB, MEMG_PAGE, 5 * MEMG_MIB));
	VMGET(v);
	EXPECT_EQ(3U, v.memslots);
	EXPECT_EQ(MEMG_MIB, v.mem_bytes);
	EXPECT_EQ(4ULL, v.mem_limit_denied);
	KVM_LACKS(5);
	KVM_LACKS(6);
}

TEST_F(lim, move_and_flags_keep_accounting)
{
	struct kg_vm v;

	ASSERT_EQ(0, memg_new(&self->g, P "mv", NULL, MEMG_MAX(MEMG_MIB)));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "mv"));
	ASSERT_EQ(0, REGION(0, 0, 0, 512 * MEMG_KIB, 0));
	ASSERT_EQ(0, REGION(1, 0, MEMG_MIB, 512 * MEMG_KIB, MEMG_MIB));

	/* Move slot 1 (same size and address, new GPA) at a full cap. */
	EXPECT_EQ(0, REGION(1, 0, 8 * MEMG_MIB, 512 * MEMG_KIB, MEMG_MIB));
	VMGET(v);
	EXPECT_EQ(2U, v.memslots);
	EXPECT_EQ(MEMG_MIB, v.mem_bytes);
	/* KVM moved it: its old place is free, its new one taken. */
	ASSERT_EQ(0, memg_set(&self->g, P "mv", MEMG_MAX(2 * MEMG_MIB)));
	EXPECT_EQ(0, REGION(2, 0, MEMG_MIB, MEMG_PAGE, 4 * MEMG_MIB));
	EXPECT_EQ(-EEXIST, REGION(3, 0, 8 * MEMG_MIB, MEMG_PAGE, 5 * MEMG_MIB));
	EXPECT_EQ(0, vm_region(&self->vm, 2, 0, 0, 0, NULL));
	ASSERT_EQ(0, memg_set(&self->g, P "mv", MEMG_MAX(MEMG_MIB)));

	/* Flags-only: dirty logging on and off; KVM has the bitmap meanwhile. */
	EXPECT_EQ(-ENOENT, memg_dirty_log(&self->vm, 0, 512 * MEMG_KIB));
	EXPECT_EQ(0, REGION(0, DIRTY, 0, 512 * MEMG_KIB, 0));
	EXPECT_EQ(0, memg_dirty_log(&self->vm, 0, 512 * MEMG_KIB));
	VMGET(v);
	EXPECT_EQ(MEMG_MIB, v.mem_bytes);
	EXPECT_EQ(512 * MEMG_KIB, v.mem_dirty_bytes);
	EXPECT_EQ(0, REGION(0, 0, 0, 512 * MEMG_KIB, 0));
	EXPECT_EQ(-ENOENT, memg_dirty_log(&self->vm, 0, 512 * MEMG_KIB));
	/* Move and flags at once. */
	EXPECT_EQ(0, REGION(1, DIRTY, 2 * MEMG_MIB, 512 * MEMG_KIB, MEMG_MIB));
	EXPECT_EQ(0, memg_dirty_log(&self->vm, 1, 512 * MEMG_KIB));
	/* Re-stating a slot as it is (KVM: nothing to change). */
	EXPECT_EQ(0, REGION(1, DIRTY, 2 * MEMG_MIB, 512 * MEMG_KIB, MEMG_MIB));
	VMGET(v);
	EXPECT_EQ(2U, v.memslots);
	EXPECT_EQ(MEMG_MIB, v.mem_bytes);
	EXPECT_EQ(512 * MEMG_KIB, v.mem_dirty_bytes);
	EXPECT_EQ(0ULL, v.mem_limit_denied);

	/* Deleting both gets back to nothing. */
	EXPECT_EQ(0, vm_region(&self->vm, 0, 0, 0, 0, NULL));
	EXPECT_EQ(0, vm_region(&self->vm, 1, 0, 0, 0, NULL));
	VMGET(v);
	EXPECT_EQ(0U, v.memslots);
	EXPECT_EQ(0ULL, v.mem_bytes);
	EXPECT_EQ(0ULL, v.mem_dirty_bytes);
	EXPECT_EQ(0, REGION(2, 0, 0, MEMG_MIB, 0));
}

TEST_F(lim, smm_address_space_counts)
{
	struct kg_vm v;

	if (memg_nr_as(&self->vm) < 2)
		SKIP(return, "KVM here has one address space (no SMM memslots)");
	ASSERT_EQ(0, memg_new(&self->g, P "smm", NULL, MEMG_MAX(MEMG_MIB)));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "smm"));
	EXPECT_EQ(0, REGION(MEMG_SLOT(0, 0), 0, 0, 512 * MEMG_KIB, 0));
	/* Same GPA, other address space. */
	EXPECT_EQ(0, REGION(MEMG_SLOT(1, 0), 0, 0, 512 * MEMG_KIB, MEMG_MIB));
	VMGET(v);
	EXPECT_EQ(2U, v.memslots);
	EXPECT_EQ(MEMG_MIB, v.mem_bytes);
	EXPECT_EQ(-EDQUOT, REGION(MEMG_SLOT(1, 1), 0, 4 * MEMG_MIB, MEMG_PAGE, 2 * MEMG_MIB));
	EXPECT_EQ(-EDQUOT, REGION(MEMG_SLOT(0, 1), 0, 4 * MEMG_MIB, MEMG_PAGE, 2 * MEMG_MIB));
	KVM_LACKS(MEMG_SLOT(1, 1));
	KVM_LACKS(MEMG_SLOT(0, 1));
	VMGET(v);
	EXPECT_EQ(2ULL, v.mem_limit_denied);

	/* Freeing the SMM slot makes room in address space 0. */
	EXPECT_EQ(0, vm_region(&self->vm, MEMG_SLOT(1, 0), 0, 0, 0, NULL));
	EXPECT_EQ(0, REGION(MEMG_SLOT(0, 1), 0, 4 * MEMG_MIB, 512 * MEMG_KIB, 2 * MEMG_MIB));
	EXPECT_EQ(-EDQUOT, REGION(MEMG_SLOT(1, 0), 0, 0, MEMG_PAGE, MEMG_MIB));
	VMGET(v);
	EXPECT_EQ(2U, v.memslots);
	EXPECT_EQ(MEMG_MIB, v.mem_bytes);
	EXPECT_EQ(3ULL, v.mem_limit_denied);
}

TEST_F(lim, sizes_beyond_32_bits)
{
	char *big = memg_reserve(6 * MEMG_GIB);
	struct kg_vm v;

	ASSERT_NE(NULL, big);
	ASSERT_EQ(0, memg_new(&self->g, P "5g", NULL, MEMG_MAX(5 * MEMG_GIB)));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "5g"));
	EXPECT_EQ(0, vm_region(&self->vm, 0, 0, 0, 4 * MEMG_GIB, big));
	EXPECT_EQ(0, vm_region(&self->vm, 1, 0, 4 * MEMG_GIB, MEMG_GIB, big + 4 * MEMG_GIB));
	EXPECT_EQ(-EDQUOT, vm_region(&self->vm, 2, 0, 8 * MEMG_GIB, MEMG_PAGE,
				     big + 5 * MEMG_GIB));
	VMGET(v);
	EXPECT_EQ(5 * MEMG_GIB, v.mem_bytes);
	EXPECT_EQ(1ULL, v.mem_limit_denied);
	KVM_LACKS(2);
	/* 4 GiB + 1 GiB + one page is one page over. */
	EXPECT_EQ(0, vm_region(&self->vm, 1, 0, 0, 0, NULL));
	EXPECT_EQ(-EDQUOT, vm_region(&self->vm, 1, 0, 4 * MEMG_GIB, MEMG_GIB + MEMG_PAGE,
				     big + 4 * MEMG_GIB));
	EXPECT_EQ(0, vm_region(&self->vm, 1, 0, 4 * MEMG_GIB, MEMG_GIB, big + 4 * MEMG_GIB));
	VMGET(v);
	EXPECT_EQ(5 * MEMG_GIB, v.mem_bytes);
	EXPECT_EQ(2ULL, v.mem_limit_denied);
	vm_destroy(&self->vm);
	munmap(big, 6 * MEMG_GIB);
}

TEST_F(lim, region2)
{
	struct kg_vm v;

	if (!memg_has_region2(&self->vm))
		SKIP(return, "KVM here has no KVM_SET_USER_MEMORY_REGION2 (before 6.8)");
	ASSERT_EQ(0, memg_new(&self->g, P "r2", NULL, MEMG_MAX(MEMG_MIB)));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "r2"));
	EXPECT_EQ(0, memg_region2(&self->vm, 0, 0, 0, MEMG_MIB, self->mem));
	EXPECT_EQ(-EDQUOT, memg_region2(&self->vm, 1, 0, MEMG_MIB, MEMG_PAGE,
					self->mem + MEMG_MIB));
	/* The two ioctls share one account. */
	EXPECT_EQ(-EDQUOT, REGION(1, 0, MEMG_MIB, MEMG_PAGE, MEMG_MIB));
	VMGET(v);
	EXPECT_EQ(1U, v.memslots);
	EXPECT_EQ(MEMG_MIB, v.mem_bytes);
	EXPECT_EQ(2ULL, v.mem_limit_denied);
	KVM_LACKS(1);
}

TEST_F(lim, edits_apply_to_later_changes)
{
	struct kg_vm v;

	ASSERT_EQ(0, memg_new(&self->g, P "e1", NULL, MEMG_MAX(MEMG_MIB)));
	ASSERT_EQ(0, memg_new(&self->g, P "e0", NULL, MEMG_MAX(0)));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "e1"));
	ASSERT_EQ(0, REGION(0, 0, 0, 512 * MEMG_KIB, 0));
	ASSERT_EQ(0, REGION(1, 0, MEMG_MIB, 256 * MEMG_KIB, MEMG_MIB));

	/* Lowered below what the VM maps: existing memslots stay. */
	ASSERT_EQ(0, memg_set(&self->g, P "e1", MEMG_MAX(256 * MEMG_KIB)));
	VMGET(v);
	EXPECT_EQ(2U, v.memslots);
	EXPECT_EQ(768 * MEMG_KIB, v.mem_bytes);
	EXPECT_EQ(-EDQUOT, REGION(2, 0, 2 * MEMG_MIB, MEMG_PAGE, 2 * MEMG_MIB));
	/* Deletes are always allowed; at 256K used, the cap is full. */
	EXPECT_EQ(0, vm_region(&self->vm, 0, 0, 0, 0, NULL));
	EXPECT_EQ(-EDQUOT, REGION(2, 0, 2 * MEMG_MIB, MEMG_PAGE, 2 * MEMG_MIB));
	ASSERT_EQ(0, memg_set(&self->g, P "e1", MEMG_MAX(256 * MEMG_KIB + MEMG_PAGE)));
	EXPECT_EQ(0, REGION(2, 0, 2 * MEMG_MIB, MEMG_PAGE, 2 * MEMG_MIB));

	/* VM_SET to a policy with a cap of 0. */
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "e0"));
	EXPECT_EQ(-EDQUOT, REGION(3, 0, 3 * MEMG_MIB, MEMG_PAGE, 3 * MEMG_MIB));
	/* POLICY_DEL: the VM is resolved again (no binding: no policy). */
	ASSERT_EQ(0, kg_policy_del(&self->g, P "e0"));
	VMGET(v);
	EXPECT_FALSE(v.has_policy);
	EXPECT_EQ(0, REGION(3, 0, 3 * MEMG_MIB, 4 * MEMG_MIB, 3 * MEMG_MIB));
	VMGET(v);
	EXPECT_EQ(3U, v.memslots);
	EXPECT_EQ(256 * MEMG_KIB + MEMG_PAGE + 4 * MEMG_MIB, v.mem_bytes);
	EXPECT_EQ(3ULL, v.mem_limit_denied);
}

TEST_F_TIMEOUT(lim, counter_exact_over_many, 60)
{
	struct kg_vm v;
	int n = 200;

	ASSERT_EQ(0, memg_new(&self->g, P "many", NULL, MEMG_MAX(MEMG_MIB)));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "many"));
	ASSERT_EQ(0, REGION(0, 0, 0, MEMG_MIB, 0));
	for (int i = 0; i < n; i++) {
		EXPECT_EQ(-EDQUOT, REGION(1 + i % 100, 0, (2 + i) * MEMG_MIB, MEMG_PAGE,
					  MEMG_MIB + i * MEMG_PAGE));
	}
	VMGET(v);
	EXPECT_EQ((uint64_t)n, v.mem_limit_denied);
	EXPECT_EQ(1U, v.memslots);
	EXPECT_EQ(MEMG_MIB, v.mem_bytes);
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
