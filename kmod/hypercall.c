// SPDX-License-Identifier: GPL-2.0
/*
 * Restricted hypercalls: which KVM hypercalls, and whether Hyper-V ones, a
 * VM may make; counted per VM and number, violations reported.
 *
 * The hook is the hot path of the whole module, so it is built to cost
 * next to nothing:
 *  - It exists only while some policy restricts hypercalls; otherwise KVM
 *    runs untouched.
 *  - It is an ftrace direct call to hypercall_entry.S, not an ftrace or
 *    kprobe handler: no register save area, no handler list.
 *  - The entry code answers "allowed" by itself for VMs in the registry's
 *    lookup cache, indexed by the struct kvm address, reading the VM's allow bitmap
 *    (vm->hc_allow, a copy of its policy's rule kept current under
 *    hc_lock) and counting in a per-CPU counter. Only a miss or a call the
 *    bitmap does not allow reaches C (kvmguard_hc_slow()), which reads the
 *    policy under RCU and decides.
 * Hyper-V hypercalls are rare: their entry (kvm_hv_hypercall()) always
 * goes to C, kvmguard_hv_slow().
 *
 * Nothing called from the entry code may sleep, or module unload could
 * free code a sleeping vCPU returns into (hypercall_entry.S): a refusal
 * that must move RIP past the instruction, which can sleep, leaves that
 * to the entry code, which jumps to kvm_skip_emulated_instruction().
 */
#define pr_fmt(fmt) "kvmguard: " fmt

#include <linux/kprobes.h>
#include <linux/kvm_host.h>
#include <linux/netlink.h>
#include <linux/percpu.h>
#include <linux/rcupdate.h>
#include <linux/workqueue.h>
#include <asm/hyperv-tlfs.h>

#include "kvmguard.h"
#include "compat.h"
#include "fault_inject.h"

/*
 * Guards every vm->hc_allow update. The entry code finds VMs in the
 * registry's lookup cache (registry.c), whose entries stay valid for an
 * RCU-tasks grace period after they leave it.
 */
static DEFINE_SPINLOCK(hc_lock);

/* Policies that need the hook, and whether it is attached: config mutex. */
static unsigned int hc_users;
static bool hc_attached;
static struct ftrace_ops hc_ops;
static struct ftrace_ops hv_ops;

/*
 * What the entry code gets back from C, in %rax and %rdx: whether to skip
 * KVM's function, and then what it returns (6.12's
 * __kvm_emulate_hypercall()). The other hooked functions are skipped with
 * a jump to kvm_skip_emulated_instruction(), the guest's registers
 * already written.
 */
struct kvmguard_hc_verdict {
	unsigned long refuse;	/* enum hc_action */
	unsigned long ret;
};

/*
 * What the entry code does with the call: let KVM's function run; skip it
 * (refused, see above); or, 6.1 only, send it to KVM's Hyper-V or Xen
 * handler (whose address is in ret) as KVM's function would, without
 * letting KVM read the routing state again (hc_route()).
 */
enum hc_action {
	HC_PASS,
	HC_REFUSE,
	HC_ROUTE,
};

#ifdef KVMGUARD_HC_INNER
#define HC_HOOKED_FN	((unsigned long)__kvm_emulate_hypercall)
#else
#define HC_HOOKED_FN	((unsigned long)kvm_emulate_hypercall)
#endif

static u64 hc_allow_bits(const struct kvmguard_rules *rules)
{
	return rules && rules->hc_restrict ? rules->hc_allow : ~0ULL;
}

/* Bring vm->hc_allow in line with the VM's policy as published now. */
void kvmguard_hc_apply(struct kvmguard_vm *vm)
{
	struct kvmguard_policy *policy;

	spin_lock(&hc_lock);
	rcu_read_lock();
	policy = rcu_dereference(vm->policy);
	WRITE_ONCE(vm->hc_allow,
		   hc_allow_bits(policy ? rcu_dereference(policy->rules) : NULL));
	rcu_read_unlock();
	spin_unlock(&hc_lock);
}

/*
 * VMs are registered from KVM's creation path in atomic context, where a
 * per-CPU allocation comes from the percpu allocator's small atomic pool:
 * a burst of VM creations can empty it (seen: one of 32 VMs created at
 * once refused). Their counters come from a reserve filled in process
 * context instead; they are fresh allocations, so they start at zero.
 */
#define HC_RESERVE	64
static struct kvmguard_hc_counts __percpu *hc_reserve[HC_RESERVE];
static unsigned int hc_reserved;	/* under hc_reserve_lock */
static DEFINE_SPINLOCK(hc_reserve_lock);

static void hc_reserve_fill(struct work_struct *work)
{
	struct kvmguard_hc_counts __percpu *c;
	bool full;

	do {
		c = alloc_percpu(struct kvmguard_hc_counts);
		if (!c)
			return;
		spin_lock(&hc_reserve_lock);
		full = hc_reserved == HC_RESERVE;
		if (!full)
			hc_reserve[hc_reserved++] = c;
		spin_unlock(&hc_reserve_lock);
	} while (!full);
	free_percpu(c);
}

static DECLARE_WORK(hc_reserve_work, hc_reserve_fill);

void kvmguard_hc_reserve_init(void)
{
	hc_reserve_fill(NULL);
}

/* Once no VM can be created any more (the hooks are gone). */
void kvmguard_hc_reserve_uninit(void)
{
	cancel_work_sync(&hc_reserve_work);
	while (hc_reserved)
		free_percpu(hc_reserve[--hc_reserved]);
}

static struct kvmguard_hc_counts __percpu *hc_counts_alloc(gfp_t gfp)
{
	struct kvmguard_hc_counts __percpu *c = NULL;
	unsigned int left;

	if (gfpflags_allow_blocking(gfp))
		return alloc_percpu_gfp(struct kvmguard_hc_counts, gfp);
	spin_lock(&hc_reserve_lock);
	if (hc_reserved)
		c = hc_reserve[--hc_reserved];
	left = hc_reserved;
	spin_unlock(&hc_reserve_lock);
	if (left < HC_RESERVE / 2)
		schedule_work(&hc_reserve_work);
	return c ?: alloc_percpu_gfp(struct kvmguard_hc_counts, gfp);
}

int kvmguard_hc_vm_init(struct kvmguard_vm *vm, gfp_t gfp)
{
	/* Zero until kvmguard_hc_apply(): everything goes to C first. */
	vm->hc_allow = 0;
	atomic_set(&vm->xen_gate, 0);
	atomic_set(&vm->xen_configs, 0);
	spin_lock_init(&vm->hc_reports.lock);
	vm->hc_counts = hc_counts_alloc(gfp);
	return vm->hc_counts ? 0 : -ENOMEM;
}

void kvmguard_hc_vm_free(struct kvmguard_vm *vm)
{
	free_percpu(vm->hc_counts);
}

void kvmguard_hc_sum(const struct kvmguard_vm *vm,
		     struct kvmguard_hc_counts *sum)
{
	const struct kvmguard_hc_counts *c;
	int cpu, i;

	memset(sum, 0, sizeof(*sum));
	for_each_possible_cpu(cpu) {
		c = per_cpu_ptr(vm->hc_counts, cpu);
		for (i = 0; i < KVMGUARD_HC_SLOTS; i++) {
			sum->allowed[i] += READ_ONCE(c->allowed[i]);
			sum->denied[i] += READ_ONCE(c->denied[i]);
		}
		sum->hv_allowed += READ_ONCE(c->hv_allowed);
		sum->hv_denied += READ_ONCE(c->hv_denied);
	}
}

/*
 * Report a violation, rate-limited per VM and kind (kvmguard_report_due()).
 * @nr: the KVM hypercall number, or a Hyper-V call's code.
 */
static void hc_report(struct kvmguard_vm *vm, unsigned int kind, u8 event,
		      unsigned long nr, bool audit)
{
	struct kvmguard_hc_reports *r = &vm->hc_reports;
	unsigned long flags;
	u64 count;

	spin_lock_irqsave(&r->lock, flags);
	count = kvmguard_report_due(&r->kind[kind]);
	spin_unlock_irqrestore(&r->lock, flags);
	if (!count)
		return;

	if (event == KVMGUARD_EVENT_HYPERV)
		pr_info_ratelimited("VM %llu (pid %d): Hyper-V hypercall code %#lx %s (%llu)\n",
				    vm->id, vm->pid_nr, nr,
				    audit ? "audited" : "denied", count);
	else if (event == KVMGUARD_EVENT_XEN)
		pr_info_ratelimited("VM %llu (pid %d): Xen emulation request %s (%llu)\n",
				    vm->id, vm->pid_nr,
				    audit ? "audited" : "denied", count);
	else
		pr_info_ratelimited("VM %llu (pid %d): hypercall %lu %s (%llu)\n",
				    vm->id, vm->pid_nr, nr,
				    audit ? "audited" : "denied", count);
	kvmguard_notify_violation(vm, event, nr,
				  audit ? KVMGUARD_ACTION_AUDITED :
					  KVMGUARD_ACTION_DENIED, count);
}

/* KVM's is_64_bit_hypercall(), which the kernel does not export. */
static bool hc_64bit(struct kvm_vcpu *vcpu)
{
	int cs_db, cs_l;

	if (vcpu->arch.guest_state_protected)
		return true;
	if (!(vcpu->arch.efer & EFER_LMA))
		return false;
	static_call(kvm_x86_get_cs_db_l_bits)(vcpu, &cs_db, &cs_l);
	return cs_l;
}

/*
 * The call code of a Hyper-V hypercall: bits 0-15 of its input value, in
 * RCX for a 64-bit caller and EDX:EAX for a 32-bit one (KVM's
 * kvm_hv_hypercall() reads the same). KVM keeps these registers in
 * vcpu->arch.regs on every exit.
 */
static u16 hv_call_code(struct kvm_vcpu *vcpu)
{
	return hc_64bit(vcpu) ? vcpu->arch.regs[VCPU_REGS_RCX] & 0xffff :
				vcpu->arch.regs[VCPU_REGS_RAX] & 0xffff;
}

static void hc_write_reg(struct kvm_vcpu *vcpu, int reg, unsigned long val)
{
	vcpu->arch.regs[reg] = val;
	__set_bit(reg, (unsigned long *)&vcpu->arch.regs_avail);
	__set_bit(reg, (unsigned long *)&vcpu->arch.regs_dirty);
}

static struct kvmguard_hc_verdict hc_refuse(struct kvm_vcpu *vcpu,
					    bool op_64_bit)
{
	struct kvmguard_hc_verdict verdict = { .refuse = HC_REFUSE };
	unsigned long ret = -KVM_EPERM;

	if (!op_64_bit)
		ret = (u32)ret;
#ifdef KVMGUARD_HC_INNER
	/* KVM's caller writes RAX and moves RIP past the instruction. */
	verdict.ret = ret;
#else
	/*
	 * What kvm_emulate_hypercall() does on its way out; the entry code
	 * does the rest: kvm_skip_emulated_instruction().
	 */
	hc_write_reg(vcpu, VCPU_REGS_RAX, ret);
#endif
	return verdict;
}

/*
 * A call from CPL > 0 is refused by KVM itself (-KVM_EPERM) before any
 * handler runs: no violation, so neither counted nor reported. (An allowed
 * one the entry code counts without asking: it reads no CPL.)
 */
static struct kvmguard_hc_verdict hc_decide(struct kvm_vcpu *vcpu,
					    unsigned long nr, bool op_64_bit,
					    int cpl)
{
	struct kvmguard_hc_verdict verdict = {};
	const struct kvmguard_rules *rules = NULL;
	struct kvmguard_policy *policy;
	struct kvmguard_vm *vm;
	bool audit, refuse = false;
	unsigned int slot;

	if (!op_64_bit)
		nr = (u32)nr;
	slot = min_t(unsigned long, nr, KVMGUARD_HC_NR_OTHER);

	rcu_read_lock();
	vm = kvmguard_vm_lookup(vcpu->kvm);
	if (!vm)
		goto out;
	kvmguard_vm_cache_fill(vm, vcpu->kvm);
	policy = rcu_dereference(vm->policy);
	if (policy)
		rules = rcu_dereference(policy->rules);
	if (nr < 64 ? hc_allow_bits(rules) & BIT_ULL(nr) :
		      !(rules && rules->hc_restrict)) {
		this_cpu_inc(vm->hc_counts->allowed[slot]);
		goto out;
	}
	if (cpl)
		goto out;
	this_cpu_inc(vm->hc_counts->denied[slot]);
	audit = rules->mode == KVMGUARD_MODE_AUDIT;
	hc_report(vm, slot, KVMGUARD_EVENT_HYPERCALL, nr, audit);
	refuse = !audit;
out:
	rcu_read_unlock();
	return refuse ? hc_refuse(vcpu, op_64_bit) : verdict;
}

/* Called from hypercall_entry.S only. */
#ifdef KVMGUARD_HC_INNER
__visible struct kvmguard_hc_verdict
kvmguard_hc_slow(struct kvm_vcpu *vcpu, unsigned long nr, int op_64_bit,
		 int cpl);

/* KVM routed the call (Xen, Hyper-V, KVM) before; @cpl is what KVM checks. */
__visible struct kvmguard_hc_verdict
kvmguard_hc_slow(struct kvm_vcpu *vcpu, unsigned long nr, int op_64_bit,
		 int cpl)
{
	return hc_decide(vcpu, nr, op_64_bit, cpl);
}

static int hc_resolve(void)
{
	return 0;
}
#else
/*
 * Not exported, found by name once (kprobes resolve a name and tell the
 * address): KVM's Hyper-V and Xen hypercall handlers, and
 * kvm_get_segment(), for the CPL.
 */
static unsigned long hc_hv_fn, hc_xen_fn;
static void (*hc_get_segment)(struct kvm_vcpu *vcpu, struct kvm_segment *var,
			      int seg);

static unsigned long hc_lookup(const char *name)
{
	struct kprobe kp = { .symbol_name = name };
	unsigned long addr;

	if (register_kprobe(&kp))
		return 0;
	addr = (unsigned long)kp.addr;
	unregister_kprobe(&kp);
	return addr;
}

static int hc_resolve(void)
{
	if (hc_hv_fn && hc_get_segment && (hc_xen_fn || !KVMGUARD_KVM_XEN))
		return 0;
	hc_hv_fn = hc_lookup("kvm_hv_hypercall");
	if (KVMGUARD_KVM_XEN)
		hc_xen_fn = hc_lookup("kvm_xen_hypercall");
	hc_get_segment = (void *)hc_lookup("kvm_get_segment");
	if (hc_hv_fn && hc_get_segment && (hc_xen_fn || !KVMGUARD_KVM_XEN))
		return 0;
	pr_err("cannot find KVM's hypercall handlers\n");
	return -ENOENT;
}

/* What KVM's get_cpl() says: SS.DPL in protected mode, 0 in real mode. */
static int hc_cpl(struct kvm_vcpu *vcpu)
{
	struct kvm_segment ss;

	/* CR0.PE is never guest-owned, so vcpu->arch.cr0 has it right. */
	if (!(vcpu->arch.cr0 & X86_CR0_PE))
		return 0;
	if (kvm_get_rflags(vcpu) & X86_EFLAGS_VM)
		return 3;
	hc_get_segment(vcpu, &ss, VCPU_SREG_SS);
	return ss.dpl;
}

/*
 * Sent to KVM's Xen or Hyper-V handler, as kvm_emulate_hypercall() would
 * (a tail call, same argument and return value). The routing state (the
 * VM's Xen config, the Hyper-V guest OS id, which another vCPU or the VMM
 * can change at any time) is read once, here: if the entry code returned
 * into KVM instead, KVM would read it again and could run, unchecked, a
 * KVM hypercall this code took for a Hyper-V one. KVM's Hyper-V handler
 * carries the Hyper-V hook (kvmguard_hv_slow()); Xen calls are not
 * restricted but by the xen rule.
 */
static struct kvmguard_hc_verdict hc_route(unsigned long fn)
{
	return (struct kvmguard_hc_verdict){ .refuse = HC_ROUTE, .ret = fn };
}

__visible struct kvmguard_hc_verdict kvmguard_hc_slow(struct kvm_vcpu *vcpu);

__visible struct kvmguard_hc_verdict kvmguard_hc_slow(struct kvm_vcpu *vcpu)
{
	/* These paths start in the same function but are not KVM's. */
	if (kvmguard_xen_hypercalls(vcpu->kvm))
		return hc_route(hc_xen_fn);
	if (kvmguard_hv_hypercalls(vcpu))
		return hc_route(hc_hv_fn);
	/*
	 * If the guest OS id turns non-zero from here on, KVM takes the
	 * Hyper-V path, which the Hyper-V hook checks.
	 */
	return hc_decide(vcpu, vcpu->arch.regs[VCPU_REGS_RAX], hc_64bit(vcpu),
			 hc_cpl(vcpu));
}
#endif

/*
 * Hyper-V hypercalls: a refused one fails with HV_STATUS_ACCESS_DENIED,
 * written where kvm_hv_hypercall() writes its result, and that function is
 * skipped (the entry code then moves RIP on). Outside protected mode KVM
 * answers with #UD; that is left to it. (KVM also raises #UD for a caller
 * at CPL > 0, which the module cannot read: such a caller gets the
 * refusal status instead.)
 */
__visible struct kvmguard_hc_verdict kvmguard_hv_slow(struct kvm_vcpu *vcpu);

__visible struct kvmguard_hc_verdict kvmguard_hv_slow(struct kvm_vcpu *vcpu)
{
	struct kvmguard_hc_verdict verdict = {};
	const struct kvmguard_rules *rules = NULL;
	struct kvmguard_policy *policy;
	struct kvmguard_vm *vm;
	bool refuse = false;

	/* CR0.PE is never guest-owned, so vcpu->arch.cr0 has it right. */
	if (!(vcpu->arch.cr0 & X86_CR0_PE))
		return verdict;
	rcu_read_lock();
	vm = kvmguard_vm_lookup(vcpu->kvm);
	if (!vm)
		goto out;
	policy = rcu_dereference(vm->policy);
	if (policy)
		rules = rcu_dereference(policy->rules);
	if (!rules || rules->hyperv == KVMGUARD_HYPERV_ALLOW) {
		this_cpu_inc(vm->hc_counts->hv_allowed);
		goto out;
	}
	this_cpu_inc(vm->hc_counts->hv_denied);
	refuse = rules->mode == KVMGUARD_MODE_ENFORCE;
	hc_report(vm, KVMGUARD_HC_REPORT_HV, KVMGUARD_EVENT_HYPERV,
		  hv_call_code(vcpu), !refuse);
out:
	rcu_read_unlock();
	if (!refuse)
		return verdict;
	if (hc_64bit(vcpu)) {
		hc_write_reg(vcpu, VCPU_REGS_RAX, HV_STATUS_ACCESS_DENIED);
	} else {
		hc_write_reg(vcpu, VCPU_REGS_RDX, 0);
		hc_write_reg(vcpu, VCPU_REGS_RAX, HV_STATUS_ACCESS_DENIED);
	}
	verdict.refuse = HC_REFUSE;
	return verdict;
}

static int hc_attach(void)
{
	char hv_fn[] = "kvm_hv_hypercall";
	int err;

	if (kvmguard_fault(KVMGUARD_FAULT_HC_ATTACH))
		return -EBUSY;
	err = hc_resolve();
	if (err)
		return err;
	/* kvm_hv_hypercall() is not exported: ftrace finds it by name. */
	memset(&hv_ops, 0, sizeof(hv_ops));
	err = ftrace_set_filter(&hv_ops, (unsigned char *)hv_fn,
				strlen(hv_fn), 0);
	if (!err)
		err = kvmguard_direct_attach(&hv_ops, kvmguard_hv_entry);
	if (err) {
		pr_err("cannot attach to the Hyper-V hypercall path: %d\n", err);
		ftrace_free_filter(&hv_ops);
		return err;
	}
	memset(&hc_ops, 0, sizeof(hc_ops));
	err = ftrace_set_filter_ip(&hc_ops, HC_HOOKED_FN, 0, 0);
	if (!err)
		err = kvmguard_direct_attach(&hc_ops, kvmguard_hc_entry);
	if (err) {
		pr_err("cannot attach to the hypercall path: %d\n", err);
		ftrace_free_filter(&hc_ops);
		kvmguard_direct_detach(&hv_ops, kvmguard_hv_entry);
		return err;
	}
	hc_attached = true;
	return 0;
}

static void hc_detach(void)
{
	/*
	 * A task may still be inside the entry code; the VMs it can find in
	 * the cache stay valid for an RCU-tasks grace period (registry.c),
	 * and the code itself until the module goes.
	 */
	kvmguard_direct_detach(&hc_ops, kvmguard_hc_entry);
	kvmguard_direct_detach(&hv_ops, kvmguard_hv_entry);
	hc_attached = false;
}

static bool hc_needs_hook(const struct kvmguard_rules *rules)
{
	return rules &&
	       (rules->hc_restrict || rules->hyperv == KVMGUARD_HYPERV_DENY);
}

/*
 * A policy's rules go from @old to @new (either may be NULL: created,
 * deleted). Attach the hook for the first policy that needs it, detach it
 * after the last. On error nothing changed.
 */
int kvmguard_hc_rules_changed(const struct kvmguard_rules *old,
			      const struct kvmguard_rules *new)
{
	bool was = hc_needs_hook(old), is = hc_needs_hook(new);
	int err;

	lockdep_assert_held(&kvmguard_config_mutex);
	if (was == is)
		return 0;
	if (is) {
		if (!hc_users) {
			err = hc_attach();
			if (err)
				return err;
		}
		hc_users++;
	} else if (!--hc_users) {
		hc_detach();
	}
	return 0;
}

void kvmguard_hypercall_uninit(void)
{
	mutex_lock(&kvmguard_config_mutex);
	if (hc_attached)
		hc_detach();
	hc_users = 0;
	mutex_unlock(&kvmguard_config_mutex);
	/*
	 * The module's text goes next: no task may still be in the entry
	 * code or the C it calls. None of that sleeps (hypercall_entry.S),
	 * so a task in it is no quiescent state for RCU-tasks.
	 */
	synchronize_rcu_tasks();
}

/*
 * The xen rule. KVM's Xen emulation (CONFIG_KVM_XEN) is turned on by the
 * VMM (KVM_XEN_HVM_CONFIG); from then on KVM sends the VM's hypercalls to
 * its Xen code (or to the VMM) instead of the KVM hypercall path, where no
 * allowlist applies. Under deny the ioctls that set Xen state up fail
 * with EPERM, so that never happens. The hooks sit on the functions those
 * ioctls call, for as long as the module is loaded: whether a running VM
 * ever used KVM_XEN_HVM_CONFIG must be known when a change would enforce
 * deny on it (kvmguard_xen_close()).
 */

/* Entered instead of the refused function, with its arguments. */
static noinline notrace int kvmguard_xen_refused(void)
{
	return -EPERM;
}

/* Would a VM under @rules (NULL: no policy) be refused? */
static bool xen_enforced(const struct kvmguard_rules *rules)
{
	return rules && rules->xen == KVMGUARD_XEN_DENY &&
	       rules->mode == KVMGUARD_MODE_ENFORCE;
}

bool kvmguard_xen_turns_on(const struct kvmguard_rules *old,
			   const struct kvmguard_rules *new)
{
	return !xen_enforced(old) && xen_enforced(new);
}

/* The VMM of @kvm asks for Xen state; @config: KVM_XEN_HVM_CONFIG. Atomic. */
static unsigned long xen_check(struct kvm *kvm, bool config)
{
	const struct kvmguard_rules *rules = NULL;
	struct kvmguard_policy *policy;
	struct kvmguard_vm *vm;
	bool refuse = false;
	bool audit;

	rcu_read_lock();
	vm = kvmguard_vm_lookup(kvm);
	if (!vm)
		goto out;
	if (config) {
		atomic_inc(&vm->xen_configs);
		/*
		 * Counted before the gate is read, which a change closes
		 * before it reads the count: either this call sees the gate
		 * closed, or the change sees the count (kvmguard_xen_close()).
		 */
		smp_mb__after_atomic();
	}
	if (atomic_read(&vm->xen_gate)) {
		/* A change is checking this VM: refused, not counted. */
		refuse = true;
		goto undo;
	}
	/* The gate before the rules: a change publishes them, then opens it. */
	smp_rmb();
	policy = rcu_dereference(vm->policy);
	if (policy)
		rules = rcu_dereference(policy->rules);
	if (!rules || rules->xen != KVMGUARD_XEN_DENY)
		goto out;
	audit = rules->mode == KVMGUARD_MODE_AUDIT;
	hc_report(vm, KVMGUARD_HC_REPORT_XEN, KVMGUARD_EVENT_XEN, 0, audit);
	refuse = !audit;
undo:
	if (refuse && config)
		atomic_dec(&vm->xen_configs);
out:
	rcu_read_unlock();
	return refuse ? (unsigned long)kvmguard_xen_refused : 0;
}

/* kvm_xen_hvm_config(kvm, xhc) */
static unsigned long xen_config_hook(struct pt_regs *regs)
{
	return xen_check((struct kvm *)regs_get_kernel_argument(regs, 0), true);
}

/* kvm_xen_hvm_set_attr(kvm, data) */
static unsigned long xen_attr_hook(struct pt_regs *regs)
{
	return xen_check((struct kvm *)regs_get_kernel_argument(regs, 0), false);
}

/* kvm_xen_vcpu_set_attr(vcpu, data) */
static unsigned long xen_vcpu_attr_hook(struct pt_regs *regs)
{
	struct kvm_vcpu *vcpu = (void *)regs_get_kernel_argument(regs, 0);

	return xen_check(vcpu->kvm, false);
}

/* None exported: found by name. */
static struct kvmguard_redirect xen_hooks[] = {
	{ .fn = "kvm_xen_hvm_config", .redirect = xen_config_hook },
	{ .fn = "kvm_xen_hvm_set_attr", .redirect = xen_attr_hook },
	{ .fn = "kvm_xen_vcpu_set_attr", .redirect = xen_vcpu_attr_hook },
};

static unsigned int xen_hooked;

int kvmguard_xen_init(void)
{
	int err;

	if (!KVMGUARD_KVM_XEN)
		return 0;
	for (xen_hooked = 0; xen_hooked < ARRAY_SIZE(xen_hooks); xen_hooked++) {
		err = kvmguard_redirect_attach(&xen_hooks[xen_hooked], 0);
		if (err) {
			kvmguard_xen_uninit();
			return err;
		}
	}
	return 0;
}

void kvmguard_xen_uninit(void)
{
	while (xen_hooked)
		kvmguard_redirect_detach(&xen_hooks[--xen_hooked]);
}

/*
 * About to enforce xen deny on a running VM: close its gate (its VMM's
 * Xen requests are refused from now on), then look whether it has used
 * KVM_XEN_HVM_CONFIG, or has Xen mode on (set up before kvmguard was
 * loaded): -EBUSY if so, the rule could not hold. Either way
 * kvmguard_xen_open() follows, once the new rules are in place or
 * abandoned. Sleeps.
 */
int kvmguard_xen_close(struct kvmguard_vm *vm, struct netlink_ext_ack *extack)
{
	struct kvm *kvm;
	bool on;

	atomic_inc(&vm->xen_gate);
	/* Pairs with the barrier in xen_check(). */
	smp_mb__after_atomic();
	on = atomic_read(&vm->xen_configs);
	kvm = kvmguard_vm_kvm_get(vm);
	if (kvm) {
		on |= kvmguard_xen_mode(kvm);
		kvm_put_kvm(kvm);
	}
	if (!on)
		return 0;
	NL_SET_ERR_MSG(extack,
		       "xen deny: a VM has KVM's Xen emulation set up; it cannot be taken back");
	return -EBUSY;
}

void kvmguard_xen_open(struct kvmguard_vm *vm)
{
	/* The new rules are visible before the gate opens: see xen_check(). */
	smp_mb__before_atomic();
	atomic_dec(&vm->xen_gate);
}
