// SPDX-License-Identifier: GPL-2.0
/*
 * Records in the kernel audit log: every configuration change and every
 * violation report, so that auditd or journald carry them off the host the
 * way they carry nftables' NETFILTER_CFG records.
 *
 * Type: AUDIT_KERNEL_OTHER, which include/uapi/linux/audit.h reserves "for
 * use by 3rd party modules". No kernel type names a KVM host's policy: the
 * AUDIT_ANOM_* types each name one anomaly of their own (promiscuous mode,
 * abnormal end, links, file creation) that ausearch and aureport report as
 * such, and a number of our own would be unnamed to auparse and could meet
 * a future type. The op field tells the records apart: a change is op=
 * policy_new, policy_set, policy_del, bind, unbind, vm_set, net_bind,
 * net_unbind or net_guard; a violation is op=violation.
 *
 * Fields (key=value, strings quoted, or in hex where a value holds a blank,
 * a quote or a byte outside printable ASCII, as audit does):
 *   change:    op policy vm pid auid ses comm [bind cgroup|target_pid]
 *              [dev|ifindex] [reason] res err
 *   violation: op policy vm pid comm rule [nr] action count [dev bridge]
 *              res
 * pid and comm of a change are the requesting process's (auid and ses its
 * login); of a violation, the VM's creator (as on the events group).
 * res=1: the change was made, or the violation was only audited (audit
 * mode, the operation went ahead); res=0: refused. A violation record
 * stands for count violations: records are rate-limited with the events,
 * once a second per VM and kind (kvmguard_report_due()).
 *
 * Like nftables, nothing is written while audit is off (audit_enabled:
 * auditd turns it on, as do audit=1 and auditctl -e 1).
 */
#include <linux/audit.h>
#include <linux/cred.h>
#include <linux/netdevice.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uidgid.h>

#include "kvmguard.h"

/* Does @s need hex, as audit_string_contains_control() would say? */
static bool needs_hex(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] == '"' || s[i] < 0x21 || s[i] > 0x7e)
			return true;
	return false;
}

/*
 * key="value", or key=HEX for a value an attacker may choose (a process
 * name, a cgroup path, a device name). Atomic context allowed.
 */
static void log_string(struct audit_buffer *ab, const char *key,
		       const char *s)
{
	size_t len = s ? strlen(s) : 0;
	char hex[33];		/* 16 bytes at a time */
	size_t i, k;

	if (!s) {
		audit_log_format(ab, " %s=?", key);
		return;
	}
	if (!needs_hex(s, len)) {
		audit_log_format(ab, " %s=\"%s\"", key, s);
		return;
	}
	audit_log_format(ab, " %s=", key);
	for (i = 0; i < len; ) {
		for (k = 0; k < 16 && i < len; k++, i++)
			snprintf(hex + 2 * k, 3, "%02X", (u8)s[i]);
		audit_log_format(ab, "%s", hex);
	}
}

static const char * const bind_names[] = {
	[KVMGUARD_BIND_DEFAULT] = "default",
	[KVMGUARD_BIND_CGROUP] = "cgroup",
	[KVMGUARD_BIND_PID] = "pid",
};

void kvmguard_audit_config(const struct kvmguard_audit_change *c)
{
	struct audit_buffer *ab;
	char comm[TASK_COMM_LEN];

	if (!audit_enabled)
		return;
	ab = audit_log_start(audit_context(), GFP_KERNEL, AUDIT_KERNEL_OTHER);
	if (!ab)
		return;
	audit_log_format(ab, "op=%s", c->op);
	log_string(ab, "policy", c->policy);
	if (c->vm)
		audit_log_format(ab, " vm=%llu", c->vm);
	else
		audit_log_format(ab, " vm=?");
	get_task_comm(comm, current);
	audit_log_format(ab, " pid=%d auid=%u ses=%u", task_tgid_nr(current),
			 from_kuid(&init_user_ns, audit_get_loginuid(current)),
			 audit_get_sessionid(current));
	log_string(ab, "comm", comm);
	if (c->bind_type > 0 && c->bind_type < ARRAY_SIZE(bind_names)) {
		audit_log_format(ab, " bind=%s", bind_names[c->bind_type]);
		if (c->bind_type == KVMGUARD_BIND_CGROUP)
			log_string(ab, "cgroup", c->cgroup);
		else if (c->bind_type == KVMGUARD_BIND_PID)
			audit_log_format(ab, " target_pid=%d", c->bind_pid);
	}
	if (c->dev)
		log_string(ab, "dev", c->dev);
	if (c->ifindex)
		audit_log_format(ab, " ifindex=%u", c->ifindex);
	if (c->reason)
		audit_log_format(ab, " reason=%s", c->reason);
	audit_log_format(ab, " res=%d err=%d", !c->err, c->err);
	audit_log_end(ab);
}

void kvmguard_audit_violation(const struct kvmguard_vm *vm, const char *rule,
			      s64 nr, u8 action, u64 count,
			      const struct net_device *dev,
			      const struct net_device *bridge)
{
	struct kvmguard_policy *policy;
	struct audit_buffer *ab;

	if (!audit_enabled)
		return;
	/* Any context, a hook's: no syscall record to join. */
	ab = audit_log_start(NULL, GFP_ATOMIC, AUDIT_KERNEL_OTHER);
	if (!ab)
		return;
	audit_log_format(ab, "op=violation");
	if (vm) {
		rcu_read_lock();
		policy = rcu_dereference(vm->policy);
		log_string(ab, "policy", policy ? policy->name : NULL);
		rcu_read_unlock();
		audit_log_format(ab, " vm=%llu pid=%d", vm->id, vm->pid_nr);
		log_string(ab, "comm", vm->comm);
	} else {
		audit_log_format(ab, " policy=? vm=? pid=? comm=?");
	}
	audit_log_format(ab, " rule=%s", rule);
	if (nr >= 0)
		audit_log_format(ab, " nr=%lld", nr);
	audit_log_format(ab, " action=%s count=%llu",
			 action == KVMGUARD_ACTION_AUDITED ? "audit" : "deny",
			 count);
	if (dev)
		log_string(ab, "dev", dev->name);
	if (bridge)
		log_string(ab, "bridge", bridge->name);
	audit_log_format(ab, " res=%d", action == KVMGUARD_ACTION_AUDITED);
	audit_log_end(ab);
}
