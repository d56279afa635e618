// SPDX-License-Identifier: GPL-2.0
/*
 * events: a subscriber of the "events" group (CAP_NET_ADMIN) sees
 * VM_CREATE and VM_DESTROY for each VM, in that order, with the VM's id,
 * the creator's pid and comm, a plausible time and the VM's policy name
 * (only when it has one); the request socket gets no unsolicited event.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "kg.h"
#include "vm.h"

#define P "kge-"

FIXTURE(ev) {
	struct gnl g;
	struct gnl sub;
};

FIXTURE_SETUP(ev)
{
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
	ASSERT_EQ(0, kg_open(&self->sub));
	ASSERT_NE(0U, gnl_grp_id(&self->sub, KVMGUARD_MCGRP_EVENTS));
	ASSERT_EQ(0, gnl_join(&self->sub, gnl_grp_id(&self->sub, KVMGUARD_MCGRP_EVENTS)));
}

FIXTURE_TEARDOWN(ev)
{
	kg_cleanup(&self->g, P);
	gnl_close(&self->sub);
	gnl_close(&self->g);
}

/* Collect events until one of @type for @vm_id (0: any) arrives or 5 s. */
static int wait_event(struct gnl *sub, int type, uint64_t vm_id, struct kg_event *out,
		      struct kg_event *all, int *nall, int max)
{
	uint64_t deadline = kg_now_ns() + 5000000000ull;

	while (kg_now_ns() < deadline) {
		const struct nlmsghdr *nlh;
		int len = gnl_recv(sub, 200);

		if (len == -ETIMEDOUT)
			continue;
		if (len < 0)
			return len;
		for (nlh = (const void *)sub->rbuf; NLMSG_OK(nlh, (unsigned int)len);
		     nlh = NLMSG_NEXT(nlh, len)) {
			const struct genlmsghdr *gh = NLMSG_DATA(nlh);
			struct kg_event e;

			if (nlh->nlmsg_type != sub->family)
				continue;
			if (gh->cmd != KVMGUARD_CMD_EVENT || kg_parse_event(nlh, &e))
				return -EBADMSG;
			if (*nall < max)
				all[(*nall)++] = e;
			if (e.type == type && (!vm_id || e.vm_id == vm_id)) {
				*out = e;
				return 0;
			}
		}
	}
	return -ETIMEDOUT;
}

TEST_F(ev, create_destroy_own)
{
	struct kg_event e, all[64];
	struct kg_vm v;
	struct vm vm;
	uint64_t t0, t1, t2, max;
	int nall = 0;
	char comm[16];

	ASSERT_EQ(0, prctl(PR_SET_NAME, "kg-events"));
	ASSERT_EQ(0, prctl(PR_GET_NAME, comm));
	max = kg_max_vm_id(&self->g);
	t0 = kg_now_ns();
	ASSERT_EQ(0, vm_create(&vm));
	t1 = kg_now_ns();
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));

	ASSERT_EQ(0, wait_event(&self->sub, KVMGUARD_EVENT_VM_CREATE, v.id, &e, all, &nall, 64))
		TH_LOG("no VM_CREATE for VM %llu (%d other events)",
		       (unsigned long long)v.id, nall);
	EXPECT_EQ(v.id, e.vm_id);
	EXPECT_EQ((uint32_t)getpid(), e.pid);
	EXPECT_STREQ(comm, e.comm);
	EXPECT_TRUE(!!(e.present & (1u << KVMGUARD_A_EVENT_TIME_NS)));
	EXPECT_LE(t0, e.time_ns);
	EXPECT_GE(t1, e.time_ns);
	EXPECT_EQ(v.has_policy, e.has_policy);
	EXPECT_STREQ(v.policy, e.policy);

	t1 = kg_now_ns();
	vm_destroy(&vm);
	t2 = kg_now_ns();
	ASSERT_EQ(0, wait_event(&self->sub, KVMGUARD_EVENT_VM_DESTROY, v.id, &e, all, &nall, 64));
	EXPECT_EQ(v.id, e.vm_id);
	EXPECT_EQ((uint32_t)getpid(), e.pid);
	EXPECT_STREQ(comm, e.comm);
	EXPECT_LE(t1, e.time_ns);
	EXPECT_GE(t2, e.time_ns);
	/* No event about this VM before its creation event. */
	for (int i = 0; i < nall; i++) {
		if (all[i].vm_id != v.id)
			continue;
		EXPECT_EQ(KVMGUARD_EVENT_VM_CREATE, all[i].type);
		break;
	}
	/* The request socket is not subscribed: nothing unsolicited. */
	EXPECT_EQ(-ETIMEDOUT, gnl_recv(&self->g, 200));
}

TEST_F(ev, child_vm_with_policy)
{
	struct kg_event e, all[64];
	int go[2], done[2], status, nall = 0;
	uint64_t max;
	char c;
	pid_t pid;

	ASSERT_EQ(0, kg_policy_new(&self->g, P "p", KVMGUARD_MODE_AUDIT, NULL));
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	max = kg_max_vm_id(&self->g);
	fflush(stdout);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct vm vm;

		prctl(PR_SET_NAME, "kg-ev-child");
		if (read(go[0], &c, 1) != 1 || vm_create(&vm))
			_exit(1);
		if (write(done[1], "c", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(1);
		vm_destroy(&vm);
		_exit(0);
	}
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL, pid, P "p"));
	ASSERT_EQ(1, write(go[1], "g", 1));
	ASSERT_EQ(1, read(done[0], &c, 1));

	ASSERT_EQ(0, wait_event(&self->sub, KVMGUARD_EVENT_VM_CREATE, 0, &e, all, &nall, 64));
	EXPECT_LT(max, e.vm_id);
	EXPECT_EQ((uint32_t)pid, e.pid);
	EXPECT_STREQ("kg-ev-child", e.comm);
	EXPECT_TRUE(e.has_policy);
	EXPECT_STREQ(P "p", e.policy);

	ASSERT_EQ(1, write(go[1], "g", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status);
	uint64_t id = e.vm_id;

	ASSERT_EQ(0, wait_event(&self->sub, KVMGUARD_EVENT_VM_DESTROY, id, &e, all, &nall, 64));
	EXPECT_EQ((uint32_t)pid, e.pid);
	EXPECT_STREQ(P "p", e.policy);
	kg_bind_del(&self->g, KVMGUARD_BIND_PID, NULL, pid);
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
