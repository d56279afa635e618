// SPDX-License-Identifier: GPL-2.0
/*
 * net_macvtap: access ports on macvtap devices (bridge mode) on the uplink
 * veth, where the directions are the reverse of a tap's (the guest sends
 * on the macvtap's egress, receives on its ingress) and the guest's tags
 * are still inline when kvmguard sees them. VMs A and B have tag 100, C tag
 * 200; the test plays the guests on the /dev/tapN queues.
 *
 *  - baseline: without bindings frames pass untagged between the macvtaps
 *    and to the uplink.
 *  - segments: A and B talk, A and C do not (either way), A reaches the
 *    uplink on VLAN 100 only, the uplink's VLAN 100 reaches A and B and
 *    its VLAN 200 C only; counters exact.
 *  - injected: 802.1Q, 802.1ad, double and VLAN 0 tags from the guest are
 *    dropped, counted and reported with their outer VID.
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

#define N	4
#define POS_MS	3000
#define NEG_MS	200	/* macvlan hands broadcasts from the lower device to a work item */
#define A	0
#define B	1
#define C	2

FIXTURE(mvt) {
	struct netg_lab l;
	struct netg_pkt pk[64];
	uint8_t up_mac[6];
	uint32_t seq;
};

FIXTURE_SETUP(mvt)
{
	ASSERT_EQ(0, netg_lab_up(&self->l, NETG_MACVTAP, 3, NULL));
	netg_mac(9, self->up_mac);
}

FIXTURE_TEARDOWN(mvt)
{
	netg_lab_down(&self->l);
}

#define L (&self->l)
#define PORT(i) (&self->l.t.port[i])
#define PFD(i) (self->l.t.port[i].fd)
#define UP(k) (self->l.t.up[NETG_UP_##k])
#define GOT(fd, want) netg_collect(fd, want, (want) ? POS_MS : 0, self->pk, 64)
#define SEND(i) ASSERT_EQ(0, netg_send_test(PORT(i), netg_bcast, i, NULL, 0, self->seq++))
#define UPSEND(k) ASSERT_EQ(0, netg_psend_test(UP(k), netg_bcast, self->up_mac, NULL, 0, \
	self->seq++))
#define EXPECT_PLAIN(n) do {						\
	for (int __i = 0; __i < (n); __i++) {				\
		EXPECT_EQ(0, self->pk[__i].ntags);			\
	}								\
} while (0)

static void bind_all(struct __test_metadata *_metadata, FIXTURE_DATA(mvt) *self)
{
	ASSERT_EQ(0, netg_policy_new(&L->g, NETG_POLICY "100", .tag = 100));
	ASSERT_EQ(0, netg_policy_new(&L->g, NETG_POLICY "200", .tag = 200));
	ASSERT_EQ(0, netg_lab_vm(L, A, NETG_POLICY "100"));
	ASSERT_EQ(0, netg_lab_vm(L, B, NETG_POLICY "100"));
	ASSERT_EQ(0, netg_lab_vm(L, C, NETG_POLICY "200"));
}

static void quiet(struct __test_metadata *_metadata, FIXTURE_DATA(mvt) *self)
{
	usleep(NEG_MS * 1000);
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(0, GOT(PFD(i), 0)) TH_LOG("port %d", i);
	}
	EXPECT_EQ(0, GOT(UP(ALL), 0));
	EXPECT_EQ(0, GOT(UP(100), 0));
	EXPECT_EQ(0, GOT(UP(200), 0));
}

TEST_F(mvt, baseline)
{
	for (int s = 0; s < N; s++)
		SEND(A);
	EXPECT_EQ(N, GOT(PFD(B), N));
	EXPECT_PLAIN(N);
	EXPECT_EQ(N, GOT(PFD(C), N));
	EXPECT_EQ(N, GOT(UP(ALL), N));
	EXPECT_PLAIN(N);
	UPSEND(ALL);
	EXPECT_EQ(1, GOT(PFD(A), 1));
	EXPECT_EQ(1, GOT(PFD(B), 1));
	EXPECT_EQ(1, GOT(PFD(C), 1));
	quiet(_metadata, self);
}

TEST_F(mvt, segments)
{
	bind_all(_metadata, self);
	for (int s = 0; s < N; s++)
		SEND(A);
	EXPECT_EQ(N, GOT(PFD(B), N));
	EXPECT_PLAIN(N);
	EXPECT_EQ(N, GOT(UP(100), N));
	EXPECT_PLAIN(N);
	EXPECT_EQ(N, GOT(UP(ALL), N));
	for (int i = 0; i < N; i++) {
		EXPECT_EQ(1, self->pk[i].ntags);
		EXPECT_EQ(100, self->pk[i].tags[0].tci);
	}
	quiet(_metadata, self);

	SEND(C);
	EXPECT_EQ(1, GOT(UP(200), 1));
	EXPECT_EQ(1, GOT(UP(ALL), 1));
	quiet(_metadata, self);

	UPSEND(100);
	EXPECT_EQ(1, GOT(PFD(A), 1));
	EXPECT_PLAIN(1);
	EXPECT_EQ(1, GOT(PFD(B), 1));
	EXPECT_PLAIN(1);
	UPSEND(200);
	EXPECT_EQ(1, GOT(PFD(C), 1));
	EXPECT_PLAIN(1);
	UPSEND(ALL);
	usleep(NEG_MS * 1000);
	quiet(_metadata, self);

	NETG_EXPECT_CTRS(L, A, N, N, 1, 0, 3, 0);
	NETG_EXPECT_CTRS(L, B, 0, 0, N + 1, 0, 3, 0);
	NETG_EXPECT_CTRS(L, C, 1, 1, 1, 0, N + 2, 0);
}

TEST_F(mvt, injected)
{
	static const struct {
		int ntags;
		struct netg_tag tags[2];
		uint16_t vid;
	} inj[] = {
		{ 1, { NETG_Q(5) }, 5 },
		{ 1, { NETG_Q(100) }, 100 },
		{ 1, { NETG_Q(0x2000) }, 0 },
		{ 1, { NETG_AD(100) }, 100 },
		{ 2, { NETG_Q(100), NETG_Q(7) }, 100 },
	};

	bind_all(_metadata, self);
	for (size_t k = 0; k < sizeof(inj) / sizeof(inj[0]); k++) {
		struct netg_event ev[4];

		if (k)
			ASSERT_EQ(0, netg_lab_vm(L, A, NETG_POLICY "100"));
		memg_drain(&L->sub);
		ASSERT_EQ(0, netg_send_test(PORT(A), netg_bcast, A, inj[k].tags,
					    inj[k].ntags, self->seq++));
		SEND(A);
		EXPECT_EQ(1, GOT(PFD(B), 1)) TH_LOG("case %zu", k);
		EXPECT_EQ(self->seq - 1, self->pk[0].seq) TH_LOG("case %zu reached B", k);
		EXPECT_EQ(1, GOT(UP(ALL), 1));
		EXPECT_EQ(self->seq - 1, self->pk[0].seq) TH_LOG("case %zu reached the uplink", k);
		EXPECT_EQ(1, GOT(UP(100), 1));
		quiet(_metadata, self);
		NETG_EXPECT_CTRS(L, A, 1, 1, 0, 1, 0, 0);
		ASSERT_EQ(1, netg_events(&L->sub, L->id[A], 1, 2000, ev, 4)) TH_LOG("case %zu", k);
		EXPECT_EQ(KVMGUARD_NET_RULE_TAG, ev[0].rule);
		EXPECT_EQ(KVMGUARD_NET_FROM_GUEST, ev[0].dir);
		EXPECT_EQ(KVMGUARD_ACTION_DENIED, ev[0].action);
		EXPECT_TRUE(ev[0].has_vid);
		EXPECT_EQ(inj[k].vid, ev[0].vid) TH_LOG("case %zu", k);
		EXPECT_STREQ(PORT(A)->name, ev[0].ifname);
	}
}

NETG_HARNESS_MAIN
