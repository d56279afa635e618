// SPDX-License-Identifier: GPL-2.0
/*
 * kvmguard: per-VM isolation rules for KVM hosts.
 *
 * Start-up order matters: the registry exists before the hooks that fill
 * it, the hooks are attached before the search for running VMs so that
 * none is missed in between, and the netlink family comes last: until it
 * is registered no administrator request can create a policy or attach a
 * rule's hook, and no event leaves the module.
 *
 * Unloading undoes it in reverse, the family first: genl_unregister_family()
 * waits for the requests in progress, so no policy edit can attach a hook
 * into a module being freed. Every hook then goes before the registry
 * and the policies it reads. Running VMs keep running and are found again
 * on the next load.
 */
#define pr_fmt(fmt) "kvmguard: " fmt
#include <linux/module.h>
#include <net/genetlink.h>

#include "kvmguard.h"

static int __init kvmguard_init(void)
{
	int err;

	/* Best effort: VM creation falls back to atomic allocations. */
	kvmguard_hc_reserve_init();
	err = kvmguard_registry_init();
	if (err)
		goto err_registry;
	err = kvmguard_hooks_init();
	if (err)
		goto err_hooks;
	err = kvmguard_memory_init();
	if (err)
		goto err_memory;
	err = kvmguard_xen_init();
	if (err)
		goto err_xen;
	err = kvmguard_net_init();
	if (err)
		goto err_net;
	err = kvmguard_vhost_init();
	if (err)
		goto err_vhost;
	/* Refuse to load rather than leave a running VM without rules. */
	err = kvmguard_registry_discover();
	if (err)
		goto err_discover;
	kvmguard_vhost_discover();
	err = kvmguard_netlink_init();
	if (err)
		goto err_discover;
	pr_info("loaded\n");
	return 0;

err_discover:
	kvmguard_vhost_uninit();
err_vhost:
	kvmguard_net_uninit();
err_net:
	kvmguard_xen_uninit();
err_xen:
	kvmguard_memory_uninit();
err_memory:
	kvmguard_hooks_uninit();
err_hooks:
	kvmguard_hypercall_uninit();
	kvmguard_registry_uninit();
	kvmguard_policy_uninit();
err_registry:
	kvmguard_hc_reserve_uninit();
	return err;
}

static void __exit kvmguard_exit(void)
{
	/* First: no request in progress or to come can attach a hook. */
	kvmguard_netlink_uninit();
	kvmguard_hypercall_uninit();
	kvmguard_vhost_uninit();
	kvmguard_net_uninit();
	kvmguard_xen_uninit();
	kvmguard_memory_uninit();
	kvmguard_hooks_uninit();
	/* No hook left that could read them. */
	kvmguard_registry_uninit();
	kvmguard_policy_uninit();
	kvmguard_hc_reserve_uninit();
	pr_info("unloaded\n");
}

module_init(kvmguard_init);
module_exit(kvmguard_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Per-VM isolation rules for KVM hosts");
MODULE_AUTHOR("The kvmguard authors");
MODULE_VERSION(KVMGUARD_VERSION);
MODULE_ALIAS_GENL_FAMILY(KVMGUARD_GENL_NAME);
