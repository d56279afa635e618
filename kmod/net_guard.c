// SPDX-License-Identifier: GPL-2.0
/*
 * Guarded segments: a Linux bridge on which a tap or macvtap that no VM has
 * bound passes no frame (CMD_NET_GUARD_SET).
 *
 * Every port of a segment must be bound to a VM for the segment's rules to
 * hold (net.c): an unbound tap on a flat bridge sees every frame of it and
 * may send any. Under a guard, such a port's frames are dropped both ways,
 * counted and reported, so a port nobody bound never sees the segment.
 *
 * Guard ports. While a bridge is guarded, each tap that is a port of it and
 * each macvtap whose lower device it is has a guard port here, bound to a
 * VM or not, with two netfilter netdev hooks on the device: one where its
 * guest sends (a tap's ingress, a macvtap's egress), one where its guest
 * receives (the reverse), both first in their chains. A guard port of an
 * unbound device drops every frame; one of a bound device (open) lets them
 * through to its VM's rules. The hooks are there for bound devices too, so
 * that binding and unbinding (which cannot fail, and an unbinding that the
 * VM's destruction causes must not) only flip a flag: net.c closes the
 * guard before a port's own rules go, and opens it after they are in place.
 *
 * Cost. Nothing on a host, or a bridge, without a guard: no hook exists.
 * While a guarded bridge has ports, netfilter's netdev hooks are in use,
 * whose static keys are global (see net.c, "Taps").
 *
 * A device becomes a guard port when it is linked to a guarded bridge
 * (NETDEV_CHANGEUPPER, linking: an error there undoes the link, so a port
 * whose hooks cannot attach never joins; the bridge forwards nothing to or
 * from a new port before the link is complete), and when the guard is set
 * on a bridge it is already on (an error refuses the request, changing
 * nothing). It stops being one when it is unlinked or unregistered, or the
 * guard ends: at CMD_NET_GUARD_SET off, or when the bridge is unregistered
 * (deleted or moved to another netns), with an EVENT_NET_GUARD_END.
 *
 * Locking: guards and guard ports change under rtnl (netlink requests,
 * which hold the config mutex first, and the netdev notifier). The hooks
 * run under RCU and read their guard port and its guard: both are freed
 * after a grace period that follows the removal of the hooks. A guard holds
 * its bridge and a guard port its device until then.
 */
#define pr_fmt(fmt) "kvmguard: " fmt
#include <linux/if_bridge.h>
#include <linux/list.h>
#include <linux/netdevice.h>
#include <linux/netfilter.h>
#include <linux/rtnetlink.h>
#include <linux/slab.h>
#include <net/net_namespace.h>
#include <net/netlink.h>

#include "kvmguard.h"
#include "net.h"

struct guard {
	struct list_head node;		/* guards */
	struct net_device *br;		/* held */
	netdevice_tracker br_tracker;
	struct list_head ports;		/* its guard_ports */
	atomic64_t dropped;
	spinlock_t report_lock;		/* reports */
	struct kvmguard_report reports[KVMGUARD_NET_DIR_MAX + 1];
	struct rcu_head rcu;
};

struct guard_port {
	struct list_head node;		/* guard->ports */
	struct guard *guard;
	struct net_device *dev;		/* held */
	netdevice_tracker dev_tracker;
	bool open;			/* bound to a VM: its rules apply */
	struct nf_hook_ops ops[2];	/* from the guest, to the guest */
	struct rcu_head rcu;
};

static LIST_HEAD(guards);
/* Set at module unload, under rtnl: no guard can be set any more. */
static bool guards_closed;

/* The guard of bridge @br, or NULL; rtnl. */
static struct guard *guard_find(const struct net_device *br)
{
	struct guard *g;

	ASSERT_RTNL();
	list_for_each_entry(g, &guards, node)
		if (g->br == br)
			return g;
	return NULL;
}

/* The guard port of @dev on guard @g, or NULL; rtnl. */
static struct guard_port *guard_port_find(struct guard *g,
					  const struct net_device *dev)
{
	struct guard_port *gp;

	list_for_each_entry(gp, &g->ports, node)
		if (gp->dev == dev)
			return gp;
	return NULL;
}

static unsigned int guard_drop(struct guard_port *gp, u8 dir)
{
	struct guard *g = gp->guard;
	unsigned long flags;
	u64 count;

	atomic64_inc(&g->dropped);
	spin_lock_irqsave(&g->report_lock, flags);
	count = kvmguard_report_due(&g->reports[dir]);
	spin_unlock_irqrestore(&g->report_lock, flags);
	if (count) {
		pr_info_ratelimited("%s: frame %s unbound %s dropped (%llu)\n",
				    netdev_name(g->br),
				    dir == KVMGUARD_NET_FROM_GUEST ? "from" : "to",
				    netdev_name(gp->dev), count);
		kvmguard_notify_guard(KVMGUARD_EVENT_NET_GUARD, gp->dev, g->br,
				      dir, count);
	}
	return NF_DROP;
}

static unsigned int guard_from_guest(void *priv, struct sk_buff *skb,
				     const struct nf_hook_state *state)
{
	struct guard_port *gp = priv;

	if (likely(READ_ONCE(gp->open)))
		return NF_ACCEPT;
	return guard_drop(gp, KVMGUARD_NET_FROM_GUEST);
}

static unsigned int guard_to_guest(void *priv, struct sk_buff *skb,
				   const struct nf_hook_state *state)
{
	struct guard_port *gp = priv;

	if (likely(READ_ONCE(gp->open)))
		return NF_ACCEPT;
	return guard_drop(gp, KVMGUARD_NET_TO_GUEST);
}

/*
 * Make @dev, a tap or macvtap (@kind, enum port_kind) of guarded bridge
 * @g, a guard port; rtnl. 0 or -errno.
 */
static int guard_port_add(struct guard *g, struct net_device *dev, int kind)
{
	struct nf_hook_ops *from, *to;
	struct guard_port *gp;
	bool tap = kind == PORT_TAP;
	int err;

	ASSERT_RTNL();
	if (guard_port_find(g, dev))
		return 0;
	gp = kzalloc(sizeof(*gp), GFP_KERNEL);
	if (!gp)
		return -ENOMEM;
	gp->guard = g;
	gp->dev = dev;
	gp->open = kvmguard_net_dev_bound(dev);
	from = &gp->ops[0];
	to = &gp->ops[1];
	from->hook = guard_from_guest;
	from->hooknum = tap ? NF_NETDEV_INGRESS : NF_NETDEV_EGRESS;
	to->hook = guard_to_guest;
	to->hooknum = tap ? NF_NETDEV_EGRESS : NF_NETDEV_INGRESS;
	for (; from <= to; from++) {
		from->pf = NFPROTO_NETDEV;
		from->priority = INT_MIN;	/* before anything sees it */
		from->dev = dev;
		from->priv = gp;
	}
	err = nf_register_net_hooks(dev_net(dev), gp->ops,
				    ARRAY_SIZE(gp->ops));
	if (err) {
		kfree(gp);
		return err;
	}
	netdev_hold(dev, &gp->dev_tracker, GFP_KERNEL);
	list_add_tail(&gp->node, &g->ports);
	return 0;
}

static void guard_port_free_rcu(struct rcu_head *head)
{
	struct guard_port *gp = container_of(head, struct guard_port, rcu);

	netdev_put(gp->dev, &gp->dev_tracker);
	kfree(gp);
}

static void guard_port_del(struct guard_port *gp)
{
	ASSERT_RTNL();
	nf_unregister_net_hooks(dev_net(gp->dev), gp->ops,
				ARRAY_SIZE(gp->ops));
	list_del(&gp->node);
	call_rcu(&gp->rcu, guard_port_free_rcu);
}

static void guard_free_rcu(struct rcu_head *head)
{
	struct guard *g = container_of(head, struct guard, rcu);

	netdev_put(g->br, &g->br_tracker);
	kfree(g);
}

static void guard_end(struct guard *g)
{
	struct guard_port *gp, *tmp;

	ASSERT_RTNL();
	list_for_each_entry_safe(gp, tmp, &g->ports, node)
		guard_port_del(gp);
	list_del(&g->node);
	/* After the ports' hooks are gone: no hook reads it after this. */
	call_rcu(&g->rcu, guard_free_rcu);
}

/* Unbound ports of @g now; rtnl. */
static unsigned int guard_closed(const struct guard *g)
{
	const struct guard_port *gp;
	unsigned int n = 0;

	list_for_each_entry(gp, &g->ports, node)
		n += !gp->open;
	return n;
}

/* Guard @br, a bridge, and the taps and macvtaps already on it; rtnl. */
static int guard_start(struct net_device *br, struct netlink_ext_ack *extack)
{
	struct net_device *dev;
	struct list_head *iter;
	struct guard *g;
	int err = 0;

	ASSERT_RTNL();
	g = kzalloc(sizeof(*g), GFP_KERNEL);
	if (!g)
		return -ENOMEM;
	g->br = br;
	INIT_LIST_HEAD(&g->ports);
	spin_lock_init(&g->report_lock);
	atomic64_set(&g->dropped, 0);
	netdev_hold(br, &g->br_tracker, GFP_KERNEL);
	list_add_tail(&g->node, &guards);

	/* Its ports (taps), then the devices stacked on it (macvtaps). */
	netdev_for_each_lower_dev(br, dev, iter) {
		if (kvmguard_net_port_kind(dev) != PORT_TAP)
			continue;
		err = guard_port_add(g, dev, PORT_TAP);
		if (err)
			break;
	}
	if (!err) {
		netdev_for_each_upper_dev_rcu(br, dev, iter) {
			if (kvmguard_net_port_kind(dev) != PORT_MACVTAP)
				continue;
			err = guard_port_add(g, dev, PORT_MACVTAP);
			if (err)
				break;
		}
	}
	if (err) {
		NL_SET_ERR_MSG(extack, "cannot attach to a port of the bridge");
		guard_end(g);
		return err;
	}
	pr_info("%s: guarded: %u unbound ports closed\n", netdev_name(br),
		guard_closed(g));
	return 0;
}

int kvmguard_net_guard_request(const char *ifname, u32 ifindex, bool on,
			       struct netlink_ext_ack *extack)
{
	struct net_device *br;
	struct guard *g;
	int err = 0;

	lockdep_assert_held(&kvmguard_config_mutex);
	rtnl_lock();
	br = ifname ? __dev_get_by_name(&init_net, ifname) :
		      __dev_get_by_index(&init_net, ifindex);
	if (!br) {
		NL_SET_ERR_MSG(extack, "no such network device");
		err = -ENODEV;
	} else if (!netif_is_bridge_master(br)) {
		NL_SET_ERR_MSG(extack, "device is not a Linux bridge");
		err = -EOPNOTSUPP;
	} else {
		g = guard_find(br);
		if (on && !g) {
			err = guards_closed ? -ENODEV : guard_start(br, extack);
		} else if (!on && g) {
			pr_info("%s: guard off\n", netdev_name(br));
			guard_end(g);
		}
	}
	rtnl_unlock();
	return err;
}

/* The @n-th guard's state in @out; false if there is none. */
bool kvmguard_net_guard_nth(unsigned long n, struct kvmguard_guard_info *out)
{
	struct guard *g;
	bool found = false;

	rtnl_lock();
	list_for_each_entry(g, &guards, node) {
		if (n--)
			continue;
		out->ifindex = g->br->ifindex;
		strscpy(out->ifname, g->br->name, sizeof(out->ifname));
		out->ports = guard_closed(g);
		out->dropped = atomic64_read(&g->dropped);
		found = true;
		break;
	}
	rtnl_unlock();
	return found;
}

/*
 * net.c: @dev was bound to a VM and its rules are in place (@bound), or
 * its binding is about to end; rtnl.
 */
void kvmguard_net_guard_bound(const struct net_device *dev, bool bound)
{
	struct guard_port *gp;
	struct guard *g;

	ASSERT_RTNL();
	list_for_each_entry(g, &guards, node) {
		gp = guard_port_find(g, dev);
		if (gp)
			WRITE_ONCE(gp->open, bound);
	}
}

/* Linked (@linking) or unlinked: lower device @dev, upper @upper. */
static int guard_changeupper(struct net_device *dev,
			     struct net_device *upper, bool linking)
{
	struct guard_port *gp;
	struct net_device *port;
	struct guard *g;
	int kind;

	g = guard_find(upper);
	if (g) {
		port = dev;		/* a tap on the bridge */
		kind = PORT_TAP;
	} else {
		g = guard_find(dev);
		if (!g)
			return 0;
		port = upper;		/* a macvtap over it */
		kind = PORT_MACVTAP;
	}
	if (kvmguard_net_port_kind(port) != kind)
		return 0;
	if (linking)
		return guard_port_add(g, port, kind);
	gp = guard_port_find(g, port);
	if (gp)
		guard_port_del(gp);
	return 0;
}

static int guard_device_event(struct notifier_block *nb, unsigned long event,
			      void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);
	struct netdev_notifier_changeupper_info *info = ptr;
	struct netlink_ext_ack *extack;
	struct guard_port *gp;
	struct guard *g, *tmp;
	int err;

	switch (event) {
	case NETDEV_CHANGEUPPER:
		err = guard_changeupper(dev, info->upper_dev, info->linking);
		if (err) {
			extack = netdev_notifier_info_to_extack(&info->info);
			NL_SET_ERR_MSG(extack, "kvmguard cannot guard the device on its bridge");
			pr_err("%s: cannot guard %s (%d): not linked\n",
			       netdev_name(info->upper_dev), netdev_name(dev),
			       err);
			return notifier_from_errno(err);
		}
		break;
	case NETDEV_UNREGISTER:
		list_for_each_entry_safe(g, tmp, &guards, node) {
			if (g->br == dev) {
				pr_info("%s: gone, its guard with it\n",
					netdev_name(dev));
				kvmguard_notify_guard(KVMGUARD_EVENT_NET_GUARD_END,
						      NULL, dev, 0, 0);
				guard_end(g);
				continue;
			}
			gp = guard_port_find(g, dev);
			if (gp)
				guard_port_del(gp);
		}
		break;
	}
	return NOTIFY_DONE;
}

static struct notifier_block guard_notifier = {
	.notifier_call = guard_device_event,
};

int kvmguard_net_guard_init(void)
{
	return register_netdevice_notifier(&guard_notifier);
}

void kvmguard_net_guard_uninit(void)
{
	struct guard *g, *tmp;

	rtnl_lock();
	guards_closed = true;
	list_for_each_entry_safe(g, tmp, &guards, node)
		guard_end(g);
	rtnl_unlock();
	unregister_netdevice_notifier(&guard_notifier);
	/* Hooks are gone; the guards are freed before the module is. */
	synchronize_net();
	rcu_barrier();
}
