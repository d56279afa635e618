// SPDX-License-Identifier: GPL-2.0
/*
 * Network rules: 802.1Q segments enforced on the devices bound to a VM.
 *
 * Ports. A VM's network port is a tap (tun in IFF_TAP mode) or macvtap
 * device bound to it, by its VMM attaching it as a vhost-net backend
 * (vhost.c) or by the administrator (CMD_NET_BIND). A port holds its device
 * (dev_hold) and its VM (a reference); a device is the port of one VM at
 * most. Ports are found by struct net_device, through a small hash of
 * (netns, ifindex): the ifindex of a registered device cannot change
 * without NETDEV_UNREGISTER (a netns move sends it too), which ends the
 * binding, so a device that later reuses the ifindex inherits nothing. The
 * same hash finds the source port of a frame for isolation (skb->skb_iif).
 *
 * Enforcement. While the VM's policy has a network rule, every frame is
 * checked: port_from_guest() where the guest sends, before anything on the
 * host side sees it, and port_to_guest() where the guest receives, after
 * everything on the host side did. A tap is checked by direct calls at
 * tun_net_xmit() and (a bridged tap) br_handle_frame(), any other port by
 * netfilter netdev hooks (tap ingress; macvtap egress and ingress): see
 * "Taps" below for why. Tags are pushed and popped as skb metadata (the
 * hardware-accelerated tag), never by moving data, so GSO and checksum
 * offsets stay valid; a tag left on a frame toward the guest is written
 * inline by tun/macvtap, or by the stack for a device without tag offload.
 * Without a network rule a port has no hook and costs nothing.
 *
 * Isolation finds a frame's source port by skb->skb_iif, which a bridge
 * leaves at the source tap's ifindex. Frames between macvtaps of one lower
 * device (macvlan bridge mode) enter the stack again and lose it: isolated
 * macvtaps need macvlan mode private or vepa.
 *
 * Locking, from outermost to innermost:
 *  - kvmguard_config_mutex (netlink requests, policy changes:
 *    kvmguard_net_apply() and the bind/unbind requests);
 *  - rtnl_lock(): every change of ports and of their hooks. The netdev
 *    notifier and vhost.c's binding run under it; the notifier never takes
 *    the config mutex;
 *  - ports_lock (spinlock): the hash and every VM's port list change under
 *    both rtnl and ports_lock, so that kvmguard_net_vm_gone(), which runs
 *    in atomic context, can read a VM's list and mark it gone.
 * Readers: the hooks run under rcu_read_lock() (netfilter's) or with
 * bottom halves disabled (the direct calls) and read their port, its VM's
 * rules (vm->policy->rules) and, for isolation, the hash. A port is freed
 * after an RCU grace period that follows the removal of its hooks and of
 * its cache slot, which also covers a hook already running then. Its
 * counters are per cpu and exact, and belong to the (VM, device) pair: see
 * "Counters".
 *
 * Lifetime. A binding ends on NETDEV_UNREGISTER (device deleted or moved to
 * another netns), on CMD_NET_UNBIND, when vhost.c sees the backend
 * detached, or when the VM is destroyed: that comes in atomic context, so
 * the VM is only marked gone there and a work item unbinds its ports (they
 * go on enforcing until then).
 */
#define pr_fmt(fmt) "kvmguard: " fmt
#include <linux/etherdevice.h>
#include <linux/hash.h>
#include <linux/hashtable.h>
#include <linux/if_arp.h>
#include <linux/if_vlan.h>
#include <linux/netdevice.h>
#include <linux/netfilter.h>
#include <linux/percpu.h>
#include <linux/rtnetlink.h>
#include <linux/slab.h>
#include <linux/workqueue.h>
#include <net/net_namespace.h>
#include <net/netlink.h>
#include <net/netns/hash.h>
#include <net/rtnetlink.h>

#include "kvmguard.h"
#include "fault_inject.h"
#include "net.h"

#define PORT_HASH_BITS	8
static DEFINE_HASHTABLE(ports, PORT_HASH_BITS);
static DEFINE_SPINLOCK(ports_lock);
/* Set at module unload, under rtnl: no port can be bound any more. */
static bool ports_closed;
/* Ports whose device is in another netns for now (port_leave()); rtnl. */
static LIST_HEAD(away_ports);

static void ports_gone_work(struct work_struct *work);
static DECLARE_WORK(gone_work, ports_gone_work);

/*
 * Counters
 *
 * A port counts in the counters of its (VM, device) pair, which outlive the
 * binding: the device bound again to the same VM (NET_UNBIND then
 * NET_BIND, a VMM that detaches its vhost-net backend and attaches it
 * again) goes on counting where it was; bound to another VM, it counts
 * from 0 in that VM's. They go when the device is unregistered while no
 * port of it counts in them (deleted, or moved to another netns unbound),
 * or with the VM. The device's address is only compared, and only while
 * the device is registered: a later device at that address inherits
 * nothing. counts_list changes under rtnl, and vm->net.counted under
 * ports_lock too (kvmguard_net_vm_gone() reads it there). Freed after a
 * grace period: a hook of a port that counted in them may still run.
 */
struct port_counts {
	struct list_head node;		/* counts_list */
	struct kvmguard_vm *vm;		/* holds a reference */
	const struct net_device *dev;	/* compared only */
	struct kvmguard_port *port;	/* the port counting in them, or NULL */
	struct port_stats __percpu *stats;
	struct rcu_head rcu;
};

static LIST_HEAD(counts_list);

static void counts_free_rcu(struct rcu_head *head)
{
	struct port_counts *c = container_of(head, struct port_counts, rcu);

	free_percpu(c->stats);
	kvmguard_vm_put(c->vm);
	kfree(c);
}

/* The counters of @vm's binding of @dev, if it had one; under rtnl. */
static struct port_counts *counts_find(const struct kvmguard_vm *vm,
				       const struct net_device *dev)
{
	struct port_counts *c;

	ASSERT_RTNL();
	list_for_each_entry(c, &counts_list, node)
		if (c->vm == vm && c->dev == dev)
			return c;
	return NULL;
}

/* New counters, not yet listed (counts_list_add()). */
static struct port_counts *counts_new(struct kvmguard_vm *vm,
				      const struct net_device *dev)
{
	struct port_counts *c = kzalloc(sizeof(*c), GFP_KERNEL);

	if (!c)
		return NULL;
	c->stats = alloc_percpu(struct port_stats);
	if (!c->stats) {
		kfree(c);
		return NULL;
	}
	kref_get(&vm->ref);
	c->vm = vm;
	c->dev = dev;
	return c;
}

/* Under rtnl and ports_lock. */
static void counts_list_add(struct port_counts *c)
{
	list_add_tail(&c->node, &counts_list);
	c->vm->net.counted++;
}

/* Unlisted and freed after a grace period; under rtnl. */
static void counts_drop(struct port_counts *c)
{
	ASSERT_RTNL();
	spin_lock(&ports_lock);
	list_del(&c->node);
	c->vm->net.counted--;
	spin_unlock(&ports_lock);
	call_rcu(&c->rcu, counts_free_rcu);
}

/* At unload, once every port is unbound. */
static void counts_drop_all(void)
{
	struct port_counts *c, *next;

	list_for_each_entry_safe(c, next, &counts_list, node)
		counts_drop(c);
}

/* Drop the counters no port counts in: of @dev, or (NULL) of gone VMs. */
static void counts_prune(const struct net_device *dev)
{
	struct port_counts *c, *next;

	list_for_each_entry_safe(c, next, &counts_list, node)
		if (!c->port &&
		    (dev ? c->dev == dev : READ_ONCE(c->vm->net.gone)))
			counts_drop(c);
}

static u32 port_key(const struct net *net, int ifindex)
{
	return net_hash_mix(net) ^ (u32)ifindex;
}

/* The port of the device @ifindex of @net; caller holds RCU or rtnl. */
static struct kvmguard_port *port_lookup(const struct net *net, int ifindex)
{
	struct kvmguard_port *port;

	hash_for_each_possible_rcu(ports, port, node, port_key(net, ifindex),
				   lockdep_rtnl_is_held())
		if (port->ifindex == ifindex && port->net == net)
			return port;
	return NULL;
}

/* The port of @dev, if it is bound; caller holds rtnl. */
static struct kvmguard_port *port_find(const struct net_device *dev)
{
	struct kvmguard_port *port;

	ASSERT_RTNL();
	port = port_lookup(dev_net(dev), dev->ifindex);
	return port && port->dev == dev ? port : NULL;
}

/* The port of @dev while it is away from its netns; caller holds rtnl. */
static struct kvmguard_port *port_away_find(const struct net_device *dev)
{
	struct kvmguard_port *port;

	ASSERT_RTNL();
	list_for_each_entry(port, &away_ports, away_node)
		if (port->dev == dev)
			return port;
	return NULL;
}

/* Is @dev the port of some VM, however it was bound? Caller holds rtnl. */
bool kvmguard_net_dev_bound(const struct net_device *dev)
{
	return port_find(dev) || port_away_find(dev);
}

/*
 * The rules of @port's VM now, or NULL; caller holds RCU, or has bottom
 * halves disabled (the direct calls run there, before the traced function
 * takes rcu_read_lock()).
 */
static const struct kvmguard_rules *port_rules(const struct kvmguard_port *port)
{
	const struct kvmguard_policy *policy;

	policy = rcu_dereference_check(port->vm->policy,
				       rcu_read_lock_bh_held());
	return policy ? rcu_dereference_check(policy->rules,
					      rcu_read_lock_bh_held()) : NULL;
}

/*
 * Violation reports
 *
 * Only what the guest does is reported: a frame it sends that breaks a
 * rule, and a frame between isolated VMs (another guest sent it). A frame
 * of another segment toward the guest is the host side's (the host's own
 * IPv6 ND and IGMP, other VLANs' broadcasts on a flat bridge, a closed
 * port's traffic): dropped and counted (NET_SEGMENT_DENIED) but neither
 * evented nor logged, nor held back to swell the count of the next event.
 */

static void port_report(struct kvmguard_port *port, u8 rule, u8 dir,
			bool audit, int vid)
{
	static const char * const names[] = {
		[KVMGUARD_NET_RULE_TAG] = "tag",
		[KVMGUARD_NET_RULE_SEGMENT] = "segment",
		[KVMGUARD_NET_RULE_ISOLATE] = "isolation",
	};
	struct kvmguard_vm *vm = port->vm;
	unsigned long flags;
	u64 count;

	if (dir == KVMGUARD_NET_TO_GUEST && rule == KVMGUARD_NET_RULE_SEGMENT)
		return;
	spin_lock_irqsave(&vm->net.report_lock, flags);
	count = kvmguard_report_due(&vm->net.reports[rule - 1]);
	spin_unlock_irqrestore(&vm->net.report_lock, flags);
	if (!count)
		return;
	pr_info_ratelimited("VM %llu (pid %d): %s: frame %s guest broke the %s rule, %s (%llu)\n",
			    vm->id, vm->pid_nr, netdev_name(port->dev),
			    dir == KVMGUARD_NET_FROM_GUEST ? "from" : "to",
			    names[rule], audit ? "audited" : "denied", count);
	kvmguard_notify_net(vm, rule, dir, audit ? KVMGUARD_ACTION_AUDITED :
						   KVMGUARD_ACTION_DENIED,
			    count, port->dev, vid);
}

/*
 * Count a violation of @rule by a frame at @port and report it. @vid is the
 * frame's outer VID, < 0 for an untagged frame. True: drop the frame.
 */
static noinline bool port_violation(struct kvmguard_port *port,
				    const struct kvmguard_rules *rules,
				    u8 rule, u8 dir, int vid)
{
	bool audit = rules->mode == KVMGUARD_MODE_AUDIT;

	this_cpu_inc(port->stats->denied[rule - 1]);
	port_report(port, rule, dir, audit, vid);
	return !audit;
}

/*
 * A frame at a closed port (see "Fail closed"): dropped, whatever the
 * mode, and counted and reported as a frame outside the VM's segment.
 */
static noinline unsigned int port_closed_drop(struct kvmguard_port *port,
					      u8 dir)
{
	this_cpu_inc(port->stats->denied[KVMGUARD_NET_RULE_SEGMENT - 1]);
	port_report(port, KVMGUARD_NET_RULE_SEGMENT, dir, false, -1);
	return NF_DROP;
}

/*
 * Enforcement
 */

/* Has @rules access or trunk semantics (not just isolation)? */
static bool rules_tag(const struct kvmguard_rules *rules)
{
	return rules->net_tag || rules->net_trunk_any;
}

/*
 * The outer tag of a tagged frame: its VID in @vid; true if it is a single
 * 802.1Q tag. A tag is in the skb's metadata, or inline after the Ethernet
 * header where nobody untagged the frame (macvtap egress: what the guest
 * wrote); an inline header that cannot be read counts as a bad tag.
 */
static bool frame_single_tag(const struct sk_buff *skb, u16 *vid)
{
	const struct vlan_hdr *vh;
	struct vlan_hdr buf;

	if (skb_vlan_tag_present(skb)) {
		*vid = skb_vlan_tag_get_id(skb);
		return skb->vlan_proto == htons(ETH_P_8021Q) &&
		       !eth_type_vlan(skb->protocol);
	}
	*vid = 0;
	if (!skb_mac_header_was_set(skb))
		return false;
	vh = skb_header_pointer(skb, skb_mac_offset(skb) + ETH_HLEN,
				sizeof(buf), &buf);
	if (!vh)
		return false;
	*vid = ntohs(vh->h_vlan_TCI) & VLAN_VID_MASK;
	return skb->protocol == htons(ETH_P_8021Q) &&
	       !eth_type_vlan(vh->h_vlan_encapsulated_proto);
}

static bool frame_tagged(const struct sk_buff *skb)
{
	return skb_vlan_tag_present(skb) || eth_type_vlan(skb->protocol);
}

/* A frame from the guest with a tag of its own. */
static noinline unsigned int from_guest_tagged(struct kvmguard_port *port,
					       const struct kvmguard_rules *rules,
					       struct sk_buff *skb)
{
	bool single;
	u16 vid;

	if (!rules_tag(rules))
		goto pass;
	single = frame_single_tag(skb, &vid);
	if (single && vid && rules->net_trunk_any &&
	    kvmguard_trunk_has(rules, vid))
		goto pass;
	if (port_violation(port, rules, KVMGUARD_NET_RULE_TAG,
			   KVMGUARD_NET_FROM_GUEST, vid))
		return NF_DROP;
pass:
	this_cpu_inc(port->stats->passed);
	return NF_ACCEPT;
}

/*
 * Where the guest sends: tap ingress (after skb_vlan_untag(), so an outer
 * tag is in the metadata and an inner one shows in skb->protocol), macvtap
 * egress (tags inline, skb->protocol is the outer type).
 */
static unsigned int port_from_guest(void *priv, struct sk_buff *skb,
				    const struct nf_hook_state *state)
{
	struct kvmguard_port *port = priv;
	const struct kvmguard_rules *rules = port_rules(port);

	if (unlikely(READ_ONCE(port->closed)))
		return port_closed_drop(port, KVMGUARD_NET_FROM_GUEST);
	if (unlikely(!rules))
		return NF_ACCEPT;	/* the hooks are on their way out */
	if (unlikely(frame_tagged(skb)))
		return from_guest_tagged(port, rules, skb);
	if (likely(rules->net_tag)) {
		__vlan_hwaccel_put_tag(skb, htons(ETH_P_8021Q), rules->net_tag);
		this_cpu_inc(port->stats->tagged);
		return NF_ACCEPT;
	}
	if (rules->net_trunk_any &&
	    port_violation(port, rules, KVMGUARD_NET_RULE_SEGMENT,
			   KVMGUARD_NET_FROM_GUEST, -1))
		return NF_DROP;		/* untagged on a trunk without native VID */
	this_cpu_inc(port->stats->passed);
	return NF_ACCEPT;
}

/*
 * Does the frame come from another VM's port whose policy isolates it too?
 * On a bridge, skb_iif is still the source port's ifindex at the egress of
 * the destination (the bridge forwards without receiving the frame again).
 */
static noinline bool from_isolated_port(const struct kvmguard_port *port,
					const struct sk_buff *skb)
{
	const struct kvmguard_rules *rules;
	const struct kvmguard_port *src;
	int iif = skb->skb_iif;

	if (!iif || iif == port->ifindex)
		return false;
	src = port_lookup(port->net, iif);
	if (!src || src->vm == port->vm)
		return false;
	rules = port_rules(src);
	return rules && rules->net_isolate;
}

/* Delivery toward the guest, after the tag rules let the frame in. */
static __always_inline unsigned int
to_guest_deliver(struct kvmguard_port *port, const struct kvmguard_rules *rules,
		 struct sk_buff *skb, bool pop, int vid)
{
	if (unlikely(rules->net_isolate) && from_isolated_port(port, skb) &&
	    port_violation(port, rules, KVMGUARD_NET_RULE_ISOLATE,
			   KVMGUARD_NET_TO_GUEST, vid))
		return NF_DROP;
	if (pop)
		__vlan_hwaccel_clear_tag(skb);
	this_cpu_inc(port->stats->delivered);
	return NF_ACCEPT;
}

/* A frame toward the guest other than a plain one of its access VID. */
static noinline unsigned int to_guest_other(struct kvmguard_port *port,
					    const struct kvmguard_rules *rules,
					    struct sk_buff *skb)
{
	bool single = false;
	int vid = -1;
	u16 v = 0;

	if (frame_tagged(skb)) {
		single = frame_single_tag(skb, &v);
		vid = v;
	}
	if (!rules_tag(rules))
		return to_guest_deliver(port, rules, skb, false, vid);
	/* Any VID of the trunk reaches the guest tagged. */
	if (single && v && rules->net_trunk_any && kvmguard_trunk_has(rules, v))
		return to_guest_deliver(port, rules, skb, false, vid);
	/*
	 * The access VID inline, where the frame starts at its Ethernet
	 * header (a tap's egress): the stack writes it there for a device
	 * without tag offload (ethtool -K DEV txvlan off), or a process sent
	 * it so on the device. It goes as the metadata one would; if it
	 * cannot be removed (no memory), the frame is dropped as below.
	 */
	if (single && v && v == rules->net_tag && !skb_vlan_tag_present(skb) &&
	    skb->data == skb_mac_header(skb) && !__skb_vlan_pop(skb, &v))
		return to_guest_deliver(port, rules, skb, false, vid);
	/* Untagged, another VID, a double or 802.1ad tag. */
	if (port_violation(port, rules, KVMGUARD_NET_RULE_SEGMENT,
			   KVMGUARD_NET_TO_GUEST, vid))
		return NF_DROP;
	this_cpu_inc(port->stats->delivered);
	return NF_ACCEPT;
}

/*
 * Where the guest receives: tap egress, macvtap ingress. The host side
 * carries the tag in the metadata (the uplink's receive path or the
 * sender's port put it there, and the bridge keeps it).
 */
static unsigned int port_to_guest(void *priv, struct sk_buff *skb,
				  const struct nf_hook_state *state)
{
	struct kvmguard_port *port = priv;
	const struct kvmguard_rules *rules = port_rules(port);

	if (unlikely(READ_ONCE(port->closed)))
		return port_closed_drop(port, KVMGUARD_NET_TO_GUEST);
	if (unlikely(!rules))
		return NF_ACCEPT;
	if (likely(skb_vlan_tag_present(skb) &&
		   skb->vlan_proto == htons(ETH_P_8021Q) &&
		   skb_vlan_tag_get_id(skb) == rules->net_tag &&
		   rules->net_tag && !eth_type_vlan(skb->protocol)))
		return to_guest_deliver(port, rules, skb, true, rules->net_tag);
	return to_guest_other(port, rules, skb);
}

/*
 * Ports
 */

static int port_kind(const struct net_device *dev)
{
	const struct rtnl_link_ops *ops = dev->rtnl_link_ops;

	if (!ops || !ops->kind)
		return -EOPNOTSUPP;
	/* A tun in IFF_TUN mode carries no Ethernet header. */
	if (!strcmp(ops->kind, "tun") && dev->type == ARPHRD_ETHER &&
	    dev->addr_len == ETH_ALEN)
		return PORT_TAP;
	if (!strcmp(ops->kind, "macvtap"))
		return PORT_MACVTAP;
	return -EOPNOTSUPP;
}

int kvmguard_net_port_kind(const struct net_device *dev)
{
	return port_kind(dev);
}

/*
 * Taps
 *
 * Netfilter's netdev hooks cost every frame of the host once any device
 * has one (their static keys are global). A tap, the common port, is
 * served by two ftrace direct calls instead (net_entry.S), each attached
 * only while some port uses it (tap_hooks.c), which cost other devices'
 * frames a table lookup:
 *  - toward the guest at tun_net_xmit(), which every frame sent to a tap
 *    reaches, whatever sent it;
 *  - from the guest at br_handle_frame(), when the tap is a port of a
 *    Linux bridge and has no other upper device (a VLAN device on it would
 *    take tagged frames before the bridge). Any other tap keeps a
 *    netfilter ingress hook, and so does a macvtap, both ways.
 * The entry finds the port in kvmguard_net_cache, by ifindex, and handles
 * an access port's common frames by itself (rules_vlan_word()).
 */

/* Never bound, never freed: its device is NULL. */
struct kvmguard_port kvmguard_net_no_port = {
	.to_guest_vlan = PORT_NO_VLAN,
	.from_guest_vlan = PORT_NO_VLAN,
};

struct kvmguard_port *kvmguard_net_cache[1 << KVMGUARD_NET_CACHE_BITS] = {
	[0 ... (1 << KVMGUARD_NET_CACHE_BITS) - 1] = &kvmguard_net_no_port,
};

/*
 * The slot of @port in kvmguard_net_cache, as net_entry.S finds it from
 * the device: its ifindex cannot change while it is bound (see the top).
 */
static unsigned int port_slot(const struct kvmguard_port *port)
{
	return port->ifindex & (ARRAY_SIZE(kvmguard_net_cache) - 1);
}

/* Publish @port, a tap with rules, in its slot if that is free; rtnl. */
static void port_cache_add(struct kvmguard_port *port)
{
	unsigned int slot = port_slot(port);

	ASSERT_RTNL();
	if (kvmguard_net_cache[slot] != &kvmguard_net_no_port)
		return;
	/* Release: net_entry.S reads the port through the pointer. */
	smp_store_release(&kvmguard_net_cache[slot], port);
}

/*
 * Remove @port from its slot, handing the slot to another direct port
 * that hashes there in one store, so that a port with rules is never
 * missing from its slot; rtnl.
 */
static void port_cache_del(struct kvmguard_port *port)
{
	unsigned int slot = port_slot(port);
	struct kvmguard_port *p, *next = &kvmguard_net_no_port;
	int bkt;

	ASSERT_RTNL();
	if (kvmguard_net_cache[slot] != port)
		return;
	hash_for_each(ports, bkt, p, node)
		if (p != port && p->direct && port_slot(p) == slot)
			next = p;
	/* Release: as in port_cache_add(). */
	smp_store_release(&kvmguard_net_cache[slot], next);
}

/* The direct port of @dev, whose slot holds another port's; BH off. */
static struct kvmguard_port *port_direct_find(const struct net_device *dev)
{
	struct kvmguard_port *port = port_lookup(dev_net(dev), dev->ifindex);

	return port && port->dev == dev && READ_ONCE(port->direct) ?
	       port : NULL;
}

/*
 * From net_entry.S at tun_net_xmit(@skb, @dev): a frame toward the guest
 * of @port (NULL: @dev's slot holds another device's port). True: the
 * frame was dropped.
 */
__visible bool kvmguard_net_tun_xmit(struct sk_buff *skb,
				     struct net_device *dev,
				     struct kvmguard_port *port)
{
	if (unlikely(!port)) {
		port = port_direct_find(dev);
		if (!port)
			return false;
	}
	if (likely(port_to_guest(port, skb, NULL) == NF_ACCEPT))
		return false;
	dev_core_stats_tx_dropped_inc(dev);
	kfree_skb(skb);
	return true;
}

/*
 * From net_entry.S at br_handle_frame(): a frame a bridge port received,
 * its guest's if the port is a bridged tap (@port as above).
 */
__visible bool kvmguard_net_br_frame(struct sk_buff *skb,
				     struct kvmguard_port *port)
{
	if (unlikely(!port)) {
		port = port_direct_find(skb->dev);
		if (!port)
			return false;
	}
	if (!READ_ONCE(port->bridged) ||
	    likely(port_from_guest(port, skb, NULL) == NF_ACCEPT))
		return false;
	dev_core_stats_rx_dropped_inc(skb->dev);
	kfree_skb(skb);
	return true;
}

/*
 * The 32 bits at skb->vlan_proto (vlan_all since 6.2) of a frame tagged
 * @vid, no priority, by __vlan_hwaccel_put_tag(): the protocol in the low
 * half (x86 is little endian), the TCI in the high one. net_entry.S
 * compares and stores them as one.
 */
static u32 port_vlan_word(u16 vid)
{
	BUILD_BUG_ON(offsetof(struct sk_buff, vlan_tci) !=
		     offsetof(struct sk_buff, vlan_proto) + 2);
	BUILD_BUG_ON(VLAN_VID_MASK > (PORT_VLAN_MASK >> 16));
	return (__force u16)htons(ETH_P_8021Q) | (u32)vid << 16;
}

/*
 * The access VLAN word of @rules for net_entry.S, or PORT_NO_VLAN where
 * the rules want more than an access port (a trunk, isolation): those
 * take every frame to the C.
 */
static u32 rules_vlan_word(const struct kvmguard_rules *rules)
{
	if (!rules || !rules->net_tag || rules->net_trunk_any ||
	    rules->net_isolate)
		return PORT_NO_VLAN;
	return port_vlan_word(rules->net_tag);
}

/* Is @dev a bridge port with no other upper device? Under rtnl. */
static bool port_on_bridge(struct net_device *dev)
{
	struct net_device *master = netdev_master_upper_dev_get(dev);
	struct net_device *upper;
	struct list_head *iter;
	bool alone = true;

	if (!master || !netif_is_bridge_master(master))
		return false;
	rcu_read_lock();
	netdev_for_each_upper_dev_rcu(dev, upper, iter)
		if (upper != master)
			alone = false;
	rcu_read_unlock();
	return alone;
}

/* A tap needs only its ingress hook; a macvtap both. */
static unsigned int port_nf_count(const struct kvmguard_port *port)
{
	return port->kind == PORT_TAP ? 1 : ARRAY_SIZE(port->ops);
}

/*
 * Attach the hooks @port lacks to serve its VM's rules (@rules: any network
 * rule) where it is (@on_bridge: see port_on_bridge()); under rtnl. Nothing
 * is detached: on an error the port keeps what it had and what did attach
 * (each recorded in its flags), which port_trim() removes if unwanted.
 * net_entry.S's own handling is off from here until port_trim() finds the
 * hooks complete.
 */
static int port_attach(struct kvmguard_port *port, bool rules, bool on_bridge)
{
	bool tap = port->kind == PORT_TAP;
	bool bridged = rules && tap && on_bridge;
	int err;

	ASSERT_RTNL();
	if (!rules)
		return 0;
	WRITE_ONCE(port->to_guest_vlan, PORT_NO_VLAN);
	WRITE_ONCE(port->from_guest_vlan, PORT_NO_VLAN);
	/* No rule where XDP or tc can take frames around it (net_bypass.c). */
	err = kvmguard_bypass_check(port->dev);
	if (err)
		return err;
	if (tap && !port->direct) {
		/* A tap's ndo_start_xmit is tun_net_xmit(). */
		err = kvmguard_tap_hook_get(TAP_HOOK_XMIT, (unsigned long)
				port->dev->netdev_ops->ndo_start_xmit);
		if (err)
			return err;
		err = kvmguard_bypass_tap_get(port->dev);
		if (err) {
			kvmguard_tap_hook_put(TAP_HOOK_XMIT);
			return err;
		}
		WRITE_ONCE(port->direct, true);
		port_cache_add(port);
	}
	if (bridged && !port->bridged) {
		/* A bridge port's rx_handler is br_handle_frame(). */
		if (kvmguard_tap_hook_get(TAP_HOOK_BRIDGE, (unsigned long)
				rtnl_dereference(port->dev->rx_handler)))
			bridged = false;	/* netfilter's hook then */
		else
			WRITE_ONCE(port->bridged, true);
	}
	if (!bridged && !port->nf_hooked) {
		err = kvmguard_fault(KVMGUARD_FAULT_NF_HOOKS) ? -ENOMEM :
		      nf_register_net_hooks(port->net, port->ops,
					    port_nf_count(port));
		if (err)
			return err;
		port->nf_hooked = true;
	}
	return 0;
}

/*
 * Detach what @port has beyond what @rules (as in port_attach()) need where
 * it is now, and turn net_entry.S's handling back on with the VLAN word
 * @vlan if the hooks are complete; under rtnl, cannot fail. False if a
 * hook the rules need is missing.
 */
static bool port_trim(struct kvmguard_port *port, bool rules, u32 vlan)
{
	bool tap = port->kind == PORT_TAP;
	bool bridged = rules && tap && port->bridged &&
		       port_on_bridge(port->dev);
	bool nf = rules && !bridged;
	bool complete;

	ASSERT_RTNL();
	if (!nf && port->nf_hooked) {
		nf_unregister_net_hooks(port->net, port->ops,
					port_nf_count(port));
		port->nf_hooked = false;
	}
	if (!bridged && port->bridged) {
		WRITE_ONCE(port->bridged, false);
		kvmguard_tap_hook_put(TAP_HOOK_BRIDGE);
	}
	if (!rules && port->direct) {
		port_cache_del(port);
		WRITE_ONCE(port->direct, false);
		kvmguard_tap_hook_put(TAP_HOOK_XMIT);
		kvmguard_bypass_tap_put();
	}
	complete = !rules || ((!tap || port->direct) &&
			      (bridged || port->nf_hooked));
	if (complete && !READ_ONCE(port->closed)) {
		if (port->direct)
			WRITE_ONCE(port->to_guest_vlan, vlan);
		if (port->bridged)
			WRITE_ONCE(port->from_guest_vlan, vlan);
	}
	return complete;
}

/*
 * What @port's hooks must serve: its VM's rules, or the rules of a change
 * being prepared (kvmguard_net_prepare()); net_entry.S leaves the frames
 * of a port in between to the C.
 */
static bool port_wants(struct kvmguard_port *port, u32 *vlan)
{
	const struct kvmguard_rules *rules;
	bool any;

	rcu_read_lock();
	rules = port_rules(port);
	any = kvmguard_net_rules(rules) || port->prepared;
	*vlan = port->prepared ? PORT_NO_VLAN : rules_vlan_word(rules);
	rcu_read_unlock();
	return any;
}

static void port_drop_rx_off(struct kvmguard_port *port);

/*
 * Give @port the hooks its VM's rules and its place now want; under rtnl.
 * What is wanted is attached before what is no longer wanted goes, so
 * that a frame in between meets both (and a frame a tap's netfilter hook
 * tagged is then dropped at the bridge as one its guest tagged) rather
 * than none. That happens when a tap joins or leaves a bridge, which
 * disables the bridge port meanwhile. 0, or the error of a hook that
 * could not attach: the port then keeps the hooks it had that are still
 * of use and those that did attach. A closed port whose hooks are
 * complete again is opened.
 */
static int port_sync(struct kvmguard_port *port)
{
	u32 vlan;
	bool any;
	int err;

	if (port->away)
		return 0;	/* no hook until it is back (port_return()) */
	any = port_wants(port, &vlan);
	err = port_attach(port, any, port_on_bridge(port->dev));
	if (!err && READ_ONCE(port->closed)) {
		port_drop_rx_off(port);
		WRITE_ONCE(port->closed, false);
		pr_info("VM %llu: %s: hooks attached, enforced again\n",
			port->vm->id, netdev_name(port->dev));
	}
	if (!port_trim(port, any, vlan) && !err)
		err = -ENOENT;	/* cannot happen: attach succeeded */
	return err;
}

/*
 * Has @dev a port whose hooks serve rules (net_bypass.c)? Exact under
 * rtnl, which every change of ports and rules takes.
 */
bool kvmguard_net_dev_has_rules(const struct net_device *dev)
{
	struct kvmguard_port *port;
	bool ruled;
	u32 vlan;

	rcu_read_lock();
	port = port_lookup(dev_net(dev), dev->ifindex);
	ruled = port && port->dev == dev && port_wants(port, &vlan);
	rcu_read_unlock();
	return ruled;
}

/*
 * @n XDP frames redirected into the tap @dev (net_bypass.c), which never
 * reach tun_net_xmit(): toward a port with rules they are violations of
 * the segment (the frames go unchecked). True: drop them.
 */
bool kvmguard_net_xdp_frames(const struct net_device *dev, int n)
{
	const struct kvmguard_rules *rules;
	struct kvmguard_port *port;
	bool drop = false;

	rcu_read_lock();
	port = port_lookup(dev_net(dev), dev->ifindex);
	if (!port || port->dev != dev)
		goto out;
	rules = port_rules(port);
	for (; n > 0; n--) {
		if (unlikely(READ_ONCE(port->closed)))
			drop = port_closed_drop(port, KVMGUARD_NET_TO_GUEST) ==
			       NF_DROP;
		else if (kvmguard_net_rules(rules))
			drop = port_violation(port, rules,
					      KVMGUARD_NET_RULE_SEGMENT,
					      KVMGUARD_NET_TO_GUEST, -1);
	}
out:
	rcu_read_unlock();
	return drop;
}

/*
 * Fail closed
 *
 * A port whose hooks cannot follow a change that cannot be refused (its
 * tap left a bridge, a policy change reached it only after it was
 * prepared) is closed: every frame either way that reaches a hook it still
 * has is dropped and counted as a segment violation, reported as one, and
 * its tap cannot join an upper device. A tap with no hook left for the
 * frames of its guest gets a receive handler of its own that drops them
 * (netdev_rx_handler_register(), which needs no memory), from a work item
 * (a bridge it left still holds the handler while it tells the notifier):
 * frames its guest sends in between reach the host's own stack on that
 * tap, not the bridge. The work retries the hooks every second and opens
 * the port again once they attach.
 */
static void ports_retry_work(struct work_struct *work);
static DECLARE_DELAYED_WORK(retry_work, ports_retry_work);

static rx_handler_result_t port_drop_rx(struct sk_buff **pskb)
{
	struct sk_buff *skb = *pskb;
	struct kvmguard_port *port = rcu_dereference(skb->dev->rx_handler_data);

	port_closed_drop(port, KVMGUARD_NET_FROM_GUEST);
	dev_core_stats_rx_dropped_inc(skb->dev);
	kfree_skb(skb);
	return RX_HANDLER_CONSUMED;
}

/* A closed tap that nothing else serves from its guest; under rtnl. */
static void port_drop_rx_on(struct kvmguard_port *port)
{
	ASSERT_RTNL();
	if (port->kind != PORT_TAP || port->rx_drop || port->nf_hooked ||
	    (port->bridged && port_on_bridge(port->dev)))
		return;
	if (!netdev_rx_handler_register(port->dev, port_drop_rx, port))
		port->rx_drop = true;
}

static void port_drop_rx_off(struct kvmguard_port *port)
{
	ASSERT_RTNL();
	if (!port->rx_drop)
		return;
	netdev_rx_handler_unregister(port->dev);	/* waits for readers */
	port->rx_drop = false;
}

/* @port could not get the hooks it needs (@err); under rtnl. */
static void port_close(struct kvmguard_port *port, int err)
{
	ASSERT_RTNL();
	WRITE_ONCE(port->to_guest_vlan, PORT_NO_VLAN);
	WRITE_ONCE(port->from_guest_vlan, PORT_NO_VLAN);
	if (!READ_ONCE(port->closed))
		pr_err("VM %llu: %s: cannot attach (%d): every frame dropped until it can\n",
		       port->vm->id, netdev_name(port->dev), err);
	WRITE_ONCE(port->closed, true);
	mod_delayed_work(system_wq, &retry_work, 0);
}

/* port_sync(), and @port closed if it fails. */
static void port_sync_or_close(struct kvmguard_port *port)
{
	int err = port_sync(port);

	if (err)
		port_close(port, err);
}

static void port_free_rcu(struct rcu_head *head)
{
	struct kvmguard_port *port = container_of(head, struct kvmguard_port,
						  rcu);

	netdev_put(port->dev, &port->dev_tracker);
	kvmguard_vm_put(port->vm);
	kfree(port);
}

/* Unpublish @port, which has no hooks, and free it after a grace period. */
static void port_release(struct kvmguard_port *port)
{
	port->counts->port = NULL;	/* they stay: see "Counters" */
	spin_lock(&ports_lock);
	if (port->away)
		list_del(&port->away_node);
	else
		hash_del_rcu(&port->node);
	list_del_rcu(&port->vm_node);
	spin_unlock(&ports_lock);
	call_rcu(&port->rcu, port_free_rcu);
}

static void port_unbind(struct kvmguard_port *port)
{
	/* A guarded bridge drops its frames before its rules go. */
	kvmguard_net_guard_bound(port->dev, false);
	port_drop_rx_off(port);
	port_trim(port, false, PORT_NO_VLAN);	/* only removes */
	port_release(port);
}

static void ports_retry_work(struct work_struct *work)
{
	struct kvmguard_port *port;
	bool again = false;
	int bkt;

	rtnl_lock();
	hash_for_each(ports, bkt, port, node) {
		if (port->stale) {
			port->stale = false;
			port_sync_or_close(port);
		}
		if (!READ_ONCE(port->closed) || !port_sync(port))
			continue;
		port_drop_rx_on(port);
		again = true;
	}
	if (again && !ports_closed)
		schedule_delayed_work(&retry_work, HZ);
	rtnl_unlock();
}

static void port_init_ops(struct kvmguard_port *port)
{
	struct nf_hook_ops *from = &port->ops[0], *to = &port->ops[1];
	bool tap = port->kind == PORT_TAP;

	from->hook = port_from_guest;
	from->hooknum = tap ? NF_NETDEV_INGRESS : NF_NETDEV_EGRESS;
	from->priority = INT_MIN + 1;	/* first: nft sees the tagged frame */
	to->hook = port_to_guest;
	to->hooknum = tap ? NF_NETDEV_EGRESS : NF_NETDEV_INGRESS;
	to->priority = INT_MAX - 1;	/* last: after nft saw the tag */
	for (; from <= to; from++) {
		from->pf = NFPROTO_NETDEV;
		from->dev = port->dev;
		from->priv = port;
	}
}

int kvmguard_net_bind(struct kvmguard_vm *vm, struct net_device *dev,
		      u8 bound_by, struct netlink_ext_ack *extack)
{
	struct port_counts *counts, *new_counts = NULL;
	struct kvmguard_port *port;
	int kind, err;

	ASSERT_RTNL();
	kind = port_kind(dev);
	if (kind < 0) {
		NL_SET_ERR_MSG(extack, "device is neither a tap nor a macvtap");
		return kind;
	}
	port = port_find(dev) ?: port_away_find(dev);
	if (port) {
		/* Bound again by the same VM: it stays as it was bound. */
		if (port->vm == vm)
			return 0;
		NL_SET_ERR_MSG(extack, "device is bound to another VM");
		return -EBUSY;
	}
	if (ports_closed || dev->reg_state != NETREG_REGISTERED) {
		NL_SET_ERR_MSG(extack, "device is going away");
		return -ENODEV;
	}

	port = kvmguard_fault(KVMGUARD_FAULT_PORT_ALLOC) ? NULL :
	       kzalloc(sizeof(*port), GFP_KERNEL);
	if (!port)
		return -ENOMEM;
	counts = counts_find(vm, dev);
	if (!counts) {
		new_counts = counts_new(vm, dev);
		if (!new_counts) {
			kfree(port);
			return -ENOMEM;
		}
		counts = new_counts;
	}
	port->counts = counts;
	port->stats = counts->stats;
	port->dev = dev;
	port->net = dev_net(dev);
	port->ifindex = dev->ifindex;
	port->vm = vm;
	port->bound_by = bound_by;
	port->kind = kind;
	port->to_guest_vlan = PORT_NO_VLAN;
	port->from_guest_vlan = PORT_NO_VLAN;
	port_init_ops(port);
	netdev_hold(dev, &port->dev_tracker, GFP_KERNEL);
	kref_get(&vm->ref);

	/*
	 * Published before the rules are read: a policy change either sees
	 * the port in the VM's list (kvmguard_net_apply() then waits for
	 * rtnl) or was published before this reads the rules.
	 */
	spin_lock(&ports_lock);
	if (vm->net.gone) {
		spin_unlock(&ports_lock);
		if (new_counts)
			counts_free_rcu(&new_counts->rcu);	/* never listed */
		port_free_rcu(&port->rcu);	/* never published */
		NL_SET_ERR_MSG(extack, "the VM is being destroyed");
		return -ENOENT;
	}
	if (new_counts)
		counts_list_add(new_counts);
	counts->port = port;
	hash_add_rcu(ports, &port->node, port_key(port->net, port->ifindex));
	list_add_tail_rcu(&port->vm_node, &vm->net.ports);
	spin_unlock(&ports_lock);

	err = port_sync(port);
	if (err) {
		NL_SET_ERR_MSG(extack, "cannot attach to the device");
		/* What did attach goes too: the cache slot, the hook's use. */
		port_unbind(port);
		return err;
	}
	/* Its rules are in place: a guarded bridge lets its frames pass. */
	kvmguard_net_guard_bound(dev, true);
	return 0;
}

void kvmguard_net_unbind(struct kvmguard_vm *vm, struct net_device *dev,
			 u8 bound_by)
{
	struct kvmguard_port *port;

	ASSERT_RTNL();
	port = port_find(dev) ?: port_away_find(dev);
	if (port && port->vm == vm && port->bound_by == bound_by)
		port_unbind(port);
}

/*
 * Requests (config mutex held)
 */

static struct net_device *request_dev(const char *ifname, u32 ifindex,
				      struct netlink_ext_ack *extack)
{
	struct net_device *dev;

	dev = ifname ? __dev_get_by_name(&init_net, ifname) :
		       __dev_get_by_index(&init_net, ifindex);
	if (!dev)
		NL_SET_ERR_MSG(extack, "no such network device");
	return dev;
}

int kvmguard_net_bind_request(u64 vm_id, const char *ifname, u32 ifindex,
			      struct netlink_ext_ack *extack)
{
	struct net_device *dev;
	struct kvmguard_vm *vm;
	int err;

	lockdep_assert_held(&kvmguard_config_mutex);
	vm = kvmguard_vm_get_by_id(vm_id);
	if (!vm) {
		NL_SET_ERR_MSG(extack, "no VM with that id");
		return -ENOENT;
	}
	rtnl_lock();
	dev = request_dev(ifname, ifindex, extack);
	err = dev ? kvmguard_net_bind(vm, dev, KVMGUARD_NET_BOUND_MANUAL,
				      extack) : -ENODEV;
	rtnl_unlock();
	kvmguard_vm_put(vm);
	return err;
}

int kvmguard_net_unbind_request(const char *ifname, u32 ifindex,
				struct netlink_ext_ack *extack)
{
	struct kvmguard_port *port;
	struct net_device *dev;
	int err = 0;

	lockdep_assert_held(&kvmguard_config_mutex);
	rtnl_lock();
	dev = request_dev(ifname, ifindex, extack);
	port = dev ? port_find(dev) : NULL;
	if (port) {
		port_unbind(port);
	} else if (dev) {
		NL_SET_ERR_MSG(extack, "device is not bound to a VM");
		err = -ENOENT;
	} else {
		err = -ENODEV;
	}
	rtnl_unlock();
	return err;
}

/*
 * VMs
 */

void kvmguard_net_vm_init(struct kvmguard_vm *vm)
{
	INIT_LIST_HEAD(&vm->net.ports);
	spin_lock_init(&vm->net.report_lock);
}

/*
 * Policy changes come in two steps, both under the config mutex: first
 * kvmguard_net_prepare() attaches to every port the change reaches the
 * hooks its new rules need, besides those it has (port->prepared keeps
 * them through any port_sync() meanwhile), so that the change can be
 * refused before anything changed; then, once the rules are published,
 * kvmguard_net_apply() detaches what the rules no longer need. A port
 * bound in between (vhost.c binds without the config mutex) may still
 * fail to attach there: that port is closed.
 */

/*
 * Does the change prepared need hooks at @port: is it @vm's (NULL: a VM
 * of @policy) and do its new rules have a network rule? @rules NULL: the
 * VMs of @policy, which is being deleted, get the policy the bindings
 * give them (kvmguard_registry_rebind()).
 */
static bool port_prepare_needs(const struct kvmguard_port *port,
			       const struct kvmguard_vm *vm,
			       const struct kvmguard_policy *policy,
			       const struct kvmguard_rules *rules)
{
	const struct kvmguard_rules *next_rules;
	struct kvmguard_policy *next;
	bool need;
	u8 bound_by;

	if (vm ? port->vm != vm :
		 rcu_access_pointer(port->vm->policy) != policy)
		return false;
	if (rules)
		return kvmguard_net_rules(rules);
	next = kvmguard_resolve_vm(port->vm, &bound_by);
	if (!next)
		return false;
	next_rules = rcu_dereference_protected(next->rules,
					       lockdep_is_held(&kvmguard_config_mutex));
	need = kvmguard_net_rules(next_rules);
	kvmguard_policy_put(next);
	return need;
}

int kvmguard_net_prepare(struct kvmguard_vm *vm,
			 struct kvmguard_policy *policy,
			 const struct kvmguard_rules *rules,
			 struct netlink_ext_ack *extack)
{
	struct kvmguard_port *port;
	int bkt, err = 0;

	lockdep_assert_held(&kvmguard_config_mutex);
	if ((vm || rules) && !kvmguard_net_rules(rules))
		return 0;		/* hooks only go */
	rtnl_lock();
	hash_for_each(ports, bkt, port, node) {
		if (!port_prepare_needs(port, vm, policy, rules))
			continue;
		port->prepared = true;
		err = port_attach(port, true, port_on_bridge(port->dev));
		if (err) {
			NL_SET_ERR_MSG(extack, "cannot attach to a network device of the VM");
			pr_info("VM %llu: %s: cannot attach (%d), the change is refused\n",
				port->vm->id, netdev_name(port->dev), err);
			break;
		}
	}
	if (err) {
		/* Back to what the rules in force want. */
		hash_for_each(ports, bkt, port, node) {
			if (!port->prepared)
				continue;
			port->prepared = false;
			port_sync(port);
		}
	}
	rtnl_unlock();
	return err;
}

void kvmguard_net_apply(struct kvmguard_vm *vm)
{
	struct kvmguard_port *port;
	bool has_ports;

	lockdep_assert_held(&kvmguard_config_mutex);
	/* See kvmguard_net_bind() on why a port cannot be missed. */
	spin_lock(&ports_lock);
	has_ports = !list_empty(&vm->net.ports);
	spin_unlock(&ports_lock);
	if (!has_ports)
		return;
	rtnl_lock();
	list_for_each_entry(port, &vm->net.ports, vm_node) {
		port->prepared = false;
		port_sync_or_close(port);
	}
	rtnl_unlock();
}

void kvmguard_net_vm_gone(struct kvmguard_vm *vm)
{
	/*
	 * Queued under ports_lock: kvmguard_net_uninit() either removes the
	 * ports first (nothing to queue) or cancels this work afterwards.
	 */
	spin_lock(&ports_lock);
	WRITE_ONCE(vm->net.gone, true);
	if (!list_empty(&vm->net.ports) || vm->net.counted)
		schedule_work(&gone_work);
	spin_unlock(&ports_lock);
}

static void ports_gone_work(struct work_struct *work)
{
	struct kvmguard_port *port;
	struct hlist_node *tmp;
	int bkt;

	struct kvmguard_port *next;

	rtnl_lock();
	hash_for_each_safe(ports, bkt, tmp, port, node)
		if (READ_ONCE(port->vm->net.gone))
			port_unbind(port);
	list_for_each_entry_safe(port, next, &away_ports, away_node)
		if (READ_ONCE(port->vm->net.gone))
			port_unbind(port);
	counts_prune(NULL);
	rtnl_unlock();
}

static int port_fill(struct sk_buff *skb, struct kvmguard_port *port)
{
	static const int denied_attr[KVMGUARD_NET_RULES] = {
		[KVMGUARD_NET_RULE_TAG - 1]	= KVMGUARD_A_NET_TAG_DENIED,
		[KVMGUARD_NET_RULE_SEGMENT - 1]	= KVMGUARD_A_NET_SEGMENT_DENIED,
		[KVMGUARD_NET_RULE_ISOLATE - 1]	= KVMGUARD_A_NET_ISOLATE_DENIED,
	};
	struct port_stats sum = {};
	struct nlattr *nest;
	int cpu, i;

	for_each_possible_cpu(cpu) {
		const struct port_stats *st = per_cpu_ptr(port->stats, cpu);

		sum.tagged += READ_ONCE(st->tagged);
		sum.passed += READ_ONCE(st->passed);
		sum.delivered += READ_ONCE(st->delivered);
		for (i = 0; i < KVMGUARD_NET_RULES; i++)
			sum.denied[i] += READ_ONCE(st->denied[i]);
	}
	nest = nla_nest_start(skb, KVMGUARD_A_NET_DEV);
	if (!nest ||
	    nla_put_u32(skb, KVMGUARD_A_NET_IFINDEX, port->ifindex) ||
	    nla_put_string(skb, KVMGUARD_A_NET_IFNAME, port->dev->name) ||
	    nla_put_u8(skb, KVMGUARD_A_NET_BOUND_BY, port->bound_by) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_NET_TAGGED, sum.tagged,
			      KVMGUARD_A_PAD) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_NET_FORWARDED,
			      sum.tagged + sum.passed, KVMGUARD_A_PAD) ||
	    nla_put_u64_64bit(skb, KVMGUARD_A_NET_DELIVERED, sum.delivered,
			      KVMGUARD_A_PAD))
		return -EMSGSIZE;
	for (i = 0; i < KVMGUARD_NET_RULES; i++)
		if (nla_put_u64_64bit(skb, denied_attr[i], sum.denied[i],
				      KVMGUARD_A_PAD))
			return -EMSGSIZE;
	nla_nest_end(skb, nest);
	return 0;
}

/* Process context; rtnl keeps the ports and their device names still. */
int kvmguard_net_fill(struct sk_buff *skb, struct kvmguard_vm *vm)
{
	struct kvmguard_port *port;
	struct nlattr *nest;
	int err = 0;

	nest = nla_nest_start(skb, KVMGUARD_A_VM_NET_DEVS);
	if (!nest)
		return -EMSGSIZE;
	rtnl_lock();
	list_for_each_entry(port, &vm->net.ports, vm_node) {
		if (port->away)
			continue;	/* not a device of its netns now */
		err = port_fill(skb, port);
		if (err)
			break;
	}
	rtnl_unlock();
	if (err) {
		nla_nest_cancel(skb, nest);
		return err;
	}
	nla_nest_end(skb, nest);
	return 0;
}

/*
 * Devices
 */

/* Does @dev have no upper device? Under rtnl. */
static bool port_no_upper(struct net_device *dev)
{
	struct net_device *upper;
	struct list_head *iter;
	bool none = true;

	rcu_read_lock();
	netdev_for_each_upper_dev_rcu(dev, upper, iter)
		none = false;
	rcu_read_unlock();
	return none;
}

/*
 * @port's device is about to be linked to an upper device (@ptr:
 * NETDEV_PRECHANGEUPPER's info; unlinking cannot be refused, see
 * NETDEV_CHANGEUPPER): the hooks its place then needs attach now, or the
 * link is refused with their error. A closed port takes no upper device.
 */
static int port_pre_link(struct kvmguard_port *port, void *ptr)
{
	struct netdev_notifier_changeupper_info *info = ptr;
	struct netlink_ext_ack *extack;
	bool on_bridge;
	u32 vlan;
	int err;

	if (!info->linking)
		return 0;
	extack = netdev_notifier_info_to_extack(&info->info);
	if (READ_ONCE(port->closed)) {
		NL_SET_ERR_MSG(extack, "kvmguard: the device lost its hook");
		return -EBUSY;
	}
	if (!port_wants(port, &vlan))
		return 0;
	on_bridge = netif_is_bridge_master(info->upper_dev) &&
		    port_no_upper(port->dev);
	err = port_attach(port, true, on_bridge);
	if (err) {
		NL_SET_ERR_MSG(extack, "kvmguard cannot attach to the device");
		port_sync(port);	/* back to what it had */
		return err;
	}
	/* NETDEV_CHANGEUPPER trims them, unless another notifier refuses. */
	port->stale = true;
	schedule_delayed_work(&retry_work, HZ);
	return 0;
}

/*
 * Netns moves
 *
 * A device moved to another netns is unregistered from its netns
 * (NETDEV_UNREGISTER while dev->reg_state is still NETREG_REGISTERED) and
 * registered in the other one (NETDEV_REGISTER), possibly under another
 * ifindex; it is the same struct net_device, which its port holds. Its
 * port then leaves the hash, keyed by (netns, ifindex), its hooks go (a
 * netfilter hook belongs to a netns, the direct-call cache to an ifindex),
 * and it waits on away_ports, still bound to its VM, listed nowhere: its
 * VM's rules are not enforced in a netns that is not its own. Back in its
 * netns (by net_cookie, which is never reused), it takes its place under
 * its ifindex of now and gets its hooks again, or is closed (see "Fail
 * closed"). Deleted while away, or its VM destroyed, the binding ends.
 */

/* @port's device leaves its netns, not to be deleted; rtnl. */
static void port_leave(struct kvmguard_port *port)
{
	port_drop_rx_off(port);
	port_trim(port, false, PORT_NO_VLAN);	/* only removes */
	port->home = port->net->net_cookie;
	spin_lock(&ports_lock);
	hash_del_rcu(&port->node);
	port->away = true;
	list_add_tail(&port->away_node, &away_ports);
	spin_unlock(&ports_lock);
	pr_info("VM %llu: %s leaves its network namespace, still bound; rules again on its return\n",
		port->vm->id, netdev_name(port->dev));
}

/* @port's device is back in its netns, registered again; rtnl. */
static void port_return(struct kvmguard_port *port)
{
	struct net_device *dev = port->dev;

	/* No reader may still be on its hash node from before it left. */
	synchronize_net();
	spin_lock(&ports_lock);
	list_del(&port->away_node);
	port->away = false;
	port->net = dev_net(dev);
	port->ifindex = dev->ifindex;
	hash_add_rcu(ports, &port->node, port_key(port->net, port->ifindex));
	spin_unlock(&ports_lock);
	pr_info("VM %llu: %s is back in its network namespace, bound as before\n",
		port->vm->id, netdev_name(dev));
	port_sync_or_close(port);
}

static int net_device_event(struct notifier_block *nb, unsigned long event,
			    void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);
	struct kvmguard_port *port;

	switch (event) {
	case NETDEV_UNREGISTER:
		/* Deleted: the binding ends; leaving its netns: see above. */
		port = port_find(dev);
		if (!port && dev->reg_state != NETREG_REGISTERED)
			port = port_away_find(dev);	/* deleted while away */
		if (port && !port->away && !ports_closed &&
		    dev->reg_state == NETREG_REGISTERED)
			port_leave(port);
		else if (port)
			port_unbind(port);
		counts_prune(dev);	/* but those of a port that left */
		break;
	case NETDEV_REGISTER:
		port = port_away_find(dev);
		if (port && dev_net(dev)->net_cookie == port->home)
			port_return(port);
		break;
	case NETDEV_PRECHANGEUPPER:
		port = port_find(dev);
		if (port)
			return notifier_from_errno(port_pre_link(port, ptr));
		break;
	case NETDEV_CHANGEUPPER:
		/* Joined or left a bridge, or gained a VLAN device: taps. */
		port = port_find(dev);
		if (port) {
			port->stale = false;
			port_sync_or_close(port);
		}
		break;
	case NETDEV_PRE_TYPE_CHANGE:
		/* TUNSETLINK: a port stays an Ethernet device. */
		if (kvmguard_net_dev_bound(dev))
			return notifier_from_errno(-EBUSY);
		break;
	}
	return NOTIFY_DONE;
}

static struct notifier_block net_notifier = {
	.notifier_call = net_device_event,
};

int kvmguard_net_init(void)
{
	int err;

	err = kvmguard_bypass_init();
	if (err)
		return err;
	err = kvmguard_tap_hooks_init();
	if (err)
		goto err_bypass;
	err = register_netdevice_notifier(&net_notifier);
	if (err)
		goto err_tap;
	err = kvmguard_net_guard_init();
	if (err)
		goto err_notifier;
	return 0;

err_notifier:
	unregister_netdevice_notifier(&net_notifier);
err_tap:
	kvmguard_tap_hooks_uninit();
err_bypass:
	kvmguard_bypass_uninit();
	return err;
}

void kvmguard_net_uninit(void)
{
	struct kvmguard_port *port, *next;
	struct hlist_node *tmp;
	int bkt;

	kvmguard_net_guard_uninit();
	rtnl_lock();
	ports_closed = true;
	hash_for_each_safe(ports, bkt, tmp, port, node)
		port_unbind(port);
	list_for_each_entry_safe(port, next, &away_ports, away_node)
		port_unbind(port);
	counts_drop_all();
	rtnl_unlock();
	unregister_netdevice_notifier(&net_notifier);
	cancel_work_sync(&gone_work);
	cancel_delayed_work_sync(&retry_work);
	kvmguard_tap_hooks_uninit();
	kvmguard_bypass_uninit();
	/* No hook runs any more; then every port is freed. */
	synchronize_net();
	rcu_barrier();
}
