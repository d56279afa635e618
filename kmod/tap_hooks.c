// SPDX-License-Identifier: GPL-2.0
/*
 * The direct calls that serve tap ports (net_entry.S, net.c "Taps"): one
 * at tun_net_xmit(), one at br_handle_frame().
 *
 * Each is attached by the first port that needs it, under rtnl, and
 * detached from a work item once no port does: detaching waits for every
 * task to leave ftrace's code, too long to hold rtnl for. The count of
 * users is atomic and the attachment changes under hooks_mutex, so that a
 * port getting a hook while the work detaches it either sees it detached
 * (and attaches it again) or keeps the work from detaching it.
 *
 * The traced function is given by the port's device (its ndo_start_xmit,
 * its rx_handler), not found by name: matching a name walks every
 * function ftrace knows, which took half a second of the test host's CPU
 * per attachment, under rtnl.
 *
 * tun and bridge may unload while attached: their exit removes their
 * devices first, which ends every use, and the hook goes before ftrace
 * forgets the module's code (MODULE_STATE_GOING).
 */
#define pr_fmt(fmt) "kvmguard: " fmt
#include <linux/ftrace.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/workqueue.h>

#include "compat.h"
#include "fault_inject.h"
#include "net.h"

struct tap_hook {
	const char *fn;			/* the traced function, for messages */
	void *entry;			/* in net_entry.S */
	enum kvmguard_fault_site fault;	/* its failure injection site */
	struct ftrace_ops ops;
	unsigned long ip;		/* the traced function, while attached */
	atomic_t users;			/* ports that need it */
	bool attached;			/* under hooks_mutex */
};

static struct tap_hook tap_hooks[TAP_HOOKS] = {
	[TAP_HOOK_XMIT] = {
		.fn = "tun_net_xmit",
		.entry = kvmguard_tun_xmit_entry,
		.fault = KVMGUARD_FAULT_TAP_XMIT,
	},
	[TAP_HOOK_BRIDGE] = {
		.fn = "br_handle_frame",
		.entry = kvmguard_br_frame_entry,
		.fault = KVMGUARD_FAULT_TAP_BRIDGE,
	},
};

static DEFINE_MUTEX(hooks_mutex);

static int hook_attach(struct tap_hook *hook, unsigned long ip)
{
	int err;

	if (kvmguard_fault(hook->fault))
		return -EBUSY;
	memset(&hook->ops, 0, sizeof(hook->ops));
	err = ftrace_set_filter_ip(&hook->ops, ip, 0, 0);
	if (!err)
		err = kvmguard_direct_attach(&hook->ops, hook->entry);
	if (err) {
		pr_err("cannot attach to %s (%pS): %d\n", hook->fn, (void *)ip,
		       err);
		ftrace_free_filter(&hook->ops);
		return err;
	}
	hook->ip = ip;
	hook->attached = true;
	return 0;
}

static void hook_detach(struct tap_hook *hook)
{
	lockdep_assert_held(&hooks_mutex);
	kvmguard_direct_detach(&hook->ops, hook->entry);
	hook->attached = false;
}

/*
 * A use of hook @id, whose function is at @ip (as the caller's device has
 * it); attached first if it is not. 0 or -errno.
 */
int kvmguard_tap_hook_get(enum kvmguard_tap_hook id, unsigned long ip)
{
	struct tap_hook *hook = &tap_hooks[id];
	int err = 0;

	atomic_inc(&hook->users);
	mutex_lock(&hooks_mutex);
	if (!hook->attached)
		err = hook_attach(hook, ip);
	else if (hook->ip != ip)
		err = -EBUSY;	/* on another function: not this device's */
	mutex_unlock(&hooks_mutex);
	if (err)
		atomic_dec(&hook->users);
	return err;
}

static void hooks_detach_unused(struct work_struct *work)
{
	int i;

	mutex_lock(&hooks_mutex);
	for (i = 0; i < TAP_HOOKS; i++)
		if (tap_hooks[i].attached && !atomic_read(&tap_hooks[i].users))
			hook_detach(&tap_hooks[i]);
	mutex_unlock(&hooks_mutex);
}

static DECLARE_WORK(detach_work, hooks_detach_unused);

void kvmguard_tap_hook_put(enum kvmguard_tap_hook id)
{
	if (atomic_dec_and_test(&tap_hooks[id].users))
		schedule_work(&detach_work);
}

static int tap_module_event(struct notifier_block *nb, unsigned long event,
			    void *data)
{
	struct module *mod = data;
	int i;

	if (event != MODULE_STATE_GOING)
		return NOTIFY_DONE;
	mutex_lock(&hooks_mutex);
	for (i = 0; i < TAP_HOOKS; i++) {
		struct tap_hook *hook = &tap_hooks[i];

		if (!hook->attached || !within_module(hook->ip, mod))
			continue;
		/* Its exit removed its devices, and with them every use. */
		if (atomic_read(&hook->users))
			pr_err("%s unloads while %d ports use %s\n", mod->name,
			       atomic_read(&hook->users), hook->fn);
		hook_detach(hook);
	}
	mutex_unlock(&hooks_mutex);
	return NOTIFY_DONE;
}

static struct notifier_block tap_module_nb = {
	.notifier_call = tap_module_event,
};

int kvmguard_tap_hooks_init(void)
{
	return register_module_notifier(&tap_module_nb);
}

/* After every port is gone, so nothing attaches any more. */
void kvmguard_tap_hooks_uninit(void)
{
	int i;

	unregister_module_notifier(&tap_module_nb);
	cancel_work_sync(&detach_work);
	mutex_lock(&hooks_mutex);
	for (i = 0; i < TAP_HOOKS; i++) {
		WARN_ON_ONCE(atomic_read(&tap_hooks[i].users));
		if (tap_hooks[i].attached)
			hook_detach(&tap_hooks[i]);
	}
	mutex_unlock(&hooks_mutex);
}
