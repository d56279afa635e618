// SPDX-License-Identifier: GPL-2.0
/*
 * hc_matrix: every named KVM hypercall (vapic_poll_irq 1, kick_cpu 5,
 * clock_pairing 9, send_ipi 10, sched_yield 11, map_gpa_range 12) and
 * unknown numbers (63, 1000), made by a 16-bit, a 32-bit and a 64-bit
 * guest, under no policy, an allowlist, "none" (restricted, empty bitmap)
 * and an audit-mode allowlist. For each call: the guest's full RAX
 * (-KVM_EPERM is (u32)-1 for 16/32-bit callers and 64-bit -1 for 64-bit
 * ones when refused; KVM's own result otherwise) and RIP past the vmmcall
 * (the guest goes on). Per-number counters exact; one violation event per
 * number at once, the repeats within the second coalesced into the next
 * event's count; no event for an allowed call.
 * Then the width of the number: RAX = 0xdead0000_00000005 is kick_cpu for
 * a 16/32-bit caller (upper half ignored) and an unknown number (>= 64)
 * for a 64-bit caller.
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

#define P "kgx-"
#define BIT(n) (1ull << (n))
#define REPEAT 3

#ifndef KVM_HC_MAP_GPA_RANGE
#define KVM_HC_MAP_GPA_RANGE 12
#endif

static const uint32_t numbers[] = {
	KVM_HC_VAPIC_POLL_IRQ, KVM_HC_KICK_CPU, KVM_HC_CLOCK_PAIRING,
	KVM_HC_SEND_IPI, KVM_HC_SCHED_YIELD, KVM_HC_MAP_GPA_RANGE, 63, 1000,
};
#define N_NUMBERS (sizeof(numbers) / sizeof(numbers[0]))

/*
 * Attaching and detaching the hook (first/last restricting policy) costs
 * an RCU-tasks grace period, which on the debug lane took over 40 s once
 * (rcu_tasks_wait_gp: ... jiffies old). A restricting policy bound to no
 * VM keeps the hook attached for the whole binary; it is outside P, so the
 * tests' cleanup leaves it, and it goes when the binary exits.
 */
#define HOLDER "kgxhold"

static void __attribute__((constructor(200))) hold_hook(void)
{
	struct gnl g;

	if (kg_open(&g))
		return;
	hcg_policy(&g, KVMGUARD_CMD_POLICY_NEW, HOLDER, KVMGUARD_MODE_ENFORCE, 1, 0, -1);
	gnl_close(&g);
}

static void __attribute__((destructor)) release_hook(void)
{
	struct gnl g;

	if (kg_open(&g))
		return;
	kg_policy_del(&g, HOLDER);
	gnl_close(&g);
}

static unsigned int slot_of(uint64_t nr)
{
	return nr < KVMGUARD_HC_NR_OTHER ? nr : KVMGUARD_HC_NR_OTHER;
}

FIXTURE(mx) {
	struct gnl g;
	struct gnl sub;
	struct vm vm;
	uint64_t id;
	bool wide;		/* 64-bit caller */
	struct hcg_klog klog;
};

FIXTURE_VARIANT(mx) {
	enum hcg_mode mode;
};

FIXTURE_VARIANT_ADD(mx, real16) { .mode = HCG_REAL16 };
FIXTURE_VARIANT_ADD(mx, prot32) { .mode = HCG_PROT32 };
FIXTURE_VARIANT_ADD(mx, long64) { .mode = HCG_LONG64 };

FIXTURE_SETUP(mx)
{
	struct kg_vm v;
	uint64_t max;

	self->vm.fd = -1;
	self->klog.fd = -1;
	hcg_klog_open(&self->klog);
	ASSERT_EQ(0, kg_open(&self->g));
	ASSERT_EQ(0, kg_open(&self->sub));
	ASSERT_EQ(0, hcg_subscribe(&self->sub));
	kg_cleanup(&self->g, P);
	max = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, hcg_vm_create(&self->vm, false));
	ASSERT_EQ(0, vm_add_vcpu(&self->vm, 0));
	ASSERT_EQ(0, hcg_set_mode(&self->vm, 0, variant->mode));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	self->id = v.id;
	self->wide = variant->mode == HCG_LONG64;
}

FIXTURE_TEARDOWN(mx)
{
	if (self->vm.fd >= 0)
		vm_destroy(&self->vm);
	kg_cleanup(&self->g, P);
	gnl_close(&self->sub);
	gnl_close(&self->g);
	EXPECT_EQ(0, hcg_klog_problems(&self->klog));
	hcg_klog_close(&self->klog);
}

/* RAX as a caller of this width sees KVM's (long) result @ret. */
static uint64_t as_seen(bool wide, int64_t ret)
{
	return wide ? (uint64_t)ret : (uint32_t)ret;
}

/*
 * What KVM itself answers in this VM (one vCPU, no in-kernel APIC, the PV
 * feature CPUID not enforced, no hypercall exits): kick_cpu finds nobody
 * to kick and returns 0; send_ipi has no APIC map (-KVM_EOPNOTSUPP);
 * map_gpa_range is not enabled (-KVM_ENOSYS). clock_pairing depends on the
 * host clocksource: 0 when it wrote the structure, else -KVM_EOPNOTSUPP.
 */
static bool kvm_result_ok(bool wide, uint32_t nr, uint64_t rax)
{
	switch (nr) {
	case KVM_HC_VAPIC_POLL_IRQ:
	case KVM_HC_KICK_CPU:
	case KVM_HC_SCHED_YIELD:
		return rax == 0;
	case KVM_HC_CLOCK_PAIRING:
		return rax == 0 || rax == as_seen(wide, -KVM_EOPNOTSUPP);
	case KVM_HC_SEND_IPI:
		return rax == as_seen(wide, -KVM_EOPNOTSUPP);
	default:
		return rax == as_seen(wide, -KVM_ENOSYS);
	}
}

static int call(FIXTURE_DATA(mx) *self, uint64_t nr, struct hcg_result *res)
{
	struct hcg_regs in = {
		.rax = nr,
		/* clock_pairing: a0 = a GPA of guest RAM, a1 = 0 (wall clock) */
		.rbx = HCG_DATA_GPA, .rcx = 0, .rdx = 0, .rsi = 0,
	};

	return hcg_call(&self->vm, 0, &in, res);
}

enum expect { KVM_ANSWERS, REFUSED };

/*
 * Make every number REPEAT times; @allow says which are allowed (refused
 * when enforcing, KVM's answer when auditing or not restricted).
 */
static void round_of_calls(struct __test_metadata *_metadata, FIXTURE_DATA(mx) *self,
			   int repeat, uint64_t allow, bool enforce)
{
	struct hcg_result res;

	for (int r = 0; r < repeat; r++) {
		for (size_t i = 0; i < N_NUMBERS; i++) {
			uint32_t nr = numbers[i];
			bool allowed = nr < 64 && (allow & BIT(nr));

			ASSERT_EQ(0, call(self, nr, &res))
				TH_LOG("hypercall %u: exit %d port %#x rip %#llx (want IO at %#x)",
				       nr, res.exit, res.port, (unsigned long long)res.rip,
				       HCG_CALL_GPA + 3);
			if (!allowed && enforce) {
				EXPECT_EQ(self->wide ? HCG_EPERM64 : HCG_EPERM32,
					  (uint64_t)res.regs.rax)
					TH_LOG("refused hypercall %u", nr);
			} else {
				EXPECT_TRUE(kvm_result_ok(self->wide, nr, res.regs.rax))
					TH_LOG("hypercall %u: rax %#llx is not KVM's answer", nr,
					       (unsigned long long)res.regs.rax);
			}
		}
	}
}

static void check_counters(struct __test_metadata *_metadata, FIXTURE_DATA(mx) *self,
			   uint64_t allow, uint64_t per_number)
{
	struct hcg_stats st;
	uint64_t want_a[KVMGUARD_HC_NR_OTHER + 1] = { 0 };
	uint64_t want_d[KVMGUARD_HC_NR_OTHER + 1] = { 0 };

	for (size_t i = 0; i < N_NUMBERS; i++) {
		uint32_t nr = numbers[i];

		if (nr < 64 && (allow & BIT(nr)))
			want_a[slot_of(nr)] += per_number;
		else
			want_d[slot_of(nr)] += per_number;
	}
	ASSERT_EQ(0, hcg_stats(&self->g, self->id, &st));
	for (int s = 0; s <= KVMGUARD_HC_NR_OTHER; s++) {
		EXPECT_EQ(want_a[s], st.allowed[s]) TH_LOG("allowed[%d]", s);
		EXPECT_EQ(want_d[s], st.denied[s]) TH_LOG("denied[%d]", s);
	}
}

/*
 * Events after REPEAT rounds and, a second later, one more call of every
 * number: per refused number, the first call's event (count 1) and one
 * for the rest (count REPEAT); nothing for allowed numbers.
 */
static void check_events(struct __test_metadata *_metadata, FIXTURE_DATA(mx) *self,
			 uint64_t allow, bool enforce, const char *policy)
{
	struct hcg_event ev[64];
	uint64_t sum[1001] = { 0 };
	int first[1001], n;

	for (int i = 0; i < 1001; i++)
		first[i] = -1;
	n = hcg_events(&self->sub, self->id, 300, ev, 64);
	usleep(1100000);
	round_of_calls(_metadata, self, 1, allow, enforce);
	n += hcg_events(&self->sub, self->id, 400, ev + n, 64 - n);
	for (int i = 0; i < n; i++) {
		EXPECT_EQ(KVMGUARD_EVENT_HYPERCALL, ev[i].type);
		EXPECT_EQ(enforce ? KVMGUARD_ACTION_DENIED : KVMGUARD_ACTION_AUDITED,
			  ev[i].action);
		EXPECT_TRUE(ev[i].has_policy && !strcmp(ev[i].policy, policy));
		ASSERT_GE(1000u, ev[i].nr) TH_LOG("event for hypercall %llu", (unsigned long long)ev[i].nr);
		if (first[ev[i].nr] < 0) {
			first[ev[i].nr] = i;
			EXPECT_EQ(1ULL, ev[i].count)
				TH_LOG("first event of hypercall %llu", (unsigned long long)ev[i].nr);
		}
		sum[ev[i].nr] += ev[i].count;
	}
	for (size_t i = 0; i < N_NUMBERS; i++) {
		uint32_t nr = numbers[i];
		bool allowed = nr < 64 && (allow & BIT(nr));
		int events = 0;

		for (int j = 0; j < n; j++)
			events += ev[j].nr == nr;
		if (allowed) {
			EXPECT_EQ(0, events) TH_LOG("event for allowed hypercall %u", nr);
			continue;
		}
		/* One at the first call, one for the REPEAT calls held back. */
		EXPECT_EQ(2, events) TH_LOG("events for hypercall %u", nr);
		EXPECT_EQ((uint64_t)REPEAT + 1, sum[nr]) TH_LOG("counts of hypercall %u", nr);
	}
}

TEST_F_TIMEOUT(mx, no_policy, 120)
{
	struct hcg_event ev[8];
	struct hcg_stats st;

	/*
	 * This VM has no policy: KVM answers everything; with the hook
	 * attached (HOLDER restricts) every call is counted as allowed.
	 */
	round_of_calls(_metadata, self, REPEAT, ~0ull, false);
	ASSERT_EQ(0, hcg_stats(&self->g, self->id, &st));
	for (size_t i = 0; i < N_NUMBERS; i++) {
		unsigned int s = slot_of(numbers[i]);

		EXPECT_EQ((uint64_t)REPEAT, st.allowed[s]) TH_LOG("allowed[%u]", s);
		EXPECT_EQ(0ULL, st.denied[s]) TH_LOG("denied[%u]", s);
	}
	EXPECT_EQ((int)N_NUMBERS, st.entries);
	EXPECT_EQ(0, hcg_events(&self->sub, self->id, 300, ev, 8));
}

TEST_F_TIMEOUT(mx, allowlist, 120)
{
	uint64_t allow = BIT(KVM_HC_VAPIC_POLL_IRQ) | BIT(KVM_HC_CLOCK_PAIRING) |
			 BIT(KVM_HC_SCHED_YIELD);

	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "allow",
				KVMGUARD_MODE_ENFORCE, 1, allow, -1));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "allow"));
	round_of_calls(_metadata, self, REPEAT, allow, true);
	check_counters(_metadata, self, allow, REPEAT);
	check_events(_metadata, self, allow, true, P "allow");
	check_counters(_metadata, self, allow, REPEAT + 1);
}

TEST_F_TIMEOUT(mx, none, 120)
{
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "none",
				KVMGUARD_MODE_ENFORCE, 1, 0, -1));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "none"));
	round_of_calls(_metadata, self, REPEAT, 0, true);
	check_counters(_metadata, self, 0, REPEAT);
	check_events(_metadata, self, 0, true, P "none");
	check_counters(_metadata, self, 0, REPEAT + 1);
}

TEST_F_TIMEOUT(mx, audit, 120)
{
	uint64_t allow = BIT(KVM_HC_VAPIC_POLL_IRQ);

	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "audit",
				KVMGUARD_MODE_AUDIT, 1, allow, -1));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "audit"));
	round_of_calls(_metadata, self, REPEAT, allow, false);
	check_counters(_metadata, self, allow, REPEAT);
	check_events(_metadata, self, allow, false, P "audit");
	check_counters(_metadata, self, allow, REPEAT + 1);
}

/*
 * RAX = 0xdead0000_00000005: a 16/32-bit caller makes kick_cpu (KVM
 * ignores the upper half, so must the policy); a 64-bit caller makes an
 * unknown number, never allowed under a restriction.
 */
#define WIDE_NR 0xdead000000000005ULL

TEST_F_TIMEOUT(mx, upper_half_of_rax, 120)
{
	struct hcg_result res;
	struct hcg_stats st;

	/* Restricted to kick_cpu only. */
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "kick",
				KVMGUARD_MODE_ENFORCE, 1, BIT(KVM_HC_KICK_CPU), -1));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "kick"));
	ASSERT_EQ(0, call(self, WIDE_NR, &res));
	EXPECT_EQ(self->wide ? HCG_EPERM64 : 0ULL, (uint64_t)res.regs.rax);
	ASSERT_EQ(0, call(self, KVM_HC_KICK_CPU, &res));
	EXPECT_EQ(0ULL, (uint64_t)res.regs.rax);
	ASSERT_EQ(0, hcg_stats(&self->g, self->id, &st));
	EXPECT_EQ(self->wide ? 1ULL : 2ULL, st.allowed[KVM_HC_KICK_CPU]);
	EXPECT_EQ(0ULL, st.denied[KVM_HC_KICK_CPU]);
	EXPECT_EQ(self->wide ? 1ULL : 0ULL, st.denied[KVMGUARD_HC_NR_OTHER]);

	/* Every number below 64 allowed: a 64-bit wide number still is not. */
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "kick",
				-1, 1, ~0ull, -1));
	ASSERT_EQ(0, call(self, WIDE_NR, &res));
	EXPECT_EQ(self->wide ? HCG_EPERM64 : 0ULL, (uint64_t)res.regs.rax);
	ASSERT_EQ(0, call(self, 0x100000001ULL, &res));
	/* 16/32-bit: that is vapic_poll_irq (0); 64-bit: unknown. */
	EXPECT_EQ(self->wide ? HCG_EPERM64 : 0ULL, (uint64_t)res.regs.rax);

	/* kick_cpu refused: the 16/32-bit caller's wide number is refused. */
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "kick",
				-1, 1, 0, -1));
	ASSERT_EQ(0, call(self, WIDE_NR, &res));
	EXPECT_EQ(self->wide ? HCG_EPERM64 : HCG_EPERM32, (uint64_t)res.regs.rax);
	ASSERT_EQ(0, hcg_stats(&self->g, self->id, &st));
	EXPECT_EQ(self->wide ? 0ULL : 1ULL, st.denied[KVM_HC_KICK_CPU]);
	EXPECT_EQ(self->wide ? 4ULL : 0ULL, st.denied[KVMGUARD_HC_NR_OTHER]);

	/* Unrestricted: KVM's own reading of the number. */
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "kick",
				-1, 0, 0, -1));
	ASSERT_EQ(0, call(self, WIDE_NR, &res));
	EXPECT_EQ(self->wide ? as_seen(true, -KVM_ENOSYS) : 0ULL, (uint64_t)res.regs.rax);
}

/*
 * The event of a refused 64-bit number >= 2^32 must not name the number
 * its low 32 bits spell (here kick_cpu, which the guest did not make).
 */
TEST_F_TIMEOUT(mx, event_names_the_number_made, 120)
{
	struct hcg_event ev[8];
	struct hcg_result res;
	int n;

	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "evnr",
				KVMGUARD_MODE_ENFORCE, 1, 0, -1));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "evnr"));
	ASSERT_EQ(0, call(self, WIDE_NR, &res));
	n = hcg_events(&self->sub, self->id, 400, ev, 8);
	ASSERT_EQ(1, n);
	if (self->wide) {
		EXPECT_EQ((uint64_t)WIDE_NR, ev[0].nr)
			TH_LOG("64-bit hypercall %#llx reported as hypercall %llu",
			       WIDE_NR, (unsigned long long)ev[0].nr);
	} else {
		EXPECT_EQ((uint32_t)KVM_HC_KICK_CPU, ev[0].nr);
	}
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
