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
 *    that run the original, find the device and bind it to the VM of the
 *    calling process (KVM ties a VM to its creator's mm) before vhost can
 *    move a frame - or refuse the backend: the VMM then gets ENOTSOCK;
 *  - vhost_net_release(): the vhost-net file is gone.
 * The redirections are hooks.c's redirects (ftrace IPMODIFY users, so a
 * livepatch of one of these functions is refused while they are there,
 * and refuses them when it came first); the other two are kprobes that
 * only look. A redirect sits at the function's entry, so the stand-in
 * gets the original's arguments and returns to its caller. Our own calls
 * of the originals find the operation marked and are not redirected again.
 *
 * Every (vhost-net device, virtqueue) with a tap or macvtap backend of a
 * VM process is a pair; the VM's binding of the device (made with
 * KVMGUARD_NET_BOUND_VHOST) ends with its last pair: the queue detached
 * (fd -1), given another backend, RESET_OWNER, or the vhost-net file
 * released. Pairs are keyed by pointers that are compared, never followed.
 * Multiqueue VMMs open one vhost-net file per queue pair, all with the
 * same device.
 *
 * The hooks exist while vhost_net is loaded (a module notifier; it pins
 * tun and tap, whose functions the stand-ins call): armed when it comes,
 * before /dev/vhost-net exists, and a failure fails its load; removed
 * when it goes.
 *
 * Locking: vhost_lock (a spinlock: the hook handlers are atomic) guards
 * the lists of operations, pairs and released pairs. Whether a binding
 * ends is decided under rtnl_lock() (the lock kvmguard_net_bind() and
 * kvmguard_net_unbind() want): a device stays bound while a pair or an
 * operation in flight holds it. The stand-ins run in the VMM's context
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
#include <linux/ptrace.h>
#include <linux/rtnetlink.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/vhost.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "kvmguard.h"
#include "tun_layout.h"
#include "fault_inject.h"

/*
 * A SET_BACKEND or RESET_OWNER in progress, on the stack of vhost_ioctl().
 * Only its task adds, changes and removes it; other tasks only look at
 * vm and dev (under vhost_lock), to see whether it holds a binding.
 */
struct vhost_op {
	struct list_head node;		/* ops, under vhost_lock */
	struct task_struct *task;
	const void *vq;			/* struct vhost_virtqueue, once known */
	struct kvmguard_vm *vm;		/* the VM dev was bound to; a reference */
	struct net_device *dev;		/* the new backend's device; held */
	bool in_orig;			/* we are calling tun/tap_get_socket() */
};

/* A virtqueue whose backend is a VM's port. */
struct vhost_pair {
	struct list_head node;		/* pairs or gone, under vhost_lock */
	const void *n;			/* struct vhost_net */
	const void *vq;			/* struct vhost_virtqueue */
	struct kvmguard_vm *vm;		/* a reference */
	/* Not held: the pair goes at NETDEV_UNREGISTER. */
	struct net_device *dev;
};

static DEFINE_SPINLOCK(vhost_lock);
static LIST_HEAD(ops);
static LIST_HEAD(pairs);
static LIST_HEAD(gone);			/* released, the binding yet to end */

static void gone_work_fn(struct work_struct *work);
static DECLARE_WORK(gone_work, gone_work_fn);

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

/* Does a pair or an operation in flight hold @vm's binding of @dev? */
static bool port_held(const struct kvmguard_vm *vm,
		      const struct net_device *dev)
{
	struct vhost_pair *p;
	struct vhost_op *op;

	lockdep_assert_held(&vhost_lock);
	list_for_each_entry(p, &pairs, node)
		if (p->vm == vm && p->dev == dev)
			return true;
	list_for_each_entry(op, &ops, node)
		if (op->vm == vm && op->dev == dev)
			return true;
	return false;
}

/* A pair of @vm and @dev went: the binding ends if it was the last. */
static void port_release(struct kvmguard_vm *vm, struct net_device *dev)
{
	bool held;

	ASSERT_RTNL();
	spin_lock(&vhost_lock);
	held = port_held(vm, dev);
	spin_unlock(&vhost_lock);
	if (!held)
		kvmguard_net_unbind(vm, dev, KVMGUARD_NET_BOUND_VHOST);
}

static void pairs_free(struct list_head *list)
{
	struct vhost_pair *p, *tmp;

	list_for_each_entry_safe(p, tmp, list, node) {
		kvmguard_vm_put(p->vm);
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

/* Released vhost-net files: their bindings end here, in process context. */
static void gone_work_fn(struct work_struct *work)
{
	struct vhost_pair *p;
	LIST_HEAD(list);

	rtnl_lock();
	spin_lock(&vhost_lock);
	list_splice_init(&gone, &list);
	spin_unlock(&vhost_lock);
	list_for_each_entry(p, &list, node)
		port_release(p->vm, p->dev);
	rtnl_unlock();
	pairs_free(&list);
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
 * VM of current's process. 0 lets vhost go on.
 */
static int backend_attach(struct vhost_op *op, struct socket *sock,
			  bool tun)
{
	struct kvmguard_vm *vm;
	struct net_device *dev;
	const char *why;
	int err;

	/* Without the virtqueue the binding could not be tracked. */
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
	vm = kvmguard_vm_get_by_mm(current->mm);
	if (!vm && mm_has_vm(current->mm)) {
		why = "its VMs have different policies";
		err = -EBUSY;
		goto refuse;
	}
	/* Bindings of released vhost-net files end first. */
	flush_work(&gone_work);

	rtnl_lock();
	if (dev->reg_state != NETREG_REGISTERED)
		err = -ENODEV;
	else if (vm)
		err = kvmguard_net_bind(vm, dev, KVMGUARD_NET_BOUND_VHOST,
					NULL);
	else
		err = kvmguard_net_dev_bound(dev) ? -EBUSY : 0;
	if (!err) {
		/* From here the device is held for the VM: see port_held(). */
		spin_lock(&vhost_lock);
		op->vm = vm;
		op->dev = dev;
		spin_unlock(&vhost_lock);
	}
	rtnl_unlock();
	if (!err)
		return 0;
	why = err == -EBUSY ? "it is another VM's port" :
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

static void set_backend_done(const void *n, struct vhost_op *op,
			     struct vhost_pair *new, long ret)
{
	struct vhost_pair *p, *old = NULL;

	rtnl_lock();
	spin_lock(&vhost_lock);
	list_del(&op->node);
	if (!ret && op->vq) {
		/* The virtqueue's backend is what this call gave it. */
		list_for_each_entry(p, &pairs, node) {
			if (p->n == n && p->vq == op->vq) {
				old = p;
				list_del(&p->node);
				break;
			}
		}
		if (op->vm && op->dev->reg_state == NETREG_REGISTERED) {
			new->n = n;
			new->vq = op->vq;
			new->vm = op->vm;
			new->dev = op->dev;
			list_add_tail(&new->node, &pairs);
			op->vm = NULL;	/* the pair's reference now */
			new = NULL;
		}
	}
	spin_unlock(&vhost_lock);
	/* A failed call left the old backend in place (vhost rolls back). */
	if (old)
		port_release(old->vm, old->dev);
	if (op->vm)
		port_release(op->vm, op->dev);
	rtnl_unlock();

	if (old) {
		kvmguard_vm_put(old->vm);
		kfree(old);
	}
	if (op->vm)
		kvmguard_vm_put(op->vm);
	if (op->dev)
		dev_put(op->dev);
	kfree(new);
}

static void reset_owner_done(const void *n, struct vhost_op *op, long ret)
{
	struct vhost_pair *p;
	LIST_HEAD(list);

	rtnl_lock();
	spin_lock(&vhost_lock);
	list_del(&op->node);
	/* Success stopped both virtqueues: no backend is left. */
	if (!ret)
		pairs_take(n, &list);
	spin_unlock(&vhost_lock);
	list_for_each_entry(p, &list, node)
		port_release(p->vm, p->dev);
	rtnl_unlock();
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

static int release_probe_pre(struct kprobe *kp, struct pt_regs *regs)
{
	struct file *f = (struct file *)regs_get_kernel_argument(regs, 1);
	bool any;

	spin_lock(&vhost_lock);
	any = pairs_take(f->private_data, &gone);
	spin_unlock(&vhost_lock);
	if (any)
		schedule_work(&gone_work);
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

/* A device going away (or to another netns) takes its pairs along. */
static int vhost_netdev_event(struct notifier_block *nb, unsigned long event,
			      void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);
	struct vhost_pair *p, *tmp;
	LIST_HEAD(list);

	if (event != NETDEV_UNREGISTER)
		return NOTIFY_DONE;
	spin_lock(&vhost_lock);
	list_for_each_entry_safe(p, tmp, &pairs, node)
		if (p->dev == dev)
			list_move_tail(&p->node, &list);
	list_for_each_entry_safe(p, tmp, &gone, node)
		if (p->dev == dev)
			list_move_tail(&p->node, &list);
	spin_unlock(&vhost_lock);
	/* net.c ends the binding itself. */
	pairs_free(&list);
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
	return 0;

err_arm:
	unregister_module_notifier(&vhost_module_nb);
err_module:
	unregister_netdevice_notifier(&vhost_netdev_nb);
	return err;
}

void kvmguard_vhost_uninit(void)
{
	LIST_HEAD(list);

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
	flush_work(&gone_work);
	/* Unregistering replays NETDEV_UNREGISTER: most pairs go there. */
	unregister_netdevice_notifier(&vhost_netdev_nb);
	/* The bindings go with net.c; only the references are ours. */
	spin_lock(&vhost_lock);
	list_splice_init(&pairs, &list);
	list_splice_init(&gone, &list);
	spin_unlock(&vhost_lock);
	pairs_free(&list);
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
