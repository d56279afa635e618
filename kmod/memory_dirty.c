// SPDX-License-Identifier: GPL-2.0
/*
 * The dirty-log budget (mem dirty-log max) against the dirty tracking a
 * VMM can do without KVM: soft-dirty bits (/proc/PID/clear_refs, then
 * /proc/PID/pagemap) and userfaultfd write-protection (UFFDIO_WRITEPROTECT,
 * UFFDIO_COPY with UFFDIO_COPY_MODE_WP; on 6.12 also
 * UFFDIO_REGISTER_MODE_WP, UFFDIO_CONTINUE with UFFDIO_CONTINUE_MODE_WP
 * and PAGEMAP_SCAN with PM_SCAN_WP_MATCHING). On 6.1 the registration is
 * inlined in the ioctl, with the context private: not hooked, its
 * protection cannot be armed over guest memory anyway.
 *
 * How much of a VM's memory such tracking covers cannot be accounted from
 * a module (a range write-protected a piece at a time, pages unprotected
 * by faults), so the rule is the sound simple one: a VM whose budget is
 * below its guest memory (its user memslots, as KVM would count them all
 * dirty-logged) gets none of it over its guest memory. Soft-dirty clearing
 * covers the whole address space, so any write to clear_refs of its
 * process is refused (the value written cannot be read without a race
 * against the kernel's own read of it); so is PAGEMAP_SCAN on its pagemap.
 * Write-protection is refused where its range touches guest memory, as
 * each kernel passes it after copying the request in: the hooks sit on the
 * functions that set the protection, not on the ioctl.
 *
 * Each hook is a redirect (hooks.c) to a function that returns -EPERM,
 * attached while some policy has a dirty-log budget. The handlers run in
 * atomic context; a VM's memslots are read under its SRCU inside the
 * registry lock (kvmguard_vm_kvm_call()), which keeps KVM from freeing
 * them meanwhile.
 */
#define pr_fmt(fmt) "kvmguard: " fmt
#include <linux/dcache.h>
#include <linux/fs.h>
#include <linux/kvm_host.h>
#include <linux/mm_types.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/proc_fs.h>
#include <linux/ptrace.h>
#include <linux/sched/task.h>
#include <linux/userfaultfd_k.h>

#include "kvmguard.h"
#include "compat.h"

/* Policies with a dirty-log budget: the hooks are attached while > 0. */
static unsigned int dirty_users;	/* under kvmguard_config_mutex */

/* Roads, for the kernel log. */
enum dirty_road {
	ROAD_SOFT_DIRTY,
	ROAD_UFFD_WP,
	ROAD_PAGEMAP_SCAN,
};

/* Guest memory of one VM against a range of its process. */
struct dirty_span {
	unsigned long start, end;	/* end exclusive; 0, ULONG_MAX: all */
	u64 total;			/* bytes of all user memslots */
	bool inside;			/* some of them within [start, end) */
};

/* Under the registry lock: @kvm stays. */
static void dirty_span_fill(struct kvm *kvm, void *arg)
{
	struct dirty_span *ds = arg;
	struct kvm_memory_slot *slot;
	unsigned long lo, hi;
	int as, bkt, idx;

	idx = srcu_read_lock(&kvm->srcu);
	for (as = 0; as < kvmguard_nr_as_ids(kvm); as++) {
		kvm_for_each_memslot(slot, bkt, __kvm_memslots(kvm, as)) {
			if (slot->id >= KVM_USER_MEM_SLOTS)
				continue;
			lo = slot->userspace_addr;
			hi = lo + (slot->npages << PAGE_SHIFT);
			ds->total += slot->npages << PAGE_SHIFT;
			if (lo < ds->end && hi > ds->start)
				ds->inside = true;
		}
	}
	srcu_read_unlock(&kvm->srcu, idx);
}

/* A VM's dirty-log budget broken through @road: count, log, report. */
static void dirty_violation(struct kvmguard_vm *vm, enum dirty_road road,
			    bool refused, u64 bytes)
{
	static const char * const roads[] = {
		[ROAD_SOFT_DIRTY] = "soft-dirty clearing (clear_refs)",
		[ROAD_UFFD_WP] = "userfaultfd write-protection",
		[ROAD_PAGEMAP_SCAN] = "PAGEMAP_SCAN",
	};
	const u8 rule = KVMGUARD_MEM_RULE_DIRTY_LOG;
	unsigned long flags;
	u64 count;

	atomic64_inc(&vm->mem.denied[rule - 1]);
	spin_lock_irqsave(&vm->mem.report_lock, flags);
	count = kvmguard_report_due(&vm->mem.reports[rule - 1]);
	spin_unlock_irqrestore(&vm->mem.report_lock, flags);
	if (!count)
		return;
	pr_info_ratelimited("VM %llu (pid %d): dirty-log budget rule %s: %s over its guest memory (%llu)\n",
			    vm->id, vm->pid_nr, refused ? "denied" : "audited",
			    roads[road], count);
	kvmguard_notify_mem(vm, rule, refused ? KVMGUARD_ACTION_DENIED :
						KVMGUARD_ACTION_AUDITED,
			    count, -1, bytes);
}

/*
 * Is tracking writes to [@start, @end) of @mm (NULL: not known, any
 * process) through @road refused? Every VM of the process whose budget is
 * below its guest memory and whose guest memory the range touches counts
 * a violation. Atomic context.
 */
static bool dirty_refuse(struct mm_struct *mm, unsigned long start,
			 unsigned long end, enum dirty_road road)
{
	struct kvmguard_policy *policy;
	struct kvmguard_rules *rules;
	struct kvmguard_vm *vm;
	struct dirty_span ds;
	bool refuse = false;
	unsigned long id;

	rcu_read_lock();
	for (id = 0; (vm = kvmguard_vm_find_rcu(&id)); id++) {
		if (mm && vm->mm != mm)
			continue;
		policy = rcu_dereference(vm->policy);
		rules = policy ? rcu_dereference(policy->rules) : NULL;
		if (!rules || rules->dirty_max == KVMGUARD_MEM_UNLIMITED)
			continue;
		ds = (struct dirty_span){ .start = start, .end = end };
		if (!kvmguard_vm_kvm_call(vm, dirty_span_fill, &ds) ||
		    !ds.inside || ds.total <= rules->dirty_max)
			continue;
		dirty_violation(vm, road, rules->mode == KVMGUARD_MODE_ENFORCE,
				ds.total);
		if (rules->mode == KVMGUARD_MODE_ENFORCE)
			refuse = true;
	}
	rcu_read_unlock();
	return refuse;
}

/* Entered instead of a call that would track writes beyond a budget. */
static noinline notrace long dirty_refused(void)
{
	return -EPERM;
}

static unsigned long refuse_if(bool refuse)
{
	return refuse ? (unsigned long)dirty_refused : 0;
}

/*
 * The process /proc/PID/clear_refs (or /proc/PID/task/TID/clear_refs) is
 * about, found by the name of its directory in the pid namespace of that
 * proc mount, as proc itself resolves it. NULL: not found (the write then
 * fails as the task is gone), or ERR_PTR(-ENOENT): a name that is no pid.
 * Caller holds rcu_read_lock(); the mm is only compared.
 */
static struct mm_struct *proc_file_mm(struct file *file)
{
	struct pid_namespace *ns = proc_pid_ns(file_inode(file)->i_sb);
	struct name_snapshot dir;
	struct task_struct *task;
	unsigned int nr;
	int err;

	/* The file pins its dentry, which pins its parent. */
	take_dentry_name_snapshot(&dir, file->f_path.dentry->d_parent);
	err = kstrtouint(dir.name.name, 10, &nr);
	release_dentry_name_snapshot(&dir);
	if (err || !nr)
		return ERR_PTR(-ENOENT);
	task = pid_task(find_pid_ns(nr, ns), PIDTYPE_PID);
	return task ? READ_ONCE(task->mm) : NULL;
}

/* clear_refs_write(file, buf, count, ppos) */
static unsigned long clear_refs_hook(struct pt_regs *regs)
{
	struct file *file = (void *)regs_get_kernel_argument(regs, 0);
	struct mm_struct *mm;

	rcu_read_lock();
	mm = proc_file_mm(file);
	rcu_read_unlock();
	if (!mm)
		return 0;
	/* A directory that names no pid: every VM has its say. */
	return refuse_if(dirty_refuse(IS_ERR(mm) ? NULL : mm, 0, ULONG_MAX,
				      ROAD_SOFT_DIRTY));
}

/* Range [@start, @start + @len), wrapping or not (the callee refuses it). */
static bool uffd_refuse(struct mm_struct *mm, unsigned long start,
			unsigned long len)
{
	unsigned long end = start + len < start ? ULONG_MAX : start + len;

	return dirty_refuse(mm, start, end, ROAD_UFFD_WP);
}

/* mwriteprotect_range(ctx or mm, start, len, enable_wp, ...) */
static unsigned long uffd_wp_hook(struct pt_regs *regs)
{
	if (!regs_get_kernel_argument(regs, 3))
		return 0;		/* lifting it */
	return refuse_if(uffd_refuse(kvmguard_uffd_mm(regs_get_kernel_argument(regs, 0)),
				     regs_get_kernel_argument(regs, 1),
				     regs_get_kernel_argument(regs, 2)));
}

/* The fill that may install pages write-protected; see compat.h. */
static unsigned long uffd_copy_hook(struct pt_regs *regs)
{
	unsigned long flags = regs_get_kernel_argument(regs,
						       KVMGUARD_UFFD_COPY_FLAGS);

	if (!(flags & KVMGUARD_UFFD_FILL_WP))
		return 0;
	return refuse_if(uffd_refuse(kvmguard_uffd_mm(regs_get_kernel_argument(regs, 0)),
				     regs_get_kernel_argument(regs, 1),
				     regs_get_kernel_argument(regs, 3)));
}

/* mfill_atomic_continue(ctx, start, len, flags) (6.12) */
static unsigned long uffd_continue_hook(struct pt_regs *regs)
{
	if (!(regs_get_kernel_argument(regs, 3) & KVMGUARD_UFFD_FILL_WP))
		return 0;
	return refuse_if(uffd_refuse(kvmguard_uffd_mm(regs_get_kernel_argument(regs, 0)),
				     regs_get_kernel_argument(regs, 1),
				     regs_get_kernel_argument(regs, 2)));
}

/* userfaultfd_register_range(ctx, vma, vm_flags, start, end, wp_async) (6.12) */
static unsigned long uffd_register_hook(struct pt_regs *regs)
{
	struct vm_area_struct *vma = (void *)regs_get_kernel_argument(regs, 1);
	unsigned long start = regs_get_kernel_argument(regs, 3);
	unsigned long end = regs_get_kernel_argument(regs, 4);

	if (!(regs_get_kernel_argument(regs, 2) & VM_UFFD_WP))
		return 0;
	return refuse_if(dirty_refuse(vma->vm_mm, start, end, ROAD_UFFD_WP));
}

/*
 * do_pagemap_cmd(file, cmd, arg) (6.7+): the file holds the mm. The
 * request is not read here (the kernel reads it again after us), so every
 * PAGEMAP_SCAN of such a process is refused, whatever it asks.
 */
static unsigned long pagemap_scan_hook(struct pt_regs *regs)
{
	struct file *file = (void *)regs_get_kernel_argument(regs, 0);
	struct mm_struct *mm = READ_ONCE(file->private_data);

	if (regs_get_kernel_argument(regs, 1) != KVMGUARD_PAGEMAP_SCAN || !mm)
		return 0;
	return refuse_if(dirty_refuse(mm, 0, ULONG_MAX, ROAD_PAGEMAP_SCAN));
}

/* A function this kernel lacks has no name here (compat.h): not hooked. */
static struct kvmguard_redirect dirty_hooks[] = {
	{ .fn = KVMGUARD_CLEAR_REFS_FN, .redirect = clear_refs_hook },
	{ .fn = KVMGUARD_UFFD_WP_FN, .redirect = uffd_wp_hook },
	{ .fn = KVMGUARD_UFFD_COPY_FN, .redirect = uffd_copy_hook },
	{ .fn = KVMGUARD_UFFD_CONTINUE_FN, .redirect = uffd_continue_hook },
	{ .fn = KVMGUARD_UFFD_REGISTER_FN, .redirect = uffd_register_hook },
	{ .fn = KVMGUARD_PAGEMAP_SCAN_FN, .redirect = pagemap_scan_hook },
};

/* Detach the first @n hooks. Returns once no handler runs any more. */
static void dirty_detach(unsigned int n)
{
	while (n--)
		if (dirty_hooks[n].fn)
			kvmguard_redirect_detach(&dirty_hooks[n]);
}

static int dirty_attach(void)
{
	unsigned int n;
	int err;

	for (n = 0; n < ARRAY_SIZE(dirty_hooks); n++) {
		if (!dirty_hooks[n].fn)
			continue;
		/* Not exported, or static: by name. */
		err = kvmguard_redirect_attach(&dirty_hooks[n], 0);
		if (err) {
			dirty_detach(n);
			return err;
		}
	}
	return 0;
}

static bool has_dirty_rule(const struct kvmguard_rules *rules)
{
	return rules && rules->dirty_max != KVMGUARD_MEM_UNLIMITED;
}

/*
 * A policy's rules go from @old to @new (either NULL): the hooks are
 * attached for the first policy with a dirty-log budget, before its rules
 * apply, and detached after the last. On error nothing changed.
 */
int kvmguard_dirty_rules_changed(const struct kvmguard_rules *old,
				 const struct kvmguard_rules *new)
{
	bool was = has_dirty_rule(old), is = has_dirty_rule(new);
	int err;

	lockdep_assert_held(&kvmguard_config_mutex);
	if (was == is)
		return 0;
	if (is) {
		if (!dirty_users) {
			err = dirty_attach();
			if (err)
				return err;
		}
		dirty_users++;
	} else if (!--dirty_users) {
		dirty_detach(ARRAY_SIZE(dirty_hooks));
	}
	return 0;
}

/* Unload, with kvmguard_config_mutex held. */
void kvmguard_dirty_uninit(void)
{
	lockdep_assert_held(&kvmguard_config_mutex);
	if (dirty_users)
		dirty_detach(ARRAY_SIZE(dirty_hooks));
	dirty_users = 0;
	/* dirty_refused() is module code too. */
	synchronize_rcu_tasks();
}
