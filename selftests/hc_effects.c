// SPDX-License-Identifier: GPL-2.0
/*
 * hc_effects: a refused hypercall has no side effect; an allowed one has
 * KVM's (the positive control that makes the refusal mean something).
 *  - kick_cpu: vCPU 1 halts with interrupts off in a VM with the in-kernel
 *    irqchip (so HLT blocks in KVM_RUN); vCPU 0 kicks APIC id 1. Refused:
 *    vCPU 1 stays in KVM_RUN and KVM_GET_MP_STATE says HALTED. Allowed: it
 *    wakes and runs on.
 *  - clock_pairing: refused, the target page keeps its pattern. Allowed, KVM
 *    writes struct kvm_clock_pairing there, but only with a TSC host
 *    clocksource; without one KVM answers -KVM_EOPNOTSUPP, nothing tells a
 *    refusal from an allowed call, and the case is skipped.
 *  - send_ipi: refused, vector 0x40 does not reach vCPU 1's IRR (in-kernel
 *    LAPIC, software-enabled); allowed, it does and KVM returns 1.
 *  - two VMs with different policies (kick_cpu allowed in one, not in the
 *    other) running at once: each guest loops on kick_cpu to its halted
 *    vCPU 1; only the first one's vCPU 1 wakes, each guest sees only its
 *    own policy's answers, counters and events are each VM's own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/kvm_para.h>

#include "kselftest_harness.h"
#include "kg.h"
#include "hcg.h"

#define P "kgs-"
#define BIT(n) (1ull << (n))
#define IPI_VECTOR 0x40

FIXTURE(fx) {
	struct gnl g;
	struct gnl sub;
	struct vm vm[2];
	uint64_t id[2];
	struct hcg_runner halt[2];
	struct hcg_runner loop[2];
	struct hcg_klog klog;
};

FIXTURE_SETUP(fx)
{
	memset(self->vm, 0, sizeof(self->vm));
	memset(self->halt, 0, sizeof(self->halt));
	memset(self->loop, 0, sizeof(self->loop));
	self->vm[0].fd = self->vm[1].fd = -1;
	self->klog.fd = -1;
	hcg_klog_open(&self->klog);
	ASSERT_EQ(0, kg_open(&self->g));
	ASSERT_EQ(0, kg_open(&self->sub));
	ASSERT_EQ(0, hcg_subscribe(&self->sub));
	kg_cleanup(&self->g, P);
}

FIXTURE_TEARDOWN(fx)
{
	for (int i = 0; i < 2; i++) {
		if (self->loop[i].started)
			hcg_run_stop(&self->loop[i]);
		if (self->halt[i].started)
			hcg_run_stop(&self->halt[i]);
		if (self->vm[i].fd >= 0)
			vm_destroy(&self->vm[i]);
	}
	kg_cleanup(&self->g, P);
	gnl_close(&self->sub);
	gnl_close(&self->g);
	EXPECT_EQ(0, hcg_klog_problems(&self->klog));
	hcg_klog_close(&self->klog);
}

/* VM @k: irqchip (if asked), vCPUs 0 and 1 in real mode, its kvmguard id. */
static int make_vm(FIXTURE_DATA(fx) *self, int k, bool irqchip)
{
	struct kg_vm v;
	uint64_t max = kg_max_vm_id(&self->g);
	int err;

	err = hcg_vm_create(&self->vm[k], irqchip);
	if (err)
		return err;
	if (vm_add_vcpu(&self->vm[k], 0) != 0 || vm_add_vcpu(&self->vm[k], 1) != 1)
		return -EIO;
	/*
	 * Like a VMM at reset, write each LAPIC back: KVM builds its APIC map
	 * when a vCPU is reset, before that vCPU is online, so without this
	 * the map misses vCPU 1 and no kick or IPI could reach it.
	 */
	for (int i = 0; irqchip && i < 2; i++) {
		struct kvm_lapic_state l;

		if (ioctl(self->vm[k].vcpus[i].fd, KVM_GET_LAPIC, &l) ||
		    ioctl(self->vm[k].vcpus[i].fd, KVM_SET_LAPIC, &l))
			return -errno;
	}
	err = kg_find_new_vm(&self->g, getpid(), max, &v);
	if (err)
		return err;
	self->id[k] = v.id;
	return 0;
}

static bool wait_for(volatile bool *flag, int ms)
{
	for (int i = 0; i < ms / 10 && !*flag; i++)
		usleep(10000);
	return *flag;
}

static uint64_t call_on(struct vm *vm, uint64_t nr, uint64_t a0, uint64_t a1,
			uint64_t a2, uint64_t a3, int *err)
{
	struct hcg_regs in = { .rax = nr, .rbx = a0, .rcx = a1, .rdx = a2, .rsi = a3 };
	struct hcg_result res;

	*err = hcg_call(vm, 0, &in, &res);
	if (*err)
		printf("# hypercall %llu: exit %d port %#x rip %#llx\n",
		       (unsigned long long)nr, res.exit, res.port,
		       (unsigned long long)res.rip);
	return res.regs.rax;
}

TEST_F_TIMEOUT(fx, kick_cpu, 180)
{
	struct kvm_mp_state mp;
	int err;

	ASSERT_EQ(0, make_vm(self, 0, true));
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "kick",
				KVMGUARD_MODE_ENFORCE, 1, 0, -1));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id[0], P "kick"));

	ASSERT_EQ(0, hcg_halt_start(&self->halt[0], &self->vm[0], 1));
	ASSERT_TRUE(wait_for(&self->halt[0].halting, 5000));
	usleep(200000);
	ASSERT_FALSE(self->halt[0].done) TH_LOG("vCPU 1 left KVM_RUN: exit %d",
						self->halt[0].last_exit);

	/* Refused: the halted vCPU is not woken. */
	EXPECT_EQ(HCG_EPERM32, call_on(&self->vm[0], KVM_HC_KICK_CPU, 0, 1, 0, 0, &err));
	ASSERT_EQ(0, err);
	usleep(500000);
	EXPECT_FALSE(self->halt[0].woken) TH_LOG("refused kick_cpu woke vCPU 1");
	EXPECT_FALSE(self->halt[0].done);
	ASSERT_EQ(0, hcg_run_stop(&self->halt[0]));
	if (!self->halt[0].woken) {
		ASSERT_EQ(0, ioctl(self->vm[0].vcpus[1].fd, KVM_GET_MP_STATE, &mp));
		EXPECT_EQ((__u32)KVM_MP_STATE_HALTED, mp.mp_state);
		/* Back into KVM_RUN where it stands: in the hlt. */
		ASSERT_EQ(0, hcg_run_start(&self->halt[0], &self->vm[0], 1, 0));
		usleep(200000);
		ASSERT_FALSE(self->halt[0].done);
	}

	/* Allowed: KVM kicks it and it runs on past the hlt. */
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "kick",
				-1, 1, BIT(KVM_HC_KICK_CPU), -1));
	EXPECT_EQ(0ULL, call_on(&self->vm[0], KVM_HC_KICK_CPU, 0, 1, 0, 0, &err));
	ASSERT_EQ(0, err);
	EXPECT_TRUE(wait_for(&self->halt[0].woken, 5000))
		TH_LOG("allowed kick_cpu did not wake vCPU 1 (exit %d)", self->halt[0].last_exit);
}

struct clock_pairing {	/* struct kvm_clock_pairing */
	int64_t sec;
	int64_t nsec;
	uint64_t tsc;
	uint32_t flags;
	uint32_t pad[9];
};

static bool page_is(const unsigned char *p, unsigned char c)
{
	for (int i = 0; i < 4096; i++)
		if (p[i] != c)
			return false;
	return true;
}

TEST_F_TIMEOUT(fx, clock_pairing, 180)
{
	unsigned char *page;
	uint64_t rax;
	int err;

	ASSERT_EQ(0, make_vm(self, 0, false));
	page = (unsigned char *)self->vm[0].slots[0].hva + HCG_DATA_GPA;
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "clk",
				KVMGUARD_MODE_ENFORCE, 1, 0, -1));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id[0], P "clk"));

	memset(page, 0xa5, 4096);
	EXPECT_EQ(HCG_EPERM32, call_on(&self->vm[0], KVM_HC_CLOCK_PAIRING,
				       HCG_DATA_GPA, 0, 0, 0, &err));
	ASSERT_EQ(0, err);
	EXPECT_TRUE(page_is(page, 0xa5)) TH_LOG("refused clock_pairing wrote guest memory");

	/* Positive control: allowed, KVM writes the structure. */
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "clk",
				-1, 1, BIT(KVM_HC_CLOCK_PAIRING), -1));
	rax = call_on(&self->vm[0], KVM_HC_CLOCK_PAIRING, HCG_DATA_GPA, 0, 0, 0, &err);
	ASSERT_EQ(0, err);
	if (rax == (uint32_t)-KVM_EOPNOTSUPP) {
		EXPECT_TRUE(page_is(page, 0xa5));
		SKIP(return, "KVM cannot pair clocks on this host (clocksource not TSC): "
		     "a refusal looks like an allowed call");
	}
	EXPECT_EQ(0ULL, rax);
	EXPECT_FALSE(page_is(page, 0xa5)) TH_LOG("allowed clock_pairing wrote nothing");
	EXPECT_EQ(0u, ((struct clock_pairing *)page)->flags);

	/* And refused again: nothing written. */
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "clk", -1, 1, 0, -1));
	memset(page, 0x5a, 4096);
	EXPECT_EQ(HCG_EPERM32, call_on(&self->vm[0], KVM_HC_CLOCK_PAIRING,
				       HCG_DATA_GPA, 0, 0, 0, &err));
	EXPECT_TRUE(page_is(page, 0x5a));
}

/* Is @vector pending in the IRR of vCPU index @i? -1 on error. */
static int irr_has(struct vm *vm, int i, int vector)
{
	struct kvm_lapic_state l;
	uint32_t irr;

	if (ioctl(vm->vcpus[i].fd, KVM_GET_LAPIC, &l))
		return -1;
	memcpy(&irr, l.regs + 0x200 + (vector / 32) * 0x10, 4);
	return !!(irr & (1u << (vector % 32)));
}

TEST_F_TIMEOUT(fx, send_ipi, 180)
{
	struct kvm_lapic_state l;
	uint32_t svr;
	int err;

	ASSERT_EQ(0, make_vm(self, 0, true));
	/* vCPU 1's APIC software-enabled (SVR bit 8) so it accepts fixed IPIs. */
	ASSERT_EQ(0, ioctl(self->vm[0].vcpus[1].fd, KVM_GET_LAPIC, &l));
	memcpy(&svr, l.regs + 0xf0, 4);
	svr |= 0x1ff;
	memcpy(l.regs + 0xf0, &svr, 4);
	ASSERT_EQ(0, ioctl(self->vm[0].vcpus[1].fd, KVM_SET_LAPIC, &l));
	ASSERT_EQ(0, irr_has(&self->vm[0], 1, IPI_VECTOR));

	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "ipi",
				KVMGUARD_MODE_ENFORCE, 1, 0, -1));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id[0], P "ipi"));
	/* a0 = bitmap (APIC id 1), a1 = high bitmap, a2 = min id, a3 = ICR */
	EXPECT_EQ(HCG_EPERM32, call_on(&self->vm[0], KVM_HC_SEND_IPI, 2, 0, 0,
				       IPI_VECTOR, &err));
	ASSERT_EQ(0, err);
	EXPECT_EQ(0, irr_has(&self->vm[0], 1, IPI_VECTOR)) TH_LOG("refused send_ipi delivered");

	/* Positive control: allowed, one IPI delivered. */
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "ipi",
				-1, 1, BIT(KVM_HC_SEND_IPI), -1));
	EXPECT_EQ(1ULL, call_on(&self->vm[0], KVM_HC_SEND_IPI, 2, 0, 0, IPI_VECTOR, &err));
	ASSERT_EQ(0, err);
	EXPECT_EQ(1, irr_has(&self->vm[0], 1, IPI_VECTOR)) TH_LOG("allowed send_ipi not delivered");
}

TEST_F_TIMEOUT(fx, two_vms_two_policies, 180)
{
	struct hcg_event ev[64];
	struct hcg_stats st[2];
	uint32_t ok[2], eperm[2];
	int n, per_vm[2] = { 0, 0 };

	for (int k = 0; k < 2; k++)
		ASSERT_EQ(0, make_vm(self, k, true));
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "kick-yes",
				KVMGUARD_MODE_ENFORCE, 1, BIT(KVM_HC_KICK_CPU), -1));
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "kick-no",
				KVMGUARD_MODE_ENFORCE, 1, BIT(KVM_HC_VAPIC_POLL_IRQ), -1));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id[0], P "kick-yes"));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id[1], P "kick-no"));

	for (int k = 0; k < 2; k++) {
		ASSERT_EQ(0, hcg_halt_start(&self->halt[k], &self->vm[k], 1));
		ASSERT_TRUE(wait_for(&self->halt[k].halting, 5000));
	}
	usleep(200000);
	/* Both guests loop on kick_cpu(APIC id 1) at the same time. */
	for (int k = 0; k < 2; k++)
		ASSERT_EQ(0, hcg_loop_start(&self->loop[k], &self->vm[k], 0,
					    KVM_HC_KICK_CPU, 1));
	for (int i = 0; i < 300; i++) {
		if (hcg_loop_ok(&self->vm[0]) >= 200 && hcg_loop_eperm(&self->vm[1]) >= 200)
			break;
		usleep(10000);
	}
	/* Both still going at once. */
	EXPECT_FALSE(self->loop[0].done);
	EXPECT_FALSE(self->loop[1].done);
	for (int k = 0; k < 2; k++) {
		EXPECT_EQ(0, hcg_run_stop(&self->loop[k]));
		ok[k] = hcg_loop_ok(&self->vm[k]);
		eperm[k] = hcg_loop_eperm(&self->vm[k]);
		ASSERT_EQ(0, hcg_stats(&self->g, self->id[k], &st[k]));
	}
	TH_LOG("allowing VM: %u ok, %u refused; refusing VM: %u ok, %u refused",
	       ok[0], eperm[0], ok[1], eperm[1]);
	EXPECT_LE(1u, ok[0]);
	EXPECT_EQ(0u, eperm[0]);
	EXPECT_EQ(0u, ok[1]);
	EXPECT_LE(1u, eperm[1]);
	EXPECT_EQ((uint64_t)ok[0], st[0].allowed[KVM_HC_KICK_CPU]);
	EXPECT_EQ(0ULL, st[0].denied[KVM_HC_KICK_CPU]);
	EXPECT_EQ(0ULL, st[1].allowed[KVM_HC_KICK_CPU]);
	EXPECT_EQ((uint64_t)eperm[1], st[1].denied[KVM_HC_KICK_CPU]);

	EXPECT_TRUE(wait_for(&self->halt[0].woken, 3000))
		TH_LOG("allowed kicks did not wake the first VM's vCPU 1");
	EXPECT_FALSE(self->halt[1].woken) TH_LOG("refused kicks woke the second VM's vCPU 1");
	EXPECT_FALSE(self->halt[1].done);

	n = hcg_events(&self->sub, 0, 300, ev, 64);
	for (int i = 0; i < n; i++) {
		if (ev[i].vm_id == self->id[0])
			per_vm[0]++;
		if (ev[i].vm_id == self->id[1]) {
			per_vm[1]++;
			EXPECT_EQ((uint32_t)KVM_HC_KICK_CPU, ev[i].nr);
			EXPECT_TRUE(ev[i].has_policy && !strcmp(ev[i].policy, P "kick-no"));
		}
	}
	EXPECT_EQ(0, per_vm[0]) TH_LOG("events for the VM that may kick");
	EXPECT_LE(1, per_vm[1]);
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
