// SPDX-License-Identifier: GPL-2.0
/*
 * vm_discovery: VMs that exist when the module is loaded are found and
 * flagged KVMGUARD_VM_F_DISCOVERED, with the pid/comm/cgroup of their creator
 * (the owner of their mm), vCPU and memslot counts, the load time as created_ns;
 * that includes a VM kept alive only by a vCPU fd. rmmod works while a
 * guest runs, the guest keeps making progress with the module unloaded and
 * after it is loaded again, and it is discovered again. A VM whose file
 * only another process holds is named after its creator. VMs created after
 * the load are not flagged. A VM whose message does not fit the first part
 * of a dump (cgroup path near the limit) does not end the dump. After a
 * reload and `kvmguard apply` of the earlier `kvmguard dump`, a running VM
 * has its binding's policy again. The module is left loaded.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <signal.h>

#include "kselftest_harness.h"
#include "kg.h"
#include "kid.h"
#include "vm.h"

#define CG_D "/kvmguard-disc"

FIXTURE(disc) {
	struct gnl g;
	struct kid kid;
	char cg[4200];
};

FIXTURE_SETUP(disc)
{
	self->g.fd = -1;
	ASSERT_EQ(0, kg_ensure_loaded());
	ASSERT_EQ(0, kg_cg_self(self->cg, sizeof(self->cg)));
	ASSERT_EQ(0, prctl(PR_SET_NAME, "kg-discovery"));
}

FIXTURE_TEARDOWN(disc)
{
	kid_stop(&self->kid);
	if (kg_ensure_loaded())
		TH_LOG("could not load the module again");
	gnl_close(&self->g);
	if (!kg_open(&self->g)) {	/* what reload_apply_dump may leave */
		kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, CG_D, 0);
		kg_cleanup(&self->g, "kgd-");
		gnl_close(&self->g);
	}
	kg_cg_rmdir(CG_D);
}

static int reload(struct gnl *g, uint64_t *t0, uint64_t *t1)
{
	int err;

	gnl_close(g);
	err = kg_rmmod();
	if (err)
		return err;
	if (kg_module_loaded())
		return -EBUSY;
	if (t0)
		*t0 = kg_now_ns();
	err = kg_insmod();
	if (t1)
		*t1 = kg_now_ns();
	return err ? err : kg_open(g);
}

/* After destroying a VM: our VMs listed now, and (diagnostics) after how
 * long the registry dropped them, if it does so late. */
static int vms_left_after_destroy(struct gnl *g, pid_t pid)
{
	struct kg_vm *v;
	int n = -1, first = -1;

	for (int i = 0; i < 30; i++) {
		if (kg_vms_of_pid(g, pid, &v, &n))
			n = -1;
		if (first < 0)
			first = n;
		for (int k = 0; k < n && i == 0; k++)
			printf("# left: VM %llu flags %u vcpus %u memslots %u comm %s\n",
			       (unsigned long long)v[k].id, v[k].flags, v[k].vcpus,
			       v[k].memslots, v[k].comm);
		free(v);
		if (n == 0) {
			if (i)
				printf("# ... and gone after %d ms\n", i * 100);
			break;
		}
		usleep(100000);
	}
	if (n)
		printf("# ... still listed after 3 s\n");
	return first;
}

static int find_vm(struct gnl *g, uint32_t pid, int index, struct kg_vm *out)
{
	struct kg_vm *v;
	int n, err = kg_vms_of_pid(g, pid, &v, &n);

	if (!err && index >= n)
		err = -ENOENT;
	if (!err)
		*out = v[index];
	free(v);
	return err;
}

TEST_F_TIMEOUT(disc, existing_vms, 120)
{
	struct vm a, c;
	struct kg_vm v, *mine;
	uint64_t t0, t1;
	int n;

	ASSERT_EQ(0, kg_rmmod());
	ASSERT_FALSE(kg_module_loaded());

	/* Without the module: a VM of a child elsewhere, and one of ours
	 * (created after the fork, so that only we hold its files). */
	ASSERT_EQ(0, kg_cg_mkdir(CG_D));
	ASSERT_EQ(0, kid_start(&self->kid, CG_D, "kg-disc-kid"));
	ASSERT_EQ(0, kid_create_vm(&self->kid, 1));
	ASSERT_EQ(0, vm_create_loop(&a));
	ASSERT_EQ(0, vm_add_vcpu(&a, 0));
	ASSERT_EQ(1, vm_add_vcpu(&a, 1));
	ASSERT_EQ(0, vm_add_slot(&a, 3, 0x100000, 1 << 20));

	t0 = kg_now_ns();
	ASSERT_EQ(0, kg_insmod());
	t1 = kg_now_ns();
	ASSERT_EQ(0, kg_open(&self->g));

	ASSERT_EQ(0, kg_vms_of_pid(&self->g, getpid(), &mine, &n));
	ASSERT_EQ(1, n);
	v = mine[0];
	free(mine);
	EXPECT_EQ((uint32_t)KVMGUARD_VM_F_DISCOVERED, v.flags);
	EXPECT_EQ(KG_VM_REQUIRED, v.present & KG_VM_REQUIRED);
	EXPECT_STREQ("kg-discovery", v.comm);
	EXPECT_STREQ(self->cg, v.cgroup);
	EXPECT_LE(t0, v.created_ns);
	EXPECT_GE(t1, v.created_ns);
	EXPECT_EQ(2U, v.vcpus);
	EXPECT_EQ(2U, v.memslots);
	EXPECT_EQ((uint64_t)VM_SLOT0_SIZE + (1 << 20), v.mem_bytes);
	EXPECT_NE(0ULL, v.id);

	ASSERT_EQ(0, find_vm(&self->g, self->kid.pid, 0, &v));
	EXPECT_EQ((uint32_t)KVMGUARD_VM_F_DISCOVERED, v.flags);
	EXPECT_STREQ("kg-disc-kid", v.comm);
	EXPECT_STREQ(CG_D, v.cgroup);
	EXPECT_EQ(1U, v.vcpus);

	/* A VM created now is not "discovered". */
	uint64_t max = kg_max_vm_id(&self->g);
	struct kg_vm nv;

	ASSERT_EQ(0, vm_create(&c));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &nv));
	EXPECT_EQ(0U, nv.flags);
	vm_destroy(&c);

	/* Discovered VMs leave the registry when they are destroyed. */
	vm_destroy(&a);
	EXPECT_EQ(0, vms_left_after_destroy(&self->g, getpid()));
	ASSERT_EQ(0, kid_stop(&self->kid));
	EXPECT_EQ(-ENOENT, find_vm(&self->g, v.pid, 0, &v));
}

TEST_F_TIMEOUT(disc, vcpu_fd_only, 120)
{
	struct vm b;
	struct kg_vm v = { 0 }, *mine;
	int n;

	ASSERT_EQ(0, kg_rmmod());
	ASSERT_EQ(0, vm_create_loop(&b));
	ASSERT_EQ(0, vm_add_vcpu(&b, 0));
	vm_close_vm_fd(&b);	/* only the vCPU fd keeps the VM alive */
	ASSERT_EQ(KVM_EXIT_IO, vcpu_run(&b.vcpus[0]));
	ASSERT_EQ(0, kg_insmod());
	ASSERT_EQ(0, kg_open(&self->g));
	ASSERT_EQ(0, kg_vms_of_pid(&self->g, getpid(), &mine, &n));
	if (n == 1)
		v = mine[0];
	free(mine);
	ASSERT_EQ(1, n) TH_LOG("VM held by a vCPU fd only was not discovered");
	EXPECT_EQ((uint32_t)KVMGUARD_VM_F_DISCOVERED, v.flags);
	EXPECT_EQ(1U, v.vcpus);
	EXPECT_EQ(1U, v.memslots);
	vm_destroy(&b);
	EXPECT_EQ(0, vms_left_after_destroy(&self->g, getpid()));
}

/*
 * A VM whose file another process holds (inherited, or passed over a
 * socket) belongs to its creator, the owner of the VM's mm: discovery
 * names the creator, not the holder.
 */
TEST_F_TIMEOUT(disc, held_by_another, 120)
{
	struct kg_vm v = { 0 }, *mine;
	int ready[2], n;
	pid_t holder;
	struct vm a;
	char c;

	ASSERT_EQ(0, kg_rmmod());
	ASSERT_EQ(0, kg_cg_mkdir(CG_D));
	ASSERT_EQ(0, vm_create(&a));
	ASSERT_EQ(0, pipe(ready));
	holder = fork();
	ASSERT_LE(0, holder);
	if (!holder) {
		/* Holds the VM's file (inherited) from another cgroup. */
		if (kg_cg_enter(CG_D) || prctl(PR_SET_NAME, "kg-disc-holder"))
			_exit(1);
		if (write(ready[1], "k", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	ASSERT_EQ(1, read(ready[0], &c, 1));
	close(ready[0]);
	vm_close_vm_fd(&a);	/* only the holder has it now */

	ASSERT_EQ(0, kg_insmod());
	ASSERT_EQ(0, kg_open(&self->g));
	ASSERT_EQ(0, kg_vms_of_pid(&self->g, getpid(), &mine, &n));
	if (n == 1)
		v = mine[0];
	free(mine);
	EXPECT_EQ(1, n) TH_LOG("the VM was not named after its creator");
	EXPECT_STREQ("kg-discovery", v.comm);
	EXPECT_STREQ(self->cg, v.cgroup);
	EXPECT_EQ((uint32_t)KVMGUARD_VM_F_DISCOVERED, v.flags);

	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
	vm_destroy(&a);
	EXPECT_EQ(0, vms_left_after_destroy(&self->g, getpid()));
}

struct runner {
	struct vm vm;
	atomic_ulong exits;
	atomic_int stop;
	int err;
};

static void *run_guest(void *arg)
{
	struct runner *r = arg;

	while (!atomic_load(&r->stop)) {
		int x = vcpu_run(&r->vm.vcpus[0]);

		if (x == -EINTR)
			continue;
		if (x != KVM_EXIT_IO || r->vm.vcpus[0].run->io.port != VM_IO_PORT) {
			r->err = x;
			break;
		}
		atomic_fetch_add(&r->exits, 1);
	}
	return NULL;
}

/* Wait up to 10 s for the guest to make @more exits beyond now. */
static bool progresses(struct runner *r, unsigned long more)
{
	unsigned long start = atomic_load(&r->exits);

	for (int i = 0; i < 1000; i++) {
		if (atomic_load(&r->exits) >= start + more)
			return true;
		if (r->err)
			return false;
		usleep(10000);
	}
	return false;
}

TEST_F_TIMEOUT(disc, reload_while_running, 180)
{
	static struct runner r;
	struct kg_vm v;
	pthread_t th;
	uint64_t max, t0, t1;

	ASSERT_EQ(0, kg_open(&self->g));
	max = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, vm_create_loop(&r.vm));
	ASSERT_EQ(0, vm_add_vcpu(&r.vm, 0));
	ASSERT_EQ(0, pthread_create(&th, NULL, run_guest, &r));
	ASSERT_TRUE(progresses(&r, 50));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	EXPECT_EQ(0U, v.flags);

	for (int round = 0; round < 2; round++) {
		ASSERT_EQ(0, kg_rmmod()) TH_LOG("rmmod while a guest runs");
		EXPECT_TRUE(progresses(&r, 50)) TH_LOG("guest stalled without the module");
		t0 = kg_now_ns();
		ASSERT_EQ(0, kg_insmod());
		t1 = kg_now_ns();
		ASSERT_EQ(0, kg_open(&self->g));
		EXPECT_TRUE(progresses(&r, 50)) TH_LOG("guest stalled after reload");
		ASSERT_EQ(0, find_vm(&self->g, getpid(), 0, &v)) TH_LOG("not discovered again");
		EXPECT_EQ((uint32_t)KVMGUARD_VM_F_DISCOVERED, v.flags);
		EXPECT_EQ(1U, v.vcpus);
		EXPECT_EQ(1U, v.memslots);
		EXPECT_LE(t0, v.created_ns);
		EXPECT_GE(t1, v.created_ns);
		gnl_close(&self->g);
	}
	ASSERT_EQ(0, reload(&self->g, NULL, NULL));
	EXPECT_TRUE(progresses(&r, 50));
	atomic_store(&r.stop, 1);
	pthread_join(th, NULL);
	EXPECT_EQ(0, r.err);
	TH_LOG("guest made %lu exits", atomic_load(&r.exits));
	vm_destroy(&r.vm);
	EXPECT_EQ(0, vms_left_after_destroy(&self->g, getpid()));
}

/*
 * A VM whose message does not fit the first part of a dump (a cgroup path
 * near the limit; that part is NLMSG_GOODSIZE, less than a page, on a
 * socket that has read nothing yet) must not end the dump: it and the VMs
 * after it are listed.
 */
#define DEEP_TOP "/kvmguard-dumpdeep"
#define DEEP_LEVELS 17		/* 3,934 bytes in all */

static void deep_path(char *buf, int levels)
{
	char name[251];

	memset(name, 'd', 250);
	name[250] = 0;
	strcpy(buf, DEEP_TOP);
	for (int i = 1; i < levels; i++) {
		strcat(buf, "/");
		strcat(buf, i == DEEP_LEVELS - 1 ? name + 100 : name);
	}
}

static void deep_remove(void)
{
	char path[4096];

	for (int l = DEEP_LEVELS; l >= 1; l--) {
		deep_path(path, l);
		kg_cg_rmdir(path);
	}
}

TEST_F_TIMEOUT(disc, dump_deep_cgroup, 120)
{
	struct gnl fresh;
	struct kg_vm *v, mine;
	char path[4096];
	bool seen_deep = false, seen_mine = false;
	uint64_t max;
	struct vm b;
	int n;

	ASSERT_EQ(0, kg_open(&self->g));
	deep_path(path, DEEP_LEVELS);
	ASSERT_LT(3800U, strlen(path));
	ASSERT_EQ(0, kg_cg_mkdir(path));
	ASSERT_EQ(0, kid_start(&self->kid, path, "kg-disc-deep"));
	max = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, kid_create_vm(&self->kid, 1));
	ASSERT_EQ(0, vm_create(&b));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &mine));

	/* A socket that has read nothing: the dump's first part is small. */
	ASSERT_EQ(0, gnl_socket(&fresh));
	fresh.family = self->g.family;
	EXPECT_EQ(0, kg_vm_dump(&fresh, &v, &n))
		TH_LOG("the VM dump failed: %s", fresh.ext_msg);
	for (int i = 0; i < n; i++) {
		if (v[i].pid == (uint32_t)self->kid.pid) {
			seen_deep = true;
			EXPECT_STREQ(path, v[i].cgroup);
		}
		if (v[i].id == mine.id)
			seen_mine = true;
	}
	free(v);
	gnl_close(&fresh);
	EXPECT_TRUE(seen_deep) TH_LOG("the VM of the deep cgroup is missing");
	EXPECT_TRUE(seen_mine) TH_LOG("the VM after it is missing");
	vm_destroy(&b);
	kid_stop(&self->kid);
	deep_remove();
}

/*
 * A module reload keeps enforcement: after rmmod, insmod and `kvmguard
 * apply` of what `kvmguard dump` wrote before, a running VM has the policy
 * its binding gives it, as a VM created then would. A VM moved by `vm set`
 * is named in the dump. A VM found at load follows binding changes until
 * `vm set` moves it.
 */
TEST_F_TIMEOUT(disc, reload_apply_dump, 180)
{
	const char *cli = getenv("KVMGUARD_CLI");
	char cmd[512], *conf = NULL, *out = NULL;
	struct kg_vm v, set;
	uint64_t max;
	struct vm b;

	if (!cli || access(cli, X_OK))
		SKIP(return, "$KVMGUARD_CLI is not executable");
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, "kgd-");
	ASSERT_EQ(0, kg_cg_mkdir(CG_D));
	ASSERT_EQ(0, kg_policy_new(&self->g, "kgd-cg", -1, NULL));
	ASSERT_EQ(0, kg_policy_new(&self->g, "kgd-set", -1, NULL));
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_CGROUP, CG_D, 0, "kgd-cg"));
	ASSERT_EQ(0, kid_start(&self->kid, CG_D, "kg-disc-kid"));
	max = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, kid_create_vm(&self->kid, 1));
	ASSERT_EQ(0, find_vm(&self->g, self->kid.pid, 0, &v));
	ASSERT_TRUE(v.has_policy);
	ASSERT_STREQ("kgd-cg", v.policy);
	ASSERT_EQ(0, vm_create(&b));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &set));
	ASSERT_EQ(0, kg_vm_set(&self->g, set.id, "kgd-set"));

	snprintf(cmd, sizeof(cmd), "%s dump", cli);
	ASSERT_EQ(0, kg_run(cmd, NULL, &conf, NULL));
	TH_LOG("dump:\n%s", conf);
	snprintf(cmd, sizeof(cmd), "policy kgd-set");
	EXPECT_TRUE(strstr(conf, "vm set") && strstr(conf, cmd))
		TH_LOG("the dump does not name the VM set to kgd-set");

	ASSERT_EQ(0, reload(&self->g, NULL, NULL));
	snprintf(cmd, sizeof(cmd), "%s apply -", cli);
	EXPECT_EQ(0, kg_run(cmd, conf, &out, NULL)) TH_LOG("apply: %s", out);
	ASSERT_EQ(0, find_vm(&self->g, self->kid.pid, 0, &v));
	EXPECT_EQ((uint32_t)KVMGUARD_VM_F_DISCOVERED, v.flags);
	EXPECT_TRUE(v.has_policy) TH_LOG("the running VM lost its policy");
	EXPECT_STREQ("kgd-cg", v.policy);
	EXPECT_EQ(KVMGUARD_BOUND_CGROUP, v.bound_by);

	/* Found at load, it follows the bindings until `vm set` moves it. */
	ASSERT_EQ(0, kg_policy_new(&self->g, "kgd-other", -1, NULL));
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_CGROUP, CG_D, 0, "kgd-other"));
	ASSERT_EQ(0, kg_vm_get(&self->g, v.id, &v));
	EXPECT_STREQ("kgd-other", v.policy);
	EXPECT_EQ(KVMGUARD_BOUND_CGROUP, v.bound_by);
	ASSERT_EQ(0, kg_vm_set(&self->g, v.id, "kgd-set"));
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_CGROUP, CG_D, 0, "kgd-cg"));
	ASSERT_EQ(0, kg_vm_get(&self->g, v.id, &v));
	EXPECT_STREQ("kgd-set", v.policy);
	EXPECT_EQ(KVMGUARD_BOUND_EXPLICIT, v.bound_by);
	ASSERT_EQ(0, kg_policy_del(&self->g, "kgd-other"));	/* as in the file */

	/* Applying the same file again changes nothing. */
	snprintf(cmd, sizeof(cmd), "%s -v apply -", cli);
	free(out);
	out = NULL;
	EXPECT_EQ(0, kg_run(cmd, conf, &out, NULL));
	EXPECT_STREQ("", out ? out : "?");
	free(out);
	free(conf);
	vm_destroy(&b);
	kid_stop(&self->kid);
	kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, CG_D, 0);
	kg_cleanup(&self->g, "kgd-");
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
