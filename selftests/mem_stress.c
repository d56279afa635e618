// SPDX-License-Identifier: GPL-2.0
/*
 * mem_stress: 8 processes with 4 VMs each create, delete, move and re-flag
 * memslots (private or on one memfd they all share, some dirty-logged) as
 * fast as they can, while this process rewrites the three policies they use
 * (cap, dirty-log budget, shared rule and domain, KSM rule, mode) and a
 * second process moves VMs between policies with VM_SET and dumps VMs and
 * policies. Every memslot request must succeed or fail with the errno of a
 * memory rule (EDQUOT, EPERM, EXDEV); deletes always succeed. Afterwards
 * each VM's VM_MEMSLOTS, VM_MEM_BYTES, VM_MEM_DIRTY_BYTES and
 * VM_MEM_SHARED_BYTES equal what its process did to KVM, every memslot
 * that process believes in can be deleted and no other, no VM outlives its
 * process, no shared-backing record outlives its memslot or VM (a fresh VM
 * of a new domain may use the memfd), and the kernel log has no oops,
 * BUG, WARNING or lockdep report.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "hcg.h"
#include "kg.h"
#include "memg.h"
#include "vm.h"

#define P "kgmx-"
#define NPROC 8
#define NVMS 4
#define NSLOT 8
#define NPOL 3
#define SLOT_MAX (256 * MEMG_KIB)
#define RUN_SECONDS 12

static const char *const pols[NPOL] = { P "s0", P "s1", P "s2" };

struct report {
	uint64_t id;
	uint32_t slots;
	uint64_t bytes, dirty, shared;
};

struct slot {
	bool on;
	bool dirty;
	bool shared;
	uint64_t size;
	uint64_t gpa;
	char *hva;
};

struct worker {
	int n;
	int memfd;
};

static uint32_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (uint32_t)(*s >> 11);
}

static bool stop_asked(int in)
{
	struct pollfd p = { .fd = in, .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

static bool rule_errno(int r)
{
	return r == -EDQUOT || r == -EPERM || r == -EXDEV;
}

/* One step on slot @s of VM @vm; false on a result no rule explains. */
static bool step(int w, int vi, struct vm *vm, int s, struct slot *sl, char *priv,
		 char *shared, uint64_t *seed)
{
	static const uint64_t sizes[] = { MEMG_PAGE, 64 * MEMG_KIB, SLOT_MAX };
	uint32_t op = rnd(seed) % 10;
	const char *what;
	int r;

	if (!sl->on) {
		sl->size = sizes[rnd(seed) % 3];
		sl->shared = rnd(seed) % 4 == 0;
		sl->dirty = rnd(seed) % 3 == 0;
		sl->gpa = s * MEMG_MIB;
		sl->hva = (sl->shared ? shared : priv) + s * SLOT_MAX;
		r = vm_region(vm, s, sl->dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0, sl->gpa,
			      sl->size, sl->hva);
		what = "create";
		sl->on = r == 0;
		if (r == 0 || rule_errno(r))
			return true;
	} else if (op < 4) {
		r = vm_region(vm, s, 0, 0, 0, NULL);
		what = "delete";
		if (r == 0) {
			sl->on = false;
			return true;
		}
	} else if (op < 7) {
		bool dirty = !sl->dirty;

		r = vm_region(vm, s, dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0, sl->gpa,
			      sl->size, sl->hva);
		what = "flags";
		if (r == 0)
			sl->dirty = dirty;
		if (r == 0 || r == -EDQUOT)
			return true;
	} else {
		uint64_t gpa = sl->gpa ^ (MEMG_MIB / 2);

		r = vm_region(vm, s, sl->dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0, gpa,
			      sl->size, sl->hva);
		what = "move";
		if (r == 0)
			sl->gpa = gpa;
		if (r == 0 || r == -EDQUOT)
			return true;
	}
	printf("# worker %d VM %d slot %d: %s: %s\n", w, vi, s, what, strerror(-r));
	return false;
}

static void report_of(uint64_t id, struct slot *sl, struct report *rep)
{
	memset(rep, 0, sizeof(*rep));
	rep->id = id;
	for (int s = 0; s < NSLOT; s++) {
		if (!sl[s].on)
			continue;
		rep->slots++;
		rep->bytes += sl[s].size;
		rep->dirty += sl[s].dirty ? sl[s].size : 0;
		rep->shared += sl[s].shared ? sl[s].size : 0;
	}
}

static int worker(int in, int out, void *arg)
{
	struct worker *w = arg;
	static struct vm vms[NVMS];
	static struct slot slots[NVMS][NSLOT];
	uint64_t ids[NVMS], seed = 0x9e3779b97f4a7c15ull * (w->n + 1);
	struct report rep;
	struct gnl g;
	char *priv, *shared, c;
	int bad = 0;

	priv = memg_anon(NSLOT * SLOT_MAX);
	shared = memg_map_fd(w->memfd, NSLOT * SLOT_MAX, MAP_SHARED, 0);
	if (!priv || !shared || kg_open(&g))
		return 10;
	for (int i = 0; i < NVMS; i++)
		if (memg_vm(&g, &vms[i], pols[(w->n + i) % NPOL], &ids[i]))
			return 11;
	if (memg_write(out, ids, sizeof(ids)))
		return 12;

	while (!stop_asked(in)) {
		int i = rnd(&seed) % NVMS, s = rnd(&seed) % NSLOT;

		if (!step(w->n, i, &vms[i], s, &slots[i][s], priv, shared, &seed))
			bad++;
	}
	if (memg_read(in, &c, 1))
		return 13;
	for (int i = 0; i < NVMS; i++) {
		report_of(ids[i], slots[i], &rep);
		if (memg_write(out, &rep, sizeof(rep)))
			return 14;
	}
	/* After the parent checked: delete what we believe in, and check
	 * that KVM has nothing else; the last VM goes with its memslots. */
	if (memg_read(in, &c, 1))
		return 15;
	for (int i = 0; i < NVMS - 1; i++) {
		for (int s = 0; s < NSLOT; s++) {
			int r = vm_region(&vms[i], s, 0, 0, 0, NULL);

			if (r != (slots[i][s].on ? 0 : -EINVAL)) {
				printf("# worker %d VM %d: deleting slot %d (%s): %s\n",
				       w->n, i, s, slots[i][s].on ? "on" : "off", strerror(-r));
				bad++;
			}
		}
	}
	for (int i = 0; i < NVMS; i++)
		vm_destroy(&vms[i]);
	gnl_close(&g);
	return bad ? 1 : 0;
}

/* The second flipper: VM_SET of random VMs, dumps. */
static int flipper(int in, int out, void *arg)
{
	const uint64_t *ids = arg;
	uint64_t seed = 12345;
	struct kg_policy *pp;
	struct kg_vm *vv;
	struct gnl g;
	int n, bad = 0;

	(void)out;
	if (kg_open(&g))
		return 10;
	while (!stop_asked(in)) {
		uint64_t id = ids[rnd(&seed) % (NPROC * NVMS)];
		int r = kg_vm_set(&g, id, pols[rnd(&seed) % NPOL]);

		if (r) {
			printf("# flipper: VM_SET %llu: %s\n", (unsigned long long)id,
			       strerror(-r));
			bad++;
		}
		if (rnd(&seed) % 8 == 0) {
			if (kg_vm_dump(&g, &vv, &n) || kg_policy_dump(&g, &pp, &n)) {
				printf("# flipper: dump failed\n");
				bad++;
			} else {
				free(pp);
			}
			free(vv);
		}
	}
	gnl_close(&g);
	return bad ? 1 : 0;
}

FIXTURE(st) {
	struct gnl g;
	struct hcg_klog klog;
	struct memg_child w[NPROC];
	struct memg_child flip;
	int memfd;
	struct vm vm;
};

FIXTURE_SETUP(st)
{
	self->memfd = -1;
	self->vm.fd = -1;
	self->klog.fd = -1;
	self->flip.pid = -1;
	self->flip.to = self->flip.from = -1;
	for (int i = 0; i < NPROC; i++) {
		self->w[i].pid = -1;
		self->w[i].to = self->w[i].from = -1;
	}
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
	ASSERT_EQ(0, hcg_klog_open(&self->klog));
	self->memfd = memg_memfd(NSLOT * SLOT_MAX, 0);
	ASSERT_LE(0, self->memfd);
	ASSERT_EQ(0, memg_new(&self->g, pols[0], "a", MEMG_MAX(MEMG_MIB),
			      MEMG_SHARED(KVMGUARD_MEM_SHARED_DOMAIN)));
	ASSERT_EQ(0, memg_new(&self->g, pols[1], "b", MEMG_DIRTY(256 * MEMG_KIB),
			      MEMG_SHARED(KVMGUARD_MEM_SHARED_DENY)));
	ASSERT_EQ(0, memg_new(&self->g, pols[2], "a", MEMG_MAX(4 * MEMG_MIB),
			      MEMG_DIRTY(0), MEMG_SHARED(KVMGUARD_MEM_SHARED_ALLOW)));
}

FIXTURE_TEARDOWN(st)
{
	memg_child_end(&self->flip);
	for (int i = 0; i < NPROC; i++)
		memg_child_end(&self->w[i]);
	if (self->vm.fd >= 0)
		vm_destroy(&self->vm);
	if (self->memfd >= 0)
		close(self->memfd);
	hcg_klog_close(&self->klog);
	kg_cleanup(&self->g, P);
	gnl_close(&self->g);
}

/* One random POLICY_SET of one of the policies. */
static int flip_policy(struct gnl *g, uint64_t *seed)
{
	static const uint64_t caps[] = {
		KVMGUARD_MEM_UNLIMITED, 0, 512 * MEMG_KIB, 2 * MEMG_MIB,
	};
	static const char *const domains[] = { "a", "b", "" };
	const char *name = pols[rnd(seed) % NPOL];

	switch (rnd(seed) % 6) {
	case 0:
		return memg_set(g, name, MEMG_MAX(caps[rnd(seed) % 4]));
	case 1:
		return memg_set(g, name, MEMG_DIRTY(caps[rnd(seed) % 4]));
	case 2:
		return memg_set(g, name, MEMG_SHARED(rnd(seed) % 3));
	case 3:
		return kg_policy_set(g, name, -1, domains[rnd(seed) % 3]);
	case 4:
		return memg_set(g, name, MEMG_KSM(rnd(seed) % 2));
	default:
		return memg_set(g, name, MEMG_MODE(rnd(seed) % 2));
	}
}

TEST_F_TIMEOUT(st, slots_and_policies_at_once, 240)
{
	struct worker args[NPROC];
	uint64_t ids[NPROC * NVMS], seed = 42, end;
	struct report rep;
	int flips = 0, bad_flips = 0;
	char *m;
	struct kg_vm v;

	for (int i = 0; i < NPROC; i++) {
		args[i] = (struct worker){ .n = i, .memfd = self->memfd };
		ASSERT_EQ(0, memg_child_start(&self->w[i], worker, &args[i]));
	}
	for (int i = 0; i < NPROC; i++) {
		ASSERT_EQ(0, memg_read(self->w[i].from, &ids[i * NVMS], NVMS * sizeof(ids[0])))
			TH_LOG("worker %d did not start", i);
	}
	ASSERT_EQ(0, memg_child_start(&self->flip, flipper, ids));

	end = hcg_mono_ns() + RUN_SECONDS * 1000000000ull;
	while (hcg_mono_ns() < end) {
		int r = flip_policy(&self->g, &seed);

		flips++;
		if (r) {
			bad_flips++;
			printf("# POLICY_SET: %s\n", strerror(-r));
		}
		usleep(2000);
	}
	EXPECT_EQ(0, bad_flips);
	TH_LOG("%d policy edits", flips);
	EXPECT_EQ(0, memg_write(self->flip.to, "s", 1));
	EXPECT_EQ(0, memg_child_end(&self->flip)) TH_LOG("VM_SET or a dump failed");

	for (int i = 0; i < NPROC; i++) {
		ASSERT_EQ(0, memg_write(self->w[i].to, "s", 1));
	}
	for (int i = 0; i < NPROC; i++) {
		for (int j = 0; j < NVMS; j++) {
			ASSERT_EQ(0, memg_read(self->w[i].from, &rep, sizeof(rep)));
			ASSERT_EQ(0, memg_vm_get(&self->g, rep.id, &v));
			EXPECT_EQ(rep.slots, v.memslots) TH_LOG("worker %d VM %d", i, j);
			EXPECT_EQ(rep.bytes, v.mem_bytes) TH_LOG("worker %d VM %d", i, j);
			EXPECT_EQ(rep.dirty, v.mem_dirty_bytes) TH_LOG("worker %d VM %d", i, j);
			EXPECT_EQ(rep.shared, v.mem_shared_bytes) TH_LOG("worker %d VM %d", i, j);
		}
	}
	for (int i = 0; i < NPROC; i++) {
		ASSERT_EQ(0, memg_write(self->w[i].to, "d", 1));
	}
	for (int i = 0; i < NPROC; i++) {
		EXPECT_EQ(0, memg_child_end(&self->w[i])) TH_LOG("worker %d", i);
	}
	for (int i = 0; i < NPROC * NVMS; i++) {
		EXPECT_EQ(-ENOENT, kg_vm_get(&self->g, ids[i], &v));
	}

	/* No record of the workers' VMs is left: a new domain may share. */
	ASSERT_EQ(0, memg_new(&self->g, P "fresh", "fresh",
			      MEMG_SHARED(KVMGUARD_MEM_SHARED_DOMAIN)));
	m = memg_map_fd(self->memfd, NSLOT * SLOT_MAX, MAP_SHARED, 0);
	ASSERT_NE(NULL, m);
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm, P "fresh", &ids[0]));
	EXPECT_EQ(0, vm_region(&self->vm, 0, 0, 0, NSLOT * SLOT_MAX, m));

	EXPECT_EQ(0, hcg_klog_problems(&self->klog));
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
