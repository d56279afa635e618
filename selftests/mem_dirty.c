// SPDX-License-Identifier: GPL-2.0
/*
 * mem_dirty: POLICY_MEM_DIRTY_MAX, the budget of guest memory that may be
 * dirty-tracked (memslots with KVM_MEM_LOG_DIRTY_PAGES). A budget of 0
 * refuses the flag (EDQUOT) on a new memslot, on a flags-only change and on
 * a move that sets it; a 32M budget takes a 32M flagged memslot and not one
 * flagged page more; clearing the flag or deleting the memslot frees
 * budget, and clearing stays allowed when a lowered budget is exceeded.
 * After a refusal KVM has no dirty bitmap for the memslot
 * (KVM_GET_DIRTY_LOG: KVM's ENOENT) and the memslot is where it was. The
 * dirty ring (KVM_CAP_DIRTY_LOG_RING) does not get around the budget: a
 * guest's writes to a memslot whose flag was refused produce no ring entry.
 * SMM memslots and KVM_SET_USER_MEMORY_REGION2 share the budget.
 * VM_MEM_DIRTY_BYTES and VM_MEM_DIRTY_DENIED are exact throughout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "kg.h"
#include "memg.h"
#include "vm.h"

#define P "kgmd-"
#define MEM_SIZE (64 * MEMG_MIB)
#define DIRTY KVM_MEM_LOG_DIRTY_PAGES

FIXTURE(dl) {
	struct gnl g;
	struct vm vm;
	uint64_t id;
	char *mem;
};

FIXTURE_SETUP(dl)
{
	self->vm.fd = -1;
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
	self->mem = memg_anon(MEM_SIZE);
	ASSERT_NE(NULL, self->mem);
}

FIXTURE_TEARDOWN(dl)
{
	if (self->vm.fd >= 0 || self->vm.nr_vcpus)
		vm_destroy(&self->vm);
	if (self->mem)
		munmap(self->mem, MEM_SIZE);
	kg_cleanup(&self->g, P);
	gnl_close(&self->g);
}

#define VMGET(v) ASSERT_EQ(0, memg_vm_get(&self->g, self->id, &(v)))
#define REGION(slot, flags, gpa, size, off) \
	vm_region(&self->vm, slot, flags, gpa, size, self->mem + (off))
#define KVM_LACKS(slot) EXPECT_EQ(-EINVAL, vm_region(&self->vm, slot, 0, 0, 0, NULL))
#define NO_BITMAP(slot, size) EXPECT_EQ(-ENOENT, memg_dirty_log(&self->vm, slot, size))
#define BITMAP(slot, size) EXPECT_EQ(0, memg_dirty_log(&self->vm, slot, size))

TEST_F(dl, zero_budget)
{
	struct kg_vm v;

	ASSERT_EQ(0, memg_new(&self->g, P "zero", NULL, MEMG_DIRTY(0)));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm, P "zero", &self->id));

	/* A new flagged memslot. */
	EXPECT_EQ(-EDQUOT, REGION(0, DIRTY, 0, MEMG_PAGE, 0));
	KVM_LACKS(0);
	NO_BITMAP(0, MEMG_PAGE);
	/* Unflagged is fine. */
	ASSERT_EQ(0, REGION(0, 0, 0, 64 * MEMG_KIB, 0));
	/* Flags-only change that sets the flag. */
	EXPECT_EQ(-EDQUOT, REGION(0, DIRTY, 0, 64 * MEMG_KIB, 0));
	NO_BITMAP(0, 64 * MEMG_KIB);
	/* A move that sets it: refused, and the memslot did not move. */
	EXPECT_EQ(-EDQUOT, REGION(0, DIRTY, MEMG_MIB, 64 * MEMG_KIB, 0));
	NO_BITMAP(0, 64 * MEMG_KIB);
	EXPECT_EQ(0, REGION(1, 0, MEMG_MIB, MEMG_PAGE, MEMG_MIB));
	EXPECT_EQ(-EEXIST, REGION(2, 0, 0, MEMG_PAGE, 2 * MEMG_MIB));
	/* A plain move is no dirty tracking. */
	EXPECT_EQ(0, REGION(0, 0, 4 * MEMG_MIB, 64 * MEMG_KIB, 0));

	VMGET(v);
	EXPECT_EQ(2U, v.memslots);
	EXPECT_EQ(64 * MEMG_KIB + MEMG_PAGE, v.mem_bytes);
	EXPECT_EQ(0ULL, v.mem_dirty_bytes);
	EXPECT_EQ(3ULL, v.mem_dirty_denied);
	EXPECT_EQ(0ULL, v.mem_limit_denied);
}

TEST_F(dl, budget_32m)
{
	const uint64_t b = 32 * MEMG_MIB;
	struct kg_vm v;

	ASSERT_EQ(0, memg_new(&self->g, P "32m", NULL, MEMG_DIRTY(b)));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm, P "32m", &self->id));

	ASSERT_EQ(0, REGION(0, DIRTY, 0, b, 0));
	BITMAP(0, b);
	VMGET(v);
	EXPECT_EQ(b, v.mem_dirty_bytes);
	EXPECT_EQ(b, v.mem_bytes);

	/* One flagged page more: refused, on creation and as a flags change. */
	EXPECT_EQ(-EDQUOT, REGION(1, DIRTY, 64 * MEMG_MIB, MEMG_PAGE, b));
	KVM_LACKS(1);
	ASSERT_EQ(0, REGION(1, 0, 64 * MEMG_MIB, MEMG_PAGE, b));
	EXPECT_EQ(-EDQUOT, REGION(1, DIRTY, 64 * MEMG_MIB, MEMG_PAGE, b));
	NO_BITMAP(1, MEMG_PAGE);
	VMGET(v);
	EXPECT_EQ(b, v.mem_dirty_bytes);
	EXPECT_EQ(b + MEMG_PAGE, v.mem_bytes);
	EXPECT_EQ(2ULL, v.mem_dirty_denied);

	/* Clearing the flag frees the budget. */
	ASSERT_EQ(0, REGION(0, 0, 0, b, 0));
	NO_BITMAP(0, b);
	VMGET(v);
	EXPECT_EQ(0ULL, v.mem_dirty_bytes);
	ASSERT_EQ(0, REGION(1, DIRTY, 64 * MEMG_MIB, MEMG_PAGE, b));
	BITMAP(1, MEMG_PAGE);
	VMGET(v);
	EXPECT_EQ(MEMG_PAGE, v.mem_dirty_bytes);
	/* Now the 32M one no longer fits. */
	EXPECT_EQ(-EDQUOT, REGION(0, DIRTY, 0, b, 0));
	NO_BITMAP(0, b);

	/* Deleting a flagged memslot frees the budget too. */
	ASSERT_EQ(0, vm_region(&self->vm, 1, 0, 0, 0, NULL));
	VMGET(v);
	EXPECT_EQ(0ULL, v.mem_dirty_bytes);
	ASSERT_EQ(0, REGION(0, DIRTY, 0, b, 0));
	BITMAP(0, b);
	VMGET(v);
	EXPECT_EQ(b, v.mem_dirty_bytes);
	EXPECT_EQ(3ULL, v.mem_dirty_denied);
	ASSERT_EQ(0, vm_region(&self->vm, 0, 0, 0, 0, NULL));
	VMGET(v);
	EXPECT_EQ(0ULL, v.mem_dirty_bytes);
	EXPECT_EQ(0ULL, v.mem_bytes);
	EXPECT_EQ(0U, v.memslots);
	EXPECT_EQ(3ULL, v.mem_dirty_denied);
	EXPECT_EQ(0ULL, v.mem_limit_denied);
}

TEST_F(dl, lowered_budget_keeps_and_clears)
{
	struct kg_vm v;

	ASSERT_EQ(0, memg_new(&self->g, P "low", NULL, MEMG_DIRTY(KVMGUARD_MEM_UNLIMITED)));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm, P "low", &self->id));
	ASSERT_EQ(0, REGION(0, DIRTY, 0, 16 * MEMG_MIB, 0));
	ASSERT_EQ(0, REGION(1, DIRTY, 16 * MEMG_MIB, 16 * MEMG_MIB, 16 * MEMG_MIB));
	ASSERT_EQ(0, memg_set(&self->g, P "low", MEMG_DIRTY(0)));

	/* Existing tracking stays; stopping it is always allowed. */
	VMGET(v);
	EXPECT_EQ(32 * MEMG_MIB, v.mem_dirty_bytes);
	BITMAP(0, 16 * MEMG_MIB);
	ASSERT_EQ(0, REGION(0, 0, 0, 16 * MEMG_MIB, 0));
	NO_BITMAP(0, 16 * MEMG_MIB);
	VMGET(v);
	EXPECT_EQ(16 * MEMG_MIB, v.mem_dirty_bytes);
	EXPECT_EQ(-EDQUOT, REGION(0, DIRTY, 0, 16 * MEMG_MIB, 0));
	EXPECT_EQ(0, vm_region(&self->vm, 1, 0, 0, 0, NULL));
	VMGET(v);
	EXPECT_EQ(0ULL, v.mem_dirty_bytes);
	EXPECT_EQ(1ULL, v.mem_dirty_denied);
}

TEST_F(dl, smm_and_region2_share_the_budget)
{
	struct kg_vm v;
	uint64_t denied = 0;
	bool ran = false;

	ASSERT_EQ(0, memg_new(&self->g, P "as", NULL, MEMG_DIRTY(MEMG_MIB)));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm, P "as", &self->id));
	ASSERT_EQ(0, REGION(0, DIRTY, 0, MEMG_MIB, 0));
	if (memg_nr_as(&self->vm) >= 2) {
		ran = true;
		EXPECT_EQ(-EDQUOT, REGION(MEMG_SLOT(1, 0), DIRTY, 0, MEMG_PAGE, MEMG_MIB));
		KVM_LACKS(MEMG_SLOT(1, 0));
		denied++;
		ASSERT_EQ(0, REGION(0, 0, 0, MEMG_MIB, 0));
		EXPECT_EQ(0, REGION(MEMG_SLOT(1, 0), DIRTY, 0, MEMG_MIB, MEMG_MIB));
		VMGET(v);
		EXPECT_EQ(MEMG_MIB, v.mem_dirty_bytes);
		EXPECT_EQ(-EDQUOT, REGION(0, DIRTY, 0, MEMG_MIB, 0));
		denied++;
		ASSERT_EQ(0, vm_region(&self->vm, MEMG_SLOT(1, 0), 0, 0, 0, NULL));
		ASSERT_EQ(0, REGION(0, DIRTY, 0, MEMG_MIB, 0));
	}
	if (memg_has_region2(&self->vm)) {
		ran = true;
		EXPECT_EQ(-EDQUOT, memg_region2(&self->vm, 1, DIRTY, 2 * MEMG_MIB, MEMG_PAGE,
						self->mem + 2 * MEMG_MIB));
		KVM_LACKS(1);
		denied++;
		ASSERT_EQ(0, REGION(0, 0, 0, MEMG_MIB, 0));
		EXPECT_EQ(0, memg_region2(&self->vm, 1, DIRTY, 2 * MEMG_MIB, MEMG_MIB,
					  self->mem + 2 * MEMG_MIB));
		EXPECT_EQ(-EDQUOT, REGION(0, DIRTY, 0, MEMG_MIB, 0));
		denied++;
	}
	VMGET(v);
	EXPECT_EQ(denied, v.mem_dirty_denied);
	EXPECT_EQ(MEMG_MIB, v.mem_dirty_bytes);
	if (!ran)
		SKIP(return, "KVM here has neither SMM memslots nor KVM_SET_USER_MEMORY_REGION2");
}

/*
 * Real-mode guest at VM_CODE_GPA: one byte to 0x10000 (slot 1), one to
 * 0x20000 (slot 2), then out VM_IO_PORT and spin.
 *	mov ax, 0x1000; mov ds, ax; mov byte [0], 1
 *	mov ax, 0x2000; mov ds, ax; mov byte [0], 1
 *	out 0x10, al; jmp $
 */
static const unsigned char ring_guest[] = {
	0xb8, 0x00, 0x10, 0x8e, 0xd8, 0xc6, 0x06, 0x00, 0x00, 0x01,
	0xb8, 0x00, 0x20, 0x8e, 0xd8, 0xc6, 0x06, 0x00, 0x00, 0x01,
	0xe6, VM_IO_PORT, 0xeb, 0xfe,
};

#define RING_BYTES (64 * MEMG_KIB)

TEST_F(dl, dirty_ring_stays_within_the_budget)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_DIRTY_LOG_RING, .args = { RING_BYTES } };
	struct kvm_dirty_gfn *ring;
	int in1 = 0, in2 = 0, r;
	struct kg_vm v;

	ASSERT_EQ(0, memg_new(&self->g, P "ring", NULL, MEMG_DIRTY(0)));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm, P "ring", &self->id));
	r = ioctl(self->vm.fd, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING);
	if (r < (int)RING_BYTES)
		SKIP(return, "KVM here has no dirty ring of %llu bytes (%d)", RING_BYTES, r);
	ASSERT_EQ(0, ioctl(self->vm.fd, KVM_ENABLE_CAP, &cap));

	/* With the ring on, the budget still decides which slots are tracked. */
	EXPECT_EQ(-EDQUOT, REGION(1, DIRTY, 0x10000, 64 * MEMG_KIB, MEMG_MIB));
	ASSERT_EQ(0, memg_set(&self->g, P "ring", MEMG_DIRTY(64 * MEMG_KIB)));
	ASSERT_EQ(0, REGION(1, DIRTY, 0x10000, 64 * MEMG_KIB, MEMG_MIB));
	EXPECT_EQ(-EDQUOT, REGION(2, DIRTY, 0x20000, 64 * MEMG_KIB, 2 * MEMG_MIB));
	ASSERT_EQ(0, REGION(2, 0, 0x20000, 64 * MEMG_KIB, 2 * MEMG_MIB));
	EXPECT_EQ(-EDQUOT, REGION(2, DIRTY, 0x20000, 64 * MEMG_KIB, 2 * MEMG_MIB));
	VMGET(v);
	EXPECT_EQ(64 * MEMG_KIB, v.mem_dirty_bytes);
	EXPECT_EQ(3ULL, v.mem_dirty_denied);

	/* A guest writes to both: only slot 1 shows up in the ring. */
	ASSERT_EQ(0, REGION(0, 0, 0, 64 * MEMG_KIB, 0));
	memcpy(self->mem + VM_CODE_GPA, ring_guest, sizeof(ring_guest));
	ASSERT_EQ(0, vm_add_vcpu(&self->vm, 0));
	do {
		r = vcpu_run(&self->vm.vcpus[0]);
	} while (r == -EINTR);
	ASSERT_EQ(KVM_EXIT_IO, r);
	ASSERT_EQ(VM_IO_PORT, self->vm.vcpus[0].run->io.port);
	EXPECT_EQ(1, self->mem[MEMG_MIB]);
	EXPECT_EQ(1, self->mem[2 * MEMG_MIB]);
	ring = mmap(NULL, RING_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
		    self->vm.vcpus[0].fd, KVM_DIRTY_LOG_PAGE_OFFSET * MEMG_PAGE);
	ASSERT_NE(MAP_FAILED, ring);
	for (size_t i = 0; i < RING_BYTES / sizeof(*ring); i++) {
		if (!(ring[i].flags & KVM_DIRTY_GFN_F_DIRTY))
			break;
		in1 += ring[i].slot == 1;
		in2 += ring[i].slot == 2;
	}
	munmap(ring, RING_BYTES);
	EXPECT_LE(1, in1) TH_LOG("the write to the tracked slot is not in the ring");
	EXPECT_EQ(0, in2) TH_LOG("the untracked slot is in the ring");
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
