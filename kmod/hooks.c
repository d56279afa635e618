// SPDX-License-Identifier: GPL-2.0
/*
 * Every place where kvmguard attaches to the kernel, installed and removed
 * together.
 *
 * VM lifecycle: KVM has no notifier for VM creation and its VM list is not
 * exported, so hooks watch two global functions of kvm.ko that every VM
 * passes through, in both supported kernels (virt/kvm/kvm_main.c):
 *  - kvm_arch_post_init_vm(): the last step of kvm_create_vm() that can
 *    fail; from here on every path ends in kvm_arch_destroy_vm(), the
 *    error unwinding of kvm_create_vm() included. A redirect (below): a
 *    VM the registry cannot take is refused.
 *  - kvm_arch_destroy_vm(): called before KVM frees the VM. It only
 *    looks, through the same ftrace_ops as a redirect, without IPMODIFY:
 *    not a kprobe, as the kprobes/enabled switch in debugfs would disarm
 *    it alone and leave destroyed VMs registered with a freed struct kvm.
 *
 * Redirects: a hook that sends a call somewhere else (sets the instruction
 * pointer) must say so to ftrace, or a livepatch of the same function is
 * accepted and whichever of the two runs last wins - kvmguard's refusal
 * could be skipped without a word. A kprobe on an ftrace site does not say
 * so unless it has a post_handler, and one that joins a probe already
 * there never does (kernel/kprobes.c arms the first probe's ftrace_ops).
 * So every redirect is an ftrace_ops of its own with FTRACE_OPS_FL_IPMODIFY:
 * ftrace allows one such user per function and refuses the second comer
 * (register_ftrace_function() fails with -EBUSY), whichever it is; the
 * direct calls (hypercall.c, tap_hooks.c) are refused beside it as well.
 * Hooks that only look coexist with a livepatch.
 *
 * Every one of these ftrace_ops is PERMANENT: the sysctl
 * kernel.ftrace_enabled=0 would turn every ftrace site into a nop (the
 * direct calls and kprobes on them too) and silently lift every rule; it
 * is refused while such an ops is registered, and such an ops cannot be
 * registered while ftrace is off, so kvmguard never runs unarmed.
 */
#define pr_fmt(fmt) "kvmguard: " fmt
#include <linux/ftrace.h>
#include <linux/kallsyms.h>
#include <linux/kprobes.h>
#include <linux/kvm_host.h>
#include <linux/ptrace.h>

#include "kvmguard.h"
#include "compat.h"
#include "fault_inject.h"

/*
 * The ftrace handler of every redirect. FTRACE_OPS_FL_RECURSION: ftrace
 * calls it with preemption off and not recursively, as a kprobe's handler.
 */
static void notrace redirect_hook(unsigned long ip, unsigned long parent_ip,
				  struct ftrace_ops *ops,
				  struct ftrace_regs *fregs)
{
	struct kvmguard_redirect *r = container_of(ops, struct kvmguard_redirect,
						   ops);
	struct pt_regs *regs = kvmguard_ftrace_regs(fregs);
	unsigned long to = r->redirect(regs);

	/*
	 * At the function's entry, before it touched the stack: the stand-in
	 * gets its arguments and returns to its caller.
	 */
	if (to)
		instruction_pointer_set(regs, to);
}

/**
 * kvmguard_redirect_attach - hook @r->fn with @r->redirect
 * @r: the redirect, not attached
 * @ip: the function's address, or 0 to find @r->fn by name (which walks
 *	every function ftrace knows: use it for functions not exported)
 *
 * Return: 0, or -errno with the reason in the kernel log: -EBUSY when
 * another ftrace user modifies the function already (a livepatch) or has
 * a direct call on it that cannot share it.
 */
int kvmguard_redirect_attach(struct kvmguard_redirect *r, unsigned long ip)
{
	char name[KSYM_NAME_LEN];
	int err;

	memset(&r->ops, 0, sizeof(r->ops));
	r->ops.func = redirect_hook;
	/* PERMANENT: see the top of this file. */
	r->ops.flags = FTRACE_OPS_FL_RECURSION | FTRACE_OPS_FL_PERMANENT;
	if (!r->watch)
		r->ops.flags |= FTRACE_OPS_FL_IPMODIFY;
	if (ip) {
		err = ftrace_set_filter_ip(&r->ops, ip, 0, 0);
	} else {
		/* ftrace's parser may write into the name: a copy. */
		strscpy(name, r->fn, sizeof(name));
		err = ftrace_set_filter(&r->ops, (unsigned char *)name,
					strlen(name), 1);
	}
	if (!err)
		err = register_ftrace_function(&r->ops);
	if (!err)
		return 0;
	ftrace_free_filter(&r->ops);
	if (err == -EBUSY)
		pr_err("cannot hook %s: another ftrace user (a livepatch?) modifies it: %d\n",
		       r->fn, err);
	else
		pr_err("cannot hook %s: %d\n", r->fn, err);
	return err;
}

/* Returns once no task is in @r's handler any more. */
void kvmguard_redirect_detach(struct kvmguard_redirect *r)
{
	unregister_ftrace_function(&r->ops);
	ftrace_free_filter(&r->ops);
}

/*
 * Entered instead of kvm_arch_post_init_vm() when the VM cannot be
 * registered: the caller sees an ordinary allocation failure and unwinds.
 */
static noinline notrace int kvmguard_refuse_vm(void)
{
	return -ENOMEM;
}

/* The same, for a creator whose cgroup path does not fit PATH_MAX. */
static noinline notrace int kvmguard_refuse_vm_cgroup(void)
{
	return -ENAMETOOLONG;
}

static unsigned long vm_created(struct pt_regs *regs)
{
	struct kvm *kvm = (struct kvm *)regs_get_kernel_argument(regs, 0);

	int err = kvmguard_registry_add(kvm, current, 0, GFP_ATOMIC);

	if (likely(!err))
		return 0;
	/* Fail closed: a VM the registry does not know would run without its policy. */
	if (err == -ENAMETOOLONG) {
		pr_warn_ratelimited("refusing a VM of pid %d: its cgroup path is too long to match the bindings\n",
				    task_tgid_nr(current));
		return (unsigned long)kvmguard_refuse_vm_cgroup;
	}
	pr_warn_ratelimited("refusing a VM of pid %d: out of memory\n",
			    task_tgid_nr(current));
	return (unsigned long)kvmguard_refuse_vm;
}

static unsigned long vm_destroyed(struct pt_regs *regs)
{
	kvmguard_registry_remove((struct kvm *)regs_get_kernel_argument(regs, 0));
	return 0;
}

/* kvm_arch_post_init_vm() is not exported: found by name. */
static struct kvmguard_redirect vm_create_hook = {
	.fn = "kvm_arch_post_init_vm",
	.redirect = vm_created,
};

/*
 * Not a kprobe: debugfs kprobes/enabled=0 disarms every kprobe, and a VM
 * destroyed unseen would stay registered with a freed struct kvm.
 */
static struct kvmguard_redirect vm_destroy_hook = {
	.fn = "kvm_arch_destroy_vm",
	.redirect = vm_destroyed,
	.watch = true,
};

int kvmguard_hooks_init(void)
{
	int err;

	if (kvmguard_fault(KVMGUARD_FAULT_LIFECYCLE_KPROBES))
		return -EBUSY;
	/* Destroy before create: a VM is never registered without its end. */
	err = kvmguard_redirect_attach(&vm_destroy_hook, 0);
	if (err)
		return err;
	err = kvmguard_redirect_attach(&vm_create_hook, 0);
	if (err)
		goto err_create;
	/* CPUID of vCPUs: pv_features.c. */
	err = kvmguard_pv_init();
	if (err)
		goto err_pv;
	return 0;

err_pv:
	kvmguard_redirect_detach(&vm_create_hook);
err_create:
	kvmguard_redirect_detach(&vm_destroy_hook);
	return err;
}

void kvmguard_hooks_uninit(void)
{
	/* Each returns once no handler is running any more. */
	kvmguard_pv_uninit();
	kvmguard_redirect_detach(&vm_create_hook);
	kvmguard_redirect_detach(&vm_destroy_hook);
}
