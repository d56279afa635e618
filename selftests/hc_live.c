// SPDX-License-Identifier: GPL-2.0
/*
 * hc_live: changes under a guest that loops on a hypercall and counts, in
 * its own memory, the calls that went through and those refused.
 *  - policy_edit: a POLICY_SET that refuses the number, then one that
 *    allows it again, while the guest loops: every call before an edit
 *    has the old answer, every call made after the edit's ACK the new one
 *    (at most the one call in flight at the ACK may have the old one);
 *    the module's counters equal the guest's. Same for VM_SET moving the
 *    running VM to a refusing policy.
 *  - rmmod: the module unloaded while the guest loops on a refused call:
 *    the guest keeps running, its calls now get KVM's own answer (hook
 *    gone), no oops; loaded again, the VM is found again and a policy
 *    given to it applies at once. The module is loaded when the test ends.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/kvm_para.h>

#include "kselftest_harness.h"
#include "kg.h"
#include "hcg.h"

#define P "kgl-"
#define BIT(n) (1ull << (n))
#define PROGRESS 200		/* calls to see before judging */
#define NR KVM_HC_VAPIC_POLL_IRQ	/* KVM answers 0 */

FIXTURE(live) {
	struct gnl g;
	struct vm vm;
	uint64_t id;
	struct hcg_runner loop;
	struct hcg_klog klog;
};

FIXTURE_SETUP(live)
{
	struct kg_vm v;
	uint64_t max;

	memset(&self->loop, 0, sizeof(self->loop));
	self->vm.fd = -1;
	self->klog.fd = -1;
	hcg_klog_open(&self->klog);
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
	max = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, hcg_vm_create(&self->vm, false));
	ASSERT_EQ(0, vm_add_vcpu(&self->vm, 0));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	self->id = v.id;
}

FIXTURE_TEARDOWN(live)
{
	if (self->loop.started)
		hcg_run_stop(&self->loop);
	if (self->vm.fd >= 0)
		vm_destroy(&self->vm);
	/* Whatever happened, leave the module loaded. */
	if (!kg_module_loaded())
		EXPECT_EQ(0, kg_ensure_loaded());
	gnl_close(&self->g);
	if (kg_open(&self->g) == 0) {
		kg_cleanup(&self->g, P);
		gnl_close(&self->g);
	}
	EXPECT_EQ(0, hcg_klog_problems(&self->klog));
	hcg_klog_close(&self->klog);
}

/* Wait until the loop made @more calls beyond @ok + @eperm; false on timeout. */
static bool progress(struct vm *vm, uint32_t ok, uint32_t eperm, uint32_t more, int ms)
{
	for (int i = 0; i < ms / 5; i++) {
		if (hcg_loop_ok(vm) + hcg_loop_eperm(vm) >= ok + eperm + more)
			return true;
		usleep(5000);
	}
	return false;
}

struct snap {
	uint32_t ok, eperm;
};

static struct snap snap(struct vm *vm)
{
	struct snap s = { hcg_loop_ok(vm), hcg_loop_eperm(vm) };

	return s;
}

TEST_F_TIMEOUT(live, policy_edit, 180)
{
	struct hcg_stats st;
	struct snap a, b, c;

	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "edit",
				KVMGUARD_MODE_ENFORCE, 1, BIT(NR), -1));
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "deny",
				KVMGUARD_MODE_ENFORCE, 1, 0, -1));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "edit"));
	ASSERT_EQ(0, hcg_loop_start(&self->loop, &self->vm, 0, NR, 0));

	/* Allowed: every call goes through. */
	ASSERT_TRUE(progress(&self->vm, 0, 0, PROGRESS, 10000));
	a = snap(&self->vm);
	EXPECT_EQ(0u, a.eperm);

	/* Edited to refuse it: from the ACK on, every call is refused. */
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "edit", -1, 1, 0, -1));
	b = snap(&self->vm);
	ASSERT_TRUE(progress(&self->vm, b.ok, b.eperm, PROGRESS, 10000));
	c = snap(&self->vm);
	EXPECT_GE(b.ok + 1, c.ok) TH_LOG("%u calls went through after the edit", c.ok - b.ok);
	EXPECT_LE(b.eperm + PROGRESS - 1, c.eperm);
	TH_LOG("allowed %u, then refused %u", b.ok, c.eperm);

	/* Edited back: every call goes through again. */
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "edit", -1, 1, BIT(NR), -1));
	b = snap(&self->vm);
	ASSERT_TRUE(progress(&self->vm, b.ok, b.eperm, PROGRESS, 10000));
	c = snap(&self->vm);
	EXPECT_GE(b.eperm + 1, c.eperm) TH_LOG("%u calls refused after the edit", c.eperm - b.eperm);
	EXPECT_LE(b.ok + PROGRESS - 1, c.ok);

	/* The running VM moved to a refusing policy. */
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "deny"));
	b = snap(&self->vm);
	ASSERT_TRUE(progress(&self->vm, b.ok, b.eperm, PROGRESS, 10000));
	c = snap(&self->vm);
	EXPECT_GE(b.ok + 1, c.ok) TH_LOG("%u calls went through after VM_SET", c.ok - b.ok);

	/* The guest's own counts are the module's. */
	ASSERT_EQ(0, hcg_run_stop(&self->loop));
	c = snap(&self->vm);
	ASSERT_EQ(0, hcg_stats(&self->g, self->id, &st));
	EXPECT_EQ((uint64_t)c.ok, st.allowed[NR]);
	EXPECT_EQ((uint64_t)c.eperm, st.denied[NR]);
	EXPECT_EQ(1, st.entries);
}

TEST_F_TIMEOUT(live, rmmod_under_a_looping_guest, 180)
{
	struct hcg_stats st;
	struct kg_vm v;
	struct snap a, b, c;
	uint64_t max;

	if (!getenv("KVMGUARD_KO"))
		SKIP(return, "KVMGUARD_KO not set: cannot load the module again");
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "rm",
				KVMGUARD_MODE_ENFORCE, 1, 0, -1));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "rm"));
	ASSERT_EQ(0, hcg_loop_start(&self->loop, &self->vm, 0, NR, 0));
	ASSERT_TRUE(progress(&self->vm, 0, 0, PROGRESS, 10000));
	a = snap(&self->vm);
	EXPECT_EQ(0u, a.ok);

	/* Unload under it; our socket would pin nothing, but close it. */
	gnl_close(&self->g);
	ASSERT_EQ(0, kg_rmmod());
	ASSERT_FALSE(kg_module_loaded());
	b = snap(&self->vm);
	EXPECT_TRUE(progress(&self->vm, b.ok, b.eperm, PROGRESS, 10000))
		TH_LOG("the guest stopped making progress after rmmod");
	c = snap(&self->vm);
	EXPECT_FALSE(self->loop.done) TH_LOG("vCPU left KVM_RUN: exit %d", self->loop.last_exit);
	/* Hook gone: KVM's own answer (0), at most the one in flight refused. */
	EXPECT_GE(b.eperm + 1, c.eperm) TH_LOG("%u refused after rmmod", c.eperm - b.eperm);
	EXPECT_LE(b.ok + PROGRESS - 1, c.ok);
	TH_LOG("refused %u before rmmod, %u through after", b.eperm, c.ok - b.ok);

	/* Back: the running VM is discovered, a policy applies at once. */
	max = 0;	/* ids start again */
	ASSERT_EQ(0, kg_insmod());
	ASSERT_EQ(0, kg_open(&self->g));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	EXPECT_TRUE(!!(v.flags & KVMGUARD_VM_F_DISCOVERED));
	self->id = v.id;
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "rm",
				KVMGUARD_MODE_ENFORCE, 1, 0, -1));
	/* Nothing has been refused since the rmmod: the base for the counters. */
	a = snap(&self->vm);
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "rm"));
	b = snap(&self->vm);
	ASSERT_TRUE(progress(&self->vm, b.ok, b.eperm, PROGRESS, 10000));
	c = snap(&self->vm);
	EXPECT_GE(b.ok + 1, c.ok) TH_LOG("%u went through after the reload", c.ok - b.ok);
	ASSERT_EQ(0, hcg_run_stop(&self->loop));
	c = snap(&self->vm);
	ASSERT_EQ(0, hcg_stats(&self->g, self->id, &st));
	EXPECT_EQ((uint64_t)(c.eperm - a.eperm), st.denied[NR]);
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
