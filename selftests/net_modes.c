// SPDX-License-Identifier: GPL-2.0
/*
 * net_modes: trunks, isolation, audit mode and live policy edits, on the
 * flat bridge of net_tags with a fourth port (D). B has tag 100, C tag 200;
 * A's and D's rules change per case.
 *
 *  - trunk: A with trunk {100, 300} and no tag: single 802.1Q frames of the
 *    trunk pass as they are, both ways (popped at B for VLAN 100);
 *    untagged frames from A are outside its segment (SEGMENT); another
 *    VID, 802.1ad, double and VLAN 0 tags break the TAG rule; toward A, a
 *    frame of another VID or untagged is dropped (SEGMENT).
 *  - trunk_native: A with tag 200 and trunk {100, 300}: untagged frames
 *    are VLAN 200 both ways, VLAN 100 passes tagged, an 802.1Q 200 tag from
 *    the guest breaks the TAG rule (the native VID is untagged only).
 *  - isolate: A and B isolated on VLAN 100 cannot talk (ISOLATE, counted
 *    and reported at the receiver), each reaches the uplink and D, which is
 *    on VLAN 100 without isolation and reaches both.
 *  - audit: every violation passes, is counted and (from the guest) reported as AUDITED;
 *    untagged frames are still tagged and popped.
 *  - live_edit: A's tag changed from 100 to 200 while bound moves it to
 *    VLAN 200 at once (it now talks with C, not B); tag none (no rule left)
 *    sends it untagged.
 *  - events: NET events are limited to one a second per VM and rule; the
 *    held-back violations are counted in the next event, and the counts
 *    add up to the counter. Frames of another segment toward the guest are
 *    counted but not reported.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "hcg.h"
#include "kg.h"
#include "memg.h"
#include "netg.h"

#define POS_MS	3000
#define NEG_MS	150
#define A	0
#define B	1
#define C	2
#define D	3

FIXTURE(modes) {
	struct netg_lab l;
	struct netg_pkt pk[64];
	uint8_t up_mac[6];
	uint32_t seq;
};

FIXTURE_SETUP(modes)
{
	ASSERT_EQ(0, netg_lab_up(&self->l, 0, 4, NULL));
	netg_mac(9, self->up_mac);
}

FIXTURE_TEARDOWN(modes)
{
	NETG_LAB_DOWN(&self->l);
}

#define L (&self->l)
#define PORT(i) (&self->l.t.port[i])
#define PFD(i) (self->l.t.port[i].fd)
#define UP(k) (self->l.t.up[NETG_UP_##k])
#define GOT(fd, want) netg_collect(fd, want, (want) ? POS_MS : 0, self->pk, 64)
#define POLICY(name, ...) \
	ASSERT_EQ(0, netg_policy_new(&L->g, NETG_POLICY name, __VA_ARGS__))
#define VM(i, name) ASSERT_EQ(0, netg_lab_vm(L, i, NETG_POLICY name))

/* A broadcast from port @i, untagged or with one tag. */
#define SEND(i) ASSERT_EQ(0, netg_send_test(PORT(i), netg_bcast, i, NULL, 0, self->seq++))
#define SEND_TAGS(i, n, ...) ASSERT_EQ(0, netg_send_test(PORT(i), netg_bcast, i, \
	(const struct netg_tag[]){ __VA_ARGS__ }, n, self->seq++))
/* A broadcast from the uplink: on its VLAN 100/200 device or, untagged or
 * with inline tags, on the parent. */
#define UPSEND(k) ASSERT_EQ(0, netg_psend_test(UP(k), netg_bcast, self->up_mac, NULL, 0, \
	self->seq++))
#define UPSEND_TAGS(n, ...) ASSERT_EQ(0, netg_psend_test(UP(ALL), netg_bcast, \
	self->up_mac, (const struct netg_tag[]){ __VA_ARGS__ }, n, self->seq++))

/* The @i-th stored frame is untagged / has one 802.1Q tag @vid. */
#define EXPECT_PLAIN(i) EXPECT_EQ(0, self->pk[i].ntags)
#define EXPECT_Q(i, vid) do {						\
	EXPECT_EQ(1, self->pk[i].ntags);				\
	EXPECT_EQ(ETH_Q, self->pk[i].tags[0].tpid);			\
	EXPECT_EQ((vid), self->pk[i].tags[0].tci & 0xfff);		\
} while (0)

/* Nothing more arrived anywhere. */
static void quiet(struct __test_metadata *_metadata, FIXTURE_DATA(modes) *self)
{
	usleep(NEG_MS * 1000);
	for (int i = 0; i < 4; i++) {
		EXPECT_EQ(0, GOT(PFD(i), 0)) TH_LOG("port %d", i);
	}
	EXPECT_EQ(0, GOT(UP(ALL), 0));
	EXPECT_EQ(0, GOT(UP(100), 0));
	EXPECT_EQ(0, GOT(UP(200), 0));
}

/* B on VLAN 100, C on VLAN 200; D (when a case needs no fourth VM) on
 * VLAN 400, where nothing of the tests goes. */
static void bc(struct __test_metadata *_metadata, FIXTURE_DATA(modes) *self)
{
	POLICY("100", .tag = 100);
	POLICY("200", .tag = 200);
	POLICY("400", .tag = 400);
	VM(B, "100");
	VM(C, "200");
}

TEST_F_TIMEOUT(modes, trunk, 120)
{
	bc(_metadata, self);
	POLICY("trunk", .trunk_set = true, .ntrunk = 2, .trunk = { 100, 300 });
	VM(A, "trunk");
	VM(D, "400");

	SEND_TAGS(A, 1, NETG_Q(100));
	EXPECT_EQ(1, GOT(UP(100), 1));
	EXPECT_PLAIN(0);
	EXPECT_EQ(1, GOT(UP(ALL), 1));
	EXPECT_Q(0, 100);
	EXPECT_EQ(1, GOT(PFD(B), 1));
	EXPECT_PLAIN(0);
	SEND_TAGS(A, 1, NETG_Q(300));
	EXPECT_EQ(1, GOT(UP(ALL), 1));
	EXPECT_Q(0, 300);
	quiet(_metadata, self);

	/* Not in the trunk, not 802.1Q, not single, VID 0: TAG. */
	SEND_TAGS(A, 1, NETG_Q(5));
	SEND_TAGS(A, 1, NETG_Q(200));
	SEND_TAGS(A, 1, NETG_AD(100));
	SEND_TAGS(A, 2, NETG_Q(100), NETG_Q(300));
	SEND_TAGS(A, 1, NETG_Q(0));
	/* Untagged without a native VID: SEGMENT. */
	SEND(A);
	quiet(_metadata, self);

	/* Toward A: trunk VIDs tagged; others and untagged dropped. */
	UPSEND(100);
	EXPECT_EQ(1, GOT(PFD(A), 1));
	EXPECT_Q(0, 100);
	EXPECT_EQ(1, GOT(PFD(B), 1));
	EXPECT_PLAIN(0);
	UPSEND_TAGS(1, NETG_Q(300));
	EXPECT_EQ(1, GOT(PFD(A), 1));
	EXPECT_Q(0, 300);
	UPSEND(200);
	EXPECT_EQ(1, GOT(PFD(C), 1));
	EXPECT_PLAIN(0);
	UPSEND(ALL);
	usleep(NEG_MS * 1000);
	quiet(_metadata, self);

	NETG_EXPECT_CTRS(L, A, 0, 2, 2, 5, 3, 0);
	NETG_EXPECT_CTRS(L, B, 0, 0, 2, 0, 4, 0);
	NETG_EXPECT_CTRS(L, C, 0, 0, 1, 0, 5, 0);
}

TEST_F_TIMEOUT(modes, trunk_native, 120)
{
	bc(_metadata, self);
	POLICY("native", .tag = 200, .trunk_set = true, .ntrunk = 2, .trunk = { 100, 300 });
	VM(A, "native");
	VM(D, "400");

	SEND(A);
	EXPECT_EQ(1, GOT(UP(200), 1));
	EXPECT_EQ(1, GOT(PFD(C), 1));
	EXPECT_PLAIN(0);
	SEND_TAGS(A, 1, NETG_Q(100));
	EXPECT_EQ(1, GOT(UP(100), 1));
	EXPECT_EQ(1, GOT(PFD(B), 1));
	EXPECT_PLAIN(0);
	EXPECT_EQ(2, GOT(UP(ALL), 2));
	EXPECT_Q(0, 200);
	EXPECT_Q(1, 100);
	/* The native VID is untagged only. */
	SEND_TAGS(A, 1, NETG_Q(200));
	quiet(_metadata, self);

	UPSEND(200);
	EXPECT_EQ(1, GOT(PFD(A), 1));
	EXPECT_PLAIN(0);
	UPSEND(100);
	EXPECT_EQ(1, GOT(PFD(A), 1));
	EXPECT_Q(0, 100);
	UPSEND(ALL);
	usleep(NEG_MS * 1000);
	EXPECT_EQ(0, GOT(PFD(A), 0));
	/* B and C got the uplink's VLAN 100 and 200 frames. */
	EXPECT_EQ(1, GOT(PFD(B), 1));
	EXPECT_EQ(1, GOT(PFD(C), 1));
	quiet(_metadata, self);

	NETG_EXPECT_CTRS(L, A, 1, 2, 2, 1, 1, 0);
	NETG_EXPECT_CTRS(L, B, 0, 0, 2, 0, 3, 0);
	NETG_EXPECT_CTRS(L, C, 0, 0, 2, 0, 3, 0);
}

TEST_F_TIMEOUT(modes, isolate, 120)
{
	struct netg_event ev[4];

	POLICY("iso", .tag = 100, .isolate = NETG_ISO_ON);
	POLICY("100", .tag = 100);
	POLICY("200", .tag = 200);
	VM(A, "iso");
	VM(B, "iso");
	VM(C, "200");
	VM(D, "100");
	memg_drain(&L->sub);

	SEND(A);
	EXPECT_EQ(1, GOT(UP(100), 1));
	EXPECT_EQ(1, GOT(PFD(D), 1));
	EXPECT_PLAIN(0);
	EXPECT_EQ(0, GOT(PFD(B), 0));
	ASSERT_EQ(1, netg_events(&L->sub, L->id[B], 1, 2000, ev, 4));
	EXPECT_EQ(KVMGUARD_NET_RULE_ISOLATE, ev[0].rule);
	EXPECT_EQ(KVMGUARD_NET_TO_GUEST, ev[0].dir);
	EXPECT_EQ(KVMGUARD_ACTION_DENIED, ev[0].action);
	EXPECT_EQ(1ULL, ev[0].count);
	EXPECT_STREQ(PORT(B)->name, ev[0].ifname);

	SEND(B);
	EXPECT_EQ(1, GOT(UP(100), 1));
	EXPECT_EQ(1, GOT(PFD(D), 1));
	EXPECT_EQ(0, GOT(PFD(A), 0));

	SEND(D);
	EXPECT_EQ(1, GOT(PFD(A), 1));
	EXPECT_PLAIN(0);
	EXPECT_EQ(1, GOT(PFD(B), 1));
	EXPECT_PLAIN(0);
	EXPECT_EQ(1, GOT(UP(100), 1));

	UPSEND(100);
	EXPECT_EQ(1, GOT(PFD(A), 1));
	EXPECT_EQ(1, GOT(PFD(B), 1));
	EXPECT_EQ(1, GOT(PFD(D), 1));
	EXPECT_EQ(3, GOT(UP(ALL), 3));
	quiet(_metadata, self);

	NETG_EXPECT_CTRS(L, A, 1, 1, 2, 0, 0, 1);
	NETG_EXPECT_CTRS(L, B, 1, 1, 2, 0, 0, 1);
	NETG_EXPECT_CTRS(L, D, 1, 1, 3, 0, 0, 0);
	NETG_EXPECT_CTRS(L, C, 0, 0, 0, 0, 4, 0);
}

TEST_F_TIMEOUT(modes, audit, 120)
{
	struct netg_event ev[4];
	int n;

	POLICY("a100", .mode = NETG_AUDIT, .tag = 100);
	POLICY("a200", .mode = NETG_AUDIT, .tag = 200);
	POLICY("400", .tag = 400);
	VM(A, "a100");
	VM(B, "a100");
	VM(C, "a200");
	VM(D, "400");
	memg_drain(&L->sub);

	/* Untagged: still VLAN 100, popped at B; C's segment rule is broken
	 * but the frame passes, its tag left on. */
	SEND(A);
	EXPECT_EQ(1, GOT(UP(100), 1));
	EXPECT_EQ(1, GOT(PFD(B), 1));
	EXPECT_PLAIN(0);
	EXPECT_EQ(1, GOT(PFD(C), 1));
	EXPECT_Q(0, 100);
	EXPECT_EQ(1, GOT(UP(ALL), 1));
	EXPECT_Q(0, 100);
	/* Toward C's guest: counted, not reported (the guest did nothing). */
	EXPECT_EQ(0, netg_events(&L->sub, L->id[C], 0, 1000, ev, 4));

	/* A guest tag passes as it is, everywhere. */
	SEND_TAGS(A, 1, NETG_Q(5));
	EXPECT_EQ(1, GOT(UP(ALL), 1));
	EXPECT_Q(0, 5);
	EXPECT_EQ(1, GOT(PFD(B), 1));
	EXPECT_Q(0, 5);
	EXPECT_EQ(1, GOT(PFD(C), 1));
	EXPECT_Q(0, 5);
	n = netg_events(&L->sub, L->id[A], 1, 2000, ev, 4);
	ASSERT_EQ(1, n);
	EXPECT_EQ(KVMGUARD_NET_RULE_TAG, ev[0].rule);
	EXPECT_EQ(KVMGUARD_NET_FROM_GUEST, ev[0].dir);
	EXPECT_EQ(KVMGUARD_ACTION_AUDITED, ev[0].action);
	EXPECT_EQ(5, ev[0].vid);
	quiet(_metadata, self);

	NETG_EXPECT_CTRS(L, A, 1, 2, 0, 1, 0, 0);
	NETG_EXPECT_CTRS(L, B, 0, 0, 2, 0, 1, 0);
	NETG_EXPECT_CTRS(L, C, 0, 0, 2, 0, 2, 0);
}

TEST_F_TIMEOUT(modes, live_edit, 120)
{
	bc(_metadata, self);
	POLICY("a", .tag = 100);
	VM(A, "a");
	VM(D, "400");

	SEND(A);
	EXPECT_EQ(1, GOT(UP(100), 1));
	EXPECT_EQ(1, GOT(PFD(B), 1));
	EXPECT_EQ(1, GOT(UP(ALL), 1));
	quiet(_metadata, self);

	ASSERT_EQ(0, netg_policy_set(&L->g, NETG_POLICY "a", .tag = 200));
	SEND(A);
	EXPECT_EQ(1, GOT(UP(200), 1));
	EXPECT_EQ(1, GOT(UP(ALL), 1));
	EXPECT_Q(0, 200);
	EXPECT_EQ(1, GOT(PFD(C), 1));
	EXPECT_PLAIN(0);
	UPSEND(200);
	EXPECT_EQ(1, GOT(PFD(A), 1));
	EXPECT_PLAIN(0);
	EXPECT_EQ(1, GOT(PFD(C), 1));
	UPSEND(100);
	EXPECT_EQ(1, GOT(PFD(B), 1));
	quiet(_metadata, self);
	/* The counters stay with the binding across the edit. */
	NETG_EXPECT_CTRS(L, A, 2, 2, 1, 0, 1, 0);

	/* No rule left: the port costs nothing and frames stay untagged. */
	ASSERT_EQ(0, netg_policy_set(&L->g, NETG_POLICY "a", .tag = NETG_NOTAG));
	SEND(A);
	EXPECT_EQ(1, GOT(UP(ALL), 1));
	EXPECT_PLAIN(0);
	quiet(_metadata, self);
	EXPECT_EQ(1, netg_devs(&L->g, L->id[A], NULL, 0));
	/* Still bound, but no hook: nothing counted. */
	NETG_EXPECT_CTRS(L, A, 2, 2, 1, 0, 1, 0);
}

TEST_F_TIMEOUT(modes, events, 120)
{
	struct netg_event ev[8];
	uint64_t sum = 0;
	int n;

	bc(_metadata, self);
	VM(A, "100");
	VM(D, "400");
	memg_drain(&L->sub);

	/* A burst from A: one TAG event at once, the rest held back. */
	for (int i = 0; i < 5; i++)
		SEND_TAGS(A, 1, NETG_Q(5));
	n = netg_events(&L->sub, L->id[A], 1, 2000, ev, 8);
	ASSERT_EQ(1, n);
	EXPECT_EQ(KVMGUARD_NET_RULE_TAG, ev[0].rule);
	EXPECT_EQ(1ULL, ev[0].count);
	sum += ev[0].count;
	/* The same rule of another VM, and another rule of A: at once. */
	SEND_TAGS(B, 1, NETG_Q(5));
	n = netg_events(&L->sub, L->id[B], 1, 2000, ev, 8);
	ASSERT_EQ(1, n);
	EXPECT_EQ(KVMGUARD_NET_RULE_TAG, ev[0].rule);
	EXPECT_EQ(1ULL, ev[0].count);
	/* A frame of another segment toward A: counted, never reported. */
	UPSEND(ALL);
	EXPECT_EQ(0, netg_events(&L->sub, L->id[A], 0, 1000, ev, 8));

	/* After a quiet second the next violation reports the held ones. */
	usleep(1100 * 1000);
	SEND_TAGS(A, 1, NETG_Q(5));
	n = netg_events(&L->sub, L->id[A], 1, 2000, ev, 8);
	ASSERT_EQ(1, n);
	EXPECT_EQ(KVMGUARD_NET_RULE_TAG, ev[0].rule);
	EXPECT_EQ(5ULL, ev[0].count);
	sum += ev[0].count;
	NETG_EXPECT_CTRS(L, A, 0, 0, 0, sum, 1, 0);
}

NETG_HARNESS_MAIN_SHARED(0, 4, NULL)
