// SPDX-License-Identifier: GPL-2.0
/*
 * vm_lifecycle: create/destroy 1 VM, 50 VMs, and VMs from 4 processes at
 * once. After each phase the VM dump lists exactly the VMs alive (the ones
 * there before plus ours), by strictly increasing id, each once; new ids
 * are larger than any id seen before (never reused after a destroy).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "kg.h"
#include "vm.h"

#define NVMS 50
#define NPROCS 4
#define ITERS 8

FIXTURE(lc) {
	struct gnl g;
	struct kg_vm *base;	/* VMs alive before the test */
	int nbase;
	uint64_t max_seen;
};

FIXTURE_SETUP(lc)
{
	ASSERT_EQ(0, kg_open(&self->g));
	ASSERT_EQ(0, kg_vm_dump(&self->g, &self->base, &self->nbase));
	for (int i = 0; i < self->nbase; i++)
		if (self->base[i].id > self->max_seen)
			self->max_seen = self->base[i].id;
}

FIXTURE_TEARDOWN(lc)
{
	free(self->base);
	gnl_close(&self->g);
}

static bool in(const uint64_t *ids, int n, uint64_t id)
{
	for (int i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/*
 * The dump must be exactly base + @ours (ids), sorted and unique. Returns
 * a description of the first problem, or NULL.
 */
static const char *check_dump(struct gnl *g, const struct kg_vm *base, int nbase,
			      const uint64_t *ours, int nours, char *why, size_t wsz)
{
	struct kg_vm *all;
	int n, err, matched = 0;

	err = kg_vm_dump(g, &all, &n);
	if (err) {
		snprintf(why, wsz, "dump: %s", strerror(-err));
		return why;
	}
	why[0] = 0;
	for (int i = 0; i < n && !why[0]; i++) {
		bool is_base = false;

		if (i && all[i].id <= all[i - 1].id)
			snprintf(why, wsz, "id %llu after %llu",
				 (unsigned long long)all[i].id,
				 (unsigned long long)all[i - 1].id);
		for (int k = 0; k < nbase; k++)
			is_base |= base[k].id == all[i].id;
		if (is_base)
			continue;
		if (!in(ours, nours, all[i].id))
			snprintf(why, wsz, "unexpected VM %llu (pid %u)",
				 (unsigned long long)all[i].id, all[i].pid);
		else
			matched++;
	}
	if (!why[0] && matched != nours)
		snprintf(why, wsz, "%d of our %d VMs listed", matched, nours);
	if (!why[0] && n != nbase + nours)
		snprintf(why, wsz, "%d VMs listed, expected %d", n, nbase + nours);
	free(all);
	return why[0] ? why : NULL;
}

#define EXPECT_DUMP(ours, nours) do {					\
	char __why[160];						\
	const char *__w = check_dump(&self->g, self->base, self->nbase,	\
				     (ours), (nours), __why, sizeof(__why)); \
	EXPECT_EQ(NULL, __w) TH_LOG("%s", __w);				\
} while (0)

/* Create a VM and learn its id (the one new VM of ours). */
static int create(struct gnl *g, struct vm *vm, uint64_t *max_seen, uint64_t *id)
{
	struct kg_vm v;
	int err = vm_create(vm);

	if (err)
		return err;
	err = kg_find_new_vm(g, getpid(), *max_seen, &v);
	if (err)
		return err;
	*id = v.id;
	*max_seen = v.id;
	return 0;
}

TEST_F(lc, one)
{
	struct vm vm;
	uint64_t id;

	ASSERT_EQ(0, create(&self->g, &vm, &self->max_seen, &id));
	EXPECT_DUMP(&id, 1);
	vm_destroy(&vm);
	EXPECT_DUMP(NULL, 0);
}

TEST_F_TIMEOUT(lc, fifty, 300)
{
	static struct vm vms[NVMS];
	uint64_t ids[NVMS], alive[NVMS], prev;
	int nalive = 0;

	for (int i = 0; i < NVMS; i++) {
		ASSERT_EQ(0, create(&self->g, &vms[i], &self->max_seen, &ids[i]))
			TH_LOG("VM %d", i);
		if (i) {
			EXPECT_LT(ids[i - 1], ids[i]);
		}
	}
	EXPECT_DUMP(ids, NVMS);

	/* Destroy every other VM. */
	for (int i = 0; i < NVMS; i++) {
		if (i % 2)
			vm_destroy(&vms[i]);
		else
			alive[nalive++] = ids[i];
	}
	EXPECT_DUMP(alive, nalive);

	/* New VMs get new ids, above every id handed out before. */
	prev = ids[NVMS - 1];
	for (int i = 1; i < NVMS; i += 2) {
		uint64_t id;

		ASSERT_EQ(0, create(&self->g, &vms[i], &self->max_seen, &id));
		EXPECT_LT(prev, id);
		EXPECT_FALSE(in(ids, NVMS, id));
		prev = id;
		alive[nalive++] = id;
		if (nalive >= NVMS / 2 + 5)
			break;
	}
	EXPECT_DUMP(alive, nalive);
	for (int i = 0; i < NVMS; i++)
		if (vms[i].fd >= 0)
			vm_destroy(&vms[i]);
	EXPECT_DUMP(NULL, 0);
}

/* Child: ITERS rounds of create 2 / destroy 2, then keep 2 alive until
 * told to go. Reports every id it saw on @out, then 0 after the last. */
static int churn(int out, int in_fd, uint64_t max_seen)
{
	struct gnl g;
	struct vm a, b;
	uint64_t ida, idb, zero = 0;
	char c;

	if (kg_open(&g))
		return 10;
	for (int i = 0; i <= ITERS; i++) {
		if (create(&g, &a, &max_seen, &ida) || create(&g, &b, &max_seen, &idb))
			return 11;
		if (write(out, &ida, 8) != 8 || write(out, &idb, 8) != 8)
			return 12;
		if (i == ITERS)
			break;
		vm_destroy(&a);
		vm_destroy(&b);
	}
	if (write(out, &zero, 8) != 8 || read(in_fd, &c, 1) != 1)
		return 13;
	vm_destroy(&a);
	vm_destroy(&b);
	return 0;
}

TEST_F_TIMEOUT(lc, four_processes, 300)
{
	static uint64_t ids[NPROCS * (ITERS + 1) * 2];
	uint64_t alive[NPROCS * 2];
	int out[2], go[2], nids = 0, done = 0, dumps = 0;
	pid_t pids[NPROCS];

	ASSERT_EQ(0, pipe(out));
	ASSERT_EQ(0, pipe(go));
	fflush(stdout);
	for (int p = 0; p < NPROCS; p++) {
		pids[p] = fork();
		ASSERT_LE(0, pids[p]);
		if (pids[p] == 0) {
			close(out[0]);
			close(go[1]);
			_exit(churn(out[1], go[0], self->max_seen));
		}
	}
	close(out[1]);
	close(go[0]);
	/* While they churn, every dump we take must be sorted and unique. */
	while (done < NPROCS) {
		struct kg_vm *all;
		uint64_t id;
		int n;

		if (read(out[0], &id, 8) != 8)
			break;
		if (!id) {
			done++;
			continue;
		}
		ASSERT_GT(sizeof(ids) / sizeof(ids[0]), (size_t)nids);
		EXPECT_LT(self->max_seen, id) TH_LOG("id %llu reused or stale",
						     (unsigned long long)id);
		EXPECT_FALSE(in(ids, nids, id)) TH_LOG("id %llu twice", (unsigned long long)id);
		ids[nids++] = id;
		if (nids % 4)
			continue;
		ASSERT_EQ(0, kg_vm_dump(&self->g, &all, &n));
		dumps++;
		for (int i = 1; i < n; i++) {
			EXPECT_LT(all[i - 1].id, all[i].id);
		}
		free(all);
	}
	EXPECT_EQ(NPROCS, done);
	EXPECT_EQ(NPROCS * (ITERS + 1) * 2, nids);

	/* The last 2 of each child are alive; all others are gone. */
	int nalive = 0;

	for (int i = 0; i < nids; i++) {
		struct kg_vm v;

		if (kg_vm_get(&self->g, ids[i], &v) == 0) {
			ASSERT_GT(NPROCS * 2, nalive);
			alive[nalive++] = ids[i];
			EXPECT_TRUE(v.pid == (uint32_t)pids[0] || v.pid == (uint32_t)pids[1] ||
				    v.pid == (uint32_t)pids[2] || v.pid == (uint32_t)pids[3]);
		}
	}
	EXPECT_EQ(NPROCS * 2, nalive);
	EXPECT_DUMP(alive, nalive);

	for (int p = 0; p < NPROCS; p++)
		ASSERT_EQ(1, write(go[1], "g", 1));
	for (int p = 0; p < NPROCS; p++) {
		int status;

		ASSERT_EQ(pids[p], waitpid(pids[p], &status, 0));
		EXPECT_EQ(0, status) TH_LOG("child %d: status %#x", p, status);
	}
	EXPECT_DUMP(NULL, 0);
	TH_LOG("%d ids, %d concurrent dumps", nids, dumps);
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
