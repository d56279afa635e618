// SPDX-License-Identifier: GPL-2.0
/*
 * net_netns: a bound tap that moves to another network namespace and back
 * keeps its binding, on the flat bridge of net_tags (A: tag 100).
 *
 *  - round_trip: while A is away its rules cannot reach the segment it
 *    left; back home (same ifindex), VM_NET_DEVS lists it again, bound as
 *    before, and its frames reach the uplink with VID 100 once it is on
 *    the bridge again; NET_UNBIND ends it as for any port.
 *  - new_ifindex: back home under another ifindex (its old one taken
 *    meanwhile), the binding follows it: the rules hold, VM_NET_DEVS
 *    shows the new ifindex.
 *  - deleted_away: deleted while in the other namespace, the binding ends;
 *    another VM may bind a new tap of that name.
 *  - vm_gone_away: the VM destroyed while its tap is away: back home, the
 *    tap is nobody's.
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

#define POS_MS	3000
#define A	0

FIXTURE(ns) {
	struct netg_lab l;
	struct netg_pkt pk[16];
	uint32_t seq;
};

FIXTURE_SETUP(ns)
{
	ASSERT_EQ(0, netg_lab_up(&self->l, 0, 1, NULL));
	ASSERT_EQ(0, netg_policy_new(&self->l.g, NETG_POLICY "100", .tag = 100));
	ASSERT_EQ(0, netg_lab_vm(&self->l, A, NETG_POLICY "100"));
}

FIXTURE_TEARDOWN(ns)
{
	NETG_LAB_DOWN(&self->l);
}

#define L (&self->l)
#define G (&self->l.g)
#define PORT(i) (&self->l.t.port[i])
#define UP(k) (self->l.t.up[NETG_UP_##k])

/* A frame from A reaches the uplink with VID @vid (0: untagged). */
static void uplink_sees(struct __test_metadata *_metadata, FIXTURE_DATA(ns) *self, int vid)
{
	netg_flush(UP(ALL));
	ASSERT_EQ(0, netg_send_test(PORT(A), netg_bcast, A, NULL, 0, self->seq++));
	ASSERT_EQ(1, netg_collect(UP(ALL), 1, POS_MS, self->pk, 16));
	if (vid) {
		EXPECT_EQ(1, self->pk[0].ntags) TH_LOG("frame from A untagged: A is not bound");
		EXPECT_EQ(vid, self->pk[0].tags[0].tci & 0xfff);
	} else {
		EXPECT_EQ(0, self->pk[0].ntags);
	}
}

/* Move kgna from the uplink's namespace back to the initial one. */
static int come_home(void)
{
	int err;

	err = netg_enter(NETG_NS);
	if (err)
		return err;
	err = netg_ip("link set kgna netns 1\n");
	netg_enter(NULL);
	return err;
}

TEST_F_TIMEOUT(ns, round_trip, 120)
{
	struct netg_dev d[4];
	int idx = PORT(A)->ifindex;

	uplink_sees(_metadata, self, 100);
	ASSERT_EQ(0, netg_ip("link set kgna netns " NETG_NS "\n"));
	ASSERT_EQ(0, come_home());
	ASSERT_EQ(idx, netg_ifindex("kgna"));
	ASSERT_EQ(1, netg_devs(G, L->id[A], d, 4))
		TH_LOG("the round trip ended A's binding");
	EXPECT_EQ((uint32_t)idx, d[0].ifindex);
	EXPECT_STREQ("kgna", d[0].ifname);
	EXPECT_EQ(KVMGUARD_NET_BOUND_MANUAL, d[0].bound_by);
	ASSERT_EQ(0, netg_ip("link set kgna master " NETG_BR "\nlink set kgna up\n"));
	uplink_sees(_metadata, self, 100);
	/* Still one VM's: another cannot take it. */
	EXPECT_EQ(0, netg_unbind(G, "kgna", 0));
	EXPECT_EQ(0, netg_devs(G, L->id[A], d, 4));
	uplink_sees(_metadata, self, 0);
}

TEST_F_TIMEOUT(ns, new_ifindex, 120)
{
	struct netg_port other;
	struct netg_dev d[4];
	int idx = PORT(A)->ifindex;

	ASSERT_EQ(0, netg_ip("link set kgna netns " NETG_NS "\n"));
	/* Its ifindex taken meanwhile. */
	ASSERT_EQ(0, netg_tap_open(&other, "kgnx", 0, idx));
	ASSERT_EQ(0, come_home());
	PORT(A)->ifindex = netg_ifindex("kgna");
	ASSERT_LT(0, PORT(A)->ifindex);
	EXPECT_NE(idx, PORT(A)->ifindex);
	ASSERT_EQ(1, netg_devs(G, L->id[A], d, 4))
		TH_LOG("the round trip ended A's binding");
	EXPECT_EQ((uint32_t)PORT(A)->ifindex, d[0].ifindex);
	ASSERT_EQ(0, netg_ip("link set kgna master " NETG_BR "\nlink set kgna up\n"));
	uplink_sees(_metadata, self, 100);
	/* The tap now at the old ifindex is nobody's. */
	EXPECT_EQ(-ENOENT, netg_unbind(G, NULL, idx));
	netg_port_close(&other);
}

TEST_F_TIMEOUT(ns, deleted_away, 120)
{
	struct netg_dev d[4];
	int err;

	ASSERT_EQ(0, netg_ip("link set kgna netns " NETG_NS "\n"));
	/* The test's fd is its last reference: closing it deletes the tap. */
	netg_port_close(PORT(A));
	for (int i = 0; i < 100 && netg_devs(G, L->id[A], d, 4) > 0; i++)
		usleep(20000);
	EXPECT_EQ(0, netg_devs(G, L->id[A], d, 4));
	err = netg_tap_open(PORT(A), "kgna", 0, 0);
	ASSERT_EQ(0, err);
	EXPECT_EQ(-ENOENT, netg_unbind(G, "kgna", 0));
}

TEST_F_TIMEOUT(ns, vm_gone_away, 120)
{
	ASSERT_EQ(0, netg_ip("link set kgna netns " NETG_NS "\n"));
	netg_lab_vm_destroy(L, A);
	usleep(200000);
	ASSERT_EQ(0, come_home());
	EXPECT_EQ(-ENOENT, netg_unbind(G, "kgna", 0));
	ASSERT_EQ(0, netg_ip("link set kgna master " NETG_BR "\nlink set kgna up\n"));
	uplink_sees(_metadata, self, 0);
}

NETG_HARNESS_MAIN
