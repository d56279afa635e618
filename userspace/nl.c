// SPDX-License-Identifier: GPL-2.0
/*
 * kvmguard(8): the generic netlink transport: the socket, family and group
 * resolution, requests with extended-ACK error reporting, restarted dumps
 * and multicast reception.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/netlink.h>
#include <netlink/netlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>

#include "kg.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define DUMP_TRIES 5
/*
 * Room for the largest request: a cgroup binding of KVMGUARD_CGROUP_MAX
 * bytes is 4.1 KiB, more than libnl's default of a page.
 */
#define MSG_SIZE 8192

struct kg_nl {
	struct nl_sock *sk;
	int family;
	bool test_peer;
	unsigned int test_group;
};

/* State of one request or dump while its replies come in. */
struct req_ctx {
	kg_reply_fn cb;
	void *arg;
	bool done;
	bool intr;		/* a part carried NLM_F_DUMP_INTR */
	bool bad_reply;		/* a reply did not parse */
	int err;		/* errno the kernel reported */
	char ext_msg[512];	/* its extended-ACK message, if any */
	int miss_type;		/* NLMSGERR_ATTR_MISS_TYPE, or -1 */
	const struct kg_errhint *hints;	/* said when ext_msg is empty */
};

/* Attribute types of replies; libnl then checks their lengths for us. */
static struct nla_policy attr_policy[KVMGUARD_A_MAX + 1] = {
	[KVMGUARD_A_VM_ID] = { .type = NLA_U64 },
	[KVMGUARD_A_VM_PID] = { .type = NLA_U32 },
	[KVMGUARD_A_VM_COMM] = { .type = NLA_STRING },
	[KVMGUARD_A_VM_CGROUP] = { .type = NLA_STRING },
	[KVMGUARD_A_VM_CREATED_NS] = { .type = NLA_U64 },
	[KVMGUARD_A_VM_VCPUS] = { .type = NLA_U32 },
	[KVMGUARD_A_VM_MEMSLOTS] = { .type = NLA_U32 },
	[KVMGUARD_A_VM_MEM_BYTES] = { .type = NLA_U64 },
	[KVMGUARD_A_VM_FLAGS] = { .type = NLA_U32 },
	[KVMGUARD_A_VM_BOUND_BY] = { .type = NLA_U8 },
	[KVMGUARD_A_POLICY_NAME] = { .type = NLA_STRING },
	[KVMGUARD_A_POLICY_MODE] = { .type = NLA_U8 },
	[KVMGUARD_A_POLICY_DOMAIN] = { .type = NLA_STRING },
	[KVMGUARD_A_POLICY_VMS] = { .type = NLA_U32 },
	[KVMGUARD_A_POLICY_BINDINGS] = { .type = NLA_U32 },
	[KVMGUARD_A_BIND_TYPE] = { .type = NLA_U8 },
	[KVMGUARD_A_BIND_CGROUP] = { .type = NLA_STRING },
	[KVMGUARD_A_BIND_PID] = { .type = NLA_U32 },
	[KVMGUARD_A_EVENT_TYPE] = { .type = NLA_U8 },
	[KVMGUARD_A_EVENT_TIME_NS] = { .type = NLA_U64 },
	[KVMGUARD_A_POLICY_HC_RESTRICT] = { .type = NLA_U8 },
	[KVMGUARD_A_POLICY_HC_ALLOW] = { .type = NLA_U64 },
	[KVMGUARD_A_POLICY_HYPERV] = { .type = NLA_U8 },
	[KVMGUARD_A_VM_HC_STATS] = { .type = NLA_NESTED },
	[KVMGUARD_A_VM_HV_ALLOWED] = { .type = NLA_U64 },
	[KVMGUARD_A_VM_HV_DENIED] = { .type = NLA_U64 },
	[KVMGUARD_A_EVENT_HC_NR] = { .type = NLA_U64 },
	[KVMGUARD_A_EVENT_ACTION] = { .type = NLA_U8 },
	[KVMGUARD_A_EVENT_COUNT] = { .type = NLA_U64 },
	[KVMGUARD_A_POLICY_MEM_MAX] = { .type = NLA_U64 },
	[KVMGUARD_A_POLICY_MEM_SHARED] = { .type = NLA_U8 },
	[KVMGUARD_A_POLICY_MEM_KSM] = { .type = NLA_U8 },
	[KVMGUARD_A_POLICY_MEM_DIRTY_MAX] = { .type = NLA_U64 },
	[KVMGUARD_A_VM_MEM_SHARED_BYTES] = { .type = NLA_U64 },
	[KVMGUARD_A_VM_MEM_DIRTY_BYTES] = { .type = NLA_U64 },
	[KVMGUARD_A_VM_MEM_LIMIT_DENIED] = { .type = NLA_U64 },
	[KVMGUARD_A_VM_MEM_SHARED_DENIED] = { .type = NLA_U64 },
	[KVMGUARD_A_VM_MEM_KSM_DENIED] = { .type = NLA_U64 },
	[KVMGUARD_A_VM_MEM_DIRTY_DENIED] = { .type = NLA_U64 },
	[KVMGUARD_A_EVENT_MEM_RULE] = { .type = NLA_U8 },
	[KVMGUARD_A_EVENT_MEM_SLOT] = { .type = NLA_U32 },
	[KVMGUARD_A_EVENT_MEM_BYTES] = { .type = NLA_U64 },
	[KVMGUARD_A_POLICY_NET_TAG] = { .type = NLA_U16 },
	[KVMGUARD_A_POLICY_NET_TRUNK] = { .minlen = KVMGUARD_NET_TRUNK_BYTES,
					  .maxlen = KVMGUARD_NET_TRUNK_BYTES },
	[KVMGUARD_A_POLICY_NET_ISOLATE] = { .type = NLA_U8 },
	[KVMGUARD_A_VM_NET_DEVS] = { .type = NLA_NESTED },
	[KVMGUARD_A_NET_IFINDEX] = { .type = NLA_U32 },
	[KVMGUARD_A_NET_IFNAME] = { .type = NLA_STRING },
	[KVMGUARD_A_EVENT_NET_RULE] = { .type = NLA_U8 },
	[KVMGUARD_A_EVENT_NET_DIR] = { .type = NLA_U8 },
	[KVMGUARD_A_EVENT_NET_VID] = { .type = NLA_U16 },
	[KVMGUARD_A_NET_GUARD] = { .type = NLA_U8 },
	[KVMGUARD_A_NET_GUARD_PORTS] = { .type = NLA_U32 },
	[KVMGUARD_A_NET_GUARD_DROPPED] = { .type = NLA_U64 },
	[KVMGUARD_A_NET_BRIDGE] = { .type = NLA_STRING },
	[KVMGUARD_A_POLICY_XEN] = { .type = NLA_U8 },
	[KVMGUARD_A_CHECK_RULE] = { .type = NLA_U8 },
	[KVMGUARD_A_CHECK_VERDICT] = { .type = NLA_U8 },
	[KVMGUARD_A_CHECK_LIMIT] = { .type = NLA_U64 },
	[KVMGUARD_A_CHECK_USED] = { .type = NLA_U64 },
	[KVMGUARD_A_CHECK_TOTAL] = { .type = NLA_U64 },
	[KVMGUARD_A_VM_MEM_KSM_MADVISE] = { .type = NLA_U64 },
	[KVMGUARD_A_EVENT_VMM_DEFAULT] = { .type = NLA_U8 },
	[KVMGUARD_A_EVENT_HV_CODE] = { .type = NLA_U16 },
};

/*
 * TLVs after an NLMSG_ERROR's struct nlmsgerr (and the echoed request unless
 * NLM_F_CAPPED), or after NLMSG_DONE's int.
 */
static void parse_ext_ack(struct req_ctx *ctx, struct nlmsghdr *nlh,
			  size_t offset)
{
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	size_t total = nlh->nlmsg_len;

	ctx->ext_msg[0] = '\0';
	ctx->miss_type = -1;
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (offset >= total)
		return;
	if (nla_parse(tb, NLMSGERR_ATTR_MAX,
		      (struct nlattr *)((char *)nlh + offset),
		      (int)(total - offset), NULL))
		return;
	if (tb[NLMSGERR_ATTR_MSG] && nla_len(tb[NLMSGERR_ATTR_MSG]) > 0) {
		size_t len = strnlen(nla_data(tb[NLMSGERR_ATTR_MSG]),
				     nla_len(tb[NLMSGERR_ATTR_MSG]));

		if (len >= sizeof(ctx->ext_msg))
			len = sizeof(ctx->ext_msg) - 1;
		memcpy(ctx->ext_msg, nla_data(tb[NLMSGERR_ATTR_MSG]), len);
		ctx->ext_msg[len] = '\0';
	}
	if (tb[NLMSGERR_ATTR_MISS_TYPE] &&
	    nla_len(tb[NLMSGERR_ATTR_MISS_TYPE]) >= 4)
		ctx->miss_type = (int)nla_get_u32(tb[NLMSGERR_ATTR_MISS_TYPE]);
}

static int on_error(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg)
{
	struct req_ctx *ctx = arg;
	/* libnl hands us the payload; the header sits right before it */
	struct nlmsghdr *nlh = (struct nlmsghdr *)((char *)e - NLMSG_HDRLEN);
	size_t offset = NLMSG_HDRLEN + sizeof(*e);

	(void)who;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		offset += NLMSG_ALIGN(e->msg.nlmsg_len) - NLMSG_HDRLEN;
	ctx->err = -e->error;
	parse_ext_ack(ctx, nlh, offset);
	ctx->done = true;
	return NL_STOP;
}

static int on_ack(struct nl_msg *msg, void *arg)
{
	struct req_ctx *ctx = arg;

	(void)msg;
	ctx->done = true;
	return NL_STOP;
}

/* NLMSG_DONE: its int is the dump's error (0 when it went through). */
static int on_finish(struct nl_msg *msg, void *arg)
{
	struct req_ctx *ctx = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);

	if (nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
		int v;

		memcpy(&v, nlmsg_data(nlh), sizeof(v));
		if (v < 0) {
			ctx->err = -v;
			parse_ext_ack(ctx, nlh,
				      NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(int)));
		}
	}
	ctx->done = true;
	return NL_STOP;
}

static int on_dump_intr(struct nl_msg *msg, void *arg)
{
	struct req_ctx *ctx = arg;

	(void)msg;
	ctx->intr = true;
	return NL_OK;
}

static int on_valid(struct nl_msg *msg, void *arg)
{
	struct req_ctx *ctx = arg;
	struct nlattr *tb[KVMGUARD_A_MAX + 1];

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, KVMGUARD_A_MAX,
			  attr_policy)) {
		ctx->bad_reply = true;
		return NL_SKIP;
	}
	if (ctx->cb && ctx->cb(tb, ctx->arg) < 0)
		ctx->bad_reply = true;
	return NL_OK;
}

static int on_valid_event(struct nl_msg *msg, void *arg)
{
	return on_valid(msg, arg);
}

static void not_loaded(const char *what)
{
	fprintf(stderr, PROG_NAME ": %s: " KG_NOT_LOADED "\n", what);
}

/*
 * Did the request fail because the module went away under it? A dump
 * started while the module is being unloaded fails with EPROTONOSUPPORT
 * (netlink_dump_start() cannot take a reference on a module that is
 * going; kvmguard never answers that itself), and a request to a family
 * that is gone fails with ENOENT and no extended ACK (kvmguard's own
 * ENOENTs carry a message): then the family is no longer found by name,
 * or has another id (the module was loaded again).
 */
static bool module_gone(struct kg_nl *nl, const struct req_ctx *ctx)
{
	int id;

	if (ctx->err == EPROTONOSUPPORT)
		return true;
	if (ctx->err != ENOENT || ctx->ext_msg[0] || ctx->miss_type >= 0)
		return false;
	id = genl_ctrl_resolve(nl->sk, KVMGUARD_GENL_NAME);
	if (id < 0)
		return id == -NLE_OBJ_NOTFOUND;
	return id != nl->family;
}

static void report(struct kg_nl *nl, const char *what, struct req_ctx *ctx)
{
	const struct kg_errhint *h;

	if (module_gone(nl, ctx)) {
		not_loaded(what);
		return;
	}
	fprintf(stderr, PROG_NAME ": %s: %s", what, strerror(ctx->err));
	for (h = ctx->hints; h && h->err && h->err != ctx->err; h++)
		;
	if (ctx->ext_msg[0])
		fprintf(stderr, ": %s", ctx->ext_msg);
	else if (h && h->err)
		fprintf(stderr, " (%s)", h->text);
	else if (ctx->miss_type >= 0)
		fprintf(stderr, ": missing attribute %d", ctx->miss_type);
	else if (ctx->err == EPERM)
		fputs(" (CAP_NET_ADMIN is required)", stderr);
	fputc('\n', stderr);
}

/* Wait for the end of the request in ctx; 0 or -1 (reported). */
static int wait_reply(struct kg_nl *nl, struct req_ctx *ctx, const char *what)
{
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int ret = 0;

	if (!cb) {
		fprintf(stderr, PROG_NAME ": out of memory\n");
		return -1;
	}
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_valid, ctx);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, on_ack, ctx);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, on_finish, ctx);
	nl_cb_set(cb, NL_CB_DUMP_INTR, NL_CB_CUSTOM, on_dump_intr, ctx);
	nl_cb_err(cb, NL_CB_CUSTOM, on_error, ctx);

	while (!ctx->done) {
		ret = nl_recvmsgs(nl->sk, cb);
		if (ret == -NLE_DUMP_INTR) {
			/* libnl read up to NLMSG_DONE and flagged it */
			ctx->intr = true;
			ctx->done = true;
			ret = 0;
		} else if (ret < 0 && !ctx->done) {
			fprintf(stderr, PROG_NAME ": %s: %s\n", what,
				nl_geterror(ret));
			nl_cb_put(cb);
			return -1;
		}
	}
	nl_cb_put(cb);
	if (ctx->err) {
		report(nl, what, ctx);
		return -1;
	}
	if (ctx->bad_reply) {
		fprintf(stderr, PROG_NAME ": %s: malformed reply from the kernel\n",
			what);
		return -1;
	}
	return 0;
}

struct nl_msg *kg_msg(struct kg_nl *nl, uint8_t cmd, int flags)
{
	struct nl_msg *msg = nlmsg_alloc_size(MSG_SIZE);

	if (!msg || !genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0,
				 flags, cmd, KVMGUARD_GENL_VERSION)) {
		fputs(PROG_NAME ": out of memory\n", stderr);
		exit(EXIT_ERR);
	}
	return msg;
}

int kg_msg_unbuilt(struct nl_msg *msg, const char *what)
{
	nlmsg_free(msg);
	fprintf(stderr, PROG_NAME ": %s: the request does not fit in a netlink message (%d bytes); nothing was sent\n",
		what, MSG_SIZE);
	return -1;
}

static int send_msg(struct kg_nl *nl, struct nl_msg *msg, const char *what)
{
	int ret = nl_send_auto(nl->sk, msg);

	nlmsg_free(msg);
	if (ret < 0) {
		fprintf(stderr, PROG_NAME ": %s: %s\n", what, nl_geterror(ret));
		return -1;
	}
	return 0;
}

int kg_nl_request_hints(struct kg_nl *nl, struct nl_msg *msg, kg_reply_fn cb,
			void *arg, const char *what,
			const struct kg_errhint *hints)
{
	struct req_ctx ctx = { .cb = cb, .arg = arg, .miss_type = -1,
			       .hints = hints };

	if (send_msg(nl, msg, what))
		return -1;
	return wait_reply(nl, &ctx, what);
}

int kg_nl_request(struct kg_nl *nl, struct nl_msg *msg, kg_reply_fn cb,
		  void *arg, const char *what)
{
	return kg_nl_request_hints(nl, msg, cb, arg, what, NULL);
}

int kg_nl_dump(struct kg_nl *nl, uint8_t cmd, kg_reply_fn cb,
	       void (*reset)(void *), void *arg, const char *what)
{
	int try;

	for (try = 0; try < DUMP_TRIES; try++) {
		struct req_ctx ctx = { .cb = cb, .arg = arg, .miss_type = -1 };

		if (try)
			reset(arg);
		if (send_msg(nl, kg_msg(nl, cmd, NLM_F_DUMP), what))
			return -1;
		if (wait_reply(nl, &ctx, what))
			return -1;
		if (!ctx.intr)
			return 0;
	}
	fprintf(stderr,
		PROG_NAME ": %s: the state kept changing during %d dumps, giving up\n",
		what, DUMP_TRIES);
	return -1;
}

int kg_nl_subscribe(struct kg_nl *nl, const char *group)
{
	int grp, ret;

	if (nl->test_peer) {
		grp = (int)nl->test_group;
		if (!grp)
			goto seq;
	} else {
		grp = genl_ctrl_resolve_grp(nl->sk, KVMGUARD_GENL_NAME, group);
		if (grp == -NLE_OBJ_NOTFOUND &&
		    genl_ctrl_resolve(nl->sk, KVMGUARD_GENL_NAME) != nl->family) {
			not_loaded("cannot subscribe to kvmguard events");
			return -1;
		}
		if (grp < 0) {
			fprintf(stderr,
				PROG_NAME ": cannot find the \"%s\" multicast group of the kvmguard family: %s\n",
				group, nl_geterror(grp));
			return -1;
		}
	}
	ret = nl_socket_add_membership(nl->sk, grp);
	if (ret < 0) {
		if (ret == -NLE_PERM)
			fprintf(stderr,
				PROG_NAME ": cannot subscribe to kvmguard events: %s (CAP_NET_ADMIN is required)\n",
				strerror(EPERM));
		else
			fprintf(stderr,
				PROG_NAME ": cannot subscribe to kvmguard events: %s\n",
				nl_geterror(ret));
		return -1;
	}
seq:
	/* events are not replies: no sequence numbers to check */
	nl_socket_disable_seq_check(nl->sk);
	ret = nl_socket_set_nonblocking(nl->sk);
	if (ret < 0) {
		fprintf(stderr, PROG_NAME ": cannot set up the socket: %s\n",
			nl_geterror(ret));
		return -1;
	}
	return 0;
}

int kg_nl_recv_events(struct kg_nl *nl, kg_reply_fn cb, void *arg)
{
	struct req_ctx ctx = { .cb = cb, .arg = arg, .miss_type = -1 };
	int ret;

	nl_socket_modify_cb(nl->sk, NL_CB_VALID, NL_CB_CUSTOM, on_valid_event,
			    &ctx);
	ret = nl_recvmsgs_default(nl->sk);
	if (ret == -NLE_AGAIN)
		ret = 0;
	if (ret == -NLE_NOMEM && errno == ENOBUFS) {
		fprintf(stderr, PROG_NAME ": events were lost (receive buffer overrun)\n");
		ret = 0;
	}
	if (ret < 0) {
		fprintf(stderr, PROG_NAME ": receiving events: %s\n",
			nl_geterror(ret));
		return -1;
	}
	if (ctx.bad_reply)
		fprintf(stderr, PROG_NAME ": ignored a malformed event\n");
	return 0;
}

int kg_nl_fd(struct kg_nl *nl)
{
	return nl_socket_get_fd(nl->sk);
}

#ifdef KVMGUARD_TEST_BUILD
/*
 * KVMGUARD_TEST_PEER=PORT:FAMILY[:GROUP] talks to a userspace netlink socket
 * instead of the kernel (for the CLI's own tests, see tests/). Only the test
 * build (tests/kvmguard-test) has it; the installed kvmguard ignores it.
 */
static int test_peer(struct kg_nl *nl)
{
	const char *env = getenv("KVMGUARD_TEST_PEER");
	unsigned int port, family, group = 0;

	if (!env)
		return 0;
	if (sscanf(env, "%u:%u:%u", &port, &family, &group) < 2) {
		fprintf(stderr, PROG_NAME ": bad KVMGUARD_TEST_PEER\n");
		return -1;
	}
	nl_socket_set_peer_port(nl->sk, port);
	nl->family = (int)family;
	nl->test_group = group;
	nl->test_peer = true;
	return 1;
}
#else
static int test_peer(struct kg_nl *nl)
{
	(void)nl;
	return 0;
}
#endif

struct kg_nl *kg_nl_open(void)
{
	struct kg_nl *nl = xcalloc(1, sizeof(*nl));
	int one = 1, ret;

	nl->sk = nl_socket_alloc();
	if (!nl->sk) {
		fputs(PROG_NAME ": out of memory\n", stderr);
		goto err_free;
	}
	ret = genl_connect(nl->sk);
	if (ret < 0) {
		fprintf(stderr, PROG_NAME ": cannot open a generic netlink socket: %s\n",
			nl_geterror(ret));
		goto err_sock;
	}
	/* best effort: kernels without them just send less detail */
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_EXT_ACK,
		   &one, sizeof(one));
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_CAP_ACK,
		   &one, sizeof(one));
	nl_socket_enable_msg_peek(nl->sk);

	ret = test_peer(nl);
	if (ret < 0)
		goto err_sock;
	if (ret > 0)
		return nl;

	nl->family = genl_ctrl_resolve(nl->sk, KVMGUARD_GENL_NAME);
	if (nl->family == -NLE_OBJ_NOTFOUND) {
		fputs(PROG_NAME ": the kvmguard module is not loaded (generic netlink family \""
		      KVMGUARD_GENL_NAME "\" not found)\n", stderr);
		goto err_sock;
	}
	if (nl->family < 0) {
		fprintf(stderr,
			PROG_NAME ": cannot look up the generic netlink family \"%s\": %s\n",
			KVMGUARD_GENL_NAME, nl_geterror(nl->family));
		goto err_sock;
	}
	return nl;

err_sock:
	nl_socket_free(nl->sk);
err_free:
	free(nl);
	return NULL;
}

void kg_nl_close(struct kg_nl *nl)
{
	if (!nl)
		return;
	nl_socket_free(nl->sk);
	free(nl);
}
