// SPDX-License-Identifier: GPL-2.0
/*
 * net_escape: the roads a VMM takes to keep its vhost-net port unbound
 * (issue 14 item 1, issue 15), each driven as the attacker drives it.
 *
 * The test process is the VMM (as in net_vhost): a KVM VM whose policy
 * says `net tag 100`, /dev/vhost-net with a tap of netg's flat bridge as
 * backend, the uplink watched in its namespace (all frames, and its VLAN
 * 100 and 200 devices). An escape is a frame of the VMM that reaches the
 * uplink untagged or with a VID other than 100.
 *
 *   backend_before_vm  the backend is attached before KVM_CREATE_VM: the
 *                      tap is bound once the VM appears; TX-ring frames
 *                      leave tagged 100.
 *   forked_helper      a child forked by the VMM (its own mm, no VM) opens
 *                      /dev/vhost-net, becomes its owner and attaches the
 *                      tap: bound to the VM of the process that forked it;
 *                      its TX-ring frames leave tagged 100.
 *   vm_recreated       the VM is destroyed and a new one created while the
 *                      backend stays attached: the tap is the new VM's.
 *   vm_overlap         a second VM created first, then the first destroyed:
 *                      the tap goes over to the second VM.
 *   detached           SET_BACKEND fd -1 on both queues (what QEMU does on
 *                      HMP `stop`), then frames written straight into the
 *                      tap fd: VID 200 is dropped and counted, untagged
 *                      leaves tagged 100; the binding and its counters
 *                      stay, and stay across attaching again (`cont`).
 *   reset_owner        VHOST_RESET_OWNER, then the same.
 *   closed             /dev/vhost-net closed, then the same.
 *   vm_destroyed       the VM destroyed while the VMM keeps the tap fd:
 *                      nothing it writes reaches the uplink (the port is
 *                      closed, not free), until the tap goes.
 *   netns_round_trip   the tap moved to the uplink's netns and back: still
 *                      the VM's (bound by vhost), TX-ring frames tagged
 *                      100; then the backend detached and the VM destroyed:
 *                      the port is closed as in vm_destroyed (vhost.c kept
 *                      whom it serves across the move).
 *   vm_gone_away       the VM destroyed while the tap is in the other
 *                      netns: closed there (the kernel log says so, the
 *                      tap is down and `ip link set up` is refused there);
 *                      moved back, still closed: down, refused up and
 *                      refused as a bridge port, nothing written reaches
 *                      the uplink. No WARN, no oops.
 *   closed_down        the VM destroyed while the backend stays attached:
 *                      the port is closed per device (issue 14's bench
 *                      regression: no netfilter hook, whose switches are
 *                      global): the tap goes down, `ip link set up` is
 *                      refused with kvmguard's message, neither TX-ring
 *                      frames nor writes reach the uplink; a new VM of the
 *                      VMM opens it: bound, up again, frames tagged 100.
 *   closed_was_down    the same with a tap the VMM had set down itself:
 *                      closed, and left down when it opens (kvmguard
 *                      brings up only what it brought down).
 *   no_rule_let_go     a VM with no network rule (and none for its VMM's
 *                      next VM) destroyed while the VMM keeps the tap: the
 *                      VMM had no segment to escape, so the port is not
 *                      closed: up, unbound, its frames pass untagged as
 *                      before; detached, then a new VM with `net tag 100`
 *                      created: the tap is that VM's, writes tagged 100.
 *
 * Needs /dev/kvm, /dev/vhost-net, the module and iproute2; exits 4 (SKIP)
 * without.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <linux/vhost.h>

#include "kselftest_harness.h"
#include "kg.h"
#include "netg.h"
#include "vm.h"
#include "vhostdrv.h"

#define PFX	NETG_POLICY "esc-"	/* policies */
#define POLICY	PFX "100"
#define WAIT_MS	1000
#define NEG_MS	500			/* how long "nothing came" waits */
#define GUEST	0			/* netg MAC index of the guest */

FIXTURE(esc) {
	struct gnl g;
	struct netg_topo t;
	struct vm vm, vm2;
	uint64_t vm_id, vm2_id;
	struct vhd d;
	uint32_t seq;
	pid_t helper;			/* forked_helper's child, until reaped */
};

/* A tap of the topology made fit for vhost-net (12-byte vnet header). */
static int vhost_tap(struct netg_port *port)
{
	int hdrsz = VHD_HDRSZ;

	return ioctl(port->fd, TUNSETVNETHDRSZ, &hdrsz) ? -errno : 0;
}

FIXTURE_SETUP(esc)
{
	self->vm.fd = -1;
	self->vm2.fd = -1;
	/*
	 * Closed, every fd of it: vhd_close() in the teardown closes what is
	 * not -1, and a test that never opens it (forked_helper) would close
	 * fd 0. The next kg_run() then gets fd 0 for its memfd, dup2(0, 0)
	 * keeps it close-on-exec, and `ip -batch -` finds its own netlink
	 * socket on stdin and reads it forever.
	 */
	self->d.vfd = -1;
	for (int i = 0; i < 2; i++)
		self->d.vq[i].kick = self->d.vq[i].call = -1;
	self->seq = 1;
	self->helper = -1;
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, PFX);
	ASSERT_EQ(0, netg_topo_up(&self->t, NETG_PORT_VNET, 1, NULL));
	ASSERT_EQ(0, vhost_tap(&self->t.port[0]));
	ASSERT_EQ(0, netg_policy_new(&self->g, POLICY, .tag = 100));
	usleep(100000);
	netg_flush(self->t.up[NETG_UP_ALL]);
}

FIXTURE_TEARDOWN(esc)
{
	/* A helper left by a failed assertion holds the tap and vhost-net. */
	if (self->helper > 0) {
		kill(self->helper, SIGKILL);
		waitpid(self->helper, NULL, 0);
		self->helper = -1;
	}
	vhd_close(&self->d);
	if (self->vm.fd >= 0)
		vm_destroy(&self->vm);
	if (self->vm2.fd >= 0)
		vm_destroy(&self->vm2);
	netg_topo_down(&self->t);
	kg_cleanup(&self->g, PFX);
	gnl_close(&self->g);
}

#define TAP(self) ((self)->t.port[0].name)
#define UP(self, k) ((self)->t.up[NETG_UP_##k])

/* Is the tap bound to VM @id by vhost? */
static bool bound(struct gnl *g, uint64_t id, const char *ifname)
{
	struct netg_dev d;

	return !netg_dev(g, id, ifname, &d) && d.bound_by == KVMGUARD_NET_BOUND_VHOST;
}

/* Wait up to 2 s for the tap to be bound (@want) or not to VM @id. */
static bool wait_bound(struct gnl *g, uint64_t id, const char *ifname, bool want)
{
	for (int i = 0; i < 200; i++) {
		if (bound(g, id, ifname) == want)
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

/* Test frame @seq written straight into the tap fd (12-byte vnet header). */
static int tap_write(int fd, const struct netg_tag *tags, int ntags, uint32_t seq)
{
	uint8_t f[VHD_HDRSZ + 128], src[6];
	size_t len;
	ssize_t n;

	netg_mac(GUEST, src);
	memset(f, 0, VHD_HDRSZ);
	len = VHD_HDRSZ + netg_frame(f + VHD_HDRSZ, netg_bcast, src, tags, ntags, seq);
	n = write(fd, f, len);
	if (n < 0)
		return -errno;
	return n == (ssize_t)len ? 0 : -EIO;
}

/*
 * What the uplink saw of frame @seq: its VID, 0 untagged, -1 nothing
 * within @ms. Other frames (earlier ones, the host's own) are skipped.
 */
static int uplink_vid(struct netg_topo *t, uint32_t seq, int ms)
{
	struct netg_pkt p[8];
	int n;

	for (int round = 0; round < 4; round++) {
		n = netg_collect(t->up[NETG_UP_ALL], 1, ms / 4 + 1, p, 8);
		for (int i = 0; i < n; i++) {
			if (p[i].seq != seq)
				continue;
			if (!p[i].ntags)
				return 0;
			return p[i].tags[0].tci & 0xfff;
		}
	}
	return -1;
}

/*
 * Wait up to 2 s for @ifname, if it is a bridge port, to forward: a port
 * that comes up again (a closed port opening) does once the link watch
 * saw it.
 */
static void wait_forwarding(const char *ifname)
{
	char path[128], buf[16];

	snprintf(path, sizeof(path), "/sys/class/net/%s/brport/state", ifname);
	for (int i = 0; i < 200; i++) {
		FILE *f = fopen(path, "r");
		bool fwd;

		if (!f)
			return;
		fwd = fgets(buf, sizeof(buf), f) && atoi(buf) == 3;
		fclose(f);
		if (fwd)
			return;
		usleep(10000);
	}
}

/* The guest's untagged frame leaves tagged 100. */
#define EXPECT_GUEST_TAGGED(self) do {					\
	uint32_t __s = (self)->seq++;					\
	wait_forwarding(TAP(self));					\
	netg_flush(UP(self, ALL));					\
	ASSERT_EQ(0, guest_send(&(self)->d, NULL, 0, __s));		\
	EXPECT_EQ(100, uplink_vid(&(self)->t, __s, WAIT_MS))		\
		TH_LOG("the guest's frame %u escaped its VLAN", __s);	\
} while (0)

/*
 * Frames written into the tap fd (a VMM doing virtio itself): VID 200 must
 * not reach the uplink; untagged must leave tagged @vid (-1: not at all;
 * the write may then fail with EIO, as tun refuses it on a down tap).
 */
#define EXPECT_TAP_WRITES(self, vid) do {				\
	const struct netg_tag __t200 = NETG_Q(200);			\
	uint32_t __s = (self)->seq++;					\
	int __e;							\
	netg_flush(UP(self, ALL));					\
	netg_flush(UP(self, 200));					\
	__e = tap_write((self)->t.port[0].fd, &__t200, 1, __s);		\
	ASSERT_TRUE(!__e || ((vid) < 0 && __e == -EIO)) TH_LOG("write: %d", __e); \
	EXPECT_EQ(-1, uplink_vid(&(self)->t, __s, NEG_MS))		\
		TH_LOG("a VID 200 frame written into the tap escaped");	\
	__s = (self)->seq++;						\
	__e = tap_write((self)->t.port[0].fd, NULL, 0, __s);		\
	ASSERT_TRUE(!__e || ((vid) < 0 && __e == -EIO)) TH_LOG("write: %d", __e); \
	EXPECT_EQ((vid), uplink_vid(&(self)->t, __s, (vid) < 0 ? NEG_MS : WAIT_MS)) \
		TH_LOG("an untagged frame written into the tap escaped"); \
} while (0)

static uint64_t port_ctr(struct gnl *g, uint64_t id, const char *ifname,
			 bool denied)
{
	struct netg_dev d = { 0 };

	if (netg_dev(g, id, ifname, &d))
		return 0;
	return denied ? d.tag_denied + d.segment_denied : d.tagged;
}

TEST_F(esc, backend_before_vm)
{
	ASSERT_EQ(0, vhd_open(&self->d));
	ASSERT_EQ(0, vhd_attach(&self->d, self->t.port[0].fd));
	ASSERT_EQ(0, netg_vm(&self->g, &self->vm, POLICY, &self->vm_id));
	EXPECT_TRUE(wait_bound(&self->g, self->vm_id, TAP(self), true))
		TH_LOG("a backend attached before KVM_CREATE_VM left %s unbound",
		       TAP(self));
	EXPECT_GUEST_TAGGED(self);
}

TEST_F(esc, forked_helper)
{
	int go[2], done[2], status, err;
	uint8_t f[128], src[6];
	uint32_t s = 77;
	size_t flen;
	pid_t pid;
	char c;

	/* Made here: the test cookie in a frame is per process. */
	netg_mac(GUEST, src);
	flen = netg_frame(f, netg_bcast, src, NULL, 0, s);
	ASSERT_EQ(0, netg_vm(&self->g, &self->vm, POLICY, &self->vm_id));
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* Its own mm, no VM; it shares the tap fd with the VMM. */
		struct vhd d;

		/* Dies with the test, whatever becomes of it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);

		/* It keeps the tap fd and its pipes, nothing else of the VMM's. */
		for (int fd = 3; fd < 1024; fd++)
			if (fd != self->t.port[0].fd && fd != go[0] && fd != done[1])
				close(fd);
		err = vhd_open(&d);
		if (!err)
			err = vhd_attach(&d, self->t.port[0].fd);
		if (err) {
			printf("# helper: vhost-net: %s\n", strerror(-err));
			c = 'e';
		} else {
			c = 'a';
		}
		if (write(done[1], &c, 1) != 1)
			_exit(3);
		/* Wait for the go, send one frame, report, wait to be told. */
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		if (!err)
			err = vhd_tx_sync(&d, f, flen, WAIT_MS);
		c = err ? 'e' : 's';
		if (write(done[1], &c, 1) != 1)
			_exit(3);
		if (read(go[0], &c, 1) < 0)
			_exit(3);
		vhd_close(&d);
		_exit(err ? 2 : 0);
	}
	self->helper = pid;
	close(go[0]);
	close(done[1]);
	ASSERT_EQ(1, read(done[0], &c, 1));
	EXPECT_EQ('a', c);
	EXPECT_TRUE(wait_bound(&self->g, self->vm_id, TAP(self), true))
		TH_LOG("a helper the VMM forked attached %s unbound", TAP(self));
	netg_flush(UP(self, ALL));
	ASSERT_EQ(1, write(go[1], "g", 1));
	ASSERT_EQ(1, read(done[0], &c, 1));
	EXPECT_EQ('s', c);
	EXPECT_EQ(100, uplink_vid(&self->t, s, WAIT_MS))
		TH_LOG("the helper's frame escaped the VM's VLAN");
	ASSERT_EQ(1, write(go[1], "q", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	self->helper = -1;
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(go[1]);
	close(done[0]);
}

TEST_F(esc, vm_recreated)
{
	ASSERT_EQ(0, netg_vm(&self->g, &self->vm, POLICY, &self->vm_id));
	ASSERT_EQ(0, vhd_open(&self->d));
	ASSERT_EQ(0, vhd_attach(&self->d, self->t.port[0].fd));
	ASSERT_TRUE(wait_bound(&self->g, self->vm_id, TAP(self), true));
	EXPECT_GUEST_TAGGED(self);

	vm_destroy(&self->vm);
	self->vm.fd = -1;
	ASSERT_EQ(0, netg_vm(&self->g, &self->vm, POLICY, &self->vm_id));
	EXPECT_TRUE(wait_bound(&self->g, self->vm_id, TAP(self), true))
		TH_LOG("the re-created VM did not get the kept backend %s", TAP(self));
	EXPECT_GUEST_TAGGED(self);
}

TEST_F(esc, vm_overlap)
{
	ASSERT_EQ(0, netg_vm(&self->g, &self->vm, POLICY, &self->vm_id));
	ASSERT_EQ(0, vhd_open(&self->d));
	ASSERT_EQ(0, vhd_attach(&self->d, self->t.port[0].fd));
	ASSERT_TRUE(wait_bound(&self->g, self->vm_id, TAP(self), true));

	ASSERT_EQ(0, netg_vm(&self->g, &self->vm2, POLICY, &self->vm2_id));
	vm_destroy(&self->vm);
	self->vm.fd = -1;
	EXPECT_TRUE(wait_bound(&self->g, self->vm2_id, TAP(self), true))
		TH_LOG("the VMM's remaining VM did not get %s", TAP(self));
	EXPECT_GUEST_TAGGED(self);
}

/* Bound, counting; then @how lets go of the backend; then the tap fd. */
enum road { DETACH, RESET, CLOSE };

static void let_go(struct __test_metadata *_metadata, FIXTURE_DATA(esc) *self,
		   enum road how)
{
	uint64_t tagged, denied;

	ASSERT_EQ(0, netg_vm(&self->g, &self->vm, POLICY, &self->vm_id));
	ASSERT_EQ(0, vhd_open(&self->d));
	ASSERT_EQ(0, vhd_attach(&self->d, self->t.port[0].fd));
	ASSERT_TRUE(wait_bound(&self->g, self->vm_id, TAP(self), true));
	EXPECT_GUEST_TAGGED(self);
	tagged = port_ctr(&self->g, self->vm_id, TAP(self), false);
	EXPECT_EQ(1u, tagged);

	switch (how) {
	case DETACH:
		ASSERT_EQ(0, vhd_detach(&self->d));
		break;
	case RESET:
		ASSERT_EQ(0, ioctl(self->d.vfd, VHOST_RESET_OWNER, NULL));
		break;
	case CLOSE:
		vhd_close(&self->d);
		break;
	}
	usleep(200000);
	EXPECT_TRUE(bound(&self->g, self->vm_id, TAP(self)))
		TH_LOG("letting go of the backend unbound %s", TAP(self));
	EXPECT_TAP_WRITES(self, 100);
	/* The counters went on: nothing restarted from zero. */
	EXPECT_EQ(tagged + 1, port_ctr(&self->g, self->vm_id, TAP(self), false));
	denied = port_ctr(&self->g, self->vm_id, TAP(self), true);
	EXPECT_EQ(1u, denied);

	if (how != DETACH)
		return;
	/* `cont`: attached again, the same binding, the counters going on. */
	ASSERT_EQ(0, vhd_attach(&self->d, self->t.port[0].fd));
	EXPECT_TRUE(bound(&self->g, self->vm_id, TAP(self)));
	EXPECT_GUEST_TAGGED(self);
	EXPECT_EQ(tagged + 2, port_ctr(&self->g, self->vm_id, TAP(self), false));
	EXPECT_EQ(denied, port_ctr(&self->g, self->vm_id, TAP(self), true));
}

TEST_F(esc, detached)
{
	let_go(_metadata, self, DETACH);
}

TEST_F(esc, reset_owner)
{
	let_go(_metadata, self, RESET);
}

TEST_F(esc, closed)
{
	let_go(_metadata, self, CLOSE);
}

TEST_F(esc, vm_destroyed)
{
	ASSERT_EQ(0, netg_vm(&self->g, &self->vm, POLICY, &self->vm_id));
	ASSERT_EQ(0, vhd_open(&self->d));
	ASSERT_EQ(0, vhd_attach(&self->d, self->t.port[0].fd));
	ASSERT_TRUE(wait_bound(&self->g, self->vm_id, TAP(self), true));
	vhd_close(&self->d);

	vm_destroy(&self->vm);
	self->vm.fd = -1;
	usleep(300000);
	/* The VMM still holds the tap: it is no free port now. */
	EXPECT_TAP_WRITES(self, -1);
}

/* Move the tap to the uplink's netns; back with come_home(). */
static int go_away(const char *tap)
{
	return netg_ip("link set %s netns " NETG_NS "\n", tap);
}

/* From the uplink's netns back to the initial one (pid 1's), as its VMM would. */
static int come_home(const char *tap)
{
	int err = netg_enter(NETG_NS);

	if (err)
		return err;
	err = netg_ip("link set %s netns 1\n", tap);
	netg_enter(NULL);
	return err;
}

/*
 * The first kernel log line from @fd (/dev/kmsg, read since it was opened)
 * that contains @needle, within @ms: copied into @out; 0 or -ENOENT.
 */
static int klog_find(int fd, const char *needle, char *out, size_t size, int ms)
{
	char rec[2048];

	for (int i = 0; i <= ms / 10; i++) {
		for (;;) {
			ssize_t n = read(fd, rec, sizeof(rec) - 1);
			char *msg;

			if (n < 0 && errno == EPIPE)
				continue;
			if (n <= 0)
				break;
			rec[n] = 0;
			msg = strchr(rec, ';');
			msg = msg ? msg + 1 : rec;
			msg[strcspn(msg, "\n")] = 0;
			if (strstr(msg, needle)) {
				size_t len = strnlen(msg, size - 1);

				memcpy(out, msg, len);
				out[len] = 0;
				return 0;
			}
		}
		usleep(10000);
	}
	return -ENOENT;
}

/* Bound by vhost, its TX-ring frames tagged 100. */
static void bound_tagged(struct __test_metadata *_metadata, FIXTURE_DATA(esc) *self)
{
	ASSERT_EQ(0, netg_vm(&self->g, &self->vm, POLICY, &self->vm_id));
	ASSERT_EQ(0, vhd_open(&self->d));
	ASSERT_EQ(0, vhd_attach(&self->d, self->t.port[0].fd));
	ASSERT_TRUE(wait_bound(&self->g, self->vm_id, TAP(self), true));
	EXPECT_GUEST_TAGGED(self);
}

TEST_F(esc, netns_round_trip)
{
	struct hcg_klog klog;

	ASSERT_EQ(0, hcg_klog_open(&klog));
	bound_tagged(_metadata, self);

	ASSERT_EQ(0, go_away(TAP(self)));
	ASSERT_EQ(0, come_home(TAP(self)));
	EXPECT_TRUE(bound(&self->g, self->vm_id, TAP(self)))
		TH_LOG("the round trip unbound %s", TAP(self));
	/* The move took it off the bridge and down. */
	ASSERT_EQ(0, netg_ip("link set %s master " NETG_BR "\nlink set %s up\n",
			     TAP(self), TAP(self)));
	EXPECT_GUEST_TAGGED(self);

	/* QEMU's way out: the backend detached, then the VM destroyed. */
	ASSERT_EQ(0, vhd_detach(&self->d));
	vm_destroy(&self->vm);
	self->vm.fd = -1;
	usleep(300000);
	/* The VMM still holds the tap: closed, as without the round trip. */
	EXPECT_TAP_WRITES(self, -1);
	EXPECT_EQ(0, hcg_klog_problems(&klog))
		TH_LOG("the kernel log shows problems");
	hcg_klog_close(&klog);
}

/* Is @ifname (in the current netns) up? 1, 0, or -errno. */
static int link_up(const char *ifname)
{
	struct ifreq ifr = { 0 };
	int s, r;

	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	r = ioctl(s, SIOCGIFFLAGS, &ifr) ? -errno : !!(ifr.ifr_flags & IFF_UP);
	close(s);
	return r;
}

/* Wait up to 2 s for @ifname to be up (@want) or down. */
static bool wait_link(const char *ifname, bool want)
{
	for (int i = 0; i < 200; i++) {
		if (link_up(ifname) == want)
			return true;
		usleep(10000);
	}
	return false;
}

/*
 * `ip link @what` (in the current netns): 0, or ip's status with its
 * error output in @msg.
 */
static int ip_link(const char *what, char *msg, size_t size)
{
	char cmd[128], *err = NULL;
	int rc;

	snprintf(cmd, sizeof(cmd), NETG_IP " link %s", what);
	rc = kg_run(cmd, NULL, NULL, &err);
	snprintf(msg, size, "%s", err ? err : "");
	msg[strcspn(msg, "\n")] = 0;
	free(err);
	return rc;
}

/* The tap is closed: down, `ip link set up` refused with kvmguard's message. */
#define EXPECT_CLOSED(self) do {					\
	char __cmd[64], __msg[256];					\
	EXPECT_TRUE(wait_link(TAP(self), false))			\
		TH_LOG("the closed port %s is still up", TAP(self));	\
	snprintf(__cmd, sizeof(__cmd), "set %s up", TAP(self));		\
	EXPECT_NE(0, ip_link(__cmd, __msg, sizeof(__msg)))		\
		TH_LOG("`ip link set %s up` was not refused", TAP(self)); \
	EXPECT_TRUE(strstr(__msg, "kvmguard") != NULL)			\
		TH_LOG("refused without kvmguard's message: '%s'", __msg); \
	EXPECT_EQ(0, link_up(TAP(self)));				\
} while (0)

/* A frame of the TX ring that must not reach the uplink. */
#define EXPECT_RING_DROPPED(self) do {					\
	uint32_t __s = (self)->seq++;					\
	netg_flush(UP(self, ALL));					\
	guest_send(&(self)->d, NULL, 0, __s);	/* completes or not */	\
	EXPECT_EQ(-1, uplink_vid(&(self)->t, __s, NEG_MS))		\
		TH_LOG("a TX-ring frame of the closed port escaped");	\
} while (0)

TEST_F(esc, vm_gone_away)
{
	static const char closed[] = ": its VM is gone and its VMM keeps it";
	char needle[64], line[512] = "", cmd[96], msg[256];
	struct hcg_klog klog, find;

	ASSERT_EQ(0, hcg_klog_open(&klog));
	ASSERT_EQ(0, hcg_klog_open(&find));
	bound_tagged(_metadata, self);

	ASSERT_EQ(0, go_away(TAP(self)));
	ASSERT_EQ(0, vhd_detach(&self->d));
	vm_destroy(&self->vm);
	self->vm.fd = -1;
	/* Closed where it is. */
	snprintf(needle, sizeof(needle), "%s%s", TAP(self), closed);
	EXPECT_EQ(0, klog_find(find.fd, needle, line, sizeof(line), 2000))
		TH_LOG("%s was not closed in the netns it is in", TAP(self));

	/* There: down, and it stays down. */
	ASSERT_EQ(0, netg_enter(NETG_NS));
	snprintf(cmd, sizeof(cmd), "set %s up", TAP(self));
	EXPECT_NE(0, ip_link(cmd, msg, sizeof(msg)))
		TH_LOG("`ip link set %s up` was not refused in the other netns", TAP(self));
	EXPECT_EQ(0, link_up(TAP(self)));
	netg_enter(NULL);
	EXPECT_EQ(-EIO, tap_write(self->t.port[0].fd, NULL, 0, self->seq++));

	/* Back home: still closed (it was let go before, free). */
	ASSERT_EQ(0, come_home(TAP(self)));
	EXPECT_CLOSED(self);
	snprintf(cmd, sizeof(cmd), "set %s master " NETG_BR, TAP(self));
	EXPECT_NE(0, ip_link(cmd, msg, sizeof(msg)))
		TH_LOG("the closed port %s joined the bridge", TAP(self));
	EXPECT_EQ(-ENOENT, netg_unbind(&self->g, TAP(self), 0));
	EXPECT_TAP_WRITES(self, -1);
	EXPECT_EQ(0, hcg_klog_problems(&klog))
		TH_LOG("the kernel log shows problems");
	hcg_klog_close(&find);
	hcg_klog_close(&klog);
}

TEST_F(esc, closed_down)
{
	struct hcg_klog klog;

	ASSERT_EQ(0, hcg_klog_open(&klog));
	bound_tagged(_metadata, self);
	ASSERT_EQ(1, link_up(TAP(self)));

	/* The VMM keeps the tap and its vhost-net backend, TX ring and all. */
	vm_destroy(&self->vm);
	self->vm.fd = -1;
	EXPECT_CLOSED(self);
	EXPECT_RING_DROPPED(self);
	EXPECT_TAP_WRITES(self, -1);

	/* Its VMM has a VM again: the port opens, and comes back up. */
	ASSERT_EQ(0, netg_vm(&self->g, &self->vm, POLICY, &self->vm_id));
	EXPECT_TRUE(wait_bound(&self->g, self->vm_id, TAP(self), true))
		TH_LOG("the new VM did not get the closed port %s", TAP(self));
	EXPECT_TRUE(wait_link(TAP(self), true))
		TH_LOG("the port %s opened and stayed down", TAP(self));
	EXPECT_GUEST_TAGGED(self);
	EXPECT_EQ(0, hcg_klog_problems(&klog))
		TH_LOG("the kernel log shows problems");
	hcg_klog_close(&klog);
}

TEST_F(esc, closed_was_down)
{
	bound_tagged(_metadata, self);
	ASSERT_EQ(0, netg_ip("link set %s down\n", TAP(self)));

	vm_destroy(&self->vm);
	self->vm.fd = -1;
	EXPECT_CLOSED(self);
	EXPECT_RING_DROPPED(self);

	ASSERT_EQ(0, netg_vm(&self->g, &self->vm, POLICY, &self->vm_id));
	EXPECT_TRUE(wait_bound(&self->g, self->vm_id, TAP(self), true));
	usleep(200000);
	EXPECT_EQ(0, link_up(TAP(self)))
		TH_LOG("kvmguard brought up %s, which the VMM had set down", TAP(self));
	/* Open: the VMM may bring it up itself. */
	ASSERT_EQ(0, netg_ip("link set %s up\n", TAP(self)));
	EXPECT_GUEST_TAGGED(self);
}

TEST_F(esc, no_rule_let_go)
{
	uint32_t s;

	/* A VM whose policy has no network rule (none at all). */
	ASSERT_EQ(0, netg_vm(&self->g, &self->vm, NULL, &self->vm_id));
	ASSERT_EQ(0, vhd_open(&self->d));
	ASSERT_EQ(0, vhd_attach(&self->d, self->t.port[0].fd));
	ASSERT_TRUE(wait_bound(&self->g, self->vm_id, TAP(self), true));
	s = self->seq++;
	netg_flush(UP(self, ALL));
	ASSERT_EQ(0, guest_send(&self->d, NULL, 0, s));
	ASSERT_EQ(0, uplink_vid(&self->t, s, WAIT_MS));

	vm_destroy(&self->vm);
	self->vm.fd = -1;
	usleep(300000);
	/* Nothing to enforce, nothing closed: as free as it was. */
	EXPECT_EQ(1, link_up(TAP(self)))
		TH_LOG("a port with no segment to keep went down");
	s = self->seq++;
	netg_flush(UP(self, ALL));
	EXPECT_EQ(0, guest_send(&self->d, NULL, 0, s));
	EXPECT_EQ(0, uplink_vid(&self->t, s, WAIT_MS))
		TH_LOG("a port with no segment to keep was closed");

	/* Kept for the VMM all the same: its next VM gets it, with its rules. */
	ASSERT_EQ(0, vhd_detach(&self->d));
	ASSERT_EQ(0, netg_vm(&self->g, &self->vm, POLICY, &self->vm_id));
	EXPECT_TRUE(wait_bound(&self->g, self->vm_id, TAP(self), true))
		TH_LOG("the VMM's next VM did not get %s", TAP(self));
	EXPECT_TAP_WRITES(self, 100);
}

/*
 * A process of the VMM outside its pid binding's tree: clone(CLONE_VM |
 * CLONE_PARENT) shares the VMM's memory, so its VM is one "of the VMM" to
 * vhost.c, but gets the policy of its own (none here). Raw calls only: it
 * runs on the VMM's memory.
 */
struct sibling {
	int kvm_fd, vm_fd;
	int go[2];		/* EOF or a byte: exit */
	char stack[64 * 1024] __attribute__((aligned(16)));
};

static int sibling_main(void *arg)
{
	struct sibling *sib = arg;
	char c;

	close(sib->go[1]);
	sib->vm_fd = ioctl(sib->kvm_fd, KVM_CREATE_VM, 0);
	while (read(sib->go[0], &c, 1) < 0)
		;
	return 0;
}

TEST_F(esc, closed_escaped_sibling)
{
	static struct sibling sib;
	struct kg_vm v;
	uint64_t max;
	pid_t pid;
	int i;

	/* The VMM's policy comes from a pid binding, as a manager would set it. */
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL, getpid(), POLICY));
	max = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, vm_create(&self->vm));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	ASSERT_STREQ(POLICY, v.policy);
	self->vm_id = v.id;
	ASSERT_EQ(0, vhd_open(&self->d));
	ASSERT_EQ(0, vhd_attach(&self->d, self->t.port[0].fd));
	ASSERT_TRUE(wait_bound(&self->g, self->vm_id, TAP(self), true));
	EXPECT_GUEST_TAGGED(self);

	vm_destroy(&self->vm);
	self->vm.fd = -1;
	EXPECT_CLOSED(self);

	/* The sibling's VM has no policy: the port must stay closed. */
	sib.kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, sib.kvm_fd);
	ASSERT_EQ(0, pipe2(sib.go, O_CLOEXEC));
	max = kg_max_vm_id(&self->g);
	pid = clone(sibling_main, sib.stack + sizeof(sib.stack),
		    CLONE_VM | CLONE_PARENT, &sib);
	ASSERT_LT(0, pid) TH_LOG("clone: %s", strerror(errno));
	for (i = 0; i < 50 && kg_find_new_vm(&self->g, pid, max, &v); i++)
		usleep(20000);
	ASSERT_GT(50, i) TH_LOG("the sibling's VM did not appear");
	EXPECT_STRNE(POLICY, v.policy) TH_LOG("the sibling got the VMM's pid binding");
	usleep(300000);		/* vhost.c's work for the new VM */
	EXPECT_FALSE(bound(&self->g, v.id, TAP(self)))
		TH_LOG("the closed port %s opened for VM %llu, of a process outside the VMM's binding",
		       TAP(self), (unsigned long long)v.id);
	EXPECT_EQ(0, link_up(TAP(self)))
		TH_LOG("the closed port %s came up for the sibling's VM", TAP(self));
	EXPECT_RING_DROPPED(self);
	EXPECT_TAP_WRITES(self, -1);

	close(sib.go[1]);	/* the sibling exits, its VM with it */
	close(sib.go[0]);
	close(sib.kvm_fd);
	EXPECT_EQ(0, kg_bind_del(&self->g, KVMGUARD_BIND_PID, NULL, getpid()));
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
