// SPDX-License-Identifier: GPL-2.0
/*
 * privileges: a caller without CAP_NET_ADMIN - uid 0 with the capability
 * dropped (capset + bounding set), and uid/gid 65534 - gets EPERM for every
 * command (doit and dump), cannot join the "events" multicast group
 * (EPERM) and receives no event when a VM comes and goes; nothing it
 * asked for happened.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>

#include "kselftest_harness.h"
#include "kg.h"
#include "vm.h"

#define P "kgr-"
#define CG "/kvmguard-priv"

FIXTURE(priv) {
	struct gnl g;
	struct vm vm;
	uint64_t vm_id;
};

FIXTURE_VARIANT(priv) {
	bool setuid_nobody;
};

FIXTURE_VARIANT_ADD(priv, no_cap_net_admin) {
	.setuid_nobody = false,
};

FIXTURE_VARIANT_ADD(priv, uid_nobody) {
	.setuid_nobody = true,
};

FIXTURE_SETUP(priv)
{
	struct kg_vm v;
	uint64_t max;

	self->vm.fd = -1;
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
	kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, CG, 0);
	ASSERT_EQ(0, kg_policy_new(&self->g, P "p", KVMGUARD_MODE_ENFORCE, NULL));
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_CGROUP, CG, 0, P "p"));
	max = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, vm_create(&self->vm));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	self->vm_id = v.id;
}

FIXTURE_TEARDOWN(priv)
{
	if (self->vm.fd >= 0)
		vm_destroy(&self->vm);
	kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, CG, 0);
	kg_cleanup(&self->g, P);
	gnl_close(&self->g);
}

static int drop_net_admin(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	int idx = CAP_NET_ADMIN / 32;
	uint32_t bit = 1u << (CAP_NET_ADMIN % 32);

	if (prctl(PR_CAPBSET_DROP, CAP_NET_ADMIN, 0, 0, 0))
		return -errno;
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[idx].effective &= ~bit;
	d[idx].permitted &= ~bit;
	d[idx].inheritable &= ~bit;
	if (syscall(SYS_capset, &h, d))
		return -errno;
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d))
		return -errno;
	if ((d[idx].effective | d[idx].permitted) & bit)
		return -EPERM;
	return getuid() == 0 ? 0 : -EINVAL;
}

static int become_nobody(void)
{
	if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
		return -errno;
	return getuid() == 65534 && geteuid() == 65534 ? 0 : -EPERM;
}

static int fails;

#define CHILD_EXPECT(cond, fmt, ...) do {				\
	if (!(cond)) {							\
		printf("# child: FAIL " fmt "\n", ##__VA_ARGS__);	\
		fails++;						\
	}								\
} while (0)

static void try(struct gnl *g, struct gnl_msg *m, const char *what)
{
	int r = gnl_transact(g, m, NULL, NULL);

	printf("# child: %-22s -> %d (%s)\n", what, r, r ? strerror(-r) : "ok");
	CHILD_EXPECT(r == -EPERM, "%s: expected EPERM, got %d", what, r);
	CHILD_EXPECT(g->n_msgs == 0, "%s: got %d reply messages", what, g->n_msgs);
}

static int unprivileged(bool nobody, uint64_t vm_id, int ready_fd, int go_fd)
{
	static struct gnl_msg m;
	static struct gnl g;
	uint32_t grp;
	char c = 0;
	int r;

	r = nobody ? become_nobody() : drop_net_admin();
	if (r) {
		printf("# child: dropping privileges failed: %s\n", strerror(-r));
		return 100;
	}
	r = kg_open(&g);	/* resolving a family needs no privilege */
	if (r) {
		printf("# child: cannot resolve family: %s\n", strerror(-r));
		return 101;
	}
	g.timeout_ms = 3000;

	kg_req(&g, &m, KVMGUARD_CMD_VM_GET, false);
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, vm_id);
	try(&g, &m, "VM_GET");
	kg_req(&g, &m, KVMGUARD_CMD_VM_GET, true);
	try(&g, &m, "VM_GET dump");
	kg_req(&g, &m, KVMGUARD_CMD_VM_SET, false);
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, vm_id);
	gnl_put_str(&m, KVMGUARD_A_POLICY_NAME, P "p");
	try(&g, &m, "VM_SET");
	kg_req(&g, &m, KVMGUARD_CMD_POLICY_NEW, false);
	gnl_put_str(&m, KVMGUARD_A_POLICY_NAME, P "new");
	try(&g, &m, "POLICY_NEW");
	kg_req(&g, &m, KVMGUARD_CMD_POLICY_SET, false);
	gnl_put_str(&m, KVMGUARD_A_POLICY_NAME, P "p");
	gnl_put_u8(&m, KVMGUARD_A_POLICY_MODE, KVMGUARD_MODE_AUDIT);
	gnl_put_str(&m, KVMGUARD_A_POLICY_DOMAIN, "evil");
	try(&g, &m, "POLICY_SET");
	kg_req(&g, &m, KVMGUARD_CMD_POLICY_GET, false);
	gnl_put_str(&m, KVMGUARD_A_POLICY_NAME, P "p");
	try(&g, &m, "POLICY_GET");
	kg_req(&g, &m, KVMGUARD_CMD_POLICY_GET, true);
	try(&g, &m, "POLICY_GET dump");
	kg_req(&g, &m, KVMGUARD_CMD_POLICY_DEL, false);
	gnl_put_str(&m, KVMGUARD_A_POLICY_NAME, P "p");
	try(&g, &m, "POLICY_DEL");
	kg_req(&g, &m, KVMGUARD_CMD_BIND_NEW, false);
	gnl_put_u8(&m, KVMGUARD_A_BIND_TYPE, KVMGUARD_BIND_DEFAULT);
	gnl_put_str(&m, KVMGUARD_A_POLICY_NAME, P "p");
	try(&g, &m, "BIND_NEW");
	kg_req(&g, &m, KVMGUARD_CMD_BIND_DEL, false);
	gnl_put_u8(&m, KVMGUARD_A_BIND_TYPE, KVMGUARD_BIND_CGROUP);
	gnl_put_str(&m, KVMGUARD_A_BIND_CGROUP, CG);
	try(&g, &m, "BIND_DEL");
	kg_req(&g, &m, KVMGUARD_CMD_BIND_GET, true);
	try(&g, &m, "BIND_GET dump");
	/* BIND_GET has no doit; whatever it answers, it must not be data. */

	grp = gnl_grp_id(&g, KVMGUARD_MCGRP_EVENTS);
	CHILD_EXPECT(grp != 0, "family has no \"%s\" group", KVMGUARD_MCGRP_EVENTS);
	r = gnl_join(&g, grp);
	printf("# child: join events group %u -> %d\n", grp, r);
	CHILD_EXPECT(r == -EPERM, "joining the events group: expected EPERM, got %d", r);

	/* Let the parent make a VM come and go; nothing may arrive. */
	if (write(ready_fd, "r", 1) != 1 || read(go_fd, &c, 1) != 1)
		return 102;
	r = gnl_recv(&g, 500);
	CHILD_EXPECT(r == -ETIMEDOUT, "received %d bytes without membership", r);
	gnl_close(&g);
	return fails;
}

TEST_F(priv, everything_refused)
{
	struct kg_vm before, after;
	struct kg_policy p;
	struct kg_bind *b;
	struct gnl sub;
	struct vm vm2;
	int ready[2], go[2], status, n, r, events = 0, ours = 0, cg = 0;
	pid_t pid;
	char c;

	ASSERT_EQ(0, kg_vm_get(&self->g, self->vm_id, &before));
	/* A privileged subscriber shows that the events really happen. */
	ASSERT_EQ(0, kg_open(&sub));
	ASSERT_NE(0U, gnl_grp_id(&sub, KVMGUARD_MCGRP_EVENTS));
	ASSERT_EQ(0, gnl_join(&sub, gnl_grp_id(&sub, KVMGUARD_MCGRP_EVENTS)));

	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(go));
	fflush(stdout);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(unprivileged(variant->setuid_nobody, self->vm_id, ready[1], go[0]));
	r = read(ready[0], &c, 1);
	if (r == 1) {
		ASSERT_EQ(0, vm_create(&vm2));
		vm_destroy(&vm2);
	}
	ASSERT_EQ(1, write(go[1], "g", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("child reported failures");

	while (gnl_recv(&sub, 300) > 0)
		events++;
	EXPECT_GE(events, 1) TH_LOG("privileged subscriber saw no event");
	gnl_close(&sub);

	/* Nothing changed. */
	EXPECT_EQ(-ENOENT, kg_policy_get(&self->g, P "new", &p));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "p", &p));
	EXPECT_EQ(KVMGUARD_MODE_ENFORCE, p.mode);
	EXPECT_FALSE(p.has_domain);
	EXPECT_EQ(1U, p.bindings);
	ASSERT_EQ(0, kg_vm_get(&self->g, self->vm_id, &after));
	EXPECT_EQ(before.bound_by, after.bound_by);
	EXPECT_EQ(before.has_policy, after.has_policy);
	EXPECT_STREQ(before.policy, after.policy);
	ASSERT_EQ(0, kg_bind_dump(&self->g, &b, &n));
	for (int i = 0; i < n; i++) {
		if (!strcmp(b[i].policy, P "p"))
			ours++;
		if (b[i].type == KVMGUARD_BIND_CGROUP && !strcmp(b[i].cgroup, CG))
			cg++;
	}
	EXPECT_EQ(1, ours) TH_LOG("bindings naming the policy changed");
	EXPECT_EQ(1, cg) TH_LOG("the cgroup binding is gone");
	free(b);
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
