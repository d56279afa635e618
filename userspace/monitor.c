// SPDX-License-Identifier: GPL-2.0
/*
 * kvmguard(8): monitor: print the events of the "events" multicast group
 * until SIGINT or SIGTERM.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <netlink/attr.h>

#include "kg.h"

static const char *event_name(uint8_t type)
{
	switch (type) {
	case KVMGUARD_EVENT_VM_CREATE:
		return "vm_create";
	case KVMGUARD_EVENT_VM_DESTROY:
		return "vm_destroy";
	case KVMGUARD_EVENT_HYPERCALL:
		return "hypercall";
	case KVMGUARD_EVENT_HYPERV:
		return "hyperv";
	case KVMGUARD_EVENT_MEMORY:
		return "memory";
	case KVMGUARD_EVENT_NET:
		return "net";
	case KVMGUARD_EVENT_NET_GUARD:
		return "net_guard";
	case KVMGUARD_EVENT_NET_GUARD_END:
		return "net_guard_end";
	case KVMGUARD_EVENT_XEN:
		return "xen";
	}
	return NULL;
}

/* An optional unsigned attribute of an event (nl.c checked its size). */
static bool attr_uint(struct nlattr *a, uint64_t *v)
{
	if (!a)
		return false;
	switch (nla_len(a)) {
	case 1:
		*v = nla_get_u8(a);
		break;
	case 2:
		*v = nla_get_u16(a);
		break;
	case 4:
		*v = nla_get_u32(a);
		break;
	default:
		*v = nla_get_u64(a);
		break;
	}
	return true;
}

static void json_opt_uint(struct json *j, const char *key, struct nlattr *a)
{
	uint64_t v;

	if (attr_uint(a, &v)) {
		json_key(j, key);
		json_u64(j, v);
	}
}

static void print_opt_uint(const char *key, struct nlattr *a)
{
	uint64_t v;

	if (attr_uint(a, &v))
		printf(" %s=%llu", key, (unsigned long long)v);
}

/* An optional u8 of an enum: its name, or "unknown" and its number. */
static void json_opt_enum(struct json *j, const char *key, struct nlattr *a,
			  const char *name)
{
	char nr_key[32];

	if (!a)
		return;
	json_key(j, key);
	json_str(j, name ? name : "unknown");
	if (!name) {
		snprintf(nr_key, sizeof(nr_key), "%s_nr", key);
		json_opt_uint(j, nr_key, a);
	}
}

static void print_opt_enum(const char *key, struct nlattr *a,
			   const char *name)
{
	if (name)
		printf(" %s=%s", key, name);
	else if (a)
		printf(" %s=unknown(%u)", key, nla_get_u8(a));
}

static int print_event(struct nlattr **tb, void *arg)
{
	uint8_t type = tb[KVMGUARD_A_EVENT_TYPE] ?
		nla_get_u8(tb[KVMGUARD_A_EVENT_TYPE]) : KVMGUARD_EVENT_UNSPEC;
	uint64_t time_ns = tb[KVMGUARD_A_EVENT_TIME_NS] ?
		nla_get_u64(tb[KVMGUARD_A_EVENT_TIME_NS]) : 0;
	const char *name = event_name(type);
	struct nlattr *nr = tb[KVMGUARD_A_EVENT_HC_NR];
	struct nlattr *action = tb[KVMGUARD_A_EVENT_ACTION];
	struct nlattr *count = tb[KVMGUARD_A_EVENT_COUNT];
	struct nlattr *mem_rule = tb[KVMGUARD_A_EVENT_MEM_RULE];
	struct nlattr *net_rule = tb[KVMGUARD_A_EVENT_NET_RULE];
	struct nlattr *rule = mem_rule ? mem_rule : net_rule;
	struct nlattr *bytes = tb[KVMGUARD_A_EVENT_MEM_BYTES];
	struct nlattr *slot = tb[KVMGUARD_A_EVENT_MEM_SLOT];
	struct nlattr *dir = tb[KVMGUARD_A_EVENT_NET_DIR];
	struct nlattr *ifname = tb[KVMGUARD_A_NET_IFNAME];
	struct nlattr *ifindex = tb[KVMGUARD_A_NET_IFINDEX];
	struct nlattr *vid = tb[KVMGUARD_A_EVENT_NET_VID];
	struct nlattr *bridge = tb[KVMGUARD_A_NET_BRIDGE];
	struct nlattr *hv_code = tb[KVMGUARD_A_EVENT_HV_CODE];
	bool vmm_default = tb[KVMGUARD_A_EVENT_VMM_DEFAULT] &&
			   nla_get_u8(tb[KVMGUARD_A_EVENT_VMM_DEFAULT]);
	/* Guard events are about a bridge, not a VM. */
	bool has_vm = tb[KVMGUARD_A_VM_ID];
	const char *rule_name = NULL, *dir_name = NULL, *act = NULL;
	struct kg_vm vm = { 0 };

	if (mem_rule)
		rule_name = mem_rule_name(nla_get_u8(mem_rule));
	else if (net_rule)
		rule_name = net_rule_name(nla_get_u8(net_rule));
	if (dir)
		dir_name = net_dir_name(nla_get_u8(dir));
	if (action)
		act = nla_get_u8(action) == KVMGUARD_ACTION_AUDITED ?
			"audited" : "denied";

	(void)arg;
	vm_from_attrs(&vm, tb);
	if (opt_json) {
		struct json j;

		json_init(&j, stdout);
		json_obj_begin(&j);
		json_key(&j, "event");
		json_str(&j, name ? name : "unknown");
		if (!name) {
			json_key(&j, "type");
			json_u64(&j, type);
		}
		json_key(&j, "time_ns");
		json_u64(&j, time_ns);
		if (has_vm) {
			json_key(&j, "vm");
			json_obj_begin(&j);
			json_key(&j, "id");
			json_u64(&j, vm.id);
			json_key(&j, "pid");
			json_u64(&j, vm.pid);
			json_key(&j, "comm");
			json_str(&j, vm.comm);
			json_obj_end(&j);
			json_key(&j, "policy");
			if (vm.policy[0])
				json_str(&j, vm.policy);
			else
				json_null(&j);
		}
		json_opt_uint(&j, "nr", nr);
		json_opt_uint(&j, "hv_code", hv_code);
		json_opt_enum(&j, "rule", rule, rule_name);
		if (vmm_default) {
			json_key(&j, "vmm_default");
			json_bool(&j, true);
		}
		json_opt_enum(&j, "dir", dir, dir_name);
		if (act) {
			json_key(&j, "action");
			json_str(&j, act);
		}
		json_opt_uint(&j, "count", count);
		json_opt_uint(&j, "bytes", bytes);
		if (slot) {
			json_key(&j, "slot");
			json_obj_begin(&j);
			json_key(&j, "as_id");
			json_u64(&j, nla_get_u32(slot) >> 16);
			json_key(&j, "id");
			json_u64(&j, nla_get_u32(slot) & 0xffff);
			json_obj_end(&j);
		}
		if (ifname) {
			json_key(&j, "dev");
			json_str(&j, nla_get_string(ifname));
		}
		json_opt_uint(&j, "ifindex", ifindex);
		json_opt_uint(&j, "vid", vid);
		if (bridge) {
			json_key(&j, "bridge");
			json_str(&j, nla_get_string(bridge));
		}
		json_obj_end(&j);
		putchar('\n');
	} else {
		char t[64], comm[sizeof(vm.comm)];

		fmt_time(t, sizeof(t), time_ns, true);
		fmt_safe(comm, sizeof(comm), vm.comm);
		if (name)
			printf("%s %s", t, name);
		else
			printf("%s unknown(%u)", t, type);
		if (has_vm)
			printf(" id=%llu pid=%u comm=%s policy=%s",
			       (unsigned long long)vm.id, vm.pid, comm,
			       vm.policy[0] ? vm.policy : "-");
		if (nr) {
			uint64_t n = nla_get_u64(nr);
			const char *hc = n < 64 ? hc_name(n) : NULL;

			printf(" nr=%llu", (unsigned long long)n);
			if (hc)
				printf(" name=%s", hc);
		}
		if (hv_code)
			printf(" hv_code=%#x", nla_get_u16(hv_code));
		print_opt_enum("rule", rule, rule_name);
		print_opt_enum("dir", dir, dir_name);
		if (act)
			printf(" action=%s", act);
		/* A stock VMM's request: once per VM, see the man page. */
		if (vmm_default)
			printf(" vmm_default=1");
		print_opt_uint("count", count);
		print_opt_uint("bytes", bytes);
		/* as the VMM names it: address space / slot id */
		if (slot)
			printf(" slot=%u/%u", nla_get_u32(slot) >> 16,
			       nla_get_u32(slot) & 0xffff);
		if (ifname) {
			char dev[KG_IFNAMSIZ];

			fmt_safe(dev, sizeof(dev), nla_get_string(ifname));
			printf(" dev=%s", dev);
		}
		print_opt_uint("ifindex", ifindex);
		/* absent for an untagged frame; 0 is a priority tag */
		print_opt_uint("vid", vid);
		if (bridge) {
			char br[KG_IFNAMSIZ];

			fmt_safe(br, sizeof(br), nla_get_string(bridge));
			printf(" bridge=%s", br);
		}
		putchar('\n');
	}
	fflush(stdout);
	kg_vm_free(&vm);
	return 0;
}

int cmd_monitor(struct kg_nl *nl, const struct kg_request *req)
{
	struct pollfd pfd[2];
	sigset_t mask, old;
	int sfd, ret = EXIT_ERR;

	(void)req;
	if (kg_nl_subscribe(nl, KVMGUARD_MCGRP_EVENTS))
		return EXIT_ERR;

	/* signals arrive on a descriptor, so a clean exit needs no races */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &mask, &old)) {
		fprintf(stderr, PROG_NAME ": sigprocmask: %s\n", strerror(errno));
		return EXIT_ERR;
	}
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		fprintf(stderr, PROG_NAME ": signalfd: %s\n", strerror(errno));
		goto out_mask;
	}
	pfd[0].fd = kg_nl_fd(nl);
	pfd[0].events = POLLIN;
	pfd[1].fd = sfd;
	pfd[1].events = POLLIN;
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, PROG_NAME ": poll: %s\n", strerror(errno));
			break;
		}
		if (pfd[1].revents) {
			struct signalfd_siginfo si;

			/* consume them, or restoring the mask would deliver them */
			while (read(sfd, &si, sizeof(si)) == sizeof(si))
				;
			ret = EXIT_OK;
			break;
		}
		if (pfd[0].revents & (POLLERR | POLLIN)) {
			if (kg_nl_recv_events(nl, print_event, NULL))
				break;
		}
		if (ferror(stdout)) {
			/* e.g. a closed pipe: nobody is listening any more */
			break;
		}
	}
	close(sfd);
out_mask:
	sigprocmask(SIG_SETMASK, &old, NULL);
	return ret;
}
