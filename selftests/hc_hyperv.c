// SPDX-License-Identifier: GPL-2.0
/*
 * hc_hyperv: the Hyper-V hypercall rule (POLICY_HYPERV), from a 32-bit
 * and a 64-bit guest at CPL 0 with Hyper-V enabled (Hyper-V CPUID leaves
 * from KVM_GET_SUPPORTED_HV_CPUID, HV_X64_MSR_GUEST_OS_ID set), making a
 * hypercall with a bogus code:
 *  - deny: HV_STATUS_ACCESS_DENIED (6) in RAX (64-bit) or EDX:EAX
 *    (32-bit), RIP past the vmmcall, VM_HV_DENIED counts it, a HYPERV
 *    event (DENIED, count 1, EVENT_HV_CODE the call code);
 *  - allow: the call reaches KVM (HV_STATUS_INVALID_HYPERCALL_CODE, 2),
 *    VM_HV_ALLOWED counts it, no event;
 *  - audit: reaches KVM, counted as denied, an AUDITED event;
 *  - a KVM hypercall allowlist does not apply to Hyper-V calls (they are a
 *    separate path): neither refused with -KVM_EPERM nor counted as KVM
 *    hypercalls.
 * Skipped (exit 4) when KVM cannot enable Hyper-V hypercalls here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "kselftest_harness.h"
#include "kg.h"
#include "hcg.h"

#define P "kgv-"
#define BIT(n) (1ull << (n))

#define HV_MSR_GUEST_OS_ID		0x40000000
#define HV_STATUS_INVALID_HYPERCALL_CODE 2
#define HV_STATUS_ACCESS_DENIED		6
#define HV_BOGUS_CODE			0x7fff
#define HV_OTHER_CODE			0x7ffe	/* bogus too */
#define MAX_CPUID			256

struct cpuid_buf {
	struct kvm_cpuid2 c;
	struct kvm_cpuid_entry2 e[MAX_CPUID];
};

FIXTURE(hv) {
	struct gnl g;
	struct gnl sub;
	struct vm vm;
	uint64_t id;
	bool wide;
	struct hcg_klog klog;
};

FIXTURE_VARIANT(hv) {
	enum hcg_mode mode;
};

FIXTURE_VARIANT_ADD(hv, prot32) { .mode = HCG_PROT32 };
FIXTURE_VARIANT_ADD(hv, long64) { .mode = HCG_LONG64 };

/* Basic CPUID leaves KVM supports, KVM's own 0x4000xxxx leaves replaced by
 * the Hyper-V ones. 0 or -errno. */
static int set_hv_cpuid(struct vm *vm)
{
	static struct cpuid_buf basic, hv, out;
	int vfd = vm->vcpus[0].fd, n = 0;

	basic.c.nent = MAX_CPUID;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, &basic))
		return -errno;
	hv.c.nent = MAX_CPUID;
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYS_HYPERV_CPUID) > 0) {
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_HV_CPUID, &hv))
			return -errno;
	} else if (ioctl(vfd, KVM_GET_SUPPORTED_HV_CPUID, &hv)) {
		return -errno;
	}
	for (uint32_t i = 0; i < basic.c.nent && n < MAX_CPUID; i++)
		if ((basic.e[i].function & 0xf0000000) != 0x40000000)
			out.e[n++] = basic.e[i];
	for (uint32_t i = 0; i < hv.c.nent && n < MAX_CPUID; i++)
		out.e[n++] = hv.e[i];
	out.c.nent = n;
	if (ioctl(vfd, KVM_SET_CPUID2, &out))
		return -errno;
	return 0;
}

static int set_guest_os_id(struct vm *vm)
{
	struct {
		struct kvm_msrs m;
		struct kvm_msr_entry e;
	} msrs = {
		.m.nmsrs = 1,
		.e = { .index = HV_MSR_GUEST_OS_ID, .data = 0x8100000000000000ULL },
	};

	return ioctl(vm->vcpus[0].fd, KVM_SET_MSRS, &msrs) == 1 ? 0 : -EIO;
}

FIXTURE_SETUP(hv)
{
	struct kg_vm v;
	uint64_t max;
	int err;

	self->vm.fd = -1;
	self->klog.fd = -1;
	hcg_klog_open(&self->klog);
	ASSERT_EQ(0, kg_open(&self->g));
	ASSERT_EQ(0, kg_open(&self->sub));
	ASSERT_EQ(0, hcg_subscribe(&self->sub));
	kg_cleanup(&self->g, P);
	max = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, hcg_vm_create(&self->vm, false));
	if (ioctl(self->vm.kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV) <= 0)
		SKIP(return, "KVM here has no Hyper-V emulation (KVM_CAP_HYPERV)");
	ASSERT_EQ(0, vm_add_vcpu(&self->vm, 0));
	err = set_hv_cpuid(&self->vm);
	if (err)
		SKIP(return, "cannot set the Hyper-V CPUID leaves: %s", strerror(-err));
	if (set_guest_os_id(&self->vm))
		SKIP(return, "cannot set HV_X64_MSR_GUEST_OS_ID");
	ASSERT_EQ(0, hcg_set_mode(&self->vm, 0, variant->mode));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	self->id = v.id;
	self->wide = variant->mode == HCG_LONG64;
}

FIXTURE_TEARDOWN(hv)
{
	if (self->vm.fd >= 0)
		vm_destroy(&self->vm);
	kg_cleanup(&self->g, P);
	gnl_close(&self->sub);
	gnl_close(&self->g);
	EXPECT_EQ(0, hcg_klog_problems(&self->klog));
	hcg_klog_close(&self->klog);
}

/*
 * A Hyper-V hypercall with a bogus code; its 64-bit status (EDX:EAX for a
 * 32-bit caller, which gets EDX = 1, a rep count, to see it rewritten), or
 * ~0 if the guest did not stop right after the vmmcall. @rax: what RAX
 * holds for a 64-bit caller (unused by Hyper-V there); @code: the call
 * code (bits 0-15 of the input value).
 */
static uint64_t hv_call_code(FIXTURE_DATA(hv) *self, uint64_t rax, uint16_t code)
{
	struct hcg_regs in = { 0 };
	struct hcg_result res;

	if (self->wide) {
		in.rax = rax;
		in.rcx = code;
	} else {
		in.rax = code;
		in.rdx = 1;
	}
	if (hcg_call(&self->vm, 0, &in, &res)) {
		printf("# Hyper-V call: exit %d port %#x rip %#llx\n", res.exit, res.port,
		       (unsigned long long)res.rip);
		return ~0ULL;
	}
	if (self->wide)
		return res.regs.rax;
	return (res.regs.rdx << 32) | (uint32_t)res.regs.rax;
}

static uint64_t hv_call(FIXTURE_DATA(hv) *self, uint64_t rax)
{
	return hv_call_code(self, rax, HV_BOGUS_CODE);
}

/* Hyper-V hypercalls reach KVM's Hyper-V code at all? */
static bool hv_works(FIXTURE_DATA(hv) *self)
{
	return hv_call(self, 1) == HV_STATUS_INVALID_HYPERCALL_CODE;
}

TEST_F_TIMEOUT(hv, deny_allow_audit, 180)
{
	struct hcg_event ev[8];
	struct hcg_stats st;
	int n;

	if (!hv_works(self))
		SKIP(return, "Hyper-V hypercalls are not enabled in this VM");
	/* Keeps the hook attached when the tested policy needs none. */
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "hold",
				-1, -1, 0, KVMGUARD_HYPERV_DENY));
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "hv",
				KVMGUARD_MODE_ENFORCE, -1, 0, KVMGUARD_HYPERV_DENY));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "hv"));

	/* Denied. */
	EXPECT_EQ((uint64_t)HV_STATUS_ACCESS_DENIED, hv_call(self, 1));
	ASSERT_EQ(0, hcg_stats(&self->g, self->id, &st));
	ASSERT_TRUE(st.has_hv);
	EXPECT_EQ(1ULL, st.hv_denied);
	EXPECT_EQ(0ULL, st.hv_allowed);
	n = hcg_events(&self->sub, self->id, 300, ev, 8);
	ASSERT_EQ(1, n);
	EXPECT_EQ(KVMGUARD_EVENT_HYPERV, ev[0].type);
	EXPECT_EQ(KVMGUARD_ACTION_DENIED, ev[0].action);
	EXPECT_EQ(1ULL, ev[0].count);
	EXPECT_TRUE(ev[0].has_policy && !strcmp(ev[0].policy, P "hv"));
	EXPECT_TRUE(ev[0].has_hv_code) TH_LOG("a HYPERV event without EVENT_HV_CODE");
	EXPECT_EQ(HV_BOGUS_CODE, ev[0].hv_code);

	/* Allowed: KVM answers. */
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "hv",
				-1, -1, 0, KVMGUARD_HYPERV_ALLOW));
	EXPECT_EQ((uint64_t)HV_STATUS_INVALID_HYPERCALL_CODE, hv_call(self, 1));
	ASSERT_EQ(0, hcg_stats(&self->g, self->id, &st));
	EXPECT_EQ(1ULL, st.hv_denied);
	EXPECT_EQ(1ULL, st.hv_allowed);

	/* Audit: KVM answers, counted as denied, reported as audited. */
	usleep(1100000);	/* past the one-event-a-second window */
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "hv",
				KVMGUARD_MODE_AUDIT, -1, 0, KVMGUARD_HYPERV_DENY));
	EXPECT_EQ((uint64_t)HV_STATUS_INVALID_HYPERCALL_CODE,
		  hv_call_code(self, 1, HV_OTHER_CODE));
	ASSERT_EQ(0, hcg_stats(&self->g, self->id, &st));
	EXPECT_EQ(2ULL, st.hv_denied);
	EXPECT_EQ(1ULL, st.hv_allowed);
	n = hcg_events(&self->sub, self->id, 300, ev, 8);
	ASSERT_EQ(1, n);
	EXPECT_EQ(KVMGUARD_EVENT_HYPERV, ev[0].type);
	EXPECT_EQ(KVMGUARD_ACTION_AUDITED, ev[0].action);
	EXPECT_EQ(1ULL, ev[0].count);
	EXPECT_TRUE(ev[0].has_hv_code);
	EXPECT_EQ(HV_OTHER_CODE, ev[0].hv_code);
	/* No KVM hypercall was counted for any of them. */
	EXPECT_EQ(0, st.entries);
}

TEST_F_TIMEOUT(hv, kvm_allowlist_leaves_hyperv_alone, 180)
{
	struct hcg_stats st;

	if (!hv_works(self))
		SKIP(return, "Hyper-V hypercalls are not enabled in this VM");
	/*
	 * Restricted to vapic_poll_irq (1): a 64-bit caller's RAX says 1 (the
	 * allowed number), a 32-bit caller's EAX holds the Hyper-V code
	 * (refused as a KVM number). Neither is a KVM hypercall.
	 */
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "kvm",
				KVMGUARD_MODE_ENFORCE, 1, BIT(1), KVMGUARD_HYPERV_ALLOW));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "kvm"));
	EXPECT_EQ((uint64_t)HV_STATUS_INVALID_HYPERCALL_CODE, hv_call(self, 1));
	EXPECT_EQ((uint64_t)HV_STATUS_INVALID_HYPERCALL_CODE, hv_call(self, 63));
	ASSERT_EQ(0, hcg_stats(&self->g, self->id, &st));
	EXPECT_EQ(0, st.entries) TH_LOG("Hyper-V calls counted as KVM hypercalls");
	EXPECT_EQ(2ULL, st.hv_allowed);
	EXPECT_EQ(0ULL, st.hv_denied);
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
