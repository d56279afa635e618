// SPDX-License-Identifier: GPL-2.0
/*
 * kvmguard(8): command line entry point: global options, the subcommand
 * table, and start-up/tear-down of the netlink socket.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "kg.h"

bool opt_json;
bool opt_verbose;
bool opt_force;

static const char usage_text[] =
	"Usage: " PROG_NAME " [-j] [-v] [-f] COMMAND [ARGS]\n"
	"\n"
	"  " PROG_NAME " [-j] vm list\n"
	"  " PROG_NAME " [-j] vm show ID\n"
	"  " PROG_NAME " vm set ID policy NAME [force]\n"
	"  " PROG_NAME " [-j] vm check ID mem add SIZE | dirty-log SIZE|all\n"
	"  " PROG_NAME " policy add NAME [OPTION...]\n"
	"  " PROG_NAME " policy set NAME OPTION... [force]\n"
	"  " PROG_NAME " policy del NAME [force]\n"
	"  " PROG_NAME " [-j] policy show [NAME]\n"
	"  " PROG_NAME " bind default|cgroup PATH|pid PID policy NAME [force]\n"
	"  " PROG_NAME " unbind default|cgroup PATH|pid PID [force]\n"
	"  " PROG_NAME " [-j] bind show\n"
	"  " PROG_NAME " net bind ID dev IFNAME|ifindex N\n"
	"  " PROG_NAME " net unbind dev IFNAME|ifindex N\n"
	"  " PROG_NAME " net guard BRIDGE on|off\n"
	"  " PROG_NAME " [-j] net show\n"
	"  " PROG_NAME " [-j] monitor\n"
	"  " PROG_NAME " [-v] apply [--check|--diff] FILE|-\n"
	"  " PROG_NAME " dump\n"
	"  " PROG_NAME " help | --help | -V\n"
	"\n"
	"Policy options (any order):\n"
	"  mode enforce|audit   domain NAME|none   hyperv allow|deny   xen allow|deny\n"
	"  hypercalls all|none|allow NAME|NR[,...]  (kick_cpu, send_ipi, ...)\n"
	"  mem max SIZE|none   mem shared allow|deny|domain   mem ksm allow|deny\n"
	"  mem dirty-log max SIZE|none   (SIZE: bytes or 512K, 4G, 1T, ...)\n"
	"  net tag VID|none   net trunk VIDLIST|none   net isolate on|off\n"
	"  (VID: 1..4094; VIDLIST: VIDs and ranges such as 100,200-210)\n"
	"\n"
	"Options:\n"
	"  -j, --json     print JSON (read commands and monitor)\n"
	"  -v, --verbose  apply: print each change as it is made\n"
	"  -f, --force    make a change that denies a running VM a hypercall of a\n"
	"                 PV feature its CPUID told it about (same as `force`)\n"
	"  -V, --version  print the version\n"
	"  -h, --help     print this summary\n"
	"\n"
	"Exit status: 0 success, 1 error, 2 usage error; vm check: 3 when the\n"
	"policy would refuse. See kvmguard(8).\n";

/* After a usage error: one line, not the whole summary. */
#define HINT "Try '" PROG_NAME " --help' for more information.\n"

static void usage(FILE *f)
{
	fputs(usage_text, f);
}

struct subcommand {
	enum kg_op op;
	int (*fn)(struct kg_nl *nl, const struct kg_request *req);
	bool needs_nl;		/* apply opens it itself, after reading */
};

static const struct subcommand subcommands[] = {
	{ OP_VM_LIST, cmd_vm_list, true },
	{ OP_VM_SHOW, cmd_vm_show, true },
	{ OP_VM_SET, cmd_vm_set, true },
	{ OP_VM_CHECK, cmd_vm_check, true },
	{ OP_POLICY_ADD, cmd_policy_add, true },
	{ OP_POLICY_SET, cmd_policy_set, true },
	{ OP_POLICY_DEL, cmd_policy_del, true },
	{ OP_POLICY_SHOW, cmd_policy_show, true },
	{ OP_BIND, cmd_bind, true },
	{ OP_UNBIND, cmd_unbind, true },
	{ OP_BIND_SHOW, cmd_bind_show, true },
	{ OP_MONITOR, cmd_monitor, true },
	{ OP_APPLY, cmd_apply, false },
	{ OP_DUMP, cmd_dump, true },
	{ OP_NET_BIND, cmd_net_bind, true },
	{ OP_NET_UNBIND, cmd_net_unbind, true },
	{ OP_NET_GUARD, cmd_net_guard, true },
	{ OP_NET_SHOW, cmd_net_show, true },
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "force", no_argument, NULL, 'f' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct subcommand *sub = NULL;
	struct kg_request req;
	struct kg_nl *nl = NULL;
	char err[ERRMSG_MAX];
	size_t i;
	int c, ret;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+jvfVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			opt_json = true;
			break;
		case 'v':
			opt_verbose = true;
			break;
		case 'f':
			opt_force = true;
			break;
		case 'V':
			printf(PROG_NAME " %s (ABI version %d)\n", KVMGUARD_VERSION,
			       KVMGUARD_GENL_VERSION);
			return EXIT_OK;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			fprintf(stderr, PROG_NAME ": unknown option '%s'\n" HINT,
				argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (parse_command(argc - optind, argv + optind, &req, false, err,
			  sizeof(err))) {
		fprintf(stderr, PROG_NAME ": %s\n" HINT, err);
		return EXIT_USAGE;
	}
	if (req.force)
		opt_force = true;
	if (req.op == OP_HELP) {
		usage(stdout);
		return EXIT_OK;
	}
	for (i = 0; i < ARRAY_SIZE(subcommands); i++)
		if (subcommands[i].op == req.op)
			sub = &subcommands[i];
	if (!sub) {
		kg_request_free(&req);
		return EXIT_USAGE;
	}

	if (sub->needs_nl) {
		nl = kg_nl_open();
		if (!nl) {
			kg_request_free(&req);
			return EXIT_ERR;
		}
	}
	ret = sub->fn(nl, &req);
	if (fflush(stdout) || ferror(stdout)) {
		perror(PROG_NAME ": writing output");
		ret = EXIT_ERR;
	}
	kg_nl_close(nl);
	kg_request_free(&req);
	return ret;
}
