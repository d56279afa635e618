// SPDX-License-Identifier: GPL-2.0
/*
 * binding: how a new VM gets its policy. Policies kgb-pid, kgb-cg,
 * kgb-cg2, kgb-def; bindings default -> kgb-def, cgroup /kvmguard-bind ->
 * kgb-cg, /kvmguard-bind/deep -> kgb-cg2, pid of one child -> kgb-pid.
 * A pid binding beats any cgroup; the longest cgroup prefix by whole
 * components wins (/kvmguard-bindfoo is not under /kvmguard-bind); the
 * default catches the rest; no binding means no policy. Also: resolution
 * happens once at creation, VM_SET overrides (explicit), POLICY_DEL is
 * EBUSY while a binding names the policy, deleting a policy re-resolves
 * its VMs, bindings with the same selector replace each other, a trailing
 * '/' is ignored, the bind dump is ordered, and errors (unknown policy,
 * VM, binding, process). A VM whose creator's cgroup path does not fit
 * PATH_MAX is refused. A pid binding covers the bound process's
 * descendants; the nearest bound ancestor wins. A VM whose creator is
 * deeper than the module searches for a pid binding (1,024 levels) keeps
 * a policy, and the host survives, when a pid binding appears and its
 * policy is deleted.
 */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "kg.h"
#include "kid.h"
#include "vm.h"

#define P "kgb-"
#define CG "/kvmguard-bind"
#define CG_DEEP CG "/deep"
#define CG_X CG_DEEP "/x"
#define CG_OTHER CG "/other"
#define CG_FOO "/kvmguard-bindfoo"

#define NKIDS 8

/*
 * A chain of processes, each forked by the one before, whose last one
 * creates VMs on request: see deep_creator.
 */
struct deep {
	pid_t top;	/* the first, our child */
	pid_t creator;	/* the last */
	int cmd, res;
};

FIXTURE(bind) {
	struct gnl g;
	struct kid kids[NKIDS];
	struct deep deep;
	uint64_t max_id;
	bool had_default;
	char old_default[KVMGUARD_NAME_MAX + 1];
};

static void deep_stop(struct deep *d);

static void unbind_all(struct gnl *g)
{
	kg_bind_del(g, KVMGUARD_BIND_CGROUP, CG, 0);
	kg_bind_del(g, KVMGUARD_BIND_CGROUP, CG_DEEP, 0);
	kg_bind_del(g, KVMGUARD_BIND_CGROUP, CG_FOO, 0);
	kg_bind_del(g, KVMGUARD_BIND_CGROUP, "/", 0);
	kg_cleanup(g, P);
}

FIXTURE_SETUP(bind)
{
	struct kg_bind *b;
	int n;

	ASSERT_EQ(0, kg_open(&self->g));
	unbind_all(&self->g);
	/* Keep whatever default binding the host had, to restore it. */
	ASSERT_EQ(0, kg_bind_dump(&self->g, &b, &n));
	for (int i = 0; i < n; i++) {
		if (b[i].type == KVMGUARD_BIND_DEFAULT) {
			self->had_default = true;
			strcpy(self->old_default, b[i].policy);
		}
	}
	free(b);
	ASSERT_EQ(0, kg_cg_mkdir(CG_X));
	ASSERT_EQ(0, kg_cg_mkdir(CG_OTHER));
	ASSERT_EQ(0, kg_cg_mkdir(CG_FOO));
	ASSERT_EQ(0, kg_policy_new(&self->g, P "pid", -1, NULL));
	ASSERT_EQ(0, kg_policy_new(&self->g, P "cg", -1, NULL));
	ASSERT_EQ(0, kg_policy_new(&self->g, P "cg2", KVMGUARD_MODE_AUDIT, NULL));
	ASSERT_EQ(0, kg_policy_new(&self->g, P "def", -1, NULL));
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_DEFAULT, NULL, 0, P "def"));
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_CGROUP, CG, 0, P "cg"));
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_CGROUP, CG_DEEP, 0, P "cg2"));
	self->max_id = kg_max_vm_id(&self->g);
}

FIXTURE_TEARDOWN(bind)
{
	for (int i = 0; i < NKIDS; i++)
		kid_stop(&self->kids[i]);
	deep_stop(&self->deep);
	kg_bind_del(&self->g, KVMGUARD_BIND_DEFAULT, NULL, 0);
	unbind_all(&self->g);
	if (self->had_default)
		kg_bind_new(&self->g, KVMGUARD_BIND_DEFAULT, NULL, 0, self->old_default);
	kg_cg_rmdir(CG_X);
	kg_cg_rmdir(CG_DEEP);
	kg_cg_rmdir(CG_OTHER);
	kg_cg_rmdir(CG);
	kg_cg_rmdir(CG_FOO);
	gnl_close(&self->g);
}

/* Start kid @i in @cg, optionally pid-bind it to @pidpol, make it create
 * a VM and return that VM. */
static int kid_vm(FIXTURE_DATA(bind) *self, int i, const char *cg,
		  const char *pidpol, struct kg_vm *v)
{
	int err;

	if (kid_start(&self->kids[i], cg, "kg-bind"))
		return -ECHILD;
	if (pidpol) {
		err = kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL,
				  self->kids[i].pid, pidpol);
		if (err)
			return err;
	}
	if (kid_create_vm(&self->kids[i], 0))
		return -EIO;
	return kg_find_new_vm(&self->g, self->kids[i].pid, self->max_id, v);
}

#define EXPECT_VM(v, pol, by) do {					\
	if (pol) {							\
		EXPECT_TRUE((v).has_policy);				\
		EXPECT_STREQ((pol) ? (pol) : "", (v).policy);		\
	} else {							\
		EXPECT_FALSE((v).has_policy) TH_LOG("policy %s", (v).policy); \
	}								\
	EXPECT_EQ((by), (v).bound_by);					\
} while (0)

static uint32_t policy_vms(struct gnl *g, const char *name)
{
	struct kg_policy p;

	return kg_policy_get(g, name, &p) ? 0xdead : p.vms;
}

TEST_F_TIMEOUT(bind, resolution, 120)
{
	struct kg_vm a, b, c, d, e, f, again;

	/* pid binding beats the longest cgroup match. */
	ASSERT_EQ(0, kid_vm(self, 0, CG_X, P "pid", &a));
	EXPECT_VM(a, P "pid", KVMGUARD_BOUND_PID);
	EXPECT_STREQ(CG_X, a.cgroup);
	/* Same cgroup, no pid binding: the deepest cgroup binding. */
	ASSERT_EQ(0, kid_vm(self, 1, CG_X, NULL, &b));
	EXPECT_VM(b, P "cg2", KVMGUARD_BOUND_CGROUP);
	/* A sibling of "deep": the /kvmguard-bind binding. */
	ASSERT_EQ(0, kid_vm(self, 2, CG_OTHER, NULL, &c));
	EXPECT_VM(c, P "cg", KVMGUARD_BOUND_CGROUP);
	/* The bound cgroup itself. */
	ASSERT_EQ(0, kid_vm(self, 3, CG, NULL, &e));
	EXPECT_VM(e, P "cg", KVMGUARD_BOUND_CGROUP);
	/* A string prefix that is not a path prefix: the default. */
	ASSERT_EQ(0, kid_vm(self, 4, CG_FOO, NULL, &d));
	EXPECT_VM(d, P "def", KVMGUARD_BOUND_DEFAULT);
	EXPECT_STREQ(CG_FOO, d.cgroup);

	EXPECT_EQ(1U, policy_vms(&self->g, P "pid"));
	EXPECT_EQ(1U, policy_vms(&self->g, P "cg2"));
	EXPECT_EQ(2U, policy_vms(&self->g, P "cg"));
	EXPECT_EQ(1U, policy_vms(&self->g, P "def"));

	/* No default binding: no policy at all. */
	ASSERT_EQ(0, kg_bind_del(&self->g, KVMGUARD_BIND_DEFAULT, NULL, 0));
	ASSERT_EQ(0, kid_vm(self, 5, CG_FOO, NULL, &f));
	EXPECT_VM(f, NULL, KVMGUARD_BOUND_NONE);

	/* "/" is a cgroup binding that matches every VM, and loses to any
	 * longer one. */
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_CGROUP, "/", 0, P "pid"));
	ASSERT_EQ(0, kid_vm(self, 6, CG_FOO, NULL, &f));
	EXPECT_VM(f, P "pid", KVMGUARD_BOUND_CGROUP);
	ASSERT_EQ(0, kid_vm(self, 7, CG_OTHER, NULL, &f));
	EXPECT_VM(f, P "cg", KVMGUARD_BOUND_CGROUP);
	ASSERT_EQ(0, kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, "/", 0));

	/* Resolution happened at creation: existing VMs keep their policy. */
	ASSERT_EQ(0, kg_vm_get(&self->g, d.id, &again));
	EXPECT_VM(again, P "def", KVMGUARD_BOUND_DEFAULT);
	EXPECT_EQ(1U, policy_vms(&self->g, P "def"));

	/* A VM's policy follows it out when the VM goes. */
	ASSERT_EQ(0, kid_stop(&self->kids[1]));
	EXPECT_EQ(0U, policy_vms(&self->g, P "cg2"));
	EXPECT_EQ(-ENOENT, kg_vm_get(&self->g, b.id, &again));
}

TEST_F_TIMEOUT(bind, explicit_and_policy_deletion, 120)
{
	struct kg_vm a, b, v;
	struct kg_policy p;

	ASSERT_EQ(0, kid_vm(self, 0, CG_X, NULL, &a));
	EXPECT_VM(a, P "cg2", KVMGUARD_BOUND_CGROUP);
	ASSERT_EQ(0, kid_vm(self, 1, CG_X, NULL, &b));

	/* VM_SET overrides. */
	ASSERT_EQ(0, kg_vm_set(&self->g, b.id, P "pid"));
	ASSERT_EQ(0, kg_vm_get(&self->g, b.id, &v));
	EXPECT_VM(v, P "pid", KVMGUARD_BOUND_EXPLICIT);
	EXPECT_EQ(1U, policy_vms(&self->g, P "pid"));
	EXPECT_EQ(1U, policy_vms(&self->g, P "cg2"));
	EXPECT_EQ(-ENOENT, kg_vm_set(&self->g, b.id, P "nope"));
	EXPECT_EQ(-ENOENT, kg_vm_set(&self->g, ~0ull, P "pid"));
	ASSERT_EQ(0, kg_vm_get(&self->g, b.id, &v));
	EXPECT_VM(v, P "pid", KVMGUARD_BOUND_EXPLICIT);

	/* Deleting a bound policy is refused. */
	EXPECT_EQ(-EBUSY, kg_policy_del(&self->g, P "cg2"));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "cg2", &p));
	EXPECT_EQ(1U, p.bindings);

	/* Unbind it; deleting it now re-resolves the VM that used it
	 * against the current bindings: /kvmguard-bind -> kgb-cg. */
	ASSERT_EQ(0, kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, CG_DEEP, 0));
	ASSERT_EQ(0, kg_policy_del(&self->g, P "cg2"));
	ASSERT_EQ(0, kg_vm_get(&self->g, a.id, &v));
	EXPECT_VM(v, P "cg", KVMGUARD_BOUND_CGROUP);

	/* An explicitly set policy deleted: re-resolved the same way. */
	ASSERT_EQ(0, kg_policy_del(&self->g, P "pid"));
	ASSERT_EQ(0, kg_vm_get(&self->g, b.id, &v));
	EXPECT_VM(v, P "cg", KVMGUARD_BOUND_CGROUP);
	EXPECT_EQ(2U, policy_vms(&self->g, P "cg"));

	/* Nothing left to match: no policy. */
	ASSERT_EQ(0, kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, CG, 0));
	ASSERT_EQ(0, kg_bind_del(&self->g, KVMGUARD_BIND_DEFAULT, NULL, 0));
	ASSERT_EQ(0, kg_policy_del(&self->g, P "cg"));
	ASSERT_EQ(0, kg_vm_get(&self->g, a.id, &v));
	EXPECT_VM(v, NULL, KVMGUARD_BOUND_NONE);
}

TEST_F(bind, binding_table)
{
	struct kg_bind *b;
	struct kg_policy p;
	struct kid k;
	int n, last_type = 0, ours = 0, seen_cg = 0;
	uint32_t last_pid = 0, dead;
	char last_cg[KVMGUARD_CGROUP_MAX + 1] = "";

	/* A pid that existed a moment ago and no longer does. */
	ASSERT_EQ(0, kid_start(&k, NULL, NULL));
	dead = k.pid;
	ASSERT_EQ(0, kid_stop(&k));
	ASSERT_EQ(0, kid_start(&k, NULL, NULL));
	self->kids[0] = k;
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL, getpid(), P "pid"));
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL, k.pid, P "pid"));
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_CGROUP, CG_FOO, 0, P "def"));

	/* Same selector replaces; a trailing '/' is the same selector. */
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_CGROUP, CG "/", 0, P "cg2"));
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_DEFAULT, NULL, 0, P "cg"));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "cg", &p));
	EXPECT_EQ(1U, p.bindings);	/* the default only */
	ASSERT_EQ(0, kg_policy_get(&self->g, P "cg2", &p));
	EXPECT_EQ(2U, p.bindings);	/* /kvmguard-bind and its deep */
	ASSERT_EQ(0, kg_policy_get(&self->g, P "def", &p));
	EXPECT_EQ(1U, p.bindings);	/* /kvmguard-bindfoo */
	ASSERT_EQ(0, kg_policy_get(&self->g, P "pid", &p));
	EXPECT_EQ(2U, p.bindings);

	ASSERT_EQ(0, kg_bind_dump(&self->g, &b, &n));
	for (int i = 0; i < n; i++) {
		printf("# binding %d %s %u -> %s\n", b[i].type, b[i].cgroup, b[i].pid, b[i].policy);
		/* default first, then cgroups by path, then pids by pid */
		EXPECT_LE(last_type, b[i].type);
		EXPECT_TRUE(b[i].type >= KVMGUARD_BIND_DEFAULT && b[i].type <= KVMGUARD_BIND_PID);
		if (b[i].type == KVMGUARD_BIND_DEFAULT) {
			EXPECT_STREQ(P "cg", b[i].policy);
			EXPECT_FALSE(!!(b[i].present & (1u << KVMGUARD_A_BIND_CGROUP)));
			EXPECT_FALSE(!!(b[i].present & (1u << KVMGUARD_A_BIND_PID)));
		}
		if (b[i].type == KVMGUARD_BIND_CGROUP) {
			if (last_type == KVMGUARD_BIND_CGROUP) {
				EXPECT_LT(0, strcmp(b[i].cgroup, last_cg));
			}
			strcpy(last_cg, b[i].cgroup);
			EXPECT_FALSE(!!(b[i].present & (1u << KVMGUARD_A_BIND_PID)));
			if (!strcmp(b[i].cgroup, CG)) {
				seen_cg++;
				EXPECT_STREQ(P "cg2", b[i].policy);
			}
			EXPECT_STRNE(CG "/", b[i].cgroup);
		}
		if (b[i].type == KVMGUARD_BIND_PID) {
			if (last_type == KVMGUARD_BIND_PID) {
				EXPECT_LT(last_pid, b[i].pid);
			}
			last_pid = b[i].pid;
		}
		last_type = b[i].type;
		if (!strncmp(b[i].policy, P, strlen(P)))
			ours++;
	}
	free(b);
	EXPECT_EQ(1, seen_cg);
	EXPECT_EQ(6, ours);	/* default, 3 cgroups, 2 pids */

	/* Errors. */
	EXPECT_EQ(-ENOENT, kg_bind_new(&self->g, KVMGUARD_BIND_CGROUP, "/kvmguard-bind/z", 0, P "nope"));
	EXPECT_EQ(-ENOENT, kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, "/kvmguard-bind/z", 0));
	EXPECT_EQ(-ENOENT, kg_bind_del(&self->g, KVMGUARD_BIND_PID, NULL, dead));
	EXPECT_NE(0, kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL, dead, P "pid"))
		TH_LOG("pid binding of a process that does not exist");
	ASSERT_EQ(0, kg_policy_get(&self->g, P "pid", &p));
	EXPECT_EQ(2U, p.bindings);
	ASSERT_EQ(0, kg_bind_del(&self->g, KVMGUARD_BIND_PID, NULL, getpid()));
	ASSERT_EQ(0, kg_bind_del(&self->g, KVMGUARD_BIND_PID, NULL, k.pid));
	EXPECT_EQ(-ENOENT, kg_bind_del(&self->g, KVMGUARD_BIND_PID, NULL, k.pid));
	ASSERT_EQ(0, kg_bind_del(&self->g, KVMGUARD_BIND_DEFAULT, NULL, 0));
	EXPECT_EQ(-ENOENT, kg_bind_del(&self->g, KVMGUARD_BIND_DEFAULT, NULL, 0));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "pid", &p));
	EXPECT_EQ(0U, p.bindings);
}

/*
 * A pid binding covers the bound process's descendants: a VMM that forks
 * and creates its VM in a child (or grandchild) gets the binding of its
 * nearest bound ancestor, whichever cgroup the child is in.
 */
struct forker {
	pid_t pid;
	int cmd, res;
};

/* A child that, per byte on cmd, forks a grandchild from @cg that creates
 * a VM, and reports the grandchild's pid (0: failed) on res. */
static int forker_start(struct forker *f, const char *cg)
{
	int cmd[2], res[2];
	char c;

	if (pipe(cmd) || pipe(res))
		return -errno;
	f->pid = fork();
	if (f->pid < 0)
		return -errno;
	if (!f->pid) {
		close(cmd[1]);
		close(res[0]);
		if (setpgid(0, 0) || (cg && kg_cg_enter(cg)))
			_exit(1);
		while (read(cmd[0], &c, 1) == 1) {
			int ok[2];
			pid_t g;

			if (pipe(ok))
				_exit(1);
			g = fork();
			if (!g) {
				struct vm vm;
				char r = vm_create(&vm) ? 'e' : 'k';

				if (write(ok[1], &r, 1) != 1)
					_exit(1);
				pause();
				_exit(0);
			}
			if (g < 0 || read(ok[0], &c, 1) != 1 || c != 'k')
				g = 0;
			close(ok[0]);
			close(ok[1]);
			if (write(res[1], &g, sizeof(g)) != sizeof(g))
				_exit(1);
		}
		kill(0, SIGKILL);	/* our own group: see forker_stop() */
		_exit(0);
	}
	close(cmd[0]);
	close(res[1]);
	f->cmd = cmd[1];
	f->res = res[0];
	return 0;
}

/* A grandchild's VM, made on request. */
static int forker_vm(struct forker *f, struct gnl *g, uint64_t max,
		     struct kg_vm *v)
{
	pid_t gc;

	if (write(f->cmd, "v", 1) != 1 ||
	    read(f->res, &gc, sizeof(gc)) != sizeof(gc) || !gc)
		return -EIO;
	return kg_find_new_vm(g, gc, max, v);
}

static void forker_stop(struct forker *f)
{
	if (f->pid <= 0)
		return;
	close(f->cmd);
	close(f->res);
	waitpid(f->pid, NULL, 0);
	f->pid = 0;
}

TEST_F_TIMEOUT(bind, pid_descendants, 120)
{
	struct forker f = { 0 };
	struct kg_vm v;

	/* The forker runs in a process group of its own, which it kills
	 * with its grandchildren when we close its command pipe. */
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL, getpid(),
				 P "pid"));
	ASSERT_EQ(0, forker_start(&f, CG_X));
	ASSERT_EQ(0, forker_vm(&f, &self->g, self->max_id, &v));
	if (v.bound_by != KVMGUARD_BOUND_PID)
		TH_LOG("a grandchild of a pid-bound process escaped the binding");
	EXPECT_VM(v, P "pid", KVMGUARD_BOUND_PID);

	/* The nearest bound ancestor wins. */
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL, f.pid,
				 P "cg"));
	ASSERT_EQ(0, forker_vm(&f, &self->g, v.id, &v));
	EXPECT_VM(v, P "cg", KVMGUARD_BOUND_PID);

	/* Unbound: the cgroup rules again. */
	ASSERT_EQ(0, kg_bind_del(&self->g, KVMGUARD_BIND_PID, NULL, f.pid));
	ASSERT_EQ(0, kg_bind_del(&self->g, KVMGUARD_BIND_PID, NULL, getpid()));
	ASSERT_EQ(0, forker_vm(&f, &self->g, v.id, &v));
	EXPECT_VM(v, P "cg2", KVMGUARD_BOUND_CGROUP);
	forker_stop(&f);
}

/*
 * A VM whose creator is more than KVMGUARD_ANCESTORS_MAX (1,024) levels
 * below init. With no pid binding it resolves by cgroup like any other
 * VM. Once a pid binding exists its ancestors are too many to search: a
 * new VM from there is refused, and deleting the policy of the one it
 * already has re-resolves it. That must neither oops (the re-resolution
 * is an error, not a policy) nor leave the VM without a policy (its
 * rules stripped because its binding could not be searched).
 */
#define DEEP_LEVELS 1040	/* processes in the chain: test -> creator */

static void deep_creator_main(int cmd, int res)
{
	static struct vm vms[2];
	pid_t me = getpid();
	int n = 0;
	char c;

	if (write(res, &me, sizeof(me)) != sizeof(me))
		_exit(1);
	while (read(cmd, &c, 1) == 1) {
		c = n < 2 && !vm_create(&vms[n]) ? 'k' : 'e';
		if (c == 'k')
			n++;
		if (write(res, &c, 1) != 1)
			_exit(1);
	}
	_exit(0);
}

/*
 * Each process of the chain forks the next and waits for it; the last
 * one, DEEP_LEVELS below us, reports its pid and makes VMs. Closing the
 * command pipe ends it and, one wait after the other, the whole chain; a
 * process whose parent dies is killed (PR_SET_PDEATHSIG), so the chain
 * does not outlive a test that died.
 */
static int deep_start(struct deep *d, const char *cg)
{
	int cmd[2], res[2];
	pid_t parent = getpid();

	if (pipe(cmd))
		return -errno;
	if (pipe(res)) {
		close(cmd[0]);
		close(cmd[1]);
		return -errno;
	}
	fflush(stdout);
	fflush(stderr);
	d->top = fork();
	if (d->top < 0) {
		d->top = 0;
		return -errno;
	}
	if (!d->top) {
		close(cmd[1]);
		close(res[0]);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent ||
		    (cg && kg_cg_enter(cg)))
			_exit(1);
		for (int i = 1; i < DEEP_LEVELS; i++) {
			pid_t next;
			int status;

			parent = getpid();
			next = fork();
			if (next < 0)
				_exit(1);
			if (next) {
				/* Only the last one holds the pipes. */
				close(cmd[0]);
				close(res[1]);
				while (waitpid(next, &status, 0) < 0 &&
				       errno == EINTR)
					;
				_exit(0);
			}
			if (prctl(PR_SET_PDEATHSIG, SIGKILL) ||
			    getppid() != parent)
				_exit(1);
		}
		deep_creator_main(cmd[0], res[1]);
	}
	close(cmd[0]);
	close(res[1]);
	d->cmd = cmd[1];
	d->res = res[0];
	if (read(d->res, &d->creator, sizeof(d->creator)) !=
	    sizeof(d->creator)) {
		deep_stop(d);
		return -ECHILD;
	}
	return 0;
}

/* A VM from the chain's last process: 0, or -1 if it was not created. */
static int deep_vm(struct deep *d)
{
	char c = 'v';

	if (write(d->cmd, &c, 1) != 1 || read(d->res, &c, 1) != 1)
		return -1;
	return c == 'k' ? 0 : -1;
}

static void deep_stop(struct deep *d)
{
	if (d->top <= 0)
		return;
	close(d->cmd);
	close(d->res);
	waitpid(d->top, NULL, 0);
	d->top = 0;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* How many parents @pid has up to init, by /proc; -1 if unknown. */
static int levels_below_init(pid_t pid)
{
	char path[32], line[128];
	int n = 0;

	while (pid > 1) {
		pid_t ppid = 0;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/status", pid);
		f = fopen(path, "r");
		if (!f)
			return -1;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "PPid: %d", &ppid) == 1)
				break;
		fclose(f);
		if (ppid <= 0)
			return -1;
		pid = ppid;
		n++;
	}
	return n;
}

TEST_F_TIMEOUT(bind, deep_creator, 150)
{
	struct kg_vm v, again;
	struct kg_bind *b;
	struct kg_vm *all;
	struct timespec t0;
	int n, pids = 0, levels, err;

	/*
	 * The debug kernel (kmemleak, KASAN) takes longer than the test's
	 * limit for the 1,040 forks (killed at 150 s); 6.1 and 6.12 run it.
	 */
	if (!access("/sys/kernel/debug/kmemleak", F_OK))
		SKIP(return, "1,040 forks take too long under the debug kernel's sanitizers");

	/* No pid binding, or the VM below could not be made at all. */
	ASSERT_EQ(0, kg_bind_dump(&self->g, &b, &n));
	for (int i = 0; i < n; i++)
		pids += b[i].type == KVMGUARD_BIND_PID;
	free(b);
	ASSERT_EQ(0, pids) TH_LOG("the host has pid bindings already");

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, deep_start(&self->deep, CG_X));
	levels = levels_below_init(self->deep.creator);
	TH_LOG("VM creator %d: %d levels below init (%ld ms)",
	       self->deep.creator, levels, ms_since(&t0));
	ASSERT_LT(DEEP_LEVELS - 1, levels);
	ASSERT_EQ(0, deep_vm(&self->deep));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, self->deep.creator,
				    self->max_id, &v));
	EXPECT_VM(v, P "cg2", KVMGUARD_BOUND_CGROUP);

	/* A pid binding appears: ours, DEEP_LEVELS above the creator. */
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL, getpid(),
				 P "pid"));
	ASSERT_EQ(0, kg_vm_get(&self->g, v.id, &again));
	EXPECT_VM(again, P "cg2", KVMGUARD_BOUND_CGROUP);
	/* Its ancestors are too many to search: a new VM is refused. */
	EXPECT_NE(0, deep_vm(&self->deep))
		TH_LOG("a VM too deep to search for a pid binding was created");

	/* Its policy deleted: it is re-resolved, which cannot search. */
	ASSERT_EQ(0, kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, CG_DEEP, 0));
	TH_LOG("policy del %s (an oops here is the bug)", P "cg2");
	err = kg_policy_del(&self->g, P "cg2");
	TH_LOG("policy del %s: %d", P "cg2", err);

	/* Still answering, and the deep VM still has a policy. */
	ASSERT_EQ(0, kg_vm_dump(&self->g, &all, &n));
	free(all);
	ASSERT_EQ(0, kg_vm_get(&self->g, v.id, &again));
	EXPECT_TRUE(again.has_policy)
		TH_LOG("policy del %d left the deep VM with no policy (bound_by %u): its rules are gone",
		       err, again.bound_by);
	if (err) {
		EXPECT_STREQ(P "cg2", again.policy);
	} else {
		EXPECT_STRNE(P "cg2", again.policy);
	}
	deep_stop(&self->deep);
	TH_LOG("%ld ms in all", ms_since(&t0));
}

/*
 * A cgroup whose path does not fit PATH_MAX: the VM's creator could not
 * be matched against the cgroup bindings (its path would read as none),
 * so the VM is refused rather than let it escape them.
 */
#define LONG_TOP "kvmguard-bindlong"
#define LONG_LEVELS 18		/* of 250 bytes: ~4.5 KiB in all */

static int long_cgroup(int *fds)
{
	char name[251];

	memset(name, 'l', 250);
	name[250] = 0;
	fds[0] = open(KG_CGROOT, O_RDONLY | O_DIRECTORY);
	if (fds[0] < 0)
		return -errno;
	for (int i = 1; i <= LONG_LEVELS; i++) {
		const char *n = i == 1 ? LONG_TOP : name;

		if (mkdirat(fds[i - 1], n, 0755) && errno != EEXIST)
			return -errno;
		fds[i] = openat(fds[i - 1], n, O_RDONLY | O_DIRECTORY);
		if (fds[i] < 0)
			return -errno;
	}
	return 0;
}

static void long_cgroup_remove(int *fds)
{
	char name[251];

	memset(name, 'l', 250);
	name[250] = 0;
	for (int i = LONG_LEVELS; i >= 1; i--) {
		if (fds[i] >= 0)
			close(fds[i]);
		if (fds[i - 1] >= 0)
			unlinkat(fds[i - 1], i == 1 ? LONG_TOP : name, AT_REMOVEDIR);
	}
	if (fds[0] >= 0)
		close(fds[0]);
}

TEST(cgroup_path_too_long)
{
	int fds[LONG_LEVELS + 1], status, procs;
	pid_t kid;

	memset(fds, -1, sizeof(fds));
	ASSERT_EQ(0, long_cgroup(fds));
	kid = fork();
	ASSERT_LE(0, kid);
	if (!kid) {
		struct vm vm;
		char pid[16];
		int n = snprintf(pid, sizeof(pid), "%d", getpid());

		procs = openat(fds[LONG_LEVELS], "cgroup.procs", O_WRONLY);
		if (procs < 0 || write(procs, pid, n) != n)
			_exit(3);
		_exit(vm_create(&vm) ? 0 : 1);	/* 0: refused */
	}
	ASSERT_EQ(kid, waitpid(kid, &status, 0));
	long_cgroup_remove(fds);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_NE(3, WEXITSTATUS(status)) TH_LOG("cannot enter the long cgroup");
	EXPECT_EQ(0, WEXITSTATUS(status))
		TH_LOG("a VM was created from a cgroup path past PATH_MAX");
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
