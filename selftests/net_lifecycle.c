// SPDX-License-Identifier: GPL-2.0
/*
 * net_lifecycle: NET_BIND / NET_UNBIND and how bindings end, on the flat
 * bridge of net_tags (A, B: tag 100).
 *
 *  - bind: VM_NET_DEVS lists the device (ifindex, name, MANUAL, zero
 *    counters); binding it again to the same VM changes nothing, to
 *    another VM is EBUSY; by ifindex works too; unknown VM ENOENT, unknown
 *    device ENODEV, a bridge or veth EOPNOTSUPP; NET_UNBIND ends it (then
 *    ENOENT), frames flow untagged again; a VM may have several devices.
 *  - deleted: the tap goes away while bound: the binding ends; a new tap
 *    with the same name and ifindex inherits nothing.
 *  - renamed: the binding stays, VM_NET_DEVS shows the new name, the rule
 *    still holds.
 *  - netns_move: moved to another namespace, the device is not listed;
 *    back, it is bound to its VM as before (net_netns has the rest).
 *  - vm_destroyed: destroying the VM ends the binding (at the latest a
 *    moment later): the device becomes free, its frames untagged.
 *  - attachment: a guest-injected tag is dropped whichever way kvmguard
 *    reaches the tap: at the bridge (a bridge port with no other upper
 *    device), by netfilter off the bridge, and by netfilter again while a
 *    VLAN device on the tap would take the tag before the bridge (that
 *    device receives nothing).
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
#define A	0
#define B	1

FIXTURE(lc) {
	struct netg_lab l;
	struct netg_pkt pk[16];
	uint32_t seq;
};

FIXTURE_SETUP(lc)
{
	ASSERT_EQ(0, netg_lab_up(&self->l, 0, 2, NULL));
	ASSERT_EQ(0, netg_policy_new(&self->l.g, NETG_POLICY "100", .tag = 100));
	ASSERT_EQ(0, netg_lab_vm(&self->l, A, NETG_POLICY "100"));
	ASSERT_EQ(0, netg_lab_vm(&self->l, B, NETG_POLICY "100"));
}

FIXTURE_TEARDOWN(lc)
{
	NETG_LAB_DOWN(&self->l);
}

#define L (&self->l)
#define G (&self->l.g)
#define PORT(i) (&self->l.t.port[i])
#define UP(k) (self->l.t.up[NETG_UP_##k])
#define GOT(fd, want) netg_collect(fd, want, (want) ? POS_MS : 0, self->pk, 16)

/* A frame from A reaches the uplink with VID @vid (0: untagged). */
static void uplink_sees(struct __test_metadata *_metadata, FIXTURE_DATA(lc) *self, int vid)
{
	netg_flush(UP(ALL));
	ASSERT_EQ(0, netg_send_test(PORT(A), netg_bcast, A, NULL, 0, self->seq++));
	ASSERT_EQ(1, GOT(UP(ALL), 1));
	if (vid) {
		EXPECT_EQ(1, self->pk[0].ntags);
		EXPECT_EQ(vid, self->pk[0].tags[0].tci & 0xfff);
	} else {
		EXPECT_EQ(0, self->pk[0].ntags) TH_LOG("still tagged %#x", self->pk[0].tags[0].tci);
	}
}

/* Wait up to 3 s for VM @id to have @n devices; the count it had. */
static int wait_devs(struct gnl *g, uint64_t id, int n)
{
	int got = -1;

	for (int i = 0; i < 150; i++) {
		got = netg_devs(g, id, NULL, 0);
		if (got == n)
			break;
		usleep(20000);
	}
	return got;
}

/* A third VM (slot 2 of the lab), unbound. */
static uint64_t other_vm(struct __test_metadata *_metadata, FIXTURE_DATA(lc) *self)
{
	ASSERT_EQ(0, netg_vm(G, &L->vm[2], NETG_POLICY "100", &L->id[2]));
	L->has_vm[2] = true;
	return L->id[2];
}

TEST_F_TIMEOUT(lc, bind, 120)
{
	struct netg_dev d[4];
	uint64_t other;

	ASSERT_EQ(1, netg_devs(G, L->id[A], d, 4));
	EXPECT_EQ((uint32_t)PORT(A)->ifindex, d[0].ifindex);
	EXPECT_STREQ(PORT(A)->name, d[0].ifname);
	EXPECT_EQ(KVMGUARD_NET_BOUND_MANUAL, d[0].bound_by);
	EXPECT_EQ(0U, d[0].missing);
	NETG_EXPECT_CTRS(L, A, 0, 0, 0, 0, 0, 0);
	uplink_sees(_metadata, self, 100);

	/* Again to the same VM: nothing changes (the counters neither). */
	EXPECT_EQ(0, netg_bind(G, L->id[A], PORT(A)->name, 0));
	EXPECT_EQ(1, netg_devs(G, L->id[A], d, 4));
	NETG_EXPECT_CTRS(L, A, 1, 1, 0, 0, 0, 0);

	other = other_vm(_metadata, self);
	EXPECT_EQ(-EBUSY, netg_bind(G, other, PORT(A)->name, 0));
	EXPECT_EQ(-EBUSY, netg_bind(G, other, NULL, PORT(B)->ifindex));
	EXPECT_EQ(-ENOENT, netg_bind(G, kg_max_vm_id(G) + 1000, PORT(A)->name, 0));
	EXPECT_EQ(-ENODEV, netg_bind(G, other, "kgnnone", 0));
	EXPECT_EQ(-ENODEV, netg_bind(G, other, NULL, 0x7ffffff0));
	EXPECT_EQ(-EOPNOTSUPP, netg_bind(G, other, NETG_BR, 0));
	EXPECT_EQ(-EOPNOTSUPP, netg_bind(G, other, NETG_UP, 0));
	EXPECT_EQ(-EOPNOTSUPP, netg_bind(G, other, "lo", 0));
	EXPECT_EQ(0, netg_devs(G, other, d, 4));

	/* Unbind A by name, B by ifindex; then neither is bound. */
	EXPECT_EQ(0, netg_unbind(G, PORT(A)->name, 0));
	EXPECT_EQ(0, netg_unbind(G, NULL, PORT(B)->ifindex));
	EXPECT_EQ(-ENOENT, netg_unbind(G, PORT(A)->name, 0));
	EXPECT_EQ(-ENODEV, netg_unbind(G, "kgnnone", 0));
	EXPECT_EQ(0, netg_devs(G, L->id[A], d, 4));
	EXPECT_EQ(0, netg_devs(G, L->id[B], d, 4));
	uplink_sees(_metadata, self, 0);

	/* By ifindex to the other VM; the counters start from zero. */
	EXPECT_EQ(0, netg_bind(G, other, NULL, PORT(A)->ifindex));
	ASSERT_EQ(1, netg_devs(G, other, d, 4));
	EXPECT_STREQ(PORT(A)->name, d[0].ifname);
	EXPECT_EQ(0ULL, d[0].tagged + d[0].forwarded);
	uplink_sees(_metadata, self, 100);

	/* A VM may have several devices. */
	EXPECT_EQ(0, netg_bind(G, other, PORT(B)->name, 0));
	ASSERT_EQ(2, netg_devs(G, other, d, 4));
	EXPECT_TRUE(!strcmp(d[0].ifname, PORT(B)->name) || !strcmp(d[1].ifname, PORT(B)->name));
	EXPECT_EQ(0, netg_devs(G, L->id[B], d, 4));
}

TEST_F_TIMEOUT(lc, deleted, 120)
{
	struct netg_dev d[4];
	int ifindex = PORT(A)->ifindex;

	uplink_sees(_metadata, self, 100);
	/* The last fd of a non-persistent tap: the device unregisters. */
	netg_port_close(PORT(A));
	EXPECT_EQ(0, wait_devs(G, L->id[A], 0));
	EXPECT_EQ(1, netg_devs(G, L->id[B], d, 4));

	/* Same name, same ifindex: a new device, bound to nothing. */
	ASSERT_EQ(0, netg_tap_open(PORT(A), "kgna", 0, ifindex));
	ASSERT_EQ(ifindex, PORT(A)->ifindex);
	ASSERT_EQ(0, netg_ip("link set kgna master " NETG_BR "\nlink set kgna up\n"));
	EXPECT_EQ(0, netg_devs(G, L->id[A], d, 4));
	uplink_sees(_metadata, self, 0);
	EXPECT_EQ(-ENOENT, netg_unbind(G, "kgna", 0));
	EXPECT_EQ(0, netg_bind(G, other_vm(_metadata, self), "kgna", 0));
}

TEST_F_TIMEOUT(lc, renamed, 120)
{
	struct netg_dev d[4];

	uplink_sees(_metadata, self, 100);
	ASSERT_EQ(0, netg_ip("link set kgna down\nlink set kgna name kgnx\nlink set kgnx up\n"));
	snprintf(PORT(A)->name, sizeof(PORT(A)->name), "kgnx");
	ASSERT_EQ(1, netg_devs(G, L->id[A], d, 4));
	EXPECT_STREQ("kgnx", d[0].ifname);
	EXPECT_EQ((uint32_t)PORT(A)->ifindex, d[0].ifindex);
	uplink_sees(_metadata, self, 100);
	NETG_EXPECT_CTRS(L, A, 2, 2, 0, 0, 0, 0);
	EXPECT_EQ(-ENODEV, netg_unbind(G, "kgna", 0));
	EXPECT_EQ(0, netg_unbind(G, "kgnx", 0));
}

TEST_F_TIMEOUT(lc, netns_move, 120)
{
	struct netg_dev d[4];
	int back;

	uplink_sees(_metadata, self, 100);
	ASSERT_EQ(0, netg_ip("link set kgna netns " NETG_NS "\n"));
	EXPECT_EQ(0, wait_devs(G, L->id[A], 0));
	/* Not a device of the initial namespace now. */
	EXPECT_EQ(-ENODEV, netg_bind(G, L->id[A], "kgna", 0));

	ASSERT_EQ(0, netg_enter(NETG_NS));
	back = netg_ip("link set kgna netns 1\n");
	netg_enter(NULL);
	ASSERT_EQ(0, back);
	EXPECT_EQ(1, netg_devs(G, L->id[A], d, 4));
	PORT(A)->ifindex = netg_ifindex("kgna");
	ASSERT_LT(0, PORT(A)->ifindex);
	ASSERT_EQ(0, netg_ip("link set kgna master " NETG_BR "\nlink set kgna up\n"));
	uplink_sees(_metadata, self, 100);
	EXPECT_EQ(-EBUSY, netg_bind(G, other_vm(_metadata, self), "kgna", 0));
}

TEST_F_TIMEOUT(lc, vm_destroyed, 120)
{
	uint64_t other;
	int err = -EBUSY;

	uplink_sees(_metadata, self, 100);
	netg_lab_vm_destroy(L, A);
	other = other_vm(_metadata, self);
	/* The binding ends with the VM, at the latest a moment later. */
	for (int i = 0; i < 150 && err == -EBUSY; i++) {
		err = netg_bind(G, other, "kgna", 0);
		if (err == -EBUSY)
			usleep(20000);
	}
	EXPECT_EQ(0, err);
	EXPECT_EQ(0, netg_unbind(G, "kgna", 0));
	uplink_sees(_metadata, self, 0);
	/* B's binding is its own. */
	EXPECT_EQ(1, netg_devs(G, L->id[B], NULL, 0));
}

/* A counter of @ifname's statistics, or -1. */
static long dev_stat(const char *ifname, const char *stat)
{
	char path[128];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/%s", ifname, stat);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* Guest A sends a frame tagged VID 7. */
#define SEND_7() ASSERT_EQ(0, netg_send_test(PORT(A), netg_bcast, A, &t7, 1, self->seq++))

TEST_F_TIMEOUT(lc, attachment, 120)
{
	const struct netg_tag t7 = NETG_Q(7);

	/* A bridge port: checked at the bridge. */
	uplink_sees(_metadata, self, 100);
	SEND_7();
	NETG_EXPECT_CTRS(L, A, 1, 1, 0, 1, 0, 0);

	/* Off the bridge: netfilter's ingress hook. */
	ASSERT_EQ(0, netg_ip("link set kgna nomaster\n"));
	SEND_7();
	ASSERT_EQ(0, netg_send_test(PORT(A), netg_bcast, A, NULL, 0, self->seq++));
	NETG_EXPECT_CTRS(L, A, 2, 2, 0, 2, 0, 0);

	/* On the bridge with a VLAN 7 device on the tap: netfilter again. */
	ASSERT_EQ(0, netg_ip("link set kgna master " NETG_BR "\n"
			     "link add link kgna name kgnv7 type vlan id 7\n"));
	ASSERT_EQ(0, netg_noipv6("kgnv7"));
	ASSERT_EQ(0, netg_ip("link set kgnv7 up\n"));
	SEND_7();
	NETG_EXPECT_CTRS(L, A, 2, 2, 0, 3, 0, 0);
	EXPECT_EQ(0, dev_stat("kgnv7", "rx_packets"));

	/* The VLAN device gone: at the bridge again. */
	ASSERT_EQ(0, netg_ip("link del kgnv7\n"));
	SEND_7();
	uplink_sees(_metadata, self, 100);
	NETG_EXPECT_CTRS(L, A, 3, 3, 0, 4, 0, 0);
}

NETG_HARNESS_MAIN
