// SPDX-License-Identifier: GPL-2.0
/*
 * Memory rules: how much guest memory a VM may map, whether shared mappings
 * may back it and with whom, whether KSM may merge its process's pages and
 * how much of it may be dirty-tracked at once.
 *
 * Memslots. KVM_SET_USER_MEMORY_REGION(2) ends in __kvm_set_memory_region(),
 * exported by both kernels and called with kvm->slots_lock held (the ioctl
 * handler has kvm_set_memory_region() inlined, so only this one can be
 * hooked). While some policy has a memory rule, an ftrace handler at its
 * entry lets the common user-memslot change through by itself
 * (memslot_quick(): no rule broken, nothing to record) and sends any other
 * to memslot_change(), which checks it, calls the original (marked in the
 * VM, so the handler lets that call through) and records what it must
 * remember. slots_lock keeps KVM's memslots still meanwhile, so sizes and
 * dirty-log flags are read from KVM itself and the accounting is exact
 * whatever order slots are created, moved, flagged and deleted in.
 *
 * Shared backings. The inode of every shared mapping under a memslot is
 * recorded (with a reference on a file of it, so that the address cannot
 * be reused by another inode meanwhile) until the slot is deleted or the
 * VM destroyed. The domain rule looks them up by inode.
 *
 * KSM. ksm_madvise() (madvise MADV_MERGEABLE) and, on 6.4+,
 * ksm_enable_merge_any() (prctl PR_SET_MEMORY_MERGE) are refused for a
 * process that owns a VM whose policy denies KSM. The madvise is what a
 * stock VMM asks for by default (QEMU's mem-merge=on, at start and for
 * hot-added memory): it is refused all the same, but counted apart
 * (vm->mem.ksm_madvise) and reported once per VM, marked as a VMM default,
 * so that it does not bury the violations. PR_SET_MEMORY_MERGE (no VMM
 * sets it by default; it covers every later mapping and survives execve)
 * and a memslot over mergeable memory stay violations.
 *
 * Mappings under live slots: see "Slot ranges" and "Mappings under live
 * memslots" below; the rules hold for a slot's whole life.
 *
 * Locking: mem_lock (a spinlock, since VM destruction arrives in atomic
 * context) guards the backing records, every VM's list of them and the
 * slot ranges. It nests inside the registry lock, in kvm->slots_lock and
 * in a process's mmap_lock (the mapping hooks), and takes nothing but RCU
 * inside. The memslot and mapping hooks are attached and detached under
 * kvmguard_config_mutex.
 */
#define pr_fmt(fmt) "kvmguard: " fmt
#include <linux/file.h>
#include <linux/hashtable.h>
#include <linux/interval_tree.h>
#include <linux/ksm.h>
#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/ptrace.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/wait_bit.h>
#include <net/netlink.h>

#include "kvmguard.h"
#include "compat.h"
#include "fault_inject.h"

/* One shared object under one memslot of one VM. */
struct kvmguard_backing {
	struct hlist_node hash;		/* backings, by inode */
	struct list_head vm_node;	/* vm->mem.backings */
	struct kvmguard_vm *vm;		/* records go before their VM does */
	struct inode *inode;
	struct file *file;		/* holds a reference; pins the inode */
	u32 slot;			/* as the VMM named it: as_id << 16 | id */
	u64 bytes;			/* of the memslot this object backs */
};

static DEFINE_SPINLOCK(mem_lock);
static DEFINE_HASHTABLE(backings, 12);
static unsigned long nr_backings;	/* written under mem_lock */

/* memslot_change() calls that may still run module code; see detach. */
static atomic_t in_flight = ATOMIC_INIT(0);
static bool memslot_detaching;	/* wake memslot_detach() at 0 */

/* Policies with a memory rule; the memslot hook is attached while > 0. */
static unsigned int mem_users;

/* The memory rules of a VM at one moment. */
struct mem_rules {
	u8 mode;
	u8 shared;
	u8 ksm;
	u64 max;
	u64 dirty_max;
	char domain[KVMGUARD_NAME_MAX + 1];
};

/* Caller holds rcu_read_lock(). No policy means nothing is limited. */
static void mem_rules_of(struct kvmguard_vm *vm, struct mem_rules *mr)
{
	struct kvmguard_policy *policy = rcu_dereference(vm->policy);
	struct kvmguard_rules *rules;

	rules = policy ? rcu_dereference(policy->rules) : NULL;
	if (!rules) {
		*mr = (struct mem_rules) {
			.max = KVMGUARD_MEM_UNLIMITED,
			.dirty_max = KVMGUARD_MEM_UNLIMITED,
		};
		return;
	}
	mr->mode = rules->mode;
	mr->shared = rules->mem_shared;
	mr->ksm = rules->ksm;
	mr->max = rules->mem_max;
	mr->dirty_max = rules->dirty_max;
	memcpy(mr->domain, rules->domain, sizeof(mr->domain));
}

void kvmguard_mem_vm_init(struct kvmguard_vm *vm)
{
	INIT_LIST_HEAD(&vm->mem.backings);
	spin_lock_init(&vm->mem.report_lock);
}

/* Count a violation of @rule and report it; @slot < 0: not a memslot. */
static void mem_violation(struct kvmguard_vm *vm, u8 rule, bool refused,
			  s64 slot, u64 bytes)
{
	static const char * const names[] = {
		[KVMGUARD_MEM_RULE_LIMIT] = "memory limit",
		[KVMGUARD_MEM_RULE_SHARED] = "shared memory",
		[KVMGUARD_MEM_RULE_KSM] = "KSM",
		[KVMGUARD_MEM_RULE_DIRTY_LOG] = "dirty-log budget",
	};
	unsigned long flags;
	u64 count;

	atomic64_inc(&vm->mem.denied[rule - 1]);
	spin_lock_irqsave(&vm->mem.report_lock, flags);
	count = kvmguard_report_due(&vm->mem.reports[rule - 1]);
	spin_unlock_irqrestore(&vm->mem.report_lock, flags);
	if (!count)
		return;
	pr_info_ratelimited("VM %llu (pid %d): %s rule %s (%llu)\n",
			    vm->id, vm->pid_nr, names[rule],
			    refused ? "denied" : "audited", count);
	kvmguard_notify_mem(vm, rule, refused ? KVMGUARD_ACTION_DENIED :
						KVMGUARD_ACTION_AUDITED,
			    count, slot, bytes);
}

/*
 * Is a mapping of @file (NULL: anonymous) with @vm_flags a shared backing?
 * A shared mapping is; so is a private mapping of a regular file (a memfd,
 * tmpfs, hugetlbfs, any file system): its pages are the file's page cache,
 * which every other mapping of it reads and writes, until the guest writes
 * them. /dev/zero and other special files map anonymous memory.
 */
static bool backing_shares(struct file *file, unsigned long vm_flags)
{
	return (vm_flags & VM_MAYSHARE) ||
	       (file && S_ISREG(file_inode(file)->i_mode));
}

/* One shared file mapping seen by a scan. */
struct scan_entry {
	struct inode *inode;
	struct file *file;		/* a reference, until it is a record's */
	u64 bytes;
};

/* What lies under a memslot's userspace range. */
struct backing_scan {
	u64 shared_bytes;
	bool mergeable;
	unsigned int nr;		/* distinct shared inodes, in found */
	struct kvmguard_backing **found;
	unsigned int nr_seen, max_seen;	/* shared file mappings, in seen */
	struct scan_entry *seen;
};

/*
 * Note a shared file mapping. Mappings are only appended here (amortised
 * constant time); scan_finish() sorts them once and folds the mappings of
 * one inode together, so a range of N mappings costs O(N log N).
 */
static int scan_add(struct backing_scan *bs, struct vm_area_struct *vma,
		    u64 bytes)
{
	struct scan_entry *grown;
	unsigned int max;

	if (bs->nr_seen == bs->max_seen) {
		max = bs->max_seen ? 2 * bs->max_seen : 16;
		grown = kvmalloc_array(max, sizeof(*grown), GFP_KERNEL_ACCOUNT);
		if (!grown)
			return -ENOMEM;
		if (bs->seen)
			memcpy(grown, bs->seen, bs->nr_seen * sizeof(*grown));
		kvfree(bs->seen);
		bs->seen = grown;
		bs->max_seen = max;
	}
	bs->seen[bs->nr_seen++] = (struct scan_entry) {
		.inode = file_inode(vma->vm_file),
		.file = get_file(vma->vm_file),
		.bytes = bytes,
	};
	return 0;
}

static int scan_entry_cmp(const void *a, const void *b)
{
	const struct scan_entry *x = a, *y = b;

	if (x->inode == y->inode)
		return 0;
	return x->inode < y->inode ? -1 : 1;
}

/* One record per distinct inode of bs->seen, in bs->found. Sleeps. */
static int scan_finish(struct backing_scan *bs)
{
	struct scan_entry *e;
	struct kvmguard_backing *b = NULL;
	unsigned int i;

	if (!bs->nr_seen)
		return 0;
	sort(bs->seen, bs->nr_seen, sizeof(*bs->seen), scan_entry_cmp, NULL);
	bs->found = kvmalloc_array(bs->nr_seen, sizeof(*bs->found),
				   GFP_KERNEL_ACCOUNT);
	if (!bs->found)
		return -ENOMEM;
	for (i = 0; i < bs->nr_seen; i++) {
		e = &bs->seen[i];
		if (b && b->inode == e->inode) {
			b->bytes += e->bytes;
			continue;
		}
		b = kzalloc(sizeof(*b), GFP_KERNEL_ACCOUNT);
		if (!b)
			return -ENOMEM;
		INIT_LIST_HEAD(&b->vm_node);
		b->inode = e->inode;
		b->file = e->file;
		e->file = NULL;		/* the record's now */
		b->bytes = e->bytes;
		bs->found[bs->nr++] = b;
	}
	return 0;
}

static void backing_free(struct kvmguard_backing *b)
{
	fput(b->file);
	kfree(b);
}

static void scan_release(struct backing_scan *bs)
{
	unsigned int i;

	for (i = 0; i < bs->nr; i++)
		if (bs->found[i])
			backing_free(bs->found[i]);
	kvfree(bs->found);
	for (i = 0; i < bs->nr_seen; i++)
		if (bs->seen[i].file)
			fput(bs->seen[i].file);
	kvfree(bs->seen);
}

/* Walk the mappings of [@start, @start + @size) in @mm. */
static int backing_scan(struct mm_struct *mm, unsigned long start, u64 size,
			struct backing_scan *bs)
{
	unsigned long end = start + size, lo, hi, n = 0, mapped = start;
	struct vm_area_struct *vma;
	struct vma_iterator vmi;
	int err = 0;

	if (mmap_read_lock_killable(mm))
		return -EINTR;
	vma_iter_init(&vmi, mm, start);
	bs->mergeable = kvmguard_mm_merge_any(mm);
	for_each_vma_range(vmi, vma, end) {
		mapped = vma->vm_end;
		if (vma->vm_flags & VM_MERGEABLE)
			bs->mergeable = true;
		if (backing_shares(vma->vm_file, vma->vm_flags)) {
			lo = max(start, vma->vm_start);
			hi = min(end, vma->vm_end);
			bs->shared_bytes += hi - lo;
			if (vma->vm_file)
				err = scan_add(bs, vma, hi - lo);
		}
		/* Most often one mapping covers it all: no look further. */
		if (err || vma->vm_end >= end)
			break;
		/* mmap_lock keeps the tree still while we sleep. */
		if (!(++n % 1024))
			cond_resched();
	}
	/*
	 * A hole at the top: a stack mapping just above it grows down into
	 * the slot at a fault, with no mapping call to hook, and brings its
	 * flags along (VM_MERGEABLE: a KSM road).
	 */
	if (!err && mapped < end) {
		vma = find_vma(mm, end - 1);
		if (vma && (vma->vm_flags & VM_GROWSDOWN) &&
		    (vma->vm_flags & VM_MERGEABLE))
			bs->mergeable = true;
	}
	mmap_read_unlock(mm);
	return err ?: scan_finish(bs);
}

/* May a VM with rules @a share a backing object with one with rules @b? */
static bool share_ok(const struct mem_rules *a, const struct mem_rules *b)
{
	switch (a->shared) {
	case KVMGUARD_MEM_SHARED_ALLOW:
		return true;
	case KVMGUARD_MEM_SHARED_DOMAIN:
		return a->domain[0] && !strcmp(a->domain, b->domain);
	default:
		return false;
	}
}

enum share_verdict {
	SHARE_OK,
	SHARE_AUDITED,		/* a rule is broken, none of them enforced */
	SHARE_REFUSED,
};

/*
 * Check the shared objects @bs found for slot @slot of @vm against every
 * other VM that uses them, in both directions, and record them unless
 * refused (@mine NULL: record without a check). Recording before KVM
 * commits the slot keeps two VMs that race for one object from both
 * passing; memslot_unrecord() takes it back if KVM then fails.
 */
static enum share_verdict share_record(struct kvmguard_vm *vm,
				       const struct mem_rules *mine, u32 slot,
				       struct backing_scan *bs)
{
	enum share_verdict verdict = SHARE_OK;
	struct kvmguard_backing *b, *other;
	struct mem_rules theirs;
	unsigned int i;

	spin_lock(&mem_lock);
	rcu_read_lock();
	for (i = 0; mine && i < bs->nr && verdict != SHARE_REFUSED; i++) {
		b = bs->found[i];
		hash_for_each_possible(backings, other, hash,
				       (unsigned long)b->inode) {
			if (other->inode != b->inode || other->vm == vm)
				continue;
			mem_rules_of(other->vm, &theirs);
			if (!share_ok(mine, &theirs) &&
			    mine->mode == KVMGUARD_MODE_ENFORCE)
				verdict = SHARE_REFUSED;
			else if (!share_ok(&theirs, mine) &&
				 theirs.mode == KVMGUARD_MODE_ENFORCE)
				verdict = SHARE_REFUSED;
			else if (!share_ok(mine, &theirs) ||
				 !share_ok(&theirs, mine))
				verdict = SHARE_AUDITED;
			if (verdict == SHARE_REFUSED)
				break;
		}
	}
	rcu_read_unlock();
	if (verdict != SHARE_REFUSED) {
		for (i = 0; i < bs->nr; i++) {
			b = bs->found[i];
			b->vm = vm;
			b->slot = slot;
			hash_add(backings, &b->hash, (unsigned long)b->inode);
			WRITE_ONCE(nr_backings, nr_backings + 1);
			list_add_tail(&b->vm_node, &vm->mem.backings);
			vm->mem.shared_bytes += b->bytes;
			bs->found[i] = NULL;	/* owned by the records now */
		}
	}
	spin_unlock(&mem_lock);
	return verdict;
}

/* Forget the shared objects of @slot of @vm. */
static void memslot_unrecord(struct kvmguard_vm *vm, u32 slot)
{
	struct kvmguard_backing *b, *tmp;
	LIST_HEAD(gone);

	spin_lock(&mem_lock);
	list_for_each_entry_safe(b, tmp, &vm->mem.backings, vm_node) {
		if (b->slot != slot)
			continue;
		hash_del(&b->hash);
		WRITE_ONCE(nr_backings, nr_backings - 1);
		list_move(&b->vm_node, &gone);
		vm->mem.shared_bytes -= b->bytes;
	}
	spin_unlock(&mem_lock);
	list_for_each_entry_safe(b, tmp, &gone, vm_node)
		backing_free(b);
}

/*
 * Slot ranges. While the memslot hook is attached, the userspace range of
 * every user memslot of every VM is recorded, from before KVM creates the
 * slot (before the scan of what backs it) until KVM deleted it, in a
 * struct mem_watch per VM found by its mm. The mapping hooks (below) look
 * them up to check a mapping that a process puts under its own VM's live
 * memslots. KVM never changes a slot's userspace range: only a create and
 * a delete change them.
 *
 * Host bytes. A range of host memory may back several slots: x86 VMMs
 * with SMM (QEMU's pc and q35) give address space 1 the same RAM as
 * address space 0, and a VMM may map one range at two guest addresses.
 * The memory limit counts each host byte once: w->bytes is the measure
 * of the union of a VM's ranges, kept as ranges come and go (a range adds
 * or takes the bytes no other range covers), at the cost of a walk over
 * the ranges that overlap it.
 */
struct slot_range {
	struct interval_tree_node it;	/* [start, last] */
	u32 slot;
};

struct mem_watch {
	struct hlist_node by_mm;	/* watches; RCU, changed under mem_lock */
	struct kvmguard_vm *vm;
	struct mm_struct *mm;		/* vm->mm, compared only */
	struct rb_root_cached ranges;	/* of slot_range, under mem_lock */
	u64 bytes;			/* host bytes they cover, under mem_lock */
	struct rcu_head rcu;
};

static DEFINE_HASHTABLE(watches, 8);
static unsigned long nr_ranges;		/* written under mem_lock */

/* Caller holds mem_lock. */
static struct mem_watch *watch_of(struct kvmguard_vm *vm)
{
	struct mem_watch *w;

	hash_for_each_possible(watches, w, by_mm, (unsigned long)vm->mm)
		if (w->vm == vm)
			return w;
	return NULL;
}

/*
 * The measure of a union of intervals, fed in order of their starts (the
 * order of an interval tree's walk).
 */
struct sweep {
	unsigned long start, last;	/* the piece being built */
	bool any;
	u64 bytes;			/* of the pieces before it */
};

static void sweep_add(struct sweep *s, unsigned long start, unsigned long last)
{
	if (s->any && start <= s->last) {
		s->last = max(s->last, last);
		return;
	}
	if (s->any)
		s->bytes += s->last - s->start + 1;
	s->start = start;
	s->last = last;
	s->any = true;
}

static u64 sweep_end(const struct sweep *s)
{
	return s->bytes + (s->any ? s->last - s->start + 1 : 0);
}

/* Caller holds mem_lock. Bytes of [@start, @last] that ranges of @w cover. */
static u64 ranges_cover(struct mem_watch *w, unsigned long start,
			unsigned long last)
{
	struct interval_tree_node *it;
	struct sweep s = {};

	for (it = interval_tree_iter_first(&w->ranges, start, last); it;
	     it = interval_tree_iter_next(it, start, last))
		sweep_add(&s, max(it->start, start), min(it->last, last));
	return sweep_end(&s);
}

/* Caller holds mem_lock. The range of @slot that contains @addr. */
static struct slot_range *range_find(struct mem_watch *w, u32 slot,
				     unsigned long addr)
{
	struct interval_tree_node *it;

	for (it = interval_tree_iter_first(&w->ranges, addr, addr); it;
	     it = interval_tree_iter_next(it, addr, addr))
		if (container_of(it, struct slot_range, it)->slot == slot)
			return container_of(it, struct slot_range, it);
	return NULL;
}

/* Record [@start, @start + @size) as @slot of @vm (again: nothing). Sleeps. */
static int range_record(struct kvmguard_vm *vm, u32 slot, unsigned long start,
			u64 size)
{
	struct mem_watch *w, *fresh;
	struct slot_range *r;

	r = kzalloc(sizeof(*r), GFP_KERNEL_ACCOUNT);
	fresh = kzalloc(sizeof(*fresh), GFP_KERNEL_ACCOUNT);
	if (!r || !fresh) {
		kfree(r);
		kfree(fresh);
		return -ENOMEM;
	}
	r->slot = slot;
	r->it.start = start;
	r->it.last = start + size - 1;
	spin_lock(&mem_lock);
	w = watch_of(vm);
	if (!w) {
		w = fresh;
		fresh = NULL;
		w->vm = vm;
		w->mm = vm->mm;
		w->ranges = RB_ROOT_CACHED;
		hash_add_rcu(watches, &w->by_mm, (unsigned long)vm->mm);
	}
	if (range_find(w, slot, start)) {
		kfree(r);
	} else {
		w->bytes += size - ranges_cover(w, start, r->it.last);
		interval_tree_insert(&r->it, &w->ranges);
		WRITE_ONCE(nr_ranges, nr_ranges + 1);
	}
	spin_unlock(&mem_lock);
	kfree(fresh);
	return 0;
}

/* Forget the range of @slot of @vm, which contains @addr. Any context. */
static void range_unrecord(struct kvmguard_vm *vm, u32 slot,
			   unsigned long addr)
{
	struct slot_range *r = NULL;
	struct mem_watch *w;

	spin_lock(&mem_lock);
	w = watch_of(vm);
	if (w)
		r = range_find(w, slot, addr);
	if (r) {
		interval_tree_remove(&r->it, &w->ranges);
		WRITE_ONCE(nr_ranges, nr_ranges - 1);
		w->bytes -= r->it.last - r->it.start + 1 -
			    ranges_cover(w, r->it.start, r->it.last);
	}
	spin_unlock(&mem_lock);
	kfree(r);
}

/* Forget every range of @vm. Any context. */
static void ranges_gone(struct kvmguard_vm *vm)
{
	struct interval_tree_node *it;
	struct mem_watch *w;

	spin_lock(&mem_lock);
	w = watch_of(vm);
	if (w) {
		hash_del_rcu(&w->by_mm);
		while ((it = interval_tree_iter_first(&w->ranges, 0, ULONG_MAX))) {
			interval_tree_remove(it, &w->ranges);
			WRITE_ONCE(nr_ranges, nr_ranges - 1);
			kfree(container_of(it, struct slot_range, it));
		}
	}
	spin_unlock(&mem_lock);
	/* The mapping hooks look watches up under RCU. */
	if (w)
		kfree_rcu(w, rcu);
}

/* @vm left the registry: forget all its objects. Any context. */
void kvmguard_mem_vm_gone(struct kvmguard_vm *vm)
{
	struct kvmguard_backing *b, *tmp;
	LIST_HEAD(gone);

	spin_lock(&mem_lock);
	list_for_each_entry_safe(b, tmp, &vm->mem.backings, vm_node) {
		hash_del(&b->hash);
		WRITE_ONCE(nr_backings, nr_backings - 1);
		list_move(&b->vm_node, &gone);
	}
	vm->mem.shared_bytes = 0;
	spin_unlock(&mem_lock);
	/* fput() defers the real work, so atomic context is fine. */
	list_for_each_entry_safe(b, tmp, &gone, vm_node)
		backing_free(b);
	ranges_gone(vm);
}

static bool memslot_recorded(struct kvmguard_vm *vm, u32 slot)
{
	struct kvmguard_backing *b;
	bool found = false;

	spin_lock(&mem_lock);
	list_for_each_entry(b, &vm->mem.backings, vm_node)
		if (b->slot == slot)
			found = true;
	spin_unlock(&mem_lock);
	return found;
}

/*
 * Record what backs the slots of @vm now (the memslot hook was attached
 * after they were made), so that the domain rule knows whom it shares
 * with.
 */
static int mem_vm_found(struct kvmguard_vm *vm)
{
	struct kvm_memory_slot *slot;
	struct backing_scan bs;
	int as, bkt, err = 0;
	struct kvm *kvm;
	u32 id;

	kvm = kvmguard_vm_kvm_get(vm);
	if (!kvm)
		return 0;
	if (!mmget_not_zero(kvm->mm))
		goto out;
	mutex_lock(&kvm->slots_lock);
	for (as = 0; as < kvmguard_nr_as_ids(kvm) && !err; as++) {
		kvm_for_each_memslot(slot, bkt, __kvm_memslots(kvm, as)) {
			id = as << 16 | slot->id;
			if (err || slot->id >= KVM_USER_MEM_SLOTS)
				continue;
			err = range_record(vm, id, slot->userspace_addr,
					   slot->npages << PAGE_SHIFT);
			/* The memslot hook may have been first. */
			if (err || memslot_recorded(vm, id))
				continue;
			memset(&bs, 0, sizeof(bs));
			err = backing_scan(kvm->mm, slot->userspace_addr,
					   slot->npages << PAGE_SHIFT, &bs);
			if (!err)
				share_record(vm, NULL, id, &bs);
			scan_release(&bs);
		}
	}
	mutex_unlock(&kvm->slots_lock);
	mmput(kvm->mm);
out:
	kvm_put_kvm(kvm);
	return err;
}

u64 kvmguard_mem_shared_bytes(struct kvmguard_vm *vm)
{
	u64 bytes;

	spin_lock(&mem_lock);
	bytes = vm->mem.shared_bytes;
	spin_unlock(&mem_lock);
	return bytes;
}

/*
 * Host bytes the user memslots of @vm cover now, and would with
 * [@start, @start + @size) added (@size 0: nothing). Caller holds
 * kvm->slots_lock: the ranges are those of KVM's slots, and stay.
 */
static u64 host_bytes(struct kvmguard_vm *vm, unsigned long start, u64 size)
{
	struct mem_watch *w;
	u64 bytes = size;

	spin_lock(&mem_lock);
	w = watch_of(vm);
	if (w) {
		if (size)
			bytes -= ranges_cover(w, start, start + size - 1);
		bytes += w->bytes;
	}
	spin_unlock(&mem_lock);
	return bytes;
}

/*
 * Host bytes the dirty-tracked user memslots of @kvm cover, with slot
 * @mem->slot tracked too (@create: it is not in the ranges yet). Caller
 * holds kvm->slots_lock, which keeps KVM's slots and flags still.
 */
static u64 dirty_bytes(struct kvmguard_vm *vm, struct kvm *kvm,
		       const struct kvmguard_memory_region *mem, bool create)
{
	unsigned long start = mem->userspace_addr;
	unsigned long last = start + mem->memory_size - 1;
	struct kvm_memory_slot *slot;
	struct interval_tree_node *it;
	struct sweep s = {};
	struct mem_watch *w;
	u32 id;

	spin_lock(&mem_lock);
	w = watch_of(vm);
	for (it = w ? interval_tree_iter_first(&w->ranges, 0, ULONG_MAX) : NULL;
	     it; it = interval_tree_iter_next(it, 0, ULONG_MAX)) {
		if (create && start <= it->start) {
			sweep_add(&s, start, last);
			create = false;
		}
		id = container_of(it, struct slot_range, it)->slot;
		if (id != mem->slot) {
			slot = id_to_memslot(__kvm_memslots(kvm, id >> 16), (u16)id);
			if (!slot || !(slot->flags & KVM_MEM_LOG_DIRTY_PAGES))
				continue;
		}
		sweep_add(&s, it->start, it->last);
	}
	if (create)
		sweep_add(&s, start, last);
	spin_unlock(&mem_lock);
	return sweep_end(&s);
}

/* A user memslot's host range, for a count from KVM's slots. */
struct host_range {
	unsigned long start, last;
	bool dirty;
};

static int host_range_cmp(const void *a, const void *b)
{
	const struct host_range *x = a, *y = b;

	if (x->start == y->start)
		return 0;
	return x->start < y->start ? -1 : 1;
}

/*
 * Host bytes the user memslots of @vm cover now, and of those the ones
 * dirty-tracked, each byte once: the figures the memory limit and the
 * dirty-log budget count, read from KVM's slots (with or without the
 * memslot hook). 0, -ENOENT once the VM is being destroyed, or -ENOMEM.
 * Sleeps.
 */
int kvmguard_mem_host_bytes(struct kvmguard_vm *vm, u64 *bytes, u64 *dirty)
{
	struct kvm_memory_slot *slot;
	struct sweep all = {}, tracked = {};
	struct host_range *r = NULL;
	unsigned int n = 0, max = 0, i;
	int as, bkt, idx;
	struct kvm *kvm;

	*bytes = 0;
	*dirty = 0;
	kvm = kvmguard_vm_kvm_get(vm);
	if (!kvm)
		return -ENOENT;
	/* SRCU keeps these memslots; a reader may sleep in it. */
	idx = srcu_read_lock(&kvm->srcu);
	for (as = 0; as < kvmguard_nr_as_ids(kvm); as++)
		kvm_for_each_memslot(slot, bkt, __kvm_memslots(kvm, as))
			max++;
	if (max)
		r = kvmalloc_array(max, sizeof(*r), GFP_KERNEL_ACCOUNT);
	for (as = 0; r && as < kvmguard_nr_as_ids(kvm); as++) {
		kvm_for_each_memslot(slot, bkt, __kvm_memslots(kvm, as)) {
			if (slot->id >= KVM_USER_MEM_SLOTS || !slot->npages ||
			    n == max)
				continue;
			r[n++] = (struct host_range) {
				.start = slot->userspace_addr,
				.last = slot->userspace_addr +
					(slot->npages << PAGE_SHIFT) - 1,
				.dirty = slot->flags & KVM_MEM_LOG_DIRTY_PAGES,
			};
		}
	}
	srcu_read_unlock(&kvm->srcu, idx);
	kvm_put_kvm(kvm);
	if (max && !r)
		return -ENOMEM;
	sort(r, n, sizeof(*r), host_range_cmp, NULL);
	for (i = 0; i < n; i++) {
		sweep_add(&all, r[i].start, r[i].last);
		if (r[i].dirty)
			sweep_add(&tracked, r[i].start, r[i].last);
	}
	kvfree(r);
	*bytes = sweep_end(&all);
	*dirty = sweep_end(&tracked);
	return 0;
}

/*
 * KVMGUARD_CMD_VM_CHECK: would @c->bytes more of guest memory, or of
 * dirty tracking (@c->all: tracking all of the VM's memory, as a
 * migration or a save does), be allowed for @vm under its rules now? The
 * answer counts as the memslot hook does, assuming memory not yet mapped
 * (tracked) is distinct from what is; nothing changes. -ENOENT once the
 * VM is being destroyed, -ENOMEM.
 */
int kvmguard_mem_check(struct kvmguard_vm *vm, struct kvmguard_mem_check *c)
{
	u64 bytes, dirty, limit;
	struct mem_rules mr;
	int err;

	err = kvmguard_mem_host_bytes(vm, &bytes, &dirty);
	if (err)
		return err;
	rcu_read_lock();
	mem_rules_of(vm, &mr);
	rcu_read_unlock();
	c->mode = mr.mode;
	if (c->rule == KVMGUARD_MEM_RULE_LIMIT) {
		limit = mr.max;
		c->used = bytes;
		c->total = bytes + min(c->bytes, U64_MAX - bytes);
	} else {
		limit = mr.dirty_max;
		c->used = dirty;
		if (c->all)
			c->total = bytes;
		else
			c->total = dirty + min(c->bytes, U64_MAX - dirty);
	}
	c->limit = limit;
	if (limit == KVMGUARD_MEM_UNLIMITED || c->total <= limit)
		c->verdict = KVMGUARD_CHECK_ALLOWED;
	else if (mr.mode == KVMGUARD_MODE_ENFORCE)
		c->verdict = KVMGUARD_CHECK_REFUSED;
	else
		c->verdict = KVMGUARD_CHECK_AUDITED;
	return 0;
}

/*
 * A user-memslot change of a registered VM, with kvm->slots_lock held.
 * Returns 0 to let KVM go ahead, or the errno of the enforced rule it
 * breaks; *@bs holds the shared objects under a new slot.
 */
static int memslot_check(struct kvmguard_vm *vm, struct kvm *kvm,
			 const struct kvmguard_memory_region *mem,
			 struct backing_scan *bs, bool *recorded, bool *ranged)
{
	bool enforce, create, flagged = mem->flags & KVM_MEM_LOG_DIRTY_PAGES;
	struct kvm_memory_slot *old;
	u64 total, dirty;
	int as_id = mem->slot >> 16;
	struct mem_rules mr;
	int err = 0;

	rcu_read_lock();
	mem_rules_of(vm, &mr);
	rcu_read_unlock();
	enforce = mr.mode == KVMGUARD_MODE_ENFORCE;

	/* Leave malformed requests to KVM, which refuses them. */
	if (as_id >= kvmguard_nr_as_ids(kvm) ||
	    !PAGE_ALIGNED(mem->memory_size) || !PAGE_ALIGNED(mem->userspace_addr) ||
	    mem->memory_size >> PAGE_SHIFT > KVM_MEM_MAX_NR_PAGES ||
	    mem->userspace_addr + mem->memory_size < mem->userspace_addr)
		return 0;
	old = id_to_memslot(__kvm_memslots(kvm, as_id), (u16)mem->slot);
	create = !old || !old->npages;
	if (!create && (old->userspace_addr != mem->userspace_addr ||
			old->npages << PAGE_SHIFT != mem->memory_size))
		return 0;

	/*
	 * Limits hold back growth only (a new slot, a slot newly tracked): a
	 * lowered limit leaves existing slots be.
	 */
	if (create && mr.max != KVMGUARD_MEM_UNLIMITED) {
		total = host_bytes(vm, mem->userspace_addr, mem->memory_size);
		if (total > mr.max) {
			mem_violation(vm, KVMGUARD_MEM_RULE_LIMIT, enforce,
				      mem->slot, total);
			if (enforce)
				err = -EDQUOT;
		}
	}
	if (flagged && (create || !(old->flags & KVM_MEM_LOG_DIRTY_PAGES)) &&
	    mr.dirty_max != KVMGUARD_MEM_UNLIMITED) {
		dirty = dirty_bytes(vm, kvm, mem, create);
		if (dirty > mr.dirty_max) {
			mem_violation(vm, KVMGUARD_MEM_RULE_DIRTY_LOG, enforce,
				      mem->slot, dirty);
			if (enforce && !err)
				err = -EDQUOT;
		}
	}
	/*
	 * What backs a slot is checked when it is created (KVM_MR_CREATE),
	 * and from then on by the mapping hooks, which see its range from
	 * before the scan: a mapping changed meanwhile is seen by one or the
	 * other (both hold mmap_lock).
	 */
	if (!create || err)
		return err;
	err = range_record(vm, mem->slot, mem->userspace_addr,
			   mem->memory_size);
	if (err)
		return err;
	*ranged = true;
	err = backing_scan(vm->mm, mem->userspace_addr, mem->memory_size, bs);
	if (err)
		return err;
	if (bs->mergeable && mr.ksm == KVMGUARD_KSM_DENY) {
		mem_violation(vm, KVMGUARD_MEM_RULE_KSM, enforce, mem->slot,
			      mem->memory_size);
		if (enforce)
			err = -EPERM;
	}
	if (bs->shared_bytes && mr.shared == KVMGUARD_MEM_SHARED_DENY) {
		mem_violation(vm, KVMGUARD_MEM_RULE_SHARED, enforce, mem->slot,
			      bs->shared_bytes);
		if (enforce && !err)
			err = -EPERM;
	}
	if (err || !bs->nr)
		return err;
	switch (share_record(vm, &mr, mem->slot, bs)) {
	case SHARE_REFUSED:
		mem_violation(vm, KVMGUARD_MEM_RULE_SHARED, true, mem->slot,
			      bs->shared_bytes);
		return -EXDEV;
	case SHARE_AUDITED:
		mem_violation(vm, KVMGUARD_MEM_RULE_SHARED, false, mem->slot,
			      bs->shared_bytes);
		fallthrough;
	default:
		*recorded = true;
		return 0;
	}
}

/*
 * Entered instead of __kvm_set_memory_region() for a user memslot of @vm
 * (see memslot_hook()), in the caller's context: it may sleep. @vm stays
 * registered meanwhile without a reference: the ioctl holds the VM's file,
 * so KVM cannot destroy it, and memslot_detach() waits for us.
 */
static noinline int memslot_change(struct kvm *kvm,
				   const struct kvmguard_memory_region *mem,
				   struct kvmguard_vm *vm)
{
	bool recorded = false, ranged = false;
	struct kvm_memory_slot *old = NULL;
	struct backing_scan bs = {};
	unsigned long old_addr = 0;
	int err = 0;

	lockdep_assert_held(&kvm->slots_lock);
	if (mem->memory_size)
		err = memslot_check(vm, kvm, mem, &bs, &recorded, &ranged);
	else if (mem->slot >> 16 < kvmguard_nr_as_ids(kvm))
		old = id_to_memslot(__kvm_memslots(kvm, mem->slot >> 16),
				    (u16)mem->slot);
	if (old)
		old_addr = old->userspace_addr;
	if (!err) {
		/* slots_lock makes us the only setter of this VM's slots. */
		WRITE_ONCE(vm->mem.setter, current);
		err = __kvm_set_memory_region(kvm, mem);
		WRITE_ONCE(vm->mem.setter, NULL);
	}
	/* A deleted slot, or one KVM refused, backs nothing now. */
	if ((!err && !mem->memory_size) || (err && recorded))
		memslot_unrecord(vm, mem->slot);
	if (!err && old)
		range_unrecord(vm, mem->slot, old_addr);
	else if (err && ranged)
		range_unrecord(vm, mem->slot, mem->userspace_addr);
	scan_release(&bs);
	/* Last: from here on, memslot_detach() may go ahead. */
	if (atomic_dec_and_test(&in_flight) && READ_ONCE(memslot_detaching))
		wake_up_var(&in_flight);
	return err;
}

/*
 * Can KVM go ahead with @mem without memslot_change()? True when the change
 * breaks no rule and leaves nothing to record or forget: the common case,
 * decided here without sleeping (mmap_lock only if it is free) so that it
 * costs no detour. Anything else, or any doubt, is false: memslot_change()
 * then checks it all again, reports and records. Caller holds
 * rcu_read_lock() and, as KVM's caller does, kvm->slots_lock.
 */
static bool memslot_quick(struct kvmguard_vm *vm, struct kvm *kvm,
			  const struct kvmguard_memory_region *mem)
{
	struct kvmguard_policy *policy = rcu_dereference(vm->policy);
	struct kvmguard_rules *rules = policy ? rcu_dereference(policy->rules) : NULL;
	u64 dirty_max = rules ? rules->dirty_max : KVMGUARD_MEM_UNLIMITED;
	unsigned long start = mem->userspace_addr, end = start + mem->memory_size;
	struct vm_area_struct *vma;
	bool quick;

	/* A create or a delete changes the slot ranges. */
	if (!mem->memory_size)
		return false;
	if (mem->slot >> 16 >= kvmguard_nr_as_ids(kvm) ||
	    !PAGE_ALIGNED(mem->memory_size) || !PAGE_ALIGNED(start) ||
	    mem->memory_size >> PAGE_SHIFT > KVM_MEM_MAX_NR_PAGES ||
	    end < start)
		return true;		/* KVM refuses it */
	if (!id_to_memslot(__kvm_memslots(kvm, mem->slot >> 16), (u16)mem->slot))
		return false;
	/* A move or a flags change adds no host memory: the limit holds. */
	if ((mem->flags & KVM_MEM_LOG_DIRTY_PAGES) &&
	    dirty_max != KVMGUARD_MEM_UNLIMITED)
		return false;
	/* One private, unmergeable mapping under it all needs no record. */
	if (!mmap_read_trylock(vm->mm))
		return false;
	vma = find_vma(vm->mm, start);
	quick = vma && vma->vm_start <= start && vma->vm_end >= end &&
		!(vma->vm_flags & (VM_MAYSHARE | VM_MERGEABLE)) &&
		!kvmguard_mm_merge_any(vm->mm);
	mmap_read_unlock(vm->mm);
	return quick;
}

/*
 * ftrace handler at the entry of __kvm_set_memory_region(kvm, mem). Unless
 * memslot_quick() lets it through, the call goes on in
 * memslot_change(kvm, mem, vm) instead (x86-64 passes the third argument
 * in rdx, which the original does not use). KVM's private slots (x86's
 * APIC access page and the like), VMs unknown to the registry and the call
 * memslot_change() makes itself go through, the last known by the VM's
 * setter mark (not by the return address, which tracers may rewrite).
 */
static void notrace memslot_hook(unsigned long ip, unsigned long parent_ip,
				 struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	struct pt_regs *regs = kvmguard_ftrace_regs(fregs);
	const struct kvmguard_memory_region *mem;
	struct kvmguard_vm *vm;
	struct kvm *kvm;

	kvm = (struct kvm *)regs_get_kernel_argument(regs, 0);
	mem = (void *)regs_get_kernel_argument(regs, 1);
	/* A delete only matters to the records. */
	if ((u16)mem->slot >= KVM_USER_MEM_SLOTS ||
	    (!mem->memory_size && !READ_ONCE(nr_backings) &&
	     !READ_ONCE(nr_ranges)))
		return;
	rcu_read_lock();
	vm = kvmguard_vm_lookup_cached(kvm);
	if (vm && (READ_ONCE(vm->mem.setter) == current ||
		   memslot_quick(vm, kvm, mem)))
		vm = NULL;
	rcu_read_unlock();
	if (!vm)
		return;
	atomic_inc(&in_flight);
	regs->dx = (unsigned long)vm;
	regs->ip = (unsigned long)memslot_change;
}

static struct ftrace_ops memslot_ops;
static bool memslot_attached;

static int memslot_attach(void)
{
	struct kvmguard_vm *vm;
	u64 id = 0;
	int err;

	if (kvmguard_fault(KVMGUARD_FAULT_MEMSLOT_ATTACH))
		return -EBUSY;
	/* Afresh each time: ftrace_free_filter() leaves stale hash pointers. */
	memset(&memslot_ops, 0, sizeof(memslot_ops));
	memslot_ops.func = memslot_hook;
	memslot_ops.flags = FTRACE_OPS_FL_IPMODIFY;
	err = ftrace_set_filter(&memslot_ops, "__kvm_set_memory_region",
				strlen("__kvm_set_memory_region"), 1);
	if (!err)
		err = register_ftrace_function(&memslot_ops);
	if (err) {
		ftrace_free_filter(&memslot_ops);
		pr_err("cannot attach the memslot hook: %d\n", err);
		return err;
	}
	memslot_attached = true;
	/* From now on changes are recorded; catch up on the slots before. */
	while (!err && (vm = kvmguard_vm_get_next(id))) {
		id = vm->id;
		err = mem_vm_found(vm);
		kvmguard_vm_put(vm);
	}
	return err;
}

static void memslot_detach(void)
{
	struct kvmguard_vm *vm;
	u64 id = 0;

	unregister_ftrace_function(&memslot_ops);
	ftrace_free_filter(&memslot_ops);
	memslot_attached = false;
	/*
	 * No new call enters memslot_change(); wait for those inside (KVM
	 * may sleep in them), then for their last instructions, which no task
	 * leaves by sleeping.
	 */
	WRITE_ONCE(memslot_detaching, true);
	/* Pairs with the barrier of atomic_dec_and_test() there. */
	smp_mb();
	wait_var_event(&in_flight, !atomic_read(&in_flight));
	WRITE_ONCE(memslot_detaching, false);
	synchronize_rcu_tasks();
	/* Unhooked, the records would go stale. */
	while ((vm = kvmguard_vm_get_next(id))) {
		id = vm->id;
		kvmguard_mem_vm_gone(vm);
		kvmguard_vm_put(vm);
	}
}

static bool has_mem_rules(const struct kvmguard_rules *rules)
{
	return rules && (rules->mem_max != KVMGUARD_MEM_UNLIMITED ||
			 rules->dirty_max != KVMGUARD_MEM_UNLIMITED ||
			 rules->mem_shared != KVMGUARD_MEM_SHARED_ALLOW ||
			 rules->ksm != KVMGUARD_KSM_ALLOW);
}

static int map_rules_changed(const struct kvmguard_rules *old,
			     const struct kvmguard_rules *new);

/*
 * A policy's rules go from @old to @new (either may be NULL: created,
 * deleted). The memslot hook is attached for the first policy with a
 * memory rule, before its rules apply, and detached after the last. On
 * error nothing changed.
 */
int kvmguard_mem_rules_changed(const struct kvmguard_rules *old,
			       const struct kvmguard_rules *new)
{
	bool was = has_mem_rules(old), is = has_mem_rules(new);
	int err;

	lockdep_assert_held(&kvmguard_config_mutex);
	/* The dirty-log budget's hooks beyond the memslot (memory_dirty.c). */
	err = kvmguard_dirty_rules_changed(old, new);
	if (err)
		return err;
	if (was == is) {
		err = map_rules_changed(old, new);
		if (err)
			kvmguard_dirty_rules_changed(new, old);
		return err;
	}
	if (is) {
		if (!mem_users) {
			err = memslot_attach();
			if (err) {
				if (memslot_attached)
					memslot_detach();
				kvmguard_dirty_rules_changed(new, old);
				return err;
			}
		}
		err = map_rules_changed(old, new);
		if (err) {
			if (!mem_users)
				memslot_detach();
			kvmguard_dirty_rules_changed(new, old);
			return err;
		}
		mem_users++;
	} else {
		/* The map hooks go first: they read the slot ranges. */
		map_rules_changed(old, new);
		if (!--mem_users)
			memslot_detach();
	}
	return 0;
}

/*
 * A madvise(MADV_MERGEABLE) of @vm's process under KSM deny: a request a
 * stock VMM makes by default. Counted; only the VM's first is reported
 * (with EVENT_VMM_DEFAULT), whatever range it names and however much later
 * the next one comes: a VMM repeats it for every RAM block and hot-added
 * DIMM. The caller refuses it (enforce) or lets it through (audit).
 * Atomic context.
 */
static void ksm_madvise_seen(struct kvmguard_vm *vm, bool refused, u64 bytes)
{
	if (atomic64_inc_return(&vm->mem.ksm_madvise) != 1)
		return;
	pr_info_ratelimited("VM %llu (pid %d): KSM rule %s the VMM's merge request (madvise MADV_MERGEABLE, a VMM default; reported once per VM)\n",
			    vm->id, vm->pid_nr,
			    refused ? "denied" : "audited");
	kvmguard_notify_mem_vmm_default(vm, KVMGUARD_MEM_RULE_KSM,
					refused ? KVMGUARD_ACTION_DENIED :
						  KVMGUARD_ACTION_AUDITED,
					bytes);
}

/* Entered instead of a KSM request that a policy refuses. */
static noinline notrace int ksm_refused(void)
{
	return -EPERM;
}

/*
 * Should @mm's request to merge @bytes be refused? Every VM of the process
 * has its say. @madvise: madvise(MADV_MERGEABLE), else PR_SET_MEMORY_MERGE.
 * Atomic context.
 */
static bool ksm_check(struct mm_struct *mm, u64 bytes, bool madvise)
{
	struct kvmguard_vm *vm;
	struct mem_rules mr;
	bool refuse = false;
	unsigned long id;
	bool gated;

	rcu_read_lock();
	for (id = 0; (vm = kvmguard_vm_find_rcu(&id)); id++) {
		if (vm->mm != mm)
			continue;
		gated = atomic_read(&vm->mem.ksm_gate);
		/*
		 * The gate before the rules: a change publishes its rules
		 * before it opens the gate, so an open gate means the rules
		 * read next are new enough (kvmguard_ksm_close()).
		 */
		smp_rmb();
		mem_rules_of(vm, &mr);
		/* A closed gate refuses without counting: see kvmguard_ksm_close(). */
		if (mr.ksm == KVMGUARD_KSM_DENY && madvise)
			ksm_madvise_seen(vm, mr.mode == KVMGUARD_MODE_ENFORCE,
					 bytes);
		else if (mr.ksm == KVMGUARD_KSM_DENY)
			mem_violation(vm, KVMGUARD_MEM_RULE_KSM,
				      mr.mode == KVMGUARD_MODE_ENFORCE, -1, bytes);
		if ((mr.ksm == KVMGUARD_KSM_DENY &&
		     mr.mode == KVMGUARD_MODE_ENFORCE) || gated)
			refuse = true;
	}
	rcu_read_unlock();
	return refuse;
}

/* ksm_madvise(vma, start, end, advice, vm_flags) */
static unsigned long ksm_madvise_hook(struct pt_regs *regs)
{
	struct vm_area_struct *vma = (void *)regs_get_kernel_argument(regs, 0);
	unsigned long start = regs_get_kernel_argument(regs, 1);
	unsigned long end = regs_get_kernel_argument(regs, 2);

	if (regs_get_kernel_argument(regs, 3) != MADV_MERGEABLE ||
	    !ksm_check(vma->vm_mm, end - start, true))
		return 0;
	return (unsigned long)ksm_refused;
}

/* ksm_enable_merge_any(mm) */
static unsigned long ksm_merge_any_hook(struct pt_regs *regs)
{
	struct mm_struct *mm = (void *)regs_get_kernel_argument(regs, 0);

	return ksm_check(mm, 0, false) ? (unsigned long)ksm_refused : 0;
}

/* Is KSM deny enforced by @rules (NULL: no policy)? */
static bool ksm_enforced(const struct kvmguard_rules *rules)
{
	return rules && rules->ksm == KVMGUARD_KSM_DENY &&
	       rules->mode == KVMGUARD_MODE_ENFORCE;
}

bool kvmguard_ksm_turns_on(const struct kvmguard_rules *old,
			   const struct kvmguard_rules *new)
{
	return !ksm_enforced(old) && ksm_enforced(new);
}

/* Has the process of @vm memory that KSM may merge? Sleeps. */
static bool vm_mergeable(struct kvmguard_vm *vm)
{
	struct vm_area_struct *vma;
	struct vma_iterator vmi;
	bool mergeable = false;
	struct kvm *kvm;

	kvm = kvmguard_vm_kvm_get(vm);
	if (!kvm)
		return false;
	/* The VM holds on to vm->mm; its address space may be gone. */
	if (mmget_not_zero(vm->mm)) {
		mmap_read_lock(vm->mm);
		vma_iter_init(&vmi, vm->mm, 0);
		mergeable = kvmguard_mm_merge_any(vm->mm);
		for_each_vma(vmi, vma)
			if (vma->vm_flags & VM_MERGEABLE)
				mergeable = true;
		mmap_read_unlock(vm->mm);
		mmput(vm->mm);
	}
	kvm_put_kvm(kvm);
	return mergeable;
}

/*
 * About to enforce KSM deny on a running VM: close its gate (KSM requests
 * of its process are refused from now on), then look for memory that was
 * made mergeable before. A request that found the gate open before it
 * closed held mmap_lock for writing until its VMA was marked, so the
 * search under mmap_lock sees it; one that finds it open after it opens
 * again sees the rules published before. -EBUSY if there is some; either
 * way kvmguard_ksm_open() follows, once the new rules are in place or
 * abandoned.
 */
int kvmguard_ksm_close(struct kvmguard_vm *vm, struct netlink_ext_ack *extack)
{
	atomic_inc(&vm->mem.ksm_gate);
	/* The gate closes before the search below takes mmap_lock. */
	smp_mb__after_atomic();
	if (!vm_mergeable(vm))
		return 0;
	NL_SET_ERR_MSG(extack,
		       "KSM deny: a VM's process has mergeable memory; unmerge it (MADV_UNMERGEABLE) first");
	return -EBUSY;
}

void kvmguard_ksm_open(struct kvmguard_vm *vm)
{
	/* The new rules are visible before the gate opens: see ksm_check(). */
	smp_mb__before_atomic();
	atomic_dec(&vm->mem.ksm_gate);
}

/*
 * Mappings under live memslots. A process may put new memory under a slot
 * of its VM at any time: mmap() over it (MAP_FIXED, or into a hole the
 * slot covers: also shmat() and remap_file_pages(), which map through it),
 * mremap() onto it, or mremap() growing a mapping in place into such a
 * hole. Each path ends in one function that knows the final range before
 * anything changes: mmap_region(), copy_vma() (mremap()'s move) and the
 * in-place growth (compat.h). While some policy has a sharing or KSM rule,
 * a redirect at their entry checks the new mapping against every slot
 * range of the process's VMs that it overlaps, with the rules the slot's
 * creation is checked with, and refuses it: mmap() and shmat() fail with
 * EPERM (EXDEV: the domain rule), mremap() with ENOMEM (its only error for
 * these). Private anonymous memory always passes, and so does every
 * mapping of a process without a VM with slots, after a hash lookup. Under
 * `domain`, an object may go under a live slot only if it already backs
 * the VM (a VMM remapping a poisoned page), and if no VM of another domain
 * uses it. The mmu_notifier would not do: it sees memory leave, not come.
 */
enum { MAP_PENDING = 4 };

struct map_violation {
	struct kvmguard_vm *vm;
	u8 rule;
	bool refused;
	u32 slot;
};

/* Caller holds mem_lock. Has @vm recorded @inode? Does another VM refuse? */
static enum share_verdict map_share(struct kvmguard_vm *vm,
				    const struct mem_rules *mine,
				    struct inode *inode, bool *own)
{
	enum share_verdict verdict = SHARE_OK;
	struct kvmguard_backing *other;
	struct mem_rules theirs;

	hash_for_each_possible(backings, other, hash, (unsigned long)inode) {
		if (other->inode != inode)
			continue;
		if (other->vm == vm) {
			*own = true;
			continue;
		}
		mem_rules_of(other->vm, &theirs);
		if ((!share_ok(mine, &theirs) &&
		     mine->mode == KVMGUARD_MODE_ENFORCE) ||
		    (!share_ok(&theirs, mine) &&
		     theirs.mode == KVMGUARD_MODE_ENFORCE))
			return SHARE_REFUSED;
		if (!share_ok(mine, &theirs) || !share_ok(&theirs, mine))
			verdict = SHARE_AUDITED;
	}
	return verdict;
}

/*
 * May the process of @mm map @file (NULL: anonymous) with @vm_flags at
 * [@start, @end)? 0, -EPERM or -EXDEV. Any context; the caller holds
 * @mm's mmap_lock for writing.
 */
static int map_check(struct mm_struct *mm, unsigned long start,
		     unsigned long end, struct file *file,
		     unsigned long vm_flags)
{
	struct map_violation v[MAP_PENDING];
	struct interval_tree_node *it;
	unsigned int i, nv = 0;
	bool shares, enforce, own;
	enum share_verdict sv;
	struct mem_rules mr;
	struct mem_watch *w;
	int err = 0;
	u8 rule;

	shares = backing_shares(file, vm_flags);
	if ((!shares && !(vm_flags & VM_MERGEABLE)) || start >= end)
		return 0;
	rcu_read_lock();
	hash_for_each_possible_rcu(watches, w, by_mm, (unsigned long)mm)
		if (w->mm == mm)
			break;
	if (!w) {
		rcu_read_unlock();
		return 0;
	}
	spin_lock(&mem_lock);
	hash_for_each_possible(watches, w, by_mm, (unsigned long)mm) {
		if (w->mm != mm)
			continue;
		it = interval_tree_iter_first(&w->ranges, start, end - 1);
		if (!it)
			continue;
		mem_rules_of(w->vm, &mr);
		enforce = mr.mode == KVMGUARD_MODE_ENFORCE;
		for (rule = KVMGUARD_MEM_RULE_SHARED;
		     rule <= KVMGUARD_MEM_RULE_KSM; rule++) {
			own = false;
			if (rule == KVMGUARD_MEM_RULE_KSM) {
				if (!(vm_flags & VM_MERGEABLE) ||
				    mr.ksm != KVMGUARD_KSM_DENY)
					continue;
				sv = enforce ? SHARE_REFUSED : SHARE_AUDITED;
			} else if (!shares) {
				continue;
			} else if (mr.shared == KVMGUARD_MEM_SHARED_DENY) {
				sv = enforce ? SHARE_REFUSED : SHARE_AUDITED;
			} else {
				sv = file ? map_share(w->vm, &mr, file_inode(file),
						      &own) : SHARE_OK;
				if (sv == SHARE_OK && !own &&
				    mr.shared == KVMGUARD_MEM_SHARED_DOMAIN)
					sv = enforce ? SHARE_REFUSED :
						       SHARE_AUDITED;
			}
			if (sv == SHARE_OK)
				continue;
			if (sv == SHARE_REFUSED && !err)
				err = mr.shared == KVMGUARD_MEM_SHARED_DENY ||
				      rule == KVMGUARD_MEM_RULE_KSM ?
				      -EPERM : -EXDEV;
			if (nv < MAP_PENDING) {
				v[nv++] = (struct map_violation) {
					.vm = w->vm,
					.rule = rule,
					.refused = sv == SHARE_REFUSED,
					.slot = container_of(it, struct slot_range,
							     it)->slot,
				};
			} else {
				/* The count stays exact; the event waits. */
				atomic64_inc(&w->vm->mem.denied[rule - 1]);
			}
		}
	}
	spin_unlock(&mem_lock);
	/* Watches, and the VMs they point to, go after a grace period. */
	for (i = 0; i < nv; i++)
		mem_violation(v[i].vm, v[i].rule, v[i].refused, v[i].slot,
			      end - start);
	rcu_read_unlock();
	return err;
}

/* Stand-ins for a refused mapping: they return to the caller at once. */
static noinline notrace unsigned long map_refused_eperm(void)
{
	return -EPERM;
}

static noinline notrace unsigned long map_refused_exdev(void)
{
	return -EXDEV;
}

static noinline notrace void *vma_refused(void)
{
	return NULL;
}

/* mmap_region(file, addr, len, vm_flags, pgoff, uf): mm is current's. */
static unsigned long mmap_region_hook(struct pt_regs *regs)
{
	struct file *file = (void *)regs_get_kernel_argument(regs, 0);
	unsigned long addr = regs_get_kernel_argument(regs, 1);
	unsigned long len = regs_get_kernel_argument(regs, 2);
	unsigned long vm_flags = regs_get_kernel_argument(regs, 3);

	switch (map_check(current->mm, addr, addr + len, file, vm_flags)) {
	case 0:
		return 0;
	case -EXDEV:
		return (unsigned long)map_refused_exdev;
	default:
		return (unsigned long)map_refused_eperm;
	}
}

/* copy_vma(&vma, addr, len, pgoff, need_rmap_locks): a move to addr. */
static unsigned long copy_vma_hook(struct pt_regs *regs)
{
	struct vm_area_struct **vmap = (void *)regs_get_kernel_argument(regs, 0);
	unsigned long addr = regs_get_kernel_argument(regs, 1);
	unsigned long len = regs_get_kernel_argument(regs, 2);
	struct vm_area_struct *vma = *vmap;

	if (!map_check(vma->vm_mm, addr, addr + len, vma->vm_file,
		       vma->vm_flags))
		return 0;
	return (unsigned long)vma_refused;
}

/* A mapping growing in place over [start, end) (compat.h). */
static unsigned long vma_extend_hook(struct pt_regs *regs)
{
	struct vm_area_struct *vma;
	unsigned long start, end;

	if (!kvmguard_vma_extension(regs, &vma, &start, &end) ||
	    !map_check(vma->vm_mm, start, end, vma->vm_file, vma->vm_flags))
		return 0;
	return (unsigned long)vma_refused;
}

/* The same, where the kernel grows a mapping another way (compat.h). */
static unsigned long vma_adjust_hook(struct pt_regs *regs)
{
	struct vm_area_struct *vma;
	unsigned long start, end;

	if (!kvmguard_vma_adjust_growth(regs, &vma, &start, &end) ||
	    !map_check(vma->vm_mm, start, end, vma->vm_file, vma->vm_flags))
		return 0;
	return (unsigned long)map_refused_eperm;
}

/* Not exported: found by name. A NULL name: not in this kernel. */
static struct kvmguard_redirect map_hooks[] = {
	{ .fn = "mmap_region", .redirect = mmap_region_hook },
	{ .fn = "copy_vma", .redirect = copy_vma_hook },
	{ .fn = KVMGUARD_VMA_EXTEND_SYMBOL, .redirect = vma_extend_hook },
	{ .fn = KVMGUARD_VMA_ADJUST_SYMBOL, .redirect = vma_adjust_hook },
};

/* Policies with a sharing or KSM rule; the map hooks attach while > 0. */
static unsigned int map_users;
static bool map_attached;

static void map_detach(void)
{
	int i;

	/* Each returns once no task is in its handler. */
	for (i = ARRAY_SIZE(map_hooks) - 1; i >= 0; i--)
		if (map_hooks[i].fn)
			kvmguard_redirect_detach(&map_hooks[i]);
	map_attached = false;
}

static int map_attach(void)
{
	int i, err;

	for (i = 0; i < ARRAY_SIZE(map_hooks); i++) {
		err = map_hooks[i].fn ?
		      kvmguard_redirect_attach(&map_hooks[i], 0) : 0;
		if (err) {
			while (--i >= 0)
				if (map_hooks[i].fn)
					kvmguard_redirect_detach(&map_hooks[i]);
			return err;
		}
	}
	map_attached = true;
	return 0;
}

static bool has_map_rules(const struct kvmguard_rules *rules)
{
	return rules && (rules->mem_shared != KVMGUARD_MEM_SHARED_ALLOW ||
			 rules->ksm == KVMGUARD_KSM_DENY);
}

/*
 * The map hooks follow the policies with a sharing or KSM rule; they need
 * the slot ranges, which the memslot hook records (its rules include
 * these). On error nothing changed.
 */
static int map_rules_changed(const struct kvmguard_rules *old,
			     const struct kvmguard_rules *new)
{
	bool was = has_map_rules(old), is = has_map_rules(new);
	int err;

	if (was == is)
		return 0;
	if (is) {
		if (!map_users) {
			err = map_attach();
			if (err)
				return err;
		}
		map_users++;
	} else if (!--map_users) {
		map_detach();
	}
	return 0;
}

/* Redirects (hooks.c): a livepatch of these functions cannot join them. */
static struct kvmguard_redirect ksm_madvise_hook_r = {
	.fn = "ksm_madvise",
	.redirect = ksm_madvise_hook,
};

static struct kvmguard_redirect ksm_merge_any_hook_r = {
	.fn = KVMGUARD_KSM_MERGE_ANY_SYMBOL,	/* not exported: by name */
	.redirect = ksm_merge_any_hook,
};

/* The KSM hooks stay attached: they cost nothing until a process asks. */
int kvmguard_memory_init(void)
{
	int err;

	if (kvmguard_fault(KVMGUARD_FAULT_KSM_KPROBES))
		return -EBUSY;
	err = kvmguard_redirect_attach(&ksm_madvise_hook_r,
				       (unsigned long)ksm_madvise);
	if (err)
		return err;
	if (!KVMGUARD_KSM_MERGE_ANY_SYMBOL)
		return 0;	/* the kernel has no such prctl */
	err = kvmguard_redirect_attach(&ksm_merge_any_hook_r, 0);
	if (err)
		kvmguard_redirect_detach(&ksm_madvise_hook_r);
	return err;
}

void kvmguard_memory_uninit(void)
{
	if (KVMGUARD_KSM_MERGE_ANY_SYMBOL)
		kvmguard_redirect_detach(&ksm_merge_any_hook_r);
	kvmguard_redirect_detach(&ksm_madvise_hook_r);
	mutex_lock(&kvmguard_config_mutex);
	if (map_attached)
		map_detach();
	map_users = 0;
	if (memslot_attached)
		memslot_detach();
	mem_users = 0;
	kvmguard_dirty_uninit();
	mutex_unlock(&kvmguard_config_mutex);
	/* ksm_refused() is module code too (memslot_detach() may not run). */
	synchronize_rcu_tasks();
}
