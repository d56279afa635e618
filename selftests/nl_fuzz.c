// SPDX-License-Identifier: GPL-2.0
/*
 * nl_fuzz: generic netlink fuzzing of the kvmguard family, for a bounded
 * time, from a seeded PRNG.
 *
 * Messages are built from the uapi's attribute list: each command gets the
 * attributes it takes, with values chosen near the interesting edges (the
 * test's own VM id, tap, pid, policy names kgz-0..3, names of 31 and 32
 * bytes, cgroup paths of 4095 and 4096 bytes, ranges' ends), then mutated:
 * attributes of the wrong type (the flat space, types past KVMGUARD_A_MAX,
 * NLA_F_NESTED and NLA_F_NET_BYTEORDER bits), wrong lengths (short, long,
 * no NUL), nested garbage several levels deep, duplicates, hundreds of
 * attributes, one huge attribute (up to 60 KB), a corrupted attribute
 * header, a message cut anywhere after the netlink header (also under an
 * nlmsg_len that stops short of the datagram), NLM_F_DUMP on doit commands
 * and its absence on dump commands, stray nlmsg_flags bits, a non-zero
 * genl reserved byte, any version.
 *
 *   every_command      commands 0..255, as doit and as dump, each once
 *                      well formed and mutated once (the family's
 *                      commands five times).
 *   random_root        random commands (mostly the family's) for 2/3 of
 *                      the time.
 *   random_unprivileged the same for the last 1/3, as uid/gid 65534.
 *
 * Every request must be answered (a 10 s receive timeout; 30 s on the debug
 * kernel) with 0 or a negative errno of the expected set. Where the answer
 * is fixed by genetlink it must be exactly that: EINVAL for a message
 * shorter than the genl header, a non-zero reserved byte or stray flags;
 * EOPNOTSUPP for a command the family lacks or a doit/dump it has no
 * handler for; as uid 65534, EPERM for every command the family has, and
 * never success. Afterwards the module answers a well-formed
 * POLICY_NEW/GET/DEL, everything created is deleted again (every policy
 * and binding that was not there before), and the kernel log has no oops,
 * BUG, WARNING, KASAN, UBSAN or lockdep report.
 *
 * KVMGUARD_FUZZ_SECONDS: running time of the random cases together
 * (default 20; run_tests.sh passes the lane's). KVMGUARD_FUZZ_SEED: the
 * seed (printed; default from the clock) - the same seed replays the same
 * messages in the same order.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <net/if.h>

#include "kselftest_harness.h"
#include "hcg.h"
#include "kg.h"
#include "vm.h"
#include "vhostdrv.h"

#define P	"kgz-"
#define TAP	"kgnfz0"	/* netg's prefix: kgn */
#define CG	"/kvmguard-nlfuzz"
#define NOBODY	65534
#define PID_MAX	4194304	/* PID_MAX_LIMIT on 64-bit */

/* Attribute payload kinds, from the comments of uapi/linux/kvmguard.h. */
enum kind { K_NONE, K_U8, K_U16, K_U32, K_U64, K_STR, K_BIN, K_NEST };

static const uint8_t akind[KVMGUARD_A_MAX + 1] = {
	[KVMGUARD_A_PAD] = K_BIN,
	[KVMGUARD_A_VM_ID] = K_U64,
	[KVMGUARD_A_VM_PID] = K_U32,
	[KVMGUARD_A_VM_COMM] = K_STR,
	[KVMGUARD_A_VM_CGROUP] = K_STR,
	[KVMGUARD_A_VM_CREATED_NS] = K_U64,
	[KVMGUARD_A_VM_VCPUS] = K_U32,
	[KVMGUARD_A_VM_MEMSLOTS] = K_U32,
	[KVMGUARD_A_VM_MEM_BYTES] = K_U64,
	[KVMGUARD_A_VM_FLAGS] = K_U32,
	[KVMGUARD_A_VM_BOUND_BY] = K_U8,
	[KVMGUARD_A_POLICY_NAME] = K_STR,
	[KVMGUARD_A_POLICY_MODE] = K_U8,
	[KVMGUARD_A_POLICY_DOMAIN] = K_STR,
	[KVMGUARD_A_POLICY_VMS] = K_U32,
	[KVMGUARD_A_POLICY_BINDINGS] = K_U32,
	[KVMGUARD_A_BIND_TYPE] = K_U8,
	[KVMGUARD_A_BIND_CGROUP] = K_STR,
	[KVMGUARD_A_BIND_PID] = K_U32,
	[KVMGUARD_A_EVENT_TYPE] = K_U8,
	[KVMGUARD_A_EVENT_TIME_NS] = K_U64,
	[KVMGUARD_A_POLICY_HC_RESTRICT] = K_U8,
	[KVMGUARD_A_POLICY_HC_ALLOW] = K_U64,
	[KVMGUARD_A_POLICY_HYPERV] = K_U8,
	[KVMGUARD_A_VM_HC_STATS] = K_NEST,
	[KVMGUARD_A_HC_STAT] = K_NEST,
	[KVMGUARD_A_HC_NR] = K_U32,
	[KVMGUARD_A_HC_ALLOWED] = K_U64,
	[KVMGUARD_A_HC_DENIED] = K_U64,
	[KVMGUARD_A_VM_HV_ALLOWED] = K_U64,
	[KVMGUARD_A_VM_HV_DENIED] = K_U64,
	[KVMGUARD_A_EVENT_HC_NR] = K_U64,
	[KVMGUARD_A_EVENT_ACTION] = K_U8,
	[KVMGUARD_A_EVENT_COUNT] = K_U64,
	[KVMGUARD_A_POLICY_MEM_MAX] = K_U64,
	[KVMGUARD_A_POLICY_MEM_SHARED] = K_U8,
	[KVMGUARD_A_POLICY_MEM_KSM] = K_U8,
	[KVMGUARD_A_POLICY_MEM_DIRTY_MAX] = K_U64,
	[KVMGUARD_A_VM_MEM_SHARED_BYTES] = K_U64,
	[KVMGUARD_A_VM_MEM_DIRTY_BYTES] = K_U64,
	[KVMGUARD_A_VM_MEM_LIMIT_DENIED] = K_U64,
	[KVMGUARD_A_VM_MEM_SHARED_DENIED] = K_U64,
	[KVMGUARD_A_VM_MEM_KSM_DENIED] = K_U64,
	[KVMGUARD_A_VM_MEM_DIRTY_DENIED] = K_U64,
	[KVMGUARD_A_EVENT_MEM_RULE] = K_U8,
	[KVMGUARD_A_EVENT_MEM_SLOT] = K_U32,
	[KVMGUARD_A_EVENT_MEM_BYTES] = K_U64,
	[KVMGUARD_A_POLICY_NET_TAG] = K_U16,
	[KVMGUARD_A_POLICY_NET_TRUNK] = K_BIN,
	[KVMGUARD_A_POLICY_NET_ISOLATE] = K_U8,
	[KVMGUARD_A_VM_NET_DEVS] = K_NEST,
	[KVMGUARD_A_NET_DEV] = K_NEST,
	[KVMGUARD_A_NET_IFINDEX] = K_U32,
	[KVMGUARD_A_NET_IFNAME] = K_STR,
	[KVMGUARD_A_NET_BOUND_BY] = K_U8,
	[KVMGUARD_A_NET_TAGGED] = K_U64,
	[KVMGUARD_A_NET_FORWARDED] = K_U64,
	[KVMGUARD_A_NET_DELIVERED] = K_U64,
	[KVMGUARD_A_NET_TAG_DENIED] = K_U64,
	[KVMGUARD_A_NET_SEGMENT_DENIED] = K_U64,
	[KVMGUARD_A_NET_ISOLATE_DENIED] = K_U64,
	[KVMGUARD_A_EVENT_NET_RULE] = K_U8,
	[KVMGUARD_A_EVENT_NET_DIR] = K_U8,
	[KVMGUARD_A_EVENT_NET_VID] = K_U16,
	[KVMGUARD_A_NET_GUARD] = K_U8,
	[KVMGUARD_A_NET_GUARD_PORTS] = K_U32,
	[KVMGUARD_A_NET_GUARD_DROPPED] = K_U64,
	[KVMGUARD_A_NET_BRIDGE] = K_STR,
	[KVMGUARD_A_CHECK_RULE] = K_U8,
	[KVMGUARD_A_CHECK_BYTES] = K_U64,
};

/* What each command takes (uapi), and which handlers it has. */
#define A(x) KVMGUARD_A_##x
static const uint8_t in_vm_get[] = { A(VM_ID) };
static const uint8_t in_vm_set[] = { A(VM_ID), A(POLICY_NAME) };
static const uint8_t in_policy_edit[] = {
	A(POLICY_NAME), A(POLICY_MODE), A(POLICY_DOMAIN), A(POLICY_HC_RESTRICT),
	A(POLICY_HC_ALLOW), A(POLICY_HYPERV), A(POLICY_MEM_MAX), A(POLICY_MEM_SHARED),
	A(POLICY_MEM_KSM), A(POLICY_MEM_DIRTY_MAX), A(POLICY_NET_TAG),
	A(POLICY_NET_TRUNK), A(POLICY_NET_ISOLATE),
};
static const uint8_t in_policy_name[] = { A(POLICY_NAME) };
static const uint8_t in_bind[] = { A(BIND_TYPE), A(BIND_CGROUP), A(BIND_PID), A(POLICY_NAME) };
static const uint8_t in_bind_del[] = { A(BIND_TYPE), A(BIND_CGROUP), A(BIND_PID) };
static const uint8_t in_net_bind[] = { A(VM_ID), A(NET_IFNAME), A(NET_IFINDEX) };
static const uint8_t in_net_unbind[] = { A(NET_IFNAME), A(NET_IFINDEX) };
static const uint8_t in_net_guard[] = { A(NET_GUARD), A(NET_IFNAME), A(NET_IFINDEX) };
static const uint8_t in_vm_check[] = { A(VM_ID), A(CHECK_RULE), A(CHECK_BYTES) };
#undef A

struct cmdspec {
	bool doit, dump;
	const uint8_t *in;	/* NULL: the command takes nothing */
	int nin;
};

#define IN(a) .in = (a), .nin = sizeof(a)
static const struct cmdspec cmds[KVMGUARD_CMD_MAX + 1] = {
	[KVMGUARD_CMD_VM_GET] = { true, true, IN(in_vm_get) },
	[KVMGUARD_CMD_VM_SET] = { true, false, IN(in_vm_set) },
	[KVMGUARD_CMD_POLICY_NEW] = { true, false, IN(in_policy_edit) },
	[KVMGUARD_CMD_POLICY_SET] = { true, false, IN(in_policy_edit) },
	[KVMGUARD_CMD_POLICY_GET] = { true, true, IN(in_policy_name) },
	[KVMGUARD_CMD_POLICY_DEL] = { true, false, IN(in_policy_name) },
	[KVMGUARD_CMD_BIND_NEW] = { true, false, IN(in_bind) },
	[KVMGUARD_CMD_BIND_DEL] = { true, false, IN(in_bind_del) },
	[KVMGUARD_CMD_BIND_GET] = { false, true },
	[KVMGUARD_CMD_NET_BIND] = { true, false, IN(in_net_bind) },
	[KVMGUARD_CMD_NET_UNBIND] = { true, false, IN(in_net_unbind) },
	[KVMGUARD_CMD_NET_GUARD_SET] = { true, false, IN(in_net_guard) },
	[KVMGUARD_CMD_NET_GUARD_GET] = { false, true },
	[KVMGUARD_CMD_VM_CHECK] = { true, false, IN(in_vm_check) },
};
#undef IN

static bool has_op(int cmd)
{
	return cmd <= KVMGUARD_CMD_MAX && (cmds[cmd].doit || cmds[cmd].dump);
}

static bool has_handler(int cmd, bool dump)
{
	return cmd <= KVMGUARD_CMD_MAX && (dump ? cmds[cmd].dump : cmds[cmd].doit);
}

struct fz {
	uint64_t s;		/* xorshift64 state */
	uint64_t vm_id;		/* 0: no VM */
	uint32_t ifindex;	/* 0: no tap */
	pid_t pid;
	/*
	 * Filled by gen(): what genetlink must answer, 0 if it is up to
	 * kvmguard; no_handler: the family has the command, not as this
	 * doit/dump (EOPNOTSUPP, but EPERM first for an unprivileged caller
	 * where the kernel looks the command up without the kind: 6.1).
	 */
	int must;
	bool no_handler;
	bool dump;
	int cmd;
	/* Mutations applied, for the log. */
	char what[128];
};

static uint64_t rnd64(struct fz *f)
{
	f->s ^= f->s << 13;
	f->s ^= f->s >> 7;
	f->s ^= f->s << 17;
	return f->s;
}

static uint32_t rn(struct fz *f, uint32_t n)
{
	return n ? (uint32_t)(rnd64(f) % n) : 0;
}

static void rbytes(struct fz *f, unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)rnd64(f);
}

#define PICK(f, arr) ((arr)[rn((f), sizeof(arr) / sizeof((arr)[0]))])

static void note(struct fz *f, const char *w)
{
	size_t l = strlen(f->what);

	snprintf(f->what + l, sizeof(f->what) - l, "%s%s", l ? "," : "", w);
}

static size_t room(const struct gnl_msg *m)
{
	return sizeof(m->buf) - m->len;
}

/* A string attribute of exactly @n bytes of @c, NUL terminated. */
static void put_long_str(struct gnl_msg *m, int type, size_t n, char c)
{
	static char buf[8192];

	if (n >= sizeof(buf) || room(m) < n + 16)
		return;
	memset(buf, c, n);
	buf[n] = 0;
	gnl_put(m, type, buf, n + 1);
}

static void put_name(struct fz *f, struct gnl_msg *m, int type)
{
	static const char *const names[] = {
		P "0", P "1", P "2", P "3", P "0", P "1", "", "kgz bad", "kgz/0",
		"-", ".", "kgz-\xff", "KGZ-0",
	};
	char buf[40];

	switch (rn(f, 8)) {
	case 0:		/* 31 bytes: the longest name */
		snprintf(buf, sizeof(buf), P "%027u", rn(f, 4));
		gnl_put_str(m, type, buf);
		return;
	case 1:		/* 32 bytes: one too many */
		snprintf(buf, sizeof(buf), P "%028u", rn(f, 4));
		gnl_put_str(m, type, buf);
		return;
	case 2:		/* no NUL */
		gnl_put(m, type, P "0", 5);
		return;
	}
	gnl_put_str(m, type, PICK(f, names));
}

static void put_cgroup(struct fz *f, struct gnl_msg *m, int type)
{
	static const char *const paths[] = {
		"/", CG, CG "/a", CG "/a/", CG "//a", CG "/./a", CG "/../a", "",
		"relative", CG "/a/b/c/d/e", "//",
	};
	char buf[80];

	switch (rn(f, 8)) {
	case 0:		/* 4095 bytes: the longest path; 4096: too long */
		if (room(m) < 4200)
			break;
		{
			static char p[4100];
			size_t n = 4095 + rn(f, 2);

			memset(p, 'c', n);
			memcpy(p, CG "/", sizeof(CG));
			p[n] = 0;
			gnl_put(m, type, p, n + 1);
		}
		return;
	case 1:
		snprintf(buf, sizeof(buf), CG "/%u", rn(f, 1000));
		gnl_put_str(m, type, buf);
		return;
	}
	gnl_put_str(m, type, PICK(f, paths));
}

/* A value for attribute @type near what the module checks. */
static void put_value(struct fz *f, struct gnl_msg *m, int type)
{
	uint64_t v64[] = {
		f->vm_id, f->vm_id, 0, 1, f->vm_id + 1, ~0ULL, 1ULL << 20, rnd64(f),
		1ULL << 63,
	};
	uint32_t v32[] = {
		(uint32_t)f->pid, 1, 0, PID_MAX, PID_MAX + 1, f->ifindex, ~0u,
		(uint32_t)rnd64(f), 99999,
	};
	uint16_t v16[] = { 0, 1, 100, 4094, 4095, 65535, (uint16_t)rnd64(f) };
	uint8_t v8[] = { 0, 1, 2, 3, 4, 255, (uint8_t)rnd64(f), 0, 1 };
	unsigned char bin[KVMGUARD_NET_TRUNK_BYTES];

	/* Near the end of the buffer: small ones only (a path takes 4 KB). */
	if (room(m) < 4400) {
		if (room(m) >= NLA_HDRLEN + 4)
			gnl_put_u8(m, type, PICK(f, v8));
		return;
	}
	switch (type) {
	case KVMGUARD_A_POLICY_NAME:
	case KVMGUARD_A_POLICY_DOMAIN:
		if (type == KVMGUARD_A_POLICY_DOMAIN && rn(f, 2)) {
			gnl_put_str(m, type, rn(f, 2) ? "" : "dom-1");
			return;
		}
		put_name(f, m, type);
		return;
	case KVMGUARD_A_BIND_CGROUP:
	case KVMGUARD_A_VM_CGROUP:
		put_cgroup(f, m, type);
		return;
	case KVMGUARD_A_NET_IFNAME: {
		static const char *const ifs[] = {
			TAP, TAP, "lo", "kgnfz-none", "aaaaaaaaaaaaaaa", "", "kgnfz0 ",
		};

		if (rn(f, 6) == 0)
			put_long_str(m, type, 16, 'i');	/* IFNAMSIZ: too long */
		else
			gnl_put_str(m, type, PICK(f, ifs));
		return;
	}
	case KVMGUARD_A_BIND_TYPE:
		gnl_put_u8(m, type, rn(f, 6));
		return;
	case KVMGUARD_A_POLICY_MEM_MAX:
	case KVMGUARD_A_POLICY_MEM_DIRTY_MAX: {
		uint64_t mv[] = { KVMGUARD_MEM_UNLIMITED, 0, 1ULL << 20, rnd64(f), 4096 };

		gnl_put_u64(m, type, PICK(f, mv));
		return;
	}
	case KVMGUARD_A_POLICY_NET_TRUNK:
		rbytes(f, bin, sizeof(bin));
		if (rn(f, 3)) {
			bin[0] &= ~1;
			bin[sizeof(bin) - 1] &= 0x7f;
		}
		if (rn(f, 4) == 0)
			memset(bin, 0, sizeof(bin));
		gnl_put(m, type, bin, sizeof(bin));
		return;
	}
	switch (akind[type]) {
	case K_U8:
		gnl_put_u8(m, type, PICK(f, v8));
		return;
	case K_U16:
		gnl_put_u16(m, type, PICK(f, v16));
		return;
	case K_U32:
		gnl_put_u32(m, type, PICK(f, v32));
		return;
	case K_U64:
		gnl_put_u64(m, type, PICK(f, v64));
		return;
	case K_STR:
		put_name(f, m, type);
		return;
	default:
		rbytes(f, bin, 16);
		gnl_put(m, type, bin, rn(f, 17));
		return;
	}
}

/* Nested garbage, @depth levels. */
static void put_nest(struct fz *f, struct gnl_msg *m, int depth)
{
	size_t start = m->len;
	struct nlattr a = { .nla_type = NLA_F_NESTED | rn(f, KVMGUARD_A_MAX + 4) };
	int n = 1 + rn(f, 4);

	if (room(m) < 512)
		return;
	gnl_put_raw(m, &a, sizeof(a));
	for (int i = 0; i < n; i++) {
		if (depth > 0 && rn(f, 2))
			put_nest(f, m, depth - 1);
		else
			put_value(f, m, 1 + rn(f, KVMGUARD_A_MAX));
	}
	((struct nlattr *)(m->buf + start))->nla_len = (uint16_t)(m->len - start);
}

/* An attribute of @type whose length is wrong for its kind. */
static void put_wrong_len(struct fz *f, struct gnl_msg *m, int type)
{
	unsigned char b[64];
	size_t len;

	rbytes(f, b, sizeof(b));
	switch (akind[type <= KVMGUARD_A_MAX ? type : 0]) {
	case K_U8:
		len = PICK(f, ((size_t[]){ 0, 2, 4, 8 }));
		break;
	case K_U16:
		len = PICK(f, ((size_t[]){ 0, 1, 4, 8 }));
		break;
	case K_U32:
		len = PICK(f, ((size_t[]){ 0, 1, 2, 3, 8 }));
		break;
	case K_U64:
		len = PICK(f, ((size_t[]){ 0, 1, 4, 7, 12, 16 }));
		break;
	case K_STR:		/* no NUL at all */
		memset(b, 'k', sizeof(b));
		len = rn(f, sizeof(b));
		break;
	default:
		len = rn(f, sizeof(b));
		break;
	}
	gnl_put(m, type, b, len);
}

/* Rewrite the type of a random top-level attribute of @m. */
static void retype(struct fz *f, struct gnl_msg *m)
{
	size_t off = NLMSG_HDRLEN + GENL_HDRLEN, pick;
	int n = 0;

	for (size_t o = off; o + NLA_HDRLEN <= m->len;
	     o += NLA_ALIGN(((struct nlattr *)(m->buf + o))->nla_len), n++)
		if (((struct nlattr *)(m->buf + o))->nla_len < NLA_HDRLEN)
			return;
	if (!n)
		return;
	pick = rn(f, n);
	for (size_t o = off, i = 0; o + NLA_HDRLEN <= m->len; i++) {
		struct nlattr *a = (struct nlattr *)(m->buf + o);

		if (i == pick) {
			switch (rn(f, 4)) {
			case 0:
				a->nla_type = KVMGUARD_A_MAX + 1 + rn(f, 200);
				break;
			case 1:
				a->nla_type |= PICK(f, ((uint16_t[]){ NLA_F_NESTED,
								NLA_F_NET_BYTEORDER }));
				break;
			default:
				a->nla_type = rn(f, KVMGUARD_A_MAX + 1);
				break;
			}
			return;
		}
		o += NLA_ALIGN(a->nla_len);
	}
}

/*
 * Build a request in @m (family @family): for a command of the family
 * usually the attributes it takes, then mutations. Sets f->must to the
 * errno genetlink itself must answer (0: kvmguard decides).
 */
static void gen(struct fz *f, struct gnl_msg *m, uint16_t family, int cmd,
		bool dump, int mutations)
{
	const struct cmdspec *c = cmd <= KVMGUARD_CMD_MAX ? &cmds[cmd] : NULL;
	uint16_t flags = NLM_F_REQUEST | NLM_F_ACK;
	struct genlmsghdr *gh;
	bool dirty_flags = false;

	f->what[0] = 0;
	f->cmd = cmd;
	f->dump = dump;
	if (dump)
		flags |= NLM_F_DUMP;
	gnl_msg_init(m, family, flags, cmd, KVMGUARD_GENL_VERSION);
	if (c && c->in && !dump) {
		/* The attributes the command takes: each with a chance. */
		for (int i = 0; i < c->nin; i++) {
			int a = c->in[i];

			if (i == 0 || rn(f, 3) == 0)
				put_value(f, m, a);
			if (a == KVMGUARD_A_POLICY_HC_ALLOW && rn(f, 2))
				gnl_put_u8(m, KVMGUARD_A_POLICY_HC_RESTRICT, 1);
		}
	} else if (!c || !has_op(cmd) || rn(f, 4) == 0) {
		/* Anything from the flat space. */
		int n = rn(f, 5);

		for (int i = 0; i < n; i++)
			put_value(f, m, 1 + rn(f, KVMGUARD_A_MAX));
	}

	for (int i = 0; i < mutations; i++) {
		switch (rn(f, 16)) {
		case 0:
			note(f, "retype");
			retype(f, m);
			break;
		case 1:
			note(f, "wrong-len");
			put_wrong_len(f, m, rn(f, KVMGUARD_A_MAX + 3));
			break;
		case 2:
			note(f, "nest");
			put_nest(f, m, 1 + rn(f, 4));
			break;
		case 3: {
			/* A type past KVMGUARD_A_MAX (flag bits clear). */
			unsigned char b[8];

			note(f, "unknown-type");
			rbytes(f, b, sizeof(b));
			gnl_put(m, KVMGUARD_A_MAX + 1 + rn(f, NLA_TYPE_MASK - KVMGUARD_A_MAX),
				b, rn(f, 9));
			break;
		}
		case 4: {
			/* One huge attribute. */
			size_t len = 1 + rn(f, 60000);
			static unsigned char big[60000];

			note(f, "huge");
			if (room(m) < len + 16)
				break;
			rbytes(f, big, len < 64 ? len : 64);
			gnl_put(m, rn(f, KVMGUARD_A_MAX + 3), big, len);
			break;
		}
		case 5: {
			/* Many small ones. */
			int n = 100 + rn(f, 900);

			note(f, "many");
			for (int k = 0; k < n && room(m) > 64; k++)
				put_value(f, m, 1 + rn(f, KVMGUARD_A_MAX));
			break;
		}
		case 6:
			/* A duplicate of the command's first attribute. */
			note(f, "dup");
			if (c && c->in)
				put_value(f, m, c->in[0]);
			break;
		case 7: {
			/* A corrupted attribute header. */
			size_t off = NLMSG_HDRLEN + GENL_HDRLEN;

			note(f, "bad-nla");
			if (m->len >= off + NLA_HDRLEN) {
				struct nlattr *a = (struct nlattr *)(m->buf + off);

				a->nla_len = PICK(f, ((uint16_t[]){ 0, 1, 3, 5, 0xffff,
								(uint16_t)(m->len - off + 4),
								(uint16_t)rnd64(f) }));
			}
			break;
		}
		case 8: {
			/* Cut the message anywhere after the netlink header. */
			size_t cut = NLMSG_HDRLEN + rn(f, m->len - NLMSG_HDRLEN + 1);

			note(f, "cut");
			m->len = cut;
			/* A length past the datagram would be dropped unanswered. */
			if (m->keep_len && gnl_hdr(m)->nlmsg_len > cut)
				gnl_hdr(m)->nlmsg_len = (uint32_t)cut;
			break;
		}
		case 9: {
			/* nlmsg_len stops short of the datagram: the rest is junk. */
			size_t keep = NLMSG_HDRLEN + rn(f, m->len - NLMSG_HDRLEN + 1);

			note(f, "short-nlmsg_len");
			gnl_hdr(m)->nlmsg_len = (uint32_t)keep;
			m->keep_len = true;
			break;
		}
		case 10:
			/* NLM_F_DUMP on a doit, none on a dump. */
			note(f, "flip-dump");
			gnl_hdr(m)->nlmsg_flags ^= NLM_F_DUMP;
			f->dump = !f->dump;
			break;
		case 11:
			/* Flags genetlink does not take for new commands. */
			note(f, "stray-flags");
			gnl_hdr(m)->nlmsg_flags |= PICK(f, ((uint16_t[]){ NLM_F_ROOT,
						NLM_F_MATCH, NLM_F_ATOMIC, NLM_F_EXCL,
						NLM_F_CREATE, NLM_F_MULTI, 0x1000, 0x8000 }));
			break;
		case 12:
			note(f, "reserved");
			gh = (struct genlmsghdr *)(m->buf + NLMSG_HDRLEN);
			gh->reserved = 1 + rn(f, 0xfffe);
			break;
		case 13:
			note(f, "version");
			gh = (struct genlmsghdr *)(m->buf + NLMSG_HDRLEN);
			gh->version = (uint8_t)rnd64(f);
			break;
		case 14:
			note(f, "echo");
			gnl_hdr(m)->nlmsg_flags |= NLM_F_ECHO;
			break;
		default:
			/* A random attribute of the flat space, valid or not. */
			note(f, "extra");
			if (rn(f, 2))
				put_value(f, m, 1 + rn(f, KVMGUARD_A_MAX));
			else
				put_wrong_len(f, m, 1 + rn(f, KVMGUARD_A_MAX));
			break;
		}
	}

	/*
	 * Under a short nlmsg_len the kernel reads what follows as more
	 * messages: the next one's length overruns the datagram, so that
	 * the junk reaches no other family.
	 */
	if (m->keep_len) {
		size_t next = NLMSG_ALIGN(gnl_hdr(m)->nlmsg_len);

		if (next + 4 <= m->len)
			memset(m->buf + next, 0xff, 4);
		else if (next < m->len)
			m->len = next;
	}

	/* What genetlink answers before the family sees the message. */
	{
		struct nlmsghdr *nlh = gnl_hdr(m);
		uint32_t nlen = m->keep_len ? nlh->nlmsg_len : (uint32_t)m->len;
		uint16_t fl = nlh->nlmsg_flags;

		/* After a cut, attributes may stand where the genl header was. */
		gh = (struct genlmsghdr *)(m->buf + NLMSG_HDRLEN);
		cmd = gh->cmd;
		f->cmd = cmd;
		if ((fl & NLM_F_DUMP) == NLM_F_DUMP)
			fl &= ~NLM_F_DUMP;
		dirty_flags = fl & ~(NLM_F_REQUEST | NLM_F_ACK | NLM_F_ECHO);
		f->dump = (nlh->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
		if (nlen < NLMSG_HDRLEN + GENL_HDRLEN)
			f->must = -EINVAL;
		else if (cmd >= 1 && (gh->reserved || dirty_flags))
			f->must = -EINVAL;
		else if (!has_op(cmd) || !has_handler(cmd, f->dump))
			f->must = -EOPNOTSUPP;
		else
			f->must = 0;
		f->no_handler = f->must == -EOPNOTSUPP && has_op(cmd);
	}
}

/* Errors kvmguard may answer a root's request with. */
static bool root_errno_ok(int r)
{
	switch (-r) {
	case 0:
	case EINVAL:		/* malformed, refused by a policy or a check */
	case ERANGE:		/* out of a range policy */
	case ENOENT:		/* no such VM, policy, binding */
	case EEXIST:		/* policy exists */
	case EBUSY:		/* bound policy, KSM, device bound elsewhere */
	case ESRCH:		/* pid binding of no process */
	case ENOSPC:		/* binding limit */
	case ENODEV:		/* no such device */
	case EOPNOTSUPP:	/* no handler; not a tap */
		return true;
	}
	return false;
}

struct tally {
	long sent, ok, refused, unanswered, wrong;
	long by_errno[140];
};

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int recv_timeout_ms(void)
{
	/* The debug kernel (KASAN, lockdep) under TCG is many times slower. */
	return access("/sys/kernel/debug/kmemleak", F_OK) ? 10000 : 30000;
}

/*
 * Send @m and check the answer against f->must and, if @unpriv, against
 * what a caller without CAP_NET_ADMIN may get. Returns false on a wrong
 * answer (logged with the message).
 */
static bool check_one(struct gnl *g, struct gnl_msg *m, struct fz *f, bool unpriv,
		      struct tally *t, long n)
{
	int r = gnl_transact(g, m, NULL, NULL);
	const char *bad = NULL;

	t->sent++;
	if (r == -ETIMEDOUT) {
		t->unanswered++;
		bad = "no answer";
	} else if (r > 0 || r < -4095) {
		bad = "not an errno";
	} else if (f->must && r != f->must &&
		   !(unpriv && f->no_handler && r == -EPERM)) {
		bad = "not what genetlink answers";
	} else if (unpriv) {
		if (!r)
			bad = "success without CAP_NET_ADMIN";
		else if (!f->must && r != -EPERM)
			bad = "not EPERM without CAP_NET_ADMIN";
		else if (r != -EPERM && r != -EOPNOTSUPP && r != -EINVAL)
			bad = "unexpected errno without CAP_NET_ADMIN";
	} else if (!root_errno_ok(r)) {
		bad = "unexpected errno";
	}
	if (r == 0)
		t->ok++;
	else
		t->refused++;
	if (r <= 0 && -r < (int)(sizeof(t->by_errno) / sizeof(t->by_errno[0])))
		t->by_errno[-r]++;
	if (!bad)
		return true;
	t->wrong++;
	if (t->wrong <= 8) {
		printf("# message %ld: cmd %d %s [%s]: %d (%s), expected %d: %s; extack '%s'\n",
		       n, f->cmd, f->dump ? "dump" : "doit", f->what, r,
		       r < 0 ? strerror(-r) : "ok", f->must, bad, g->ext_msg);
		gnl_hexdump(m->buf, m->len < 256 ? m->len : 256);
	}
	return false;
}

static void print_tally(const char *what, const struct tally *t)
{
	char line[512];
	size_t l = 0;

	for (size_t e = 0; e < sizeof(t->by_errno) / sizeof(t->by_errno[0]); e++)
		if (t->by_errno[e])
			l += snprintf(line + l, sizeof(line) - l, " %s:%ld",
				      e ? strerrorname_np(e) ?: "?" : "ok", t->by_errno[e]);
	line[l] = 0;
	printf("# %s: %ld sent, %ld ok, %ld refused, %ld unanswered, %ld wrong;%s\n",
	       what, t->sent, t->ok, t->refused, t->unanswered, t->wrong, line);
}

static long env_long(const char *name, long def)
{
	const char *v = getenv(name);

	return v && *v ? strtol(v, NULL, 0) : def;
}

static uint64_t the_seed;

/* One seed for the run, printed before the tests (each runs in a child). */
static void __attribute__((constructor)) pick_seed(void)
{
	const char *v = getenv("KVMGUARD_FUZZ_SEED");

	if (v && *v)
		the_seed = strtoull(v, NULL, 0);
	else
		the_seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
	if (!the_seed)
		the_seed = 1;
	printf("# nl_fuzz: seed 0x%llx (replay: KVMGUARD_FUZZ_SEED=0x%llx)\n",
	       (unsigned long long)the_seed, (unsigned long long)the_seed);
	fflush(stdout);
}

/* Names of policies and bindings, to delete whatever the fuzz added. */
struct snap {
	struct kg_policy *p;
	int np;
	struct kg_bind *b;
	int nb;
};

static bool had_policy(const struct snap *s, const char *name)
{
	for (int i = 0; i < s->np; i++)
		if (!strcmp(s->p[i].name, name))
			return true;
	return false;
}

static bool had_bind(const struct snap *s, const struct kg_bind *b)
{
	for (int i = 0; i < s->nb; i++)
		if (s->b[i].type == b->type && s->b[i].pid == b->pid &&
		    !strcmp(s->b[i].cgroup, b->cgroup) && !strcmp(s->b[i].policy, b->policy))
			return true;
	return false;
}

/* Delete every binding and policy not in @before; how many are left over. */
static int restore(struct gnl *g, const struct snap *before)
{
	struct kg_policy *p = NULL;
	struct kg_bind *b = NULL;
	int np = 0, nb = 0, left = 0;

	for (int pass = 0; pass < 2; pass++) {
		left = 0;
		if (kg_bind_dump(g, &b, &nb) == 0)
			for (int i = 0; i < nb; i++)
				if (!had_bind(before, &b[i]) &&
				    kg_bind_del(g, b[i].type, b[i].cgroup, b[i].pid))
					left++;
		free(b);
		b = NULL;
		if (kg_policy_dump(g, &p, &np) == 0)
			for (int i = 0; i < np; i++)
				if (!had_policy(before, p[i].name) &&
				    kg_policy_del(g, p[i].name))
					left++;
		free(p);
		p = NULL;
	}
	return left;
}

FIXTURE(fz) {
	struct gnl g;
	struct gnl_msg m;
	struct snap before;
	struct hcg_klog klog;
	struct vm vm;
	int tap;
	struct fz f;
	double budget;		/* seconds for the random cases together */
};

FIXTURE_SETUP(fz)
{
	struct kg_vm v;
	uint64_t max;

	self->vm.fd = -1;
	self->tap = -1;
	ASSERT_EQ(0, hcg_klog_open(&self->klog));
	ASSERT_EQ(0, kg_open(&self->g));
	self->g.timeout_ms = recv_timeout_ms();
	ASSERT_EQ(0, kg_policy_dump(&self->g, &self->before.p, &self->before.np));
	ASSERT_EQ(0, kg_bind_dump(&self->g, &self->before.b, &self->before.nb));
	self->f.s = the_seed;
	self->f.pid = getpid();
	self->budget = env_long("KVMGUARD_FUZZ_SECONDS", 20);
	/* Targets that exist: a VM, a tap, policies, a cgroup. */
	if (kvm_available() == 0) {
		max = kg_max_vm_id(&self->g);
		ASSERT_EQ(0, vm_create(&self->vm));
		ASSERT_EQ(0, vm_add_slot(&self->vm, 0, 0, 0x10000));
		ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
		self->f.vm_id = v.id;
	}
	self->tap = vhd_tap_open(TAP, 0);
	if (self->tap >= 0)
		self->f.ifindex = if_nametoindex(TAP);
	for (int i = 0; i < 4; i++) {
		char name[16];

		snprintf(name, sizeof(name), P "%d", i);
		if (!had_policy(&self->before, name))
			ASSERT_EQ(0, kg_policy_new(&self->g, name, -1, NULL));
	}
	kg_cg_mkdir(CG "/a");
	printf("# VM %llu, tap %s ifindex %u, %.0f s of random messages\n",
	       (unsigned long long)self->f.vm_id, TAP, self->f.ifindex, self->budget);
}

FIXTURE_TEARDOWN(fz)
{
	int left, bad;

	if (self->vm.fd >= 0)
		vm_destroy(&self->vm);
	if (self->tap >= 0)
		close(self->tap);
	/* A fresh socket: the module may have been tested to death. */
	gnl_close(&self->g);
	EXPECT_EQ(0, kg_open(&self->g));
	if (self->g.fd >= 0) {
		left = restore(&self->g, &self->before);
		EXPECT_EQ(0, left) TH_LOG("%d policies/bindings could not be deleted", left);
		gnl_close(&self->g);
	}
	kg_cg_rmdir(CG "/a");
	kg_cg_rmdir(CG);
	free(self->before.p);
	free(self->before.b);
	bad = hcg_klog_problems(&self->klog);
	EXPECT_EQ(0, bad) TH_LOG("the kernel log shows %d problem lines", bad);
	hcg_klog_close(&self->klog);
}

/* A well-formed request still works. */
static int still_works(struct gnl *g)
{
	struct kg_policy p;
	int r;

	r = kg_policy_new(g, P "after", KVMGUARD_MODE_AUDIT, "d");
	if (r)
		return r;
	r = kg_policy_get(g, P "after", &p);
	if (!r && (p.mode != KVMGUARD_MODE_AUDIT || strcmp(p.domain, "d")))
		r = -EBADMSG;
	if (!r)
		r = kg_policy_del(g, P "after");
	return r;
}

TEST_F_TIMEOUT(fz, every_command, 900)
{
	struct tally t = { 0 };
	long n = 0;

	for (int cmd = 0; cmd < 256; cmd++) {
		for (int dump = 0; dump < 2; dump++) {
			/* The family's commands well formed and 5 times mutated. */
			int variants = has_op(cmd) ? 6 : 2;

			for (int k = 0; k < variants; k++) {
				gen(&self->f, &self->m, self->g.family, cmd, dump, k ? 1 + k : 0);
				check_one(&self->g, &self->m, &self->f, false, &t, n++);
			}
		}
	}
	print_tally("every command", &t);
	EXPECT_EQ(0, t.unanswered);
	EXPECT_EQ(0, t.wrong);
	EXPECT_EQ(0, still_works(&self->g));
}

/* Random messages for @secs; most to the family's commands. */
static void run_random(struct gnl *g, struct gnl_msg *m, struct fz *f, bool unpriv,
		       double secs, struct tally *t)
{
	double end = now_s() + secs;
	long n = 0;

	while (now_s() < end) {
		int cmd = rn(f, 4) ? 1 + rn(f, KVMGUARD_CMD_MAX + 1) : rn(f, 256);
		bool dump = rn(f, 3) == 0;

		gen(f, m, g->family, cmd, dump, rn(f, 3) ? rn(f, 4) : 0);
		check_one(g, m, f, unpriv, t, n++);
		/* Every 500th message from a fresh socket: a dump left mid-way. */
		if (n % 500 == 0 && !unpriv) {
			gnl_close(g);
			if (kg_open(g))
				break;
			g->timeout_ms = recv_timeout_ms();
		}
	}
}

TEST_F_TIMEOUT(fz, random_root, 900)
{
	struct tally t = { 0 };

	self->f.s ^= 0x726f6f74;	/* "root" */
	run_random(&self->g, &self->m, &self->f, false, self->budget * 2 / 3, &t);
	print_tally("random as root", &t);
	EXPECT_LT(0, t.sent);
	EXPECT_EQ(0, t.unanswered);
	EXPECT_EQ(0, t.wrong);
	EXPECT_LT(0, t.ok) TH_LOG("nothing was accepted: the messages are too broken");
	EXPECT_EQ(0, still_works(&self->g));
}

static bool same_config(const struct snap *a, const struct snap *b)
{
	if (a->np != b->np || a->nb != b->nb)
		return false;
	for (int i = 0; i < b->np; i++)
		if (!had_policy(a, b->p[i].name))
			return false;
	for (int i = 0; i < b->nb; i++)
		if (!had_bind(a, &b->b[i]))
			return false;
	return true;
}

TEST_F_TIMEOUT(fz, random_unprivileged, 900)
{
	struct snap pre = { 0 }, post = { 0 };
	int status;
	pid_t pid;

	self->f.s ^= 0x6e6f626f6479;	/* "nobody" */
	ASSERT_EQ(0, kg_policy_dump(&self->g, &pre.p, &pre.np));
	ASSERT_EQ(0, kg_bind_dump(&self->g, &pre.b, &pre.nb));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct tally t = { 0 };
		struct gnl g;

		if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY)) {
			printf("# cannot become uid %d: %s\n", NOBODY, strerror(errno));
			_exit(2);
		}
		if (kg_open(&g)) {
			printf("# uid %d cannot resolve the family\n", NOBODY);
			_exit(2);
		}
		g.timeout_ms = recv_timeout_ms();
		run_random(&g, &self->m, &self->f, true, self->budget / 3, &t);
		print_tally("random as uid 65534", &t);
		gnl_close(&g);
		_exit(t.sent && !t.wrong && !t.unanswered ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("child status 0x%x", status);
	/* Nothing it asked for happened. */
	ASSERT_EQ(0, kg_policy_dump(&self->g, &post.p, &post.np));
	ASSERT_EQ(0, kg_bind_dump(&self->g, &post.b, &post.nb));
	EXPECT_TRUE(same_config(&pre, &post))
		TH_LOG("policies %d -> %d, bindings %d -> %d", pre.np, post.np, pre.nb, post.nb);
	free(pre.p);
	free(pre.b);
	free(post.p);
	free(post.b);
	EXPECT_EQ(0, still_works(&self->g));
}

KG_HARNESS_MAIN(KG_NEED_MODULE)
