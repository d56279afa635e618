// SPDX-License-Identifier: GPL-2.0
/*
 * Policies (named rule sets) and bindings (which policy a new VM gets).
 *
 * Both lists change only under kvmguard_config_mutex. The binding list is
 * also walked under RCU by the VM creation hook, which cannot sleep; a
 * binding holds a reference on its policy, so a policy reached through a
 * binding inside an RCU read section is alive.
 */
#define pr_fmt(fmt) "kvmguard: " fmt
#include <linux/ctype.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/rculist.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <net/netlink.h>

#include "kvmguard.h"
#include "fault_inject.h"

/* Serialises every configuration change; see kvmguard.h. */
DEFINE_MUTEX(kvmguard_config_mutex);

static LIST_HEAD(policies);		/* by name */
static unsigned int nr_policies;
static LIST_HEAD(bindings);		/* default, cgroups by path, pids */
static unsigned int nr_bindings;
static unsigned int nr_pid_bindings;	/* of them; read under RCU too */
/* Bumped on every change, so a dump can tell the caller it raced one. */
static u32 config_generation;

u32 kvmguard_config_generation(void)
{
	lockdep_assert_held(&kvmguard_config_mutex);
	return config_generation;
}

bool kvmguard_name_valid(const char *name, bool allow_empty)
{
	size_t len = strlen(name);

	if (!len)
		return allow_empty;
	if (len > KVMGUARD_NAME_MAX)
		return false;
	for (; *name; name++)
		if (!isalnum(*name) && *name != '.' && *name != '_' &&
		    *name != '-')
			return false;
	return true;
}

static void policy_free_rcu(struct rcu_head *head)
{
	struct kvmguard_policy *policy =
		container_of(head, struct kvmguard_policy, rcu);

	kfree(rcu_dereference_protected(policy->rules, true));
	kfree(policy);
}

static void policy_release(struct kref *ref)
{
	struct kvmguard_policy *policy =
		container_of(ref, struct kvmguard_policy, ref);

	/* Hooks may still be reading it inside an RCU read section. */
	call_rcu(&policy->rcu, policy_free_rcu);
}

void kvmguard_policy_get(struct kvmguard_policy *policy)
{
	kref_get(&policy->ref);
}

void kvmguard_policy_put(struct kvmguard_policy *policy)
{
	kref_put(&policy->ref, policy_release);
}

struct kvmguard_policy *kvmguard_policy_find(const char *name)
{
	struct kvmguard_policy *policy;

	lockdep_assert_held(&kvmguard_config_mutex);
	list_for_each_entry(policy, &policies, node)
		if (!strcmp(policy->name, name))
			return policy;
	return NULL;
}

/* The first policy whose name sorts after @name ("" for the first). */
struct kvmguard_policy *kvmguard_policy_after(const char *name)
{
	struct kvmguard_policy *policy;

	lockdep_assert_held(&kvmguard_config_mutex);
	list_for_each_entry(policy, &policies, node)
		if (strcmp(policy->name, name) > 0)
			return policy;
	return NULL;
}

struct kvmguard_policy *kvmguard_policy_create(const char *name,
					       const struct kvmguard_rules *rules,
					       struct netlink_ext_ack *extack)
{
	struct kvmguard_policy *policy, *pos;
	struct kvmguard_rules *copy;
	int err;

	lockdep_assert_held(&kvmguard_config_mutex);
	if (nr_policies >= KVMGUARD_MAX_POLICIES) {
		NL_SET_ERR_MSG(extack, "too many policies");
		return ERR_PTR(-ENOSPC);
	}
	policy = kzalloc(sizeof(*policy), GFP_KERNEL);
	copy = kmemdup(rules, sizeof(*rules), GFP_KERNEL);
	if (!policy || !copy) {
		kfree(policy);
		kfree(copy);
		return ERR_PTR(-ENOMEM);
	}
	err = kvmguard_hc_rules_changed(NULL, copy);
	if (err) {
		NL_SET_ERR_MSG(extack, "cannot attach the hypercall hook");
		kfree(policy);
		kfree(copy);
		return ERR_PTR(err);
	}
	err = kvmguard_mem_rules_changed(NULL, copy);
	if (err) {
		NL_SET_ERR_MSG(extack, "cannot attach the memslot hook");
		kvmguard_hc_rules_changed(copy, NULL);
		kfree(policy);
		kfree(copy);
		return ERR_PTR(err);
	}
	kref_init(&policy->ref);
	strscpy(policy->name, name, sizeof(policy->name));
	RCU_INIT_POINTER(policy->rules, copy);

	/* Keep the list sorted so dumps come out by name. */
	list_for_each_entry(pos, &policies, node)
		if (strcmp(pos->name, name) > 0)
			break;
	list_add_tail(&policy->node, &pos->node);
	nr_policies++;
	config_generation++;
	return policy;
}

static const struct kvmguard_rules *rules_of(struct kvmguard_policy *policy)
{
	return policy ? rcu_dereference_protected(policy->rules,
			lockdep_is_held(&kvmguard_config_mutex)) : NULL;
}

/*
 * Running VMs about to have KSM deny enforced: their KSM gates are closed
 * (kvmguard_ksm_close()) for the time of the change and opened after it.
 */
struct ksm_gates {
	struct kvmguard_vm **vms;	/* each with a reference */
	unsigned int nr;
};

/* Close @vm's gate; takes over the caller's reference on @vm. */
static int ksm_gate_close(struct ksm_gates *g, struct kvmguard_vm *vm,
			  struct netlink_ext_ack *extack)
{
	struct kvmguard_vm **vms;

	vms = krealloc_array(g->vms, g->nr + 1, sizeof(*vms), GFP_KERNEL);
	if (!vms) {
		kvmguard_vm_put(vm);
		return -ENOMEM;
	}
	g->vms = vms;
	g->vms[g->nr++] = vm;
	return kvmguard_ksm_close(vm, extack);
}

static void ksm_gates_open(struct ksm_gates *g)
{
	while (g->nr--) {
		kvmguard_ksm_open(g->vms[g->nr]);
		kvmguard_vm_put(g->vms[g->nr]);
	}
	kfree(g->vms);
}

/*
 * The VMs that use @policy go from @old to @new rules (@new NULL: they
 * will be resolved again, @policy being deleted). Close the KSM gate of
 * every one that gets KSM deny enforced by the change.
 */
static int ksm_gates_close(struct ksm_gates *g, struct kvmguard_policy *policy,
			   const struct kvmguard_rules *old,
			   const struct kvmguard_rules *new,
			   struct netlink_ext_ack *extack)
{
	struct kvmguard_policy *next;
	struct kvmguard_vm *vm;
	u64 id = 0;
	u8 bound_by;
	bool on;
	int err;

	if (new && !kvmguard_ksm_turns_on(old, new))
		return 0;
	while ((vm = kvmguard_vm_get_next(id))) {
		id = vm->id;
		on = rcu_access_pointer(vm->policy) == policy;
		if (on && !new) {
			next = kvmguard_resolve_vm(vm, &bound_by);
			on = kvmguard_ksm_turns_on(old, rules_of(next));
			if (next)
				kvmguard_policy_put(next);
		}
		if (!on) {
			kvmguard_vm_put(vm);
			continue;
		}
		err = ksm_gate_close(g, vm, extack);
		if (err)
			return err;
	}
	return 0;
}

/*
 * The same for xen deny: running VMs about to have it enforced get their
 * Xen gates closed (kvmguard_xen_close()) for the time of the change.
 */
static int xen_gate_close(struct ksm_gates *g, struct kvmguard_vm *vm,
			  struct netlink_ext_ack *extack)
{
	struct kvmguard_vm **vms;

	vms = krealloc_array(g->vms, g->nr + 1, sizeof(*vms), GFP_KERNEL);
	if (!vms) {
		kvmguard_vm_put(vm);
		return -ENOMEM;
	}
	g->vms = vms;
	g->vms[g->nr++] = vm;
	return kvmguard_xen_close(vm, extack);
}

static void xen_gates_open(struct ksm_gates *g)
{
	while (g->nr--) {
		kvmguard_xen_open(g->vms[g->nr]);
		kvmguard_vm_put(g->vms[g->nr]);
	}
	kfree(g->vms);
}

/* As ksm_gates_close(), for xen deny. */
static int xen_gates_close(struct ksm_gates *g, struct kvmguard_policy *policy,
			   const struct kvmguard_rules *old,
			   const struct kvmguard_rules *new,
			   struct netlink_ext_ack *extack)
{
	struct kvmguard_policy *next;
	struct kvmguard_vm *vm;
	u64 id = 0;
	u8 bound_by;
	bool on;
	int err;

	if (new && !kvmguard_xen_turns_on(old, new))
		return 0;
	while ((vm = kvmguard_vm_get_next(id))) {
		id = vm->id;
		on = rcu_access_pointer(vm->policy) == policy;
		if (on && !new) {
			next = kvmguard_resolve_vm(vm, &bound_by);
			on = kvmguard_xen_turns_on(old, rules_of(next));
			if (next)
				kvmguard_policy_put(next);
		}
		if (!on) {
			kvmguard_vm_put(vm);
			continue;
		}
		err = xen_gate_close(g, vm, extack);
		if (err)
			return err;
	}
	return 0;
}

int kvmguard_policy_update(struct kvmguard_policy *policy,
			   const struct kvmguard_rules *rules,
			   struct netlink_ext_ack *extack)
{
	struct kvmguard_rules *copy, *old;
	struct ksm_gates gates = {}, xen_gates = {};
	int err;

	lockdep_assert_held(&kvmguard_config_mutex);
	copy = kmemdup(rules, sizeof(*rules), GFP_KERNEL);
	if (!copy)
		return -ENOMEM;
	old = rcu_dereference_protected(policy->rules,
					lockdep_is_held(&kvmguard_config_mutex));
	/* PV features its VMs were told about: kvmguard_pv_prepare(). */
	err = kvmguard_pv_prepare(NULL, policy, copy, extack);
	if (!err)
		err = ksm_gates_close(&gates, policy, old, copy, extack);
	if (!err)
		err = xen_gates_close(&xen_gates, policy, old, copy, extack);
	if (!err) {
		err = kvmguard_hc_rules_changed(old, copy);
		if (err)
			NL_SET_ERR_MSG(extack, "cannot attach the hypercall hook");
	}
	if (!err) {
		err = kvmguard_mem_rules_changed(old, copy);
		if (err) {
			NL_SET_ERR_MSG(extack, "cannot attach the memslot hook");
			/* Back to where it was, which worked before. */
			kvmguard_hc_rules_changed(copy, old);
		}
	}
	if (!err) {
		err = kvmguard_net_prepare(NULL, policy, copy, extack);
		if (err) {
			kvmguard_mem_rules_changed(copy, old);
			kvmguard_hc_rules_changed(copy, old);
		}
	}
	if (err) {
		xen_gates_open(&xen_gates);
		ksm_gates_open(&gates);
		kvmguard_pv_done();
		kfree(copy);
		return err;
	}
	rcu_assign_pointer(policy->rules, copy);
	/*
	 * Pairs with the barrier in kvmguard_registry_add(): either the walk
	 * below sees a VM registered meanwhile, or that VM reads these rules.
	 */
	smp_mb();
	kfree_rcu(old, rcu);
	config_generation++;
	/* Running VMs see the edit from their next hypercall on. */
	kvmguard_registry_apply(policy);
	xen_gates_open(&xen_gates);
	ksm_gates_open(&gates);
	kvmguard_pv_done();
	return 0;
}

/* kvmguard_vm_assign() past the xen rule. */
static int vm_assign_ksm(struct kvmguard_vm *vm, struct kvmguard_policy *cur,
			 struct kvmguard_policy *policy, u8 bound_by,
			 struct netlink_ext_ack *extack)
{
	int err;

	if (kvmguard_ksm_turns_on(rules_of(cur), rules_of(policy))) {
		err = kvmguard_ksm_close(vm, extack);
		if (!err)
			err = kvmguard_net_prepare(vm, NULL, rules_of(policy),
						   extack);
		if (!err)
			kvmguard_vm_set_policy(vm, policy, bound_by);
		kvmguard_ksm_open(vm);
		return err;
	}
	err = kvmguard_net_prepare(vm, NULL, rules_of(policy), extack);
	if (!err)
		kvmguard_vm_set_policy(vm, policy, bound_by);
	return err;
}

/*
 * Before @policy goes: a VM on it whose creator is too deep to resolve
 * again would keep it (kvmguard_resolve_vm()), so the delete is refused
 * until `vm set` moves that VM.
 */
static int deep_vms_on(struct kvmguard_policy *policy,
		       struct netlink_ext_ack *extack)
{
	struct kvmguard_policy *next;
	struct kvmguard_vm *vm;
	u64 id = 0;
	u8 bound_by;

	while ((vm = kvmguard_vm_get_next(id))) {
		id = vm->id;
		next = NULL;
		if (rcu_access_pointer(vm->policy) == policy)
			next = kvmguard_resolve(vm->pid, vm->cgroup, &bound_by);
		kvmguard_vm_put(vm);
		if (IS_ERR(next)) {
			pr_warn("VM %llu: its process is too deep to resolve again\n",
				id);
			NL_SET_ERR_MSG(extack,
				       "a VM of the policy is too deep in its process tree to resolve again; move it with vm set first");
			return PTR_ERR(next);
		}
		if (next)
			kvmguard_policy_put(next);
	}
	return 0;
}

/* kvmguard_vm_assign() past the PV features. */
static int vm_assign_xen(struct kvmguard_vm *vm, struct kvmguard_policy *policy,
			 u8 bound_by, struct netlink_ext_ack *extack)
{
	struct kvmguard_policy *cur;
	int err;

	cur = rcu_dereference_protected(vm->policy,
					lockdep_is_held(&kvmguard_config_mutex));
	if (kvmguard_xen_turns_on(rules_of(cur), rules_of(policy))) {
		/* Closed for the time of the rest: kvmguard_xen_close(). */
		err = kvmguard_xen_close(vm, extack);
		if (!err)
			err = vm_assign_ksm(vm, cur, policy, bound_by, extack);
		kvmguard_xen_open(vm);
		return err;
	}
	return vm_assign_ksm(vm, cur, policy, bound_by, extack);
}

/*
 * @vm gets @policy (NULL: none) for good, unless it denies a hypercall of
 * a PV feature the VM was told about (and the request does not force it),
 * KSM deny cannot start or the network hooks of its rules cannot attach.
 */
int kvmguard_vm_assign(struct kvmguard_vm *vm, struct kvmguard_policy *policy,
		       u8 bound_by, struct netlink_ext_ack *extack)
{
	int err;

	lockdep_assert_held(&kvmguard_config_mutex);
	err = kvmguard_pv_prepare(vm, NULL, rules_of(policy), extack);
	if (!err)
		err = vm_assign_xen(vm, policy, bound_by, extack);
	kvmguard_pv_done();
	return err;
}

unsigned int kvmguard_policy_binding_count(const struct kvmguard_policy *p)
{
	struct kvmguard_binding *binding;
	unsigned int n = 0;

	lockdep_assert_held(&kvmguard_config_mutex);
	list_for_each_entry(binding, &bindings, node)
		if (binding->policy == p)
			n++;
	return n;
}

int kvmguard_policy_delete(struct kvmguard_policy *policy,
			   struct netlink_ext_ack *extack)
{
	const struct kvmguard_rules *rules = rules_of(policy);
	struct ksm_gates gates = {}, xen_gates = {};
	int err;

	lockdep_assert_held(&kvmguard_config_mutex);
	if (kvmguard_policy_binding_count(policy)) {
		NL_SET_ERR_MSG(extack, "policy is named by a binding; unbind it first");
		return -EBUSY;
	}
	/*
	 * No binding names it, so no VM created from now on gets it; one being
	 * created may have found it through a binding deleted since: wait
	 * until it is registered (kvmguard_registry_add() resolves and
	 * registers in one RCU read section), so that the walks below (KSM
	 * gates, network hooks, re-resolving) see it too.
	 */
	synchronize_rcu();
	err = deep_vms_on(policy, extack);
	if (err)
		return err;
	/* The VMs resolve now as they will below. */
	err = kvmguard_pv_prepare(NULL, policy, NULL, extack);
	if (!err)
		err = ksm_gates_close(&gates, policy, rules, NULL, extack);
	if (!err)
		err = xen_gates_close(&xen_gates, policy, rules, NULL, extack);
	if (!err)
		err = kvmguard_net_prepare(NULL, policy, NULL, extack);
	if (err) {
		xen_gates_open(&xen_gates);
		ksm_gates_open(&gates);
		kvmguard_pv_done();
		return err;
	}
	list_del(&policy->node);
	nr_policies--;
	config_generation++;
	/* VMs that used it fall back to what the bindings say now. */
	kvmguard_registry_rebind(policy);
	xen_gates_open(&xen_gates);
	ksm_gates_open(&gates);
	kvmguard_pv_done();
	kvmguard_hc_rules_changed(rules, NULL);
	kvmguard_mem_rules_changed(rules, NULL);
	if (!kvmguard_broken_leak())
		kvmguard_policy_put(policy);
	return 0;
}

/*
 * Pid bindings end when their process does. A binding waits on its struct
 * pid's wait_pidfd queue, which the kernel wakes when the process exits
 * (do_notify_pidfd(), as for a pidfd's poll), and pid_exit_work then
 * removes every binding whose process has ended. The struct pid stays
 * pinned until then, so no process that gets the number meanwhile
 * matches (pid_binding_of() compares the pointers).
 */
static void pid_exit_fn(struct work_struct *work);
static DECLARE_WORK(pid_exit_work, pid_exit_fn);

/* Has the process of @pid threads left? A zombie has none. */
static bool process_alive(struct pid *pid)
{
	struct task_struct *task;
	bool alive;

	rcu_read_lock();
	task = pid_task(pid, PIDTYPE_TGID);
	alive = task && atomic_read(&task->signal->live);
	rcu_read_unlock();
	return alive;
}

/* Under the queue's lock, in any context: the work does the rest. */
static int binding_exit_wake(struct wait_queue_entry *wait, unsigned int mode,
			     int sync, void *key)
{
	schedule_work(&pid_exit_work);
	return 0;
}

/* @binding leaves the list (config mutex held); freed after a grace period. */
static void binding_unlink(struct kvmguard_binding *binding)
{
	lockdep_assert_held(&kvmguard_config_mutex);
	/* No wake of it runs once this returns: the queue's lock orders. */
	if (binding->type == KVMGUARD_BIND_PID)
		remove_wait_queue(&binding->pid->wait_pidfd,
				  &binding->exit_wait);
}

static void binding_free_rcu(struct rcu_head *head)
{
	struct kvmguard_binding *binding =
		container_of(head, struct kvmguard_binding, rcu);

	kvmguard_policy_put(binding->policy);
	put_pid(binding->pid);
	kfree(binding->cgroup);
	kfree(binding);
}

/* Dump order: default, then cgroups by path, then pids by number. */
static int binding_cmp(u8 type, const char *cgroup, pid_t pid,
		       const struct kvmguard_binding *b)
{
	if (type != b->type)
		return type < b->type ? -1 : 1;
	if (type == KVMGUARD_BIND_CGROUP)
		return strcmp(cgroup, b->cgroup);
	if (type == KVMGUARD_BIND_PID)
		return pid == b->pid_nr ? 0 : (pid < b->pid_nr ? -1 : 1);
	return 0;
}

/*
 * Accept an absolute path of non-empty components other than "." and "..";
 * drop one trailing '/'. Returns the normalised length or -EINVAL.
 */
static int cgroup_path_normalise(char *path, struct netlink_ext_ack *extack)
{
	size_t len = strlen(path);
	const char *c;

	if (path[0] != '/') {
		NL_SET_ERR_MSG(extack, "cgroup path must be absolute");
		return -EINVAL;
	}
	if (len > 1 && path[len - 1] == '/')
		path[--len] = '\0';
	for (c = path; *c; ) {
		const char *next = strchrnul(c + 1, '/');
		size_t n = next - c - 1;

		if ((len > 1 && n == 0) || (n == 1 && c[1] == '.') ||
		    (n == 2 && c[1] == '.' && c[2] == '.')) {
			NL_SET_ERR_MSG(extack,
				       "cgroup path has an empty, \".\" or \"..\" component");
			return -EINVAL;
		}
		c = next;
	}
	return len;
}

static struct kvmguard_binding *binding_find(u8 type, const char *cgroup,
					     pid_t pid)
{
	struct kvmguard_binding *binding;

	list_for_each_entry(binding, &bindings, node)
		if (!binding_cmp(type, cgroup, pid, binding))
			return binding;
	return NULL;
}

int kvmguard_binding_set(u8 type, const char *cgroup, pid_t pid,
			 struct kvmguard_policy *policy,
			 struct netlink_ext_ack *extack)
{
	struct kvmguard_binding *binding, *old, *pos;
	int len;

	lockdep_assert_held(&kvmguard_config_mutex);
	binding = kzalloc(sizeof(*binding), GFP_KERNEL);
	if (!binding)
		return -ENOMEM;
	binding->type = type;
	if (type == KVMGUARD_BIND_CGROUP) {
		binding->cgroup = kstrdup(cgroup, GFP_KERNEL);
		if (!binding->cgroup)
			goto nomem;
		len = cgroup_path_normalise(binding->cgroup, extack);
		if (len < 0)
			goto invalid;
		binding->cgroup_len = len;
	} else if (type == KVMGUARD_BIND_PID) {
		/* Pin the struct pid: a recycled number must not match. */
		rcu_read_lock();
		binding->pid = get_pid(find_pid_ns(pid, &init_pid_ns));
		rcu_read_unlock();
		if (!binding->pid) {
			NL_SET_ERR_MSG(extack, "no process with that pid");
			kfree(binding);
			return -ESRCH;
		}
		/* Waiting first, so that an exit from here on wakes it. */
		init_waitqueue_func_entry(&binding->exit_wait,
					  binding_exit_wake);
		add_wait_queue(&binding->pid->wait_pidfd, &binding->exit_wait);
		if (!process_alive(binding->pid)) {
			NL_SET_ERR_MSG(extack, "no process with that pid");
			remove_wait_queue(&binding->pid->wait_pidfd,
					  &binding->exit_wait);
			put_pid(binding->pid);
			kfree(binding);
			return -ESRCH;
		}
		binding->pid_nr = pid;
	}

	old = binding_find(type, binding->cgroup, pid);
	if (!old && nr_bindings >= KVMGUARD_MAX_BINDINGS) {
		NL_SET_ERR_MSG(extack, "too many bindings");
		binding_unlink(binding);
		put_pid(binding->pid);
		kfree(binding->cgroup);
		kfree(binding);
		return -ENOSPC;
	}
	kvmguard_policy_get(policy);
	binding->policy = policy;
	if (old) {
		list_replace_rcu(&old->node, &binding->node);
		binding_unlink(old);
		call_rcu(&old->rcu, binding_free_rcu);
	} else {
		list_for_each_entry(pos, &bindings, node)
			if (binding_cmp(type, binding->cgroup, pid, pos) < 0)
				break;
		list_add_tail_rcu(&binding->node, &pos->node);
		nr_bindings++;
		if (type == KVMGUARD_BIND_PID)
			WRITE_ONCE(nr_pid_bindings, nr_pid_bindings + 1);
	}
	config_generation++;
	return kvmguard_registry_follow_bindings(extack);

invalid:
	kfree(binding->cgroup);
	kfree(binding);
	return -EINVAL;
nomem:
	kfree(binding);
	return -ENOMEM;
}

int kvmguard_binding_del(u8 type, const char *cgroup, pid_t pid,
			 struct netlink_ext_ack *extack)
{
	struct kvmguard_binding *binding;
	char *path = NULL;
	int len;

	lockdep_assert_held(&kvmguard_config_mutex);
	if (type == KVMGUARD_BIND_CGROUP) {
		path = kstrdup(cgroup, GFP_KERNEL);
		if (!path)
			return -ENOMEM;
		len = cgroup_path_normalise(path, extack);
		if (len < 0) {
			kfree(path);
			return len;
		}
	}
	binding = binding_find(type, path, pid);
	kfree(path);
	if (!binding) {
		NL_SET_ERR_MSG(extack, "no such binding");
		return -ENOENT;
	}
	list_del_rcu(&binding->node);
	binding_unlink(binding);
	nr_bindings--;
	if (type == KVMGUARD_BIND_PID)
		WRITE_ONCE(nr_pid_bindings, nr_pid_bindings - 1);
	config_generation++;
	call_rcu(&binding->rcu, binding_free_rcu);
	return kvmguard_registry_follow_bindings(extack);
}

/*
 * The bindings of processes that ended go. A VM bound by one keeps its
 * policy: a VM's policy is resolved when it is created, and only a VM
 * found at load follows binding changes (kvmguard_registry_follow_bindings(),
 * which a later change runs as ever).
 */
static void pid_exit_fn(struct work_struct *work)
{
	struct kvmguard_binding *binding, *tmp;

	mutex_lock(&kvmguard_config_mutex);
	list_for_each_entry_safe(binding, tmp, &bindings, node) {
		if (binding->type != KVMGUARD_BIND_PID ||
		    process_alive(binding->pid))
			continue;
		list_del_rcu(&binding->node);
		binding_unlink(binding);
		nr_bindings--;
		WRITE_ONCE(nr_pid_bindings, nr_pid_bindings - 1);
		config_generation++;
		kvmguard_audit_config(&(struct kvmguard_audit_change){
			.op = "unbind", .policy = binding->policy->name,
			.bind_type = KVMGUARD_BIND_PID,
			.bind_pid = binding->pid_nr,
			.reason = "process_exit" });
		call_rcu(&binding->rcu, binding_free_rcu);
	}
	mutex_unlock(&kvmguard_config_mutex);
}

struct kvmguard_binding *kvmguard_binding_nth(unsigned long n)
{
	struct kvmguard_binding *binding;

	lockdep_assert_held(&kvmguard_config_mutex);
	list_for_each_entry(binding, &bindings, node)
		if (!n--)
			return binding;
	return NULL;
}

/* Is @path equal to @prefix or below it, by whole components? */
static bool cgroup_under(const char *path, const struct kvmguard_binding *b)
{
	if (b->cgroup_len == 1)		/* "/" */
		return true;
	return !strncmp(path, b->cgroup, b->cgroup_len) &&
	       (path[b->cgroup_len] == '\0' || path[b->cgroup_len] == '/');
}

/*
 * How many ancestors of a VM's creator are searched for a pid binding.
 * Real process trees are a few levels deep; a creator deeper than this
 * while pid bindings exist could be a bound process's descendant out of
 * reach, so its VM is refused (kvmguard_resolve() says -ELOOP).
 */
#define KVMGUARD_ANCESTORS_MAX	1024

/* The pid binding of exactly @pid, if any. Caller holds rcu_read_lock(). */
static struct kvmguard_binding *pid_binding_of(const struct pid *pid)
{
	struct kvmguard_binding *binding;

	list_for_each_entry_rcu(binding, &bindings, node)
		if (binding->type == KVMGUARD_BIND_PID && binding->pid == pid)
			return binding;
	return NULL;
}

/*
 * The pid binding of @pid's process or of its nearest ancestor, following
 * real_parent (whoever forked it, or the subreaper or init that adopted it
 * since): a VMM that forks, or clones with CLONE_VM | CLONE_FILES, and
 * creates its VM in the child stays bound. Bindings pin their process's
 * struct pid and pointers are compared, so a process that got the number
 * of a bound process that exited matches nothing: a pid number is only
 * reused with a new struct pid. The walk ends at the idle task, above
 * init; ERR_PTR(-ELOOP) if it did not within KVMGUARD_ANCESTORS_MAX
 * levels. Caller holds rcu_read_lock(): tasks and their real_parent
 * pointers stay valid inside it (parents are freed after a grace period).
 */
static struct kvmguard_binding *pid_binding(struct pid *pid)
{
	struct task_struct *task = pid_task(pid, PIDTYPE_TGID);
	struct kvmguard_binding *binding;
	unsigned int depth;

	if (!READ_ONCE(nr_pid_bindings))
		return NULL;
	for (depth = 0; depth < KVMGUARD_ANCESTORS_MAX; depth++) {
		binding = pid_binding_of(pid);
		if (binding || !task)
			return binding;
		task = rcu_dereference(task->real_parent);
		if (!task->pid)		/* the idle task: no binding names it */
			return NULL;
		pid = task_tgid(task);
	}
	return ERR_PTR(-ELOOP);
}

/*
 * The policy for a VM created by @pid from cgroup @cgroup: the pid binding
 * of the creator or its nearest ancestor, else the longest matching cgroup
 * binding, else the default binding. Returns a new reference, NULL, or
 * ERR_PTR(-ELOOP) when the creator is too deep in its process tree for its
 * ancestors to be searched (see pid_binding()). Runs in atomic context.
 */
struct kvmguard_policy *kvmguard_resolve(struct pid *pid, const char *cgroup,
					 u8 *bound_by)
{
	struct kvmguard_binding *binding, *best = NULL, *dflt = NULL;
	struct kvmguard_policy *policy = NULL;

	*bound_by = KVMGUARD_BOUND_NONE;
	rcu_read_lock();
	best = pid_binding(pid);
	if (IS_ERR(best)) {
		rcu_read_unlock();
		return ERR_CAST(best);
	}
	if (best)
		goto found;
	list_for_each_entry_rcu(binding, &bindings, node) {
		switch (binding->type) {
		case KVMGUARD_BIND_CGROUP:
			if (cgroup && cgroup_under(cgroup, binding) &&
			    (!best || binding->cgroup_len > best->cgroup_len))
				best = binding;
			break;
		case KVMGUARD_BIND_DEFAULT:
			dflt = binding;
			break;
		}
	}
	if (!best)
		best = dflt;
found:
	if (best) {
		policy = best->policy;
		kvmguard_policy_get(policy);
		*bound_by = best->type == KVMGUARD_BIND_PID ? KVMGUARD_BOUND_PID :
			    best->type == KVMGUARD_BIND_CGROUP ?
			    KVMGUARD_BOUND_CGROUP : KVMGUARD_BOUND_DEFAULT;
	}
	rcu_read_unlock();
	return policy;
}

/*
 * kvmguard_resolve() for a VM that exists. A creator too deep to search
 * for a pid binding (it was accepted while no pid binding existed) keeps
 * the policy it has: giving it none would lift its rules, and a pid
 * binding of an ancestor cannot be told from none. Under the config mutex,
 * which every change of vm->policy holds.
 */
struct kvmguard_policy *kvmguard_resolve_vm(const struct kvmguard_vm *vm,
					    u8 *bound_by)
{
	struct kvmguard_policy *policy;

	lockdep_assert_held(&kvmguard_config_mutex);
	policy = kvmguard_resolve(vm->pid, vm->cgroup, bound_by);
	if (!IS_ERR(policy))
		return policy;
	pr_warn_ratelimited("VM %llu: its process is too deep to search for a pid binding; it keeps its policy\n",
			    vm->id);
	policy = rcu_dereference_protected(vm->policy,
					   lockdep_is_held(&kvmguard_config_mutex));
	if (policy)
		kvmguard_policy_get(policy);
	*bound_by = vm->bound_by;
	return policy;
}

/* Runs after the registry dropped its VMs: nothing else holds a policy. */
void kvmguard_policy_uninit(void)
{
	struct kvmguard_binding *binding, *btmp;
	struct kvmguard_policy *policy, *ptmp;

	mutex_lock(&kvmguard_config_mutex);
	list_for_each_entry_safe(binding, btmp, &bindings, node) {
		list_del_rcu(&binding->node);
		binding_unlink(binding);
		call_rcu(&binding->rcu, binding_free_rcu);
	}
	nr_bindings = 0;
	WRITE_ONCE(nr_pid_bindings, 0);
	list_for_each_entry_safe(policy, ptmp, &policies, node) {
		list_del(&policy->node);
		kvmguard_policy_put(policy);
	}
	nr_policies = 0;
	mutex_unlock(&kvmguard_config_mutex);
	/* No binding left to wake it; one queued before finds none. */
	cancel_work_sync(&pid_exit_work);
	/* binding_free_rcu drops the last policy references. */
	rcu_barrier();
	rcu_barrier();
}
