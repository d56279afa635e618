// SPDX-License-Identifier: GPL-2.0
/*
 * net_tags: access ports (POLICY_NET_TAG) on a bridge. VMs A and B have
 * tag 100, C tag 200; their taps are on a bridge with a veth uplink into a
 * namespace where VLAN 100 and 200 devices sit on the veth's peer. The test
 * plays the guests on the tap fds. Variants: a flat bridge (no VLAN
 * filtering) and a VLAN-filtering bridge with each VM's VID tagged on its
 * port (and both VIDs on the uplink).
 *
 *  - baseline: with no binding, frames cross the bridge untagged (the
 *    topology works; nothing of kvmguard is in the way).
 *  - same_segment: A and B talk, untagged on both sides; A's broadcasts
 *    reach the uplink on VLAN 100 only; C never sees them.
 *  - other_segment: A and C do not talk, either way; the drops are counted
 *    at the receiving port (SEGMENT) but neither evented nor logged: the
 *    host side's frames are no guest's doing.
 *  - from_uplink: VLAN 100 from the uplink reaches A and B untagged, VLAN
 *    200 reaches C only, untagged frames reach nobody (counted, no event,
 *    no kernel log line).
 *  - rebind_keeps_counters: NET_UNBIND and NET_BIND of a port to the same
 *    VM keep its counters counting; bound to another VM it starts at 0.
 *  - injected: a frame the guest sends with a tag (802.1Q with another VID,
 *    its own VID, the other segment's VID, a VLAN 0 priority tag, 802.1ad,
 *    double tags) reaches nobody, is counted (TAG_DENIED) and reported
 *    (TAG, FROM_GUEST, DENIED, count 1, the outer VID, the port).
 * Every case checks all six counters of every port exactly.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "hcg.h"
#include "kg.h"
#include "memg.h"
#include "netg.h"

#define N	5	/* frames per direction */
#define POS_MS	3000	/* wait for frames that must come (returns early) */
#define NEG_MS	150	/* for frames that must not come */
#define A	0
#define B	1
#define C	2

FIXTURE(tags) {
	struct netg_lab l;
	struct netg_pkt pk[64];
};

FIXTURE_VARIANT(tags) {
	unsigned int flags;
};

FIXTURE_VARIANT_ADD(tags, flat) {
	.flags = 0,
};

FIXTURE_VARIANT_ADD(tags, filtering) {
	.flags = NETG_FILTERING,
};

static const uint16_t vids[] = { 100, 100, 200 };

FIXTURE_SETUP(tags)
{
	ASSERT_EQ(0, netg_lab_up(&self->l, variant->flags, 3, vids));
}

FIXTURE_TEARDOWN(tags)
{
	NETG_LAB_DOWN(&self->l);
}

#define L (&self->l)
#define PORT(i) (&self->l.t.port[i])
#define PFD(i) (self->l.t.port[i].fd)
#define UP(k) (self->l.t.up[NETG_UP_##k])
/*
 * Frames of another segment that reach a port's egress (and are dropped
 * there by kvmguard): on the filtering bridge they never get that far.
 */
#define CROSS(n) ((variant->flags & NETG_FILTERING) ? 0 : (n))
/*
 * Our frames on @fd: @want of them (waiting for them), or none (0: what
 * is there now; frames toward the uplink cross a backlog, so a check for
 * none there comes after frames of the same send were seen or NEG_MS).
 */
#define GOT(fd, want) netg_collect(fd, want, (want) ? POS_MS : 0, self->pk, 64)

/* The kernel log from now on (-1: not readable). */
static int klog_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

/* Lines of kvmguard's about frames toward a guest since klog_open(). */
static int klog_to_guest_lines(int fd)
{
	char rec[2048];
	int lines = 0;

	if (fd < 0)
		return 0;
	for (;;) {
		ssize_t n = read(fd, rec, sizeof(rec) - 1);

		if (n < 0 && errno == EPIPE)
			continue;
		if (n <= 0)
			break;
		rec[n] = 0;
		if (strstr(rec, "kvmguard: ") && strstr(rec, "frame to guest")) {
			printf("# klog: %s", strchr(rec, ';') ? strchr(rec, ';') + 1 : rec);
			lines++;
		}
	}
	close(fd);
	return lines;
}

static void bind_all(struct __test_metadata *_metadata, FIXTURE_DATA(tags) *self)
{
	ASSERT_EQ(0, netg_policy_new(&L->g, NETG_POLICY "100", .tag = 100));
	ASSERT_EQ(0, netg_policy_new(&L->g, NETG_POLICY "200", .tag = 200));
	ASSERT_EQ(0, netg_lab_vm(L, A, NETG_POLICY "100"));
	ASSERT_EQ(0, netg_lab_vm(L, B, NETG_POLICY "100"));
	ASSERT_EQ(0, netg_lab_vm(L, C, NETG_POLICY "200"));
}

/* @n frames from port @from to @dst, untagged. */
static void send_n(struct __test_metadata *_metadata, FIXTURE_DATA(tags) *self,
		   int from, const uint8_t *dst, int n)
{
	for (int s = 0; s < n; s++)
		ASSERT_EQ(0, netg_send_test(PORT(from), dst, from, NULL, 0, s));
}

/* Every stored frame is untagged (to a guest, or on a VLAN device). */
#define EXPECT_UNTAGGED(n) do {						\
	for (int __i = 0; __i < (n) && __i < 64; __i++) {		\
		EXPECT_EQ(0, self->pk[__i].ntags) TH_LOG("frame %d: %d tags, outer %#x", \
			__i, self->pk[__i].ntags, self->pk[__i].tags[0].tci); \
	}								\
} while (0)

/* Every stored frame has exactly one 802.1Q tag with @vid. */
#define EXPECT_VID(n, vid) do {						\
	for (int __i = 0; __i < (n) && __i < 64; __i++) {		\
		EXPECT_EQ(1, self->pk[__i].ntags);			\
		EXPECT_EQ(ETH_Q, self->pk[__i].tags[0].tpid);		\
		EXPECT_EQ((vid), self->pk[__i].tags[0].tci & 0xfff);	\
	}								\
} while (0)

TEST_F_TIMEOUT(tags, baseline, 120)
{
	/* On the filtering bridge untagged frames are in the ports' PVID 1,
	 * untagged everywhere: the same result. */
	send_n(_metadata, self, A, netg_bcast, N);
	EXPECT_EQ(N, GOT(PFD(B), N));
	EXPECT_UNTAGGED(N);
	EXPECT_EQ(N, GOT(PFD(C), N));
	EXPECT_UNTAGGED(N);
	EXPECT_EQ(N, GOT(UP(ALL), N));
	EXPECT_UNTAGGED(N);
	EXPECT_EQ(0, GOT(UP(100), 0));
	EXPECT_EQ(0, GOT(UP(200), 0));
	EXPECT_EQ(0, GOT(PFD(A), 0));
}

TEST_F_TIMEOUT(tags, same_segment, 120)
{
	uint8_t mac_a[6];

	bind_all(_metadata, self);
	send_n(_metadata, self, A, netg_bcast, N);
	EXPECT_EQ(N, GOT(PFD(B), N));
	EXPECT_UNTAGGED(N);
	EXPECT_EQ(N, GOT(UP(100), N));
	EXPECT_UNTAGGED(N);
	EXPECT_EQ(N, GOT(UP(ALL), N));
	EXPECT_VID(N, 100);
	EXPECT_EQ(0, GOT(UP(200), 0));
	EXPECT_EQ(0, GOT(PFD(C), 0));

	/* B answers A (learnt by the bridge on A's port: no flooding). */
	netg_mac(A, mac_a);
	send_n(_metadata, self, B, mac_a, N);
	EXPECT_EQ(N, GOT(PFD(A), N));
	EXPECT_UNTAGGED(N);
	usleep(NEG_MS * 1000);
	EXPECT_EQ(0, GOT(UP(ALL), 0));
	EXPECT_EQ(0, GOT(PFD(C), 0));

	NETG_EXPECT_CTRS(L, A, N, N, N, 0, 0, 0);
	NETG_EXPECT_CTRS(L, B, N, N, N, 0, 0, 0);
	NETG_EXPECT_CTRS(L, C, 0, 0, 0, 0, CROSS(N), 0);
}

TEST_F_TIMEOUT(tags, other_segment, 120)
{
	struct netg_event ev[8];
	int klog = klog_open();
	int n;

	bind_all(_metadata, self);
	memg_drain(&L->sub);
	send_n(_metadata, self, A, netg_bcast, N);
	EXPECT_EQ(N, GOT(UP(100), N));
	EXPECT_EQ(N, GOT(PFD(B), N));
	EXPECT_EQ(0, GOT(PFD(C), 0));

	/* Dropped at C's port (counted below), but C's guest did nothing. */
	n = netg_events(&L->sub, L->id[C], 0, 1000, ev, 8);
	EXPECT_EQ(0, n) TH_LOG("%d events for frames toward C's guest (rule %u dir %u)",
			       n, n ? ev[0].rule : 0, n ? ev[0].dir : 0);
	EXPECT_EQ(0, netg_events(&L->sub, L->id[A], 0, 100, ev, 8));
	EXPECT_EQ(0, klog_to_guest_lines(klog)) TH_LOG("kernel log lines for them");

	send_n(_metadata, self, C, netg_bcast, N);
	EXPECT_EQ(N, GOT(UP(200), N));
	EXPECT_UNTAGGED(N);
	EXPECT_EQ(0, GOT(PFD(A), 0));
	EXPECT_EQ(0, GOT(PFD(B), 0));
	EXPECT_EQ(0, GOT(UP(100), 0));

	NETG_EXPECT_CTRS(L, A, N, N, 0, 0, CROSS(N), 0);
	NETG_EXPECT_CTRS(L, B, 0, 0, N, 0, CROSS(N), 0);
	NETG_EXPECT_CTRS(L, C, N, N, 0, 0, CROSS(N), 0);
}

TEST_F_TIMEOUT(tags, from_uplink, 120)
{
	struct netg_event ev[8];
	int klog = klog_open();
	uint8_t src[6];

	bind_all(_metadata, self);
	memg_drain(&L->sub);
	netg_mac(3, src);
	for (int s = 0; s < N; s++)
		ASSERT_EQ(0, netg_psend_test(UP(100), netg_bcast, src, NULL, 0, s));
	EXPECT_EQ(N, GOT(PFD(A), N));
	EXPECT_UNTAGGED(N);
	EXPECT_EQ(N, GOT(PFD(B), N));
	EXPECT_UNTAGGED(N);
	EXPECT_EQ(0, GOT(PFD(C), 0));

	for (int s = 0; s < N; s++)
		ASSERT_EQ(0, netg_psend_test(UP(200), netg_bcast, src, NULL, 0, s));
	EXPECT_EQ(N, GOT(PFD(C), N));
	EXPECT_UNTAGGED(N);
	EXPECT_EQ(0, GOT(PFD(A), 0));
	EXPECT_EQ(0, GOT(PFD(B), 0));

	/* Untagged on the uplink: nobody's segment (the filtering bridge
	 * passes them in PVID 1, untagged on every port, to the taps). */
	for (int s = 0; s < N; s++)
		ASSERT_EQ(0, netg_psend_test(UP(ALL), netg_bcast, src, NULL, 0, s));
	usleep(NEG_MS * 1000);
	EXPECT_EQ(0, GOT(PFD(A), 0));
	EXPECT_EQ(0, GOT(PFD(B), 0));
	EXPECT_EQ(0, GOT(PFD(C), 0));

	NETG_EXPECT_CTRS(L, A, 0, 0, N, 0, CROSS(N) + N, 0);
	NETG_EXPECT_CTRS(L, B, 0, 0, N, 0, CROSS(N) + N, 0);
	NETG_EXPECT_CTRS(L, C, 0, 0, N, 0, CROSS(N) + N, 0);
	/* The host side's own traffic (IPv6 ND, IGMP): no event, no log. */
	for (int i = A; i <= C; i++) {
		int n = netg_events(&L->sub, L->id[i], 0, i == A ? 1000 : 100, ev, 8);

		EXPECT_EQ(0, n) TH_LOG("%d events for frames toward guest %d", n, i);
	}
	EXPECT_EQ(0, klog_to_guest_lines(klog)) TH_LOG("kernel log lines for them");
}

/* A, rebound to its own VM, keeps counting; bound to B's VM it starts at 0. */
TEST_F_TIMEOUT(tags, rebind_keeps_counters, 120)
{
	bind_all(_metadata, self);
	send_n(_metadata, self, A, netg_bcast, N);
	EXPECT_EQ(N, GOT(UP(100), N));
	EXPECT_EQ(N, GOT(PFD(B), N));
	NETG_EXPECT_CTRS(L, A, N, N, 0, 0, 0, 0);

	ASSERT_EQ(0, netg_unbind(&L->g, PORT(A)->name, 0));
	ASSERT_EQ(0, netg_bind(&L->g, L->id[A], PORT(A)->name, 0));
	NETG_EXPECT_CTRS(L, A, N, N, 0, 0, 0, 0);
	send_n(_metadata, self, A, netg_bcast, N);
	EXPECT_EQ(N, GOT(UP(100), N));
	EXPECT_EQ(N, GOT(PFD(B), N));
	NETG_EXPECT_CTRS(L, A, 2 * N, 2 * N, 0, 0, 0, 0);

	/* Another VM's port now: its own counters, from 0. */
	ASSERT_EQ(0, netg_unbind(&L->g, PORT(A)->name, 0));
	ASSERT_EQ(0, netg_bind(&L->g, L->id[B], PORT(A)->name, 0));
	EXPECT_EQ(0, netg_dev_check(&L->g, L->id[B], PORT(A)->name,
				    &NETG_CTRS(0, 0, 0, 0, 0, 0), NULL, 0));
	/* And back to A's VM: what A's VM counted on it before. */
	ASSERT_EQ(0, netg_unbind(&L->g, PORT(A)->name, 0));
	ASSERT_EQ(0, netg_bind(&L->g, L->id[A], PORT(A)->name, 0));
	NETG_EXPECT_CTRS(L, A, 2 * N, 2 * N, 0, 0, 0, 0);
}

/*
 * Frames of VLAN 100 from the uplink that are not plain ones: a priority
 * or DEI bit in the TCI (delivered, untagged), an inner tag under it and,
 * on the flat bridge, an 802.1ad tag of VID 100 (neither may reach an
 * access port; the filtering bridge does not forward 802.1ad ones in
 * VLAN 100). The common frame is handled apart from these (net_entry.S).
 */
TEST_F_TIMEOUT(tags, from_uplink_other, 120)
{
	const struct netg_tag pcp[] = { NETG_Q(0xa000 | 100) };
	const struct netg_tag dei[] = { NETG_Q(0x1000 | 100) };
	const struct netg_tag inner[] = { NETG_Q(100), NETG_Q(200) };
	const struct netg_tag ad[] = { NETG_AD(100) };
	bool flat = !(variant->flags & NETG_FILTERING);
	int denied = flat ? 2 : 1;
	uint8_t src[6];

	bind_all(_metadata, self);
	netg_mac(3, src);
	ASSERT_EQ(0, netg_psend_test(UP(ALL), netg_bcast, src, pcp, 1, 1));
	ASSERT_EQ(0, netg_psend_test(UP(ALL), netg_bcast, src, dei, 1, 2));
	EXPECT_EQ(2, GOT(PFD(A), 2));
	EXPECT_UNTAGGED(2);
	EXPECT_EQ(2, GOT(PFD(B), 2));
	EXPECT_UNTAGGED(2);

	ASSERT_EQ(0, netg_psend_test(UP(ALL), netg_bcast, src, inner, 2, 3));
	if (flat)
		ASSERT_EQ(0, netg_psend_test(UP(ALL), netg_bcast, src, ad, 1, 4));
	/* A plain one after them shows when the path is drained. */
	ASSERT_EQ(0, netg_psend_test(UP(100), netg_bcast, src, NULL, 0, 5));
	EXPECT_EQ(1, GOT(PFD(A), 1));
	EXPECT_EQ(5U, self->pk[0].seq);
	EXPECT_UNTAGGED(1);
	EXPECT_EQ(1, GOT(PFD(B), 1));
	EXPECT_EQ(5U, self->pk[0].seq);
	EXPECT_EQ(0, GOT(PFD(C), 0));

	NETG_EXPECT_CTRS(L, A, 0, 0, 3, 0, denied, 0);
	NETG_EXPECT_CTRS(L, B, 0, 0, 3, 0, denied, 0);
	NETG_EXPECT_CTRS(L, C, 0, 0, 0, 0, CROSS(3 + denied), 0);
}

/*
 * Frames a host process sends on tap A with the tag inline, as the stack
 * writes it for a tap without tag offload (txvlan off): the access VID is
 * removed; another VID, or the access VID over an inner tag, is a segment
 * drop.
 */
TEST_F_TIMEOUT(tags, host_inline, 120)
{
	const struct netg_tag own[] = { NETG_Q(100) };
	const struct netg_tag other[] = { NETG_Q(200) };
	const struct netg_tag inner[] = { NETG_Q(100), NETG_Q(200) };
	uint8_t src[6];
	int fd;

	bind_all(_metadata, self);
	fd = netg_psock(NULL, PORT(A)->name);
	ASSERT_LE(0, fd) TH_LOG("packet socket on %s: %d", PORT(A)->name, fd);
	netg_mac(3, src);
	ASSERT_EQ(0, netg_psend_test(fd, netg_bcast, src, other, 1, 1));
	ASSERT_EQ(0, netg_psend_test(fd, netg_bcast, src, inner, 2, 2));
	ASSERT_EQ(0, netg_psend_test(fd, netg_bcast, src, own, 1, 3));
	EXPECT_EQ(1, GOT(PFD(A), 1));
	EXPECT_EQ(3U, self->pk[0].seq);
	EXPECT_UNTAGGED(1);
	close(fd);
	NETG_EXPECT_CTRS(L, A, 0, 0, 1, 0, 2, 0);
}

struct inject {
	const char *what;
	int ntags;
	struct netg_tag tags[2];
	uint16_t vid;		/* outer VID the event reports */
};

static const struct inject injects[] = {
	{ "802.1Q VID 5", 1, { NETG_Q(5) }, 5 },
	{ "802.1Q own VID 100", 1, { NETG_Q(100) }, 100 },
	{ "802.1Q other segment's VID 200", 1, { NETG_Q(200) }, 200 },
	{ "VLAN 0 priority tag (PCP 5)", 1, { NETG_Q(0xa000) }, 0 },
	{ "802.1ad VID 100", 1, { NETG_AD(100) }, 100 },
	{ "double 802.1Q 100 / 802.1Q 200", 2, { NETG_Q(100), NETG_Q(200) }, 100 },
	{ "double 802.1ad 100 / 802.1Q 100", 2, { NETG_AD(100), NETG_Q(100) }, 100 },
	{ "double 802.1Q 200 / 802.1Q 100", 2, { NETG_Q(200), NETG_Q(100) }, 200 },
};

TEST_F_TIMEOUT(tags, injected, 180)
{
	bind_all(_metadata, self);
	for (size_t k = 0; k < sizeof(injects) / sizeof(injects[0]); k++) {
		const struct inject *in = &injects[k];
		struct netg_event ev[4];
		int n;

		/* A new VM for A each time: events are rate-limited per VM. */
		if (k)
			ASSERT_EQ(0, netg_lab_vm(L, A, NETG_POLICY "100"));
		memg_drain(&L->sub);
		ASSERT_EQ(0, netg_send_test(PORT(A), netg_bcast, A, in->tags, in->ntags, k));
		/* An untagged frame after it shows when the path is drained. */
		ASSERT_EQ(0, netg_send_test(PORT(A), netg_bcast, A, NULL, 0, 1000 + k));
		EXPECT_EQ(1, GOT(UP(100), 1)) TH_LOG("%s", in->what);
		EXPECT_EQ(1000 + k, self->pk[0].seq) TH_LOG("%s reached VLAN 100", in->what);
		EXPECT_EQ(1, GOT(PFD(B), 1)) TH_LOG("%s", in->what);
		EXPECT_EQ(1000 + k, self->pk[0].seq) TH_LOG("%s reached B", in->what);
		EXPECT_EQ(1, GOT(UP(ALL), 1)) TH_LOG("%s", in->what);
		EXPECT_EQ(1000 + k, self->pk[0].seq) TH_LOG("%s reached the uplink", in->what);
		EXPECT_EQ(0, GOT(UP(200), 0)) TH_LOG("%s reached VLAN 200", in->what);
		EXPECT_EQ(0, GOT(PFD(C), 0)) TH_LOG("%s reached C", in->what);

		NETG_EXPECT_CTRS(L, A, 1, 1, 0, 1, 0, 0);
		n = netg_events(&L->sub, L->id[A], 1, 2000, ev, 4);
		ASSERT_EQ(1, n) TH_LOG("%s: no event", in->what);
		EXPECT_EQ(KVMGUARD_NET_RULE_TAG, ev[0].rule) TH_LOG("%s", in->what);
		EXPECT_EQ(KVMGUARD_NET_FROM_GUEST, ev[0].dir);
		EXPECT_EQ(KVMGUARD_ACTION_DENIED, ev[0].action);
		EXPECT_EQ(1ULL, ev[0].count);
		EXPECT_TRUE(ev[0].has_vid) TH_LOG("%s", in->what);
		EXPECT_EQ(in->vid, ev[0].vid) TH_LOG("%s", in->what);
		EXPECT_EQ((uint32_t)PORT(A)->ifindex, ev[0].ifindex);
		EXPECT_STREQ(PORT(A)->name, ev[0].ifname);
		EXPECT_STREQ(NETG_POLICY "100", ev[0].policy);
	}
	/* B and C saw A's untagged frames only: as many as there were VMs. */
	NETG_EXPECT_CTRS(L, B, 0, 0, sizeof(injects) / sizeof(injects[0]), 0, 0, 0);
	NETG_EXPECT_CTRS(L, C, 0, 0, 0, 0, CROSS(sizeof(injects) / sizeof(injects[0])), 0);
}

NETG_HARNESS_MAIN_SHARED(0, 3, vids)
