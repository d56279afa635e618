// SPDX-License-Identifier: GPL-2.0
/*
 * The VM registry: one entry per KVM VM on the host, from creation (or from
 * module load, for VMs that already existed) to destruction.
 *
 * Entries are indexed by id (an xarray, for ordered dumps that resume) and
 * by struct kvm (an rhashtable, for the hooks). Both indexes change only
 * under registry_lock, which the create/destroy hooks take in atomic
 * context. An entry does not hold a reference on its struct kvm: the
 * destroy hook unregisters it (and clears vm->kvm under registry_lock)
 * before KVM frees the VM, so whoever reads vm->kvm under registry_lock and
 * takes a reference with kvm_get_kvm_safe() holds a live VM.
 */
#define pr_fmt(fmt) "kvmguard: " fmt
#include <linux/cgroup.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/kallsyms.h>
#include <linux/kvm_host.h>
#include <linux/rhashtable.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/xarray.h>

#include "kvmguard.h"
#include "compat.h"
#include "fault_inject.h"

static DEFINE_SPINLOCK(registry_lock);

/*
 * The lookup cache in front of the hash table, for the hot hooks: a slot
 * per struct kvm address (bits above the page offset: struct kvm is page
 * aligned), read without locks, by the hypercall entry code in assembly
 * too. A slot holds a registered VM or NULL: it is filled under
 * registry_lock only while vm->kvm is set, and emptied as the VM is
 * unregistered; an entry is freed only after an RCU-tasks grace period
 * (vm_release()), so a reader that found it in the cache (and checks
 * vm->kvm) never reads freed memory.
 */
struct kvmguard_vm *kvmguard_vm_cache[KVMGUARD_VM_CACHE_SLOTS];
static DEFINE_XARRAY(vms_by_id);
static struct rhashtable vms_by_kvm;
static u64 last_id;			/* under registry_lock */
static atomic_t generation = ATOMIC_INIT(0);

/*
 * Insertions happen in atomic context, where a table that must grow at once
 * is allocated with GFP_ATOMIC and a failure refuses the VM. Starting (and
 * shrinking no lower than) 256 buckets leaves the growing to the table's
 * worker until far more VMs than one host burst creates.
 */
static const struct rhashtable_params vm_params = {
	.key_len = sizeof(struct kvm *),
	.key_offset = offsetof(struct kvmguard_vm, kvm),
	.head_offset = offsetof(struct kvmguard_vm, node),
	.min_size = 256,
	.automatic_shrinking = true,
};

u32 kvmguard_registry_generation(void)
{
	return atomic_read(&generation);
}

static void vm_free_rcu_tasks(struct rcu_head *head)
{
	struct kvmguard_vm *vm = container_of(head, struct kvmguard_vm, rcu);

	kvmguard_hc_vm_free(vm);
	/* Then wait out ordinary RCU readers (registry lookups) too. */
	kfree_rcu(vm, rcu);
}

static void vm_release(struct kref *ref)
{
	struct kvmguard_vm *vm = container_of(ref, struct kvmguard_vm, ref);
	struct kvmguard_policy *policy;

	/* Last reference: nobody can change vm->policy any more. */
	policy = rcu_dereference_protected(vm->policy, true);
	if (policy)
		kvmguard_policy_put(policy);
	put_pid(vm->pid);
	kfree(vm->cgroup);
	/* The hypercall entry code may still be reading it: see there. */
	call_rcu_tasks(&vm->rcu, vm_free_rcu_tasks);
}

void kvmguard_vm_put(struct kvmguard_vm *vm)
{
	kref_put(&vm->ref, vm_release);
}

/*
 * The cgroup v2 path of @task; atomic context is fine. ERR_PTR(-ENAMETOOLONG)
 * when it may not fit PATH_MAX: a truncated path could match the wrong
 * binding, and none would let the VM escape them all. cgroup_path() says
 * so by an error on some kernels and by a path cut to PATH_MAX - 1 bytes
 * on others (6.1), so a path of exactly that length counts as too long.
 */
static char *creator_cgroup(struct task_struct *task, gfp_t gfp)
{
	char *buf, *path;
	int len;

	buf = kmalloc(PATH_MAX, gfp);
	if (!buf)
		return ERR_PTR(-ENOMEM);
	rcu_read_lock();
	len = cgroup_path(task_dfl_cgroup(task), buf, PATH_MAX);
	rcu_read_unlock();
	if (len < 0 || len >= PATH_MAX - 1)
		path = ERR_PTR(-ENAMETOOLONG);
	else
		path = kstrdup(buf, gfp) ?: ERR_PTR(-ENOMEM);
	kfree(buf);
	return path;
}

int kvmguard_registry_add(struct kvm *kvm, struct task_struct *task,
			  u32 flags, gfp_t gfp)
{
	struct kvmguard_policy *policy;
	struct kvmguard_vm *vm;
	int err;

	if (kvmguard_fault(KVMGUARD_FAULT_REGISTRY_ADD))
		return -ENOMEM;
	vm = kzalloc(sizeof(*vm), gfp);
	if (!vm)
		return -ENOMEM;
	vm->cgroup = creator_cgroup(task, gfp);
	if (IS_ERR(vm->cgroup) && PTR_ERR(vm->cgroup) == -ENAMETOOLONG &&
	    (flags & KVMGUARD_VM_F_DISCOVERED)) {
		/* Running already: known, with no cgroup binding to match. */
		pr_warn("VM of pid %d: cgroup path too long, no cgroup binding applies\n",
			task_tgid_nr(task));
		vm->cgroup = kstrdup("", gfp) ?: ERR_PTR(-ENOMEM);
	}
	err = PTR_ERR_OR_ZERO(vm->cgroup);
	if (!err)
		err = kvmguard_hc_vm_init(vm, gfp);
	if (err) {
		kvmguard_hc_vm_free(vm);
		if (!IS_ERR(vm->cgroup))
			kfree(vm->cgroup);
		kfree(vm);
		return err;
	}
	kref_init(&vm->ref);
	kvmguard_mem_vm_init(vm);
	kvmguard_net_vm_init(vm);
	vm->kvm = kvm;
	vm->mm = kvm->mm;
	vm->flags = flags;
	vm->created_ns = ktime_get_real_ns();
	vm->pid = get_pid(task_tgid(task));
	vm->pid_nr = pid_nr(vm->pid);
	get_task_comm(vm->comm, task);
	/*
	 * Resolved and registered in one RCU read section: a policy deletion
	 * waits for it (kvmguard_policy_delete()) before it looks for the
	 * VMs that use the policy, so it finds this one registered, never a
	 * VM left on a policy whose hooks are gone.
	 */
	rcu_read_lock();
	policy = kvmguard_resolve(vm->pid, vm->cgroup, &vm->bound_by);
	if (IS_ERR(policy) && !(flags & KVMGUARD_VM_F_DISCOVERED)) {
		rcu_read_unlock();
		pr_warn_ratelimited("refusing a VM of pid %d: too deep in its process tree to search its ancestors for a pid binding\n",
				    vm->pid_nr);
		vm->kvm = NULL;
		kvmguard_vm_put(vm);
		return -ELOOP;
	}
	if (IS_ERR(policy))		/* running already: known, unbound */
		policy = NULL;
	RCU_INIT_POINTER(vm->policy, policy);

	spin_lock(&registry_lock);
	/* Discovery and the create hook may both find a new VM. */
	if (rhashtable_lookup_fast(&vms_by_kvm, &kvm, vm_params)) {
		spin_unlock(&registry_lock);
		rcu_read_unlock();
		kvmguard_vm_put(vm);
		return 0;
	}
	vm->id = last_id + 1;
	err = xa_insert(&vms_by_id, vm->id, vm, GFP_ATOMIC);
	if (!err) {
		err = rhashtable_insert_fast(&vms_by_kvm, &vm->node, vm_params);
		if (err)
			xa_erase(&vms_by_id, vm->id);
	}
	if (!err) {
		last_id = vm->id;
		atomic_inc(&generation);
	}
	spin_unlock(&registry_lock);
	rcu_read_unlock();

	if (err) {
		vm->kvm = NULL;
		kvmguard_vm_put(vm);
		return err;
	}
	/*
	 * Registered first, so a concurrent policy edit cannot miss it: pairs
	 * with the barrier in kvmguard_policy_update(), either its walk finds
	 * this VM or the rules read here are the new ones.
	 */
	smp_mb();
	kvmguard_hc_apply(vm);
	kvmguard_notify_vm(vm, KVMGUARD_EVENT_VM_CREATE);
	/* Backends attached before the VM existed become its ports. */
	kvmguard_vhost_vm_new(vm);
	return 0;
}

static unsigned int cache_slot(const struct kvm *kvm)
{
	return ((unsigned long)kvm >> KVMGUARD_VM_CACHE_SHIFT) &
	       (KVMGUARD_VM_CACHE_SLOTS - 1);
}

/* @vm, found registered for @kvm, takes @kvm's cache slot. */
void kvmguard_vm_cache_fill(struct kvmguard_vm *vm, struct kvm *kvm)
{
	unsigned int slot = cache_slot(kvm);

	if (READ_ONCE(kvmguard_vm_cache[slot]) == vm)
		return;
	spin_lock(&registry_lock);
	/* Unregistered VMs (vm->kvm cleared) must never enter the cache. */
	if (vm->kvm == kvm)
		WRITE_ONCE(kvmguard_vm_cache[slot], vm);
	spin_unlock(&registry_lock);
}

static void registry_unlink(struct kvmguard_vm *vm)
{
	unsigned int slot = cache_slot(vm->kvm);

	lockdep_assert_held(&registry_lock);
	rhashtable_remove_fast(&vms_by_kvm, &vm->node, vm_params);
	xa_erase(&vms_by_id, vm->id);
	/* Cleared before it leaves the cache, so it cannot come back. */
	WRITE_ONCE(vm->kvm, NULL);
	if (kvmguard_vm_cache[slot] == vm)
		WRITE_ONCE(kvmguard_vm_cache[slot], NULL);
	atomic_inc(&generation);
}

/* Caller holds rcu_read_lock(). */
struct kvmguard_vm *kvmguard_vm_lookup(struct kvm *kvm)
{
	return rhashtable_lookup(&vms_by_kvm, &kvm, vm_params);
}

/*
 * kvmguard_vm_lookup() through the cache, which it fills, for the hot
 * hooks. Caller holds rcu_read_lock().
 */
struct kvmguard_vm *kvmguard_vm_lookup_cached(struct kvm *kvm)
{
	struct kvmguard_vm *vm = READ_ONCE(kvmguard_vm_cache[cache_slot(kvm)]);

	if (vm && READ_ONCE(vm->kvm) == kvm)
		return vm;
	vm = kvmguard_vm_lookup(kvm);
	if (vm)
		kvmguard_vm_cache_fill(vm, kvm);
	return vm;
}

/* The entry of @kvm, with a reference; NULL if it has none. */
struct kvmguard_vm *kvmguard_vm_get(struct kvm *kvm)
{
	struct kvmguard_vm *vm;

	rcu_read_lock();
	vm = kvmguard_vm_lookup(kvm);
	if (vm && !kref_get_unless_zero(&vm->ref))
		vm = NULL;
	rcu_read_unlock();
	return vm;
}

/*
 * The registered VM with the smallest id >= *@id, which is set to it; NULL
 * if none. Caller holds rcu_read_lock() and takes no reference.
 */
struct kvmguard_vm *kvmguard_vm_find_rcu(unsigned long *id)
{
	return xa_find(&vms_by_id, id, ULONG_MAX, XA_PRESENT);
}

/*
 * The VM of the process whose address space is @mm, with a reference, for
 * devices its VMM attaches (KVM ties a VM to its creator's mm). A process
 * with several VMs gets its newest one, but only if all of them use the
 * same policy: otherwise which rules a device should get is ambiguous and
 * the answer is NULL, as for a process without a VM.
 */
struct kvmguard_vm *kvmguard_vm_get_by_mm(struct mm_struct *mm)
{
	struct kvmguard_policy *policy = NULL;
	struct kvmguard_vm *vm, *found = NULL;
	unsigned long id;

	rcu_read_lock();
	xa_for_each(&vms_by_id, id, vm) {
		if (vm->mm != mm || !READ_ONCE(vm->kvm))
			continue;
		if (found && rcu_access_pointer(vm->policy) != policy) {
			found = NULL;
			break;
		}
		found = vm;		/* ids increase: the newest is last */
		policy = rcu_access_pointer(vm->policy);
	}
	if (found && !kref_get_unless_zero(&found->ref))
		found = NULL;
	rcu_read_unlock();
	return found;
}

/* @vm's struct kvm with a reference (kvm_put_kvm()), or NULL once it is gone. */
struct kvm *kvmguard_vm_kvm_get(struct kvmguard_vm *vm)
{
	struct kvm *kvm;

	spin_lock(&registry_lock);
	kvm = vm->kvm;
	if (kvm && !kvm_get_kvm_safe(kvm))
		kvm = NULL;
	spin_unlock(&registry_lock);
	return kvm;
}

/*
 * Call @fn(kvm, @arg) on @vm's struct kvm while KVM cannot free it (under
 * the registry lock, which the destroy hook takes first: @fn may not
 * sleep). False, without a call, once the VM is gone.
 */
bool kvmguard_vm_kvm_call(struct kvmguard_vm *vm,
			  void (*fn)(struct kvm *kvm, void *arg), void *arg)
{
	struct kvm *kvm;

	spin_lock(&registry_lock);
	kvm = vm->kvm;
	if (kvm)
		fn(kvm, arg);
	spin_unlock(&registry_lock);
	return kvm;
}

void kvmguard_registry_remove(struct kvm *kvm)
{
	struct kvmguard_vm *vm;

	spin_lock(&registry_lock);
	vm = rhashtable_lookup_fast(&vms_by_kvm, &kvm, vm_params);
	if (vm)
		registry_unlink(vm);
	spin_unlock(&registry_lock);
	if (!vm)
		return;
	kvmguard_mem_vm_gone(vm);
	/* vhost.c moves or closes its ports, then calls kvmguard_net_vm_gone(). */
	kvmguard_vhost_vm_gone(vm);
	kvmguard_notify_vm(vm, KVMGUARD_EVENT_VM_DESTROY);
	kvmguard_vm_put(vm);
}

/* The registered VM with the smallest id >= @first, with a reference. */
static struct kvmguard_vm *vm_get_from(unsigned long first)
{
	struct kvmguard_vm *vm;
	unsigned long index = first;

	rcu_read_lock();
	xa_for_each_start(&vms_by_id, index, vm, first)
		if (kref_get_unless_zero(&vm->ref))
			break;
	rcu_read_unlock();
	return vm;
}

struct kvmguard_vm *kvmguard_vm_get_by_id(u64 id)
{
	struct kvmguard_vm *vm = vm_get_from(id);

	if (vm && vm->id != id) {
		kvmguard_vm_put(vm);
		vm = NULL;
	}
	return vm;
}

struct kvmguard_vm *kvmguard_vm_get_next(u64 after)
{
	if (after == U64_MAX)
		return NULL;
	return vm_get_from(after + 1);
}

/* Read what KVM knows now; false once the VM is being destroyed. */
bool kvmguard_vm_stats(struct kvmguard_vm *vm, struct kvmguard_vm_stats *st)
{
	struct kvm_memory_slot *slot;
	struct kvm_memslots *slots;
	struct kvm *kvm;
	int as, bkt, idx;

	memset(st, 0, sizeof(*st));
	kvm = kvmguard_vm_kvm_get(vm);
	if (!kvm)
		return false;

	st->vcpus = atomic_read(&kvm->online_vcpus);
	idx = srcu_read_lock(&kvm->srcu);
	for (as = 0; as < kvmguard_nr_as_ids(kvm); as++) {
		slots = __kvm_memslots(kvm, as);
		kvm_for_each_memslot(slot, bkt, slots) {
			if (slot->id >= KVM_USER_MEM_SLOTS)
				continue;
			st->memslots++;
			st->mem_bytes += slot->npages << PAGE_SHIFT;
			if (slot->flags & KVM_MEM_LOG_DIRTY_PAGES)
				st->dirty_bytes += slot->npages << PAGE_SHIFT;
		}
	}
	srcu_read_unlock(&kvm->srcu, idx);
	kvm_put_kvm(kvm);
	return true;
}

unsigned int kvmguard_policy_vm_count(const struct kvmguard_policy *policy)
{
	struct kvmguard_vm *vm;
	unsigned long index;
	unsigned int n = 0;

	rcu_read_lock();
	xa_for_each(&vms_by_id, index, vm)
		if (rcu_access_pointer(vm->policy) == policy)
			n++;
	rcu_read_unlock();
	return n;
}

/* Takes a reference on @policy (which may be NULL). */
void kvmguard_vm_set_policy(struct kvmguard_vm *vm,
			    struct kvmguard_policy *policy, u8 bound_by)
{
	struct kvmguard_policy *old;

	lockdep_assert_held(&kvmguard_config_mutex);
	if (policy)
		kvmguard_policy_get(policy);
	old = rcu_replace_pointer(vm->policy, policy,
				  lockdep_is_held(&kvmguard_config_mutex));
	WRITE_ONCE(vm->bound_by, bound_by);
	kvmguard_hc_apply(vm);
	kvmguard_net_apply(vm);
	if (old)
		kvmguard_policy_put(old);
}

/* @gone is being deleted: resolve the VMs that used it again. */
void kvmguard_registry_rebind(struct kvmguard_policy *gone)
{
	struct kvmguard_policy *policy;
	struct kvmguard_vm *vm;
	u64 id = 0;
	u8 bound_by;

	lockdep_assert_held(&kvmguard_config_mutex);
	while ((vm = kvmguard_vm_get_next(id))) {
		id = vm->id;
		if (rcu_access_pointer(vm->policy) == gone) {
			policy = kvmguard_resolve_vm(vm, &bound_by);
			kvmguard_vm_set_policy(vm, policy, bound_by);
			if (policy)
				kvmguard_policy_put(policy);
		}
		kvmguard_vm_put(vm);
	}
}

/*
 * The bindings changed. A VM found at load (KVMGUARD_VM_F_DISCOVERED) was
 * resolved when no binding could name it (the module had just been
 * loaded; its configuration comes after, from `kvmguard apply`), so it
 * follows the bindings as they arrive and change, as a VM created then
 * would get them, until `vm set` gives it a policy of its own (bound_by
 * EXPLICIT). A VM created while the module was loaded keeps what it got
 * at creation. Returns 0 or the first error of a VM that could not take
 * its policy (KSM or a network hook, see kvmguard_vm_assign()), which
 * keeps the one it had.
 */
int kvmguard_registry_follow_bindings(struct netlink_ext_ack *extack)
{
	struct kvmguard_policy *policy;
	struct kvmguard_vm *vm;
	int err = 0, ret;
	u64 id = 0;
	u8 bound_by;

	lockdep_assert_held(&kvmguard_config_mutex);
	while ((vm = kvmguard_vm_get_next(id))) {
		id = vm->id;
		if (!(vm->flags & KVMGUARD_VM_F_DISCOVERED) ||
		    vm->bound_by == KVMGUARD_BOUND_EXPLICIT) {
			kvmguard_vm_put(vm);
			continue;
		}
		policy = kvmguard_resolve_vm(vm, &bound_by);
		if (policy != rcu_access_pointer(vm->policy) ||
		    bound_by != vm->bound_by) {
			ret = kvmguard_vm_assign(vm, policy, bound_by, extack);
			if (ret && !err) {
				pr_warn("VM %llu found at load keeps its policy: %d\n",
					vm->id, ret);
				err = ret;
			}
		}
		if (policy)
			kvmguard_policy_put(policy);
		kvmguard_vm_put(vm);
	}
	return err;
}

/* @policy's rules changed: bring the VMs that use it up to date. */
void kvmguard_registry_apply(struct kvmguard_policy *policy)
{
	struct kvmguard_vm *vm;
	u64 id = 0;

	lockdep_assert_held(&kvmguard_config_mutex);
	while ((vm = kvmguard_vm_get_next(id))) {
		id = vm->id;
		if (rcu_access_pointer(vm->policy) == policy) {
			kvmguard_hc_apply(vm);
			kvmguard_net_apply(vm);
		}
		kvmguard_vm_put(vm);
	}
}

/*
 * Finding the VMs that existed before the module was loaded: KVM does not
 * export its VM list, so walk every process's open files for KVM VM and
 * vCPU files. VM files are KVM's own test (file_is_kvm()); a VMM may have
 * closed its VM file and kept only vCPU files, whose file_operations KVM
 * neither exports nor tests, so those are recognised by their release
 * method's symbol name.
 */
struct discovered {
	struct list_head node;
	struct kvm *kvm;		/* holds a reference */
	struct task_struct *task;	/* holds a reference */
};

struct discover_ctx {
	struct list_head found;
	struct task_struct *task;
	int err;
	char sym[KSYM_SYMBOL_LEN];
};

static bool release_is(struct discover_ctx *ctx, const struct file *file,
		       const char *name)
{
	size_t len = strlen(name);

	if (!file->f_op->release)
		return false;
	sprint_symbol_no_offset(ctx->sym, (unsigned long)file->f_op->release);
	return !strncmp(ctx->sym, name, len) &&
	       (ctx->sym[len] == '\0' || ctx->sym[len] == ' ');
}

/* Called under the file table's spinlock and rcu_read_lock(). */
static int discover_fd(const void *arg, struct file *file, unsigned int fd)
{
	struct discover_ctx *ctx = (struct discover_ctx *)arg;
	const char *name = file->f_path.dentry->d_name.name;
	struct discovered *d;
	struct kvm *kvm;

	if (file_is_kvm(file))
		kvm = file->private_data;
	else if (!strncmp(name, "kvm-vcpu:", 9) &&
		 release_is(ctx, file, "kvm_vcpu_release"))
		kvm = ((struct kvm_vcpu *)file->private_data)->kvm;
	else
		return 0;

	list_for_each_entry(d, &ctx->found, node)
		if (d->kvm == kvm)
			return 0;
	d = kmalloc(sizeof(*d), GFP_ATOMIC);
	if (!d) {
		ctx->err = -ENOMEM;
		return 0;
	}
	if (!kvm_get_kvm_safe(kvm)) {
		kfree(d);
		return 0;
	}
	d->kvm = kvm;
	/*
	 * Named after its creator, whose address space KVM tied it to, not
	 * after whoever holds the file now (inherited or passed on); the
	 * holder only when that process is gone.
	 */
	d->task = kvmguard_mm_owner(kvm->mm) ?: ctx->task;
	get_task_struct(d->task);
	list_add_tail(&d->node, &ctx->found);
	return 0;
}

int kvmguard_registry_discover(void)
{
	struct discovered *d, *tmp;
	struct discover_ctx *ctx;
	struct task_struct *p;
	int err = 0, ret;

	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return -ENOMEM;
	INIT_LIST_HEAD(&ctx->found);
	rcu_read_lock();
	for_each_process(p) {
		task_lock(p);
		if (p->files) {
			ctx->task = p;
			iterate_fd(p->files, 0, discover_fd, ctx);
		}
		task_unlock(p);
	}
	rcu_read_unlock();
	err = ctx->err;

	list_for_each_entry_safe(d, tmp, &ctx->found, node) {
		ret = kvmguard_registry_add(d->kvm, d->task,
					    KVMGUARD_VM_F_DISCOVERED, GFP_KERNEL);
		if (ret)
			err = ret;
		put_task_struct(d->task);
		kvm_put_kvm(d->kvm);
		kfree(d);
	}
	kfree(ctx);
	if (err)
		pr_err("cannot register the VMs already running: %d\n", err);
	return err;
}

int kvmguard_registry_init(void)
{
	return rhashtable_init(&vms_by_kvm, &vm_params);
}

/* The hooks are gone: drop every entry. The VMs keep running. */
void kvmguard_registry_uninit(void)
{
	struct kvmguard_vm *vm;
	unsigned long index;

	spin_lock(&registry_lock);
	xa_for_each(&vms_by_id, index, vm) {
		registry_unlink(vm);
		kvmguard_mem_vm_gone(vm);
		kvmguard_vm_put(vm);
	}
	spin_unlock(&registry_lock);
	rhashtable_destroy(&vms_by_kvm);
	xa_destroy(&vms_by_id);
	/* vm_free_rcu_tasks() is module code. */
	rcu_barrier_tasks();
}
