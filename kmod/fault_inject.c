// SPDX-License-Identifier: GPL-2.0
/*
 * Failure injection for the selftests, and the deliberately broken builds
 * for the debug lane (see fault_inject.h); empty unless the module is built
 * with KVMGUARD_FAULTS=1 or KVMGUARD_BROKEN=sleep.
 */
#ifdef KVMGUARD_FAULTS
#define pr_fmt(fmt) "kvmguard: " fmt
#include <linux/atomic.h>
#include <linux/moduleparam.h>
#include <linux/printk.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#include "fault_inject.h"

static const char * const fault_site_names[KVMGUARD_FAULT_SITES] = {
	[KVMGUARD_FAULT_NONE]			= "none",
	[KVMGUARD_FAULT_PORT_ALLOC]		= "port_alloc",
	[KVMGUARD_FAULT_TAP_XMIT]		= "tap_xmit",
	[KVMGUARD_FAULT_TAP_BRIDGE]		= "tap_bridge",
	[KVMGUARD_FAULT_NF_HOOKS]		= "nf_hooks",
	[KVMGUARD_FAULT_HC_ATTACH]		= "hc_attach",
	[KVMGUARD_FAULT_MEMSLOT_ATTACH]		= "memslot_attach",
	[KVMGUARD_FAULT_KSM_KPROBES]		= "ksm_kprobes",
	[KVMGUARD_FAULT_LIFECYCLE_KPROBES]	= "lifecycle_kprobes",
	[KVMGUARD_FAULT_VHOST_PROBES]		= "vhost_probes",
	[KVMGUARD_FAULT_REGISTRY_ADD]		= "registry_add",
	[KVMGUARD_FAULT_GENL_FAMILY]		= "genl_family",
};

static int fault_site;			/* enum kvmguard_fault_site */
static atomic_t fault_hits;		/* of fault_site, since it was set */
static atomic_t fault_count;		/* failures injected since then */
static int fault_nth = 1;
module_param(fault_nth, int, 0600);
MODULE_PARM_DESC(fault_nth, "test only: the first hit of fault_site that fails");
static int fault_times = 1;
module_param(fault_times, int, 0600);
MODULE_PARM_DESC(fault_times, "test only: how many hits fail from fault_nth on (-1: all)");

static int fault_site_set(const char *val, const struct kernel_param *kp)
{
	int site = sysfs_match_string(fault_site_names, val);

	if (site < 0)
		return site;
	WRITE_ONCE(fault_site, KVMGUARD_FAULT_NONE);
	atomic_set(&fault_hits, 0);
	atomic_set(&fault_count, 0);
	WRITE_ONCE(fault_site, site);
	return 0;
}

static int fault_site_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s\n", fault_site_names[READ_ONCE(fault_site)]);
}

static const struct kernel_param_ops fault_site_ops = {
	.set = fault_site_set,
	.get = fault_site_get,
};
module_param_cb(fault_site, &fault_site_ops, NULL, 0600);
MODULE_PARM_DESC(fault_site, "test only: the attach or allocation site to fail");

static int fault_injected_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&fault_count));
}

static const struct kernel_param_ops fault_injected_ops = {
	.get = fault_injected_get,
};
module_param_cb(fault_injected, &fault_injected_ops, NULL, 0400);
MODULE_PARM_DESC(fault_injected, "test only: failures injected since fault_site was set");

bool kvmguard_fault(enum kvmguard_fault_site site)
{
	int hit, nth = READ_ONCE(fault_nth), times = READ_ONCE(fault_times);

	if (site == KVMGUARD_FAULT_NONE || site != READ_ONCE(fault_site))
		return false;
	hit = atomic_inc_return(&fault_hits);
	if (hit < nth || (times >= 0 && hit - nth >= times))
		return false;
	atomic_inc(&fault_count);
	pr_info("fault injected: %s, hit %d\n", fault_site_names[site], hit);
	return true;
}
#endif /* KVMGUARD_FAULTS */

#ifdef KVMGUARD_BROKEN_SLEEP
#include <linux/delay.h>
#include <linux/spinlock.h>

#include "fault_inject.h"

static DEFINE_SPINLOCK(broken_lock);

/* Sleeps in atomic context: lockdep and might_sleep() must say so. */
void kvmguard_broken_sleep(void)
{
	spin_lock(&broken_lock);
	msleep(20);
	spin_unlock(&broken_lock);
}
#endif
