/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Failure injection, for tests only: compiled in by `make KVMGUARD_FAULTS=1`
 * (Kbuild defines KVMGUARD_FAULTS). In any other build kvmguard_fault() is
 * false and every site check compiles away.
 *
 * A site is one attach, registration or allocation on a path that attaches
 * kvmguard to the kernel. The faults build has module parameters (also in
 * /sys/module/kvmguard/parameters/, root only):
 *   fault_site=NAME  the site to fail ("none": none); writing it starts the
 *                    count of its hits afresh
 *   fault_nth=N      its Nth hit from then on fails (default 1) ...
 *   fault_times=M    ... and the M - 1 hits after it (default 1; -1: all)
 *   fault_injected   (read only) failures injected since fault_site was set
 * Names are those of fault_site_names[] in fault_inject.c.
 */
#ifndef _KVMGUARD_FAULT_INJECT_H
#define _KVMGUARD_FAULT_INJECT_H

#include <linux/types.h>

enum kvmguard_fault_site {
	KVMGUARD_FAULT_NONE,
	KVMGUARD_FAULT_PORT_ALLOC,	/* net.c: a port's memory */
	KVMGUARD_FAULT_TAP_XMIT,	/* tap_hooks.c: at tun_net_xmit() */
	KVMGUARD_FAULT_TAP_BRIDGE,	/* tap_hooks.c: at br_handle_frame() */
	KVMGUARD_FAULT_NF_HOOKS,	/* net.c: netfilter netdev hooks */
	KVMGUARD_FAULT_HC_ATTACH,	/* hypercall.c: the hypercall hook */
	KVMGUARD_FAULT_MEMSLOT_ATTACH,	/* memory.c: the memslot hook */
	KVMGUARD_FAULT_KSM_KPROBES,	/* memory.c: at init */
	KVMGUARD_FAULT_LIFECYCLE_KPROBES, /* hooks.c: at init */
	KVMGUARD_FAULT_VHOST_PROBES,	/* vhost.c: when vhost_net is there */
	KVMGUARD_FAULT_REGISTRY_ADD,	/* registry.c: a VM's entry */
	KVMGUARD_FAULT_GENL_FAMILY,	/* netlink.c: at init */
	KVMGUARD_FAULT_SITES
};

#ifdef KVMGUARD_FAULTS
/* Should this hit of @site fail? Any context. */
bool kvmguard_fault(enum kvmguard_fault_site site);
#else
static inline bool kvmguard_fault(enum kvmguard_fault_site site)
{
	return false;
}
#endif

/*
 * Deliberate bugs, to prove that the debug lane catches such bugs: compiled
 * in only by `make KVMGUARD_BROKEN=leak` (a deleted policy is never freed)
 * or `KVMGUARD_BROKEN=sleep` (POLICY_GET sleeps under a spinlock).
 */
static inline bool kvmguard_broken_leak(void)
{
#ifdef KVMGUARD_BROKEN_LEAK
	return true;
#else
	return false;
#endif
}

#ifdef KVMGUARD_BROKEN_SLEEP
void kvmguard_broken_sleep(void);
#else
static inline void kvmguard_broken_sleep(void)
{
}
#endif

#endif /* _KVMGUARD_FAULT_INJECT_H */
