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
	}
	return NULL;
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
	struct nlattr *rule = tb[KVMGUARD_A_EVENT_MEM_RULE];
	struct nlattr *bytes = tb[KVMGUARD_A_EVENT_MEM_BYTES];
	struct nlattr *slot = tb[KVMGUARD_A_EVENT_MEM_SLOT];
	const char *rule_name = rule ? mem_rule_name(nla_get_u8(rule)) : NULL;
	const char *act = NULL;
	struct kg_vm vm = { 0 };

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
		if (nr) {
			json_key(&j, "nr");
			json_u64(&j, nla_get_u64(nr));
		}
		if (rule) {
			json_key(&j, "rule");
			json_str(&j, rule_name ? rule_name : "unknown");
			if (!rule_name) {
				json_key(&j, "rule_nr");
				json_u64(&j, nla_get_u8(rule));
			}
		}
		if (act) {
			json_key(&j, "action");
			json_str(&j, act);
		}
		if (count) {
			json_key(&j, "count");
			json_u64(&j, nla_get_u64(count));
		}
		if (bytes) {
			json_key(&j, "bytes");
			json_u64(&j, nla_get_u64(bytes));
		}
		if (slot) {
			json_key(&j, "slot");
			json_obj_begin(&j);
			json_key(&j, "as_id");
			json_u64(&j, nla_get_u32(slot) >> 16);
			json_key(&j, "id");
			json_u64(&j, nla_get_u32(slot) & 0xffff);
			json_obj_end(&j);
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
		if (rule_name)
			printf(" rule=%s", rule_name);
		else if (rule)
			printf(" rule=unknown(%u)", nla_get_u8(rule));
		if (act)
			printf(" action=%s", act);
		if (count)
			printf(" count=%llu",
			       (unsigned long long)nla_get_u64(count));
		if (bytes)
			printf(" bytes=%llu",
			       (unsigned long long)nla_get_u64(bytes));
		/* as the VMM names it: address space / slot id */
		if (slot)
			printf(" slot=%u/%u", nla_get_u32(slot) >> 16,
			       nla_get_u32(slot) & 0xffff);
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
