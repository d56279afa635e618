/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kvmguard: per-VM isolation rules for KVM hosts.
 *
 * Generic netlink ABI, family KVMGUARD_GENL_NAME, version KVMGUARD_GENL_VERSION.
 *
 * Every operation needs CAP_NET_ADMIN in the initial user namespace and is
 * only available in the initial network namespace. Every request is
 * validated strictly against the policy of its command: an attribute the
 * command does not take, a wrong type or length is refused with EINVAL, a
 * number out of range with ERANGE, each with an extended-ack message and
 * the offending attribute.
 *
 * Attributes share one flat space (enum kvmguard_attr); each command lists
 * below which ones it takes (in) and which ones its replies carry (out).
 *
 * Objects:
 *  - VM: every KVM virtual machine on the host, known from its creation (or
 *    from module load, for VMs that already existed) until its destruction.
 *    Identified by a u64 id that increases monotonically and is never reused
 *    while the module stays loaded.
 *  - Policy: a named set of rules (a name of 1..31 bytes made of letters,
 *    digits, '.', '_' and '-'). Rules of later ABI revisions are new
 *    attributes of the policy commands; a kernel that does not know one
 *    refuses it.
 *  - Binding: which policy a new VM gets. When a VM is created the policy is
 *    resolved once: a binding of the creator's pid (thread-group id) first,
 *    then the cgroup binding whose path is the longest prefix (by whole path
 *    components) of the creator's cgroup v2 path, then the default binding;
 *    no match means no policy (nothing is restricted). An edit of a policy
 *    applies at once to every VM that uses it.
 */
#ifndef _UAPI_LINUX_KVMGUARD_H
#define _UAPI_LINUX_KVMGUARD_H

#include <linux/types.h>

#define KVMGUARD_GENL_NAME	"kvmguard"
#define KVMGUARD_GENL_VERSION	1
#define KVMGUARD_MCGRP_EVENTS	"events"

/* Longest policy or domain name, in bytes, without the terminating NUL. */
#define KVMGUARD_NAME_MAX	31
/* Longest cgroup path, in bytes, without the terminating NUL. */
#define KVMGUARD_CGROUP_MAX	4095
/* POLICY_MEM_MAX and POLICY_MEM_DIRTY_MAX value that sets no limit. */
#define KVMGUARD_MEM_UNLIMITED	(~(__u64)0)
/* Highest 802.1Q VID a rule may name (0 and 4095 are reserved). */
#define KVMGUARD_NET_VID_MAX	4094
/* Bytes of a POLICY_NET_TRUNK bitmap: one bit per VID 0..4095. */
#define KVMGUARD_NET_TRUNK_BYTES	512

/**
 * enum kvmguard_cmd - generic netlink commands
 *
 * @KVMGUARD_CMD_VM_GET: doit: in VM_ID; out one VM message.
 *	dumpit: no attributes; out one VM message per VM, by increasing id.
 *	A VM message carries VM_ID, VM_PID, VM_COMM, VM_CGROUP, VM_CREATED_NS,
 *	VM_VCPUS, VM_MEMSLOTS, VM_MEM_BYTES, VM_FLAGS, VM_BOUND_BY, VM_HC_STATS,
 *	VM_HV_ALLOWED, VM_HV_DENIED, VM_MEM_SHARED_BYTES, VM_MEM_DIRTY_BYTES,
 *	VM_MEM_LIMIT_DENIED, VM_MEM_SHARED_DENIED, VM_MEM_KSM_DENIED,
 *	VM_MEM_DIRTY_DENIED, VM_MEM_KSM_MADVISE, VM_NET_DEVS and, when it has
 *	one, POLICY_NAME.
 * @KVMGUARD_CMD_VM_SET: in VM_ID and POLICY_NAME: the running VM uses that
 *	policy from now on (VM_BOUND_BY becomes KVMGUARD_BOUND_EXPLICIT).
 *	EBUSY if the policy enforces POLICY_MEM_KSM deny and the VM's process
 *	has memory marked mergeable (see KVMGUARD_A_POLICY_MEM_KSM).
 * @KVMGUARD_CMD_POLICY_NEW: in POLICY_NAME and optional rules: POLICY_MODE
 *	(default enforce), POLICY_DOMAIN (default none), POLICY_HC_RESTRICT
 *	with POLICY_HC_ALLOW (default: every hypercall allowed),
 *	POLICY_HYPERV and POLICY_XEN (default allow), POLICY_MEM_MAX and
 *	POLICY_MEM_DIRTY_MAX
 *	(default KVMGUARD_MEM_UNLIMITED), POLICY_MEM_SHARED and POLICY_MEM_KSM
 *	(default allow), POLICY_NET_TAG (default 0: none), POLICY_NET_TRUNK
 *	(default empty), POLICY_NET_ISOLATE (default 0). EEXIST if the name
 *	is taken.
 * @KVMGUARD_CMD_POLICY_SET: in POLICY_NAME and any of the rules; changes
 *	only the attributes given. ENOENT if unknown. An empty POLICY_DOMAIN
 *	clears the domain. EBUSY, changing nothing, if the edit would make
 *	POLICY_MEM_KSM deny enforced for a VM whose process has memory marked
 *	mergeable.
 *	In POLICY_NEW and POLICY_SET, POLICY_HC_ALLOW needs POLICY_HC_RESTRICT
 *	set to 1 in the same request.
 * @KVMGUARD_CMD_POLICY_GET: doit: in POLICY_NAME; dumpit: no attributes,
 *	policies by name (byte order). Out: POLICY_NAME, POLICY_MODE,
 *	POLICY_DOMAIN (when set), POLICY_HC_RESTRICT, POLICY_HC_ALLOW,
 *	POLICY_HYPERV, POLICY_MEM_MAX, POLICY_MEM_SHARED, POLICY_MEM_KSM,
 *	POLICY_MEM_DIRTY_MAX, POLICY_NET_TAG, POLICY_NET_TRUNK,
 *	POLICY_NET_ISOLATE, POLICY_XEN, POLICY_VMS, POLICY_BINDINGS. Every rule
 *	attribute the module knows is reported, at its default too, so a
 *	caller can tell which rules a module supports.
 * @KVMGUARD_CMD_POLICY_DEL: in POLICY_NAME. EBUSY while a binding names it.
 *	VMs that used it are resolved again against the current bindings;
 *	EBUSY, changing nothing, if that would put a VM whose process has
 *	mergeable memory under an enforced POLICY_MEM_KSM deny.
 * @KVMGUARD_CMD_BIND_NEW: in BIND_TYPE, BIND_CGROUP (cgroup bindings, an
 *	absolute path such as "/machine.slice") or BIND_PID (pid bindings; the
 *	process must exist), and POLICY_NAME. A binding with the same selector
 *	is replaced.
 * @KVMGUARD_CMD_BIND_DEL: in BIND_TYPE and its selector. ENOENT if none.
 * @KVMGUARD_CMD_BIND_GET: dumpit only: default first, then cgroup bindings
 *	by path, then pid bindings by pid. Out: BIND_TYPE, BIND_CGROUP or
 *	BIND_PID, POLICY_NAME.
 * @KVMGUARD_CMD_EVENT: multicast on KVMGUARD_MCGRP_EVENTS only (never a
 *	request). Carries EVENT_TYPE, EVENT_TIME_NS and the attributes of its
 *	type: every event carries VM_ID, VM_PID, VM_COMM and POLICY_NAME (when
 *	the VM has one); HYPERCALL adds EVENT_HC_NR, EVENT_ACTION and
 *	EVENT_COUNT; HYPERV adds EVENT_HV_CODE, EVENT_ACTION and EVENT_COUNT;
 *	MEMORY adds EVENT_MEM_RULE, EVENT_ACTION, EVENT_COUNT,
 *	EVENT_MEM_BYTES, for a memslot change EVENT_MEM_SLOT and, for a VMM's
 *	default request, EVENT_VMM_DEFAULT; NET adds EVENT_NET_RULE, EVENT_NET_DIR,
 *	EVENT_ACTION, EVENT_COUNT, NET_IFINDEX, NET_IFNAME and, for a tagged
 *	frame, EVENT_NET_VID (its outer VID); XEN adds EVENT_ACTION and
 *	EVENT_COUNT.
 * @KVMGUARD_CMD_NET_BIND: in VM_ID and NET_IFNAME or NET_IFINDEX (a device
 *	of the initial network namespace): the device is the VM's network
 *	port from now on, for VMMs that do virtio-net in userspace. The
 *	device must be a tap (tun in IFF_TAP mode) or a macvtap. ENOENT: no
 *	such VM; ENODEV: no such device; EOPNOTSUPP: another kind of device;
 *	EBUSY: it is bound to another VM. Binding it again to the same VM
 *	changes nothing. Devices a VMM attaches as a vhost-net backend
 *	(VHOST_NET_SET_BACKEND) are bound without this.
 * @KVMGUARD_CMD_NET_UNBIND: in NET_IFNAME or NET_IFINDEX. ENODEV: no such
 *	device; ENOENT: it is not bound.
 * @KVMGUARD_CMD_NET_GUARD_SET: in NET_IFNAME or NET_IFINDEX (a Linux bridge
 *	of the initial network namespace) and NET_GUARD: 1 makes the bridge a
 *	guarded segment, 0 ends that. While it is guarded, a tap that is a
 *	port of the bridge, or a macvtap on it, and is not bound to a VM
 *	passes no frame, either way: each is dropped, counted
 *	(NET_GUARD_DROPPED) and reported (EVENT_NET_GUARD). A device bound to
 *	a VM has its VM's rules; unbound again, it is guarded again. ENODEV:
 *	no such device; EOPNOTSUPP: not a bridge; ENOMEM, or the error of a
 *	hook that cannot attach to one of its unbound ports, changing
 *	nothing. Guarding a guarded bridge again, or ending the guard of one
 *	that has none, changes nothing. The guard ends when the bridge is
 *	deleted or leaves the namespace (EVENT_NET_GUARD_END).
 * @KVMGUARD_CMD_NET_GUARD_GET: dumpit only, no attributes: one message per
 *	guarded bridge with NET_IFINDEX, NET_IFNAME, NET_GUARD (1),
 *	NET_GUARD_PORTS and NET_GUARD_DROPPED.
 * @KVMGUARD_CMD_VM_CHECK: ask before acting; changes nothing. In VM_ID,
 *	CHECK_RULE (KVMGUARD_MEM_RULE_LIMIT or KVMGUARD_MEM_RULE_DIRTY_LOG)
 *	and either CHECK_BYTES (that many bytes more: a memslot of new
 *	memory, or dirty tracking of memory not tracked now) or, for
 *	DIRTY_LOG only, CHECK_ALL (tracking all of the VM's memory, as a
 *	migration or a save does). Out: VM_ID, CHECK_RULE, CHECK_VERDICT,
 *	POLICY_MODE, CHECK_LIMIT, CHECK_USED, CHECK_TOTAL and, when the VM
 *	has one, POLICY_NAME: would the change be refused by the VM's policy
 *	as it is now. Counted as the memslot rules count (host memory once),
 *	with the bytes asked taken as distinct from those counted. ENOENT:
 *	no such VM; EINVAL: another rule, or a missing or extra attribute.
 *	The answer holds at the moment asked: a policy edit, or the VMM
 *	mapping more memory, changes it.
 *
 * Dumps may take several messages; when the state changed between two of
 * them the later message carries NLM_F_DUMP_INTR and the caller should dump
 * again.
 */
enum kvmguard_cmd {
	KVMGUARD_CMD_UNSPEC,
	KVMGUARD_CMD_VM_GET,
	KVMGUARD_CMD_VM_SET,
	KVMGUARD_CMD_POLICY_NEW,
	KVMGUARD_CMD_POLICY_SET,
	KVMGUARD_CMD_POLICY_GET,
	KVMGUARD_CMD_POLICY_DEL,
	KVMGUARD_CMD_BIND_NEW,
	KVMGUARD_CMD_BIND_DEL,
	KVMGUARD_CMD_BIND_GET,
	KVMGUARD_CMD_EVENT,
	KVMGUARD_CMD_NET_BIND,
	KVMGUARD_CMD_NET_UNBIND,
	KVMGUARD_CMD_NET_GUARD_SET,
	KVMGUARD_CMD_NET_GUARD_GET,
	KVMGUARD_CMD_VM_CHECK,
	__KVMGUARD_CMD_MAX
};

#define KVMGUARD_CMD_MAX (__KVMGUARD_CMD_MAX - 1)

/**
 * enum kvmguard_attr - netlink attributes
 *
 * @KVMGUARD_A_VM_ID: u64, VM id (>= 1).
 * @KVMGUARD_A_VM_PID: u32, thread-group id of the process that created the
 *	VM (for a VM found at module load: of a process holding its file).
 * @KVMGUARD_A_VM_COMM: string, that process's comm at creation.
 * @KVMGUARD_A_VM_CGROUP: string, its cgroup v2 path at creation.
 * @KVMGUARD_A_VM_CREATED_NS: u64, CLOCK_REALTIME of the creation in ns; for a
 *	VM found at module load, when it was found (see VM_FLAGS).
 * @KVMGUARD_A_VM_VCPUS: u32, vCPUs now online.
 * @KVMGUARD_A_VM_MEMSLOTS: u32, user memslots now defined (all address
 *	spaces).
 * @KVMGUARD_A_VM_MEM_BYTES: u64, bytes of host memory those memslots map,
 *	each byte once however many memslots it backs (SMM's address space 1
 *	aliases the RAM of address space 0): what POLICY_MEM_MAX counts.
 * @KVMGUARD_A_VM_FLAGS: u32, enum kvmguard_vm_flags bits.
 * @KVMGUARD_A_VM_BOUND_BY: u8, enum kvmguard_bound_by: how the VM got its
 *	policy.
 * @KVMGUARD_A_POLICY_NAME: string, 1..KVMGUARD_NAME_MAX bytes of
 *	[A-Za-z0-9._-].
 * @KVMGUARD_A_POLICY_MODE: u8, enum kvmguard_mode.
 * @KVMGUARD_A_POLICY_DOMAIN: string, trust domain, 0..KVMGUARD_NAME_MAX
 *	bytes of [A-Za-z0-9._-]; empty means none.
 * @KVMGUARD_A_POLICY_VMS: u32, VMs that use the policy now.
 * @KVMGUARD_A_POLICY_BINDINGS: u32, bindings that name the policy.
 * @KVMGUARD_A_BIND_TYPE: u8, enum kvmguard_bind_type.
 * @KVMGUARD_A_BIND_CGROUP: string, absolute cgroup v2 path, 1..
 *	KVMGUARD_CGROUP_MAX bytes: "/" (the root, matching every VM) or
 *	components separated by single '/', none empty, "." or "..". One
 *	trailing '/' is dropped.
 * @KVMGUARD_A_BIND_PID: u32, a thread-group id in the initial pid
 *	namespace.
 * @KVMGUARD_A_EVENT_TYPE: u8, enum kvmguard_event_type.
 * @KVMGUARD_A_EVENT_TIME_NS: u64, CLOCK_REALTIME of the event in ns.
 * @KVMGUARD_A_PAD: padding for 64-bit attributes, never set by callers.
 * @KVMGUARD_A_POLICY_HC_RESTRICT: u8, 0: every KVM hypercall is allowed
 *	(POLICY_HC_ALLOW is ignored); 1: only those in POLICY_HC_ALLOW.
 * @KVMGUARD_A_POLICY_HC_ALLOW: u64, bit n allows KVM hypercall number n
 *	(KVM_HC_* of <linux/kvm_para.h>, all below 64). Under a restriction a
 *	number of 64 or more is never allowed.
 * @KVMGUARD_A_POLICY_HYPERV: u8, enum kvmguard_hyperv: the Hyper-V
 *	hypercall path that a VMM enabling Hyper-V enlightenments opens. A
 *	refused call from protected mode returns HV_STATUS_ACCESS_DENIED, even
 *	from CPL > 0 where KVM would raise #UD.
 * @KVMGUARD_A_POLICY_XEN: u8, enum kvmguard_xen (default allow): KVM's Xen
 *	emulation (kernels built with CONFIG_KVM_XEN, such as Debian's 6.12),
 *	in which a VM's hypercalls are Xen's, handled by KVM or its VMM, and
 *	not restricted by POLICY_HC_*. In POLICY_NEW, POLICY_SET and VM_SET,
 *	EBUSY (changing nothing) if the change would enforce deny for a VM
 *	that has used KVM_XEN_HVM_CONFIG or has Xen hypercalls enabled.
 * @KVMGUARD_A_VM_HC_STATS: nest of KVMGUARD_A_HC_STAT entries, one per
 *	hypercall number that was counted, by increasing number. Counting
 *	happens while any policy restricts hypercalls (the hook is absent
 *	otherwise).
 * @KVMGUARD_A_HC_STAT: nest of HC_NR, HC_ALLOWED, HC_DENIED.
 * @KVMGUARD_A_HC_NR: u32, hypercall number; KVMGUARD_HC_NR_OTHER stands
 *	for every number of 64 or more.
 * @KVMGUARD_A_HC_ALLOWED: u64, calls the policy allows.
 * @KVMGUARD_A_HC_DENIED: u64, calls it does not allow: refused in enforce
 *	mode, let through (and reported) in audit mode.
 * @KVMGUARD_A_VM_HV_ALLOWED: u64, Hyper-V hypercalls let through.
 * @KVMGUARD_A_VM_HV_DENIED: u64, Hyper-V hypercalls that broke the rule.
 * @KVMGUARD_A_EVENT_HC_NR: u64, the hypercall number of a HYPERCALL event,
 *	as KVM reads it (the low 32 bits for a 16- or 32-bit caller).
 * @KVMGUARD_A_EVENT_ACTION: u8, enum kvmguard_action.
 * @KVMGUARD_A_EVENT_COUNT: u64, how many violations the event stands for:
 *	at most one event per VM and number is sent per second, and it counts
 *	the repeats since the previous one. Repeats after the last event are
 *	reported with the next violation of that number (the counters are
 *	always exact). MEMORY events are limited the same way per VM and
 *	rule.
 *
 * Memory rules are checked when a user memslot is created, moved or has
 * its flags changed (KVM_SET_USER_MEMORY_REGION and, on 6.8+,
 * KVM_SET_USER_MEMORY_REGION2), and, for POLICY_MEM_KSM, when the VM's
 * process asks for merging. A refused memslot change fails in the ioctl
 * with the errno of the rule and changes nothing. An edit of a rule
 * applies to memslot changes made after it; existing memslots stay.
 * Private memslots KVM makes for itself are neither checked nor counted.
 *
 * @KVMGUARD_A_POLICY_MEM_MAX: u64, most bytes of host memory the VM's user
 *	memslots may map together, in every address space, each byte of the
 *	process's address space counted once however many memslots map it
 *	(a range in both address spaces, or at two guest addresses, counts
 *	once); KVMGUARD_MEM_UNLIMITED for no limit. A memslot creation that
 *	would exceed it fails with EDQUOT.
 * @KVMGUARD_A_POLICY_MEM_SHARED: u8, enum kvmguard_mem_shared: may a memslot
 *	be backed by a shared mapping (MAP_SHARED of a file, memfd, shmem,
 *	hugetlbfs or SysV shm segment). Checked when the memslot is created,
 *	against the mappings that back it then.
 * @KVMGUARD_A_POLICY_MEM_KSM: u8, enum kvmguard_ksm.
 * @KVMGUARD_A_POLICY_MEM_DIRTY_MAX: u64, most bytes of guest memory that may
 *	be dirty-tracked at once: the memslots with KVM_MEM_LOG_DIRTY_PAGES,
 *	each byte of host memory once (as POLICY_MEM_MAX).
 *	Every way KVM reports dirty pages (KVM_GET_DIRTY_LOG,
 *	KVM_CLEAR_DIRTY_LOG, the dirty ring) covers only those memslots. A
 *	change that would exceed it fails with EDQUOT; 0 forbids tracking;
 *	KVMGUARD_MEM_UNLIMITED sets no limit.
 * @KVMGUARD_A_VM_MEM_SHARED_BYTES: u64, bytes of the VM's memslots that were
 *	backed by shared mappings when the memslots were created (or, for
 *	memslots older than the memory hook, when it was attached). Known
 *	while some policy has a memory rule: the hook is absent otherwise,
 *	and this is 0.
 * @KVMGUARD_A_VM_MEM_DIRTY_BYTES: u64, bytes of host memory its memslots
 *	now dirty-track, each once.
 * @KVMGUARD_A_VM_MEM_LIMIT_DENIED: u64, violations of POLICY_MEM_MAX:
 *	refused in enforce mode, let through (and reported) in audit mode.
 * @KVMGUARD_A_VM_MEM_SHARED_DENIED: u64, violations of POLICY_MEM_SHARED.
 * @KVMGUARD_A_VM_MEM_KSM_DENIED: u64, violations of POLICY_MEM_KSM (not the
 *	madvise requests of VM_MEM_KSM_MADVISE).
 * @KVMGUARD_A_VM_MEM_DIRTY_DENIED: u64, violations of POLICY_MEM_DIRTY_MAX.
 * @KVMGUARD_A_EVENT_MEM_RULE: u8, enum kvmguard_mem_rule.
 * @KVMGUARD_A_EVENT_MEM_SLOT: u32, the memslot of a MEMORY event as the VMM
 *	named it: address space in bits 16-31, slot id in bits 0-15.
 * @KVMGUARD_A_EVENT_MEM_BYTES: u64, for LIMIT and DIRTY_LOG the total the
 *	change asked for; for SHARED the bytes of the memslot backed by
 *	shared mappings; for KSM the length of the range.
 *
 * Network rules hold on the VM's network ports: the tap or macvtap devices
 * bound to it (KVMGUARD_CMD_NET_BIND, or attached by its process as a
 * vhost-net backend). A binding ends when the device is deleted, when the
 * backend is detached, or when the VM is destroyed; a device is bound to at
 * most one VM. A device moved to another network namespace stays bound:
 * while away it is not listed in VM_NET_DEVS and its rules are not
 * enforced there; back in its namespace, under whatever ifindex, it is
 * listed and enforced again. Frames are checked
 * where they enter the host from the guest and where they leave the host
 * toward it, whatever bridge or switch the port is on; every port of a
 * segment must be bound for the segment to hold. A VM whose policy has no
 * network rule costs its ports nothing. In audit mode tags are still
 * added to and removed from the frames that keep the rules, and a frame
 * that breaks one is let through unchanged and counted.
 *
 * @KVMGUARD_A_POLICY_NET_TAG: u16, access VID (1..KVMGUARD_NET_VID_MAX), 0
 *	for none. Untagged frames from the guest get this VID; frames toward
 *	the guest are delivered only if tagged with it, untagged. Any frame
 *	from the guest with an 802.1Q or 802.1ad header (single, double or a
 *	VID 0 priority tag) breaks the rule, unless POLICY_NET_TRUNK allows it.
 * @KVMGUARD_A_POLICY_NET_TRUNK: binary, KVMGUARD_NET_TRUNK_BYTES bytes, bit
 *	v (byte v / 8, bit v % 8) allows VID v: the guest may send and receive
 *	single 802.1Q frames tagged with those VIDs, nothing else; untagged
 *	frames only if POLICY_NET_TAG is set (the native VID). VIDs 0 and 4095
 *	are refused with ERANGE. All zero: no trunk.
 * @KVMGUARD_A_POLICY_NET_ISOLATE: u8, 1: private-VLAN isolation; the VM's
 *	frames reach the other ports of its segment (the uplink, the host)
 *	but not VMs that are isolated too.
 * @KVMGUARD_A_VM_NET_DEVS: nest of KVMGUARD_A_NET_DEV, one per device bound
 *	to the VM.
 * @KVMGUARD_A_NET_DEV: nest of NET_IFINDEX, NET_IFNAME, NET_BOUND_BY and the
 *	counters NET_TAGGED, NET_FORWARDED, NET_DELIVERED, NET_TAG_DENIED,
 *	NET_SEGMENT_DENIED, NET_ISOLATE_DENIED: frames since the device was
 *	first bound to this VM. They survive an unbind and a new binding of
 *	the same device to the same VM; bound to another VM it counts from 0
 *	there; they go when the VM does, or the device is deleted (or leaves
 *	its network namespace) while unbound.
 * @KVMGUARD_A_NET_IFINDEX: u32, interface index (in the device's network
 *	namespace).
 * @KVMGUARD_A_NET_IFNAME: string, interface name, < 16 bytes.
 * @KVMGUARD_A_NET_BOUND_BY: u8, enum kvmguard_net_bound_by.
 * @KVMGUARD_A_NET_TAGGED: u64, frames from the guest given the access VID.
 * @KVMGUARD_A_NET_FORWARDED: u64, frames from the guest let through.
 * @KVMGUARD_A_NET_DELIVERED: u64, frames toward the guest let through.
 * @KVMGUARD_A_NET_TAG_DENIED: u64, frames from the guest with a tag its
 *	rules do not allow: dropped in enforce mode, passed in audit mode.
 * @KVMGUARD_A_NET_SEGMENT_DENIED: u64, frames outside the VM's segment:
 *	toward the guest with another VID (or none, without a native VID),
 *	from the guest untagged without a native VID.
 * @KVMGUARD_A_NET_ISOLATE_DENIED: u64, frames between two isolated VMs,
 *	counted at the receiving VM's port.
 * @KVMGUARD_A_EVENT_NET_RULE: u8, enum kvmguard_net_rule.
 * @KVMGUARD_A_EVENT_NET_DIR: u8, enum kvmguard_net_dir.
 * @KVMGUARD_A_EVENT_NET_VID: u16, outer VID of the frame (0 for a
 *	priority tag); absent for an untagged frame.
 *
 * NET events are rate-limited like the others, per VM and rule. They
 * report what guests do: frames from the guest, and frames between
 * isolated VMs. A frame of another segment toward the guest (the host's
 * own traffic, other VLANs' broadcasts) is counted in NET_SEGMENT_DENIED
 * but neither reported nor logged.
 *
 * @KVMGUARD_A_NET_GUARD: u8, 1: the bridge is a guarded segment (see
 *	KVMGUARD_CMD_NET_GUARD_SET), 0: it is not.
 * @KVMGUARD_A_NET_GUARD_PORTS: u32, unbound taps and macvtaps of a guarded
 *	bridge whose frames are dropped now.
 * @KVMGUARD_A_NET_GUARD_DROPPED: u64, frames dropped at its unbound ports
 *	since the guard was set, both ways.
 * @KVMGUARD_A_NET_BRIDGE: string, the name of the guarded bridge of a
 *	NET_GUARD event.
 *
 * @KVMGUARD_A_CHECK_RULE: u8, enum kvmguard_mem_rule: the rule a VM_CHECK
 *	asks about.
 * @KVMGUARD_A_CHECK_BYTES: u64, bytes more that a VM_CHECK asks about.
 * @KVMGUARD_A_CHECK_ALL: flag: a VM_CHECK of DIRTY_LOG over all of the
 *	VM's memory.
 * @KVMGUARD_A_CHECK_VERDICT: u8, enum kvmguard_check_verdict.
 * @KVMGUARD_A_CHECK_LIMIT: u64, the rule's limit (POLICY_MEM_MAX or
 *	POLICY_MEM_DIRTY_MAX; KVMGUARD_MEM_UNLIMITED: none).
 * @KVMGUARD_A_CHECK_USED: u64, bytes the rule counts now (VM_MEM_BYTES or
 *	VM_MEM_DIRTY_BYTES).
 * @KVMGUARD_A_CHECK_TOTAL: u64, bytes it would count after the change
 *	(saturating at KVMGUARD_MEM_UNLIMITED).
 * @KVMGUARD_A_VM_MEM_KSM_MADVISE: u64, madvise(MADV_MERGEABLE) requests
 *	of the VM's process that POLICY_MEM_KSM deny refused (enforce) or let
 *	through (audit). Every VMM that asks for merging by default (QEMU's
 *	mem-merge=on, also for hot-added memory) makes them, so they are
 *	counted here and not in VM_MEM_KSM_DENIED, and reported once per VM
 *	(a MEMORY event with EVENT_VMM_DEFAULT); the refusal is the same.
 * @KVMGUARD_A_EVENT_VMM_DEFAULT: u8, 1: the MEMORY event reports the first
 *	request of VM_MEM_KSM_MADVISE, a request a stock VMM makes by
 *	default: no later one of the VM is reported (they are counted).
 * @KVMGUARD_A_EVENT_HV_CODE: u16, the call code (bits 0-15 of the Hyper-V
 *	hypercall input value) of the call that triggered a HYPERV event;
 *	the calls its EVENT_COUNT stands for may have had other codes.
 * @KVMGUARD_A_FORCE: flag, in POLICY_SET, POLICY_DEL, VM_SET, BIND_NEW and
 *	BIND_DEL: make the change even though it denies a running VM a
 *	hypercall whose KVM PV feature (CPUID 0x40000001 EAX) the VM was
 *	already told about. Without it such a change fails with EBUSY,
 *	changing nothing, and the extended ack names the VM and the feature.
 *	Features and their hypercalls: PV_UNHALT (bit 7) kick_cpu (5),
 *	PV_SEND_IPI (11) send_ipi (10), PV_SCHED_YIELD (13) sched_yield (11),
 *	HC_MAP_GPA_RANGE (16) and MIGRATION_CONTROL (17) map_gpa_range (12).
 *	A VMM that sets a vCPU's CPUID while its VM's policy denies such a
 *	hypercall in enforce mode has the feature cleared.
 */
enum kvmguard_attr {
	KVMGUARD_A_UNSPEC,
	KVMGUARD_A_PAD,
	KVMGUARD_A_VM_ID,
	KVMGUARD_A_VM_PID,
	KVMGUARD_A_VM_COMM,
	KVMGUARD_A_VM_CGROUP,
	KVMGUARD_A_VM_CREATED_NS,
	KVMGUARD_A_VM_VCPUS,
	KVMGUARD_A_VM_MEMSLOTS,
	KVMGUARD_A_VM_MEM_BYTES,
	KVMGUARD_A_VM_FLAGS,
	KVMGUARD_A_VM_BOUND_BY,
	KVMGUARD_A_POLICY_NAME,
	KVMGUARD_A_POLICY_MODE,
	KVMGUARD_A_POLICY_DOMAIN,
	KVMGUARD_A_POLICY_VMS,
	KVMGUARD_A_POLICY_BINDINGS,
	KVMGUARD_A_BIND_TYPE,
	KVMGUARD_A_BIND_CGROUP,
	KVMGUARD_A_BIND_PID,
	KVMGUARD_A_EVENT_TYPE,
	KVMGUARD_A_EVENT_TIME_NS,
	KVMGUARD_A_POLICY_HC_RESTRICT,
	KVMGUARD_A_POLICY_HC_ALLOW,
	KVMGUARD_A_POLICY_HYPERV,
	KVMGUARD_A_VM_HC_STATS,
	KVMGUARD_A_HC_STAT,
	KVMGUARD_A_HC_NR,
	KVMGUARD_A_HC_ALLOWED,
	KVMGUARD_A_HC_DENIED,
	KVMGUARD_A_VM_HV_ALLOWED,
	KVMGUARD_A_VM_HV_DENIED,
	KVMGUARD_A_EVENT_HC_NR,
	KVMGUARD_A_EVENT_ACTION,
	KVMGUARD_A_EVENT_COUNT,
	KVMGUARD_A_POLICY_MEM_MAX,
	KVMGUARD_A_POLICY_MEM_SHARED,
	KVMGUARD_A_POLICY_MEM_KSM,
	KVMGUARD_A_POLICY_MEM_DIRTY_MAX,
	KVMGUARD_A_VM_MEM_SHARED_BYTES,
	KVMGUARD_A_VM_MEM_DIRTY_BYTES,
	KVMGUARD_A_VM_MEM_LIMIT_DENIED,
	KVMGUARD_A_VM_MEM_SHARED_DENIED,
	KVMGUARD_A_VM_MEM_KSM_DENIED,
	KVMGUARD_A_VM_MEM_DIRTY_DENIED,
	KVMGUARD_A_EVENT_MEM_RULE,
	KVMGUARD_A_EVENT_MEM_SLOT,
	KVMGUARD_A_EVENT_MEM_BYTES,
	KVMGUARD_A_POLICY_NET_TAG,
	KVMGUARD_A_POLICY_NET_TRUNK,
	KVMGUARD_A_POLICY_NET_ISOLATE,
	KVMGUARD_A_VM_NET_DEVS,
	KVMGUARD_A_NET_DEV,
	KVMGUARD_A_NET_IFINDEX,
	KVMGUARD_A_NET_IFNAME,
	KVMGUARD_A_NET_BOUND_BY,
	KVMGUARD_A_NET_TAGGED,
	KVMGUARD_A_NET_FORWARDED,
	KVMGUARD_A_NET_DELIVERED,
	KVMGUARD_A_NET_TAG_DENIED,
	KVMGUARD_A_NET_SEGMENT_DENIED,
	KVMGUARD_A_NET_ISOLATE_DENIED,
	KVMGUARD_A_EVENT_NET_RULE,
	KVMGUARD_A_EVENT_NET_DIR,
	KVMGUARD_A_EVENT_NET_VID,
	KVMGUARD_A_NET_GUARD,
	KVMGUARD_A_NET_GUARD_PORTS,
	KVMGUARD_A_NET_GUARD_DROPPED,
	KVMGUARD_A_NET_BRIDGE,
	KVMGUARD_A_POLICY_XEN,
	KVMGUARD_A_CHECK_RULE,
	KVMGUARD_A_CHECK_BYTES,
	KVMGUARD_A_CHECK_ALL,
	KVMGUARD_A_CHECK_VERDICT,
	KVMGUARD_A_CHECK_LIMIT,
	KVMGUARD_A_CHECK_USED,
	KVMGUARD_A_CHECK_TOTAL,
	KVMGUARD_A_VM_MEM_KSM_MADVISE,
	KVMGUARD_A_EVENT_VMM_DEFAULT,
	KVMGUARD_A_EVENT_HV_CODE,
	KVMGUARD_A_FORCE,
	__KVMGUARD_A_MAX
};

#define KVMGUARD_A_MAX (__KVMGUARD_A_MAX - 1)

/**
 * enum kvmguard_mode - what a policy does with a violation
 * @KVMGUARD_MODE_ENFORCE: refuse it, count it, report it.
 * @KVMGUARD_MODE_AUDIT: let it happen, count it, report it.
 */
enum kvmguard_mode {
	KVMGUARD_MODE_ENFORCE,
	KVMGUARD_MODE_AUDIT,
	__KVMGUARD_MODE_MAX
};

#define KVMGUARD_MODE_MAX (__KVMGUARD_MODE_MAX - 1)

/**
 * enum kvmguard_bind_type - binding selectors
 * @KVMGUARD_BIND_DEFAULT: every VM no other binding matches.
 * @KVMGUARD_BIND_CGROUP: VMs created from a cgroup at or below a path.
 * @KVMGUARD_BIND_PID: VMs created by one process.
 */
enum kvmguard_bind_type {
	KVMGUARD_BIND_UNSPEC,
	KVMGUARD_BIND_DEFAULT,
	KVMGUARD_BIND_CGROUP,
	KVMGUARD_BIND_PID,
	__KVMGUARD_BIND_MAX
};

#define KVMGUARD_BIND_MAX (__KVMGUARD_BIND_MAX - 1)

/**
 * enum kvmguard_bound_by - how a VM got its policy
 * @KVMGUARD_BOUND_NONE: no binding matched; the VM has no policy.
 * @KVMGUARD_BOUND_DEFAULT: the default binding.
 * @KVMGUARD_BOUND_CGROUP: a cgroup binding.
 * @KVMGUARD_BOUND_PID: a pid binding.
 * @KVMGUARD_BOUND_EXPLICIT: KVMGUARD_CMD_VM_SET.
 */
enum kvmguard_bound_by {
	KVMGUARD_BOUND_NONE,
	KVMGUARD_BOUND_DEFAULT,
	KVMGUARD_BOUND_CGROUP,
	KVMGUARD_BOUND_PID,
	KVMGUARD_BOUND_EXPLICIT,
	__KVMGUARD_BOUND_MAX
};

#define KVMGUARD_BOUND_MAX (__KVMGUARD_BOUND_MAX - 1)

/**
 * enum kvmguard_vm_flags - bits of KVMGUARD_A_VM_FLAGS
 * @KVMGUARD_VM_F_DISCOVERED: the VM existed before the module was loaded;
 *	its pid, comm and cgroup are those of its creator (the owner of its
 *	address space), and its creation time is when the module found it.
 *	Until KVMGUARD_CMD_VM_SET, it takes its policy from the bindings
 *	whenever they change, as a VM created then would.
 * @KVMGUARD_VM_F_NET_DEVS_CUT: only in a VM message: the VM has more
 *	devices than one message holds; KVMGUARD_A_VM_NET_DEVS is left out.
 */
enum kvmguard_vm_flags {
	KVMGUARD_VM_F_DISCOVERED = 1U << 0,
	KVMGUARD_VM_F_NET_DEVS_CUT = 1U << 1,
};

#define KVMGUARD_VM_F_ALL (KVMGUARD_VM_F_DISCOVERED | KVMGUARD_VM_F_NET_DEVS_CUT)

/**
 * enum kvmguard_event_type - KVMGUARD_A_EVENT_TYPE values
 * @KVMGUARD_EVENT_VM_CREATE: a VM was created.
 * @KVMGUARD_EVENT_VM_DESTROY: a VM was destroyed.
 * @KVMGUARD_EVENT_HYPERCALL: a VM made a KVM hypercall its policy forbids.
 * @KVMGUARD_EVENT_HYPERV: a VM made a Hyper-V hypercall its policy forbids.
 * @KVMGUARD_EVENT_MEMORY: a VM or its process broke a memory rule.
 * @KVMGUARD_EVENT_NET: a frame on a VM's port broke a network rule.
 * @KVMGUARD_EVENT_NET_GUARD: frames at an unbound port of a guarded bridge
 *	were dropped. Carries no VM: NET_IFINDEX and NET_IFNAME of the port,
 *	NET_BRIDGE, EVENT_NET_DIR (FROM_GUEST: the port sent it toward the
 *	bridge), EVENT_ACTION (DENIED) and EVENT_COUNT, rate-limited to one
 *	event a second per bridge and direction.
 * @KVMGUARD_EVENT_NET_GUARD_END: a guarded bridge went away (deleted or
 *	moved to another network namespace), and its guard with it. Carries
 *	no VM: NET_IFINDEX and NET_IFNAME of the bridge.
 * @KVMGUARD_EVENT_XEN: a VM's VMM asked for KVM's Xen emulation against
 *	POLICY_XEN.
 */
enum kvmguard_event_type {
	KVMGUARD_EVENT_UNSPEC,
	KVMGUARD_EVENT_VM_CREATE,
	KVMGUARD_EVENT_VM_DESTROY,
	KVMGUARD_EVENT_HYPERCALL,
	KVMGUARD_EVENT_HYPERV,
	KVMGUARD_EVENT_MEMORY,
	KVMGUARD_EVENT_NET,
	KVMGUARD_EVENT_NET_GUARD,
	KVMGUARD_EVENT_NET_GUARD_END,
	KVMGUARD_EVENT_XEN,
	__KVMGUARD_EVENT_MAX
};

#define KVMGUARD_EVENT_MAX (__KVMGUARD_EVENT_MAX - 1)

/* KVMGUARD_A_HC_NR of the counters for every number of 64 or more. */
#define KVMGUARD_HC_NR_OTHER	64

/**
 * enum kvmguard_hyperv - KVMGUARD_A_POLICY_HYPERV values
 * @KVMGUARD_HYPERV_ALLOW: Hyper-V hypercalls proceed.
 * @KVMGUARD_HYPERV_DENY: they fail with HV_STATUS_ACCESS_DENIED.
 */
enum kvmguard_hyperv {
	KVMGUARD_HYPERV_ALLOW,
	KVMGUARD_HYPERV_DENY,
	__KVMGUARD_HYPERV_MAX
};

#define KVMGUARD_HYPERV_MAX (__KVMGUARD_HYPERV_MAX - 1)

/**
 * enum kvmguard_xen - KVMGUARD_A_POLICY_XEN values
 * @KVMGUARD_XEN_ALLOW: the VMM may enable KVM's Xen emulation.
 * @KVMGUARD_XEN_DENY: it may not: KVM_XEN_HVM_CONFIG, KVM_XEN_HVM_SET_ATTR
 *	and KVM_XEN_VCPU_SET_ATTR fail with EPERM (a XEN event), so the VM's
 *	hypercalls stay KVM's (or Hyper-V's), under POLICY_HC_* and
 *	POLICY_HYPERV.
 */
enum kvmguard_xen {
	KVMGUARD_XEN_ALLOW,
	KVMGUARD_XEN_DENY,
	__KVMGUARD_XEN_MAX
};

#define KVMGUARD_XEN_MAX (__KVMGUARD_XEN_MAX - 1)

/**
 * enum kvmguard_action - what happened to a violation
 * @KVMGUARD_ACTION_DENIED: refused (enforce mode).
 * @KVMGUARD_ACTION_AUDITED: let through and reported (audit mode).
 */
enum kvmguard_action {
	KVMGUARD_ACTION_DENIED,
	KVMGUARD_ACTION_AUDITED,
	__KVMGUARD_ACTION_MAX
};

#define KVMGUARD_ACTION_MAX (__KVMGUARD_ACTION_MAX - 1)

/**
 * enum kvmguard_mem_shared - KVMGUARD_A_POLICY_MEM_SHARED values
 * @KVMGUARD_MEM_SHARED_ALLOW: any backing.
 * @KVMGUARD_MEM_SHARED_DENY: a memslot backed, even in part, by a shared
 *	mapping fails with EPERM.
 * @KVMGUARD_MEM_SHARED_DOMAIN: a shared backing object (the file, memfd,
 *	shmem or hugetlbfs inode) may also back memslots of other VMs only if
 *	all of them have the same non-empty POLICY_DOMAIN, whichever VM came
 *	first; otherwise the later memslot fails with EXDEV. Sharing with
 *	processes that are not VMs (vhost-user back ends, virtiofsd) stays
 *	allowed. A VM with ALLOW shares freely only with VMs that allow it
 *	too: the rule of every VM that uses the object is honoured.
 */
enum kvmguard_mem_shared {
	KVMGUARD_MEM_SHARED_ALLOW,
	KVMGUARD_MEM_SHARED_DENY,
	KVMGUARD_MEM_SHARED_DOMAIN,
	__KVMGUARD_MEM_SHARED_MAX
};

#define KVMGUARD_MEM_SHARED_MAX (__KVMGUARD_MEM_SHARED_MAX - 1)

/**
 * enum kvmguard_ksm - KVMGUARD_A_POLICY_MEM_KSM values
 * @KVMGUARD_KSM_ALLOW: the VM's process may have its pages merged.
 * @KVMGUARD_KSM_DENY: never: madvise(MADV_MERGEABLE) on any range of the
 *	process (counted in VM_MEM_KSM_MADVISE, not as a violation) and, on
 *	6.4+, prctl(PR_SET_MEMORY_MERGE) fail with EPERM, and
 *	a memslot over memory already marked mergeable (or in a process with
 *	PR_SET_MEMORY_MERGE set) fails with EPERM. Turning it on for a running
 *	VM whose process has mergeable memory is refused with EBUSY (the
 *	process unmerges with MADV_UNMERGEABLE first).
 */
enum kvmguard_ksm {
	KVMGUARD_KSM_ALLOW,
	KVMGUARD_KSM_DENY,
	__KVMGUARD_KSM_MAX
};

#define KVMGUARD_KSM_MAX (__KVMGUARD_KSM_MAX - 1)

/**
 * enum kvmguard_mem_rule - KVMGUARD_A_EVENT_MEM_RULE values
 * @KVMGUARD_MEM_RULE_LIMIT: POLICY_MEM_MAX.
 * @KVMGUARD_MEM_RULE_SHARED: POLICY_MEM_SHARED.
 * @KVMGUARD_MEM_RULE_KSM: POLICY_MEM_KSM.
 * @KVMGUARD_MEM_RULE_DIRTY_LOG: POLICY_MEM_DIRTY_MAX.
 */
enum kvmguard_mem_rule {
	KVMGUARD_MEM_RULE_UNSPEC,
	KVMGUARD_MEM_RULE_LIMIT,
	KVMGUARD_MEM_RULE_SHARED,
	KVMGUARD_MEM_RULE_KSM,
	KVMGUARD_MEM_RULE_DIRTY_LOG,
	__KVMGUARD_MEM_RULE_MAX
};

#define KVMGUARD_MEM_RULE_MAX (__KVMGUARD_MEM_RULE_MAX - 1)

/**
 * enum kvmguard_net_bound_by - KVMGUARD_A_NET_BOUND_BY values
 * @KVMGUARD_NET_BOUND_VHOST: the VM's process attached it as a vhost-net
 *	backend.
 * @KVMGUARD_NET_BOUND_MANUAL: KVMGUARD_CMD_NET_BIND.
 * @KVMGUARD_NET_BOUND_FOUND: found at module load, open in the process of
 *	a VM that uses vhost-net.
 */
enum kvmguard_net_bound_by {
	KVMGUARD_NET_BOUND_VHOST,
	KVMGUARD_NET_BOUND_MANUAL,
	KVMGUARD_NET_BOUND_FOUND,
	__KVMGUARD_NET_BOUND_MAX
};

#define KVMGUARD_NET_BOUND_MAX (__KVMGUARD_NET_BOUND_MAX - 1)

/**
 * enum kvmguard_net_rule - KVMGUARD_A_EVENT_NET_RULE values
 * @KVMGUARD_NET_RULE_TAG: a tag the guest may not use (NET_TAG_DENIED).
 * @KVMGUARD_NET_RULE_SEGMENT: a frame of another segment
 *	(NET_SEGMENT_DENIED).
 * @KVMGUARD_NET_RULE_ISOLATE: a frame between isolated VMs
 *	(NET_ISOLATE_DENIED).
 */
enum kvmguard_net_rule {
	KVMGUARD_NET_RULE_UNSPEC,
	KVMGUARD_NET_RULE_TAG,
	KVMGUARD_NET_RULE_SEGMENT,
	KVMGUARD_NET_RULE_ISOLATE,
	__KVMGUARD_NET_RULE_MAX
};

#define KVMGUARD_NET_RULE_MAX (__KVMGUARD_NET_RULE_MAX - 1)

/**
 * enum kvmguard_net_dir - KVMGUARD_A_EVENT_NET_DIR values
 * @KVMGUARD_NET_FROM_GUEST: the guest sent the frame.
 * @KVMGUARD_NET_TO_GUEST: the frame was on its way to the guest.
 */
enum kvmguard_net_dir {
	KVMGUARD_NET_FROM_GUEST,
	KVMGUARD_NET_TO_GUEST,
	__KVMGUARD_NET_DIR_MAX
};

#define KVMGUARD_NET_DIR_MAX (__KVMGUARD_NET_DIR_MAX - 1)

/**
 * enum kvmguard_check_verdict - KVMGUARD_A_CHECK_VERDICT values
 * @KVMGUARD_CHECK_ALLOWED: within the limit (or no limit).
 * @KVMGUARD_CHECK_REFUSED: over it, in enforce mode: KVM would fail the
 *	memslot change with EDQUOT (and QEMU, at run time, abort).
 * @KVMGUARD_CHECK_AUDITED: over it, in audit mode: let through, counted
 *	and reported.
 */
enum kvmguard_check_verdict {
	KVMGUARD_CHECK_ALLOWED,
	KVMGUARD_CHECK_REFUSED,
	KVMGUARD_CHECK_AUDITED,
	__KVMGUARD_CHECK_MAX
};

#define KVMGUARD_CHECK_MAX (__KVMGUARD_CHECK_MAX - 1)

#endif /* _UAPI_LINUX_KVMGUARD_H */
