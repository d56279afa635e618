// SPDX-License-Identifier: GPL-2.0
/*
 * mem_ksm: POLICY_MEM_KSM deny.
 * In a process that owns a VM under deny (enforce), madvise(MADV_MERGEABLE)
 * fails with EPERM on any range (a memslot's, one in no memslot, from
 * another thread) and leaves the VMA unmarked, counted in
 * VM_MEM_KSM_MADVISE (a VMM's default request), not VM_MEM_KSM_DENIED
 * (which counts the other KSM violations); MADV_UNMERGEABLE works; a
 * child process (not the VM's) and the process once its VM is gone may
 * merge again. A VM that got deny at creation (pid binding) cannot put a
 * memslot over memory already marked mergeable (EPERM) until it is
 * unmarked. On 6.4+ prctl(PR_SET_MEMORY_MERGE, 1) fails with EPERM, and a
 * process that set it before cannot add memslots (every new mapping is
 * mergeable); skipped where the prctl does not exist (6.1).
 * Turning deny on (POLICY_SET of the rule or of the mode, VM_SET,
 * re-resolution after POLICY_DEL) for a VM whose process has mergeable
 * memory fails with EBUSY and an extack message, changing nothing, and
 * works after MADV_UNMERGEABLE; audit mode is no obstacle. Turn-ons
 * racing a thread that marks and unmarks a page never leave it mergeable
 * under deny.
 * KSM itself: with ksmd at full speed, processes of VMs under allow that
 * marked identical guest pages mergeable get them merged
 * (/proc/PID/ksm_merging_pages > 0) while the deny VM's process, with the
 * very same content, stays at 0 through two more full scans. KSM's sysfs
 * settings are restored afterwards.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "hcg.h"
#include "kg.h"
#include "memg.h"
#include "vm.h"

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#define PR_GET_MEMORY_MERGE 68
#endif

#define P "kgmk-"
#define SZ (256 * MEMG_KIB)
#define KSM "/sys/kernel/mm/ksm/"

FIXTURE(ksm) {
	struct gnl g;
	struct vm vm;
	uint64_t id;
	char *a;	/* a memslot's memory */
	char *b;	/* in no memslot */
	bool ksm_saved;
	unsigned long run, sleep_ms, pages;
	struct memg_child kids[3];
};

FIXTURE_SETUP(ksm)
{
	self->vm.fd = -1;
	for (int i = 0; i < 3; i++) {
		self->kids[i].pid = -1;
		self->kids[i].to = self->kids[i].from = -1;
	}
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
	ASSERT_EQ(0, memg_new(&self->g, P "deny", NULL, MEMG_KSM(KVMGUARD_KSM_DENY)));
	ASSERT_EQ(0, memg_new(&self->g, P "allow", NULL, MEMG_KSM(KVMGUARD_KSM_ALLOW)));
	self->a = memg_anon(SZ);
	self->b = memg_anon(SZ);
	ASSERT_NE(NULL, self->a);
	ASSERT_NE(NULL, self->b);
	memset(self->a, 0x5a, SZ);
	memset(self->b, 0x5a, SZ);
}

FIXTURE_TEARDOWN(ksm)
{
	for (int i = 0; i < 3; i++)
		memg_child_end(&self->kids[i]);
	if (self->ksm_saved) {
		TH_LOG("restoring KSM");
		/* 2 unmerges everything, then the old state. */
		memg_put_ulong(KSM "run", 2);
		memg_put_ulong(KSM "run", self->run);
		memg_put_ulong(KSM "sleep_millisecs", self->sleep_ms);
		memg_put_ulong(KSM "pages_to_scan", self->pages);
	}
	if (self->vm.fd >= 0)
		vm_destroy(&self->vm);
	kg_cleanup(&self->g, P);
	gnl_close(&self->g);
}

#define VMGET(v) ASSERT_EQ(0, memg_vm_get(&self->g, self->id, &(v)))
#define MADV(p, len, advice) (madvise(p, len, advice) ? -errno : 0)

struct thr_madv {
	void *p;
	int err;
};

static void *thread_madvise(void *arg)
{
	struct thr_madv *t = arg;

	t->err = MADV(t->p, MEMG_PAGE, MADV_MERGEABLE);
	return NULL;
}

TEST_F(ksm, deny_refuses_madvise_anywhere)
{
	struct thr_madv t;
	pthread_t th;
	pid_t pid;
	int status;
	struct kg_vm v;

	ASSERT_EQ(0, memg_vm(&self->g, &self->vm, P "deny", &self->id));
	ASSERT_EQ(0, vm_region(&self->vm, 0, 0, 0, SZ, self->a));

	EXPECT_EQ(-EPERM, MADV(self->a, SZ, MADV_MERGEABLE));
	EXPECT_EQ(-EPERM, MADV(self->b, SZ, MADV_MERGEABLE));
	EXPECT_EQ(-EPERM, MADV(self->b + MEMG_PAGE, MEMG_PAGE, MADV_MERGEABLE));
	EXPECT_EQ(0, memg_vma_mergeable(0, self->a));
	EXPECT_EQ(0, memg_vma_mergeable(0, self->b));
	EXPECT_EQ(0, memg_vma_mergeable(0, self->b + MEMG_PAGE));
	/* Another thread of the same process. */
	t.p = self->b;
	ASSERT_EQ(0, pthread_create(&th, NULL, thread_madvise, &t));
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_EQ(-EPERM, t.err);
	/* Unmarking is always fine. */
	EXPECT_EQ(0, MADV(self->b, SZ, MADV_UNMERGEABLE));
	VMGET(v);
	/* madvise is a VMM's default: counted apart from the violations. */
	EXPECT_EQ(4ULL, v.mem_ksm_madvise);
	EXPECT_EQ(0ULL, v.mem_ksm_denied);
	EXPECT_EQ(1U, v.memslots);

	/* A child process does not own the VM (it only holds its fds). */
	fflush(stdout);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(MADV(self->b, SZ, MADV_MERGEABLE) == 0 &&
		      memg_vma_mergeable(0, self->b) == 1 ? 0 : 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("a child of the VM's process could not madvise");
	VMGET(v);
	EXPECT_EQ(4ULL, v.mem_ksm_madvise);

	/* With its VM gone the process may merge again. */
	vm_destroy(&self->vm);
	EXPECT_EQ(0, MADV(self->b, SZ, MADV_MERGEABLE));
	EXPECT_EQ(1, memg_vma_mergeable(0, self->b));
	EXPECT_EQ(0, MADV(self->b, SZ, MADV_UNMERGEABLE));
}

TEST_F(ksm, allow_lets_madvise_through)
{
	struct kg_vm v;

	ASSERT_EQ(0, memg_vm(&self->g, &self->vm, P "allow", &self->id));
	ASSERT_EQ(0, vm_region(&self->vm, 0, 0, 0, SZ, self->a));
	EXPECT_EQ(0, MADV(self->a, SZ, MADV_MERGEABLE));
	EXPECT_EQ(1, memg_vma_mergeable(0, self->a));
	EXPECT_EQ(0, MADV(self->a, SZ, MADV_UNMERGEABLE));
	EXPECT_EQ(0, memg_vma_mergeable(0, self->a));
	VMGET(v);
	EXPECT_EQ(0ULL, v.mem_ksm_denied);
}

TEST_F(ksm, slot_over_mergeable_memory)
{
	struct kg_vm v;

	/* Marked before the VM exists; the VM gets deny from a pid binding. */
	ASSERT_EQ(0, MADV(self->a, SZ, MADV_MERGEABLE));
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL, getpid(), P "deny"));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm, NULL, &self->id));
	VMGET(v);
	EXPECT_STREQ(P "deny", v.policy);
	EXPECT_EQ(KVMGUARD_BOUND_PID, v.bound_by);

	EXPECT_EQ(-EPERM, vm_region(&self->vm, 0, 0, 0, SZ, self->a));
	EXPECT_EQ(-EINVAL, vm_region(&self->vm, 0, 0, 0, 0, NULL));
	/* Partly mergeable: the last page of the range. */
	ASSERT_EQ(0, MADV(self->a, SZ - MEMG_PAGE, MADV_UNMERGEABLE));
	EXPECT_EQ(-EPERM, vm_region(&self->vm, 0, 0, 0, SZ, self->a));
	/* Memory that is not marked is fine, and so is all of it once unmarked. */
	EXPECT_EQ(0, vm_region(&self->vm, 1, 0, MEMG_MIB, SZ, self->b));
	EXPECT_EQ(0, vm_region(&self->vm, 2, 0, 2 * MEMG_MIB, SZ - MEMG_PAGE, self->a));
	ASSERT_EQ(0, MADV(self->a, SZ, MADV_UNMERGEABLE));
	EXPECT_EQ(0, vm_region(&self->vm, 0, 0, 0, MEMG_PAGE, self->a + SZ - MEMG_PAGE));
	VMGET(v);
	EXPECT_EQ(2ULL, v.mem_ksm_denied);
	EXPECT_EQ(3U, v.memslots);
	EXPECT_EQ(2 * SZ, v.mem_bytes);
}

TEST_F(ksm, turning_deny_on_is_busy_while_mergeable)
{
	struct kg_policy p;
	struct kg_vm v;

	ASSERT_EQ(0, memg_new(&self->g, P "a", NULL, MEMG_KSM(KVMGUARD_KSM_ALLOW)));
	ASSERT_EQ(0, memg_new(&self->g, P "au", NULL, MEMG_KSM(KVMGUARD_KSM_DENY),
			      MEMG_MODE(KVMGUARD_MODE_AUDIT)));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm, P "a", &self->id));
	ASSERT_EQ(0, vm_region(&self->vm, 0, 0, 0, SZ, self->a));
	/* Mergeable memory outside the memslot is enough. */
	ASSERT_EQ(0, MADV(self->b, MEMG_PAGE, MADV_MERGEABLE));

	/* POLICY_SET of the rule, with another change in the same request. */
	self->g.ext_msg[0] = 0;
	EXPECT_EQ(-EBUSY, memg_set(&self->g, P "a", MEMG_KSM(KVMGUARD_KSM_DENY),
				   MEMG_MAX(MEMG_PAGE)));
	EXPECT_NE(0, self->g.ext_msg[0]) TH_LOG("EBUSY without an extack message");
	ASSERT_EQ(0, kg_policy_get(&self->g, P "a", &p));
	EXPECT_EQ(KVMGUARD_KSM_ALLOW, p.mem_ksm);
	EXPECT_EQ(KVMGUARD_MEM_UNLIMITED, p.mem_max);

	/* VM_SET to an enforcing deny. */
	EXPECT_EQ(-EBUSY, kg_vm_set(&self->g, self->id, P "deny"));
	VMGET(v);
	EXPECT_STREQ(P "a", v.policy);

	/* Audit is no obstacle; its switch to enforce is. */
	EXPECT_EQ(0, kg_vm_set(&self->g, self->id, P "au"));
	EXPECT_EQ(-EBUSY, kg_policy_set(&self->g, P "au", KVMGUARD_MODE_ENFORCE, NULL));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "au", &p));
	EXPECT_EQ(KVMGUARD_MODE_AUDIT, p.mode);

	/* POLICY_DEL whose re-resolution would land on deny. */
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL, getpid(), P "deny"));
	EXPECT_EQ(-EBUSY, kg_policy_del(&self->g, P "au"));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "au", &p));
	EXPECT_EQ(1U, p.vms);
	VMGET(v);
	EXPECT_STREQ(P "au", v.policy);
	EXPECT_EQ(KVMGUARD_BOUND_EXPLICIT, v.bound_by);

	/* Unmarked (MMF_VM_MERGEABLE stays on the mm): all of it works. */
	ASSERT_EQ(0, MADV(self->b, MEMG_PAGE, MADV_UNMERGEABLE));
	EXPECT_EQ(0, kg_policy_del(&self->g, P "au"));
	VMGET(v);
	EXPECT_STREQ(P "deny", v.policy);
	EXPECT_EQ(KVMGUARD_BOUND_PID, v.bound_by);
	EXPECT_EQ(0, kg_vm_set(&self->g, self->id, P "a"));
	EXPECT_EQ(0, memg_set(&self->g, P "a", MEMG_KSM(KVMGUARD_KSM_DENY)));
	EXPECT_EQ(-EPERM, MADV(self->b, MEMG_PAGE, MADV_MERGEABLE));
	VMGET(v);
	EXPECT_EQ(1ULL, v.mem_ksm_madvise);
	EXPECT_EQ(0ULL, v.mem_ksm_denied);
}

struct flapper {
	char *p;
	volatile bool stop;
	unsigned long marked, refused;
	int other;	/* unexpected errno */
};

/* Mark a page mergeable and unmark it, again and again. */
static void *flap(void *arg)
{
	struct flapper *f = arg;

	while (!f->stop) {
		int r = MADV(f->p, MEMG_PAGE, MADV_MERGEABLE);

		if (r == 0) {
			f->marked++;
			if (MADV(f->p, MEMG_PAGE, MADV_UNMERGEABLE))
				f->other = errno;
		} else if (r == -EPERM) {
			f->refused++;
		} else {
			f->other = -r;
		}
	}
	return NULL;
}

/*
 * For @secs seconds: turn KSM deny on (EBUSY while the page is marked) and
 * check that nothing is mergeable once it is on, then off again. Returns
 * how many turn-ons went through.
 */
static unsigned long race(struct __test_metadata *_metadata, FIXTURE_DATA(ksm) *self,
			  struct flapper *f, int secs, unsigned long *busy)
{
	uint64_t end = hcg_mono_ns() + secs * 1000000000ull;
	unsigned long on = 0;
	struct kg_policy p;
	struct kg_vm v;
	int mg[3];

	while (hcg_mono_ns() < end) {
		int r = memg_set(&self->g, P "race", MEMG_KSM(KVMGUARD_KSM_DENY));

		if (r == -EBUSY) {
			(*busy)++;
			continue;
		}
		EXPECT_EQ(0, r);
		if (r)
			break;
		on++;
		/* Deny is on: nothing of the process may be mergeable now. */
		mg[0] = memg_vma_mergeable(0, self->b);
		usleep(1000);
		mg[1] = memg_vma_mergeable(0, self->b);
		EXPECT_EQ(0, mg[0]);
		EXPECT_EQ(0, mg[1]);
		if (mg[0] || mg[1]) {
			usleep(100000);
			mg[2] = memg_vma_mergeable(0, self->b);
			kg_policy_get(&self->g, P "race", &p);
			VMGET(v);
			TH_LOG("turn-on %lu: mergeable %d, %d, after 100 ms %d; policy %s ksm %u; "
			       "madvise marked %lu, refused %lu",
			       on, mg[0], mg[1], mg[2], v.policy, p.mem_ksm, f->marked, f->refused);
			break;
		}
		ASSERT_EQ(0, memg_set(&self->g, P "race", MEMG_KSM(KVMGUARD_KSM_ALLOW)));
	}
	return on;
}

TEST_F_TIMEOUT(ksm, turning_on_races_with_madvise, 120)
{
	struct flapper f = { .p = self->b };
	unsigned long kept, attached, busy = 0;
	pthread_t th;
	struct kg_vm v;

	ASSERT_EQ(0, memg_new(&self->g, P "race", NULL, MEMG_KSM(KVMGUARD_KSM_ALLOW)));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm, P "race", &self->id));
	ASSERT_EQ(0, pthread_create(&th, NULL, flap, &f));
	/* With "deny" around, the module's memslot hook stays attached. */
	kept = race(_metadata, self, &f, 4, &busy);
	/*
	 * Alone with a memory rule, each turn-on also attaches the hook
	 * (slow under TCG: a long closed gate, a few turn-ons).
	 */
	EXPECT_EQ(0, kg_policy_del(&self->g, P "deny"));
	attached = race(_metadata, self, &f, 12, &busy);
	f.stop = true;
	pthread_join(th, NULL);
	TH_LOG("deny on %lu + %lu times, busy %lu; madvise marked %lu, refused %lu",
	       kept, attached, busy, f.marked, f.refused);
	EXPECT_EQ(0, f.other);
	EXPECT_LT(0UL, kept);
	EXPECT_LT(0UL, attached);
	EXPECT_LT(0UL, f.marked);
	/*
	 * Each refusal under deny is counted; one that met a turn-on still
	 * being checked (refused while the policy allowed it) is not.
	 */
	VMGET(v);
	TH_LOG("VM_MEM_KSM_MADVISE %llu", (unsigned long long)v.mem_ksm_madvise);
	EXPECT_GE(f.refused, v.mem_ksm_madvise);
	EXPECT_LT(0ULL, v.mem_ksm_madvise);
	EXPECT_EQ(0ULL, v.mem_ksm_denied);
}

/* 1 if PR_SET_MEMORY_MERGE exists here (a process without a VM). */
static int have_merge_prctl(void)
{
	if (prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0)) {
		if (errno == EINVAL)
			return 0;
		return -errno;
	}
	return prctl(PR_SET_MEMORY_MERGE, 0, 0, 0, 0) ? -errno : 1;
}

TEST_F(ksm, prctl_memory_merge)
{
	int have = have_merge_prctl();
	struct kg_vm v;

	if (have == 0)
		SKIP(return, "no PR_SET_MEMORY_MERGE here (EINVAL without any VM; before 6.4)");
	ASSERT_EQ(1, have);
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm, P "deny", &self->id));
	EXPECT_EQ(-1, prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(0, prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0));
	/* Turning it off is always fine. */
	EXPECT_EQ(0, prctl(PR_SET_MEMORY_MERGE, 0, 0, 0, 0));
	VMGET(v);
	EXPECT_EQ(1ULL, v.mem_ksm_denied);

	/* Set under allow, then deny for the VM: busy. */
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "allow"));
	ASSERT_EQ(0, prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0));
	EXPECT_EQ(-EBUSY, kg_vm_set(&self->g, self->id, P "deny"));
	ASSERT_EQ(0, prctl(PR_SET_MEMORY_MERGE, 0, 0, 0, 0));
	EXPECT_EQ(0, kg_vm_set(&self->g, self->id, P "deny"));
}

TEST_F(ksm, prctl_set_before_the_vm)
{
	int have = have_merge_prctl();
	char *c;
	struct kg_vm v;

	if (have == 0)
		SKIP(return, "no PR_SET_MEMORY_MERGE here (EINVAL without any VM; before 6.4)");
	ASSERT_EQ(1, have);
	ASSERT_EQ(0, prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0));
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL, getpid(), P "deny"));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm, NULL, &self->id));
	/* Every mapping made now is mergeable. */
	c = memg_anon(SZ);
	ASSERT_NE(NULL, c);
	EXPECT_EQ(-EPERM, vm_region(&self->vm, 0, 0, 0, SZ, c));
	VMGET(v);
	EXPECT_STREQ(P "deny", v.policy);
	EXPECT_EQ(1ULL, v.mem_ksm_denied);
	EXPECT_EQ(0U, v.memslots);
	ASSERT_EQ(0, prctl(PR_SET_MEMORY_MERGE, 0, 0, 0, 0));
	EXPECT_EQ(0, vm_region(&self->vm, 0, 0, 0, SZ, c));
	munmap(c, SZ);
}

#define KSM_PAGES 512	/* 2 MiB of guest memory per VM */

/*
 * A VM under policy @arg with KSM_PAGES identical guest pages; reports its
 * VM id, the memslot's result and madvise(MADV_MERGEABLE)'s, then waits for
 * the parent to hang up.
 */
static int ksm_vm(int in, int out, void *arg)
{
	struct gnl g;
	struct vm vm;
	uint64_t id;
	int32_t res[2];
	char *mem, c;

	if (kg_open(&g) || memg_vm(&g, &vm, arg, &id))
		return 2;
	mem = memg_anon(KSM_PAGES * MEMG_PAGE);
	if (!mem)
		return 3;
	for (int i = 0; i < KSM_PAGES; i++) {
		memset(mem + i * MEMG_PAGE, 0x6b, MEMG_PAGE);
		memcpy(mem + i * MEMG_PAGE, "kvmguard ksm page", 17);
	}
	res[0] = vm_region(&vm, 0, 0, 0, KSM_PAGES * MEMG_PAGE, mem);
	res[1] = MADV(mem, KSM_PAGES * MEMG_PAGE, MADV_MERGEABLE);
	if (memg_write(out, &id, sizeof(id)) || memg_write(out, res, sizeof(res)))
		return 4;
	while (read(in, &c, 1) > 0)
		;
	vm_destroy(&vm);
	gnl_close(&g);
	return 0;
}

TEST_F_TIMEOUT(ksm, ksmd_merges_allowed_vms_only, 300)
{
	const char *pols[3] = { P "deny", P "allow", P "allow" };
	uint64_t ids[3], t0, deadline, scans0, scans;
	long merged[3] = { 0 };
	int32_t res[2];
	struct kg_vm v;

	if (memg_ksm_merging(getpid()) < 0)
		SKIP(return, "no /proc/PID/ksm_merging_pages on this kernel");
	if (memg_get_ulong(KSM "run", &self->run) ||
	    memg_get_ulong(KSM "sleep_millisecs", &self->sleep_ms) ||
	    memg_get_ulong(KSM "pages_to_scan", &self->pages))
		SKIP(return, "no KSM in sysfs (" KSM ")");
	self->ksm_saved = true;

	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(0, memg_child_start(&self->kids[i], ksm_vm, (void *)pols[i]));
		ASSERT_EQ(0, memg_read(self->kids[i].from, &ids[i], sizeof(ids[i])));
		ASSERT_EQ(0, memg_read(self->kids[i].from, res, sizeof(res)));
		EXPECT_EQ(0, res[0]);
		EXPECT_EQ(i ? 0 : -EPERM, res[1]) TH_LOG("madvise under %s", pols[i]);
	}
	ASSERT_EQ(0, memg_put_ulong(KSM "run", 0));
	ASSERT_EQ(0, memg_put_ulong(KSM "pages_to_scan", 10000));
	ASSERT_EQ(0, memg_put_ulong(KSM "sleep_millisecs", 0));
	ASSERT_EQ(0, memg_put_ulong(KSM "run", 1));

	/* A correctness test: the deadline is only there to end a failure. */
	t0 = hcg_mono_ns();
	deadline = t0 + 200 * 1000000000ull;
	while (hcg_mono_ns() < deadline && (merged[1] <= 0 || merged[2] <= 0)) {
		usleep(200000);
		for (int i = 0; i < 3; i++)
			merged[i] = memg_ksm_merging(self->kids[i].pid);
		ASSERT_EQ(0, merged[0]) TH_LOG("the deny VM's process has merged pages");
	}
	TH_LOG("merged pages after %.1f s: deny %ld, allow %ld and %ld",
	       (hcg_mono_ns() - t0) / 1e9, merged[0], merged[1], merged[2]);
	EXPECT_LT(0, merged[1]);
	EXPECT_LT(0, merged[2]);

	/* Two more full scans of everything: still nothing for deny. */
	ASSERT_EQ(0, memg_get_ulong(KSM "full_scans", &scans0));
	do {
		usleep(200000);
		ASSERT_EQ(0, memg_get_ulong(KSM "full_scans", &scans));
	} while (scans < scans0 + 2 && hcg_mono_ns() < deadline);
	EXPECT_LE(scans0 + 2, scans) TH_LOG("ksmd did not finish two more scans");
	TH_LOG("full scans %lu -> %lu after %.1f s", scans0, scans, (hcg_mono_ns() - t0) / 1e9);
	EXPECT_EQ(0, memg_ksm_merging(self->kids[0].pid));

	ASSERT_EQ(0, memg_vm_get(&self->g, ids[0], &v));
	EXPECT_EQ(1ULL, v.mem_ksm_madvise);
	ASSERT_EQ(0, memg_vm_get(&self->g, ids[1], &v));
	EXPECT_EQ(0ULL, v.mem_ksm_madvise);
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
