// SPDX-License-Identifier: GPL-2.0
/*
 * net_guard: guarded segments (NET_GUARD_SET / NET_GUARD_GET), on the flat
 * bridge of net_tags with two taps, A and B, that no VM has bound.
 *
 *  - unbound: an unbound tap on a bridge sees the segment's frames (the
 *    uplink's broadcast) and its frames reach the uplink; with the guard
 *    on, neither: each frame is dropped, counted (NET_GUARD_DROPPED) and
 *    reported (EVENT_NET_GUARD). Bound to a VM, A gets its VM's rules (tag
 *    100 on the uplink); unbound again, it is guarded again; guard off, it
 *    passes frames again.
 *  - joins_later: a tap enslaved after the guard was set is guarded too;
 *    taken off the bridge it is not.
 *  - bridge_gone: deleting a guarded bridge ends its guard, with an
 *    EVENT_NET_GUARD_END.
 *  - requests: ENODEV for no such device, EOPNOTSUPP for a device that is
 *    not a bridge, each with an extended-ack message; a missing NET_GUARD
 *    is EINVAL; guarding twice or unguarding an unguarded bridge changes
 *    nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "hcg.h"
#include "kg.h"
#include "netg.h"

#define POS_MS	2000
#define NEG_MS	700
#define A	0
#define B	1

/* One guarded bridge of NET_GUARD_GET. */
struct guard_info {
	uint32_t ifindex;
	char ifname[IFNAMSIZ];
	uint8_t guard;
	uint32_t ports;
	uint64_t dropped;
};

struct guard_dump {
	const char *want;
	struct guard_info info;
	int found;
};

static int guard_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct guard_dump *d = arg;
	const struct nlattr *tb[KVMGUARD_A_MAX + 1];
	struct guard_info gi = { 0 };
	const char *name;

	if (gnl_parse(nlh, tb, KVMGUARD_A_MAX, NULL) || !tb[KVMGUARD_A_NET_IFNAME])
		return 0;
	name = gnl_get_str(tb[KVMGUARD_A_NET_IFNAME]);
	if (!name || strcmp(name, d->want))
		return 0;
	snprintf(gi.ifname, sizeof(gi.ifname), "%s", name);
	if (tb[KVMGUARD_A_NET_IFINDEX])
		gi.ifindex = gnl_get_u32(tb[KVMGUARD_A_NET_IFINDEX]);
	if (tb[KVMGUARD_A_NET_GUARD])
		gi.guard = gnl_get_u8(tb[KVMGUARD_A_NET_GUARD]);
	if (tb[KVMGUARD_A_NET_GUARD_PORTS])
		gi.ports = gnl_get_u32(tb[KVMGUARD_A_NET_GUARD_PORTS]);
	if (tb[KVMGUARD_A_NET_GUARD_DROPPED])
		gi.dropped = gnl_get_u64(tb[KVMGUARD_A_NET_GUARD_DROPPED]);
	d->info = gi;
	d->found++;
	return 0;
}

/* The guard of bridge @name: 1 if guarded (in @gi), 0 if not, -errno. */
static int guard_get(struct gnl *g, const char *name, struct guard_info *gi)
{
	static struct gnl_msg m;
	struct guard_dump d = { .want = name };
	int err;

	kg_req(g, &m, KVMGUARD_CMD_NET_GUARD_GET, true);
	err = gnl_transact(g, &m, guard_cb, &d);
	if (err)
		return err;
	if (gi)
		*gi = d.info;
	return d.found;
}

/* NET_GUARD_SET of @name (or @ifindex), @on < 0: no NET_GUARD sent. */
static int guard_set(struct gnl *g, const char *name, uint32_t ifindex, int on)
{
	static struct gnl_msg m;

	kg_req(g, &m, KVMGUARD_CMD_NET_GUARD_SET, false);
	if (name)
		gnl_put_str(&m, KVMGUARD_A_NET_IFNAME, name);
	else
		gnl_put_u32(&m, KVMGUARD_A_NET_IFINDEX, ifindex);
	if (on >= 0)
		gnl_put_u8(&m, KVMGUARD_A_NET_GUARD, on);
	return gnl_transact(g, &m, NULL, NULL);
}

/* A NET_GUARD or NET_GUARD_END event. */
struct guard_event {
	uint8_t type;
	char ifname[IFNAMSIZ];
	char bridge[IFNAMSIZ];
	uint8_t dir;
	uint64_t count;
	bool has_vm;
};

static bool take_guard_event(const struct nlmsghdr *nlh,
			     const struct nlattr **tb, void *ctx)
{
	struct kg_event_sink *sink = ctx;
	struct guard_event e = { 0 };
	const char *s;

	(void)nlh;
	if (!tb[KVMGUARD_A_EVENT_TYPE] || sink->n >= sink->max)
		return false;
	e.type = gnl_get_u8(tb[KVMGUARD_A_EVENT_TYPE]);
	if (e.type != KVMGUARD_EVENT_NET_GUARD && e.type != KVMGUARD_EVENT_NET_GUARD_END)
		return false;
	e.dir = 0xff;
	if (tb[KVMGUARD_A_NET_IFNAME] && (s = gnl_get_str(tb[KVMGUARD_A_NET_IFNAME])))
		snprintf(e.ifname, sizeof(e.ifname), "%s", s);
	if (tb[KVMGUARD_A_NET_BRIDGE] && (s = gnl_get_str(tb[KVMGUARD_A_NET_BRIDGE])))
		snprintf(e.bridge, sizeof(e.bridge), "%s", s);
	if (tb[KVMGUARD_A_EVENT_NET_DIR])
		e.dir = gnl_get_u8(tb[KVMGUARD_A_EVENT_NET_DIR]);
	if (tb[KVMGUARD_A_EVENT_COUNT])
		e.count = gnl_get_u64(tb[KVMGUARD_A_EVENT_COUNT]);
	e.has_vm = tb[KVMGUARD_A_VM_ID];
	((struct guard_event *)sink->ev)[sink->n++] = e;
	return true;
}

static int guard_events(struct gnl *sub, int want, int ms, struct guard_event *ev, int max)
{
	struct kg_event_sink sink = { .ev = ev, .max = max };

	return kg_collect_events(sub, ms, want, take_guard_event, &sink);
}

FIXTURE(guard) {
	struct netg_lab l;
	struct netg_pkt pk[16];
	uint32_t seq;
};

FIXTURE_SETUP(guard)
{
	ASSERT_EQ(0, netg_lab_up(&self->l, 0, 2, NULL));
	ASSERT_EQ(0, netg_policy_new(&self->l.g, NETG_POLICY "100", .tag = 100));
}

FIXTURE_TEARDOWN(guard)
{
	/* The bridge goes with the topology; its guard with it. */
	NETG_LAB_DOWN(&self->l);
}

#define L (&self->l)
#define G (&self->l.g)
#define PORT(i) (&self->l.t.port[i])
#define UP(k) (self->l.t.up[NETG_UP_##k])

/* Does the uplink's broadcast reach port @i? */
static bool port_sees(struct __test_metadata *_metadata, FIXTURE_DATA(guard) *self, int i,
		      bool expect)
{
	uint8_t src[6] = { 0x02, 0x6b, 0x67, 0x00, 0x00, 0x99 };
	int got;

	netg_flush(PORT(i)->fd);
	EXPECT_EQ(0, netg_psend_test(UP(ALL), netg_bcast, src, NULL, 0, self->seq++));
	got = netg_collect(PORT(i)->fd, 1, expect ? POS_MS : NEG_MS, self->pk, 16);
	return got > 0;
}

/* Does a frame port @i sends reach the uplink? Its VID in *@vid (0: none). */
static bool uplink_gets(struct __test_metadata *_metadata, FIXTURE_DATA(guard) *self, int i,
			bool expect, int *vid)
{
	int got;

	netg_flush(UP(ALL));
	EXPECT_EQ(0, netg_send_test(PORT(i), netg_bcast, i, NULL, 0, self->seq++));
	got = netg_collect(UP(ALL), 1, expect ? POS_MS : NEG_MS, self->pk, 16);
	if (got > 0 && vid)
		*vid = self->pk[0].ntags ? self->pk[0].tags[0].tci & 0xfff : 0;
	return got > 0;
}

TEST_F_TIMEOUT(guard, unbound, 120)
{
	struct guard_event ev[8];
	struct guard_info gi;
	uint64_t id;
	struct vm vm;
	int vid = -1, n;

	/* Guard on: the unbound taps A and B see nothing and send nothing. */
	EXPECT_EQ(0, guard_set(G, NETG_BR, 0, 1)) TH_LOG("%s", G->ext_msg);
	EXPECT_FALSE(port_sees(_metadata, self, A, false))
		TH_LOG("unbound tap %s saw the segment's broadcast", PORT(A)->name);
	EXPECT_FALSE(uplink_gets(_metadata, self, A, false, NULL))
		TH_LOG("a frame unbound tap %s sent reached the uplink", PORT(A)->name);
	EXPECT_FALSE(port_sees(_metadata, self, B, false));
	ASSERT_EQ(1, guard_get(G, NETG_BR, &gi));
	EXPECT_EQ(1, gi.guard);
	EXPECT_EQ(2U, gi.ports);
	/* A both ways, B toward it (the uplink's first broadcast reached B too). */
	EXPECT_EQ(5U, gi.dropped);
	n = guard_events(&L->sub, 2, POS_MS, ev, 8);
	ASSERT_LE(1, n);
	EXPECT_EQ(KVMGUARD_EVENT_NET_GUARD, ev[0].type);
	EXPECT_STREQ(NETG_BR, ev[0].bridge);
	EXPECT_FALSE(ev[0].has_vm);
	EXPECT_LE(1U, ev[0].count);

	/* Bound to a VM: its rules, not the guard. */
	ASSERT_EQ(0, netg_vm(G, &vm, NETG_POLICY "100", &id));
	ASSERT_EQ(0, netg_bind(G, id, PORT(A)->name, 0));
	EXPECT_TRUE(uplink_gets(_metadata, self, A, true, &vid));
	EXPECT_EQ(100, vid);
	ASSERT_EQ(1, guard_get(G, NETG_BR, &gi));
	EXPECT_EQ(1U, gi.ports);

	/* Unbound again: guarded again. */
	ASSERT_EQ(0, netg_unbind(G, PORT(A)->name, 0));
	EXPECT_FALSE(uplink_gets(_metadata, self, A, false, NULL));
	EXPECT_FALSE(port_sees(_metadata, self, A, false));
	ASSERT_EQ(1, guard_get(G, NETG_BR, &gi));
	EXPECT_EQ(2U, gi.ports);

	/* The VM gone (its port was unbound already): still guarded. */
	vm_destroy(&vm);
	EXPECT_FALSE(uplink_gets(_metadata, self, A, false, NULL));

	/* Guard off: frames flow again, untagged. */
	EXPECT_EQ(0, guard_set(G, NETG_BR, 0, 0));
	EXPECT_EQ(0, guard_get(G, NETG_BR, NULL));
	EXPECT_TRUE(port_sees(_metadata, self, A, true));
	EXPECT_TRUE(uplink_gets(_metadata, self, A, true, &vid));
	EXPECT_EQ(0, vid);
}

TEST_F_TIMEOUT(guard, joins_later, 120)
{
	struct guard_info gi;

	ASSERT_EQ(0, netg_ip("link set kgna nomaster\n"));
	EXPECT_EQ(0, guard_set(G, NETG_BR, 0, 1));
	ASSERT_EQ(1, guard_get(G, NETG_BR, &gi));
	EXPECT_EQ(1U, gi.ports);
	ASSERT_EQ(0, netg_ip("link set kgna master " NETG_BR "\nlink set kgna up\n"));
	ASSERT_EQ(1, guard_get(G, NETG_BR, &gi));
	EXPECT_EQ(2U, gi.ports);
	EXPECT_FALSE(port_sees(_metadata, self, A, false));
	EXPECT_FALSE(uplink_gets(_metadata, self, A, false, NULL));

	/* Off the bridge, A is nobody's port of a guarded segment. */
	ASSERT_EQ(0, netg_ip("link set kgna nomaster\n"));
	ASSERT_EQ(1, guard_get(G, NETG_BR, &gi));
	EXPECT_EQ(1U, gi.ports);
	EXPECT_EQ(0, guard_set(G, NETG_BR, 0, 0));
}

TEST_F_TIMEOUT(guard, bridge_gone, 120)
{
	struct guard_event ev[8];
	int n, ends = 0;

	ASSERT_EQ(0, netg_ip("link add kgnbr2 type bridge\n"));
	EXPECT_EQ(0, guard_set(G, "kgnbr2", 0, 1));
	EXPECT_EQ(1, guard_get(G, "kgnbr2", NULL));
	ASSERT_EQ(0, netg_ip("link del kgnbr2\n"));
	EXPECT_EQ(0, guard_get(G, "kgnbr2", NULL));
	n = guard_events(&L->sub, 1, POS_MS, ev, 8);
	for (int i = 0; i < n; i++)
		if (ev[i].type == KVMGUARD_EVENT_NET_GUARD_END &&
		    !strcmp(ev[i].ifname, "kgnbr2"))
			ends++;
	EXPECT_EQ(1, ends);
	/* A new bridge of that name is not guarded. */
	ASSERT_EQ(0, netg_ip("link add kgnbr2 type bridge\n"));
	EXPECT_EQ(0, guard_get(G, "kgnbr2", NULL));
	ASSERT_EQ(0, netg_ip("link del kgnbr2\n"));
}

TEST_F_TIMEOUT(guard, requests, 60)
{
	int idx;

	EXPECT_EQ(-ENODEV, guard_set(G, "kgnnone", 0, 1));
	EXPECT_NE(0, G->ext_msg[0]);
	EXPECT_EQ(-ENODEV, guard_set(G, NULL, 0x7ffffff0, 1));
	EXPECT_EQ(-EOPNOTSUPP, guard_set(G, NETG_UP, 0, 1));
	EXPECT_NE(0, G->ext_msg[0]);
	EXPECT_EQ(-EOPNOTSUPP, guard_set(G, PORT(A)->name, 0, 1));
	EXPECT_EQ(-EOPNOTSUPP, guard_set(G, "lo", 0, 1));
	EXPECT_EQ(-EINVAL, guard_set(G, NETG_BR, 0, -1));
	EXPECT_EQ(-ERANGE, guard_set(G, NETG_BR, 0, 2));
	EXPECT_EQ(0, guard_get(G, NETG_BR, NULL));

	/* By index, twice; off twice. */
	idx = netg_ifindex(NETG_BR);
	ASSERT_LT(0, idx);
	EXPECT_EQ(0, guard_set(G, NULL, idx, 1));
	EXPECT_EQ(0, guard_set(G, NETG_BR, 0, 1));
	EXPECT_EQ(1, guard_get(G, NETG_BR, NULL));
	EXPECT_EQ(0, guard_set(G, NETG_BR, 0, 0));
	EXPECT_EQ(0, guard_set(G, NETG_BR, 0, 0));
	EXPECT_EQ(0, guard_get(G, NETG_BR, NULL));
}

NETG_HARNESS_MAIN
