// SPDX-License-Identifier: GPL-2.0
/*
 * mem_smm: POLICY_MEM_MAX and POLICY_MEM_DIRTY_MAX count each byte of host
 * memory once. x86 VMMs with SMM (QEMU's pc and q35) give KVM address
 * space 1 memslots over the same host memory as address space 0; a VMM may
 * also map one host range at two guest addresses. The figures VM_MEM_BYTES
 * and VM_MEM_DIRTY_BYTES are the bytes of host memory the memslots cover,
 * and the limits hold them:
 * - one range in both address spaces, under a cap equal to it, is accepted
 *   and counts once; so do two slots of one address space over one range;
 * - partial overlaps count their union, to the page;
 * - deleting one alias keeps the count, deleting the last frees it;
 * - a genuinely distinct range still counts in full;
 * - moves keep the count; dirty tracking of aliases counts once;
 * - a random sequence of creates and deletes in both address spaces keeps
 *   VM_MEM_BYTES equal to the union computed here, and the cap refuses
 *   exactly the creates that would take the union past it.
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

#define P "kgsmm-"
#define MEM_SIZE (16 * MEMG_MIB)
#define DIRTY KVM_MEM_LOG_DIRTY_PAGES
#define S0(id) MEMG_SLOT(0, id)
#define S1(id) MEMG_SLOT(1, id)

FIXTURE(smm) {
	struct gnl g;
	struct vm vm;
	uint64_t id;
	char *mem;
};

FIXTURE_SETUP(smm)
{
	self->vm.fd = -1;
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm, NULL, &self->id));
	if (memg_nr_as(&self->vm) < 2)
		SKIP(return, "KVM here has one address space (no SMM memslots)");
	self->mem = memg_anon(MEM_SIZE);
	ASSERT_NE(NULL, self->mem);
}

FIXTURE_TEARDOWN(smm)
{
	if (self->vm.fd >= 0)
		vm_destroy(&self->vm);
	if (self->mem)
		munmap(self->mem, MEM_SIZE);
	kg_cleanup(&self->g, P);
	gnl_close(&self->g);
}

#define VMGET(v) ASSERT_EQ(0, memg_vm_get(&self->g, self->id, &(v)))
#define REGION(slot, flags, gpa, size, off) \
	vm_region(&self->vm, slot, flags, gpa, size, self->mem + (off))
#define DEL(slot) vm_region(&self->vm, slot, 0, 0, 0, NULL)
#define KVM_LACKS(slot) EXPECT_EQ(-EINVAL, DEL(slot))
#define POLICY(...) do {						\
	ASSERT_EQ(0, memg_new(&self->g, P "p", NULL, __VA_ARGS__));	\
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "p"));		\
} while (0)

/* The pc/q35 shape: all of RAM in address space 0 and again in 1. */
TEST_F(smm, ram_in_both_address_spaces_counts_once)
{
	struct kg_vm v;

	POLICY(MEMG_MAX(MEM_SIZE));
	EXPECT_EQ(0, REGION(S0(0), 0, 0, MEM_SIZE, 0));
	EXPECT_EQ(0, REGION(S1(0), 0, 0, MEM_SIZE, 0));
	VMGET(v);
	EXPECT_EQ(2U, v.memslots);
	EXPECT_EQ(MEM_SIZE, v.mem_bytes);
	EXPECT_EQ(0ULL, v.mem_limit_denied);
	/* Full: one distinct page more is refused, in either space. */
	char *other = memg_anon(MEMG_PAGE);

	ASSERT_NE(NULL, other);
	EXPECT_EQ(-EDQUOT, vm_region(&self->vm, S1(1), 0, 64 * MEMG_MIB, MEMG_PAGE, other));
	EXPECT_EQ(-EDQUOT, vm_region(&self->vm, S0(1), 0, 64 * MEMG_MIB, MEMG_PAGE, other));
	KVM_LACKS(S0(1));
	KVM_LACKS(S1(1));
	VMGET(v);
	EXPECT_EQ(MEM_SIZE, v.mem_bytes);
	EXPECT_EQ(2ULL, v.mem_limit_denied);
	munmap(other, MEMG_PAGE);
}

/* The pc shape, split: 0-640K and 1M-16M, and the same two in SMM space. */
TEST_F(smm, pc_layout)
{
	struct kg_vm v;

	POLICY(MEMG_MAX(MEM_SIZE - 384 * MEMG_KIB));
	EXPECT_EQ(0, REGION(S0(0), 0, 0, 640 * MEMG_KIB, 0));
	EXPECT_EQ(0, REGION(S0(1), 0, MEMG_MIB, MEM_SIZE - MEMG_MIB, MEMG_MIB));
	EXPECT_EQ(0, REGION(S1(0), 0, 0, 640 * MEMG_KIB, 0));
	EXPECT_EQ(0, REGION(S1(1), 0, MEMG_MIB, MEM_SIZE - MEMG_MIB, MEMG_MIB));
	VMGET(v);
	EXPECT_EQ(4U, v.memslots);
	EXPECT_EQ(MEM_SIZE - 384 * MEMG_KIB, v.mem_bytes);
	/* The hole 640K-1M is host memory too: it counts when mapped. */
	EXPECT_EQ(-EDQUOT, REGION(S1(2), 0, 640 * MEMG_KIB, MEMG_PAGE, 640 * MEMG_KIB));
	VMGET(v);
	EXPECT_EQ(1ULL, v.mem_limit_denied);
}

/* Two slots of one address space over one host range. */
TEST_F(smm, alias_within_one_address_space)
{
	struct kg_vm v;

	POLICY(MEMG_MAX(MEMG_MIB));
	EXPECT_EQ(0, REGION(S0(0), 0, 0, MEMG_MIB, 0));
	EXPECT_EQ(0, REGION(S0(1), 0, 32 * MEMG_MIB, MEMG_MIB, 0));
	EXPECT_EQ(0, REGION(S0(2), 0, 64 * MEMG_MIB, 512 * MEMG_KIB, 256 * MEMG_KIB));
	VMGET(v);
	EXPECT_EQ(3U, v.memslots);
	EXPECT_EQ(MEMG_MIB, v.mem_bytes);
	EXPECT_EQ(-EDQUOT, REGION(S0(3), 0, 96 * MEMG_MIB, MEMG_PAGE, MEMG_MIB));
	VMGET(v);
	EXPECT_EQ(1ULL, v.mem_limit_denied);
}

TEST_F(smm, partial_overlaps_count_their_union)
{
	struct kg_vm v;

	POLICY(MEMG_MAX(MEMG_MIB + 512 * MEMG_KIB));
	EXPECT_EQ(0, REGION(S0(0), 0, 0, MEMG_MIB, 0));
	/* Overlaps the upper half, adds 512K above. */
	EXPECT_EQ(0, REGION(S1(0), 0, 0, MEMG_MIB, 512 * MEMG_KIB));
	VMGET(v);
	EXPECT_EQ(MEMG_MIB + 512 * MEMG_KIB, v.mem_bytes);
	/* Full: a slot that reaches one page past the union is refused... */
	EXPECT_EQ(-EDQUOT, REGION(S1(1), 0, 8 * MEMG_MIB, 512 * MEMG_KIB + MEMG_PAGE,
				  MEMG_MIB));
	/* ... one page below it, over the union, is not. */
	EXPECT_EQ(0, REGION(S1(1), 0, 8 * MEMG_MIB, MEMG_MIB + 512 * MEMG_KIB, 0));
	/* Below the first slot: new host memory. */
	EXPECT_EQ(-EDQUOT, REGION(S1(2), 0, 16 * MEMG_MIB, MEMG_PAGE, 8 * MEMG_MIB));
	VMGET(v);
	EXPECT_EQ(3U, v.memslots);
	EXPECT_EQ(MEMG_MIB + 512 * MEMG_KIB, v.mem_bytes);
	EXPECT_EQ(2ULL, v.mem_limit_denied);

	/* Deleting the slot that covers everything: the other two still do. */
	EXPECT_EQ(0, DEL(S1(1)));
	VMGET(v);
	EXPECT_EQ(MEMG_MIB + 512 * MEMG_KIB, v.mem_bytes);
	/* Deleting the first: only [512K, 1.5M) is left. */
	EXPECT_EQ(0, DEL(S0(0)));
	VMGET(v);
	EXPECT_EQ(MEMG_MIB, v.mem_bytes);
	EXPECT_EQ(0, REGION(S0(0), 0, 0, 512 * MEMG_KIB, 4 * MEMG_MIB));
	EXPECT_EQ(-EDQUOT, REGION(S0(1), 0, MEMG_MIB, MEMG_PAGE, 5 * MEMG_MIB));
}

TEST_F(smm, deleting_one_alias_keeps_the_count)
{
	struct kg_vm v;

	POLICY(MEMG_MAX(MEM_SIZE));
	ASSERT_EQ(0, REGION(S0(0), 0, 0, MEM_SIZE, 0));
	ASSERT_EQ(0, REGION(S1(0), 0, 0, MEM_SIZE, 0));
	EXPECT_EQ(0, DEL(S0(0)));
	VMGET(v);
	EXPECT_EQ(1U, v.memslots);
	EXPECT_EQ(MEM_SIZE, v.mem_bytes);
	/* Still full for distinct memory... */
	char *other = memg_anon(MEMG_PAGE);

	ASSERT_NE(NULL, other);
	EXPECT_EQ(-EDQUOT, vm_region(&self->vm, S0(1), 0, 64 * MEMG_MIB, MEMG_PAGE, other));
	/* ... not for the alias, in either order. */
	EXPECT_EQ(0, REGION(S0(0), 0, 0, MEM_SIZE, 0));
	EXPECT_EQ(0, DEL(S1(0)));
	EXPECT_EQ(0, REGION(S1(0), 0, 0, MEM_SIZE, 0));
	VMGET(v);
	EXPECT_EQ(MEM_SIZE, v.mem_bytes);
	/* Both gone: all of it is free. */
	EXPECT_EQ(0, DEL(S0(0)));
	EXPECT_EQ(0, DEL(S1(0)));
	VMGET(v);
	EXPECT_EQ(0U, v.memslots);
	EXPECT_EQ(0ULL, v.mem_bytes);
	EXPECT_EQ(0, vm_region(&self->vm, S0(1), 0, 64 * MEMG_MIB, MEMG_PAGE, other));
	EXPECT_EQ(0, REGION(S1(0), 0, 0, MEM_SIZE - MEMG_PAGE, 0));
	VMGET(v);
	EXPECT_EQ(MEM_SIZE, v.mem_bytes);
	EXPECT_EQ(1ULL, v.mem_limit_denied);
	EXPECT_EQ(0, DEL(S0(1)));
	munmap(other, MEMG_PAGE);
}

TEST_F(smm, distinct_memory_still_counts)
{
	struct kg_vm v;

	POLICY(MEMG_MAX(MEMG_MIB));
	EXPECT_EQ(0, REGION(S0(0), 0, 0, 512 * MEMG_KIB, 0));
	/* Adjacent, not overlapping: new memory. */
	EXPECT_EQ(0, REGION(S1(0), 0, 0, 512 * MEMG_KIB, 512 * MEMG_KIB));
	VMGET(v);
	EXPECT_EQ(MEMG_MIB, v.mem_bytes);
	EXPECT_EQ(-EDQUOT, REGION(S1(1), 0, MEMG_MIB, MEMG_PAGE, MEMG_MIB));
	EXPECT_EQ(-EDQUOT, REGION(S0(1), 0, MEMG_MIB, MEMG_PAGE, MEMG_MIB));
	VMGET(v);
	EXPECT_EQ(2ULL, v.mem_limit_denied);
}

TEST_F(smm, moves_and_flags_keep_the_count)
{
	struct kg_vm v;

	POLICY(MEMG_MAX(MEMG_MIB));
	ASSERT_EQ(0, REGION(S0(0), 0, 0, MEMG_MIB, 0));
	ASSERT_EQ(0, REGION(S1(0), 0, 0, MEMG_MIB, 0));
	EXPECT_EQ(0, REGION(S1(0), 0, 8 * MEMG_MIB, MEMG_MIB, 0));
	EXPECT_EQ(0, REGION(S0(0), DIRTY, 16 * MEMG_MIB, MEMG_MIB, 0));
	EXPECT_EQ(0, REGION(S0(0), 0, 16 * MEMG_MIB, MEMG_MIB, 0));
	VMGET(v);
	EXPECT_EQ(2U, v.memslots);
	EXPECT_EQ(MEMG_MIB, v.mem_bytes);
	EXPECT_EQ(-EDQUOT, REGION(S0(1), 0, 0, MEMG_PAGE, MEMG_MIB));
	VMGET(v);
	EXPECT_EQ(1ULL, v.mem_limit_denied);
}

/* QEMU's migration dirty-tracks every slot: both aliases of RAM. */
TEST_F(smm, dirty_tracking_of_aliases_counts_once)
{
	struct kg_vm v;

	POLICY(MEMG_DIRTY(MEMG_MIB));
	ASSERT_EQ(0, REGION(S0(0), 0, 0, MEMG_MIB, 0));
	ASSERT_EQ(0, REGION(S1(0), 0, 0, MEMG_MIB, 0));
	ASSERT_EQ(0, REGION(S0(1), 0, 4 * MEMG_MIB, MEMG_PAGE, MEMG_MIB));
	EXPECT_EQ(0, REGION(S0(0), DIRTY, 0, MEMG_MIB, 0));
	EXPECT_EQ(0, REGION(S1(0), DIRTY, 0, MEMG_MIB, 0));
	VMGET(v);
	EXPECT_EQ(MEMG_MIB, v.mem_dirty_bytes);
	EXPECT_EQ(MEMG_MIB + MEMG_PAGE, v.mem_bytes);
	EXPECT_EQ(0ULL, v.mem_dirty_denied);
	/* Distinct memory is over the budget... */
	EXPECT_EQ(-EDQUOT, REGION(S0(1), DIRTY, 4 * MEMG_MIB, MEMG_PAGE, MEMG_MIB));
	/* ... a new alias, created tracked, is not. */
	EXPECT_EQ(0, REGION(S1(1), DIRTY, 8 * MEMG_MIB, 512 * MEMG_KIB, 0));
	VMGET(v);
	EXPECT_EQ(MEMG_MIB, v.mem_dirty_bytes);
	EXPECT_EQ(1ULL, v.mem_dirty_denied);
	/* Tracking off on one alias: the other still tracks the range. */
	EXPECT_EQ(0, REGION(S0(0), 0, 0, MEMG_MIB, 0));
	VMGET(v);
	EXPECT_EQ(MEMG_MIB, v.mem_dirty_bytes);
	EXPECT_EQ(-EDQUOT, REGION(S0(1), DIRTY, 4 * MEMG_MIB, MEMG_PAGE, MEMG_MIB));
	EXPECT_EQ(0, REGION(S1(0), 0, 0, MEMG_MIB, 0));
	EXPECT_EQ(0, DEL(S1(1)));
	VMGET(v);
	EXPECT_EQ(0ULL, v.mem_dirty_bytes);
	EXPECT_EQ(0, REGION(S0(1), DIRTY, 4 * MEMG_MIB, MEMG_PAGE, MEMG_MIB));
}

/* Ranges KVM refuses (past the top of the address space) count nothing. */
TEST_F(smm, refused_ranges_leave_no_count)
{
	struct kg_vm v;

	POLICY(MEMG_MAX(2 * MEMG_MIB));
	ASSERT_EQ(0, REGION(S0(0), 0, 0, MEMG_MIB, 0));
	EXPECT_EQ(-EINVAL, vm_region(&self->vm, S1(1), 0, 0, 2 * MEMG_PAGE,
				     (void *)(uintptr_t)-MEMG_PAGE));
	EXPECT_EQ(-EINVAL, vm_region(&self->vm, S1(2), 0, 0, MEMG_PAGE,
				     (void *)(uintptr_t)0xffff800000000000ull));
	/* KVM's own overlap refusal: the range goes again. */
	EXPECT_EQ(-EEXIST, REGION(S0(3), 0, 0, MEMG_PAGE, 4 * MEMG_MIB));
	VMGET(v);
	EXPECT_EQ(1U, v.memslots);
	EXPECT_EQ(MEMG_MIB, v.mem_bytes);
	/* The cap is still exactly 2M: nothing stale is counted. */
	EXPECT_EQ(0, REGION(S1(0), 0, 0, MEMG_MIB, 2 * MEMG_MIB));
	EXPECT_EQ(-EDQUOT, REGION(S1(3), 0, 4 * MEMG_MIB, MEMG_PAGE, 4 * MEMG_MIB));
	VMGET(v);
	EXPECT_EQ(2 * MEMG_MIB, v.mem_bytes);
	EXPECT_EQ(1ULL, v.mem_limit_denied);
}

/* Host page bitmap of what the model's live slots cover. */
#define NPG (4 * MEMG_MIB / MEMG_PAGE)
#define NID 6

struct model_slot {
	bool live;
	unsigned int first, n;	/* pages of self->mem */
};

static uint64_t model_union(const struct model_slot s[2][NID], int as, int id,
			    unsigned int first, unsigned int n)
{
	static unsigned char cover[NPG];
	uint64_t pages = 0;
	unsigned int i;

	memset(cover, 0, sizeof(cover));
	for (int a = 0; a < 2; a++)
		for (int k = 0; k < NID; k++)
			if (s[a][k].live && !(a == as && k == id))
				memset(cover + s[a][k].first, 1, s[a][k].n);
	if (n)
		memset(cover + first, 1, n);
	for (i = 0; i < NPG; i++)
		pages += cover[i];
	return pages * MEMG_PAGE;
}

TEST_F_TIMEOUT(smm, random_sequence_stays_exact, 120)
{
	struct model_slot s[2][NID] = {};
	uint64_t cap = 2 * MEMG_MIB, now = 0, after;
	unsigned int seed = 15, first, n;
	int as, id, err, refused = 0, steps = 400;
	struct kg_vm v;

	POLICY(MEMG_MAX(cap));
	for (int i = 0; i < steps; i++) {
		as = rand_r(&seed) % 2;
		id = rand_r(&seed) % NID;
		if (s[as][id].live) {
			ASSERT_EQ(0, DEL(MEMG_SLOT(as, id)));
			s[as][id].live = false;
			now = model_union(s, -1, -1, 0, 0);
		} else {
			/* 64K-aligned pieces of up to 1M: they overlap often. */
			first = (rand_r(&seed) % (NPG / 16)) * 16;
			n = (1 + rand_r(&seed) % 16) * 16;
			if (first + n > NPG)
				n = NPG - first;
			after = model_union(s, as, id, first, n);
			err = REGION(MEMG_SLOT(as, id), 0, id * 16 * MEMG_MIB,
				     n * MEMG_PAGE, first * MEMG_PAGE);
			if (after > cap) {
				ASSERT_EQ(-EDQUOT, err) TH_LOG("step %d: %llu > cap", i,
							       (unsigned long long)after);
				refused++;
			} else {
				ASSERT_EQ(0, err) TH_LOG("step %d: %llu <= cap", i,
							 (unsigned long long)after);
				s[as][id] = (struct model_slot){ true, first, n };
				now = after;
			}
		}
		VMGET(v);
		ASSERT_EQ(now, v.mem_bytes) TH_LOG("step %d", i);
		ASSERT_EQ((uint64_t)refused, v.mem_limit_denied);
	}
	TH_LOG("%d steps, %d refused", steps, refused);
	EXPECT_GT(refused, 0);
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
