/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Network ports, shared by net.c (ports and rules), tap_hooks.c (the
 * direct calls that serve taps) and offsets.c (for net_entry.S).
 */
#ifndef _KVMGUARD_NET_H
#define _KVMGUARD_NET_H

#include <linux/netdevice.h>
#include <linux/netfilter.h>

#include "kvmguard.h"

struct port_counts;

enum port_kind {
	PORT_TAP,			/* from guest: ingress; to guest: egress */
	PORT_MACVTAP,			/* the reverse */
};

/* Frames of one port, per cpu; forwarded (uapi) is tagged + passed. */
struct port_stats {
	u64 tagged;			/* from the guest, given the access VID */
	u64 passed;			/* from the guest, let through as it was */
	u64 delivered;			/* toward the guest, let through */
	u64 denied[KVMGUARD_NET_RULES];	/* by enum kvmguard_net_rule - 1 */
};

struct kvmguard_port {
	struct net_device *dev;		/* held; read by net_entry.S */
	struct hlist_node node;		/* ports, by (net, ifindex) */
	struct list_head vm_node;	/* vm->net.ports */
	netdevice_tracker dev_tracker;
	struct net *net;		/* dev_net(dev), compared only */
	int ifindex;			/* dev->ifindex, fixed while bound */
	struct kvmguard_vm *vm;		/* holds a reference */
	u8 bound_by;			/* enum kvmguard_net_bound_by */
	u8 kind;			/* enum port_kind */
	/* How the rules reach the frames; all under rtnl (net.c). */
	bool nf_hooked;			/* ops registered (see port_sync()) */
	bool direct;			/* a tap in the direct-call cache */
	bool bridged;			/* from its guest: at br_handle_frame */
	bool rx_drop;			/* closed: its rx_handler drops all */
	bool prepared;			/* a policy change will want hooks */
	bool stale;			/* hooks changed for an upper device */
	bool closed;			/* a hook it needs is missing: drop */
	bool away;			/* in another netns (see port_leave()) */
	struct list_head away_node;	/* away_ports, while away */
	u64 home;			/* net_cookie of its netns, while away */
	struct nf_hook_ops ops[2];	/* from the guest, to the guest */
	struct port_counts *counts;	/* of its (VM, device) pair (net.c) */
	struct port_stats __percpu *stats;	/* counts->stats */
	/*
	 * The common frames, which net_entry.S handles by itself at a tap
	 * that is an access port: the skb's VLAN word of the access VLAN
	 * (port_vlan_word()), or PORT_NO_VLAN, which sends
	 * every frame to the C. Set by port_apply() from the VM's rules.
	 */
	u32 to_guest_vlan;		/* tagged so: untag, deliver */
	u32 from_guest_vlan;		/* (bridged) untagged: tag so, pass */
	struct rcu_head rcu;
};

/* Matches no frame: a frame's VLAN word is compared masked. */
#define PORT_NO_VLAN		U32_MAX
/* The bits of an skb's VLAN word that a port's VLAN sets: protocol, VID. */
#define PORT_VLAN_MASK		0x0fffffffU

/*
 * The direct-call cache (net.c): slot ifindex % size holds a tap port with
 * rules whose device has an ifindex of that slot, if there is one, else
 * kvmguard_net_no_port. A device whose slot holds that is no such port.
 * (Devices of other netns may share a slot: the entry compares the device.)
 */
#define KVMGUARD_NET_CACHE_BITS	10
extern struct kvmguard_port *kvmguard_net_cache[1 << KVMGUARD_NET_CACHE_BITS];
/* An empty slot's: a port of no device, so that the entry's compare fails. */
extern struct kvmguard_port kvmguard_net_no_port;

/* tap_hooks.c: the direct calls, attached while some port uses them. */
enum kvmguard_tap_hook {
	TAP_HOOK_XMIT,			/* tun_net_xmit(): toward the guest */
	TAP_HOOK_BRIDGE,		/* br_handle_frame(): from the guest */
	TAP_HOOKS
};

int kvmguard_tap_hook_get(enum kvmguard_tap_hook hook, unsigned long ip);
void kvmguard_tap_hook_put(enum kvmguard_tap_hook hook);
int kvmguard_tap_hooks_init(void);
void kvmguard_tap_hooks_uninit(void);

/* net_entry.S, and the C it calls (net.c) */
void kvmguard_tun_xmit_entry(void);
void kvmguard_br_frame_entry(void);
__visible bool kvmguard_net_tun_xmit(struct sk_buff *skb,
				     struct net_device *dev,
				     struct kvmguard_port *port);
__visible bool kvmguard_net_br_frame(struct sk_buff *skb,
				     struct kvmguard_port *port);

/* net.c: enum port_kind of @dev, or -EOPNOTSUPP. */
int kvmguard_net_port_kind(const struct net_device *dev);

/* net_guard.c: guarded segments (bridges). */
struct kvmguard_guard_info {
	int ifindex;
	char ifname[IFNAMSIZ];
	u32 ports;			/* unbound, dropping */
	u64 dropped;
};

int kvmguard_net_guard_init(void);
void kvmguard_net_guard_uninit(void);
void kvmguard_net_guard_bound(const struct net_device *dev, bool bound);
/* Config mutex held: CMD_NET_GUARD_SET. */
int kvmguard_net_guard_request(const char *ifname, u32 ifindex, bool on,
			       struct netlink_ext_ack *extack);
bool kvmguard_net_guard_nth(unsigned long n, struct kvmguard_guard_info *out);

/*
 * netlink.c: EVENT_NET_GUARD of a frame at @port of guarded @bridge, or
 * EVENT_NET_GUARD_END (@port NULL) of @bridge.
 */
void kvmguard_notify_guard(u8 event, const struct net_device *port,
			   const struct net_device *bridge, u8 dir, u64 count);
/* net_bypass.c: roads around the hooks, refused or checked (all rtnl but xmit). */
int kvmguard_bypass_init(void);
void kvmguard_bypass_uninit(void);
int kvmguard_bypass_check(struct net_device *dev);
int kvmguard_bypass_tap_get(struct net_device *dev);
void kvmguard_bypass_tap_put(void);
/* net.c, for them: a port with network rules; XDP frames toward it. */
bool kvmguard_net_dev_has_rules(const struct net_device *dev);
bool kvmguard_net_xdp_frames(const struct net_device *dev, int n);

#endif /* _KVMGUARD_NET_H */
