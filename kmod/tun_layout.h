/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The heads of two private structures of the tun driver (drivers/net/tun.c),
 * as far as vhost.c needs them to find the device behind a tun socket. They
 * are the same in every kernel kvmguard supports; the sizes of the public
 * structures they start with come from the headers built against.
 *
 * The layout is private, so vhost.c checks every device it finds this way
 * by two independent routes (netdev_priv() of the device is the tun_struct,
 * and the device's link kind is "tun") and refuses the backend when they
 * disagree.
 */
#ifndef _KVMGUARD_TUN_LAYOUT_H
#define _KVMGUARD_TUN_LAYOUT_H

#include <linux/if_tap.h>
#include <linux/net.h>
#include <net/sock.h>

struct kvmguard_tun_struct;

/* struct tun_file: file->private_data of /dev/net/tun; sock is &socket. */
struct kvmguard_tun_file {
	struct sock sk;
	struct socket socket;
	/* NULL while the queue is detached (TUNSETQUEUE IFF_DETACH_QUEUE). */
	struct kvmguard_tun_struct __rcu *tun;
};

/* struct tun_struct: netdev_priv() of a tun device. */
struct kvmguard_tun_struct {
	void __rcu *tfiles[MAX_TAP_QUEUES];
	unsigned int numqueues;
	unsigned int flags;
	kuid_t owner;
	kgid_t group;
	struct net_device *dev;
};

#endif /* _KVMGUARD_TUN_LAYOUT_H */
