// SPDX-License-Identifier: GPL-2.0
/*
 * hc_paths: the roads a hypercall takes besides KVM's own path.
 *  - hyperv_toggle_race: a VM whose policy denies KVM hypercall 1 and
 *    allows Hyper-V ones; its vCPUs have Hyper-V enabled (CPUID) and loop
 *    in 32-bit protected mode on vmmcall with EAX = 1 while the host
 *    flips HV_X64_MSR_GUEST_OS_ID between 0 and non-zero as fast as it
 *    can. Each call is either a KVM hypercall (refused: -KVM_EPERM) or a
 *    Hyper-V one (code 1 is none KVM knows: HV_STATUS_INVALID_HYPERCALL_CODE);
 *    a result of 0 is KVM's vapic_poll_irq run unchecked, the hole of a
 *    hook that decides on one reading of the guest OS id while KVM acts on
 *    another. Must stay 0.
 *  - user_mode_not_counted: a 32-bit guest at CPL 3 makes a denied KVM
 *    hypercall: KVM refuses it (-KVM_EPERM) whatever the policy, so it is
 *    no violation: not counted as denied, no event. The same call at CPL 0
 *    is (the control).
 *  - xen_deny, xen_running_vm_refused: POLICY_XEN. Under deny the VMM
 *    cannot enable KVM's Xen emulation (KVM_XEN_HVM_CONFIG,
 *    KVM_XEN_HVM_SET_ATTR and KVM_XEN_VCPU_SET_ATTR fail with EPERM, a XEN
 *    event), so the VM's hypercalls stay KVM's and its allowlist holds;
 *    audit lets it through with an AUDITED event; a change that would
 *    enforce deny for a VM already in Xen mode is refused with EBUSY
 *    (POLICY_SET and VM_SET), changing nothing. Skipped where KVM has no
 *    Xen emulation (Debian's 6.1 is built without CONFIG_KVM_XEN).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "kselftest_harness.h"
#include "kg.h"
#include "hcg.h"

#define P "kgp-"
#define BIT(n) (1ull << (n))

#define HV_MSR_GUEST_OS_ID	0x40000000
#define HV_OS_ID		0x8100000000000000ULL

/* The race loop: 32-bit code and its counters (slot 0, unused by hcg). */
#define RL_GPA		0x1400
#define RL_ZERO_GPA	0x2100	/* u32: results 0 (KVM ran hypercall 1) */
#define RL_EPERM_GPA	0x2104	/* u32: -KVM_EPERM */
#define RL_OTHER_GPA	0x210c	/* u32: anything else (Hyper-V's status) */

/*
 * The race loop, 32-bit, flat segments, per-vCPU counters at RL_*_GPA +
 * 0x20 * index, ESI holding that offset (set from the host). EBX, ECX
 * and EDI are 0 (Hyper-V's input and output GPAs), EDX 0 (the upper half
 * of Hyper-V's input value). Until the byte at HCG_STOP_GPA is set:
 * vmmcall with EAX = 1, then count EAX = 0, EAX = -1 or anything else;
 * then out HCG_PORT_DONE (hcg_run_stop()). Returns its length.
 */
static size_t rl_code(unsigned char *c)
{
	size_t n = 0, jne_stop, jne_nz, jne_other, top = 0;

#define B(x) (c[n++] = (unsigned char)(x))
#define J(t) do { size_t at_ = n; B((t) - (at_ + 1)); } while (0)
#define D(x) do { uint32_t v_ = (x); memcpy(c + n, &v_, 4); n += 4; } while (0)
	B(0x80); B(0x3d); D(HCG_STOP_GPA); B(0x00);	/* cmp byte [stop], 0 */
	B(0x75); jne_stop = n; B(0);			/* jne done */
	B(0xb8); D(1);					/* mov eax, 1 */
	B(0x31); B(0xdb);				/* xor ebx, ebx */
	B(0x31); B(0xc9);				/* xor ecx, ecx */
	B(0x31); B(0xd2);				/* xor edx, edx */
	B(0x31); B(0xff);				/* xor edi, edi */
	B(0x0f); B(0x01); B(0xd9);			/* vmmcall */
	B(0x85); B(0xc0);				/* test eax, eax */
	B(0x75); jne_nz = n; B(0);			/* jne nz */
	B(0xff); B(0x86); D(RL_ZERO_GPA);		/* inc [esi + zero] */
	B(0xeb); J(top);			/* jmp top */
	c[jne_nz] = n - (jne_nz + 1);
	B(0x83); B(0xf8); B(0xff);			/* nz: cmp eax, -1 */
	B(0x75); jne_other = n; B(0);			/* jne other */
	B(0xff); B(0x86); D(RL_EPERM_GPA);		/* inc [esi + eperm] */
	B(0xeb); J(top);			/* jmp top */
	c[jne_other] = n - (jne_other + 1);
	B(0xff); B(0x86); D(RL_OTHER_GPA);		/* other: inc [esi + other] */
	B(0xeb); J(top);			/* jmp top */
	c[jne_stop] = n - (jne_stop + 1);
	B(0xe6); B(HCG_PORT_DONE);			/* done: out DONE, al */
	B(0xeb); B(0xfc);				/* jmp done */
#undef B
#undef D
#undef J
	return n;
}

static int set_msr(struct vm *vm, int i, uint32_t index, uint64_t data)
{
	struct {
		struct kvm_msrs m;
		struct kvm_msr_entry e;
	} msrs = { .m.nmsrs = 1, .e = { .index = index, .data = data } };

	return ioctl(vm->vcpus[i].fd, KVM_SET_MSRS, &msrs) == 1 ? 0 : -EIO;
}

static uint32_t rd32(struct vm *vm, uint64_t gpa)
{
	return *(volatile uint32_t *)((char *)vm->slots[0].hva + gpa);
}

struct toggler {
	struct vm *vm;
	volatile bool stop;
	unsigned long flips;
	int err;
};

static void *toggle(void *arg)
{
	struct toggler *t = arg;

	while (!t->stop) {
		if (set_msr(t->vm, 0, HV_MSR_GUEST_OS_ID, (t->flips & 1) ? HV_OS_ID : 0)) {
			t->err = -EIO;
			break;
		}
		t->flips++;
	}
	return NULL;
}

#define RACE_VCPUS	(VM_MAX_VCPUS - 1)	/* vCPU 0 only toggles */
#define RACE_SECONDS	20

TEST(hyperv_toggle_race)
{
	struct hcg_runner r[RACE_VCPUS];
	struct toggler t = { 0 };
	uint32_t zero = 0, eperm = 0, other = 0;
	pthread_t tt;
	struct gnl g;
	struct kg_vm v;
	struct vm vm;
	uint64_t max;
	size_t len;
	int i, err;

	ASSERT_EQ(0, kg_open(&g));
	kg_cleanup(&g, P);
	max = kg_max_vm_id(&g);
	ASSERT_EQ(0, hcg_vm_create(&vm, false));
	if (ioctl(vm.kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV) <= 0) {
		vm_destroy(&vm);
		SKIP(return, "KVM here has no Hyper-V emulation (KVM_CAP_HYPERV)");
	}
	len = rl_code((unsigned char *)vm.slots[0].hva + RL_GPA);
	ASSERT_LT(len, 0x100u);
	for (i = 0; i < VM_MAX_VCPUS; i++) {
		ASSERT_EQ(i, vm_add_vcpu(&vm, i));
		err = hcg_hv_enable(&vm, i);
		if (err) {
			vm_destroy(&vm);
			SKIP(return, "cannot enable Hyper-V: %s", strerror(-err));
		}
		ASSERT_EQ(0, hcg_set_mode(&vm, i, HCG_PROT32));
	}
	ASSERT_EQ(0, kg_find_new_vm(&g, getpid(), max, &v));
	/* KVM hypercalls: only kick_cpu; Hyper-V ones allowed. */
	ASSERT_EQ(0, hcg_policy(&g, KVMGUARD_CMD_POLICY_NEW, P "race",
				KVMGUARD_MODE_ENFORCE, 1, BIT(5), KVMGUARD_HYPERV_ALLOW));
	ASSERT_EQ(0, kg_vm_set(&g, v.id, P "race"));

	((char *)vm.slots[0].hva)[HCG_STOP_GPA] = 0;
	for (i = 0; i < RACE_VCPUS; i++) {
		struct kvm_regs regs;

		memset(&r[i], 0, sizeof(r[i]));
		r[i].guest_stop = true;
		ASSERT_EQ(0, ioctl(vm.vcpus[i + 1].fd, KVM_GET_REGS, &regs));
		regs.rsi = 0x20 * i;
		regs.rip = RL_GPA;
		regs.rflags = 2;
		ASSERT_EQ(0, ioctl(vm.vcpus[i + 1].fd, KVM_SET_REGS, &regs));
		ASSERT_EQ(0, hcg_run_start(&r[i], &vm, i + 1, 0));
	}
	t.vm = &vm;
	ASSERT_EQ(0, pthread_create(&tt, NULL, toggle, &t));
	sleep(RACE_SECONDS);
	t.stop = true;
	pthread_join(tt, NULL);
	for (i = 0; i < RACE_VCPUS; i++)
		EXPECT_EQ(0, hcg_run_stop(&r[i]));
	for (i = 0; i < RACE_VCPUS; i++) {
		zero += rd32(&vm, RL_ZERO_GPA + 0x20 * i);
		eperm += rd32(&vm, RL_EPERM_GPA + 0x20 * i);
		other += rd32(&vm, RL_OTHER_GPA + 0x20 * i);
	}
	printf("# %lu flips; results: KVM refused %u, Hyper-V %u, hypercall 1 ran %u\n",
	       t.flips, eperm, other, zero);
	EXPECT_EQ(0, t.err);
	/* Both routes were taken, or the test proved nothing. */
	EXPECT_GT(eperm, 0u);
	EXPECT_GT(other, 0u);
	EXPECT_EQ(0u, zero) TH_LOG("a denied KVM hypercall ran %u times", zero);
	vm_destroy(&vm);
	kg_cleanup(&g, P);
	gnl_close(&g);
}

/* vCPU @i into 32-bit protected mode at @cpl (0 or 3), flat segments. */
static int set_cpl(struct vm *vm, int i, int cpl)
{
	struct kvm_segment code = {
		.limit = 0xffffffff, .selector = cpl ? 0x1b : 0x8, .type = 0xb,
		.present = 1, .dpl = cpl, .db = 1, .s = 1, .g = 1,
	};
	struct kvm_segment data = {
		.limit = 0xffffffff, .selector = cpl ? 0x23 : 0x10, .type = 0x3,
		.present = 1, .dpl = cpl, .db = 1, .s = 1, .g = 1,
	};
	struct kvm_sregs s;

	if (ioctl(vm->vcpus[i].fd, KVM_GET_SREGS, &s))
		return -errno;
	s.cr0 = (s.cr0 & ~0xe0000000ULL) | 0x11;	/* ET | PE */
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	if (ioctl(vm->vcpus[i].fd, KVM_SET_SREGS, &s))
		return -errno;
	return 0;
}

/*
 * vmmcall with EAX = @nr, then out HCG_PORT_DONE (IOPL 3, so that CPL 3
 * may). Returns EAX after it, or ~0ULL if the guest did not get there.
 */
static uint64_t call_at(struct vm *vm, int i, uint32_t nr)
{
	struct kvm_regs regs = {
		.rax = nr, .rip = HCG_CALL_GPA, .rflags = 0x3002,
	};
	int ret;

	if (ioctl(vm->vcpus[i].fd, KVM_SET_REGS, &regs))
		return ~0ULL;
	ret = vcpu_run(&vm->vcpus[i]);
	if (ret != KVM_EXIT_IO || vm->vcpus[i].run->io.port != HCG_PORT_DONE) {
		printf("# exit %d\n", ret);
		return ~0ULL;
	}
	if (ioctl(vm->vcpus[i].fd, KVM_GET_REGS, &regs))
		return ~0ULL;
	return (uint32_t)regs.rax;
}

TEST(user_mode_not_counted)
{
	struct hcg_event ev[4];
	struct hcg_stats st;
	struct gnl g, sub;
	struct kg_vm v;
	struct vm vm;
	uint64_t max;

	ASSERT_EQ(0, kg_open(&g));
	ASSERT_EQ(0, kg_open(&sub));
	ASSERT_EQ(0, hcg_subscribe(&sub));
	kg_cleanup(&g, P);
	max = kg_max_vm_id(&g);
	ASSERT_EQ(0, hcg_vm_create(&vm, false));
	ASSERT_EQ(0, vm_add_vcpu(&vm, 0));
	ASSERT_EQ(0, kg_find_new_vm(&g, getpid(), max, &v));
	ASSERT_EQ(0, hcg_policy(&g, KVMGUARD_CMD_POLICY_NEW, P "user",
				KVMGUARD_MODE_ENFORCE, 1, BIT(5), -1));
	ASSERT_EQ(0, kg_vm_set(&g, v.id, P "user"));

	/* CPL 3: KVM's own refusal, no violation. Twice: slow path each time. */
	ASSERT_EQ(0, set_cpl(&vm, 0, 3));
	EXPECT_EQ(HCG_EPERM32, call_at(&vm, 0, 1));
	EXPECT_EQ(HCG_EPERM32, call_at(&vm, 0, 1));
	ASSERT_EQ(0, hcg_stats(&g, v.id, &st));
	EXPECT_EQ(0ULL, st.denied[1]) TH_LOG("CPL 3 calls counted as violations");
	EXPECT_EQ(0, hcg_events(&sub, v.id, 300, ev, 4));

	/* CPL 0: the same call is a violation. */
	ASSERT_EQ(0, set_cpl(&vm, 0, 0));
	EXPECT_EQ(HCG_EPERM32, call_at(&vm, 0, 1));
	ASSERT_EQ(0, hcg_stats(&g, v.id, &st));
	EXPECT_EQ(1ULL, st.denied[1]);
	EXPECT_EQ(1, hcg_events(&sub, v.id, 300, ev, 4));

	vm_destroy(&vm);
	kg_cleanup(&g, P);
	gnl_close(&sub);
	gnl_close(&g);
}

static int xen_policy(struct gnl *g, uint8_t cmd, const char *name, int mode,
		      int restrict_, uint64_t allow, int xen)
{
	static struct gnl_msg m;

	kg_req(g, &m, cmd, false);
	gnl_put_str(&m, KVMGUARD_A_POLICY_NAME, name);
	if (mode >= 0)
		gnl_put_u8(&m, KVMGUARD_A_POLICY_MODE, mode);
	if (restrict_ >= 0)
		gnl_put_u8(&m, KVMGUARD_A_POLICY_HC_RESTRICT, restrict_);
	if (restrict_ == 1)
		gnl_put_u64(&m, KVMGUARD_A_POLICY_HC_ALLOW, allow);
	if (xen >= 0)
		gnl_put_u8(&m, KVMGUARD_A_POLICY_XEN, xen);
	return gnl_transact(g, &m, NULL, NULL);
}

static bool xen_supported(struct vm *vm)
{
	int caps = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XEN_HVM);

	return caps > 0 && (caps & KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL);
}

/* KVM_XEN_HVM_CONFIG turning Xen hypercalls on: 0 or -errno. */
static int xen_config(struct vm *vm)
{
	struct kvm_xen_hvm_config c = {
		.flags = KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL,
	};

	return ioctl(vm->fd, KVM_XEN_HVM_CONFIG, &c) ? -errno : 0;
}

static int xen_set_attr(struct vm *vm)
{
	struct kvm_xen_hvm_attr a = {
		.type = KVM_XEN_ATTR_TYPE_LONG_MODE,
		.u.long_mode = 1,
	};

	return ioctl(vm->fd, KVM_XEN_HVM_SET_ATTR, &a) ? -errno : 0;
}

static int xen_vcpu_set_attr(struct vm *vm)
{
	struct kvm_xen_vcpu_attr a = {
		.type = KVM_XEN_VCPU_ATTR_TYPE_VCPU_ID,
		.u.vcpu_id = 0,
	};

	return ioctl(vm->vcpus[0].fd, KVM_XEN_VCPU_SET_ATTR, &a) ? -errno : 0;
}

FIXTURE(xen) {
	struct gnl g;
	struct gnl sub;
	struct vm vm;
	uint64_t id;
	bool xen;
	struct hcg_klog klog;
};

FIXTURE_SETUP(xen)
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
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	self->id = v.id;
	/* Keeps the rule checked whatever the tested policies say. */
	ASSERT_EQ(0, xen_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "hold",
				KVMGUARD_MODE_AUDIT, -1, 0, KVMGUARD_XEN_DENY));
	self->xen = xen_supported(&self->vm);
}

#define NEED_XEN() do {							\
	if (!self->xen)							\
		SKIP(return, "KVM here has no Xen emulation (CONFIG_KVM_XEN)"); \
} while (0)

FIXTURE_TEARDOWN(xen)
{
	if (self->vm.fd >= 0)
		vm_destroy(&self->vm);
	kg_cleanup(&self->g, P);
	gnl_close(&self->sub);
	gnl_close(&self->g);
	EXPECT_EQ(0, hcg_klog_problems(&self->klog));
	hcg_klog_close(&self->klog);
}

TEST_F_TIMEOUT(xen, deny, 120)
{
	struct hcg_event ev[4];
	struct hcg_regs in = { .rax = 1 };
	struct hcg_result res;
	int n;

	NEED_XEN();
	/* KVM hypercalls: kick_cpu only; no Xen. */
	ASSERT_EQ(0, xen_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "xen",
				KVMGUARD_MODE_ENFORCE, 1, BIT(5), KVMGUARD_XEN_DENY));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "xen"));
	EXPECT_EQ(-EPERM, xen_config(&self->vm));
	EXPECT_EQ(-EPERM, xen_set_attr(&self->vm));
	EXPECT_EQ(-EPERM, xen_vcpu_set_attr(&self->vm));
	n = hcg_events(&self->sub, self->id, 300, ev, 4);
	ASSERT_EQ(1, n);
	EXPECT_EQ(KVMGUARD_EVENT_XEN, ev[0].type);
	EXPECT_EQ(KVMGUARD_ACTION_DENIED, ev[0].action);
	EXPECT_EQ(1ULL, ev[0].count);
	EXPECT_TRUE(ev[0].has_policy && !strcmp(ev[0].policy, P "xen"));
	/* Still KVM's hypercalls, still refused. */
	ASSERT_EQ(0, hcg_set_mode(&self->vm, 0, HCG_PROT32));
	ASSERT_EQ(0, hcg_call(&self->vm, 0, &in, &res));
	EXPECT_EQ(HCG_EPERM32, (uint32_t)res.regs.rax);
	/* Its HYPERCALL event. */
	n = hcg_events(&self->sub, self->id, 300, ev, 4);
	ASSERT_EQ(1, n);
	EXPECT_EQ(KVMGUARD_EVENT_HYPERCALL, ev[0].type);

	/* Audit: let through, reported. */
	usleep(1100000);
	ASSERT_EQ(0, xen_policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "xen",
				KVMGUARD_MODE_AUDIT, -1, 0, -1));
	EXPECT_EQ(0, xen_config(&self->vm));
	n = hcg_events(&self->sub, self->id, 300, ev, 4);
	ASSERT_EQ(1, n);
	EXPECT_EQ(KVMGUARD_EVENT_XEN, ev[0].type);
	EXPECT_EQ(KVMGUARD_ACTION_AUDITED, ev[0].action);
	/* In Xen mode now: enforcing deny cannot apply any more. */
	EXPECT_EQ(-EBUSY, xen_policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "xen",
				     KVMGUARD_MODE_ENFORCE, -1, 0, -1));
}

TEST_F_TIMEOUT(xen, running_vm_refused, 120)
{
	NEED_XEN();
	ASSERT_EQ(0, xen_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "open",
				KVMGUARD_MODE_ENFORCE, 1, BIT(5), KVMGUARD_XEN_ALLOW));
	ASSERT_EQ(0, xen_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "closed",
				KVMGUARD_MODE_ENFORCE, 1, BIT(5), KVMGUARD_XEN_DENY));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "open"));
	ASSERT_EQ(0, xen_config(&self->vm));
	/* Neither an edit nor a move may put it under an enforced deny. */
	EXPECT_EQ(-EBUSY, xen_policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "open",
				     -1, -1, 0, KVMGUARD_XEN_DENY));
	EXPECT_EQ(-EBUSY, kg_vm_set(&self->g, self->id, P "closed"));
	/* Nothing changed: the VMM may still configure Xen. */
	EXPECT_EQ(0, xen_set_attr(&self->vm));
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
