// SPDX-License-Identifier: GPL-2.0
/*
 * Roads around a port's hooks. net.c checks a tap's frames where tun hands
 * one to its guest (tun_net_xmit()) and where the host side first takes
 * one from it (br_handle_frame(), or netfilter ingress); these roads skip
 * one of them:
 *
 *  - XDP_REDIRECT into a tap: another device's XDP program sends frames
 *    to the tap's ndo_xdp_xmit, tun_xdp_xmit(), which queues them for
 *    the guest without tun_net_xmit(). They are not checked: toward a
 *    port whose VM has network rules they are dropped (audit mode counts
 *    and passes them), counted and reported as segment violations.
 *  - An XDP program on a port, native (tun_xdp()) or generic
 *    (generic_xdp_install()): it runs on the guest's frames before any
 *    hook and may redirect them anywhere. Refused (EBUSY, extack).
 *  - A clsact or ingress qdisc on a port: its ingress filters run before
 *    the bridge and netfilter ingress (a mirred or BPF redirect takes the
 *    guest's frame anywhere), its egress filters after a macvtap's
 *    netfilter egress hook. Refused where it asks for its filter blocks,
 *    tcf_block_get_ext() (EBUSY, extack).
 *
 * "A port" above is a device bound to a VM whose rules have a network
 * rule (or get one: a change kvmguard_net_prepare() prepared), as
 * kvmguard_net_dev_has_rules() says. A device that has an XDP program or
 * such a qdisc (or, 6.6+, a tcx program) cannot become one:
 * kvmguard_bypass_check() makes net.c's port_attach() fail with EBUSY,
 * so the binding, or the policy change, is refused, and a port that
 * cannot refuse it is closed (net.c, "Fail closed").
 *
 * Not a road: a packet socket on a tap sends through dev_queue_xmit() or,
 * with PACKET_QDISC_BYPASS, dev_direct_xmit(), both into tun_net_xmit();
 * what it receives (every frame the tap sees, before the rules) is what
 * CAP_NET_RAW sees on the bridge or the uplink anyway.
 *
 * The XDP, tcx and qdisc hooks only redirect a configuration call (those
 * found by name attach with the first port that gets rules); the tun ones
 * are attached while some tap port needs them, so a device that is no
 * port pays nothing per frame. Every hook is a kvmguard_redirect
 * (hooks.c). Configuration runs under rtnl, which orders it against
 * port changes.
 */
#define pr_fmt(fmt) "kvmguard: " fmt
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/netdevice.h>
#include <linux/nsproxy.h>
#include <linux/ptrace.h>
#include <linux/rtnetlink.h>
#include <linux/workqueue.h>
#include <net/flow_offload.h>
#include <net/net_namespace.h>
#include <net/pkt_cls.h>
#include <net/sch_generic.h>

#include "kvmguard.h"
#include "compat.h"
#include "net.h"

#define ARG(regs, n)	regs_get_kernel_argument(regs, n)

/*
 * XDP frames into a tap
 */

/*
 * Instead of tun_xdp_xmit(): nothing sent; the caller returns the frames
 * (devmap's flush frees those past the count sent, tun_xdp_tx() a frame
 * not sent).
 */
static noinline notrace int bypass_xdp_xmit_drop(struct net_device *dev,
						 int n, struct xdp_frame **frames,
						 u32 flags)
{
	return 0;
}

/* At tun_xdp_xmit(dev, n, frames, flags); softirq or BH off. */
static unsigned long bypass_xdp_xmit(struct pt_regs *regs)
{
	struct net_device *dev = (struct net_device *)ARG(regs, 0);
	int n = (int)ARG(regs, 1);

	if (!kvmguard_net_xdp_frames(dev, n))
		return 0;
	dev_core_stats_tx_dropped_inc(dev);
	return (unsigned long)bypass_xdp_xmit_drop;
}

/*
 * XDP programs on a port
 */

static noinline notrace int bypass_xdp_refuse(struct net_device *dev,
					      struct netdev_bpf *xdp)
{
	NL_SET_ERR_MSG(xdp->extack,
		       "kvmguard: no XDP program on a VM's port with network rules");
	return -EBUSY;
}

/* At tun_xdp() or generic_xdp_install(), under rtnl. */
static unsigned long bypass_xdp_install(struct pt_regs *regs)
{
	struct net_device *dev = (struct net_device *)ARG(regs, 0);
	struct netdev_bpf *xdp = (struct netdev_bpf *)ARG(regs, 1);

	/* Only a program going on; removing one is always allowed. */
	if (xdp->command != XDP_SETUP_PROG || !xdp->prog ||
	    !kvmguard_net_dev_has_rules(dev))
		return 0;
	pr_info_ratelimited("%s: an XDP program on a VM's port with network rules is refused\n",
			    netdev_name(dev));
	return (unsigned long)bypass_xdp_refuse;
}

/*
 * tc filters on a port: clsact's and ingress's blocks
 */

static noinline notrace int bypass_tc_refuse(struct tcf_block **p_block,
					     void *qdisc,
					     struct tcf_block_ext_info *ei,
					     struct netlink_ext_ack *extack)
{
	NL_SET_ERR_MSG(extack,
		       "kvmguard: no ingress or clsact qdisc on a VM's port with network rules");
	return -EBUSY;
}

/*
 * At tcf_block_get_ext(p_block, q, ei, extack), which every classful
 * qdisc calls as it is created, under rtnl; ingress_init() and
 * clsact_init() with these binder types. Their error path (the qdisc is
 * destroyed) expects a block left NULL.
 */
static unsigned long bypass_tc_block(struct pt_regs *regs)
{
	void *qdisc = (void *)ARG(regs, 1);
	struct tcf_block_ext_info *ei = (struct tcf_block_ext_info *)ARG(regs, 2);
	struct net_device *dev;

	if (ei->binder_type != FLOW_BLOCK_BINDER_TYPE_CLSACT_INGRESS &&
	    ei->binder_type != FLOW_BLOCK_BINDER_TYPE_CLSACT_EGRESS)
		return 0;
	dev = qdisc_dev(qdisc);
	if (!kvmguard_net_dev_has_rules(dev))
		return 0;
	pr_info_ratelimited("%s: an ingress or clsact qdisc on a VM's port with network rules is refused\n",
			    netdev_name(dev));
	return (unsigned long)bypass_tc_refuse;
}

static noinline notrace int bypass_tcx_refuse(const union bpf_attr *attr,
					      struct bpf_prog *prog)
{
	return -EBUSY;
}

/*
 * At tcx_prog_attach(attr, prog) or tcx_link_attach(attr, prog), 6.6+,
 * before they take rtnl: the device is looked up in the caller's netns
 * as they do. (A port bound between this and their rtnl_lock() is not
 * seen here; kvmguard_bypass_check() refuses it only if the program is
 * attached by then.)
 */
static unsigned long bypass_tcx(struct pt_regs *regs, bool link)
{
	const union bpf_attr *attr = (const union bpf_attr *)ARG(regs, 0);
	u32 ifindex = link ? attr->link_create.target_ifindex :
			     attr->target_fd;
	struct net_device *dev;
	bool ruled;

	rcu_read_lock();
	dev = dev_get_by_index_rcu(current->nsproxy->net_ns, ifindex);
	ruled = dev && kvmguard_net_dev_has_rules(dev);
	if (ruled)
		pr_info_ratelimited("%s: a tcx program on a VM's port with network rules is refused\n",
				    netdev_name(dev));
	rcu_read_unlock();
	return ruled ? (unsigned long)bypass_tcx_refuse : 0;
}

static unsigned long bypass_tcx_prog(struct pt_regs *regs)
{
	return bypass_tcx(regs, false);
}

static unsigned long bypass_tcx_link(struct pt_regs *regs)
{
	return bypass_tcx(regs, true);
}

static struct kvmguard_redirect tcx_hooks[] = {
	{ .fn = KVMGUARD_TCX_PROG_ATTACH, .redirect = bypass_tcx_prog },
	{ .fn = KVMGUARD_TCX_LINK_ATTACH, .redirect = bypass_tcx_link },
};

static struct kvmguard_redirect generic_xdp_hook = {
	.fn = "generic_xdp_install",	/* static: found by name */
	.redirect = bypass_xdp_install,
};

static struct kvmguard_redirect tc_block_hook = {
	.fn = "tcf_block_get_ext",
	.redirect = bypass_tc_block,
};

/*
 * The tun hooks, at the tap's ndo_xdp_xmit and ndo_bpf: attached by the
 * first tap port that needs them (under rtnl, net.c's port_attach()),
 * detached from a work item once none does (detaching waits for ftrace's
 * users, too long for rtnl), or when tun unloads (its exit removed its
 * devices, and with them every use). tun_users is atomic and the
 * attachment changes under tun_mutex, as in tap_hooks.c.
 */
static struct kvmguard_redirect tun_xmit_hook = {
	.fn = "tun_xdp_xmit",
	.redirect = bypass_xdp_xmit,
};

static struct kvmguard_redirect tun_xdp_hook = {
	.fn = "tun_xdp",
	.redirect = bypass_xdp_install,
};

static DEFINE_MUTEX(tun_mutex);
static atomic_t tun_users = ATOMIC_INIT(0);
static bool tun_attached;		/* under tun_mutex */
static unsigned long tun_xmit_ip;	/* while attached */

static void tun_detach(void)
{
	lockdep_assert_held(&tun_mutex);
	kvmguard_redirect_detach(&tun_xdp_hook);
	kvmguard_redirect_detach(&tun_xmit_hook);
	tun_attached = false;
}

int kvmguard_bypass_tap_get(struct net_device *dev)
{
	unsigned long xmit = (unsigned long)dev->netdev_ops->ndo_xdp_xmit;
	unsigned long bpf = (unsigned long)dev->netdev_ops->ndo_bpf;
	int err = 0;

	ASSERT_RTNL();
	if (!xmit || !bpf)
		return -EOPNOTSUPP;	/* not the tap we know */
	atomic_inc(&tun_users);
	mutex_lock(&tun_mutex);
	if (!tun_attached) {
		err = kvmguard_redirect_attach(&tun_xmit_hook, xmit);
		if (!err) {
			err = kvmguard_redirect_attach(&tun_xdp_hook, bpf);
			if (err)
				kvmguard_redirect_detach(&tun_xmit_hook);
		}
		tun_attached = !err;
		tun_xmit_ip = xmit;
	} else if (tun_xmit_ip != xmit) {
		err = -EBUSY;		/* another tun: not one we know */
	}
	mutex_unlock(&tun_mutex);
	if (err)
		atomic_dec(&tun_users);
	return err;
}

static void tun_detach_unused(struct work_struct *work)
{
	mutex_lock(&tun_mutex);
	if (tun_attached && !atomic_read(&tun_users))
		tun_detach();
	mutex_unlock(&tun_mutex);
}

static DECLARE_WORK(tun_detach_work, tun_detach_unused);

void kvmguard_bypass_tap_put(void)
{
	if (atomic_dec_and_test(&tun_users))
		schedule_work(&tun_detach_work);
}

static int bypass_module_event(struct notifier_block *nb, unsigned long event,
			       void *data)
{
	struct module *mod = data;

	if (event != MODULE_STATE_GOING)
		return NOTIFY_DONE;
	mutex_lock(&tun_mutex);
	if (tun_attached && within_module(tun_xmit_ip, mod))
		tun_detach();
	mutex_unlock(&tun_mutex);
	return NOTIFY_DONE;
}

static struct notifier_block bypass_module_nb = {
	.notifier_call = bypass_module_event,
};

/*
 * The hooks found by name (generic XDP, tcx): matching a name walks every
 * function ftrace knows (a third of a second each in the test host), so
 * they attach with the first port that gets rules, under rtnl, and stay
 * until kvmguard unloads. Under rtnl.
 */
static bool named_attached;

static int bypass_named_attach(void)
{
	int err, i = 0;

	if (named_attached)
		return 0;
	err = kvmguard_redirect_attach(&generic_xdp_hook, 0);
	if (err)
		return err;
	for (i = 0; i < ARRAY_SIZE(tcx_hooks) && tcx_hooks[i].fn; i++) {
		err = kvmguard_redirect_attach(&tcx_hooks[i], 0);
		if (err)
			goto err_tcx;
	}
	named_attached = true;
	return 0;

err_tcx:
	while (i--)
		kvmguard_redirect_detach(&tcx_hooks[i]);
	kvmguard_redirect_detach(&generic_xdp_hook);
	return err;
}

int kvmguard_bypass_check(struct net_device *dev)
{
	const char *what = NULL;
	int err;

	ASSERT_RTNL();
	err = bypass_named_attach();
	if (err)
		return err;
	if (dev_xdp_prog_count(dev))
		what = "an XDP program";
	else if (kvmguard_dev_has_tc(dev))
		what = "an ingress or clsact qdisc (or a tcx program)";
	if (!what)
		return 0;
	pr_info_ratelimited("%s has %s: no network rule on it until it goes\n",
			    netdev_name(dev), what);
	return -EBUSY;
}

int kvmguard_bypass_init(void)
{
	int err;

	err = kvmguard_redirect_attach(&tc_block_hook,
				       (unsigned long)tcf_block_get_ext);
	if (err)
		return err;
	err = register_module_notifier(&bypass_module_nb);
	if (err)
		kvmguard_redirect_detach(&tc_block_hook);
	return err;
}

/* After every port is gone. */
void kvmguard_bypass_uninit(void)
{
	int i;

	unregister_module_notifier(&bypass_module_nb);
	cancel_work_sync(&tun_detach_work);
	mutex_lock(&tun_mutex);
	WARN_ON_ONCE(atomic_read(&tun_users));
	if (tun_attached)
		tun_detach();
	mutex_unlock(&tun_mutex);
	if (named_attached) {
		for (i = 0; i < ARRAY_SIZE(tcx_hooks) && tcx_hooks[i].fn; i++)
			kvmguard_redirect_detach(&tcx_hooks[i]);
		kvmguard_redirect_detach(&generic_xdp_hook);
		named_attached = false;
	}
	kvmguard_redirect_detach(&tc_block_hook);
}
