// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-net backends of VM processes become the VMs' network ports.
 *
 * A VMM gives its guest a virtio-net device through vhost-net by opening
 * /dev/vhost-net and attaching a tap (tun in IFF_TAP mode) or macvtap file
 * to each virtqueue with VHOST_NET_SET_BACKEND. vhost_net has no notifier
 * for that and keeps the path in static functions, so hooks watch it
 * (drivers/vhost/net.c, alike in both supported kernels):
 *  - vhost_net_ioctl(): VHOST_NET_SET_BACKEND and VHOST_RESET_OWNER are
 *    redirected to vhost_ioctl(), which opens an "operation" of the calling
 *    task (on its stack: no table to run out of), runs the original and
 *    records the outcome. Not a kretprobe: one that ran out of instances
 *    would miss calls, and an attach it missed would stay unbound;
 *  - vhost_vq_access_ok(): SET_BACKEND passes it the virtqueue;
 *  - tun_get_socket() and tap_get_socket(): SET_BACKEND passes them the
 *    backend file. Within an operation they are redirected to stand-ins
 *    that run the original, find the device and bind it (below) before
 *    vhost can move a frame - or refuse the backend: the VMM then gets
 *    ENOTSOCK;
 *  - vhost_net_release(): the vhost-net file is gone.
 * The redirections are hooks.c's redirects (ftrace IPMODIFY users, so a
 * livepatch of one of these functions is refused while they are there,
 * and refuses them when it came first); the other two are kprobes that
 * only look. A redirect sits at the function's entry, so the stand-in
 * gets the original's arguments and returns to its caller. Our own calls
 * of the originals find the operation marked and are not redirected again.
 *
 * Whose port. vhost-net works for the process that made itself the
 * device's owner (VHOST_SET_OWNER): it moves frames between that
 * process's memory and the backend, and refuses SET_BACKEND and
 * RESET_OWNER from any other process, so the caller of a SET_BACKEND is
 * the owner and its mm the one the device serves. The backend's device is
 * bound (KVMGUARD_NET_BOUND_VHOST) to the VM of that mm (KVM ties a VM to
 * its creator's mm) or, when that process has no VM, to the VM of its
 * nearest ancestor that has one: a helper the VMM forked is the VMM.
 * Either side may come first:
 *  - SET_BACKEND with the VM there: bound before vhost can move a frame;
 *  - a VM created while backends are attached: every attached backend
 *    whose owner now resolves to the new VM is bound, from a work item
 *    (the create hook is atomic), in the moments after KVM_CREATE_VM.
 *    Frames before that were those of a process without a VM.
 * The binding then belongs to the VM, not to the attachment: detaching
 * the backend (fd -1, as QEMU does on HMP `stop`), VHOST_RESET_OWNER and
 * closing /dev/vhost-net leave it as it is, rules and counters: the VMM
 * still holds the tap's fd, and so does a move to another netns and back
 * (net.c). It ends when the device goes (NETDEV_UNREGISTER once it is no
 * longer registered), by NET_UNBIND, or when the VM is
 * destroyed. Then, from the same work item:
 *  - if the owner resolves to another VM (the VMM re-created its VM, or
 *    has another one), the device becomes that VM's port;
 *  - otherwise, if the VM had a segment (a network rule), the port is
 *    closed: the device is set down and kept down, no frame passes either
 *    way, until the device goes or its owner resolves to a VM again (a
 *    new VM, or a SET_BACKEND with one): see "Closed ports". A device
 *    bound with rules must not become a free, untagged port in the hands
 *    of the process that kept its fd. Without one it is only kept
 *    (parked) for the VMM's next VM. A device NET_UNBIND freed, or
 *    NET_BIND gave another VM, is left as the administrator said.
 * The port is closed (or, handed over, hooked) before the old binding
 * ends, so no frame passes unchecked while a binding moves:
 * kvmguard_net_vm_gone() is called from the work item, after vhost.c had
 * its turn (kvmguard_vhost_vm_gone()).
 *
 * Pairs: every (vhost-net device, virtqueue) with a tap or macvtap
 * backend, with the mm it serves and its owner, to bind at VM creation.
 * Keyed by pointers that are compared, never followed. A pair goes when
 * its queue gets another backend, on RESET_OWNER, release or the
 * device's unregistering (not a netns move): its mm, which vhost holds
 * while the device has an owner, is never a reused one. Ports: the
 * devices vhost.c bound, closed or parked, with their VM, and the mm
 * (mmgrab()bed) and owner they belong to. Multiqueue VMMs open one
 * vhost-net file per queue pair, all with the same device: one port.
 *
 * The hooks exist while vhost_net is loaded (a module notifier; it pins
 * tun and tap, whose functions the stand-ins call): armed when it comes,
 * before /dev/vhost-net exists, and a failure fails its load; removed
 * when it goes.
 *
 * Locking: vhost_lock (a spinlock: the kprobe handlers and KVM's create
 * and destroy hooks are atomic) guards the operations, the pairs and the
 * VM events. Ports change only under rtnl_lock(), the lock of
 * kvmguard_net_bind() and kvmguard_net_unbind(); the netfilter hooks
 * and the rx_handler of a closed port read only that port, freed a grace
 * period after they are gone. The stand-ins run in the VMM's context
 * under vhost's device and virtqueue mutexes, where sleeping and rtnl are
 * allowed (vhost takes neither under rtnl).
 */
#define pr_fmt(fmt) "kvmguard: " fmt
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/if_tap.h>
#include <linux/kallsyms.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/netdevice.h>
#include <linux/netfilter.h>
#include <linux/pid.h>
#include <linux/ptrace.h>
#include <linux/rtnetlink.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/vhost.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <net/net_namespace.h>

#include "kvmguard.h"
#include "tun_layout.h"
#include "fault_inject.h"
#include "net.h"

/*
 * A SET_BACKEND or RESET_OWNER in progress, on the stack of vhost_ioctl().
 * Only its task adds, changes and removes it.
 */
struct vhost_op {
	struct list_head node;		/* ops, under vhost_lock */
	struct task_struct *task;
	const void *vq;			/* struct vhost_virtqueue, once known */
	struct net_device *dev;		/* the new backend's device; held */
	bool in_orig;			/* we are calling tun/tap_get_socket() */
};

/* A virtqueue with a tap or macvtap backend. */
struct vhost_pair {
	struct list_head node;		/* pairs, under vhost_lock */
	const void *n;			/* struct vhost_net */
	const void *vq;			/* struct vhost_virtqueue */
	struct mm_struct *mm;		/* the one it serves; its owner's */
	struct pid *owner;		/* the owner's thread group; held */
	/* Not held: the pair goes at NETDEV_UNREGISTER. */
	struct net_device *dev;
};

/*
 * A device vhost.c bound to a VM, or keeps for its VMM after that VM was
 * destroyed: closed, or (nothing to enforce) parked. See "Closed ports".
 */
struct vhost_port {
	struct list_head node;		/* vports, under rtnl */
	struct net_device *dev;		/* held */
	struct kvmguard_vm *vm;		/* a reference; NULL: closed or parked */
	struct mm_struct *mm;		/* its owner's; mmgrab()bed */
	struct pid *owner;		/* held */
	bool closed;			/* no frame either way; refused up */
	struct kvmguard_vm *closed_for;	/* a reference, while closed: its VM */
	bool downed;			/* we set it down: up again on opening */
	bool rx_drop;			/* vport_drop_rx() is its rx_handler */
	bool hooked;			/* ops registered: dropping */
	bool hook_said;			/* the kernel log said why */
	struct nf_hook_ops ops[2];	/* ingress, egress */
	atomic64_t dropped;		/* frames, while closed */
	struct rcu_head rcu;
};

/* A VM created or destroyed, for event_work. */
struct vhost_event {
	struct list_head node;		/* events, under vhost_lock */
	struct kvmguard_vm *vm;		/* a reference */
	bool gone;
};

static DEFINE_SPINLOCK(vhost_lock);
static LIST_HEAD(ops);
static LIST_HEAD(pairs);
static LIST_HEAD(events);
static bool events_on;			/* under vhost_lock */
static LIST_HEAD(vports);		/* under rtnl */

static void event_work_fn(struct work_struct *work);
static DECLARE_WORK(event_work, event_work_fn);

/* Tasks inside a stand-in; module unload waits for them to leave. */
static atomic_t in_standin = ATOMIC_INIT(0);
static DECLARE_WAIT_QUEUE_HEAD(standin_wq);

/* The originals; their modules are held while armed. */
static struct socket *(*orig_tun_get_socket)(struct file *file);
static struct socket *(*orig_tap_get_socket)(struct file *file);

static DEFINE_MUTEX(arm_mutex);		/* armed, the probes, orig_* */
static bool armed;

/* Current's operation, if it is in one. */
static struct vhost_op *op_current(void)
{
	struct vhost_op *op, *found = NULL;

	/* Only current adds its own: an empty list is a safe answer. */
	if (list_empty(&ops))
		return NULL;
	spin_lock(&vhost_lock);
	list_for_each_entry(op, &ops, node) {
		if (op->task == current) {
			found = op;
			break;
		}
	}
	spin_unlock(&vhost_lock);
	return found;
}

static void pairs_free(struct list_head *list)
{
	struct vhost_pair *p, *tmp;

	list_for_each_entry_safe(p, tmp, list, node) {
		put_pid(p->owner);
		kfree(p);
	}
}

/* Moves the pairs of vhost-net device @n to @to. */
static bool pairs_take(const void *n, struct list_head *to)
{
	struct vhost_pair *p, *tmp;
	bool any = false;

	lockdep_assert_held(&vhost_lock);
	list_for_each_entry_safe(p, tmp, &pairs, node) {
		if (p->n == n) {
			list_move_tail(&p->node, to);
			any = true;
		}
	}
	return any;
}

/* Does the process of @mm own a VM? */
static bool mm_has_vm(const struct mm_struct *mm)
{
	struct kvmguard_vm *vm;
	unsigned long id = 0;
	bool found = false;

	rcu_read_lock();
	while ((vm = kvmguard_vm_find_rcu(&id))) {
		if (vm->mm == mm && READ_ONCE(vm->kvm)) {
			found = true;
			break;
		}
		id++;
	}
	rcu_read_unlock();
	return found;
}

/* @mm's VM with a reference; NULL: none; -EBUSY: VMs of several policies. */
static struct kvmguard_vm *mm_vm(struct mm_struct *mm)
{
	struct kvmguard_vm *vm = kvmguard_vm_get_by_mm(mm);

	if (!vm && mm_has_vm(mm))
		return ERR_PTR(-EBUSY);
	return vm;
}

/*
 * The VM whose port a backend of a vhost-net device owned by @owner and
 * serving @mm is, with a reference: the VM of @mm, or else of the nearest
 * ancestor of @owner that has one (a helper the VMM forked). NULL if none,
 * ERR_PTR(-EBUSY) if that process has VMs of different policies (which
 * rules apply would be a guess). A helper whose parent exited (reparented
 * to init or a subreaper) is no longer found this way, nor one more than
 * VHOST_ANCESTORS_MAX levels below its VMM: the walk runs under rtnl at
 * every VM creation, so its length is bounded.
 */
#define VHOST_ANCESTORS_MAX	64

static struct kvmguard_vm *owner_vm(struct mm_struct *mm, struct pid *owner)
{
	struct kvmguard_vm *vm = mm_vm(mm);
	unsigned int depth = 0;
	struct task_struct *t;

	if (vm)
		return vm;
	rcu_read_lock();
	t = pid_task(owner, PIDTYPE_TGID);
	/* init_task (pid 0) ends every chain; it is its own parent. */
	for (t = t ? rcu_dereference(t->real_parent) : NULL;
	     t && t->pid && depth++ < VHOST_ANCESTORS_MAX;
	     t = rcu_dereference(t->real_parent)) {
		struct mm_struct *amm = READ_ONCE(t->mm);

		/* Compared only: a VM holds its creator's mm. */
		if (!amm || amm == mm)
			continue;
		vm = mm_vm(amm);
		if (vm)
			break;
	}
	rcu_read_unlock();
	return vm;
}

/*
 * Closed ports
 *
 * A closed port passes no frame either way, and costs nothing to any other
 * device: netfilter's netdev hooks, which the first version used, switch
 * on static keys that are global, so every frame of the host paid for
 * them while any port was closed (`make bench` showed it). A closed port
 * is its device set down instead (dev_close(), as `ip link set down`),
 * and kept down: NETDEV_PRE_UP is refused with an extended ack. A down
 * device
 *  - takes no write: tun_get_user() fails with EIO, and macvtap's frames
 *    go to dev_queue_xmit() of a down macvlan, which drops them (also
 *    from vhost's batched path, tap_get_user_xdp());
 *  - gets no frame to transmit (to its guest): the stack drops what is
 *    queued to a down device, a bridge does not forward to a disabled
 *    port, macvlan delivers to no down macvtap, XDP redirects to a down
 *    device fail;
 *  - but receives the frames of vhost's batched TX path (tun_sendmsg()
 *    with TUN_MSG_PTR, tun_xdp_one()), which calls netif_receive_skb()
 *    without a look at IFF_UP. On a bridge, a port whose device is down is
 *    disabled (br_stp_disable_port() at NETDEV_DOWN) and br_handle_frame()
 *    drops its frames (link-local ones go to the host, never to another
 *    port); a tap with no rx_handler gets vport_drop_rx() as one. A tap
 *    with any other upper device or rx_handler (Open vSwitch, a bond, a
 *    VLAN device, which takes tagged frames before any rx_handler) keeps
 *    netfilter's hooks, the first version's way, and the kernel log says
 *    what that costs.
 * A closed tap takes no upper device (NETDEV_PRECHANGEUPPER is refused),
 * so what it has stays what its drops were chosen for; one it leaves
 * (which cannot be refused), or a netns move (which takes it off its
 * bridge, sets it down, and ends hooks of the netns it leaves) makes
 * guard_work choose again once rtnl is free: the bridge lets go of its
 * rx_handler only after telling the notifier. In between, frames of its
 * TX ring reach the host's own stack on the down tap; both take
 * CAP_NET_ADMIN, which the VMM should not have.
 * The port opens when its VMM has a VM again (vport_bind()): bound first,
 * then up again if vhost.c set it down. Only for a VM with the policy the
 * destroyed VM would get now (vport_may_open()): a process of the VMM
 * that left its pid binding's tree (CLONE_PARENT) and created a VM under
 * a weaker policy does not reopen it. A device the administrator binds
 * (NET_BIND) is theirs: it is let go when they set it up. At module
 * unload a closed port stays down, and the kernel log names it.
 *
 * Parked ports. A VM whose port is closed had a segment, a network rule
 * of its policy or of the one its VMM would get for a new VM. Without one
 * the VMM had no segment to escape: its frames passed as they were, and
 * go on doing so. Such a port is not closed, only kept (parked, unbound),
 * so that the VMM's next VM gets it like a closed one.
 */
static void guard_work_fn(struct work_struct *work);
static DECLARE_WORK(guard_work, guard_work_fn);

static unsigned int vport_drop(void *priv, struct sk_buff *skb,
			       const struct nf_hook_state *state)
{
	struct vhost_port *vp = priv;

	atomic64_inc(&vp->dropped);
	return NF_DROP;
}

/* A closed tap's rx_handler: frames of its TX ring (tun_xdp_one()). */
static rx_handler_result_t vport_drop_rx(struct sk_buff **pskb)
{
	struct sk_buff *skb = *pskb;
	struct vhost_port *vp = rcu_dereference(skb->dev->rx_handler_data);

	atomic64_inc(&vp->dropped);
	dev_core_stats_rx_dropped_inc(skb->dev);
	kfree_skb(skb);
	return RX_HANDLER_CONSUMED;
}

/* Netfilter hooks on @vp's device drop every frame; under rtnl. */
static int vport_hook(struct vhost_port *vp)
{
	int err, i;

	ASSERT_RTNL();
	if (vp->hooked)
		return 0;
	for (i = 0; i < ARRAY_SIZE(vp->ops); i++) {
		vp->ops[i] = (struct nf_hook_ops) {
			.hook = vport_drop,
			.pf = NFPROTO_NETDEV,
			.hooknum = i ? NF_NETDEV_EGRESS : NF_NETDEV_INGRESS,
			.priority = INT_MIN,
			.dev = vp->dev,
			.priv = vp,
		};
	}
	err = vp->dev->reg_state == NETREG_REGISTERED ?
	      nf_register_net_hooks(dev_net(vp->dev), vp->ops,
				    ARRAY_SIZE(vp->ops)) : -ENODEV;
	if (!err)
		vp->hooked = true;
	return err;
}

static void vport_unhook(struct vhost_port *vp)
{
	ASSERT_RTNL();
	if (!vp->hooked)
		return;
	nf_unregister_net_hooks(dev_net(vp->dev), vp->ops, ARRAY_SIZE(vp->ops));
	vp->hooked = false;
}

/*
 * Is @dev a tap whose down state disables it as a bridge port, with
 * nothing else above it: no upper device but that bridge, whose
 * rx_handler it has? Under rtnl.
 */
static bool vport_on_bridge(struct net_device *dev)
{
	struct net_device *master = netdev_master_upper_dev_get(dev);
	struct net_device *upper;
	struct list_head *iter;
	bool alone = true;

	if (!master || !netif_is_bridge_master(master) ||
	    !netif_is_bridge_port(dev))
		return false;
	rcu_read_lock();
	netdev_for_each_upper_dev_rcu(dev, upper, iter)
		if (upper != master)
			alone = false;
	rcu_read_unlock();
	return alone;
}

/*
 * Make closed @vp's drops complete for where its device is now (see
 * above); under rtnl. A macvtap needs nothing but being down.
 */
static void vport_guard(struct vhost_port *vp)
{
	struct net_device *dev = vp->dev;
	bool nf;
	int err;

	ASSERT_RTNL();
	if (!vp->closed || dev->reg_state != NETREG_REGISTERED)
		return;
	nf = kvmguard_net_port_kind(dev) == PORT_TAP;
	if (nf && !vp->rx_drop && !rtnl_dereference(dev->rx_handler) &&
	    !netdev_has_any_upper_dev(dev) &&
	    !netdev_rx_handler_register(dev, vport_drop_rx, vp))
		vp->rx_drop = true;
	nf = nf && !vp->rx_drop && !vport_on_bridge(dev);
	if (!nf) {
		vport_unhook(vp);
		return;
	}
	err = vport_hook(vp);
	if (err)
		pr_err("%s: closed, but its upper device or receive handler may still pass the frames of its vhost-net TX ring: %d\n",
		       netdev_name(dev), err);
	else if (!vp->hook_said)
		pr_info("%s: closed by netfilter hooks (an upper device or receive handler other than a bridge's): every frame of the host pays for them while it is closed\n",
			netdev_name(dev));
	vp->hook_said = true;
}

/*
 * Close @vp: down, kept down, its frames dropped (see above); under rtnl.
 * Its binding, if any, still holds: the caller ends it after this.
 */
static int vport_close(struct vhost_port *vp)
{
	struct net_device *dev = vp->dev;

	ASSERT_RTNL();
	if (vp->closed)
		return 0;
	if (dev->reg_state != NETREG_REGISTERED) {
		pr_err("%s: cannot close the port of a destroyed VM (%d): it is free now\n",
		       netdev_name(dev), -ENODEV);
		return -ENODEV;
	}
	vp->closed = true;		/* before: NETDEV_PRE_UP is refused */
	vp->hook_said = false;
	atomic64_set(&vp->dropped, 0);
	if (dev->flags & IFF_UP) {
		vp->downed = true;
		dev_close(dev);
	}
	vport_guard(vp);
	return 0;
}

/* Undo what closing did to @vp's device, but for its state; under rtnl. */
static void vport_unguard(struct vhost_port *vp)
{
	ASSERT_RTNL();
	if (vp->rx_drop) {
		netdev_rx_handler_unregister(vp->dev);	/* waits for readers */
		vp->rx_drop = false;
	}
	vport_unhook(vp);
	vp->closed = false;
	if (vp->closed_for) {
		kvmguard_vm_put(vp->closed_for);
		vp->closed_for = NULL;
	}
}

/*
 * May the closed @vp open for @vm: has @vm the policy the VM it was closed
 * for had, or the one that VM's creator would get now (the administrator
 * changed the bindings)? Cannot tell: no. Under rtnl.
 */
static bool vport_may_open(struct vhost_port *vp, struct kvmguard_vm *vm)
{
	struct kvmguard_vm *old = vp->closed_for;
	struct kvmguard_policy *now;
	u8 bound_by;
	bool same;

	if (!vp->closed || !old)
		return true;
	rcu_read_lock();
	same = rcu_access_pointer(vm->policy) ==
	       rcu_access_pointer(old->policy);
	rcu_read_unlock();
	if (same)
		return true;
	now = kvmguard_resolve(old->pid, old->cgroup, &bound_by);
	if (IS_ERR(now))
		return false;
	same = rcu_access_pointer(vm->policy) == now;
	if (now)
		kvmguard_policy_put(now);
	if (!same)
		pr_warn("%s stays closed: VM %llu has another policy than VM %llu, which it was closed for, had or would have now\n",
			netdev_name(vp->dev), vm->id, old->id);
	return same;
}

/*
 * @vp's frames pass again, to its VM's rules (bound already): up again
 * if we set it down. Under rtnl.
 */
static void vport_open(struct vhost_port *vp)
{
	struct net_device *dev = vp->dev;
	int err = 0;

	ASSERT_RTNL();
	vport_unhook(vp);		/* a handover's (vport_vm_gone()) */
	if (!vp->closed)
		return;
	vport_unguard(vp);
	if (vp->downed) {
		vp->downed = false;
		err = dev_open(dev, NULL);
	}
	if (err)
		pr_warn("%s: open again, %lld frames dropped while it was closed; stays down: %d\n",
			netdev_name(dev), atomic64_read(&vp->dropped), err);
	else
		pr_info("%s: open again, %lld frames dropped while it was closed\n",
			netdev_name(dev), atomic64_read(&vp->dropped));
}

static void guard_work_fn(struct work_struct *work)
{
	struct vhost_port *vp;

	rtnl_lock();
	list_for_each_entry(vp, &vports, node)
		vport_guard(vp);
	rtnl_unlock();
}

static struct vhost_port *vport_find(const struct net_device *dev)
{
	struct vhost_port *vp;

	ASSERT_RTNL();
	list_for_each_entry(vp, &vports, node)
		if (vp->dev == dev)
			return vp;
	return NULL;
}

static void vport_free_rcu(struct rcu_head *head)
{
	struct vhost_port *vp = container_of(head, struct vhost_port, rcu);

	dev_put(vp->dev);
	kfree(vp);
}

/*
 * vhost.c forgets @dev (its binding, if any, stays); under rtnl. A closed
 * port stays down (@why says why it is let go; NULL: it is going away).
 */
static void vport_free(struct vhost_port *vp, const char *why)
{
	ASSERT_RTNL();
	if (vp->vm) {
		kvmguard_vm_put(vp->vm);
		vp->vm = NULL;
	}
	if (vp->closed && why)
		pr_info("%s: let go, %lld frames dropped while it was closed; %s\n",
			netdev_name(vp->dev), atomic64_read(&vp->dropped), why);
	vport_unguard(vp);
	list_del(&vp->node);
	mmdrop(vp->mm);
	put_pid(vp->owner);
	/* A hook that was running may still read it. */
	call_rcu(&vp->rcu, vport_free_rcu);
}

/* @vp's owner from now on is @owner, serving @mm. */
static void vport_set_owner(struct vhost_port *vp, struct mm_struct *mm,
			    struct pid *owner)
{
	if (vp->mm != mm) {
		mmgrab(mm);
		mmdrop(vp->mm);
		vp->mm = mm;
	}
	if (vp->owner != owner) {
		get_pid(owner);
		put_pid(vp->owner);
		vp->owner = owner;
	}
}

/*
 * Bind @dev to @vm as the port of @owner's vhost-net device serving @mm
 * (both valid: the caller holds them); a closed port opens. Under rtnl.
 * 0, or kvmguard_net_bind()'s error.
 */
static int vport_bind(struct kvmguard_vm *vm, struct net_device *dev,
		      struct mm_struct *mm, struct pid *owner)
{
	struct vhost_port *vp = vport_find(dev);
	bool new = !vp;
	int err;

	ASSERT_RTNL();
	if (new) {
		vp = kzalloc(sizeof(*vp), GFP_KERNEL);
		if (!vp)
			return -ENOMEM;
		dev_hold(dev);
		vp->dev = dev;
		mmgrab(mm);
		vp->mm = mm;
		vp->owner = get_pid(owner);
		list_add_tail(&vp->node, &vports);
	}
	if (!vport_may_open(vp, vm))
		return -EACCES;
	err = kvmguard_net_bind(vm, dev, KVMGUARD_NET_BOUND_VHOST, NULL);
	if (err) {
		if (new)
			vport_free(vp, NULL);
		return err;
	}
	if (vp->vm != vm) {
		kref_get(&vm->ref);
		if (vp->vm)
			kvmguard_vm_put(vp->vm);
		vp->vm = vm;
		vport_set_owner(vp, mm, owner);
	}
	vport_open(vp);
	return 0;
}

/*
 * Had @vm a segment for its VMM to escape: a network rule in its policy,
 * or in the one a new VM of its VMM would get now? Cannot tell: yes.
 */
static bool vm_had_segment(const struct kvmguard_vm *vm)
{
	struct kvmguard_policy *policy;
	bool rules;
	u8 bound_by;

	rcu_read_lock();
	policy = rcu_dereference(vm->policy);
	rules = policy && kvmguard_net_rules(rcu_dereference(policy->rules));
	rcu_read_unlock();
	if (rules)
		return true;
	policy = kvmguard_resolve(vm->pid, vm->cgroup, &bound_by);
	if (IS_ERR(policy))
		return true;
	if (!policy)
		return false;
	rcu_read_lock();
	rules = kvmguard_net_rules(rcu_dereference(policy->rules));
	rcu_read_unlock();
	kvmguard_policy_put(policy);
	return rules;
}

/*
 * The VM of @vp was destroyed: its device goes to the VM its owner
 * resolves to now, or is closed, or parked if the VM had no segment (see
 * "Closed ports"). Under rtnl, before kvmguard_net_vm_gone().
 */
static void vport_vm_gone(struct vhost_port *vp)
{
	struct kvmguard_vm *old = vp->vm, *next;
	struct net_device *dev = vp->dev;
	bool close;

	ASSERT_RTNL();
	/*
	 * Not the VM's port any more (NET_UNBIND freed it, NET_BIND gave it
	 * to another VM): as the administrator said. Bound, to the same VM
	 * only NET_BIND's answer is 0 without a change.
	 */
	if (!kvmguard_net_dev_bound(dev) ||
	    kvmguard_net_bind(old, dev, KVMGUARD_NET_BOUND_VHOST, NULL)) {
		vport_free(vp, NULL);
		return;
	}
	next = owner_vm(vp->mm, vp->owner);
	if (IS_ERR_OR_NULL(next) || next == old) {
		if (!IS_ERR_OR_NULL(next))
			kvmguard_vm_put(next);
		next = NULL;
	}
	/*
	 * Dropping first: no frame passes unchecked while the binding moves.
	 * Handed over to another VM, the device stays up: netfilter's hooks
	 * drop for that moment (or, if they cannot attach, it is closed).
	 */
	close = next ? vport_hook(vp) : vm_had_segment(old);
	if (close)
		vport_close(vp);
	kvmguard_net_unbind(old, dev, KVMGUARD_NET_BOUND_VHOST);
	vp->vm = NULL;

	if (next && !kvmguard_net_bind(next, dev, KVMGUARD_NET_BOUND_VHOST,
				       NULL)) {
		vp->vm = next;
		vport_open(vp);
		pr_info("%s: the port of VM %llu now, its VMM's\n",
			netdev_name(dev), next->id);
		goto out;
	}
	if (next) {
		kvmguard_vm_put(next);
		close = true;		/* refused by the VM: fail closed */
		vport_close(vp);
		vport_guard(vp);	/* no hooks if the device needs none */
	}
	if (close && vp->closed) {
		vp->closed_for = old;	/* our reference, now its */
		old = NULL;
		pr_info("%s: its VM is gone and its VMM keeps it: set down and kept down, every frame dropped, until the device goes or its VMM has a VM again\n",
			netdev_name(dev));
		/* Unbound, the device may have lost a receive handler of net.c's. */
		schedule_work(&guard_work);
	} else if (close) {
		vport_free(vp, NULL);	/* could not close it: said so */
	} else {
		pr_info("%s: its VM %llu is gone and its VMM keeps it: no network rule to hold it to, left as it is, unbound until its VMM has a VM again\n",
			netdev_name(dev), old->id);
	}
out:
	if (old)
		kvmguard_vm_put(old);
}

/* A pair's device and owner, copied for a VM that was created. */
struct pair_copy {
	struct list_head node;
	struct net_device *dev;		/* held */
	struct mm_struct *mm;		/* mmgrab()bed */
	struct pid *owner;		/* held */
};

/* @vm was created: the backends and closed ports that are its now. */
static void vm_new(struct kvmguard_vm *vm)
{
	struct pair_copy *c, *tmp;
	struct vhost_port *vp, *vtmp;
	struct kvmguard_vm *owned;
	struct vhost_pair *p;
	LIST_HEAD(copies);
	int err = 0;

	ASSERT_RTNL();
	if (!READ_ONCE(vm->kvm))
		return;			/* destroyed already */
	spin_lock(&vhost_lock);
	list_for_each_entry(p, &pairs, node) {
		c = kmalloc(sizeof(*c), GFP_ATOMIC);
		if (!c) {
			err = -ENOMEM;
			break;
		}
		dev_hold(p->dev);
		c->dev = p->dev;
		mmgrab(p->mm);		/* vhost holds it while the pair exists */
		c->mm = p->mm;
		c->owner = get_pid(p->owner);
		list_add_tail(&c->node, &copies);
	}
	spin_unlock(&vhost_lock);
	if (err)
		pr_err("VM %llu: vhost-net backends may stay unbound: %d\n",
		       vm->id, err);

	list_for_each_entry_safe(c, tmp, &copies, node) {
		vp = vport_find(c->dev);
		/* Another VM's port, kept until that VM goes: see vm_gone(). */
		owned = vp && vp->vm ? NULL : owner_vm(c->mm, c->owner);
		if (owned == vm) {
			err = c->dev->reg_state == NETREG_REGISTERED ?
			      vport_bind(vm, c->dev, c->mm, c->owner) : 0;
			if (err)
				pr_warn("%s stays unbound: cannot bind it to VM %llu: %d\n",
					netdev_name(c->dev), vm->id, err);
		}
		if (!IS_ERR_OR_NULL(owned))
			kvmguard_vm_put(owned);
		dev_put(c->dev);
		mmdrop(c->mm);
		put_pid(c->owner);
		kfree(c);
	}

	list_for_each_entry_safe(vp, vtmp, &vports, node) {
		if (vp->vm)
			continue;
		owned = owner_vm(vp->mm, vp->owner);
		if (owned == vm && vport_bind(vm, vp->dev, vp->mm, vp->owner))
			pr_warn("%s stays closed: cannot bind it to VM %llu\n",
				netdev_name(vp->dev), vm->id);
		if (!IS_ERR_OR_NULL(owned))
			kvmguard_vm_put(owned);
	}
}

static void vm_gone(struct kvmguard_vm *vm)
{
	struct vhost_port *vp, *tmp;

	ASSERT_RTNL();
	list_for_each_entry_safe(vp, tmp, &vports, node)
		if (vp->vm == vm)
			vport_vm_gone(vp);
	/* Now net.c ends what is left of the VM's bindings. */
	kvmguard_net_vm_gone(vm);
}

/* VM events in the order they came: a VM is created before it goes. */
static void event_work_fn(struct work_struct *work)
{
	struct vhost_event *ev;

	for (;;) {
		spin_lock(&vhost_lock);
		ev = list_first_entry_or_null(&events, struct vhost_event,
					      node);
		if (ev)
			list_del(&ev->node);
		spin_unlock(&vhost_lock);
		if (!ev)
			break;
		rtnl_lock();
		if (ev->gone)
			vm_gone(ev->vm);
		else
			vm_new(ev->vm);
		rtnl_unlock();
		kvmguard_vm_put(ev->vm);
		kfree(ev);
	}
}

/* From KVM's create and destroy hooks: atomic context. */
static void vm_event(struct kvmguard_vm *vm, bool gone)
{
	struct vhost_event *ev = kmalloc(sizeof(*ev), GFP_ATOMIC);

	spin_lock(&vhost_lock);
	if (ev && events_on) {
		kref_get(&vm->ref);
		ev->vm = vm;
		ev->gone = gone;
		list_add_tail(&ev->node, &events);
		schedule_work(&event_work);
		ev = NULL;
		vm = NULL;
	}
	spin_unlock(&vhost_lock);
	kfree(ev);
	if (!vm)
		return;
	if (gone && READ_ONCE(events_on))
		pr_err("VM %llu: its vhost-net ports end with it, not closed: out of memory\n",
		       vm->id);
	if (gone)
		kvmguard_net_vm_gone(vm);	/* its bindings simply end */
	else if (READ_ONCE(events_on))
		pr_err("VM %llu: its vhost-net backends stay unbound until attached again: out of memory\n",
		       vm->id);
}

void kvmguard_vhost_vm_new(struct kvmguard_vm *vm)
{
	vm_event(vm, false);
}

void kvmguard_vhost_vm_gone(struct kvmguard_vm *vm)
{
	vm_event(vm, true);
}

/*
 * The device behind a tun socket, held; NULL for a file with no device
 * (before TUNSETIFF, or after the device went; a queue detached with
 * TUNSETQUEUE keeps its device), an error if tun's private layout is not
 * the one we know.
 */
static struct net_device *tun_sock_dev(struct socket *sock)
{
	struct kvmguard_tun_file *tfile;
	struct kvmguard_tun_struct *tun;
	struct net_device *dev = NULL;

	tfile = container_of(sock, struct kvmguard_tun_file, socket);
	if (sock->sk != &tfile->sk)
		goto layout;
	rcu_read_lock();
	tun = rcu_dereference(tfile->tun);
	if (tun) {
		dev = READ_ONCE(tun->dev);
		/* Two routes to the device must agree. */
		if (netdev_priv(dev) == (void *)tun && dev->rtnl_link_ops &&
		    !strcmp(dev->rtnl_link_ops->kind, "tun"))
			dev_hold(dev);
		else
			dev = ERR_PTR(-EPROTO);
	}
	rcu_read_unlock();
	if (!IS_ERR(dev))
		return dev;
layout:
	pr_err_once("tun's private structures differ from what kvmguard knows: refusing tun backends of VMs\n");
	return ERR_PTR(-EPROTO);
}

/* The device behind a macvtap (or ipvtap) socket, held; NULL if gone. */
static struct net_device *tap_sock_dev(struct socket *sock)
{
	struct tap_queue *q = container_of(sock, struct tap_queue, sock);
	struct net_device *dev = NULL;
	struct tap_dev *tap;

	if (sock->sk != &q->sk)
		return ERR_PTR(-EPROTO);
	rcu_read_lock();
	tap = rcu_dereference(q->tap);
	if (tap) {
		dev = tap->dev;
		dev_hold(dev);
	}
	rcu_read_unlock();
	return dev;
}

/*
 * The backend of current's SET_BACKEND is @sock: bind its device to the
 * VM current (vhost's owner: it checked) resolves to. 0 lets vhost go on.
 */
static int backend_attach(struct vhost_op *op, struct socket *sock,
			  bool tun)
{
	struct pid *owner = task_tgid(current);
	struct kvmguard_vm *vm;
	struct net_device *dev;
	const char *why;
	int err;

	/* Without the virtqueue the pair could not be tracked. */
	if (!op->vq || op->dev)
		return -EPERM;
	dev = tun ? tun_sock_dev(sock) : tap_sock_dev(sock);
	if (IS_ERR(dev))
		return PTR_ERR(dev);
	if (!dev) {
		pr_info_ratelimited("pid %d (%s): refusing a %s file with no device as vhost-net backend\n",
				    task_tgid_nr(current), current->comm,
				    tun ? "tun" : "macvtap");
		return -ENODEV;
	}
	vm = owner_vm(current->mm, owner);
	if (IS_ERR(vm)) {
		why = "its VMs have different policies";
		err = PTR_ERR(vm);
		vm = NULL;
		goto refuse;
	}

	rtnl_lock();
	if (dev->reg_state != NETREG_REGISTERED)
		err = -ENODEV;
	else if (vm)
		err = vport_bind(vm, dev, current->mm, owner);
	else
		err = kvmguard_net_dev_bound(dev) ? -EBUSY : 0;
	rtnl_unlock();
	if (!err) {
		op->dev = dev;		/* held until the call is done */
		if (vm)
			kvmguard_vm_put(vm);
		return 0;
	}
	why = err == -EBUSY ? "it is another VM's port" :
	      err == -EACCES ? "it was closed under another policy" :
	      err == -ENODEV ? "it is going away" : "it cannot be bound";
refuse:
	pr_info_ratelimited("pid %d (%s): refusing %s as vhost-net backend: %s (%d)\n",
			    task_tgid_nr(current), current->comm, dev->name,
			    why, err);
	if (vm)
		kvmguard_vm_put(vm);
	dev_put(dev);
	return err;
}

static struct socket *backend_socket(struct file *file, bool tun)
{
	struct vhost_op *op = op_current();
	struct socket *sock;

	/* The probe found it, and only this task removes it. */
	if (WARN_ON_ONCE(!op))
		return ERR_PTR(-EPERM);
	op->in_orig = true;
	sock = tun ? orig_tun_get_socket(file) : orig_tap_get_socket(file);
	op->in_orig = false;
	if (IS_ERR(sock))
		return sock;		/* not this kind of file */
	/* vhost tries the other kind, fails and says ENOTSOCK. */
	if (backend_attach(op, sock, tun))
		return ERR_PTR(-EPERM);
	return sock;
}

/* Stand-ins for tun_get_socket() and tap_get_socket() inside SET_BACKEND. */
static noinline struct socket *vhost_tun_get_socket(struct file *file)
{
	return backend_socket(file, true);
}

static noinline struct socket *vhost_tap_get_socket(struct file *file)
{
	return backend_socket(file, false);
}

/*
 * The queue's backend is what this call gave it (vhost rolls a failed
 * call back): a pair for a tap or macvtap, none for anything else. The
 * binding, if one was made, stays either way.
 */
static void set_backend_done(const void *n, struct vhost_op *op,
			     struct vhost_pair *new, long ret)
{
	struct vhost_pair *p;
	LIST_HEAD(old);

	/* Under rtnl: NETDEV_UNREGISTER cannot come between check and add. */
	rtnl_lock();
	spin_lock(&vhost_lock);
	list_del(&op->node);
	if (!ret && op->vq) {
		list_for_each_entry(p, &pairs, node) {
			if (p->n == n && p->vq == op->vq) {
				list_move(&p->node, &old);
				break;
			}
		}
		if (op->dev && op->dev->reg_state == NETREG_REGISTERED) {
			new->n = n;
			new->vq = op->vq;
			new->mm = current->mm;
			new->owner = get_pid(task_tgid(current));
			new->dev = op->dev;
			list_add_tail(&new->node, &pairs);
			new = NULL;
		}
	}
	spin_unlock(&vhost_lock);
	rtnl_unlock();

	pairs_free(&old);
	if (op->dev)
		dev_put(op->dev);
	kfree(new);
}

static void reset_owner_done(const void *n, struct vhost_op *op, long ret)
{
	LIST_HEAD(list);

	spin_lock(&vhost_lock);
	list_del(&op->node);
	/* Success stopped both virtqueues: no backend is left. */
	if (!ret)
		pairs_take(n, &list);
	spin_unlock(&vhost_lock);
	pairs_free(&list);
}

/* Stand-in for vhost_net_ioctl() for VHOST_NET_SET_BACKEND and RESET_OWNER. */
static noinline long vhost_ioctl(struct file *f, unsigned int cmd,
				 unsigned long arg)
{
	struct vhost_op op = { .task = current };
	struct vhost_pair *new = NULL;
	long ret;

	/* Fail closed: an attach we could not track does not happen. */
	if (cmd == VHOST_NET_SET_BACKEND) {
		new = kzalloc(sizeof(*new), GFP_KERNEL);
		if (!new) {
			ret = -ENOMEM;
			goto out;
		}
	}
	spin_lock(&vhost_lock);
	list_add(&op.node, &ops);
	spin_unlock(&vhost_lock);

	/* vhost_net_ioctl() itself: the probe sees op and lets it run. */
	ret = f->f_op->unlocked_ioctl(f, cmd, arg);

	if (cmd == VHOST_NET_SET_BACKEND)
		set_backend_done(f->private_data, &op, new, ret);
	else
		reset_owner_done(f->private_data, &op, ret);
out:
	if (atomic_dec_and_test(&in_standin))
		wake_up(&standin_wq);
	return ret;
}

static unsigned long ioctl_hook(struct pt_regs *regs)
{
	unsigned int cmd = regs_get_kernel_argument(regs, 1);

	if (cmd != VHOST_NET_SET_BACKEND && cmd != VHOST_RESET_OWNER)
		return 0;
	if (op_current())
		return 0;		/* vhost_ioctl() calling the original */
	atomic_inc(&in_standin);
	return (unsigned long)vhost_ioctl;
}

static int vq_probe_pre(struct kprobe *kp, struct pt_regs *regs)
{
	struct vhost_op *op = op_current();

	/* The first call in a SET_BACKEND is for its virtqueue. */
	if (op && !op->vq)
		op->vq = (const void *)regs_get_kernel_argument(regs, 0);
	return 0;
}

static unsigned long redirect_get_socket(void *standin)
{
	struct vhost_op *op = op_current();

	if (!op || op->in_orig)
		return 0;
	return (unsigned long)standin;
}

static unsigned long tun_hook(struct pt_regs *regs)
{
	return redirect_get_socket(vhost_tun_get_socket);
}

static unsigned long tap_hook(struct pt_regs *regs)
{
	return redirect_get_socket(vhost_tap_get_socket);
}

/* The vhost-net file is gone: its pairs (not its bindings) go. */
static int release_probe_pre(struct kprobe *kp, struct pt_regs *regs)
{
	struct file *f = (struct file *)regs_get_kernel_argument(regs, 1);
	LIST_HEAD(list);

	spin_lock(&vhost_lock);
	pairs_take(f->private_data, &list);
	spin_unlock(&vhost_lock);
	pairs_free(&list);
	return 0;
}

static struct kprobe release_probe = {
	.symbol_name = "vhost_net_release",
	.pre_handler = release_probe_pre,
};

static struct kprobe vq_probe = {
	.symbol_name = "vhost_vq_access_ok",
	.pre_handler = vq_probe_pre,
};

/* Redirects (hooks.c), so that a livepatch of one cannot join it. */
static struct kvmguard_redirect tun_redirect = {
	.fn = "tun_get_socket",
	.redirect = tun_hook,
};

static struct kvmguard_redirect tap_redirect = {
	.fn = "tap_get_socket",
	.redirect = tap_hook,
};

static struct kvmguard_redirect ioctl_redirect = {
	.fn = "vhost_net_ioctl",	/* static: found by name */
	.redirect = ioctl_hook,
};

/* The probes that only look. */
static struct kprobe *vhost_probes[] = {
	&release_probe,
	&vq_probe,
};

/* -ENOENT: vhost_net is not loaded. */
static int vhost_arm(void)
{
	struct socket *(*tun)(struct file *file);
	struct socket *(*tap)(struct file *file);
	int err, i;

	lockdep_assert_held(&arm_mutex);
	if (armed)
		return 0;
	if (kvmguard_fault(KVMGUARD_FAULT_VHOST_PROBES))
		return -EBUSY;
	/* The symbol's start: an indirect call needs its ENDBR (IBT). */
	tun = __symbol_get("tun_get_socket");
	tap = __symbol_get("tap_get_socket");
	if (!tun || !tap) {
		err = -ENOENT;
		goto err;
	}
	orig_tun_get_socket = tun;
	orig_tap_get_socket = tap;
	/* register_kprobe() refuses a probe that has an address already. */
	for (i = 0; i < ARRAY_SIZE(vhost_probes); i++) {
		vhost_probes[i]->addr = NULL;
		vhost_probes[i]->flags = 0;
	}
	err = register_kprobes(vhost_probes, ARRAY_SIZE(vhost_probes));
	if (err)
		goto err;
	/* The entry point last: nothing is redirected into a half-armed path. */
	err = kvmguard_redirect_attach(&tun_redirect, (unsigned long)tun);
	if (err)
		goto err_tun;
	err = kvmguard_redirect_attach(&tap_redirect, (unsigned long)tap);
	if (err)
		goto err_tap;
	err = kvmguard_redirect_attach(&ioctl_redirect, 0);
	if (err)
		goto err_ioctl;
	armed = true;
	return 0;

err_ioctl:
	kvmguard_redirect_detach(&tap_redirect);
err_tap:
	kvmguard_redirect_detach(&tun_redirect);
err_tun:
	unregister_kprobes(vhost_probes, ARRAY_SIZE(vhost_probes));
err:
	if (tun)
		symbol_put_addr((void *)tun);
	if (tap)
		symbol_put_addr((void *)tap);
	return err;
}

static void vhost_disarm(void)
{
	lockdep_assert_held(&arm_mutex);
	if (!armed)
		return;
	/* Each returns once no handler runs; stand-ins may still be running. */
	kvmguard_redirect_detach(&ioctl_redirect);
	kvmguard_redirect_detach(&tap_redirect);
	kvmguard_redirect_detach(&tun_redirect);
	unregister_kprobes(vhost_probes, ARRAY_SIZE(vhost_probes));
	/*
	 * The pointers stay: a stand-in still running may call them, and
	 * vhost_net, which that task is in, pins tun and tap.
	 */
	symbol_put_addr((void *)orig_tun_get_socket);
	symbol_put_addr((void *)orig_tap_get_socket);
	armed = false;
}

static int vhost_module_event(struct notifier_block *nb, unsigned long event,
			      void *data)
{
	struct module *mod = data;
	int err = 0;

	/* It depends on vhost, tun and tap: they are loaded first. */
	if (strcmp(mod->name, "vhost_net"))
		return NOTIFY_DONE;
	mutex_lock(&arm_mutex);
	if (event == MODULE_STATE_COMING)
		err = vhost_arm();	/* before its init: no file exists */
	else if (event == MODULE_STATE_GOING)
		vhost_disarm();		/* bindings stay with their devices */
	mutex_unlock(&arm_mutex);
	if (err)
		pr_err("refusing vhost_net: cannot watch its backends: %d\n",
		       err);
	/* An error fails the load: no vhost-net without the probes. */
	return notifier_from_errno(err);
}

static struct notifier_block vhost_module_nb = {
	.notifier_call = vhost_module_event,
};

/*
 * A closed port stays down (see "Closed ports"): up only once vhost.c
 * opens it, or the administrator bound it to a VM (then it is let go).
 */
static int vport_pre_up(struct net_device *dev, void *ptr)
{
	struct vhost_port *vp = vport_find(dev);
	struct netlink_ext_ack *extack;

	if (!vp || !vp->closed)
		return 0;
	if (kvmguard_net_dev_bound(dev)) {
		vport_free(vp, "bound to a VM by the administrator");
		return 0;
	}
	extack = netdev_notifier_info_to_extack(ptr);
	NL_SET_ERR_MSG(extack, "kvmguard: the port of a destroyed VM whose VMM keeps it is closed");
	pr_info_ratelimited("%s: refusing to set it up: its VM is gone and its VMM keeps it\n",
			    netdev_name(dev));
	return -EBUSY;
}

/* A closed port takes no upper device: its drops are chosen for where it is. */
static int vport_pre_link(struct net_device *dev, void *ptr)
{
	struct netdev_notifier_changeupper_info *info = ptr;
	struct vhost_port *vp = vport_find(dev);

	if (!vp || !vp->closed || !info->linking)
		return 0;
	NL_SET_ERR_MSG(netdev_notifier_info_to_extack(&info->info),
		       "kvmguard: a closed port takes no upper device");
	return -EBUSY;
}

/* A device going away takes its pairs and port along (see below for a netns move). */
static int vhost_netdev_event(struct notifier_block *nb, unsigned long event,
			      void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);
	struct vhost_pair *p, *tmp;
	struct vhost_port *vp;
	bool moving;
	LIST_HEAD(list);

	switch (event) {
	case NETDEV_PRE_UP:
		return notifier_from_errno(vport_pre_up(dev, ptr));
	case NETDEV_PRECHANGEUPPER:
		return notifier_from_errno(vport_pre_link(dev, ptr));
	case NETDEV_CHANGEUPPER:
	case NETDEV_REGISTER:
		/* Left an upper device, or moved: see "Closed ports". */
		vp = vport_find(dev);
		if (vp && vp->closed)
			schedule_work(&guard_work);
		return NOTIFY_DONE;
	case NETDEV_UNREGISTER:
		break;
	default:
		return NOTIFY_DONE;
	}
	/*
	 * Still registered: a move to another netns, which net.c's binding
	 * survives, and so do the records of whom the device serves, and a
	 * closed port (the move sets it down; guard_work sees where it is).
	 */
	moving = dev->reg_state == NETREG_REGISTERED;
	if (!moving) {
		spin_lock(&vhost_lock);
		list_for_each_entry_safe(p, tmp, &pairs, node)
			if (p->dev == dev)
				list_move_tail(&p->node, &list);
		spin_unlock(&vhost_lock);
		pairs_free(&list);
	}
	/* net.c ends the binding itself. */
	vp = vport_find(dev);
	if (vp && !moving) {
		vport_free(vp, NULL);
	} else if (vp && vp->hooked) {
		/* Its hooks belong to the netns it leaves. */
		vport_unhook(vp);
		schedule_work(&guard_work);
	}
	return NOTIFY_DONE;
}

static struct notifier_block vhost_netdev_nb = {
	.notifier_call = vhost_netdev_event,
};

int kvmguard_vhost_init(void)
{
	int err;

	err = register_netdevice_notifier(&vhost_netdev_nb);
	if (err)
		return err;
	/* First the notifier, then vhost_net if it is there already. */
	err = register_module_notifier(&vhost_module_nb);
	if (err)
		goto err_module;
	mutex_lock(&arm_mutex);
	err = vhost_arm();
	mutex_unlock(&arm_mutex);
	if (err == -ENOENT)
		err = 0;		/* armed when vhost_net comes */
	if (err) {
		pr_err("cannot watch vhost-net backends: %d\n", err);
		goto err_arm;
	}
	spin_lock(&vhost_lock);
	events_on = true;
	spin_unlock(&vhost_lock);
	return 0;

err_arm:
	unregister_module_notifier(&vhost_module_nb);
err_module:
	unregister_netdevice_notifier(&vhost_netdev_nb);
	return err;
}

void kvmguard_vhost_uninit(void)
{
	struct vhost_port *vp, *tmp;
	LIST_HEAD(list);

	/* VMs destroyed from now on end their bindings in net.c alone. */
	spin_lock(&vhost_lock);
	events_on = false;
	spin_unlock(&vhost_lock);
	unregister_module_notifier(&vhost_module_nb);
	mutex_lock(&arm_mutex);
	vhost_disarm();
	mutex_unlock(&arm_mutex);
	/*
	 * No new redirection. Stand-ins still running return through module
	 * code after their count dropped: once they are out, a tasks-RCU
	 * grace period (a voluntary switch of every task) sees them gone.
	 */
	wait_event(standin_wq, !atomic_read(&in_standin));
	synchronize_rcu_tasks();
	/* The events queued so far are handled: none is lost. */
	flush_work(&event_work);
	/*
	 * Unregistering replays NETDEV_UNREGISTER as for a netns move; the
	 * ports go here. A closed one stays down (see "Closed ports").
	 */
	unregister_netdevice_notifier(&vhost_netdev_nb);
	cancel_work_sync(&guard_work);
	rtnl_lock();
	list_for_each_entry_safe(vp, tmp, &vports, node)
		vport_free(vp, "kvmguard is unloading: it stays down until set up");
	rtnl_unlock();
	/* The bindings go with net.c; only the references are ours. */
	spin_lock(&vhost_lock);
	list_splice_init(&pairs, &list);
	spin_unlock(&vhost_lock);
	pairs_free(&list);
	/*
	 * vport_free_rcu() callbacks still pending are waited for by the
	 * rcu_barrier() of kvmguard_net_uninit(), which always runs after
	 * this: one barrier for both, not one more on the unload path.
	 */
}

/*
 * Discovery: vhost-net backends attached before the module was loaded.
 * Their pairs are unknown (vhost's structures are private), so a process
 * that owns a VM and holds a vhost-net file gets every tap and macvtap
 * file it holds bound (KVMGUARD_NET_BOUND_FOUND), until the device or the
 * VM goes.
 */
#define DISCOVER_FOPS	64

enum discover_kind {
	DISCOVER_OTHER,
	DISCOVER_VHOST,
	DISCOVER_TUN,
	DISCOVER_TAP,
};

struct discovered_file {
	struct list_head node;
	struct mm_struct *mm;		/* mmgrab()bed */
	struct file *file;		/* a reference */
	bool tun;			/* else tap */
};

struct discover_ctx {
	struct list_head found;
	/* Valid while a file of theirs is held. */
	struct socket *(*tun_get_socket)(struct file *file);
	struct socket *(*tap_get_socket)(struct file *file);
	struct mm_struct *mm;		/* of the process walked */
	bool vhost;			/* it holds a vhost-net file */
	int err;
	/* What each f_op seen so far is, to name few symbols. */
	const struct file_operations *fops[DISCOVER_FOPS];
	u8 kind[DISCOVER_FOPS];
	unsigned int nr_fops;
	char sym[KSYM_SYMBOL_LEN];
};

/* Is @fn the function @name (of a module, as its file operations are)? */
static bool discover_fn_is(struct discover_ctx *ctx, const void *fn,
			   const char *name)
{
	size_t len = strlen(name);

	if (!fn)
		return false;
	sprint_symbol_no_offset(ctx->sym, (unsigned long)fn);
	return !strncmp(ctx->sym, name, len) &&
	       (ctx->sym[len] == '\0' || ctx->sym[len] == ' ');
}

static enum discover_kind discover_kind(struct discover_ctx *ctx,
					const struct file *file)
{
	const struct file_operations *fop = file->f_op;
	enum discover_kind kind = DISCOVER_OTHER;
	unsigned int i;

	for (i = 0; i < ctx->nr_fops; i++)
		if (ctx->fops[i] == fop)
			return ctx->kind[i];
	if (discover_fn_is(ctx, fop->release, "vhost_net_release"))
		kind = DISCOVER_VHOST;
	else if (discover_fn_is(ctx, fop->release, "tun_chr_close"))
		kind = DISCOVER_TUN;
	else if (discover_fn_is(ctx, fop->release, "tap_release"))
		kind = DISCOVER_TAP;
	if (ctx->nr_fops < DISCOVER_FOPS) {
		ctx->fops[ctx->nr_fops] = fop;
		ctx->kind[ctx->nr_fops++] = kind;
	}
	return kind;
}

/* Under the file table's spinlock: does the process hold vhost-net? */
static int discover_vhost_fd(const void *arg, struct file *file,
			     unsigned int fd)
{
	struct discover_ctx *ctx = (struct discover_ctx *)arg;

	if (discover_kind(ctx, file) == DISCOVER_VHOST) {
		ctx->vhost = true;
		return 1;		/* stop */
	}
	return 0;
}

/* Under the file table's spinlock: collect its tap and macvtap files. */
static int discover_tap_fd(const void *arg, struct file *file,
			   unsigned int fd)
{
	struct discover_ctx *ctx = (struct discover_ctx *)arg;
	enum discover_kind kind = discover_kind(ctx, file);
	struct discovered_file *d;

	if (kind != DISCOVER_TUN && kind != DISCOVER_TAP)
		return 0;
	d = kmalloc(sizeof(*d), GFP_ATOMIC);
	if (!d) {
		ctx->err = -ENOMEM;
		return 1;
	}
	d->file = get_file(file);
	d->mm = ctx->mm;
	mmgrab(d->mm);
	d->tun = kind == DISCOVER_TUN;
	list_add_tail(&d->node, &ctx->found);
	return 0;
}

static void discover_bind(struct discover_ctx *ctx, struct discovered_file *d)
{
	struct net_device *dev;
	struct kvmguard_vm *vm;
	struct socket *sock;
	int err;

	sock = d->tun ? ctx->tun_get_socket(d->file) :
			ctx->tap_get_socket(d->file);
	if (IS_ERR(sock))
		return;
	dev = d->tun ? tun_sock_dev(sock) : tap_sock_dev(sock);
	if (IS_ERR_OR_NULL(dev))
		return;			/* no device, unknown layout */
	vm = kvmguard_vm_get_by_mm(d->mm);
	if (!vm) {
		if (mm_has_vm(d->mm))
			pr_warn("%s stays unbound: its VMM's VMs have different policies\n",
				dev->name);
		dev_put(dev);
		return;
	}
	rtnl_lock();
	err = dev->reg_state == NETREG_REGISTERED ?
	      kvmguard_net_bind(vm, dev, KVMGUARD_NET_BOUND_FOUND, NULL) : 0;
	rtnl_unlock();
	if (err)
		pr_warn("cannot bind %s to VM %llu: %d\n", dev->name, vm->id,
			err);
	kvmguard_vm_put(vm);
	dev_put(dev);
}

void kvmguard_vhost_discover(void)
{
	struct discovered_file *d, *tmp;
	struct discover_ctx *ctx;
	struct task_struct *p;

	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return;
	INIT_LIST_HEAD(&ctx->found);
	/*
	 * Not armed: vhost_net is not loaded, so no vhost-net file is open.
	 * Armed: the probes see every attach from now on; this walk finds
	 * the earlier ones.
	 */
	mutex_lock(&arm_mutex);
	if (!armed) {
		mutex_unlock(&arm_mutex);
		kfree(ctx);
		return;
	}
	ctx->tun_get_socket = orig_tun_get_socket;
	ctx->tap_get_socket = orig_tap_get_socket;
	rcu_read_lock();
	for_each_process(p) {
		task_lock(p);
		if (p->files && p->mm) {
			ctx->mm = p->mm;
			ctx->vhost = false;
			iterate_fd(p->files, 0, discover_vhost_fd, ctx);
			if (ctx->vhost)
				iterate_fd(p->files, 0, discover_tap_fd, ctx);
		}
		task_unlock(p);
	}
	rcu_read_unlock();
	mutex_unlock(&arm_mutex);
	if (ctx->err)
		pr_err("vhost-net backends may stay unbound: %d\n", ctx->err);

	/* A tun or tap file pins its module, and so the function of ctx. */
	list_for_each_entry_safe(d, tmp, &ctx->found, node) {
		discover_bind(ctx, d);
		fput(d->file);
		mmdrop(d->mm);
		kfree(d);
	}
	kfree(ctx);
}
