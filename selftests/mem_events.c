// SPDX-License-Identifier: GPL-2.0
/*
 * mem_events: every memory rule in enforce and in audit mode. Enforce
 * refuses with the rule's errno (EDQUOT, EPERM, EXDEV); audit lets the
 * change happen (KVM has the memslot, the flag, the mergeable VMA). Both
 * count the violation in the VM's counter and send one MEMORY event with
 * the VM, its pid and policy, the rule, the action (DENIED / AUDITED),
 * count 1, the bytes (LIMIT and DIRTY_LOG: the total asked for; SHARED:
 * the memslot; KSM: the range) and, for memslot changes only, the slot as
 * the VMM named it (address space 1 too). KSM madvise, which stock VMMs
 * make by default, is counted apart and reported once per VM (see
 * ksm_madvise).
 * Rate limiting: a burst of violations gives at most one event a second
 * per VM and rule; another rule or another VM gets its own event at once;
 * after a quiet second the next violation reports the held-back ones, and
 * the counts add up to the counter.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "kselftest_harness.h"
#include "hcg.h"
#include "kg.h"
#include "memg.h"
#include "vm.h"

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#endif

#define P "kgme-"
#define SZ (64 * MEMG_KIB)
#define DIRTY KVM_MEM_LOG_DIRTY_PAGES
#define NO_SLOT (-1LL)

FIXTURE(rule) {
	struct gnl g;
	struct gnl sub;
	struct vm vm[2];
	uint64_t id[2];
	char *mem;
	int memfd;
};

FIXTURE_VARIANT(rule) {
	uint8_t mode;
};

FIXTURE_VARIANT_ADD(rule, enforce) {
	.mode = KVMGUARD_MODE_ENFORCE,
};

FIXTURE_VARIANT_ADD(rule, audit) {
	.mode = KVMGUARD_MODE_AUDIT,
};

FIXTURE_SETUP(rule)
{
	self->vm[0].fd = self->vm[1].fd = -1;
	self->memfd = -1;
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
	ASSERT_EQ(0, kg_open(&self->sub));
	ASSERT_EQ(0, hcg_subscribe(&self->sub));
	self->mem = memg_anon(16 * MEMG_MIB);
	ASSERT_NE(NULL, self->mem);
}

FIXTURE_TEARDOWN(rule)
{
	for (int i = 0; i < 2; i++)
		if (self->vm[i].fd >= 0)
			vm_destroy(&self->vm[i]);
	if (self->memfd >= 0)
		close(self->memfd);
	kg_cleanup(&self->g, P);
	gnl_close(&self->sub);
	gnl_close(&self->g);
}

#define AUDIT (variant->mode == KVMGUARD_MODE_AUDIT)
/* What a violating request returns in this mode. */
#define WANT(err) (AUDIT ? 0 : (err))
#define ACTION (AUDIT ? KVMGUARD_ACTION_AUDITED : KVMGUARD_ACTION_DENIED)
#define VMGET(i, v) ASSERT_EQ(0, memg_vm_get(&self->g, self->id[i], &(v)))
#define REGION(i, slot, flags, gpa, size, off) \
	vm_region(&self->vm[i], slot, flags, gpa, size, self->mem + (off))

/*
 * Exactly one MEMORY event for VM @i arrives (and no other soon after),
 * with these contents; @slot NO_SLOT: no EVENT_MEM_SLOT.
 */
static void one_event(struct __test_metadata *_metadata, FIXTURE_DATA(rule) *self,
		      const FIXTURE_VARIANT(rule) *variant, int i, const char *policy,
		      uint8_t rule, uint64_t bytes, int64_t slot)
{
	struct kg_event ev[8];
	int n = memg_events(&self->sub, self->id[i], 1, 2000, ev, 8);

	n += memg_events(&self->sub, self->id[i], 0, 300, ev + n, 8 - n);
	ASSERT_EQ(1, n) TH_LOG("MEMORY events for rule %u", rule);
	EXPECT_EQ(KVMGUARD_EVENT_MEMORY, ev[0].type);
	EXPECT_EQ(self->id[i], ev[0].vm_id);
	EXPECT_EQ((uint32_t)getpid(), ev[0].pid);
	EXPECT_NE(0, ev[0].comm[0]);
	EXPECT_TRUE(ev[0].has_policy);
	EXPECT_STREQ(policy, ev[0].policy);
	EXPECT_NE(0ULL, ev[0].time_ns);
	EXPECT_EQ(rule, ev[0].mem_rule);
	EXPECT_EQ(ACTION, ev[0].action);
	EXPECT_EQ(1ULL, ev[0].count);
	EXPECT_EQ(bytes, ev[0].mem_bytes);
	EXPECT_FALSE(!!(ev[0].present & KG_BIT(KVMGUARD_A_EVENT_VMM_DEFAULT)));
	EXPECT_TRUE(!!(ev[0].present & KG_BIT(KVMGUARD_A_EVENT_MEM_BYTES)));
	if (slot == NO_SLOT) {
		EXPECT_FALSE(!!(ev[0].present & KG_BIT(KVMGUARD_A_EVENT_MEM_SLOT)));
	} else {
		EXPECT_TRUE(!!(ev[0].present & KG_BIT(KVMGUARD_A_EVENT_MEM_SLOT)));
		EXPECT_EQ((uint32_t)slot, ev[0].mem_slot);
	}
}

#define ONE_EVENT(i, policy, rule, bytes, slot) \
	one_event(_metadata, self, variant, i, policy, rule, bytes, slot)

TEST_F(rule, limit)
{
	struct kg_vm v;

	ASSERT_EQ(0, memg_new(&self->g, P "lim", NULL, MEMG_MODE(variant->mode),
			      MEMG_MAX(SZ)));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm[0], P "lim", &self->id[0]));
	ASSERT_EQ(0, REGION(0, 0, 0, 0, SZ, 0));
	memg_drain(&self->sub);
	EXPECT_EQ(WANT(-EDQUOT), REGION(0, 3, 0, MEMG_MIB, SZ, MEMG_MIB));
	ONE_EVENT(0, P "lim", KVMGUARD_MEM_RULE_LIMIT, 2 * SZ, 3);
	VMGET(0, v);
	EXPECT_EQ(1ULL, v.mem_limit_denied);
	EXPECT_EQ(AUDIT ? 2 * SZ : SZ, v.mem_bytes);
	EXPECT_EQ(AUDIT ? 2U : 1U, v.memslots);
	EXPECT_EQ(WANT(-EINVAL), vm_region(&self->vm[0], 3, 0, 0, 0, NULL));
}

TEST_F(rule, limit_smm_slot)
{
	ASSERT_EQ(0, memg_new(&self->g, P "lim", NULL, MEMG_MODE(variant->mode),
			      MEMG_MAX(SZ)));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm[0], P "lim", &self->id[0]));
	if (memg_nr_as(&self->vm[0]) < 2)
		SKIP(return, "KVM here has one address space (no SMM memslots)");
	memg_drain(&self->sub);
	EXPECT_EQ(WANT(-EDQUOT), REGION(0, MEMG_SLOT(1, 2), 0, 0, 2 * SZ, 2 * MEMG_MIB));
	ONE_EVENT(0, P "lim", KVMGUARD_MEM_RULE_LIMIT, 2 * SZ, MEMG_SLOT(1, 2));
}

TEST_F(rule, dirty_log)
{
	struct kg_vm v;

	ASSERT_EQ(0, memg_new(&self->g, P "dirty", NULL, MEMG_MODE(variant->mode),
			      MEMG_DIRTY(SZ)));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm[0], P "dirty", &self->id[0]));
	ASSERT_EQ(0, REGION(0, 0, DIRTY, 0, SZ, 0));
	ASSERT_EQ(0, REGION(0, 1, 0, MEMG_MIB, MEMG_PAGE, MEMG_MIB));
	memg_drain(&self->sub);
	EXPECT_EQ(WANT(-EDQUOT), REGION(0, 1, DIRTY, MEMG_MIB, MEMG_PAGE, MEMG_MIB));
	ONE_EVENT(0, P "dirty", KVMGUARD_MEM_RULE_DIRTY_LOG, SZ + MEMG_PAGE, 1);
	VMGET(0, v);
	EXPECT_EQ(1ULL, v.mem_dirty_denied);
	EXPECT_EQ(AUDIT ? SZ + MEMG_PAGE : SZ, v.mem_dirty_bytes);
	EXPECT_EQ(WANT(-ENOENT), memg_dirty_log(&self->vm[0], 1, MEMG_PAGE));
	EXPECT_EQ(0ULL, v.mem_limit_denied);
}

TEST_F(rule, shared_deny)
{
	char *m;
	struct kg_vm v;

	self->memfd = memg_memfd(SZ, 0);
	ASSERT_LE(0, self->memfd);
	m = memg_map_fd(self->memfd, SZ, MAP_SHARED, 0);
	ASSERT_NE(NULL, m);
	ASSERT_EQ(0, memg_new(&self->g, P "sh", NULL, MEMG_MODE(variant->mode),
			      MEMG_SHARED(KVMGUARD_MEM_SHARED_DENY)));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm[0], P "sh", &self->id[0]));
	memg_drain(&self->sub);
	EXPECT_EQ(WANT(-EPERM), vm_region(&self->vm[0], 2, 0, 0, SZ, m));
	ONE_EVENT(0, P "sh", KVMGUARD_MEM_RULE_SHARED, SZ, 2);
	VMGET(0, v);
	EXPECT_EQ(1ULL, v.mem_shared_denied);
	EXPECT_EQ(AUDIT ? SZ : 0, v.mem_shared_bytes);
	EXPECT_EQ(AUDIT ? 1U : 0U, v.memslots);
}

TEST_F(rule, shared_domain)
{
	char *m;
	struct kg_vm v;

	self->memfd = memg_memfd(SZ, 0);
	ASSERT_LE(0, self->memfd);
	m = memg_map_fd(self->memfd, SZ, MAP_SHARED, 0);
	ASSERT_NE(NULL, m);
	ASSERT_EQ(0, memg_new(&self->g, P "red", "red", MEMG_MODE(variant->mode),
			      MEMG_SHARED(KVMGUARD_MEM_SHARED_DOMAIN)));
	ASSERT_EQ(0, memg_new(&self->g, P "blue", "blue", MEMG_MODE(variant->mode),
			      MEMG_SHARED(KVMGUARD_MEM_SHARED_DOMAIN)));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm[0], P "red", &self->id[0]));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm[1], P "blue", &self->id[1]));
	ASSERT_EQ(0, vm_region(&self->vm[0], 0, 0, 0, SZ, m));
	memg_drain(&self->sub);
	EXPECT_EQ(WANT(-EXDEV), vm_region(&self->vm[1], 5, 0, 0, SZ, m));
	ONE_EVENT(1, P "blue", KVMGUARD_MEM_RULE_SHARED, SZ, 5);
	VMGET(1, v);
	EXPECT_EQ(1ULL, v.mem_shared_denied);
	EXPECT_EQ(AUDIT ? SZ : 0, v.mem_shared_bytes);
	VMGET(0, v);
	EXPECT_EQ(0ULL, v.mem_shared_denied);
}

/*
 * madvise(MADV_MERGEABLE) under KSM deny is what a stock VMM does by
 * default (QEMU's mem-merge=on): refused (enforce) or let through (audit)
 * every time, counted in VM_MEM_KSM_MADVISE and not as a KSM violation,
 * and reported by one MEMORY event per VM, with EVENT_VMM_DEFAULT. Repeats,
 * on other ranges and a second later, are counted but not reported;
 * another VM of the process gets its own one report.
 */
TEST_F(rule, ksm_madvise)
{
	char *b = self->mem + 8 * MEMG_MIB;
	struct kg_event ev[8];
	struct kg_vm v;
	int n;

	ASSERT_EQ(0, memg_new(&self->g, P "ksm", NULL, MEMG_MODE(variant->mode),
			      MEMG_KSM(KVMGUARD_KSM_DENY)));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm[0], P "ksm", &self->id[0]));
	memg_drain(&self->sub);
	EXPECT_EQ(WANT(-EPERM), madvise(b, 3 * MEMG_PAGE, MADV_MERGEABLE) ? -errno : 0);
	EXPECT_EQ(AUDIT ? 1 : 0, memg_vma_mergeable(0, b));
	madvise(b, 3 * MEMG_PAGE, MADV_UNMERGEABLE);
	n = memg_events(&self->sub, self->id[0], 1, 2000, ev, 8);
	ASSERT_EQ(1, n);
	EXPECT_EQ(KVMGUARD_EVENT_MEMORY, ev[0].type);
	EXPECT_STREQ(P "ksm", ev[0].policy);
	EXPECT_EQ(KVMGUARD_MEM_RULE_KSM, ev[0].mem_rule);
	EXPECT_EQ(ACTION, ev[0].action);
	EXPECT_EQ(1ULL, ev[0].count);
	EXPECT_EQ(3 * MEMG_PAGE, ev[0].mem_bytes);
	EXPECT_FALSE(!!(ev[0].present & KG_BIT(KVMGUARD_A_EVENT_MEM_SLOT)));
	EXPECT_TRUE(!!(ev[0].present & KG_BIT(KVMGUARD_A_EVENT_VMM_DEFAULT)))
		TH_LOG("the VMM's default madvise is not told apart");
	EXPECT_EQ(1, ev[0].vmm_default);

	/* Repeats: counted, never reported again, not even a second later. */
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(WANT(-EPERM), madvise(b + i * MEMG_PAGE, MEMG_PAGE,
						MADV_MERGEABLE) ? -errno : 0);
		madvise(b + i * MEMG_PAGE, MEMG_PAGE, MADV_UNMERGEABLE);
	}
	usleep(1100000);
	EXPECT_EQ(WANT(-EPERM), madvise(b, MEMG_PAGE, MADV_MERGEABLE) ? -errno : 0);
	madvise(b, MEMG_PAGE, MADV_UNMERGEABLE);
	n = memg_events(&self->sub, self->id[0], 0, 500, ev, 8);
	EXPECT_EQ(0, n) TH_LOG("%d more events for the VMM's repeated madvise", n);
	VMGET(0, v);
	EXPECT_EQ(5ULL, v.mem_ksm_madvise);
	EXPECT_EQ(0ULL, v.mem_ksm_denied);

	/* A second VM of the same process: one report of its own. */
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm[1], P "ksm", &self->id[1]));
	EXPECT_EQ(WANT(-EPERM), madvise(b, MEMG_PAGE, MADV_MERGEABLE) ? -errno : 0);
	madvise(b, MEMG_PAGE, MADV_UNMERGEABLE);
	n = memg_events(&self->sub, self->id[1], 1, 2000, ev, 8);
	ASSERT_EQ(1, n);
	EXPECT_EQ(1, ev[0].vmm_default);
	EXPECT_EQ(0, memg_events(&self->sub, self->id[0], 0, 300, ev, 8));
	VMGET(0, v);
	EXPECT_EQ(6ULL, v.mem_ksm_madvise);
	VMGET(1, v);
	EXPECT_EQ(1ULL, v.mem_ksm_madvise);
	EXPECT_EQ(0ULL, v.mem_ksm_denied);
}

TEST_F(rule, ksm_slot)
{
	struct kg_vm v;

	ASSERT_EQ(0, memg_new(&self->g, P "ksm", NULL, MEMG_MODE(variant->mode),
			      MEMG_KSM(KVMGUARD_KSM_DENY)));
	ASSERT_EQ(0, madvise(self->mem, SZ, MADV_MERGEABLE));
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL, getpid(), P "ksm"));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm[0], NULL, &self->id[0]));
	memg_drain(&self->sub);
	EXPECT_EQ(WANT(-EPERM), REGION(0, 4, 0, 0, SZ, 0));
	ONE_EVENT(0, P "ksm", KVMGUARD_MEM_RULE_KSM, SZ, 4);
	VMGET(0, v);
	EXPECT_EQ(1ULL, v.mem_ksm_denied);
	EXPECT_EQ(AUDIT ? 1U : 0U, v.memslots);
}

TEST_F(rule, ksm_prctl)
{
	struct kg_event ev[4];
	struct kg_vm v;
	int r, n;

	if (prctl(PR_SET_MEMORY_MERGE, 0, 0, 0, 0) && errno == EINVAL)
		SKIP(return, "no PR_SET_MEMORY_MERGE here (before 6.4)");
	ASSERT_EQ(0, memg_new(&self->g, P "ksm", NULL, MEMG_MODE(variant->mode),
			      MEMG_KSM(KVMGUARD_KSM_DENY)));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm[0], P "ksm", &self->id[0]));
	memg_drain(&self->sub);
	r = prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) ? -errno : 0;
	EXPECT_EQ(WANT(-EPERM), r);
	VMGET(0, v);
	EXPECT_EQ(1ULL, v.mem_ksm_denied);
	n = memg_events(&self->sub, self->id[0], 1, 2000, ev, 4);
	ASSERT_EQ(1, n);
	EXPECT_EQ(KVMGUARD_MEM_RULE_KSM, ev[0].mem_rule);
	EXPECT_EQ(ACTION, ev[0].action);
	EXPECT_EQ(1ULL, ev[0].count);
	EXPECT_FALSE(!!(ev[0].present & KG_BIT(KVMGUARD_A_EVENT_MEM_SLOT)));
	/* No VMM asks for this by default: a violation like any other. */
	EXPECT_FALSE(!!(ev[0].present & KG_BIT(KVMGUARD_A_EVENT_VMM_DEFAULT)));
	prctl(PR_SET_MEMORY_MERGE, 0, 0, 0, 0);
}

/* Sum the counts of @rule events in @ev[0..n). */
static uint64_t count_sum(const struct kg_event *ev, int n, uint8_t rule, int *events)
{
	uint64_t sum = 0;

	*events = 0;
	for (int i = 0; i < n; i++) {
		if (ev[i].mem_rule != rule)
			continue;
		sum += ev[i].count;
		(*events)++;
	}
	return sum;
}

TEST_F_TIMEOUT(rule, rate_limited_per_vm_and_rule, 60)
{
	struct kg_event ev[64], ev1[8];
	int burst = 50, all, n, nlim, ndirty, n1;
	uint64_t t0, sum;
	double secs;
	struct kg_vm v;

	ASSERT_EQ(0, memg_new(&self->g, P "rate", NULL, MEMG_MODE(variant->mode),
			      MEMG_MAX(SZ), MEMG_DIRTY(0)));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm[0], P "rate", &self->id[0]));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm[1], P "rate", &self->id[1]));
	ASSERT_EQ(0, REGION(0, 0, 0, 0, SZ, 0));
	memg_drain(&self->sub);

	/*
	 * A new page each time (past slot 0's memory: an alias of it would
	 * count nothing): refused, or (audit) let through and counted.
	 */
	t0 = kg_now_ns();
	for (int i = 1; i <= burst; i++) {
		EXPECT_EQ(WANT(-EDQUOT), REGION(0, i, 0, i * MEMG_MIB, MEMG_PAGE,
						SZ + i * MEMG_PAGE));
	}
	secs = (kg_now_ns() - t0) / 1e9;
	/* Another rule of the same VM, and another VM: their own events. */
	EXPECT_EQ(WANT(-EDQUOT), REGION(0, 0, DIRTY, 0, SZ, 0));
	EXPECT_EQ(WANT(-EDQUOT), REGION(1, 0, 0, 0, 2 * SZ, 0));
	/* Every MEMORY event, of both VMs, sorted out here. */
	all = memg_events(&self->sub, 0, 0, 500, ev, 64);
	n = n1 = 0;
	for (int i = 0; i < all; i++) {
		if (ev[i].vm_id == self->id[0])
			ev[n++] = ev[i];
		else if (ev[i].vm_id == self->id[1] && n1 < 8)
			ev1[n1++] = ev[i];
	}
	sum = count_sum(ev, n, KVMGUARD_MEM_RULE_LIMIT, &nlim);
	TH_LOG("%d violations in %.3f s: %d LIMIT events", burst, secs, nlim);
	EXPECT_LE(1, nlim);
	EXPECT_GE(1 + (int)secs + 1, nlim) TH_LOG("more than one event a second");
	EXPECT_EQ(1ULL, count_sum(ev, n, KVMGUARD_MEM_RULE_DIRTY_LOG, &ndirty));
	EXPECT_EQ(1, ndirty);
	EXPECT_EQ(n, nlim + ndirty);
	ASSERT_EQ(1, n1);
	EXPECT_EQ(KVMGUARD_MEM_RULE_LIMIT, ev1[0].mem_rule);
	EXPECT_EQ(1ULL, ev1[0].count);

	/* After a quiet second, the next violation reports the rest. */
	usleep(1100000);
	burst++;
	EXPECT_EQ(WANT(-EDQUOT), REGION(0, burst, 0, burst * MEMG_MIB, MEMG_PAGE,
					SZ + burst * MEMG_PAGE));
	n += memg_events(&self->sub, self->id[0], 1, 2000, ev + n, 64 - n);
	n += memg_events(&self->sub, self->id[0], 0, 300, ev + n, 64 - n);
	sum = count_sum(ev, n, KVMGUARD_MEM_RULE_LIMIT, &nlim);
	for (int i = 0; i < n; i++) {
		EXPECT_EQ(ACTION, ev[i].action);
		EXPECT_LE(1ULL, ev[i].count);
	}
	EXPECT_EQ((uint64_t)burst, sum)
		TH_LOG("LIMIT event counts add up to %llu of %d violations",
		       (unsigned long long)sum, burst);
	VMGET(0, v);
	EXPECT_EQ((uint64_t)burst, v.mem_limit_denied);
	EXPECT_EQ(1ULL, v.mem_dirty_denied);
	EXPECT_EQ(AUDIT ? burst + 1U : 1U, v.memslots);
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
