// SPDX-License-Identifier: GPL-2.0
/*
 * hc_cpuid: a guest is not told about KVM PV features whose hypercalls its
 * policy denies. The VMM (this test) sets CPUID with the KVM signature
 * and, in the KVM features leaf, PV_UNHALT (kick_cpu), PV_SEND_IPI
 * (send_ipi), PV_SCHED_YIELD (sched_yield), HC_MAP_GPA_RANGE and
 * MIGRATION_CONTROL (map_gpa_range) and CLOCKSOURCE2 (no hypercall); a
 * real-mode guest executes CPUID on the features leaf and reports EAX.
 * Under `hypercalls none` (enforce) the hypercall features are gone and
 * the rest stays; an allowlist keeps exactly its features; audit mode and
 * no restriction keep them all; the KVM leaves are found after Hyper-V
 * style leaves at 0x40000100 too. A policy change that would deny a
 * feature a running VM was told about is refused with EBUSY and a message
 * naming the VM and the feature, unless the request carries
 * KVMGUARD_A_FORCE (the CLI's `force`).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <asm/kvm_para.h>
#include <linux/kvm_para.h>

#include "kselftest_harness.h"
#include "hcg.h"
#include "kg.h"
#include "vm.h"

#define P "kgpv-"
#define BIT(n) (1u << (n))
#define MAX_CPUID 256

/* What the test advertises, and which of it needs a hypercall. */
#define F_UNHALT	BIT(KVM_FEATURE_PV_UNHALT)
#define F_IPI		BIT(KVM_FEATURE_PV_SEND_IPI)
#define F_YIELD		BIT(KVM_FEATURE_PV_SCHED_YIELD)
#define F_GPA		(BIT(KVM_FEATURE_HC_MAP_GPA_RANGE) | \
			 BIT(KVM_FEATURE_MIGRATION_CONTROL))
#define F_CLOCK		BIT(KVM_FEATURE_CLOCKSOURCE2)
#define F_HC		(F_UNHALT | F_IPI | F_YIELD | F_GPA)
#define F_ALL		(F_HC | F_CLOCK)

struct cpuid_buf {
	struct kvm_cpuid2 c;
	struct kvm_cpuid_entry2 e[MAX_CPUID];
};

/*
 * 1000: mov eax, LEAF		66 b8 LEAF(4)
 * 1006: cpuid			0f a2
 * 1008: out VM_IO_PORT, eax	66 e7 10
 * 100b: jmp 1000		eb f3
 */
static const unsigned char cpuid_code[] = {
	0x66, 0xb8, 0, 0, 0, 0, 0x0f, 0xa2, 0x66, 0xe7, VM_IO_PORT, 0xeb, 0xf3,
};
#define LEAF_OFFSET 2

FIXTURE(pv) {
	struct gnl g;
	struct vm vm;
	uint64_t id;
};

FIXTURE_SETUP(pv)
{
	struct kg_vm v;
	uint64_t max;

	self->vm.fd = -1;
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
	max = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, vm_create(&self->vm));
	ASSERT_EQ(0, vm_add_slot(&self->vm, 0, 0, VM_SLOT0_SIZE));
	memcpy((char *)self->vm.slots[0].hva + VM_CODE_GPA, cpuid_code,
	       sizeof(cpuid_code));
	ASSERT_EQ(0, vm_add_vcpu(&self->vm, 0));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	self->id = v.id;
}

FIXTURE_TEARDOWN(pv)
{
	if (self->vm.fd >= 0)
		vm_destroy(&self->vm);
	kg_cleanup(&self->g, P);
	gnl_close(&self->g);
}

static void put_sig(struct kvm_cpuid_entry2 *e, uint32_t fn, uint32_t eax,
		    const char sig[12])
{
	memset(e, 0, sizeof(*e));
	e->function = fn;
	e->eax = eax;
	memcpy(&e->ebx, sig, 4);
	memcpy(&e->ecx, sig + 4, 4);
	memcpy(&e->edx, sig + 8, 4);
}

/*
 * KVM_SET_CPUID2 on vCPU 0: KVM's supported leaves without its 0x4000xxxx
 * ones, then the KVM signature at @base with @features in base + 1; for
 * base 0x40000100 another hypervisor's signature comes first at
 * 0x40000000, as when a VMM offers Hyper-V leaves. 0 or -errno.
 */
static int set_cpuid(struct vm *vm, uint32_t base, uint32_t features)
{
	static struct cpuid_buf sup, out;
	int n = 0;

	/*
	 * Once: leaf 1 EBX and the topology leaves carry the APIC id of the
	 * host CPU the ioctl ran on, and KVM refuses a CPUID that differs
	 * from the one a vCPU already ran with.
	 */
	if (!sup.c.nent) {
		sup.c.nent = MAX_CPUID;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, &sup)) {
			sup.c.nent = 0;
			return -errno;
		}
	}
	for (uint32_t j = 0; j < sup.c.nent && n < MAX_CPUID - 4; j++)
		if ((sup.e[j].function & 0xf0000000) != 0x40000000)
			out.e[n++] = sup.e[j];
	if (base != 0x40000000)
		put_sig(&out.e[n++], 0x40000000, 0x40000001, "NotKVMNotKVM");
	put_sig(&out.e[n++], base, base | 1, "KVMKVMKVM\0\0\0");
	memset(&out.e[n], 0, sizeof(out.e[n]));
	out.e[n].function = base | 1;
	out.e[n++].eax = features;
	out.c.nent = n;
	return ioctl(vm->vcpus[0].fd, KVM_SET_CPUID2, &out) ? -errno : 0;
}

/* EAX of the guest's CPUID @leaf; bit 31 set (never a feature) on failure. */
static uint32_t guest_cpuid(struct vm *vm, uint32_t leaf)
{
	struct kvm_run *run = vm->vcpus[0].run;
	uint32_t eax;
	int r;

	memcpy((char *)vm->slots[0].hva + VM_CODE_GPA + LEAF_OFFSET, &leaf, 4);
	do {
		r = vcpu_run(&vm->vcpus[0]);
	} while (r == -EINTR);
	if (r != KVM_EXIT_IO || run->io.port != VM_IO_PORT || run->io.size != 4) {
		printf("# cpuid %#x: exit %d\n", leaf, r);
		return 0x80000000u;
	}
	memcpy(&eax, (char *)run + run->io.data_offset, 4);
	return eax;
}

/* Policy @name with the allowlist @allow (restrict_ < 0: unrestricted). */
static int policy(struct gnl *g, uint8_t cmd, const char *name, int mode,
		  int restrict_, uint64_t allow, bool force)
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
	if (force)
		gnl_put(&m, KVMGUARD_A_FORCE, NULL, 0);
	return gnl_transact(g, &m, NULL, NULL);
}

static int vm_set(struct gnl *g, uint64_t id, const char *name, bool force)
{
	static struct gnl_msg m;

	kg_req(g, &m, KVMGUARD_CMD_VM_SET, false);
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, id);
	gnl_put_str(&m, KVMGUARD_A_POLICY_NAME, name);
	if (force)
		gnl_put(&m, KVMGUARD_A_FORCE, NULL, 0);
	return gnl_transact(g, &m, NULL, NULL);
}

#define HC(n) (1ull << (n))

/* The guest under @name (set before its CPUID), told from base @base. */
static uint32_t told(FIXTURE_DATA(pv) *self, const char *name, uint32_t base)
{
	int err;

	if (name && kg_vm_set(&self->g, self->id, name)) {
		printf("# vm set %s: %s\n", name, self->g.ext_msg);
		return 0x80000000u;
	}
	err = set_cpuid(&self->vm, base, F_ALL);
	if (err) {
		printf("# KVM_SET_CPUID2: %s\n", strerror(-err));
		return 0x80000000u;
	}
	return guest_cpuid(&self->vm, base | 1);
}

TEST_F(pv, none_hides_hypercall_features)
{
	uint32_t eax;

	ASSERT_EQ(0, policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "none",
			    KVMGUARD_MODE_ENFORCE, 1, 0, false));
	eax = told(self, P "none", 0x40000000);
	ASSERT_EQ(0u, eax & 0x80000000u);
	TH_LOG("hypercalls none: guest sees features %#x (VMM set %#x)", eax, F_ALL);
	EXPECT_EQ(0u, eax & F_HC) TH_LOG("hypercall features still advertised: %#x",
					 eax & F_HC);
	EXPECT_EQ(F_CLOCK, eax & F_CLOCK);
}

TEST_F(pv, kvm_leaves_after_hyperv_style_leaves)
{
	uint32_t eax;

	ASSERT_EQ(0, policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "none",
			    KVMGUARD_MODE_ENFORCE, 1, 0, false));
	eax = told(self, P "none", 0x40000100);
	ASSERT_EQ(0u, eax & 0x80000000u);
	EXPECT_EQ(0u, eax & F_HC) TH_LOG("at 0x40000101: %#x", eax);
	EXPECT_EQ(F_CLOCK, eax & F_CLOCK);
}

TEST_F(pv, allowlist_keeps_its_features)
{
	uint32_t eax;

	ASSERT_EQ(0, policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "kick",
			    KVMGUARD_MODE_ENFORCE, 1,
			    HC(KVM_HC_KICK_CPU) | HC(KVM_HC_SCHED_YIELD), false));
	eax = told(self, P "kick", 0x40000000);
	ASSERT_EQ(0u, eax & 0x80000000u);
	EXPECT_EQ(F_UNHALT | F_YIELD | F_CLOCK, eax) TH_LOG("got %#x", eax);
}

TEST_F(pv, audit_and_unrestricted_keep_all)
{
	uint32_t eax;

	eax = told(self, NULL, 0x40000000);
	EXPECT_EQ(F_ALL, eax) TH_LOG("no policy: %#x", eax);
	ASSERT_EQ(0, policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "all",
			    KVMGUARD_MODE_ENFORCE, 0, 0, false));
	eax = told(self, P "all", 0x40000000);
	EXPECT_EQ(F_ALL, eax) TH_LOG("unrestricted: %#x", eax);
	ASSERT_EQ(0, policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "audit",
			    KVMGUARD_MODE_AUDIT, 1, 0, false));
	eax = told(self, P "audit", 0x40000000);
	EXPECT_EQ(F_ALL, eax) TH_LOG("audit: %#x", eax);
}

/* The extack of the last request names @what. */
static bool msg_has(struct gnl *g, const char *what)
{
	printf("# extack: %s\n", g->ext_msg);
	return strstr(g->ext_msg, what);
}

TEST_F(pv, told_feature_change_refused_unless_forced)
{
	char vmname[32];
	uint32_t eax;

	snprintf(vmname, sizeof(vmname), "VM %llu", (unsigned long long)self->id);
	ASSERT_EQ(0, policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "open",
			    KVMGUARD_MODE_ENFORCE, 1,
			    HC(KVM_HC_KICK_CPU) | HC(KVM_HC_SEND_IPI) |
			    HC(KVM_HC_SCHED_YIELD) | HC(KVM_HC_MAP_GPA_RANGE), false));
	ASSERT_EQ(0, policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "none",
			    KVMGUARD_MODE_ENFORCE, 1, 0, false));
	eax = told(self, P "open", 0x40000000);
	ASSERT_EQ(F_ALL, eax);

	/* policy set: dropping kick_cpu would take PV_UNHALT from the guest. */
	EXPECT_EQ(-EBUSY, policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "open", -1, 1,
				 HC(KVM_HC_SEND_IPI) | HC(KVM_HC_SCHED_YIELD) |
				 HC(KVM_HC_MAP_GPA_RANGE), false));
	EXPECT_TRUE(msg_has(&self->g, vmname));
	EXPECT_TRUE(msg_has(&self->g, "kick_cpu"));
	/* Audit mode denies nothing: allowed. */
	EXPECT_EQ(0, policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "open",
			    KVMGUARD_MODE_AUDIT, 1, 0, false));
	/* Back to enforce with nothing allowed: refused. */
	EXPECT_EQ(-EBUSY, policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "open",
				 KVMGUARD_MODE_ENFORCE, -1, 0, false));
	EXPECT_TRUE(msg_has(&self->g, vmname));
	/* vm set to a policy that denies them: refused. */
	EXPECT_EQ(-EBUSY, vm_set(&self->g, self->id, P "none", false));
	EXPECT_TRUE(msg_has(&self->g, vmname));
	/* Deleting the policy leaves it with none: allowed. */

	/* Forced: done. */
	EXPECT_EQ(0, vm_set(&self->g, self->id, P "none", true));
	/* What the guest saw stays as it was. */
	EXPECT_EQ(F_ALL, guest_cpuid(&self->vm, 0x40000001));
}

TEST_F(pv, policy_set_forced)
{
	ASSERT_EQ(0, policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "open",
			    KVMGUARD_MODE_ENFORCE, 0, 0, false));
	ASSERT_EQ(F_ALL, told(self, P "open", 0x40000000));
	EXPECT_EQ(-EBUSY, policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "open", -1, 1,
				 HC(KVM_HC_KICK_CPU), false));
	EXPECT_TRUE(msg_has(&self->g, "send_ipi") ||
		    msg_has(&self->g, "sched_yield") ||
		    msg_has(&self->g, "map_gpa_range"));
	EXPECT_EQ(0, policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "open", -1, 1,
			    HC(KVM_HC_KICK_CPU), true));
}

TEST_F(pv, untold_vm_changes_freely)
{
	/* A VM whose CPUID carries no hypercall feature blocks nothing. */
	ASSERT_EQ(0, policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "open",
			    KVMGUARD_MODE_ENFORCE, 0, 0, false));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "open"));
	ASSERT_EQ(0, set_cpuid(&self->vm, 0x40000000, F_CLOCK));
	EXPECT_EQ(F_CLOCK, guest_cpuid(&self->vm, 0x40000001));
	EXPECT_EQ(0, policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "open", -1, 1, 0,
			    false));
}

/* The CLI: `policy set ... force` and `vm set ... force`. */
TEST_F(pv, cli_force)
{
	const char *cli = getenv("KVMGUARD_CLI");
	char cmd[256], *out = NULL, *err = NULL;
	int rc;

	if (!cli || access(cli, X_OK))
		SKIP(return, "no CLI at $KVMGUARD_CLI");
	ASSERT_EQ(0, policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "open",
			    KVMGUARD_MODE_ENFORCE, 0, 0, false));
	ASSERT_EQ(F_ALL, told(self, P "open", 0x40000000));
	snprintf(cmd, sizeof(cmd), "%s policy set " P "open hypercalls none", cli);
	rc = kg_run(cmd, NULL, &out, &err);
	printf("# %s: rc %d: %s", cmd, rc, err ? err : "");
	EXPECT_EQ(1, rc);
	EXPECT_TRUE(err && strstr(err, "force"));
	free(out);
	free(err);
	snprintf(cmd, sizeof(cmd), "%s policy set " P "open hypercalls none force", cli);
	rc = kg_run(cmd, NULL, &out, &err);
	printf("# %s: rc %d: %s", cmd, rc, err ? err : "");
	EXPECT_EQ(0, rc);
	free(out);
	free(err);
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
