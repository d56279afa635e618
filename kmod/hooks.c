// SPDX-License-Identifier: GPL-2.0
/*
 * Every place where kvmguard attaches to the kernel, installed and removed
 * together.
 *
 * VM lifecycle: KVM has no notifier for VM creation and its VM list is not
 * exported, so kprobes watch two global functions of kvm.ko that every VM
 * passes through, in both supported kernels (virt/kvm/kvm_main.c):
 *  - kvm_arch_post_init_vm(): the last step of kvm_create_vm() that can
 *    fail; from here on every path ends in kvm_arch_destroy_vm(), the
 *    error unwinding of kvm_create_vm() included.
 *  - kvm_arch_destroy_vm(): called before KVM frees the VM.
 * Both run in process context, but kprobe handlers are atomic.
 */
#define pr_fmt(fmt) "kvmguard: " fmt
#include <linux/kprobes.h>
#include <linux/kvm_host.h>
#include <linux/ptrace.h>

#include "kvmguard.h"
#include "fault_inject.h"

/*
 * Entered instead of kvm_arch_post_init_vm() when the VM cannot be
 * registered: the caller sees an ordinary allocation failure and unwinds.
 */
static noinline notrace int kvmguard_refuse_vm(void)
{
	return -ENOMEM;
}

static int vm_created(struct kprobe *p, struct pt_regs *regs)
{
	struct kvm *kvm = (struct kvm *)regs_get_kernel_argument(regs, 0);

	if (likely(!kvmguard_registry_add(kvm, current, 0, GFP_ATOMIC)))
		return 0;
	/*
	 * Fail closed: a VM the registry does not know would run without its
	 * policy. The probe sits at the function's entry, before it touched
	 * the stack, so returning from our stand-in returns to its caller.
	 */
	pr_warn_ratelimited("refusing a VM of pid %d: out of memory\n",
			    task_tgid_nr(current));
	instruction_pointer_set(regs, (unsigned long)kvmguard_refuse_vm);
	return 1;
}

static int vm_destroyed(struct kprobe *p, struct pt_regs *regs)
{
	kvmguard_registry_remove((struct kvm *)regs_get_kernel_argument(regs, 0));
	return 0;
}

static struct kprobe vm_create_probe = {
	.symbol_name = "kvm_arch_post_init_vm",
	.pre_handler = vm_created,
};

static struct kprobe vm_destroy_probe = {
	.symbol_name = "kvm_arch_destroy_vm",
	.pre_handler = vm_destroyed,
};

static struct kprobe *lifecycle_probes[] = {
	&vm_destroy_probe,
	&vm_create_probe,
};

int kvmguard_hooks_init(void)
{
	int err;

	if (kvmguard_fault(KVMGUARD_FAULT_LIFECYCLE_KPROBES))
		return -EBUSY;
	/* Destroy before create: a VM is never registered without its end. */
	err = register_kprobes(lifecycle_probes, ARRAY_SIZE(lifecycle_probes));
	if (err)
		pr_err("cannot attach to KVM's VM lifecycle: %d\n", err);
	return err;
}

void kvmguard_hooks_uninit(void)
{
	/* Returns once no handler is running any more. */
	unregister_kprobes(lifecycle_probes, ARRAY_SIZE(lifecycle_probes));
}
