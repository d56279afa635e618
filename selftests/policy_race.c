// SPDX-License-Identifier: GPL-2.0
/*
 * policy_race: a VM created while its policy is unbound and deleted never
 * ends up on the deleted policy (whose hooks would be gone).
 *
 * The creation hook resolves a new VM's policy from the bindings, then
 * puts the VM in the registry; a policy deletion re-resolves the VMs in the
 * registry. Two processes create VMs without pause while the test, round
 * after round, binds the default to a fresh policy, unbinds it and deletes
 * it. Thousands of cgroup bindings that match no creator make the walk of
 * the bindings (the default one comes first) long enough for a deletion to
 * fall between a creation's resolving and its registering. After every
 * round, no VM may name a policy that no longer exists.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "kg.h"
#include "vm.h"

#define FILLERS		3000	/* cgroup bindings that match no creator */
#define CREATORS	2
#define KEEP		16	/* VMs each creator keeps alive */
#define SECONDS		40

static void creator(void)
{
	static struct vm vms[KEEP];
	unsigned int i;

	for (i = 0;; i++) {
		struct vm *vm = &vms[i % KEEP];

		if (i >= KEEP)
			vm_destroy(vm);
		if (vm_create(vm))
			_exit(1);
	}
}

static bool name_alive(const struct kg_policy *p, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(p[i].name, name))
			return true;
	return false;
}

/* The first VM that names a policy that does not exist; 0 if none. */
static uint64_t orphan(struct gnl *g, char *name, size_t size)
{
	struct kg_policy *p = NULL;
	struct kg_vm *v = NULL;
	uint64_t id = 0;
	int np, nv;

	if (kg_vm_dump(g, &v, &nv) || kg_policy_dump(g, &p, &np))
		goto out;
	for (int i = 0; i < nv && !id; i++)
		if (v[i].has_policy && !strncmp(v[i].policy, "kgq-", 4) &&
		    !name_alive(p, np, v[i].policy)) {
			id = v[i].id;
			snprintf(name, size, "%s", v[i].policy);
		}
out:
	free(p);
	free(v);
	return id;
}

FIXTURE(race) {};
FIXTURE_SETUP(race) {}
FIXTURE_TEARDOWN(race) {}

TEST_F_TIMEOUT(race, resolve_vs_delete, 240)
{
	struct kg_bind *saved = NULL;
	pid_t kids[CREATORS];
	int nsaved = 0, err, round;
	char name[32], gone[KVMGUARD_NAME_MAX + 1];
	struct gnl g;
	time_t end;
	uint64_t id = 0;

	ASSERT_EQ(0, kg_open(&g));
	kg_cleanup(&g, "kgq-");
	/* The default binding is the test's for a while: keep the admin's. */
	ASSERT_EQ(0, kg_bind_dump(&g, &saved, &nsaved));
	for (int i = 0; i < nsaved; i++)
		if (saved[i].type == KVMGUARD_BIND_DEFAULT)
			ASSERT_EQ(0, kg_bind_del(&g, KVMGUARD_BIND_DEFAULT, NULL, 0));
	ASSERT_EQ(0, kg_policy_new(&g, "kgq-fill", -1, NULL));
	for (int i = 0; i < FILLERS; i++) {
		char cg[64];

		snprintf(cg, sizeof(cg), "/kvmguard-race/no-such-%04d", i);
		ASSERT_EQ(0, kg_bind_new(&g, KVMGUARD_BIND_CGROUP, cg, 0, "kgq-fill"));
	}

	for (int i = 0; i < CREATORS; i++) {
		kids[i] = fork();
		ASSERT_LE(0, kids[i]);
		if (!kids[i])
			creator();
	}

	end = time(NULL) + SECONDS;
	for (round = 0; time(NULL) < end && !id; round++) {
		snprintf(name, sizeof(name), "kgq-%d", round);
		err = kg_policy_new(&g, name, -1, NULL);
		if (!err)
			err = kg_bind_new(&g, KVMGUARD_BIND_DEFAULT, NULL, 0, name);
		if (!err) {
			usleep(1000);
			err = kg_bind_del(&g, KVMGUARD_BIND_DEFAULT, NULL, 0);
		}
		if (!err)
			err = kg_policy_del(&g, name);
		EXPECT_EQ(0, err) TH_LOG("round %d: %s", round, strerror(-err));
		if (err)
			break;
		id = orphan(&g, gone, sizeof(gone));
	}
	TH_LOG("%d rounds", round);
	EXPECT_EQ(0ULL, (unsigned long long)id) TH_LOG("VM %llu is on policy %s, deleted",
				(unsigned long long)id, gone);

	for (int i = 0; i < CREATORS; i++) {
		int status;

		kill(kids[i], SIGKILL);
		waitpid(kids[i], &status, 0);
	}
	kg_cleanup(&g, "kgq-");
	for (int i = 0; i < nsaved; i++)
		if (saved[i].type == KVMGUARD_BIND_DEFAULT)
			EXPECT_EQ(0, kg_bind_new(&g, KVMGUARD_BIND_DEFAULT, NULL, 0,
						 saved[i].policy));
	free(saved);
	gnl_close(&g);
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
