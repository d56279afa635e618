// SPDX-License-Identifier: GPL-2.0
/*
 * net_vhost: network rules on the vhost-net path, driven for real.
 *
 * The test process is a VMM: it creates a KVM VM and drives /dev/vhost-net
 * (vhostdrv.c: SET_OWNER, features, memory table, vrings, kick and call
 * eventfds) with a tap of netg's topology as backend of both queues, so
 * frames cross vhost-net's TX and RX rings. The topology (netg_topo_up):
 * a flat bridge (no VLAN filtering) with the taps and a veth uplink into a
 * network namespace, watched there with packet sockets (on the parent
 * device, tags put back from PACKET_AUXDATA, and on its VLAN 100 device);
 * frames toward the guest are sent from the uplink's parent device.
 *
 *   bound_by_vhost     attaching the tap binds it to the VM (VM_GET:
 *                      NET_DEVS lists it, BOUND_BY VHOST); without a rule
 *                      frames pass untagged both ways.
 *   tag_100            policy `net tag 100` set on the running VM: frames
 *                      from the TX ring leave tagged 100; frames tagged 100
 *                      reach the RX ring untagged; VID 200 and untagged
 *                      frames do not; guest-injected 802.1Q (VID 5, 100),
 *                      802.1ad, double-tagged and VID 0 frames are dropped;
 *                      the counters are exact, phase by phase.
 *   detach_and_close   the binding is the VM's: detaching one queue, both,
 *                      attaching again, closing the vhost fd keep it;
 *                      destroying the VM ends it.
 *   counters_across_rebind  the port's counters go on across a
 *                      detach/attach of the backend and across NET_UNBIND
 *                      followed by the VMM's attach, which binds it again.
 *   refuse_no_vm       a process with no VM, none in its ancestry (an
 *                      orphaned grandchild sharing the tap fd), cannot
 *                      attach the bound tap: SET_BACKEND fails; the
 *                      binding is unchanged.
 *   refuse_other_vm    a tap bound by NET_BIND to another process's VM
 *                      cannot be attached by this VM's process; after
 *                      NET_UNBIND it can, and is then bound to this VM.
 *   multiqueue         a multiqueue tap with one vhost-net file per queue,
 *                      as a multiqueue VMM has: one binding, which lasts
 *                      after the last file let its queue go, until the
 *                      device goes. A queue detached with TUNSETQUEUE is
 *                      still the tap's (it can be attached again): taken,
 *                      same binding. A tun file that has no device is
 *                      refused as a backend.
 *
 * Needs /dev/kvm, /dev/vhost-net, the module and iproute2; exits 4 (SKIP)
 * without.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <linux/if_tun.h>

#include "kselftest_harness.h"
#include "kg.h"
#include "kid.h"
#include "netg.h"
#include "vm.h"
#include "vhostdrv.h"

#define PFX	NETG_POLICY "vh-"	/* policies */
#define WAIT_MS	1000
#define GUEST	0			/* netg MAC index of the guest */
#define PEER	3			/* ... and of the uplink side */

static int match_ours(const unsigned char *f, size_t len, void *arg)
{
	struct netg_pkt *p = arg;

	return netg_parse(f, len, p) && p->ours;
}

/* Next test frame in the RX ring within WAIT_MS: 0, or -1 if none came. */
static int guest_recv(struct vhd *d, struct netg_pkt *p)
{
	unsigned char buf[VHD_BUFSZ];

	return vhd_rx_wait(d, match_ours, p, buf, sizeof(buf), WAIT_MS) < 0 ? -1 : 0;
}

/* Next test frame at the uplink (tags as on the wire): 0 or -1. */
static int uplink_recv(int fd, struct netg_pkt *p)
{
	return netg_collect(fd, 1, WAIT_MS, p, 1) == 1 ? 0 : -1;
}

/* A tap of the topology made fit for vhost-net (12-byte vnet header). */
static int vhost_tap(struct netg_port *port)
{
	int hdrsz = VHD_HDRSZ;

	return ioctl(port->fd, TUNSETVNETHDRSZ, &hdrsz) ? -errno : 0;
}

FIXTURE(nv) {
	struct gnl g;
	struct netg_topo t;
	struct vm vm;
	uint64_t vm_id;
	struct vhd d;
};

FIXTURE_SETUP(nv)
{
	self->vm.fd = -1;
	self->d.vfd = -1;
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, PFX);
	ASSERT_EQ(0, netg_topo_up(&self->t, NETG_PORT_VNET, 2, NULL));
	ASSERT_EQ(0, vhost_tap(&self->t.port[0]));
	ASSERT_EQ(0, vhost_tap(&self->t.port[1]));
	ASSERT_EQ(0, netg_vm(&self->g, &self->vm, NULL, &self->vm_id));
	ASSERT_EQ(0, vhd_open(&self->d));
	ASSERT_EQ(0, vhd_attach(&self->d, self->t.port[0].fd));
	/* Bridge ports forward at once (no STP, forward_delay 0). */
	usleep(100000);
	netg_flush(self->t.up[NETG_UP_ALL]);
}

FIXTURE_TEARDOWN(nv)
{
	vhd_close(&self->d);
	if (self->vm.fd >= 0)
		vm_destroy(&self->vm);
	netg_topo_down(&self->t);
	kg_cleanup(&self->g, PFX);
	gnl_close(&self->g);
}

#define TAP(self) ((self)->t.port[0].name)

/* Is @ifname bound to VM @id (by @bound_by unless < 0)? */
static bool bound(struct gnl *g, uint64_t id, const char *ifname, int bound_by)
{
	struct netg_dev d;

	return !netg_dev(g, id, ifname, &d) && (bound_by < 0 || d.bound_by == bound_by);
}

/* Wait up to 2 s for @ifname to be bound (@want) or not to VM @id. */
static bool wait_bound(struct gnl *g, uint64_t id, const char *ifname, bool want)
{
	for (int i = 0; i < 200; i++) {
		if (bound(g, id, ifname, -1) == want)
			return true;
		usleep(10000);
	}
	return false;
}

/* Test frame @seq from the guest's TX ring, broadcast, with @tags. */
static int guest_send(struct vhd *d, const struct netg_tag *tags, int ntags,
		      uint32_t seq)
{
	uint8_t f[128], src[6];

	netg_mac(GUEST, src);
	return vhd_tx_sync(d, f, netg_frame(f, netg_bcast, src, tags, ntags, seq),
			   WAIT_MS);
}

/* Test frame @seq from the uplink toward the guest, tagged @vid (0: not). */
static int toward_guest(struct netg_topo *t, uint16_t vid, uint32_t seq)
{
	uint8_t dst[6], src[6];

	netg_mac(GUEST, dst);
	netg_mac(PEER, src);
	return netg_psend_test(t->up[NETG_UP_ALL], dst, src, &NETG_Q(vid), vid ? 1 : 0,
			       seq);
}

TEST_F(nv, bound_by_vhost)
{
	struct netg_dev nd;
	struct netg_pkt p;

	ASSERT_EQ(0, netg_dev(&self->g, self->vm_id, TAP(self), &nd))
		TH_LOG("VM_GET does not list %s after SET_BACKEND", TAP(self));
	EXPECT_EQ(self->t.port[0].ifindex, (int)nd.ifindex);
	EXPECT_EQ(KVMGUARD_NET_BOUND_VHOST, nd.bound_by);
	EXPECT_EQ(1, netg_devs(&self->g, self->vm_id, &nd, 1));

	/* No network rule: both ways untagged, as without kvmguard. */
	ASSERT_EQ(0, guest_send(&self->d, NULL, 0, 1));
	ASSERT_EQ(0, uplink_recv(self->t.up[NETG_UP_ALL], &p));
	EXPECT_EQ(1u, p.seq);
	EXPECT_EQ(0, p.ntags);
	ASSERT_EQ(0, toward_guest(&self->t, 0, 2));
	ASSERT_EQ(0, guest_recv(&self->d, &p));
	EXPECT_EQ(2u, p.seq);
	EXPECT_EQ(0, p.ntags);
}

/* Counters of the tap on the fixture's VM. */
static struct netg_dev port_counters(struct __test_metadata *_metadata,
				     FIXTURE_DATA(nv) *self)
{
	struct netg_dev d = { 0 };

	EXPECT_EQ(0, netg_dev(&self->g, self->vm_id, TAP(self), &d))
		TH_LOG("%s is not the VM's port", TAP(self));
	return d;
}

#define EXPECT_DELTA(n, field)						\
	EXPECT_EQ((uint64_t)(n), now.field - before.field)		\
		TH_LOG(#field ": %llu -> %llu",				\
		       (unsigned long long)before.field,		\
		       (unsigned long long)now.field)

TEST_F(nv, tag_100)
{
	struct netg_dev before, now;
	struct netg_pkt p;
	uint32_t seq;

	ASSERT_EQ(0, netg_policy_new(&self->g, PFX "tag", .tag = 100));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->vm_id, PFX "tag"));

	/* From the guest, untagged: leaves the host tagged 100. */
	before = port_counters(_metadata, self);
	for (seq = 10; seq < 15; seq++) {
		ASSERT_EQ(0, guest_send(&self->d, NULL, 0, seq));
		ASSERT_EQ(0, uplink_recv(self->t.up[NETG_UP_ALL], &p))
			TH_LOG("frame %u did not reach the uplink", seq);
		EXPECT_EQ(seq, p.seq);
		EXPECT_EQ(1, p.ntags);
		EXPECT_EQ(ETH_Q, p.tags[0].tpid);
		EXPECT_EQ(100, p.tags[0].tci & 0xfff);
		ASSERT_EQ(0, uplink_recv(self->t.up[NETG_UP_100], &p))
			TH_LOG("frame %u did not reach the uplink's VLAN 100", seq);
		EXPECT_EQ(seq, p.seq);
	}
	now = port_counters(_metadata, self);
	EXPECT_DELTA(5, tagged);
	EXPECT_DELTA(5, forwarded);
	EXPECT_DELTA(0, tag_denied);
	EXPECT_DELTA(0, segment_denied);
	EXPECT_DELTA(0, delivered);

	/* Toward the guest: 100 arrives untagged, 200 and untagged do not. */
	before = now;
	ASSERT_EQ(0, toward_guest(&self->t, 100, 20));
	ASSERT_EQ(0, guest_recv(&self->d, &p));
	EXPECT_EQ(20u, p.seq);
	EXPECT_EQ(0, p.ntags);
	ASSERT_EQ(0, toward_guest(&self->t, 200, 21));
	ASSERT_EQ(0, toward_guest(&self->t, 0, 22));
	ASSERT_EQ(0, toward_guest(&self->t, 100, 23));
	/* Same path, in order: 23 first means 21 and 22 were dropped. */
	ASSERT_EQ(0, guest_recv(&self->d, &p));
	EXPECT_EQ(23u, p.seq);
	EXPECT_EQ(0, p.ntags);
	now = port_counters(_metadata, self);
	EXPECT_DELTA(2, delivered);
	EXPECT_DELTA(2, segment_denied);
	EXPECT_DELTA(0, tagged);
	EXPECT_DELTA(0, forwarded);

	/* Guest-injected tags: dropped; an untagged frame after them passes. */
	before = now;
	netg_flush(self->t.up[NETG_UP_ALL]);
	ASSERT_EQ(0, guest_send(&self->d, &NETG_Q(5), 1, 30));
	ASSERT_EQ(0, guest_send(&self->d, &NETG_Q(100), 1, 31));
	ASSERT_EQ(0, guest_send(&self->d, &NETG_AD(100), 1, 32));
	ASSERT_EQ(0, guest_send(&self->d, (struct netg_tag[]){ NETG_Q(100), NETG_Q(5) },
				2, 33));
	ASSERT_EQ(0, guest_send(&self->d, &NETG_Q(0), 1, 34));
	ASSERT_EQ(0, guest_send(&self->d, NULL, 0, 35));
	ASSERT_EQ(0, uplink_recv(self->t.up[NETG_UP_ALL], &p));
	EXPECT_EQ(35u, p.seq) TH_LOG("guest-injected frame %u reached the uplink", p.seq);
	EXPECT_EQ(1, p.ntags);
	EXPECT_EQ(100, p.tags[0].tci & 0xfff);
	now = port_counters(_metadata, self);
	EXPECT_DELTA(5, tag_denied);
	EXPECT_DELTA(1, tagged);
	EXPECT_DELTA(1, forwarded);
	EXPECT_DELTA(0, segment_denied);
	EXPECT_DELTA(0, delivered);
	EXPECT_DELTA(0, isolate_denied);
	EXPECT_EQ(KVMGUARD_NET_BOUND_VHOST, now.bound_by);
}

TEST_F(nv, detach_and_close)
{
	ASSERT_TRUE(wait_bound(&self->g, self->vm_id, TAP(self), true));
	/* The binding is the VM's: letting go of the backend keeps it. */
	ASSERT_EQ(0, vhd_set_backend(&self->d, VHD_RX, -1));
	EXPECT_TRUE(bound(&self->g, self->vm_id, TAP(self), KVMGUARD_NET_BOUND_VHOST));
	ASSERT_EQ(0, vhd_set_backend(&self->d, VHD_TX, -1));
	usleep(100000);
	EXPECT_TRUE(bound(&self->g, self->vm_id, TAP(self), KVMGUARD_NET_BOUND_VHOST))
		TH_LOG("detaching both queues unbound %s", TAP(self));

	ASSERT_EQ(0, vhd_attach(&self->d, self->t.port[0].fd));
	EXPECT_TRUE(bound(&self->g, self->vm_id, TAP(self), KVMGUARD_NET_BOUND_VHOST));

	vhd_close(&self->d);
	usleep(100000);
	EXPECT_TRUE(bound(&self->g, self->vm_id, TAP(self), KVMGUARD_NET_BOUND_VHOST))
		TH_LOG("closing /dev/vhost-net unbound %s", TAP(self));

	/* It ends with the VM. */
	vm_destroy(&self->vm);
	self->vm.fd = -1;
	EXPECT_TRUE(wait_bound(&self->g, self->vm_id, TAP(self), false))
		TH_LOG("destroying the VM left %s bound", TAP(self));
}

/*
 * The port's counters are the (VM, device) pair's: they go on across a
 * detach and attach of the backend (QEMU's stop/cont) and across an
 * unbind (NET_UNBIND) after which the VMM's attach binds the tap again.
 */
TEST_F(nv, counters_across_rebind)
{
	struct netg_dev now;
	struct netg_pkt p;
	uint32_t seq;

	ASSERT_EQ(0, netg_policy_new(&self->g, PFX "tag", .tag = 100));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->vm_id, PFX "tag"));
	for (seq = 40; seq < 43; seq++) {
		ASSERT_EQ(0, guest_send(&self->d, NULL, 0, seq));
		ASSERT_EQ(0, uplink_recv(self->t.up[NETG_UP_100], &p));
	}
	now = port_counters(_metadata, self);
	EXPECT_EQ(3ULL, now.tagged);

	/* stop / cont */
	ASSERT_EQ(0, vhd_set_backend(&self->d, VHD_RX, -1));
	ASSERT_EQ(0, vhd_set_backend(&self->d, VHD_TX, -1));
	ASSERT_EQ(0, vhd_attach(&self->d, self->t.port[0].fd));
	ASSERT_TRUE(wait_bound(&self->g, self->vm_id, TAP(self), true));
	now = port_counters(_metadata, self);
	EXPECT_EQ(3ULL, now.tagged) TH_LOG("counters restarted after detach/attach");

	/* Unbound, then bound again by the VMM's attach. */
	ASSERT_EQ(0, netg_unbind(&self->g, TAP(self), 0));
	ASSERT_EQ(0, vhd_set_backend(&self->d, VHD_RX, -1));
	ASSERT_EQ(0, vhd_set_backend(&self->d, VHD_TX, -1));
	ASSERT_EQ(0, vhd_attach(&self->d, self->t.port[0].fd));
	ASSERT_TRUE(wait_bound(&self->g, self->vm_id, TAP(self), true));
	now = port_counters(_metadata, self);
	EXPECT_EQ(KVMGUARD_NET_BOUND_VHOST, now.bound_by);
	EXPECT_EQ(3ULL, now.tagged) TH_LOG("counters restarted after a rebind");
	EXPECT_EQ(3ULL, now.forwarded);
	netg_flush(self->t.up[NETG_UP_100]);
	for (seq = 43; seq < 45; seq++) {
		ASSERT_EQ(0, guest_send(&self->d, NULL, 0, seq));
		ASSERT_EQ(0, uplink_recv(self->t.up[NETG_UP_100], &p));
	}
	now = port_counters(_metadata, self);
	EXPECT_EQ(5ULL, now.tagged);
	EXPECT_EQ(5ULL, now.forwarded);
}

TEST_F(nv, refuse_no_vm)
{
	int fds[2], status;
	pid_t pid;
	char c = 0;

	ASSERT_TRUE(wait_bound(&self->g, self->vm_id, TAP(self), true));
	ASSERT_EQ(0, pipe(fds));
	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/*
		 * A child of the VMM would be the VMM (net_escape): its child,
		 * orphaned, is a process with no VM in its ancestry. It
		 * shares the tap fd.
		 */
		pid_t parent = getpid();
		struct vhd d = { .vfd = -1 };
		int err;

		close(fds[0]);
		if (fork() != 0)
			_exit(0);
		for (int i = 0; i < 500 && getppid() == parent; i++)
			usleep(10000);
		err = vhd_open(&d);
		if (err) {
			printf("# orphan: vhost-net: %s\n", strerror(-err));
			c = 'e';
		} else {
			err = vhd_set_backend(&d, VHD_TX, self->t.port[0].fd);
			c = err ? 'r' : 'a';
		}
		vhd_close(&d);
		if (write(fds[1], &c, 1) != 1)
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(1, read(fds[0], &c, 1));
	close(fds[0]);
	EXPECT_EQ('r', c) TH_LOG("a process without a VM attached the bound %s (%c)",
				 TAP(self), c);
	EXPECT_TRUE(bound(&self->g, self->vm_id, TAP(self), KVMGUARD_NET_BOUND_VHOST));
}

TEST_F(nv, refuse_other_vm)
{
	const char *tap2 = self->t.port[1].name;
	int fd2 = self->t.port[1].fd;
	struct vhd d2 = { .vfd = -1 };
	struct kg_vm other;
	struct kid k;
	uint64_t last;
	int err;

	last = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, kid_start(&k, NULL, "kgn-vh-kid"));
	ASSERT_EQ(0, kid_create_vm(&k, 0));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, k.pid, last, &other));

	ASSERT_EQ(0, netg_bind(&self->g, other.id, tap2, 0));
	EXPECT_TRUE(bound(&self->g, other.id, tap2, KVMGUARD_NET_BOUND_MANUAL));

	ASSERT_EQ(0, vhd_open(&d2));
	err = vhd_set_backend(&d2, VHD_TX, fd2);
	EXPECT_NE(0, err) TH_LOG("a VM's process attached a tap bound to another VM");
	EXPECT_TRUE(bound(&self->g, other.id, tap2, KVMGUARD_NET_BOUND_MANUAL));
	EXPECT_FALSE(bound(&self->g, self->vm_id, tap2, -1));

	/* Unbound, it is free to take: it becomes this VM's port. */
	if (err) {
		ASSERT_EQ(0, netg_unbind(&self->g, tap2, 0));
		EXPECT_FALSE(bound(&self->g, other.id, tap2, -1));
		EXPECT_EQ(0, vhd_set_backend(&d2, VHD_TX, fd2));
		EXPECT_TRUE(bound(&self->g, self->vm_id, tap2, KVMGUARD_NET_BOUND_VHOST));
	}
	vhd_close(&d2);
	EXPECT_EQ(0, kid_stop(&k));
}

TEST_F(nv, multiqueue)
{
	const char *mq = NETG_PREFIX "mq";
	struct vhd d1 = { .vfd = -1 }, d2 = { .vfd = -1 }, d3 = { .vfd = -1 };
	struct ifreq ifr = { .ifr_flags = IFF_DETACH_QUEUE };
	int q1, q2, nodev, err;

	q1 = vhd_tap_open(mq, IFF_MULTI_QUEUE);
	ASSERT_LE(0, q1) TH_LOG("multiqueue tap %s: %s", mq, strerror(-q1));
	q2 = vhd_tap_open(mq, IFF_MULTI_QUEUE);
	ASSERT_LE(0, q2) TH_LOG("second queue of %s: %s", mq, strerror(-q2));
	ASSERT_EQ(0, vhd_if_up(mq));

	ASSERT_EQ(0, vhd_open(&d1));
	ASSERT_EQ(0, vhd_open(&d2));
	ASSERT_EQ(0, vhd_attach(&d1, q1));
	ASSERT_EQ(0, vhd_attach(&d2, q2));
	EXPECT_TRUE(wait_bound(&self->g, self->vm_id, mq, true));
	EXPECT_TRUE(bound(&self->g, self->vm_id, mq, KVMGUARD_NET_BOUND_VHOST));

	/* The other queue's file still has the device. */
	vhd_close(&d1);
	usleep(100000);
	EXPECT_TRUE(bound(&self->g, self->vm_id, mq, KVMGUARD_NET_BOUND_VHOST))
		TH_LOG("closing one queue's vhost-net file unbound %s", mq);

	/* A detached queue is still the tap's: the same binding. */
	ASSERT_EQ(0, ioctl(q1, TUNSETQUEUE, &ifr)) TH_LOG("IFF_DETACH_QUEUE: %s",
							   strerror(errno));
	ASSERT_EQ(0, vhd_open(&d3));
	EXPECT_EQ(0, vhd_set_backend(&d3, VHD_TX, q1));
	EXPECT_TRUE(bound(&self->g, self->vm_id, mq, KVMGUARD_NET_BOUND_VHOST));

	/* A tun file with no device: nothing to bind, refused. */
	nodev = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, nodev);
	err = vhd_set_backend(&d3, VHD_RX, nodev);
	EXPECT_NE(0, err) TH_LOG("a tun file with no device was taken as a backend");
	close(nodev);

	vhd_close(&d2);
	usleep(100000);
	EXPECT_TRUE(bound(&self->g, self->vm_id, mq, KVMGUARD_NET_BOUND_VHOST))
		TH_LOG("the detached queue's vhost-net file lost %s", mq);
	vhd_close(&d3);
	usleep(100000);
	EXPECT_TRUE(bound(&self->g, self->vm_id, mq, KVMGUARD_NET_BOUND_VHOST))
		TH_LOG("closing the last queue's vhost-net file unbound %s", mq);
	/* The device goes with its last queue: so does the binding. */
	close(q1);
	close(q2);
	EXPECT_TRUE(wait_bound(&self->g, self->vm_id, mq, false))
		TH_LOG("%s is gone and still bound", mq);
}

static void __attribute__((constructor)) __constructor_order_last(void)
{
	if (!__constructor_order)
		__constructor_order = _CONSTRUCTOR_ORDER_BACKWARD;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (access("/dev/vhost-net", R_OK | W_OK)) {
		printf("TAP version 13\n1..0 # SKIP /dev/vhost-net is not usable\n");
		return 4;
	}
	kg_prereq(KG_NEED_KVM | KG_NEED_MODULE);
	netg_prereq_or_skip();
	return test_harness_run(argc, argv);
}
