// SPDX-License-Identifier: GPL-2.0
/*
 * KVM PV features in line with the hypercall rules: a guest is not told
 * (CPUID) about a paravirtual feature whose hypercall its policy denies.
 *
 * A Linux guest that finds PV_UNHALT, PV_SEND_IPI or PV_SCHED_YIELD in the
 * KVM features leaf (CPUID 0x40000001 EAX, or base + 1 when another
 * hypervisor's leaves come first) uses kick_cpu, send_ipi and sched_yield
 * and does not fall back when they fail: an SMP guest whose policy denies
 * them hangs. So when the VMM sets a vCPU's CPUID (KVM_SET_CPUID and
 * KVM_SET_CPUID2 both end in kvm_set_cpuid() with a kernel copy of the
 * entries), the features whose hypercalls the VM's policy denies in
 * enforce mode are cleared from that copy before KVM looks at it; in audit
 * mode they stay, and the kernel log says what would have been hidden.
 *
 * What a vCPU was told is recorded per VM (vm->pv.told). A change that
 * would deny a running VM the hypercall of a feature it was told about is
 * refused (EBUSY, the VM and feature named) unless the request says
 * force: the guest would keep calling it.
 *
 * Ordering between the hook and a change (both under pv_lock): a change
 * checks vm->pv.told and, in the same critical section, adds the features
 * its new rules deny to vm->pv.pending, which the hook hides as well,
 * until the new rules are published and kvmguard_pv_done() clears it (an
 * edit of a policy's rules sets pv_pending_policy first, for VMs that get
 * the policy while the change is being made). A CPUID set while a change
 * is being made so never tells the guest about a feature either the old
 * or the new rules deny, and a change never misses a feature told just
 * before it.
 */
#define pr_fmt(fmt) "kvmguard: " fmt
#include <linux/kvm_host.h>
#include <linux/kvm_para.h>
#include <linux/netlink.h>
#include <linux/ptrace.h>

#include "kvmguard.h"
#include "compat.h"

struct pv_feature {
	u8 bit;			/* KVM_FEATURE_* */
	u8 hc;			/* KVM_HC_* the guest makes when told */
	const char *name;
	const char *hc_name;	/* as the CLI spells it */
};

/*
 * Linux guests (arch/x86/kernel/kvm.c) use kick_cpu for PV spinlocks
 * with PV_UNHALT, send_ipi for IPIs with PV_SEND_IPI, sched_yield with
 * PV_SCHED_YIELD, and map_gpa_range under SEV with MIGRATION_CONTROL;
 * KVM refuses map_gpa_range without HC_MAP_GPA_RANGE. Other features
 * (kvmclock, steal time, async PF, PV EOI, PV TLB flush, poll control)
 * are MSRs or shared memory, not hypercalls; clock_pairing (ptp_kvm)
 * and vapic_poll_irq have no feature bit and fail gracefully.
 */
static const struct pv_feature pv_features[] = {
	{ KVM_FEATURE_PV_UNHALT, KVM_HC_KICK_CPU, "pv-unhalt", "kick_cpu" },
	{ KVM_FEATURE_PV_SEND_IPI, KVM_HC_SEND_IPI, "pv-send-ipi", "send_ipi" },
	{ KVM_FEATURE_PV_SCHED_YIELD, KVM_HC_SCHED_YIELD, "pv-sched-yield",
	  "sched_yield" },
	{ KVM_FEATURE_HC_MAP_GPA_RANGE, KVM_HC_MAP_GPA_RANGE,
	  "hc-map-gpa-range", "map_gpa_range" },
	{ KVM_FEATURE_MIGRATION_CONTROL, KVM_HC_MAP_GPA_RANGE,
	  "migration-control", "map_gpa_range" },
};

/* The hook and the checks of a change; see the top of this file. */
static DEFINE_SPINLOCK(pv_lock);

/* The request being handled says force; under kvmguard_config_mutex. */
static bool pv_force;

/*
 * A policy whose rules are being changed, and what its new rules deny:
 * hidden too from VMs that use it, VMs registered since the change
 * walked them included. Under pv_lock.
 */
static const struct kvmguard_policy *pv_pending_policy;
static u32 pv_pending_deny;

/*
 * Extack messages of refusals, for kernels without formatted extack
 * messages (compat.h): a few, used in turn under kvmguard_config_mutex,
 * so that a message is not rewritten before its ack went out.
 */
#define PV_MSGS		8
#define PV_MSG_LEN	80
static char pv_msgs[PV_MSGS][PV_MSG_LEN];
static unsigned int pv_msg_next;

/* Features @rules's hypercall allowlist leaves out, whatever the mode. */
static u32 pv_outside(const struct kvmguard_rules *rules)
{
	u32 mask = 0;
	int i;

	if (!rules || !rules->hc_restrict)
		return 0;
	for (i = 0; i < ARRAY_SIZE(pv_features); i++)
		if (!(rules->hc_allow & BIT_ULL(pv_features[i].hc)))
			mask |= BIT(pv_features[i].bit);
	return mask;
}

/* Features whose hypercalls @rules (NULL: no policy) refuses. */
static u32 pv_denied(const struct kvmguard_rules *rules)
{
	if (!rules || rules->mode != KVMGUARD_MODE_ENFORCE)
		return 0;
	return pv_outside(rules);
}

static const struct pv_feature *pv_first(u32 mask)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(pv_features); i++)
		if (mask & BIT(pv_features[i].bit))
			return &pv_features[i];
	return NULL;
}

/* Is @e a hypervisor signature leaf naming KVM? */
static bool kvm_signature(const struct kvm_cpuid_entry2 *e)
{
	u32 sig[3];

	sig[0] = e->ebx;
	sig[1] = e->ecx;
	sig[2] = e->edx;
	return !memcmp(sig, KVM_SIGNATURE, sizeof(sig));
}

/*
 * Hypervisor leaves sit at 0x40000000 + n * 0x100 (n < 0x100), the way KVM
 * and Linux guests look for them.
 */
static bool hv_leaf(u32 function, u32 offset, unsigned int *n)
{
	if ((function & 0xffff00ff) != (0x40000000 | offset))
		return false;
	*n = (function >> 8) & 0xff;
	return true;
}

/*
 * Clear @hide in the features leaf of every KVM signature among @e[0..@nent),
 * and return the tracked features left set there.
 */
static u32 pv_mask_entries(struct kvm_cpuid_entry2 *e, int nent, u32 hide)
{
	DECLARE_BITMAP(kvm_bases, 256);
	u32 left = 0, all = 0;
	unsigned int n;
	int i;

	for (i = 0; i < ARRAY_SIZE(pv_features); i++)
		all |= BIT(pv_features[i].bit);
	bitmap_zero(kvm_bases, 256);
	for (i = 0; i < nent; i++)
		if (hv_leaf(e[i].function, 0, &n) && kvm_signature(&e[i]))
			__set_bit(n, kvm_bases);
	for (i = 0; i < nent; i++) {
		if (!hv_leaf(e[i].function, KVM_CPUID_FEATURES & 0xff, &n) ||
		    !test_bit(n, kvm_bases))
			continue;
		e[i].eax &= ~hide;
		left |= e[i].eax & all;
	}
	return left;
}

/*
 * At the entry of kvm_set_cpuid(vcpu, e2, nent), in the VMM's ioctl with
 * the vCPU's mutex held; e2 is KVM's own copy of the entries, not yet
 * looked at. Only looks at the call (no redirect): it edits that copy.
 */
static unsigned long cpuid_set(struct pt_regs *regs)
{
	struct kvm_vcpu *vcpu = (void *)regs_get_kernel_argument(regs, 0);
	struct kvm_cpuid_entry2 *e2 = (void *)regs_get_kernel_argument(regs, 1);
	int nent = (int)regs_get_kernel_argument(regs, 2);
	const struct kvmguard_rules *rules = NULL;
	struct kvmguard_policy *policy;
	u32 hide, audit = 0, left, hidden;
	struct kvmguard_vm *vm;
	u64 id;

	if (!e2 || nent <= 0)
		return 0;
	rcu_read_lock();
	vm = kvmguard_vm_lookup(vcpu->kvm);
	if (!vm) {
		rcu_read_unlock();
		return 0;
	}
	id = vm->id;
	spin_lock(&pv_lock);
	policy = rcu_dereference(vm->policy);
	if (policy)
		rules = rcu_dereference(policy->rules);
	hide = pv_denied(rules) | vm->pv.pending;
	if (policy && policy == pv_pending_policy)
		hide |= pv_pending_deny;
	if (rules && rules->mode == KVMGUARD_MODE_AUDIT)
		audit = pv_outside(rules);
	left = pv_mask_entries(e2, nent, 0);
	hidden = left & hide;
	left = pv_mask_entries(e2, nent, hide);
	vm->pv.told |= left;
	spin_unlock(&pv_lock);
	rcu_read_unlock();

	if (hidden)
		pr_info_ratelimited("VM %llu: vCPU %d not told about PV features %#x (first %s): its policy denies %s\n",
				    id, vcpu->vcpu_id, hidden,
				    pv_first(hidden)->name,
				    pv_first(hidden)->hc_name);
	if (left & audit)
		pr_info_ratelimited("VM %llu (audit): vCPU %d told about PV features %#x (first %s) whose hypercalls enforce mode would deny: it would not have been\n",
				    id, vcpu->vcpu_id, left & audit,
				    pv_first(left & audit)->name);
	return 0;
}

/* kvm_set_cpuid() is static in kvm.ko: found by name. */
static struct kvmguard_redirect cpuid_hook = {
	.fn = "kvm_set_cpuid",
	.redirect = cpuid_set,
	.watch = true,
};

int kvmguard_pv_init(void)
{
	return kvmguard_redirect_attach(&cpuid_hook, 0);
}

void kvmguard_pv_uninit(void)
{
	kvmguard_redirect_detach(&cpuid_hook);
}

void kvmguard_pv_set_force(bool force)
{
	lockdep_assert_held(&kvmguard_config_mutex);
	pv_force = force;
}

static const struct kvmguard_rules *pv_rules_of(struct kvmguard_policy *p)
{
	return p ? rcu_dereference_protected(p->rules,
			lockdep_is_held(&kvmguard_config_mutex)) : NULL;
}

/* @vm is to get @rules: see kvmguard_pv_prepare(). */
static int pv_check(struct kvmguard_vm *vm, const struct kvmguard_rules *rules,
		    struct netlink_ext_ack *extack)
{
	u32 deny = pv_denied(rules), bad;
	const struct pv_feature *f;
	char msg[PV_MSG_LEN];

	spin_lock(&pv_lock);
	bad = vm->pv.told & deny;
	if (!bad || pv_force)
		vm->pv.pending |= deny;
	spin_unlock(&pv_lock);
	if (!bad)
		return 0;
	f = pv_first(bad);
	if (pv_force) {
		pr_warn("VM %llu was told about PV features %#x (first %s); forced: its %s calls will be refused\n",
			vm->id, bad, f->name, f->hc_name);
		return 0;
	}
	snprintf(msg, sizeof(msg), "VM %llu was told about %s (needs %s); use force",
		 vm->id, f->name, f->hc_name);
	pr_info("refused: %s\n", msg);
	kvmguard_extack_msg(extack, msg, pv_msgs[pv_msg_next], PV_MSG_LEN);
	pv_msg_next = (pv_msg_next + 1) % PV_MSGS;
	return -EBUSY;
}

/*
 * Before VMs change rules (config mutex held): @vm (NULL: every VM that
 * uses @policy) is to get @rules (@vm and @rules NULL: @policy is deleted
 * and its VMs get what the bindings say). -EBUSY, with the VM and feature
 * in @extack, if that denies a running VM the hypercall of a PV feature it
 * was told about and the request does not say force. Otherwise CPUID set
 * from now on hides what the new rules deny too, until kvmguard_pv_done(),
 * which the caller calls in every case once the rules are published or
 * given up.
 */
int kvmguard_pv_prepare(struct kvmguard_vm *vm, struct kvmguard_policy *policy,
			const struct kvmguard_rules *rules,
			struct netlink_ext_ack *extack)
{
	struct kvmguard_policy *next;
	u64 id = 0;
	u8 bound_by;
	int err = 0;

	lockdep_assert_held(&kvmguard_config_mutex);
	if (vm)
		return pv_check(vm, rules, extack);
	if (rules) {
		spin_lock(&pv_lock);
		pv_pending_policy = policy;
		pv_pending_deny = pv_denied(rules);
		spin_unlock(&pv_lock);
	}
	while (!err && (vm = kvmguard_vm_get_next(id))) {
		id = vm->id;
		if (rcu_access_pointer(vm->policy) != policy) {
			kvmguard_vm_put(vm);
			continue;
		}
		if (rules) {
			err = pv_check(vm, rules, extack);
		} else {
			next = kvmguard_resolve_vm(vm, &bound_by);
			err = pv_check(vm, pv_rules_of(next), extack);
			if (next)
				kvmguard_policy_put(next);
		}
		kvmguard_vm_put(vm);
	}
	return err;
}

/* The change is published or given up: CPUID follows the rules alone. */
void kvmguard_pv_done(void)
{
	struct kvmguard_vm *vm;
	u64 id = 0;

	lockdep_assert_held(&kvmguard_config_mutex);
	spin_lock(&pv_lock);
	pv_pending_policy = NULL;
	pv_pending_deny = 0;
	spin_unlock(&pv_lock);
	while ((vm = kvmguard_vm_get_next(id))) {
		id = vm->id;
		spin_lock(&pv_lock);
		vm->pv.pending = 0;
		spin_unlock(&pv_lock);
		kvmguard_vm_put(vm);
	}
}
