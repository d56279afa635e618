/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internal interfaces between the parts of kvmguard.
 *
 * Locking, from outermost to innermost:
 *  - kvmguard_config_mutex serialises every change of policies, bindings
 *    and VM policy assignments (netlink handlers only, process context).
 *  - the registry lock (registry.c) guards insertion into and removal from
 *    the VM registry; it is taken from the KVM create/destroy hooks, which
 *    run in atomic context.
 * Readers of policies, bindings and VM entries use RCU; objects are freed
 * after a grace period.
 */
#ifndef _KVMGUARD_H
#define _KVMGUARD_H

#include <linux/ftrace.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/rhashtable-types.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/kvmguard.h>

struct kvm;
struct net_device;
struct netlink_ext_ack;
struct pid;
struct pt_regs;
struct sk_buff;

/* Cap on objects an administrator can create, so a runaway script cannot
 * exhaust kernel memory.
 */
#define KVMGUARD_MAX_POLICIES	4096
#define KVMGUARD_MAX_BINDINGS	4096

extern struct mutex kvmguard_config_mutex;

/*
 * The rules of a policy. Immutable once published: an edit publishes a new
 * copy with rcu_assign_pointer() and frees the old one after a grace period,
 * so a hook sees either the old or the new rules, never a mix.
 */
struct kvmguard_rules {
	struct rcu_head rcu;
	u8 mode;			/* enum kvmguard_mode */
	char domain[KVMGUARD_NAME_MAX + 1];
	bool hc_restrict;		/* only hc_allow may be called */
	u64 hc_allow;			/* bit n: KVM hypercall n */
	u8 hyperv;			/* enum kvmguard_hyperv */
	u8 xen;				/* enum kvmguard_xen */
	u8 mem_shared;			/* enum kvmguard_mem_shared */
	u8 ksm;				/* enum kvmguard_ksm */
	u64 mem_max;			/* bytes; KVMGUARD_MEM_UNLIMITED */
	u64 dirty_max;			/* bytes; KVMGUARD_MEM_UNLIMITED */
	u16 net_tag;			/* access VID; 0: none */
	bool net_isolate;
	bool net_trunk_any;		/* some VID is set in net_trunk */
	u8 net_trunk[KVMGUARD_NET_TRUNK_BYTES];	/* uapi bit order */
};

/* Does @rules allow VID @vid on a trunk? */
static inline bool kvmguard_trunk_has(const struct kvmguard_rules *rules,
				      u16 vid)
{
	return rules->net_trunk[vid >> 3] & (1 << (vid & 7));
}

/* Has @rules (NULL: no policy) any network rule? */
static inline bool kvmguard_net_rules(const struct kvmguard_rules *rules)
{
	return rules && (rules->net_tag || rules->net_trunk_any ||
			 rules->net_isolate);
}

/*
 * Violation reports: at most one event per VM and kind a second, carrying
 * how many violations it stands for. The caller serialises.
 */
struct kvmguard_report {
	unsigned long last;		/* jiffies of the last event; 0: none */
	u64 pending;			/* violations not yet reported */
};

/* Hypercall numbers with counters of their own; the rest share one. */
#define KVMGUARD_HC_SLOTS	(KVMGUARD_HC_NR_OTHER + 1)

struct kvmguard_hc_counts {
	u64 allowed[KVMGUARD_HC_SLOTS];	/* first: the entry code indexes it */
	u64 denied[KVMGUARD_HC_SLOTS];
	u64 hv_allowed;
	u64 hv_denied;
};

/* One violation report per VM and kind per second; see hypercall.c. */
#define KVMGUARD_HC_REPORT_HV	KVMGUARD_HC_SLOTS
#define KVMGUARD_HC_REPORT_XEN	(KVMGUARD_HC_SLOTS + 1)

struct kvmguard_hc_reports {
	spinlock_t lock;		/* the array below */
	struct kvmguard_report kind[KVMGUARD_HC_SLOTS + 2];
};

/* Memory rules of one VM; see memory.c. */
#define KVMGUARD_MEM_RULES	KVMGUARD_MEM_RULE_MAX

struct kvmguard_vm_mem {
	struct list_head backings;	/* shared backings, under the mem lock */
	u64 shared_bytes;		/* their bytes, under the mem lock */
	atomic_t ksm_gate;		/* > 0: KSM refused while a change is checked */
	struct task_struct *setter;	/* in KVM's memslot code for us */
	atomic64_t denied[KVMGUARD_MEM_RULES];	/* by enum kvmguard_mem_rule - 1 */
	atomic64_t ksm_madvise;		/* VMM default requests; see memory.c */
	spinlock_t report_lock;		/* reports */
	struct kvmguard_report reports[KVMGUARD_MEM_RULES];
};

/* Network ports of one VM; see net.c. */
#define KVMGUARD_NET_RULES	KVMGUARD_NET_RULE_MAX

struct kvmguard_vm_net {
	struct list_head ports;		/* its bound devices; see net.c */
	bool gone;			/* destroyed: no new port; see net.c */
	unsigned int counted;		/* its port counters kept; see net.c */
	spinlock_t report_lock;		/* reports */
	struct kvmguard_report reports[KVMGUARD_NET_RULES];
};

/* KVM PV features of one VM (KVM_FEATURE_* bits); see pv_features.c. */
struct kvmguard_vm_pv {
	u32 told;			/* left in a vCPU's CPUID, ever */
	u32 pending;			/* hidden too while a change is made */
};

struct kvmguard_policy {
	struct list_head node;		/* kvmguard_policies, by name */
	struct kref ref;		/* the list, bindings and VMs */
	struct rcu_head rcu;
	struct kvmguard_rules __rcu *rules;
	char name[KVMGUARD_NAME_MAX + 1];
};

struct kvmguard_binding {
	struct list_head node;		/* kvmguard_bindings, in dump order */
	struct rcu_head rcu;
	u8 type;			/* enum kvmguard_bind_type */
	pid_t pid_nr;			/* as given, for dumps */
	struct pid *pid;		/* KVMGUARD_BIND_PID */
	/* On pid->wait_pidfd: the process's exit ends the binding (policy.c). */
	struct wait_queue_entry exit_wait;
	size_t cgroup_len;
	char *cgroup;			/* KVMGUARD_BIND_CGROUP, normalised */
	struct kvmguard_policy *policy;	/* holds a reference */
};

struct kvmguard_vm {
	struct rhash_head node;		/* registry, by kvm */
	struct kref ref;		/* the registry and temporary users */
	struct rcu_head rcu;
	struct kvm *kvm;		/* valid while the VM is registered */
	struct mm_struct *mm;		/* its process's; compared, never followed */
	u64 id;
	u64 created_ns;
	struct pid *pid;		/* creator's thread group */
	pid_t pid_nr;
	u32 flags;			/* KVMGUARD_VM_F_* */
	u8 bound_by;			/* enum kvmguard_bound_by */
	char comm[TASK_COMM_LEN];
	char *cgroup;
	/* Changed under kvmguard_config_mutex; holds a policy reference. */
	struct kvmguard_policy __rcu *policy;
	/*
	 * Read by the hypercall entry code (hypercall_entry.S) without
	 * locks: bit n set means hypercall n proceeds without a look at the
	 * policy. Derived from the policy under kvmguard_config_mutex.
	 */
	u64 hc_allow;
	struct kvmguard_hc_counts __percpu *hc_counts;
	struct kvmguard_hc_reports hc_reports;
	/* Xen emulation (hypercall.c): */
	atomic_t xen_gate;		/* > 0: refused while a change is checked */
	atomic_t xen_configs;		/* KVM_XEN_HVM_CONFIG calls let through */
	struct kvmguard_vm_mem mem;
	struct kvmguard_vm_net net;
	struct kvmguard_vm_pv pv;	/* under pv_features.c's lock */
};

/* Live figures read from KVM for a dump. */
struct kvmguard_vm_stats {
	u32 vcpus;
	u32 memslots;
	u64 mem_bytes;
	u64 dirty_bytes;		/* memslots with dirty logging */
};

/* registry.c */
int kvmguard_registry_init(void);
void kvmguard_registry_uninit(void);
int kvmguard_registry_add(struct kvm *kvm, struct task_struct *task,
			  u32 flags, gfp_t gfp);
void kvmguard_registry_remove(struct kvm *kvm);
int kvmguard_registry_discover(void);
struct kvmguard_vm *kvmguard_vm_get_by_id(u64 id);
struct kvmguard_vm *kvmguard_vm_get_next(u64 after);
struct kvmguard_vm *kvmguard_vm_lookup(struct kvm *kvm);
/* The lookup cache (registry.c); the hypercall entry code reads it too. */
#define KVMGUARD_VM_CACHE_SHIFT	12	/* struct kvm is page aligned */
#define KVMGUARD_VM_CACHE_SLOTS	1024
extern struct kvmguard_vm *kvmguard_vm_cache[KVMGUARD_VM_CACHE_SLOTS];
struct kvmguard_vm *kvmguard_vm_lookup_cached(struct kvm *kvm);
void kvmguard_vm_cache_fill(struct kvmguard_vm *vm, struct kvm *kvm);
struct kvmguard_vm *kvmguard_vm_get(struct kvm *kvm);
void kvmguard_vm_put(struct kvmguard_vm *vm);
struct kvm *kvmguard_vm_kvm_get(struct kvmguard_vm *vm);
struct kvmguard_vm *kvmguard_vm_find_rcu(unsigned long *id);
struct kvmguard_vm *kvmguard_vm_get_by_mm(struct mm_struct *mm);
bool kvmguard_vm_stats(struct kvmguard_vm *vm, struct kvmguard_vm_stats *st);
bool kvmguard_vm_kvm_call(struct kvmguard_vm *vm,
			  void (*fn)(struct kvm *kvm, void *arg), void *arg);
u32 kvmguard_registry_generation(void);
unsigned int kvmguard_policy_vm_count(const struct kvmguard_policy *policy);
void kvmguard_vm_set_policy(struct kvmguard_vm *vm,
			    struct kvmguard_policy *policy, u8 bound_by);
void kvmguard_registry_rebind(struct kvmguard_policy *gone);
void kvmguard_registry_apply(struct kvmguard_policy *policy);
int kvmguard_registry_follow_bindings(struct netlink_ext_ack *extack);

/* policy.c */
void kvmguard_policy_uninit(void);
bool kvmguard_name_valid(const char *name, bool allow_empty);
struct kvmguard_policy *kvmguard_policy_find(const char *name);
void kvmguard_policy_get(struct kvmguard_policy *policy);
void kvmguard_policy_put(struct kvmguard_policy *policy);
struct kvmguard_policy *kvmguard_policy_create(const char *name,
					       const struct kvmguard_rules *rules,
					       struct netlink_ext_ack *extack);
int kvmguard_policy_update(struct kvmguard_policy *policy,
			   const struct kvmguard_rules *rules,
			   struct netlink_ext_ack *extack);
int kvmguard_vm_assign(struct kvmguard_vm *vm, struct kvmguard_policy *policy,
		       u8 bound_by, struct netlink_ext_ack *extack);
int kvmguard_policy_delete(struct kvmguard_policy *policy,
			   struct netlink_ext_ack *extack);
struct kvmguard_policy *kvmguard_policy_after(const char *name);
unsigned int kvmguard_policy_binding_count(const struct kvmguard_policy *p);
u32 kvmguard_config_generation(void);
int kvmguard_binding_set(u8 type, const char *cgroup, pid_t pid,
			 struct kvmguard_policy *policy,
			 struct netlink_ext_ack *extack);
int kvmguard_binding_del(u8 type, const char *cgroup, pid_t pid,
			 struct netlink_ext_ack *extack);
struct kvmguard_binding *kvmguard_binding_nth(unsigned long n);
struct kvmguard_policy *kvmguard_resolve(struct pid *pid, const char *cgroup,
					 u8 *bound_by);
struct kvmguard_policy *kvmguard_resolve_vm(const struct kvmguard_vm *vm,
					    u8 *bound_by);

/* hypercall.c */
/* hypercall_entry.S */
void kvmguard_hc_entry(void);
void kvmguard_hv_entry(void);

void kvmguard_hypercall_uninit(void);
void kvmguard_hc_reserve_init(void);
void kvmguard_hc_reserve_uninit(void);
int kvmguard_hc_vm_init(struct kvmguard_vm *vm, gfp_t gfp);
void kvmguard_hc_vm_free(struct kvmguard_vm *vm);
void kvmguard_hc_apply(struct kvmguard_vm *vm);
int kvmguard_hc_rules_changed(const struct kvmguard_rules *old,
			      const struct kvmguard_rules *new);
void kvmguard_hc_sum(const struct kvmguard_vm *vm,
		     struct kvmguard_hc_counts *sum);
int kvmguard_xen_init(void);
void kvmguard_xen_uninit(void);
bool kvmguard_xen_turns_on(const struct kvmguard_rules *old,
			   const struct kvmguard_rules *new);
int kvmguard_xen_close(struct kvmguard_vm *vm, struct netlink_ext_ack *extack);
void kvmguard_xen_open(struct kvmguard_vm *vm);

/* memory.c */
int kvmguard_memory_init(void);
void kvmguard_memory_uninit(void);
void kvmguard_mem_vm_init(struct kvmguard_vm *vm);
void kvmguard_mem_vm_gone(struct kvmguard_vm *vm);
int kvmguard_mem_rules_changed(const struct kvmguard_rules *old,
			       const struct kvmguard_rules *new);
u64 kvmguard_mem_shared_bytes(struct kvmguard_vm *vm);
int kvmguard_mem_host_bytes(struct kvmguard_vm *vm, u64 *bytes, u64 *dirty);
/* KVMGUARD_CMD_VM_CHECK of a memory rule. */
struct kvmguard_mem_check {
	u8 rule;		/* in: KVMGUARD_MEM_RULE_LIMIT or _DIRTY_LOG */
	bool all;		/* in: DIRTY_LOG of all the VM's memory */
	u64 bytes;		/* in: bytes more (unless all) */
	u8 verdict;		/* out: enum kvmguard_check_verdict */
	u8 mode;		/* out: the policy's mode */
	u64 limit, used, total;	/* out: KVMGUARD_A_CHECK_* */
};

int kvmguard_mem_check(struct kvmguard_vm *vm, struct kvmguard_mem_check *c);
/* memory_dirty.c: the budget against dirty tracking outside KVM. */
int kvmguard_dirty_rules_changed(const struct kvmguard_rules *old,
				 const struct kvmguard_rules *new);
void kvmguard_dirty_uninit(void);
bool kvmguard_ksm_turns_on(const struct kvmguard_rules *old,
			   const struct kvmguard_rules *new);
int kvmguard_ksm_close(struct kvmguard_vm *vm, struct netlink_ext_ack *extack);
void kvmguard_ksm_open(struct kvmguard_vm *vm);

/*
 * net.c: devices bound to VMs and the 802.1Q rules on them.
 * Lock order: kvmguard_config_mutex, then rtnl_lock(), then net.c's own.
 * The netdev notifier runs under rtnl and never takes the config mutex.
 */
int kvmguard_net_init(void);
void kvmguard_net_uninit(void);
void kvmguard_net_vm_init(struct kvmguard_vm *vm);
/* The VM was destroyed (atomic context): its bindings end. */
void kvmguard_net_vm_gone(struct kvmguard_vm *vm);
/*
 * Before @vm (NULL: every VM of @policy) gets @rules (config mutex held;
 * @vm and @rules NULL: @policy is deleted, its VMs get what the bindings
 * say): the hooks they need attach, or -errno with nothing changed.
 */
int kvmguard_net_prepare(struct kvmguard_vm *vm,
			 struct kvmguard_policy *policy,
			 const struct kvmguard_rules *rules,
			 struct netlink_ext_ack *extack);
/*
 * @vm's rules may have changed (config mutex held): hooks follow them; a
 * port whose hook cannot attach then drops every frame (fails closed).
 */
void kvmguard_net_apply(struct kvmguard_vm *vm);
/*
 * Caller holds rtnl_lock(). 0 (also when @vm has it already), -EBUSY (bound
 * to another VM), -EOPNOTSUPP (not a tap or macvtap), -ENOMEM.
 */
int kvmguard_net_bind(struct kvmguard_vm *vm, struct net_device *dev,
		      u8 bound_by, struct netlink_ext_ack *extack);
/* Caller holds rtnl_lock(). Ends @vm's binding of @dev made by @bound_by. */
void kvmguard_net_unbind(struct kvmguard_vm *vm, struct net_device *dev,
			 u8 bound_by);
bool kvmguard_net_dev_bound(const struct net_device *dev);
/* CMD_NET_BIND / CMD_NET_UNBIND, with the config mutex held. */
int kvmguard_net_bind_request(u64 vm_id, const char *ifname, u32 ifindex,
			      struct netlink_ext_ack *extack);
int kvmguard_net_unbind_request(const char *ifname, u32 ifindex,
				struct netlink_ext_ack *extack);
/* KVMGUARD_A_VM_NET_DEVS of @vm. */
int kvmguard_net_fill(struct sk_buff *skb, struct kvmguard_vm *vm);

/* vhost.c: vhost-net backends of VM processes become their ports. */
int kvmguard_vhost_init(void);
void kvmguard_vhost_uninit(void);
/* After kvmguard_registry_discover(): bind the backends already open. */
void kvmguard_vhost_discover(void);
/* From the registry (atomic context): a VM was created, or destroyed. */
void kvmguard_vhost_vm_new(struct kvmguard_vm *vm);
/* Calls kvmguard_net_vm_gone(), at once or after moving vhost's ports. */
void kvmguard_vhost_vm_gone(struct kvmguard_vm *vm);

/* netlink.c */
int kvmguard_netlink_init(void);
void kvmguard_netlink_uninit(void);
u64 kvmguard_report_due(struct kvmguard_report *r);
void kvmguard_notify_vm(const struct kvmguard_vm *vm, u8 event);
/* @nr: the hypercall number (HYPERCALL), the call code (HYPERV). */
void kvmguard_notify_violation(const struct kvmguard_vm *vm, u8 event,
			       u64 nr, u8 action, u64 count);
void kvmguard_notify_mem(const struct kvmguard_vm *vm, u8 rule, u8 action,
			 u64 count, s64 slot, u64 bytes);
/* A MEMORY event of a VMM's default request (EVENT_VMM_DEFAULT), count 1. */
void kvmguard_notify_mem_vmm_default(const struct kvmguard_vm *vm, u8 rule,
				     u8 action, u64 bytes);
/* @vid < 0: the frame was untagged. */
void kvmguard_notify_net(const struct kvmguard_vm *vm, u8 rule, u8 dir,
			 u8 action, u64 count, const struct net_device *dev,
			 int vid);

/*
 * pv_features.c: a guest is not told about PV features whose hypercalls
 * its policy denies; changes that would deny told ones need force.
 */
int kvmguard_pv_init(void);
void kvmguard_pv_uninit(void);
/* The request being handled (config mutex held) says force, or not. */
void kvmguard_pv_set_force(bool force);
int kvmguard_pv_prepare(struct kvmguard_vm *vm, struct kvmguard_policy *policy,
			const struct kvmguard_rules *rules,
			struct netlink_ext_ack *extack);
void kvmguard_pv_done(void);

/*
 * audit.c: records in the kernel audit log. A change, after it was made
 * or refused (@err), in process context; a violation where it is
 * reported, in any context (@nr < 0: none; @vm NULL: no VM).
 */
struct kvmguard_audit_change {
	const char *op;			/* policy_new, bind, ... */
	const char *policy;		/* NULL: none */
	u64 vm;				/* 0: none */
	u8 bind_type;			/* enum kvmguard_bind_type; 0: none */
	const char *cgroup;		/* KVMGUARD_BIND_CGROUP */
	pid_t bind_pid;			/* KVMGUARD_BIND_PID */
	const char *dev;		/* net: the device, by name */
	u32 ifindex;			/* or by index */
	const char *reason;		/* NULL: a request */
	int err;
};

void kvmguard_audit_config(const struct kvmguard_audit_change *c);
void kvmguard_audit_violation(const struct kvmguard_vm *vm, const char *rule,
			      s64 nr, u8 action, u64 count,
			      const struct net_device *dev,
			      const struct net_device *bridge);

/* hooks.c */
int kvmguard_hooks_init(void);
void kvmguard_hooks_uninit(void);

/*
 * A hook that may send calls of @fn elsewhere (hooks.c: an ftrace_ops with
 * FTRACE_OPS_FL_IPMODIFY, which a livepatch of @fn cannot join). At @fn's
 * entry, in atomic context, @redirect sees the registers and returns where
 * the call goes instead - a function with @fn's arguments and return type -
 * or 0 to let it run. Every hook that sets the instruction pointer is one.
 */
struct kvmguard_redirect {
	const char *fn;
	unsigned long (*redirect)(struct pt_regs *regs);
	bool watch;		/* only looks: no IPMODIFY, returns 0 */
	struct ftrace_ops ops;
};

int kvmguard_redirect_attach(struct kvmguard_redirect *r, unsigned long ip);
void kvmguard_redirect_detach(struct kvmguard_redirect *r);

#endif /* _KVMGUARD_H */
