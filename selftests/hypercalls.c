// SPDX-License-Identifier: GPL-2.0
/*
 * hypercalls: a policy's KVM hypercall allowlist, seen from a real-mode
 * guest looping on vmmcall. Enforce: an allowed number runs (KVM's own
 * return value), any other, and every number >= 64, returns -KVM_EPERM;
 * per-number counters in VM_HC_STATS are exact (numbers >= 64 under
 * KVMGUARD_HC_NR_OTHER); a policy edit applies at once to the running VM;
 * lifting the restriction lets every call through. Audit: the call runs
 * and is counted as denied. Violation events carry the VM, number and
 * action, at most one a second per VM and number, and their counts add up
 * to the violations.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm_para.h>

#include "kselftest_harness.h"
#include "hcg.h"
#include "kg.h"
#include "vm.h"

#define P "kgh-"
#define KVM_HC_UNKNOWN 100

/*
 * 1000: mov eax, NR		66 b8 NR(4)
 * 1006: xor ebx, ebx		66 31 db
 * 1009: vmmcall		0f 01 d9
 * 100c: out VM_IO_PORT, eax	66 e7 10
 * 100f: jmp 1000		eb ef
 * Each KVM_RUN makes one hypercall and stops at the out with its result.
 */
static const unsigned char hc_code[] = {
	0x66, 0xb8, 0, 0, 0, 0, 0x66, 0x31, 0xdb, 0x0f, 0x01, 0xd9,
	0x66, 0xe7, VM_IO_PORT, 0xeb, 0xef,
};
#define NR_OFFSET 2

FIXTURE(hc) {
	struct gnl g;
	struct vm vm;
	uint64_t id;
	struct hcg_stats st;
};

FIXTURE_SETUP(hc)
{
	struct kg_vm v;
	uint64_t max;

	self->vm.fd = -1;
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
	max = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, vm_create(&self->vm));
	ASSERT_EQ(0, vm_add_slot(&self->vm, 0, 0, VM_SLOT0_SIZE));
	memcpy((char *)self->vm.slots[0].hva + VM_CODE_GPA, hc_code, sizeof(hc_code));
	ASSERT_EQ(0, vm_add_vcpu(&self->vm, 0));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	self->id = v.id;
}

FIXTURE_TEARDOWN(hc)
{
	if (self->vm.fd >= 0)
		vm_destroy(&self->vm);
	kg_cleanup(&self->g, P);
	gnl_close(&self->g);
}

/* One hypercall @nr; the guest's eax after it, or a poison on failure. */
static int64_t hcall(struct vm *vm, uint32_t nr)
{
	struct kvm_run *run = vm->vcpus[0].run;
	int32_t ret;
	int r;

	memcpy((char *)vm->slots[0].hva + VM_CODE_GPA + NR_OFFSET, &nr, 4);
	do {
		r = vcpu_run(&vm->vcpus[0]);
	} while (r == -EINTR);
	if (r != KVM_EXIT_IO || run->io.port != VM_IO_PORT || run->io.size != 4) {
		printf("# hypercall %u: exit %d\n", nr, r);
		return 0x7fffffffffffLL;
	}
	memcpy(&ret, (char *)run + run->io.data_offset, 4);
	return ret;
}

static int get_stats(FIXTURE_DATA(hc) *self)
{
	return hcg_stats(&self->g, self->id, &self->st);
}

#define BIT(n) (1ull << (n))

TEST_F(hc, unrestricted_runs_kvm)
{
	EXPECT_EQ(0, hcall(&self->vm, KVM_HC_VAPIC_POLL_IRQ));
	EXPECT_EQ(-KVM_ENOSYS, hcall(&self->vm, KVM_HC_UNKNOWN));
}

TEST_F_TIMEOUT(hc, enforce_allowlist_and_counters, 120)
{
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "e",
				KVMGUARD_MODE_ENFORCE, 1, BIT(KVM_HC_VAPIC_POLL_IRQ), -1));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "e"));

	for (int i = 0; i < 20; i++) {
		EXPECT_EQ(0, hcall(&self->vm, KVM_HC_VAPIC_POLL_IRQ));
	}
	for (int i = 0; i < 15; i++) {
		EXPECT_EQ(-KVM_EPERM, hcall(&self->vm, KVM_HC_SCHED_YIELD));
	}
	for (int i = 0; i < 5; i++) {
		EXPECT_EQ(-KVM_EPERM, hcall(&self->vm, KVM_HC_UNKNOWN));
	}
	EXPECT_EQ(-KVM_EPERM, hcall(&self->vm, 0xffffffffu));
	ASSERT_EQ(0, get_stats(self));
	EXPECT_EQ(20ULL, self->st.allowed[KVM_HC_VAPIC_POLL_IRQ]);
	EXPECT_EQ(0ULL, self->st.denied[KVM_HC_VAPIC_POLL_IRQ]);
	EXPECT_EQ(0ULL, self->st.allowed[KVM_HC_SCHED_YIELD]);
	EXPECT_EQ(15ULL, self->st.denied[KVM_HC_SCHED_YIELD]);
	EXPECT_EQ(6ULL, self->st.denied[KVMGUARD_HC_NR_OTHER]);
	EXPECT_EQ(0ULL, self->st.allowed[KVMGUARD_HC_NR_OTHER]);
	for (int nr = 0; nr <= KVMGUARD_HC_NR_OTHER; nr++) {
		if (nr == KVM_HC_VAPIC_POLL_IRQ || nr == KVM_HC_SCHED_YIELD ||
		    nr == KVMGUARD_HC_NR_OTHER)
			continue;
		EXPECT_EQ(0ULL, self->st.allowed[nr] + self->st.denied[nr])
			TH_LOG("hypercall %d counted", nr);
	}

	/* A policy edit applies at once to the running VM. */
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "e", -1, 1,
				BIT(KVM_HC_VAPIC_POLL_IRQ) | BIT(KVM_HC_SCHED_YIELD), -1));
	EXPECT_EQ(0, hcall(&self->vm, KVM_HC_SCHED_YIELD));
	EXPECT_EQ(-KVM_EPERM, hcall(&self->vm, KVM_HC_UNKNOWN));
	ASSERT_EQ(0, get_stats(self));
	EXPECT_EQ(1ULL, self->st.allowed[KVM_HC_SCHED_YIELD]);
	EXPECT_EQ(15ULL, self->st.denied[KVM_HC_SCHED_YIELD]);
	EXPECT_EQ(7ULL, self->st.denied[KVMGUARD_HC_NR_OTHER]);

	/* No restriction: KVM answers everything itself. */
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "e",
				-1, 0, 0, -1));
	EXPECT_EQ(-KVM_ENOSYS, hcall(&self->vm, KVM_HC_UNKNOWN));
	EXPECT_EQ(0, hcall(&self->vm, KVM_HC_VAPIC_POLL_IRQ));
}

TEST_F(hc, audit_lets_through_and_counts)
{
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "a",
				KVMGUARD_MODE_AUDIT, 1, BIT(KVM_HC_VAPIC_POLL_IRQ), -1));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "a"));
	EXPECT_EQ(-KVM_ENOSYS, hcall(&self->vm, KVM_HC_UNKNOWN));
	EXPECT_EQ(0, hcall(&self->vm, KVM_HC_SCHED_YIELD));
	EXPECT_EQ(0, hcall(&self->vm, KVM_HC_VAPIC_POLL_IRQ));
	ASSERT_EQ(0, get_stats(self));
	EXPECT_EQ(1ULL, self->st.denied[KVM_HC_SCHED_YIELD]);
	EXPECT_EQ(1ULL, self->st.denied[KVMGUARD_HC_NR_OTHER]);
	EXPECT_EQ(1ULL, self->st.allowed[KVM_HC_VAPIC_POLL_IRQ]);
}

TEST_F_TIMEOUT(hc, violation_events_rate_limited, 60)
{
	struct hcg_event ev[64];
	struct gnl sub;
	uint64_t t0, total = 0, sum = 0;
	int n, calls = 100;
	double secs;

	ASSERT_EQ(0, kg_open(&sub));
	ASSERT_EQ(0, gnl_join(&sub, gnl_grp_id(&sub, KVMGUARD_MCGRP_EVENTS)));
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "ev",
				KVMGUARD_MODE_ENFORCE, 1, 0, -1));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "ev"));

	t0 = kg_now_ns();
	for (int i = 0; i < calls; i++) {
		EXPECT_EQ(-KVM_EPERM, hcall(&self->vm, KVM_HC_SCHED_YIELD));
	}
	secs = (kg_now_ns() - t0) / 1e9;
	n = hcg_events(&sub, self->id, 300, ev, 64);
	TH_LOG("%d calls in %.3f s: %d events", calls, secs, n);
	EXPECT_LE(1, n);
	EXPECT_GE(1 + (int)secs + 1, n) TH_LOG("more than one event a second");
	/* After a quiet second, one more call reports what was held back. */
	usleep(1100000);
	EXPECT_EQ(-KVM_EPERM, hcall(&self->vm, KVM_HC_SCHED_YIELD));
	calls++;
	n += hcg_events(&sub, self->id, 500, ev + n, 64 - n);
	for (int i = 0; i < n; i++) {
		EXPECT_EQ((uint32_t)KVM_HC_SCHED_YIELD, ev[i].nr);
		EXPECT_EQ(KVMGUARD_ACTION_DENIED, ev[i].action);
		EXPECT_LE(1ULL, ev[i].count);
		sum += ev[i].count;
	}
	total = calls;
	EXPECT_EQ(total, sum) TH_LOG("event counts add up to %llu of %llu violations",
				     (unsigned long long)sum, (unsigned long long)total);
	ASSERT_EQ(0, get_stats(self));
	EXPECT_EQ(total, self->st.denied[KVM_HC_SCHED_YIELD]);
	gnl_close(&sub);
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
