// SPDX-License-Identifier: GPL-2.0
/*
 * The generic netlink family "kvmguard": requests from the administrator's
 * CLI and the "events" multicast group. See uapi/linux/kvmguard.h.
 *
 * Handlers run one at a time under the genetlink mutex (parallel_ops is
 * off) and take kvmguard_config_mutex around any use of policies and
 * bindings, which the KVM hooks read under RCU.
 */
#define pr_fmt(fmt) "kvmguard: " fmt
#include <linux/kvm_host.h>
#include <linux/netdevice.h>
#include <linux/pid.h>
#include <linux/threads.h>
#include <net/genetlink.h>

#include "kvmguard.h"
#include "fault_inject.h"
#include "net.h"

static struct genl_family kvmguard_family;
/*
 * Events leave only while the family is registered: before, its group
 * offset is not set, and after, the group number may belong to another
 * family. Senders check it under RCU; see kvmguard_netlink_uninit().
 */
static bool events_on;

static struct netlink_range_validation pid_range __ro_after_init = {
	.min = 1,
	.max = PID_MAX_LIMIT,
};

/*
 * NLA_NUL_STRING only asks for a NUL somewhere in the first .len + 1 bytes,
 * so "web\0x" would pass and be read as "web". A string attribute of this
 * family holds exactly one NUL, its last byte.
 */
static int strict_string(const struct nlattr *attr,
			 struct netlink_ext_ack *extack)
{
	int len = nla_len(attr);

	if (len < 1 || strnlen(nla_data(attr), len) != len - 1) {
		NL_SET_ERR_MSG_ATTR(extack, attr,
				    "a string must hold no NUL byte before its terminating one");
		return -EINVAL;
	}
	return 0;
}

#define STRING_POLICY(max) NLA_POLICY_VALIDATE_FN(NLA_NUL_STRING, strict_string, max)
#define NAME_POLICY	STRING_POLICY(KVMGUARD_NAME_MAX)
#define CGROUP_POLICY	STRING_POLICY(KVMGUARD_CGROUP_MAX)
#define IFNAME_POLICY	STRING_POLICY(IFNAMSIZ - 1)

static const struct nla_policy vm_get_policy[KVMGUARD_A_MAX + 1] = {
	[KVMGUARD_A_VM_ID]		= NLA_POLICY_MIN(NLA_U64, 1),
};

static const struct nla_policy vm_set_policy[KVMGUARD_A_MAX + 1] = {
	[KVMGUARD_A_VM_ID]		= NLA_POLICY_MIN(NLA_U64, 1),
	[KVMGUARD_A_POLICY_NAME]	= NAME_POLICY,
	[KVMGUARD_A_FORCE]		= { .type = NLA_FLAG },
};

static const struct nla_policy policy_edit_policy[KVMGUARD_A_MAX + 1] = {
	[KVMGUARD_A_POLICY_NAME]	= NAME_POLICY,
	[KVMGUARD_A_POLICY_MODE]	= NLA_POLICY_MAX(NLA_U8, KVMGUARD_MODE_MAX),
	[KVMGUARD_A_POLICY_DOMAIN]	= NAME_POLICY,
	[KVMGUARD_A_POLICY_HC_RESTRICT]	= NLA_POLICY_MAX(NLA_U8, 1),
	[KVMGUARD_A_POLICY_HC_ALLOW]	= { .type = NLA_U64 },
	[KVMGUARD_A_POLICY_HYPERV]	= NLA_POLICY_MAX(NLA_U8, KVMGUARD_HYPERV_MAX),
	[KVMGUARD_A_POLICY_MEM_MAX]	= { .type = NLA_U64 },
	[KVMGUARD_A_POLICY_MEM_SHARED]	= NLA_POLICY_MAX(NLA_U8, KVMGUARD_MEM_SHARED_MAX),
	[KVMGUARD_A_POLICY_MEM_KSM]	= NLA_POLICY_MAX(NLA_U8, KVMGUARD_KSM_MAX),
	[KVMGUARD_A_POLICY_MEM_DIRTY_MAX] = { .type = NLA_U64 },
	[KVMGUARD_A_POLICY_NET_TAG]	= NLA_POLICY_MAX(NLA_U16, KVMGUARD_NET_VID_MAX),
	[KVMGUARD_A_POLICY_NET_TRUNK]	= NLA_POLICY_EXACT_LEN(KVMGUARD_NET_TRUNK_BYTES),
	[KVMGUARD_A_POLICY_NET_ISOLATE]	= NLA_POLICY_MAX(NLA_U8, 1),
	[KVMGUARD_A_POLICY_XEN]		= NLA_POLICY_MAX(NLA_U8, KVMGUARD_XEN_MAX),
	[KVMGUARD_A_FORCE]		= { .type = NLA_FLAG },
};

static const struct nla_policy policy_name_policy[KVMGUARD_A_MAX + 1] = {
	[KVMGUARD_A_POLICY_NAME]	= NAME_POLICY,
	[KVMGUARD_A_FORCE]		= { .type = NLA_FLAG },
};

static const struct nla_policy bind_policy[KVMGUARD_A_MAX + 1] = {
	[KVMGUARD_A_BIND_TYPE]		= NLA_POLICY_RANGE(NLA_U8, KVMGUARD_BIND_DEFAULT,
							   KVMGUARD_BIND_MAX),
	[KVMGUARD_A_BIND_CGROUP]	= CGROUP_POLICY,
	[KVMGUARD_A_BIND_PID]		= NLA_POLICY_FULL_RANGE(NLA_U32, &pid_range),
	[KVMGUARD_A_POLICY_NAME]	= NAME_POLICY,
	[KVMGUARD_A_FORCE]		= { .type = NLA_FLAG },
};

static const struct nla_policy bind_del_policy[KVMGUARD_A_MAX + 1] = {
	[KVMGUARD_A_BIND_TYPE]		= NLA_POLICY_RANGE(NLA_U8, KVMGUARD_BIND_DEFAULT,
							   KVMGUARD_BIND_MAX),
	[KVMGUARD_A_BIND_CGROUP]	= CGROUP_POLICY,
	[KVMGUARD_A_BIND_PID]		= NLA_POLICY_FULL_RANGE(NLA_U32, &pid_range),
	[KVMGUARD_A_FORCE]		= { .type = NLA_FLAG },
};

static const struct nla_policy net_bind_policy[KVMGUARD_A_MAX + 1] = {
	[KVMGUARD_A_VM_ID]		= NLA_POLICY_MIN(NLA_U64, 1),
	[KVMGUARD_A_NET_IFNAME]		= IFNAME_POLICY,
	[KVMGUARD_A_NET_IFINDEX]	= NLA_POLICY_MIN(NLA_U32, 1),
};

static const struct nla_policy net_unbind_policy[KVMGUARD_A_MAX + 1] = {
	[KVMGUARD_A_NET_IFNAME]		= IFNAME_POLICY,
	[KVMGUARD_A_NET_IFINDEX]	= NLA_POLICY_MIN(NLA_U32, 1),
};

static const struct nla_policy net_guard_set_policy[KVMGUARD_A_MAX + 1] = {
	[KVMGUARD_A_NET_IFNAME]		= IFNAME_POLICY,
	[KVMGUARD_A_NET_IFINDEX]	= NLA_POLICY_MIN(NLA_U32, 1),
	[KVMGUARD_A_NET_GUARD]		= NLA_POLICY_MAX(NLA_U8, 1),
};

static const struct nla_policy vm_check_policy[KVMGUARD_A_MAX + 1] = {
	[KVMGUARD_A_VM_ID]		= NLA_POLICY_MIN(NLA_U64, 1),
	[KVMGUARD_A_CHECK_RULE]		= NLA_POLICY_RANGE(NLA_U8, KVMGUARD_MEM_RULE_LIMIT,
							   KVMGUARD_MEM_RULE_MAX),
	[KVMGUARD_A_CHECK_BYTES]	= { .type = NLA_U64 },
	[KVMGUARD_A_CHECK_ALL]		= { .type = NLA_FLAG },
};

/* Takes no attribute at all. */
static const struct nla_policy empty_policy[KVMGUARD_A_MAX + 1] = {};

/* A missing attribute gets a readable message, not only its number. */
#define missing(info, attr, msg) ({					\
	struct genl_info *__info = (info);				\
	int __attr = (attr);						\
	bool __missing = !__info->attrs[__attr];			\
									\
	if (__missing) {						\
		NL_SET_ERR_MSG(__info->extack, msg);			\
		NL_SET_ERR_ATTR_MISS(__info->extack, NULL, __attr);	\
	}								\
	__missing;							\
})

static struct kvmguard_policy *policy_from_attr(struct genl_info *info)
{
	struct nlattr *attr = info->attrs[KVMGUARD_A_POLICY_NAME];
	struct kvmguard_policy *policy;

	policy = kvmguard_policy_find(nla_data(attr));
	if (!policy)
		NL_SET_ERR_MSG_ATTR(info->extack, attr, "no policy with that name");
	return policy;
}

/* Dump sequence numbers must not be 0, which means "first message". */
static unsigned long dump_seq(u32 generation)
{
	return (unsigned long)generation + 1;
}

/* Per-number hypercall counters, for the numbers that were counted. */
static int hc_stats_fill(struct sk_buff *skb, const struct kvmguard_vm *vm)
{
	struct kvmguard_hc_counts *sum;
	struct nlattr *nest, *stat;
	int nr, err = -EMSGSIZE;

	sum = kmalloc(sizeof(*sum), GFP_KERNEL);
	if (!sum)
		return -ENOMEM;
	kvmguard_hc_sum(vm, sum);
	nest = nla_nest_start(skb, KVMGUARD_A_VM_HC_STATS);
	if (!nest)
		goto out;
	for (nr = 0; nr < KVMGUARD_HC_SLOTS; nr++) {
		if (!sum->allowed[nr] && !sum->denied[nr])
			continue;
		stat = nla_nest_start(skb, KVMGUARD_A_HC_STAT);
		if (!stat ||
		    nla_put_u32(skb, KVMGUARD_A_HC_NR, nr) ||
		    nla_put_u64_64bit(skb, KVMGUARD_A_HC_ALLOWED,
				      sum->allowed[nr], KVMGUARD_A_PAD) ||
		    nla_put_u64_64bit(skb, KVMGUARD_A_HC_DENIED,
				      sum->denied[nr], KVMGUARD_A_PAD))
			goto out;
		nla_nest_end(skb, stat);
	}
	nla_nest_end(skb, nest);
	if (nla_put_u64_64bit(skb, KVMGUARD_A_VM_HV_ALLOWED, sum->hv_allowed,
			      KVMGUARD_A_PAD) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_VM_HV_DENIED, sum->hv_denied,
			      KVMGUARD_A_PAD))
		goto out;
	err = 0;
out:
	kfree(sum);
	return err;
}

/* The name of @vm's policy, if it has one, as POLICY_NAME. */
static int put_vm_policy_name(struct sk_buff *skb,
			      const struct kvmguard_vm *vm)
{
	struct kvmguard_policy *policy;
	int err = 0;

	rcu_read_lock();
	policy = rcu_dereference(vm->policy);
	if (policy)
		err = nla_put_string(skb, KVMGUARD_A_POLICY_NAME, policy->name);
	rcu_read_unlock();
	return err;
}

/* The VM counter of each memory rule, by enum kvmguard_mem_rule - 1. */
static const int mem_denied_attr[KVMGUARD_MEM_RULES] = {
	[KVMGUARD_MEM_RULE_LIMIT - 1]		= KVMGUARD_A_VM_MEM_LIMIT_DENIED,
	[KVMGUARD_MEM_RULE_SHARED - 1]		= KVMGUARD_A_VM_MEM_SHARED_DENIED,
	[KVMGUARD_MEM_RULE_KSM - 1]		= KVMGUARD_A_VM_MEM_KSM_DENIED,
	[KVMGUARD_MEM_RULE_DIRTY_LOG - 1]	= KVMGUARD_A_VM_MEM_DIRTY_DENIED,
};

static int vm_fill(struct sk_buff *skb, struct kvmguard_vm *vm, u32 portid,
		   u32 seq, int flags, struct netlink_callback *cb)
{
	struct kvmguard_vm_stats st;
	u32 vm_flags = vm->flags;
	bool alone;
	void *hdr;
	int i;

	kvmguard_vm_stats(vm, &st);
	/* Host memory, each byte once: what the memory rules count. */
	if (kvmguard_mem_host_bytes(vm, &st.mem_bytes, &st.dirty_bytes) ==
	    -ENOMEM)
		return -ENOMEM;
	/* Alone in its message buffer: what does not fit is left out. */
	alone = !skb->len;
	hdr = genlmsg_put(skb, portid, seq, &kvmguard_family, flags,
			  KVMGUARD_CMD_VM_GET);
	if (!hdr)
		return -EMSGSIZE;
	if (cb)
		genl_dump_check_consistent(cb, hdr);
	if (nla_put_u64_64bit(skb, KVMGUARD_A_VM_ID, vm->id, KVMGUARD_A_PAD) ||
	    nla_put_u32(skb, KVMGUARD_A_VM_PID, vm->pid_nr) ||
	    nla_put_string(skb, KVMGUARD_A_VM_COMM, vm->comm) ||
	    nla_put_string(skb, KVMGUARD_A_VM_CGROUP, vm->cgroup) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_VM_CREATED_NS, vm->created_ns,
			      KVMGUARD_A_PAD) ||
	    nla_put_u32(skb, KVMGUARD_A_VM_VCPUS, st.vcpus) ||
	    nla_put_u32(skb, KVMGUARD_A_VM_MEMSLOTS, st.memslots) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_VM_MEM_BYTES, st.mem_bytes,
			      KVMGUARD_A_PAD) ||
	    nla_put_u8(skb, KVMGUARD_A_VM_BOUND_BY, READ_ONCE(vm->bound_by)) ||
	    hc_stats_fill(skb, vm) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_VM_MEM_SHARED_BYTES,
			      kvmguard_mem_shared_bytes(vm), KVMGUARD_A_PAD) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_VM_MEM_DIRTY_BYTES, st.dirty_bytes,
			      KVMGUARD_A_PAD))
		goto cancel;
	for (i = 0; i < KVMGUARD_MEM_RULES; i++)
		if (nla_put_u64_64bit(skb, mem_denied_attr[i],
				      atomic64_read(&vm->mem.denied[i]),
				      KVMGUARD_A_PAD))
			goto cancel;
	if (nla_put_u64_64bit(skb, KVMGUARD_A_VM_MEM_KSM_MADVISE,
			      atomic64_read(&vm->mem.ksm_madvise), KVMGUARD_A_PAD))
		goto cancel;
	/*
	 * The one part of a VM message without a bound: a VM with more
	 * devices than a message holds is listed without them, flagged.
	 */
	if (kvmguard_net_fill(skb, vm)) {
		if (!alone)
			goto cancel;
		vm_flags |= KVMGUARD_VM_F_NET_DEVS_CUT;
	}
	if (nla_put_u32(skb, KVMGUARD_A_VM_FLAGS, vm_flags))
		goto cancel;
	if (put_vm_policy_name(skb, vm))
		goto cancel;
	genlmsg_end(skb, hdr);
	return 0;

cancel:
	genlmsg_cancel(skb, hdr);
	return -EMSGSIZE;
}

static int vm_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct kvmguard_vm *vm;
	struct sk_buff *msg;
	int err;

	if (missing(info, KVMGUARD_A_VM_ID, "missing VM id"))
		return -EINVAL;
	vm = kvmguard_vm_get_by_id(nla_get_u64(info->attrs[KVMGUARD_A_VM_ID]));
	if (!vm) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[KVMGUARD_A_VM_ID],
				    "no VM with that id");
		return -ENOENT;
	}
	msg = genlmsg_new(GENLMSG_DEFAULT_SIZE + PATH_MAX, GFP_KERNEL);
	if (!msg) {
		kvmguard_vm_put(vm);
		return -ENOMEM;
	}
	err = vm_fill(msg, vm, info->snd_portid, info->snd_seq, 0, NULL);
	kvmguard_vm_put(vm);
	if (err) {
		nlmsg_free(msg);
		return err;
	}
	return genlmsg_reply(msg, info);
}

/* The room a VM message needs (but its net devices): as vm_get_doit(). */
#define VM_MSG_MIN	nlmsg_total_size(GENLMSG_DEFAULT_SIZE + PATH_MAX)

/*
 * A dump's first buffer is NLMSG_GOODSIZE, less than a page, unless the
 * socket has read larger messages before: a VM whose cgroup path is near
 * the limit would not fit even alone, and the dump would end there.
 */
static int vm_get_start(struct netlink_callback *cb)
{
	cb->min_dump_alloc = max_t(u32, cb->min_dump_alloc, VM_MSG_MIN);
	return 0;
}

static int vm_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	u64 last = cb->args[0];
	struct kvmguard_vm *vm;
	int err = 0;

	cb->seq = dump_seq(kvmguard_registry_generation());
	while ((vm = kvmguard_vm_get_next(last))) {
		err = vm_fill(skb, vm, NETLINK_CB(cb->skb).portid,
			      cb->nlh->nlmsg_seq, NLM_F_MULTI, cb);
		if (!err)
			last = vm->id;
		kvmguard_vm_put(vm);
		if (err)
			break;
	}
	cb->args[0] = last;
	/* An entry too large even for an empty message would stall the dump. */
	if (err && !skb->len)
		return err;
	return skb->len;
}

static int vm_set_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct kvmguard_policy *policy;
	struct kvmguard_vm *vm;
	int err = 0;

	if (missing(info, KVMGUARD_A_VM_ID, "missing VM id") ||
	    missing(info, KVMGUARD_A_POLICY_NAME, "missing policy name"))
		return -EINVAL;
	vm = kvmguard_vm_get_by_id(nla_get_u64(info->attrs[KVMGUARD_A_VM_ID]));
	if (!vm) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[KVMGUARD_A_VM_ID],
				    "no VM with that id");
		return -ENOENT;
	}
	mutex_lock(&kvmguard_config_mutex);
	kvmguard_pv_set_force(nla_get_flag(info->attrs[KVMGUARD_A_FORCE]));
	policy = policy_from_attr(info);
	if (policy)
		err = kvmguard_vm_assign(vm, policy, KVMGUARD_BOUND_EXPLICIT,
					 info->extack);
	else
		err = -ENOENT;
	kvmguard_pv_set_force(false);
	mutex_unlock(&kvmguard_config_mutex);
	kvmguard_audit_config(&(struct kvmguard_audit_change){
		.op = "vm_set", .vm = vm->id,
		.policy = nla_data(info->attrs[KVMGUARD_A_POLICY_NAME]),
		.err = err });
	kvmguard_vm_put(vm);
	return err;
}

/* Apply the rule attributes of a policy request onto @rules. */
static int rules_from_attrs(struct genl_info *info, struct kvmguard_rules *rules)
{
	struct nlattr *restrict_attr = info->attrs[KVMGUARD_A_POLICY_HC_RESTRICT];
	struct nlattr *attr;

	attr = info->attrs[KVMGUARD_A_POLICY_HC_ALLOW];
	if (attr && !(restrict_attr && nla_get_u8(restrict_attr))) {
		NL_SET_ERR_MSG_ATTR(info->extack, attr,
				    "a hypercall allowlist needs the restriction set in the same request");
		return -EINVAL;
	}
	if (restrict_attr)
		rules->hc_restrict = nla_get_u8(restrict_attr);
	if (attr)
		rules->hc_allow = nla_get_u64(attr);
	attr = info->attrs[KVMGUARD_A_POLICY_HYPERV];
	if (attr)
		rules->hyperv = nla_get_u8(attr);
	attr = info->attrs[KVMGUARD_A_POLICY_XEN];
	if (attr)
		rules->xen = nla_get_u8(attr);
	attr = info->attrs[KVMGUARD_A_POLICY_MODE];
	if (attr)
		rules->mode = nla_get_u8(attr);
	attr = info->attrs[KVMGUARD_A_POLICY_MEM_MAX];
	if (attr)
		rules->mem_max = nla_get_u64(attr);
	attr = info->attrs[KVMGUARD_A_POLICY_MEM_SHARED];
	if (attr)
		rules->mem_shared = nla_get_u8(attr);
	attr = info->attrs[KVMGUARD_A_POLICY_MEM_KSM];
	if (attr)
		rules->ksm = nla_get_u8(attr);
	attr = info->attrs[KVMGUARD_A_POLICY_MEM_DIRTY_MAX];
	if (attr)
		rules->dirty_max = nla_get_u64(attr);
	attr = info->attrs[KVMGUARD_A_POLICY_NET_TAG];
	if (attr)
		rules->net_tag = nla_get_u16(attr);
	attr = info->attrs[KVMGUARD_A_POLICY_NET_ISOLATE];
	if (attr)
		rules->net_isolate = nla_get_u8(attr);
	attr = info->attrs[KVMGUARD_A_POLICY_NET_TRUNK];
	if (attr) {
		const u8 *bits = nla_data(attr);

		/* VID 0 is a priority tag and 4095 is reserved: never a segment. */
		if ((bits[0] & 1) || (bits[KVMGUARD_NET_TRUNK_BYTES - 1] & 0x80)) {
			NL_SET_ERR_MSG_ATTR(info->extack, attr,
					    "trunk VIDs must be 1..4094");
			return -ERANGE;
		}
		memcpy(rules->net_trunk, bits, sizeof(rules->net_trunk));
		rules->net_trunk_any = memchr_inv(bits, 0, sizeof(rules->net_trunk));
	}
	attr = info->attrs[KVMGUARD_A_POLICY_DOMAIN];
	if (attr) {
		if (!kvmguard_name_valid(nla_data(attr), true)) {
			NL_SET_ERR_MSG_ATTR(info->extack, attr,
					    "domain must be letters, digits, '.', '_' or '-'");
			return -EINVAL;
		}
		strscpy(rules->domain, nla_data(attr), sizeof(rules->domain));
	}
	return 0;
}

static bool policy_name_ok(struct genl_info *info)
{
	struct nlattr *attr = info->attrs[KVMGUARD_A_POLICY_NAME];

	if (missing(info, KVMGUARD_A_POLICY_NAME, "missing policy name"))
		return false;
	if (kvmguard_name_valid(nla_data(attr), false))
		return true;
	NL_SET_ERR_MSG_ATTR(info->extack, attr,
			    "policy name must be 1-31 letters, digits, '.', '_' or '-'");
	return false;
}

static int policy_new_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct kvmguard_rules rules = {
		.mode = KVMGUARD_MODE_ENFORCE,
		.mem_max = KVMGUARD_MEM_UNLIMITED,
		.dirty_max = KVMGUARD_MEM_UNLIMITED,
	};
	struct kvmguard_policy *policy;
	const char *name;
	int err;

	if (!policy_name_ok(info))
		return -EINVAL;
	err = rules_from_attrs(info, &rules);
	if (err)
		return err;
	name = nla_data(info->attrs[KVMGUARD_A_POLICY_NAME]);
	mutex_lock(&kvmguard_config_mutex);
	if (kvmguard_policy_find(name)) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[KVMGUARD_A_POLICY_NAME],
				    "a policy with that name exists");
		err = -EEXIST;
	} else {
		policy = kvmguard_policy_create(name, &rules, info->extack);
		err = PTR_ERR_OR_ZERO(policy);
	}
	mutex_unlock(&kvmguard_config_mutex);
	kvmguard_audit_config(&(struct kvmguard_audit_change){
		.op = "policy_new", .policy = name, .err = err });
	return err;
}

static int policy_set_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct kvmguard_policy *policy;
	struct kvmguard_rules rules;
	int err = -ENOENT;

	if (!policy_name_ok(info))
		return -EINVAL;
	mutex_lock(&kvmguard_config_mutex);
	kvmguard_pv_set_force(nla_get_flag(info->attrs[KVMGUARD_A_FORCE]));
	policy = policy_from_attr(info);
	if (policy) {
		rules = *rcu_dereference_protected(policy->rules,
						   lockdep_is_held(&kvmguard_config_mutex));
		err = rules_from_attrs(info, &rules);
		if (!err)
			err = kvmguard_policy_update(policy, &rules,
						     info->extack);
	}
	kvmguard_pv_set_force(false);
	mutex_unlock(&kvmguard_config_mutex);
	kvmguard_audit_config(&(struct kvmguard_audit_change){
		.op = "policy_set",
		.policy = nla_data(info->attrs[KVMGUARD_A_POLICY_NAME]),
		.err = err });
	return err;
}

static int policy_fill(struct sk_buff *skb, struct kvmguard_policy *policy,
		       u32 portid, u32 seq, int flags,
		       struct netlink_callback *cb)
{
	const struct kvmguard_rules *rules;
	void *hdr;

	lockdep_assert_held(&kvmguard_config_mutex);
	rules = rcu_dereference_protected(policy->rules,
					  lockdep_is_held(&kvmguard_config_mutex));
	hdr = genlmsg_put(skb, portid, seq, &kvmguard_family, flags,
			  KVMGUARD_CMD_POLICY_GET);
	if (!hdr)
		return -EMSGSIZE;
	if (cb)
		genl_dump_check_consistent(cb, hdr);
	if (nla_put_string(skb, KVMGUARD_A_POLICY_NAME, policy->name) ||
	    nla_put_u8(skb, KVMGUARD_A_POLICY_MODE, rules->mode) ||
	    (rules->domain[0] &&
	     nla_put_string(skb, KVMGUARD_A_POLICY_DOMAIN, rules->domain)) ||
	    nla_put_u8(skb, KVMGUARD_A_POLICY_HC_RESTRICT, rules->hc_restrict) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_POLICY_HC_ALLOW, rules->hc_allow,
			      KVMGUARD_A_PAD) ||
	    nla_put_u8(skb, KVMGUARD_A_POLICY_HYPERV, rules->hyperv) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_POLICY_MEM_MAX, rules->mem_max,
			      KVMGUARD_A_PAD) ||
	    nla_put_u8(skb, KVMGUARD_A_POLICY_MEM_SHARED, rules->mem_shared) ||
	    nla_put_u8(skb, KVMGUARD_A_POLICY_MEM_KSM, rules->ksm) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_POLICY_MEM_DIRTY_MAX,
			      rules->dirty_max, KVMGUARD_A_PAD) ||
	    nla_put_u16(skb, KVMGUARD_A_POLICY_NET_TAG, rules->net_tag) ||
	    nla_put(skb, KVMGUARD_A_POLICY_NET_TRUNK, sizeof(rules->net_trunk),
		    rules->net_trunk) ||
	    nla_put_u8(skb, KVMGUARD_A_POLICY_NET_ISOLATE, rules->net_isolate) ||
	    nla_put_u8(skb, KVMGUARD_A_POLICY_XEN, rules->xen) ||
	    nla_put_u32(skb, KVMGUARD_A_POLICY_VMS,
			kvmguard_policy_vm_count(policy)) ||
	    nla_put_u32(skb, KVMGUARD_A_POLICY_BINDINGS,
			kvmguard_policy_binding_count(policy))) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

static int policy_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct kvmguard_policy *policy;
	struct sk_buff *msg;
	int err = -ENOENT;

	if (missing(info, KVMGUARD_A_POLICY_NAME, "missing policy name"))
		return -EINVAL;
	kvmguard_broken_sleep();
	msg = genlmsg_new(GENLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	mutex_lock(&kvmguard_config_mutex);
	policy = policy_from_attr(info);
	if (policy)
		err = policy_fill(msg, policy, info->snd_portid, info->snd_seq,
				  0, NULL);
	mutex_unlock(&kvmguard_config_mutex);
	if (err) {
		nlmsg_free(msg);
		return err;
	}
	return genlmsg_reply(msg, info);
}

/* Where a policy dump resumes: after the last name it sent. */
struct policy_dump_ctx {
	char last[KVMGUARD_NAME_MAX + 1];
};

static int policy_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct policy_dump_ctx *ctx = (struct policy_dump_ctx *)cb->ctx;
	struct kvmguard_policy *policy;
	int err = 0;

	BUILD_BUG_ON(sizeof(*ctx) > sizeof(cb->ctx));
	mutex_lock(&kvmguard_config_mutex);
	cb->seq = dump_seq(kvmguard_config_generation());
	for (policy = kvmguard_policy_after(ctx->last); policy;
	     policy = kvmguard_policy_after(policy->name)) {
		err = policy_fill(skb, policy, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, NLM_F_MULTI, cb);
		if (err)
			break;
		strscpy(ctx->last, policy->name, sizeof(ctx->last));
	}
	mutex_unlock(&kvmguard_config_mutex);
	return skb->len;
}

static int policy_del_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct kvmguard_policy *policy;
	int err = -ENOENT;

	if (missing(info, KVMGUARD_A_POLICY_NAME, "missing policy name"))
		return -EINVAL;
	mutex_lock(&kvmguard_config_mutex);
	kvmguard_pv_set_force(nla_get_flag(info->attrs[KVMGUARD_A_FORCE]));
	policy = policy_from_attr(info);
	if (policy)
		err = kvmguard_policy_delete(policy, info->extack);
	kvmguard_pv_set_force(false);
	mutex_unlock(&kvmguard_config_mutex);
	kvmguard_audit_config(&(struct kvmguard_audit_change){
		.op = "policy_del",
		.policy = nla_data(info->attrs[KVMGUARD_A_POLICY_NAME]),
		.err = err });
	return err;
}

/* Check that a binding request names exactly the selector its type needs. */
static int bind_selector(struct genl_info *info, u8 *type, const char **cgroup,
			 pid_t *pid)
{
	struct nlattr *cg = info->attrs[KVMGUARD_A_BIND_CGROUP];
	struct nlattr *pd = info->attrs[KVMGUARD_A_BIND_PID];

	if (missing(info, KVMGUARD_A_BIND_TYPE, "missing binding type"))
		return -EINVAL;
	*type = nla_get_u8(info->attrs[KVMGUARD_A_BIND_TYPE]);
	*cgroup = NULL;
	*pid = 0;
	switch (*type) {
	case KVMGUARD_BIND_DEFAULT:
		if (cg || pd) {
			NL_SET_ERR_MSG_ATTR(info->extack, cg ?: pd,
					    "a default binding takes no cgroup or pid");
			return -EINVAL;
		}
		return 0;
	case KVMGUARD_BIND_CGROUP:
		if (missing(info, KVMGUARD_A_BIND_CGROUP, "missing cgroup path"))
			return -EINVAL;
		if (pd) {
			NL_SET_ERR_MSG_ATTR(info->extack, pd,
					    "a cgroup binding takes no pid");
			return -EINVAL;
		}
		*cgroup = nla_data(cg);
		return 0;
	default:
		if (missing(info, KVMGUARD_A_BIND_PID, "missing pid"))
			return -EINVAL;
		if (cg) {
			NL_SET_ERR_MSG_ATTR(info->extack, cg,
					    "a pid binding takes no cgroup path");
			return -EINVAL;
		}
		*pid = nla_get_u32(pd);
		return 0;
	}
}

static int bind_new_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct kvmguard_policy *policy;
	const char *cgroup;
	int err = -ENOENT;
	pid_t pid;
	u8 type;

	if (bind_selector(info, &type, &cgroup, &pid) ||
	    missing(info, KVMGUARD_A_POLICY_NAME, "missing policy name"))
		return -EINVAL;
	mutex_lock(&kvmguard_config_mutex);
	kvmguard_pv_set_force(nla_get_flag(info->attrs[KVMGUARD_A_FORCE]));
	policy = policy_from_attr(info);
	if (policy)
		err = kvmguard_binding_set(type, cgroup, pid, policy,
					   info->extack);
	kvmguard_pv_set_force(false);
	mutex_unlock(&kvmguard_config_mutex);
	kvmguard_audit_config(&(struct kvmguard_audit_change){
		.op = "bind",
		.policy = nla_data(info->attrs[KVMGUARD_A_POLICY_NAME]),
		.bind_type = type, .cgroup = cgroup, .bind_pid = pid,
		.err = err });
	return err;
}

static int bind_del_doit(struct sk_buff *skb, struct genl_info *info)
{
	const char *cgroup;
	pid_t pid;
	u8 type;
	int err;

	if (bind_selector(info, &type, &cgroup, &pid))
		return -EINVAL;
	mutex_lock(&kvmguard_config_mutex);
	kvmguard_pv_set_force(nla_get_flag(info->attrs[KVMGUARD_A_FORCE]));
	err = kvmguard_binding_del(type, cgroup, pid, info->extack);
	kvmguard_pv_set_force(false);
	mutex_unlock(&kvmguard_config_mutex);
	kvmguard_audit_config(&(struct kvmguard_audit_change){
		.op = "unbind", .bind_type = type, .cgroup = cgroup,
		.bind_pid = pid, .err = err });
	return err;
}

static int binding_fill(struct sk_buff *skb, struct kvmguard_binding *binding,
			struct netlink_callback *cb)
{
	void *hdr;

	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  &kvmguard_family, NLM_F_MULTI, KVMGUARD_CMD_BIND_GET);
	if (!hdr)
		return -EMSGSIZE;
	genl_dump_check_consistent(cb, hdr);
	if (nla_put_u8(skb, KVMGUARD_A_BIND_TYPE, binding->type) ||
	    (binding->cgroup &&
	     nla_put_string(skb, KVMGUARD_A_BIND_CGROUP, binding->cgroup)) ||
	    (binding->type == KVMGUARD_BIND_PID &&
	     nla_put_u32(skb, KVMGUARD_A_BIND_PID, binding->pid_nr)) ||
	    nla_put_string(skb, KVMGUARD_A_POLICY_NAME, binding->policy->name)) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

/* The largest message of a binding dump: the longest path and name. */
#define BINDING_MSG_MAX							\
	nlmsg_total_size(GENL_HDRLEN + nla_total_size(sizeof(u8)) +	\
			 nla_total_size(KVMGUARD_CGROUP_MAX + 1) +	\
			 nla_total_size(KVMGUARD_NAME_MAX + 1))

/*
 * The first part of a dump goes into a buffer of NLMSG_GOODSIZE, less than
 * a page, unless the socket has read larger messages before: a binding of
 * the longest cgroup path would not fit, and the dump would fail with
 * EMSGSIZE. Ask for room for the largest binding message from the start.
 */
static int bind_get_start(struct netlink_callback *cb)
{
	cb->min_dump_alloc = max_t(u32, cb->min_dump_alloc, BINDING_MSG_MAX);
	return 0;
}

static int bind_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct kvmguard_binding *binding;
	unsigned long n = cb->args[0];
	int err = 0;

	mutex_lock(&kvmguard_config_mutex);
	cb->seq = dump_seq(kvmguard_config_generation());
	while ((binding = kvmguard_binding_nth(n))) {
		err = binding_fill(skb, binding, cb);
		if (err)
			break;
		n++;
	}
	mutex_unlock(&kvmguard_config_mutex);
	cb->args[0] = n;
	if (err && !skb->len)
		return err;
	return skb->len;
}

/* The device of a NET_BIND/NET_UNBIND request: by name or by index. */
static int net_dev_selector(struct genl_info *info, const char **ifname,
			    u32 *ifindex)
{
	struct nlattr *name = info->attrs[KVMGUARD_A_NET_IFNAME];
	struct nlattr *index = info->attrs[KVMGUARD_A_NET_IFINDEX];

	if (!name && !index) {
		NL_SET_ERR_MSG(info->extack,
			       "missing device: give its name or its index");
		NL_SET_ERR_ATTR_MISS(info->extack, NULL, KVMGUARD_A_NET_IFNAME);
		return -EINVAL;
	}
	if (name && index) {
		NL_SET_ERR_MSG_ATTR(info->extack, index,
				    "give the device by name or by index, not both");
		return -EINVAL;
	}
	*ifname = name ? nla_data(name) : NULL;
	*ifindex = index ? nla_get_u32(index) : 0;
	return 0;
}

static int net_bind_doit(struct sk_buff *skb, struct genl_info *info)
{
	const char *ifname;
	u32 ifindex;
	int err;

	if (missing(info, KVMGUARD_A_VM_ID, "missing VM id"))
		return -EINVAL;
	err = net_dev_selector(info, &ifname, &ifindex);
	if (err)
		return err;
	mutex_lock(&kvmguard_config_mutex);
	err = kvmguard_net_bind_request(nla_get_u64(info->attrs[KVMGUARD_A_VM_ID]),
					ifname, ifindex, info->extack);
	mutex_unlock(&kvmguard_config_mutex);
	kvmguard_audit_config(&(struct kvmguard_audit_change){
		.op = "net_bind",
		.vm = nla_get_u64(info->attrs[KVMGUARD_A_VM_ID]),
		.dev = ifname, .ifindex = ifindex, .err = err });
	return err;
}

static int net_unbind_doit(struct sk_buff *skb, struct genl_info *info)
{
	const char *ifname;
	u32 ifindex;
	int err;

	err = net_dev_selector(info, &ifname, &ifindex);
	if (err)
		return err;
	mutex_lock(&kvmguard_config_mutex);
	err = kvmguard_net_unbind_request(ifname, ifindex, info->extack);
	mutex_unlock(&kvmguard_config_mutex);
	kvmguard_audit_config(&(struct kvmguard_audit_change){
		.op = "net_unbind", .dev = ifname, .ifindex = ifindex,
		.err = err });
	return err;
}

static int net_guard_set_doit(struct sk_buff *skb, struct genl_info *info)
{
	const char *ifname;
	u32 ifindex;
	int err;

	if (missing(info, KVMGUARD_A_NET_GUARD, "missing guard: on (1) or off (0)"))
		return -EINVAL;
	err = net_dev_selector(info, &ifname, &ifindex);
	if (err)
		return err;
	mutex_lock(&kvmguard_config_mutex);
	err = kvmguard_net_guard_request(ifname, ifindex,
					 nla_get_u8(info->attrs[KVMGUARD_A_NET_GUARD]),
					 info->extack);
	mutex_unlock(&kvmguard_config_mutex);
	kvmguard_audit_config(&(struct kvmguard_audit_change){
		.op = nla_get_u8(info->attrs[KVMGUARD_A_NET_GUARD]) ?
		      "net_guard_on" : "net_guard_off",
		.dev = ifname, .ifindex = ifindex, .err = err });
	return err;
}

/* One message per guarded bridge; cb->args[0]: the next one's position. */
static int net_guard_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct kvmguard_guard_info gi;
	unsigned long n = cb->args[0];
	void *hdr;

	while (kvmguard_net_guard_nth(n, &gi)) {
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, &kvmguard_family,
				  NLM_F_MULTI, KVMGUARD_CMD_NET_GUARD_GET);
		if (!hdr)
			break;
		if (nla_put_u32(skb, KVMGUARD_A_NET_IFINDEX, gi.ifindex) ||
		    nla_put_string(skb, KVMGUARD_A_NET_IFNAME, gi.ifname) ||
		    nla_put_u8(skb, KVMGUARD_A_NET_GUARD, 1) ||
		    nla_put_u32(skb, KVMGUARD_A_NET_GUARD_PORTS, gi.ports) ||
		    nla_put_u64_64bit(skb, KVMGUARD_A_NET_GUARD_DROPPED,
				      gi.dropped, KVMGUARD_A_PAD)) {
			genlmsg_cancel(skb, hdr);
			break;
		}
		genlmsg_end(skb, hdr);
		n++;
	}
	if (n == cb->args[0] && kvmguard_net_guard_nth(n, &gi))
		return -EMSGSIZE;	/* one guard does not fit a message */
	cb->args[0] = n;
	return skb->len;
}

/* A memory rule's answer for VM_CHECK; see the uapi header. */
static int vm_check_fill(struct sk_buff *skb, struct genl_info *info,
			 struct kvmguard_vm *vm,
			 const struct kvmguard_mem_check *c)
{
	void *hdr;

	hdr = genlmsg_put(skb, info->snd_portid, info->snd_seq,
			  &kvmguard_family, 0, KVMGUARD_CMD_VM_CHECK);
	if (!hdr)
		return -EMSGSIZE;
	if (nla_put_u64_64bit(skb, KVMGUARD_A_VM_ID, vm->id, KVMGUARD_A_PAD) ||
	    nla_put_u8(skb, KVMGUARD_A_CHECK_RULE, c->rule) ||
	    nla_put_u8(skb, KVMGUARD_A_CHECK_VERDICT, c->verdict) ||
	    nla_put_u8(skb, KVMGUARD_A_POLICY_MODE, c->mode) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_CHECK_LIMIT, c->limit,
			      KVMGUARD_A_PAD) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_CHECK_USED, c->used,
			      KVMGUARD_A_PAD) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_CHECK_TOTAL, c->total,
			      KVMGUARD_A_PAD))
		goto cancel;
	if (put_vm_policy_name(skb, vm))
		goto cancel;
	genlmsg_end(skb, hdr);
	return 0;

cancel:
	genlmsg_cancel(skb, hdr);
	return -EMSGSIZE;
}

static int vm_check_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **attrs = info->attrs;
	struct kvmguard_mem_check c = {};
	struct kvmguard_vm *vm;
	struct sk_buff *msg;
	int err;

	if (missing(info, KVMGUARD_A_VM_ID, "missing VM id") ||
	    missing(info, KVMGUARD_A_CHECK_RULE, "missing the rule to check"))
		return -EINVAL;
	c.rule = nla_get_u8(attrs[KVMGUARD_A_CHECK_RULE]);
	c.all = nla_get_flag(attrs[KVMGUARD_A_CHECK_ALL]);
	if (c.rule != KVMGUARD_MEM_RULE_LIMIT &&
	    c.rule != KVMGUARD_MEM_RULE_DIRTY_LOG) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[KVMGUARD_A_CHECK_RULE],
				    "only the memory limit and the dirty-log budget can be checked");
		return -EINVAL;
	}
	if (c.all && c.rule != KVMGUARD_MEM_RULE_DIRTY_LOG) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[KVMGUARD_A_CHECK_ALL],
				    "all of the VM's memory: for the dirty-log budget only");
		return -EINVAL;
	}
	if (c.all && attrs[KVMGUARD_A_CHECK_BYTES]) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[KVMGUARD_A_CHECK_BYTES],
				    "give a size or all of the VM's memory, not both");
		return -EINVAL;
	}
	if (!c.all && missing(info, KVMGUARD_A_CHECK_BYTES,
			      "missing the size to check"))
		return -EINVAL;
	if (!c.all)
		c.bytes = nla_get_u64(attrs[KVMGUARD_A_CHECK_BYTES]);
	vm = kvmguard_vm_get_by_id(nla_get_u64(attrs[KVMGUARD_A_VM_ID]));
	if (!vm) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[KVMGUARD_A_VM_ID],
				    "no VM with that id");
		return -ENOENT;
	}
	err = kvmguard_mem_check(vm, &c);
	if (err == -ENOENT)
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[KVMGUARD_A_VM_ID],
				    "the VM is being destroyed");
	msg = err ? NULL : genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!err && !msg)
		err = -ENOMEM;
	if (!err)
		err = vm_check_fill(msg, info, vm, &c);
	kvmguard_vm_put(vm);
	if (err) {
		nlmsg_free(msg);
		return err;
	}
	return genlmsg_reply(msg, info);
}

static const struct genl_ops kvmguard_ops[] = {
	{
		.cmd = KVMGUARD_CMD_VM_GET,
		.start = vm_get_start,
		.doit = vm_get_doit,
		.dumpit = vm_get_dumpit,
		.policy = vm_get_policy,
		.maxattr = KVMGUARD_A_MAX,
		.flags = GENL_ADMIN_PERM,
	}, {
		.cmd = KVMGUARD_CMD_VM_SET,
		.doit = vm_set_doit,
		.policy = vm_set_policy,
		.maxattr = KVMGUARD_A_MAX,
		.flags = GENL_ADMIN_PERM,
	}, {
		.cmd = KVMGUARD_CMD_POLICY_NEW,
		.doit = policy_new_doit,
		.policy = policy_edit_policy,
		.maxattr = KVMGUARD_A_MAX,
		.flags = GENL_ADMIN_PERM,
	}, {
		.cmd = KVMGUARD_CMD_POLICY_SET,
		.doit = policy_set_doit,
		.policy = policy_edit_policy,
		.maxattr = KVMGUARD_A_MAX,
		.flags = GENL_ADMIN_PERM,
	}, {
		.cmd = KVMGUARD_CMD_POLICY_GET,
		.doit = policy_get_doit,
		.dumpit = policy_get_dumpit,
		.policy = policy_name_policy,
		.maxattr = KVMGUARD_A_MAX,
		.flags = GENL_ADMIN_PERM,
	}, {
		.cmd = KVMGUARD_CMD_POLICY_DEL,
		.doit = policy_del_doit,
		.policy = policy_name_policy,
		.maxattr = KVMGUARD_A_MAX,
		.flags = GENL_ADMIN_PERM,
	}, {
		.cmd = KVMGUARD_CMD_BIND_NEW,
		.doit = bind_new_doit,
		.policy = bind_policy,
		.maxattr = KVMGUARD_A_MAX,
		.flags = GENL_ADMIN_PERM,
	}, {
		.cmd = KVMGUARD_CMD_BIND_DEL,
		.doit = bind_del_doit,
		.policy = bind_del_policy,
		.maxattr = KVMGUARD_A_MAX,
		.flags = GENL_ADMIN_PERM,
	}, {
		.cmd = KVMGUARD_CMD_BIND_GET,
		.start = bind_get_start,
		.dumpit = bind_get_dumpit,
		.policy = empty_policy,
		.maxattr = KVMGUARD_A_MAX,
		.flags = GENL_ADMIN_PERM,
	}, {
		.cmd = KVMGUARD_CMD_NET_BIND,
		.doit = net_bind_doit,
		.policy = net_bind_policy,
		.maxattr = KVMGUARD_A_MAX,
		.flags = GENL_ADMIN_PERM,
	}, {
		.cmd = KVMGUARD_CMD_NET_UNBIND,
		.doit = net_unbind_doit,
		.policy = net_unbind_policy,
		.maxattr = KVMGUARD_A_MAX,
		.flags = GENL_ADMIN_PERM,
	}, {
		.cmd = KVMGUARD_CMD_NET_GUARD_SET,
		.doit = net_guard_set_doit,
		.policy = net_guard_set_policy,
		.maxattr = KVMGUARD_A_MAX,
		.flags = GENL_ADMIN_PERM,
	}, {
		.cmd = KVMGUARD_CMD_NET_GUARD_GET,
		.dumpit = net_guard_get_dumpit,
		.policy = empty_policy,
		.maxattr = KVMGUARD_A_MAX,
		.flags = GENL_ADMIN_PERM,
	}, {
		/* Reads only, but about other users' VMs: admins too. */
		.cmd = KVMGUARD_CMD_VM_CHECK,
		.doit = vm_check_doit,
		.policy = vm_check_policy,
		.maxattr = KVMGUARD_A_MAX,
		.flags = GENL_ADMIN_PERM,
	},
};

enum kvmguard_mcgrp {
	KVMGUARD_MCGRP_EVENTS_ID,
};

static const struct genl_multicast_group kvmguard_mcgrps[] = {
	[KVMGUARD_MCGRP_EVENTS_ID] = {
		.name = KVMGUARD_MCGRP_EVENTS,
		/* Events name processes and VMs: administrators only. */
		.flags = GENL_MCAST_CAP_NET_ADMIN,
	},
};

static struct genl_family kvmguard_family __ro_after_init = {
	.name = KVMGUARD_GENL_NAME,
	.version = KVMGUARD_GENL_VERSION,
	.module = THIS_MODULE,
	.ops = kvmguard_ops,
	.n_ops = ARRAY_SIZE(kvmguard_ops),
	/* Strict header and attribute validation for every command. */
	.resv_start_op = KVMGUARD_CMD_UNSPEC + 1,
	.mcgrps = kvmguard_mcgrps,
	.n_mcgrps = ARRAY_SIZE(kvmguard_mcgrps),
};

/*
 * An event about @vm, ready for its type's own attributes, or NULL when
 * nobody listens. May run in atomic context (the hooks).
 */
static struct sk_buff *event_start(const struct kvmguard_vm *vm, u8 event,
				   void **hdr)
{
	struct sk_buff *skb;

	/* Acquire: pairs with kvmguard_netlink_init(), for the group offset. */
	if (!smp_load_acquire(&events_on) ||
	    !genl_has_listeners(&kvmguard_family, &init_net,
				KVMGUARD_MCGRP_EVENTS_ID))
		return NULL;
	skb = genlmsg_new(NLMSG_GOODSIZE, GFP_ATOMIC);
	if (!skb)
		return NULL;
	*hdr = genlmsg_put(skb, 0, 0, &kvmguard_family, 0, KVMGUARD_CMD_EVENT);
	if (!*hdr)
		goto fail;
	if (nla_put_u8(skb, KVMGUARD_A_EVENT_TYPE, event) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_EVENT_TIME_NS, ktime_get_real_ns(),
			      KVMGUARD_A_PAD) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_VM_ID, vm->id, KVMGUARD_A_PAD) ||
	    nla_put_u32(skb, KVMGUARD_A_VM_PID, vm->pid_nr) ||
	    nla_put_string(skb, KVMGUARD_A_VM_COMM, vm->comm))
		goto fail;
	if (put_vm_policy_name(skb, vm))
		goto fail;
	return skb;

fail:
	nlmsg_free(skb);
	return NULL;
}

static void event_send(struct sk_buff *skb, void *hdr)
{
	genlmsg_end(skb, hdr);
	rcu_read_lock();
	if (READ_ONCE(events_on))
		genlmsg_multicast(&kvmguard_family, skb, 0,
				  KVMGUARD_MCGRP_EVENTS_ID, GFP_ATOMIC);
	else
		nlmsg_free(skb);
	rcu_read_unlock();
}

void kvmguard_notify_vm(const struct kvmguard_vm *vm, u8 event)
{
	struct sk_buff *skb;
	void *hdr;

	skb = event_start(vm, event, &hdr);
	if (skb)
		event_send(skb, hdr);
}

/*
 * Count a violation in @r and tell whether to report it now: at most once a
 * second, so a guest looping on a refused operation floods neither netlink
 * nor the kernel log. Returns how many violations the report stands for
 * (those held back since the last one included), or 0 to stay quiet.
 */
u64 kvmguard_report_due(struct kvmguard_report *r)
{
	unsigned long now = jiffies;
	u64 count;

	r->pending++;
	if (r->last && time_before(now, r->last + HZ))
		return 0;
	count = r->pending;
	r->pending = 0;
	r->last = now ?: 1;
	return count;
}

void kvmguard_notify_violation(const struct kvmguard_vm *vm, u8 event,
			       u64 nr, u8 action, u64 count)
{
	struct sk_buff *skb;
	void *hdr;

	kvmguard_audit_violation(vm, event == KVMGUARD_EVENT_HYPERCALL ?
				 "hypercall" : event == KVMGUARD_EVENT_HYPERV ?
				 "hyperv" : "xen",
				 event == KVMGUARD_EVENT_HYPERCALL ? (s64)nr : -1,
				 action, count, NULL, NULL);
	skb = event_start(vm, event, &hdr);
	if (!skb)
		return;
	if ((event == KVMGUARD_EVENT_HYPERCALL &&
	     nla_put_u64_64bit(skb, KVMGUARD_A_EVENT_HC_NR, nr, KVMGUARD_A_PAD)) ||
	    (event == KVMGUARD_EVENT_HYPERV &&
	     nla_put_u16(skb, KVMGUARD_A_EVENT_HV_CODE, nr)) ||
	    nla_put_u8(skb, KVMGUARD_A_EVENT_ACTION, action) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_EVENT_COUNT, count,
			      KVMGUARD_A_PAD)) {
		nlmsg_free(skb);
		return;
	}
	event_send(skb, hdr);
}

/* @slot < 0: the violation was not a memslot change. */
static void notify_mem(const struct kvmguard_vm *vm, u8 rule, u8 action,
		       u64 count, s64 slot, u64 bytes, bool vmm_default)
{
	static const char * const rules[] = {
		[KVMGUARD_MEM_RULE_LIMIT] = "mem_limit",
		[KVMGUARD_MEM_RULE_SHARED] = "mem_shared",
		[KVMGUARD_MEM_RULE_KSM] = "mem_ksm",
		[KVMGUARD_MEM_RULE_DIRTY_LOG] = "mem_dirty_log",
	};
	struct sk_buff *skb;
	void *hdr;

	kvmguard_audit_violation(vm, rule < ARRAY_SIZE(rules) && rules[rule] ?
				 rules[rule] : "mem", -1, action, count, NULL,
				 NULL);
	skb = event_start(vm, KVMGUARD_EVENT_MEMORY, &hdr);
	if (!skb)
		return;
	if (nla_put_u8(skb, KVMGUARD_A_EVENT_MEM_RULE, rule) ||
	    nla_put_u8(skb, KVMGUARD_A_EVENT_ACTION, action) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_EVENT_COUNT, count,
			      KVMGUARD_A_PAD) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_EVENT_MEM_BYTES, bytes,
			      KVMGUARD_A_PAD) ||
	    (slot >= 0 && nla_put_u32(skb, KVMGUARD_A_EVENT_MEM_SLOT, slot)) ||
	    (vmm_default && nla_put_u8(skb, KVMGUARD_A_EVENT_VMM_DEFAULT, 1))) {
		nlmsg_free(skb);
		return;
	}
	event_send(skb, hdr);
}

void kvmguard_notify_mem(const struct kvmguard_vm *vm, u8 rule, u8 action,
			 u64 count, s64 slot, u64 bytes)
{
	notify_mem(vm, rule, action, count, slot, bytes, false);
}

void kvmguard_notify_mem_vmm_default(const struct kvmguard_vm *vm, u8 rule,
				     u8 action, u64 bytes)
{
	notify_mem(vm, rule, action, 1, -1, bytes, true);
}

void kvmguard_notify_net(const struct kvmguard_vm *vm, u8 rule, u8 dir,
			 u8 action, u64 count, const struct net_device *dev,
			 int vid)
{
	static const char * const rules[] = {
		[KVMGUARD_NET_RULE_TAG] = "net_tag",
		[KVMGUARD_NET_RULE_SEGMENT] = "net_segment",
		[KVMGUARD_NET_RULE_ISOLATE] = "net_isolate",
	};
	struct sk_buff *skb;
	void *hdr;

	kvmguard_audit_violation(vm, rule < ARRAY_SIZE(rules) && rules[rule] ?
				 rules[rule] : "net", -1, action, count, dev,
				 NULL);
	skb = event_start(vm, KVMGUARD_EVENT_NET, &hdr);
	if (!skb)
		return;
	if (nla_put_u8(skb, KVMGUARD_A_EVENT_NET_RULE, rule) ||
	    nla_put_u8(skb, KVMGUARD_A_EVENT_NET_DIR, dir) ||
	    nla_put_u8(skb, KVMGUARD_A_EVENT_ACTION, action) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_EVENT_COUNT, count,
			      KVMGUARD_A_PAD) ||
	    nla_put_u32(skb, KVMGUARD_A_NET_IFINDEX, dev->ifindex) ||
	    nla_put_string(skb, KVMGUARD_A_NET_IFNAME, dev->name) ||
	    (vid >= 0 && nla_put_u16(skb, KVMGUARD_A_EVENT_NET_VID, vid))) {
		nlmsg_free(skb);
		return;
	}
	event_send(skb, hdr);
}

/*
 * An event about no VM: a frame dropped at unbound @port (NULL: the guard
 * of @bridge ended). May run in atomic context (the hooks).
 */
void kvmguard_notify_guard(u8 event, const struct net_device *port,
			   const struct net_device *bridge, u8 dir, u64 count)
{
	struct sk_buff *skb;
	void *hdr;

	if (port)
		kvmguard_audit_violation(NULL, "net_guard", -1,
					 KVMGUARD_ACTION_DENIED, count, port,
					 bridge);
	/* Acquire: as in event_start(). */
	if (!smp_load_acquire(&events_on) ||
	    !genl_has_listeners(&kvmguard_family, &init_net,
				KVMGUARD_MCGRP_EVENTS_ID))
		return;
	skb = genlmsg_new(NLMSG_GOODSIZE, GFP_ATOMIC);
	if (!skb)
		return;
	hdr = genlmsg_put(skb, 0, 0, &kvmguard_family, 0, KVMGUARD_CMD_EVENT);
	if (!hdr ||
	    nla_put_u8(skb, KVMGUARD_A_EVENT_TYPE, event) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_EVENT_TIME_NS, ktime_get_real_ns(),
			      KVMGUARD_A_PAD))
		goto fail;
	if (!port) {
		if (nla_put_u32(skb, KVMGUARD_A_NET_IFINDEX, bridge->ifindex) ||
		    nla_put_string(skb, KVMGUARD_A_NET_IFNAME, bridge->name))
			goto fail;
	} else if (nla_put_u32(skb, KVMGUARD_A_NET_IFINDEX, port->ifindex) ||
		   nla_put_string(skb, KVMGUARD_A_NET_IFNAME, port->name) ||
		   nla_put_string(skb, KVMGUARD_A_NET_BRIDGE, bridge->name) ||
		   nla_put_u8(skb, KVMGUARD_A_EVENT_NET_DIR, dir) ||
		   nla_put_u8(skb, KVMGUARD_A_EVENT_ACTION,
			      KVMGUARD_ACTION_DENIED) ||
		   nla_put_u64_64bit(skb, KVMGUARD_A_EVENT_COUNT, count,
				     KVMGUARD_A_PAD)) {
		goto fail;
	}
	event_send(skb, hdr);
	return;

fail:
	nlmsg_free(skb);
}

/* Last of the start-up: from here on, requests arrive. */
int kvmguard_netlink_init(void)
{
	int err;

	if (kvmguard_fault(KVMGUARD_FAULT_GENL_FAMILY))
		return -ENOMEM;
	err = genl_register_family(&kvmguard_family);
	if (err) {
		pr_err("cannot register the generic netlink family: %d\n", err);
		return err;
	}
	/* Published after the family's group offset. */
	smp_store_release(&events_on, true);
	return 0;
}

/*
 * First of the unloading: returns once no request is in progress (they run
 * under the genetlink mutex, which unregistering takes) and none can come,
 * so no policy edit attaches a hook after this, and no event is in flight.
 */
void kvmguard_netlink_uninit(void)
{
	WRITE_ONCE(events_on, false);
	synchronize_rcu();
	genl_unregister_family(&kvmguard_family);
}
