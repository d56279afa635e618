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

struct hc_stat {
	uint64_t allowed, denied;
	bool seen;
};

FIXTURE(hc) {
	struct gnl g;
	struct vm vm;
	uint64_t id;
	struct hc_stat stats[KVMGUARD_HC_NR_OTHER + 1];
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

static int stats_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct hc_stat *stats = arg;
	const struct nlattr *tb[KVMGUARD_A_MAX + 1];
	const struct nlattr *nest, *a;
	int rem;

	memset(stats, 0, sizeof(struct hc_stat) * (KVMGUARD_HC_NR_OTHER + 1));
	if (gnl_parse(nlh, tb, KVMGUARD_A_MAX, NULL) || !tb[KVMGUARD_A_VM_HC_STATS])
		return -EBADMSG;
	nest = tb[KVMGUARD_A_VM_HC_STATS];
	rem = gnl_alen(nest);
	for (a = (const void *)((const char *)nest + NLA_HDRLEN);
	     rem >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= rem;
	     rem -= NLA_ALIGN(a->nla_len),
	     a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len))) {
		const struct nlattr *e = (const void *)((const char *)a + NLA_HDRLEN);
		int erem = gnl_alen(a);
		int64_t nr = -1;
		uint64_t allowed = 0, denied = 0;

		if ((a->nla_type & NLA_TYPE_MASK) != KVMGUARD_A_HC_STAT)
			return -EBADMSG;
		for (; erem >= NLA_HDRLEN && e->nla_len >= NLA_HDRLEN && e->nla_len <= erem;
		     erem -= NLA_ALIGN(e->nla_len),
		     e = (const void *)((const char *)e + NLA_ALIGN(e->nla_len))) {
			switch (e->nla_type & NLA_TYPE_MASK) {
			case KVMGUARD_A_HC_NR:
				nr = gnl_get_u32(e);
				break;
			case KVMGUARD_A_HC_ALLOWED:
				allowed = gnl_get_u64(e);
				break;
			case KVMGUARD_A_HC_DENIED:
				denied = gnl_get_u64(e);
				break;
			}
		}
		if (nr < 0 || nr > KVMGUARD_HC_NR_OTHER || stats[nr].seen)
			return -EBADMSG;
		stats[nr] = (struct hc_stat){ allowed, denied, true };
	}
	return 0;
}

static int get_stats(FIXTURE_DATA(hc) *self)
{
	static struct gnl_msg m;

	kg_req(&self->g, &m, KVMGUARD_CMD_VM_GET, false);
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, self->id);
	return gnl_transact(&self->g, &m, stats_cb, self->stats);
}

/* POLICY_NEW/SET with the hypercall rules (allow < 0: not sent). */
static int hc_policy(struct gnl *g, uint8_t cmd, const char *name, int mode,
		     int restrict_, int64_t allow)
{
	static struct gnl_msg m;

	kg_req(g, &m, cmd, false);
	gnl_put_str(&m, KVMGUARD_A_POLICY_NAME, name);
	if (mode >= 0)
		gnl_put_u8(&m, KVMGUARD_A_POLICY_MODE, mode);
	if (restrict_ >= 0)
		gnl_put_u8(&m, KVMGUARD_A_POLICY_HC_RESTRICT, restrict_);
	if (allow >= 0)
		gnl_put_u64(&m, KVMGUARD_A_POLICY_HC_ALLOW, allow);
	return gnl_transact(g, &m, NULL, NULL);
}

#define BIT(n) (1ull << (n))

TEST_F(hc, unrestricted_runs_kvm)
{
	EXPECT_EQ(0, hcall(&self->vm, KVM_HC_VAPIC_POLL_IRQ));
	EXPECT_EQ(-KVM_ENOSYS, hcall(&self->vm, KVM_HC_UNKNOWN));
}

TEST_F_TIMEOUT(hc, enforce_allowlist_and_counters, 120)
{
	ASSERT_EQ(0, hc_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "e",
			       KVMGUARD_MODE_ENFORCE, 1, BIT(KVM_HC_VAPIC_POLL_IRQ)));
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
	EXPECT_EQ(20ULL, self->stats[KVM_HC_VAPIC_POLL_IRQ].allowed);
	EXPECT_EQ(0ULL, self->stats[KVM_HC_VAPIC_POLL_IRQ].denied);
	EXPECT_EQ(0ULL, self->stats[KVM_HC_SCHED_YIELD].allowed);
	EXPECT_EQ(15ULL, self->stats[KVM_HC_SCHED_YIELD].denied);
	EXPECT_EQ(6ULL, self->stats[KVMGUARD_HC_NR_OTHER].denied);
	EXPECT_EQ(0ULL, self->stats[KVMGUARD_HC_NR_OTHER].allowed);
	for (int nr = 0; nr <= KVMGUARD_HC_NR_OTHER; nr++) {
		if (nr == KVM_HC_VAPIC_POLL_IRQ || nr == KVM_HC_SCHED_YIELD ||
		    nr == KVMGUARD_HC_NR_OTHER)
			continue;
		EXPECT_EQ(0ULL, self->stats[nr].allowed + self->stats[nr].denied)
			TH_LOG("hypercall %d counted", nr);
	}

	/* A policy edit applies at once to the running VM. */
	ASSERT_EQ(0, hc_policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "e", -1, 1,
			       BIT(KVM_HC_VAPIC_POLL_IRQ) | BIT(KVM_HC_SCHED_YIELD)));
	EXPECT_EQ(0, hcall(&self->vm, KVM_HC_SCHED_YIELD));
	EXPECT_EQ(-KVM_EPERM, hcall(&self->vm, KVM_HC_UNKNOWN));
	ASSERT_EQ(0, get_stats(self));
	EXPECT_EQ(1ULL, self->stats[KVM_HC_SCHED_YIELD].allowed);
	EXPECT_EQ(15ULL, self->stats[KVM_HC_SCHED_YIELD].denied);
	EXPECT_EQ(7ULL, self->stats[KVMGUARD_HC_NR_OTHER].denied);

	/* No restriction: KVM answers everything itself. */
	ASSERT_EQ(0, hc_policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "e", -1, 0, -1));
	EXPECT_EQ(-KVM_ENOSYS, hcall(&self->vm, KVM_HC_UNKNOWN));
	EXPECT_EQ(0, hcall(&self->vm, KVM_HC_VAPIC_POLL_IRQ));
}

TEST_F(hc, audit_lets_through_and_counts)
{
	ASSERT_EQ(0, hc_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "a",
			       KVMGUARD_MODE_AUDIT, 1, BIT(KVM_HC_VAPIC_POLL_IRQ)));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "a"));
	EXPECT_EQ(-KVM_ENOSYS, hcall(&self->vm, KVM_HC_UNKNOWN));
	EXPECT_EQ(0, hcall(&self->vm, KVM_HC_SCHED_YIELD));
	EXPECT_EQ(0, hcall(&self->vm, KVM_HC_VAPIC_POLL_IRQ));
	ASSERT_EQ(0, get_stats(self));
	EXPECT_EQ(1ULL, self->stats[KVM_HC_SCHED_YIELD].denied);
	EXPECT_EQ(1ULL, self->stats[KVMGUARD_HC_NR_OTHER].denied);
	EXPECT_EQ(1ULL, self->stats[KVM_HC_VAPIC_POLL_IRQ].allowed);
}

struct hc_event {
	uint64_t vm_id, count, nr;
	uint8_t type, action;
};

/* Read HYPERCALL events for @vm_id for @ms; returns how many. */
static int read_hc_events(struct gnl *sub, uint64_t vm_id, int ms, struct hc_event *ev, int max)
{
	uint64_t end = kg_now_ns() + (uint64_t)ms * 1000000;
	int n = 0;

	while (kg_now_ns() < end) {
		const struct nlmsghdr *nlh;
		int len = gnl_recv(sub, 50);

		if (len < 0)
			continue;
		for (nlh = (const void *)sub->rbuf; NLMSG_OK(nlh, (unsigned int)len);
		     nlh = NLMSG_NEXT(nlh, len)) {
			const struct nlattr *tb[KVMGUARD_A_MAX + 1];

			if (nlh->nlmsg_type != sub->family ||
			    gnl_parse(nlh, tb, KVMGUARD_A_MAX, NULL) ||
			    !tb[KVMGUARD_A_EVENT_TYPE] || !tb[KVMGUARD_A_VM_ID] ||
			    gnl_get_u8(tb[KVMGUARD_A_EVENT_TYPE]) != KVMGUARD_EVENT_HYPERCALL ||
			    gnl_get_u64(tb[KVMGUARD_A_VM_ID]) != vm_id || n >= max)
				continue;
			ev[n].vm_id = vm_id;
			ev[n].type = KVMGUARD_EVENT_HYPERCALL;
			ev[n].nr = tb[KVMGUARD_A_EVENT_HC_NR] ?
				   gnl_get_u64(tb[KVMGUARD_A_EVENT_HC_NR]) : ~0ull;
			ev[n].action = tb[KVMGUARD_A_EVENT_ACTION] ?
				       gnl_get_u8(tb[KVMGUARD_A_EVENT_ACTION]) : 0xff;
			ev[n].count = tb[KVMGUARD_A_EVENT_COUNT] ?
				      gnl_get_u64(tb[KVMGUARD_A_EVENT_COUNT]) : 0;
			n++;
		}
	}
	return n;
}

TEST_F_TIMEOUT(hc, violation_events_rate_limited, 60)
{
	struct hc_event ev[64];
	struct gnl sub;
	uint64_t t0, total = 0, sum = 0;
	int n, calls = 100;
	double secs;

	ASSERT_EQ(0, kg_open(&sub));
	ASSERT_EQ(0, gnl_join(&sub, gnl_grp_id(&sub, KVMGUARD_MCGRP_EVENTS)));
	ASSERT_EQ(0, hc_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "ev",
			       KVMGUARD_MODE_ENFORCE, 1, 0));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "ev"));

	t0 = kg_now_ns();
	for (int i = 0; i < calls; i++) {
		EXPECT_EQ(-KVM_EPERM, hcall(&self->vm, KVM_HC_SCHED_YIELD));
	}
	secs = (kg_now_ns() - t0) / 1e9;
	n = read_hc_events(&sub, self->id, 300, ev, 64);
	TH_LOG("%d calls in %.3f s: %d events", calls, secs, n);
	EXPECT_LE(1, n);
	EXPECT_GE(1 + (int)secs + 1, n) TH_LOG("more than one event a second");
	/* After a quiet second, one more call reports what was held back. */
	usleep(1100000);
	EXPECT_EQ(-KVM_EPERM, hcall(&self->vm, KVM_HC_SCHED_YIELD));
	calls++;
	n += read_hc_events(&sub, self->id, 500, ev + n, 64 - n);
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
	EXPECT_EQ(total, self->stats[KVM_HC_SCHED_YIELD].denied);
	gnl_close(&sub);
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
