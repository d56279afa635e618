// SPDX-License-Identifier: GPL-2.0
/*
 * net_vhost: network rules on the vhost-net path, driven for real.
 *
 * The test process is a VMM: it creates a KVM VM and drives /dev/vhost-net
 * (vhostdrv.c: SET_OWNER, features, memory table, vrings, kick and call
 * eventfds) with a persistent tap as backend of both queues, so frames
 * cross vhost-net's TX and RX rings. The tap is a port of a flat bridge
 * (no VLAN filtering) whose other port is a veth; the veth's peer, outside
 * the bridge, is where the host side is watched (AF_PACKET with
 * PACKET_AUXDATA: the 802.1Q tag a frame carries there) and where frames
 * toward the guest are injected.
 *
 *   bound_by_vhost     attaching the tap binds it to the VM (VM_GET:
 *                      NET_DEVS lists it, BOUND_BY VHOST); without a rule
 *                      frames pass untagged both ways.
 *   tag_100            policy `net tag 100` set on the running VM: frames
 *                      from the TX ring leave tagged 100; frames tagged 100
 *                      reach the RX ring untagged; VID 200 and untagged
 *                      frames do not; guest-injected 802.1Q (VID 5, 100),
 *                      802.1ad, double-tagged and VID 0 frames are dropped;
 *                      the counters are exact.
 *   detach_and_close   detaching one queue keeps the binding, both ends it;
 *                      attaching again binds again; closing the vhost fd
 *                      ends it.
 *   refuse_no_vm       a process with no VM (a forked child, sharing the
 *                      tap fd) cannot attach the bound tap: SET_BACKEND
 *                      fails; the binding is unchanged.
 *   refuse_other_vm    a tap bound by NET_BIND to another process's VM
 *                      cannot be attached by this VM's process; after
 *                      NET_UNBIND it can, and is then bound to this VM.
 *
 * Needs /dev/kvm, /dev/vhost-net, the module and iproute2 (`ip` by full
 * path: busybox's applet lacks tuntap and veth); exits 4 (SKIP) without.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

#include "kselftest_harness.h"
#include "kg.h"
#include "kid.h"
#include "vm.h"
#include "vhostdrv.h"

#define PFX	"kgvn-"		/* policies */
#define BR	"kgvnbr"
#define TAP	"kgvnt0"
#define TAP2	"kgvnt1"
#define UP	"kgvnu0"	/* veth in the bridge */
#define PEER	"kgvnu1"	/* its peer: the watched host side */
#define ETYPE	0x88b5
#define MAGIC	"KGVHOST!"
#define FRAME	64
#define WAIT_MS	1000

static const char *ip_cmd;

static const unsigned char mac_guest[6] = { 0x02, 0, 0, 0, 0x6b, 0x0a };
static const unsigned char mac_peer[6] = { 0x02, 0, 0, 0, 0x6b, 0x0c };

/* iproute2's ip (not busybox's applet), or NULL. */
static const char *find_ip(void)
{
	static const char *const paths[] = { "/usr/sbin/ip", "/sbin/ip", "/bin/ip",
					     "/usr/bin/ip" };
	char cmd[64], *out = NULL;
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (access(paths[i], X_OK))
			continue;
		snprintf(cmd, sizeof(cmd), "%s -V 2>&1", paths[i]);
		if (!kg_run(cmd, NULL, &out, NULL) && out && strstr(out, "iproute2")) {
			free(out);
			return paths[i];
		}
		free(out);
		out = NULL;
	}
	return NULL;
}

static bool ip_quiet;

/* Run "ip ARGS"; 0 or its exit status (its stderr printed unless quiet). */
static int ip(const char *fmt, ...)
{
	char args[512], cmd[600], *err = NULL;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "%s %s", ip_cmd, args);
	rc = kg_run(cmd, NULL, NULL, &err);
	if (rc && !ip_quiet)
		fprintf(stderr, "# %s: exit %d: %s", cmd, rc, err ? err : "\n");
	free(err);
	return rc;
}

static void no_ipv6(const char *dev)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", dev);
	f = fopen(path, "w");
	if (f) {
		fputs("1\n", f);
		fclose(f);
	}
}

/* Delete what net_setup() and tap_add() made, whatever exists. */
static void net_teardown(void)
{
	ip_quiet = true;
	ip("link del " TAP);
	ip("link del " TAP2);
	ip("link del " UP);
	ip("link del " BR);
	ip_quiet = false;
}

static int net_setup(void)
{
	net_teardown();
	if (ip("link add " BR " type bridge stp_state 0 forward_delay 0") ||
	    ip("link add " UP " type veth peer name " PEER))
		return -1;
	no_ipv6(BR);
	no_ipv6(UP);
	no_ipv6(PEER);
	if (ip("link set " UP " master " BR) || ip("link set " BR " up") ||
	    ip("link set " UP " up") || ip("link set " PEER " up"))
		return -1;
	return 0;
}

/* A persistent tap in the bridge, up. */
static int tap_add(const char *name)
{
	if (ip("tuntap add dev %s mode tap vnet_hdr", name))
		return -1;
	no_ipv6(name);
	return ip("link set %s master " BR, name) || ip("link set %s up", name);
}

/* Frame @seq: MAC header, up to two tags (proto/vid pairs, proto 0: none). */
static size_t frame(unsigned char *f, const unsigned char *dst,
		    const unsigned char *src, uint16_t p1, uint16_t v1,
		    uint16_t p2, uint16_t v2, uint32_t seq)
{
	size_t o = 12;

	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	if (p1) {
		f[o++] = p1 >> 8;
		f[o++] = p1 & 0xff;
		f[o++] = v1 >> 8;
		f[o++] = v1 & 0xff;
	}
	if (p2) {
		f[o++] = p2 >> 8;
		f[o++] = p2 & 0xff;
		f[o++] = v2 >> 8;
		f[o++] = v2 & 0xff;
	}
	f[o++] = ETYPE >> 8;
	f[o++] = ETYPE & 0xff;
	memcpy(f + o, MAGIC, 8);
	memcpy(f + o + 8, &seq, 4);
	memset(f + o + 12, 0x5a, FRAME - 14 - 12);
	return FRAME + (o - 14);
}

/* Untagged test frame: its sequence number, or -1. */
static int64_t frame_seq(const unsigned char *f, size_t len)
{
	uint32_t seq;

	if (len < FRAME || f[12] != ETYPE >> 8 || f[13] != (ETYPE & 0xff) ||
	    memcmp(f + 14, MAGIC, 8))
		return -1;
	memcpy(&seq, f + 22, 4);
	return seq;
}

/* AF_PACKET on PEER: every frame, with PACKET_AUXDATA. */
static int peer_socket(void)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET,
				   .sll_protocol = htons(ETH_P_ALL) };
	int s, one = 1;

	s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (s < 0)
		return -1;
	sll.sll_ifindex = (int)if_nametoindex(PEER);
	if (!sll.sll_ifindex ||
	    setsockopt(s, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) ||
	    bind(s, (struct sockaddr *)&sll, sizeof(sll))) {
		close(s);
		return -1;
	}
	return s;
}

static int peer_send(int s, const void *f, size_t len)
{
	return send(s, f, len, 0) == (ssize_t)len ? 0 : -1;
}

/*
 * Next test frame arriving at PEER (not one PEER sent) within WAIT_MS:
 * its sequence number, *vid the VID it carried (-1: untagged). -1 if none.
 */
static int64_t peer_recv(int s, int *vid)
{
	unsigned char buf[2048];
	char cbuf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
	struct sockaddr_ll from;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr mh = { .msg_name = &from, .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf };
	struct pollfd p = { .fd = s, .events = POLLIN };
	struct cmsghdr *c;
	int64_t seq;
	ssize_t len;

	for (;;) {
		if (poll(&p, 1, WAIT_MS) <= 0)
			return -1;
		mh.msg_namelen = sizeof(from);
		mh.msg_controllen = sizeof(cbuf);
		len = recvmsg(s, &mh, 0);
		if (len < 0)
			return -1;
		if (from.sll_pkttype == PACKET_OUTGOING)
			continue;
		seq = frame_seq(buf, (size_t)len);
		if (seq < 0)
			continue;
		*vid = -1;
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			struct tpacket_auxdata aux;

			if (c->cmsg_level != SOL_PACKET ||
			    c->cmsg_type != PACKET_AUXDATA)
				continue;
			memcpy(&aux, CMSG_DATA(c), sizeof(aux));
			if (aux.tp_status & TP_STATUS_VLAN_VALID)
				*vid = aux.tp_vlan_tci & 0xfff;
		}
		return seq;
	}
}

static int match_any(const unsigned char *f, size_t len, void *arg)
{
	(void)arg;
	return frame_seq(f, len) >= 0;
}

/* Next test frame in the RX ring: its sequence number, or -1. */
static int64_t guest_recv(struct vhd *d, size_t *lenp)
{
	unsigned char buf[VHD_BUFSZ];
	int len = vhd_rx_wait(d, match_any, NULL, buf, sizeof(buf), WAIT_MS);

	if (len < 0)
		return -1;
	if (lenp)
		*lenp = (size_t)len;
	return frame_seq(buf, (size_t)len);
}

/* One device of KVMGUARD_A_VM_NET_DEVS. */
struct netdev {
	uint32_t ifindex;
	char name[IFNAMSIZ];
	int bound_by;
	uint64_t tagged, forwarded, delivered, tag_denied, segment_denied,
		 isolate_denied;
};

struct devs {
	int n;
	struct netdev d[8];
};

static const struct nlattr *nla_next(const struct nlattr *a, int *rem)
{
	int l = NLA_ALIGN(a->nla_len);

	*rem -= l;
	return (const struct nlattr *)((const char *)a + l);
}

#define nla_for_each(pos, head, len, rem)				\
	for (pos = (head), rem = (len);					\
	     rem >= NLA_HDRLEN && pos->nla_len >= NLA_HDRLEN &&	\
	     pos->nla_len <= rem;					\
	     pos = nla_next(pos, &rem))

static const struct nlattr *nla_data_attr(const struct nlattr *a)
{
	return (const struct nlattr *)((const char *)a + NLA_HDRLEN);
}

static int parse_dev(const struct nlattr *nest, struct netdev *d)
{
	const struct nlattr *a;
	int rem;

	memset(d, 0, sizeof(*d));
	d->bound_by = -1;
	nla_for_each(a, nla_data_attr(nest), gnl_alen(nest), rem) {
		switch (a->nla_type & NLA_TYPE_MASK) {
		case KVMGUARD_A_NET_IFINDEX:
			d->ifindex = gnl_get_u32(a);
			break;
		case KVMGUARD_A_NET_IFNAME:
			if (gnl_get_str(a))
				snprintf(d->name, sizeof(d->name), "%s", gnl_get_str(a));
			break;
		case KVMGUARD_A_NET_BOUND_BY:
			d->bound_by = gnl_get_u8(a);
			break;
		case KVMGUARD_A_NET_TAGGED:
			d->tagged = gnl_get_u64(a);
			break;
		case KVMGUARD_A_NET_FORWARDED:
			d->forwarded = gnl_get_u64(a);
			break;
		case KVMGUARD_A_NET_DELIVERED:
			d->delivered = gnl_get_u64(a);
			break;
		case KVMGUARD_A_NET_TAG_DENIED:
			d->tag_denied = gnl_get_u64(a);
			break;
		case KVMGUARD_A_NET_SEGMENT_DENIED:
			d->segment_denied = gnl_get_u64(a);
			break;
		case KVMGUARD_A_NET_ISOLATE_DENIED:
			d->isolate_denied = gnl_get_u64(a);
			break;
		}
	}
	return rem ? -EINVAL : 0;
}

static int vm_devs_cb(const struct nlmsghdr *nlh, void *arg)
{
	const struct nlattr *tb[KVMGUARD_A_MAX + 1], *a;
	struct devs *out = arg;
	int rem;

	if (gnl_parse(nlh, tb, KVMGUARD_A_MAX, NULL))
		return -EBADMSG;
	out->n = 0;
	if (!tb[KVMGUARD_A_VM_NET_DEVS])
		return 0;
	nla_for_each(a, nla_data_attr(tb[KVMGUARD_A_VM_NET_DEVS]),
		     gnl_alen(tb[KVMGUARD_A_VM_NET_DEVS]), rem) {
		if ((a->nla_type & NLA_TYPE_MASK) != KVMGUARD_A_NET_DEV ||
		    out->n == (int)(sizeof(out->d) / sizeof(out->d[0])))
			return -EBADMSG;
		if (parse_dev(a, &out->d[out->n++]))
			return -EBADMSG;
	}
	return rem ? -EBADMSG : 0;
}

/* The devices bound to VM @id: 0 or -errno. */
static int vm_devs(struct gnl *g, uint64_t id, struct devs *out)
{
	static struct gnl_msg m;

	memset(out, 0, sizeof(*out));
	out->n = -1;
	kg_req(g, &m, KVMGUARD_CMD_VM_GET, false);
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, id);
	if (gnl_transact(g, &m, vm_devs_cb, out))
		return -EIO;
	return out->n < 0 ? -EBADMSG : 0;
}

/* VM @id's entry for @name, or NULL. */
static const struct netdev *dev_of(struct gnl *g, uint64_t id, const char *name,
				   struct devs *buf)
{
	int i;

	if (vm_devs(g, id, buf))
		return NULL;
	for (i = 0; i < buf->n; i++)
		if (!strcmp(buf->d[i].name, name))
			return &buf->d[i];
	return NULL;
}

/* Wait up to 2 s for @name to be bound (@want) or not to VM @id. */
static bool wait_bound(struct gnl *g, uint64_t id, const char *name, bool want)
{
	struct devs b;
	int i;

	for (i = 0; i < 200; i++) {
		if (!!dev_of(g, id, name, &b) == want)
			return true;
		usleep(10000);
	}
	return false;
}

static int policy_tag(struct gnl *g, const char *name, uint16_t vid)
{
	static struct gnl_msg m;

	kg_req(g, &m, KVMGUARD_CMD_POLICY_NEW, false);
	gnl_put_str(&m, KVMGUARD_A_POLICY_NAME, name);
	gnl_put_u16(&m, KVMGUARD_A_POLICY_NET_TAG, vid);
	return gnl_transact(g, &m, NULL, NULL);
}

static int net_bind(struct gnl *g, uint64_t id, const char *name, bool bind)
{
	static struct gnl_msg m;

	kg_req(g, &m, bind ? KVMGUARD_CMD_NET_BIND : KVMGUARD_CMD_NET_UNBIND, false);
	if (bind)
		gnl_put_u64(&m, KVMGUARD_A_VM_ID, id);
	gnl_put_str(&m, KVMGUARD_A_NET_IFNAME, name);
	return gnl_transact(g, &m, NULL, NULL);
}

FIXTURE(nv) {
	struct gnl g;
	struct vm vm;
	uint64_t vm_id;
	struct vhd d;
	int tapfd;
	int peer;
};

FIXTURE_SETUP(nv)
{
	struct kg_vm v;
	uint64_t last;

	self->vm.fd = -1;
	self->d.vfd = -1;
	self->tapfd = -1;
	self->peer = -1;
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, PFX);
	ASSERT_EQ(0, net_setup());
	ASSERT_EQ(0, tap_add(TAP));
	last = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, vm_create(&self->vm));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), last, &v));
	self->vm_id = v.id;
	self->tapfd = vhd_tap_open(TAP, 0);
	ASSERT_LE(0, self->tapfd);
	ASSERT_EQ(0, vhd_open(&self->d));
	ASSERT_EQ(0, vhd_attach(&self->d, self->tapfd));
	self->peer = peer_socket();
	ASSERT_LE(0, self->peer);
	/* Bridge ports forward at once (no STP, forward_delay 0). */
	usleep(100000);
}

FIXTURE_TEARDOWN(nv)
{
	if (self->peer >= 0)
		close(self->peer);
	vhd_close(&self->d);
	if (self->tapfd >= 0)
		close(self->tapfd);
	if (self->vm.fd >= 0)
		vm_destroy(&self->vm);
	net_teardown();
	kg_cleanup(&self->g, PFX);
	gnl_close(&self->g);
}

/* Guest frame @seq from the TX ring; tags as in frame(). */
static int guest_send(struct vhd *d, uint16_t p1, uint16_t v1, uint16_t p2,
		      uint16_t v2, uint32_t seq)
{
	unsigned char f[FRAME + 8];
	size_t len = frame(f, (const unsigned char *)"\xff\xff\xff\xff\xff\xff",
			   mac_guest, p1, v1, p2, v2, seq);

	return vhd_tx_sync(d, f, len, WAIT_MS);
}

/* Frame @seq toward the guest from PEER, tagged @vid (0: untagged). */
static int toward_guest(int s, uint16_t vid, uint32_t seq)
{
	unsigned char f[FRAME + 4];
	size_t len = frame(f, mac_guest, mac_peer, vid ? ETH_P_8021Q : 0, vid,
			   0, 0, seq);

	return peer_send(s, f, len);
}

TEST_F(nv, bound_by_vhost)
{
	const struct netdev *nd;
	struct devs b;
	size_t len = 0;
	int vid = 0;

	nd = dev_of(&self->g, self->vm_id, TAP, &b);
	ASSERT_NE(NULL, nd) TH_LOG("VM_GET does not list " TAP " after SET_BACKEND");
	EXPECT_EQ(if_nametoindex(TAP), nd->ifindex);
	EXPECT_EQ(KVMGUARD_NET_BOUND_VHOST, nd->bound_by);
	EXPECT_EQ(1, b.n);

	/* No network rule: both ways untagged, as without kvmguard. */
	ASSERT_EQ(0, guest_send(&self->d, 0, 0, 0, 0, 1));
	EXPECT_EQ(1, peer_recv(self->peer, &vid));
	EXPECT_EQ(-1, vid);
	ASSERT_EQ(0, toward_guest(self->peer, 0, 2));
	EXPECT_EQ(2, guest_recv(&self->d, &len));
	EXPECT_EQ((size_t)FRAME, len);
}

/* Counters of TAP on the fixture's VM. */
static struct netdev port_counters(struct __test_metadata *_metadata,
				   FIXTURE_DATA(nv) *self)
{
	const struct netdev *nd;
	struct netdev z = { 0 };
	struct devs b;

	nd = dev_of(&self->g, self->vm_id, TAP, &b);
	EXPECT_NE(NULL, nd) TH_LOG(TAP " is not the VM's port");
	return nd ? *nd : z;
}

#define EXPECT_DELTA(n, field)						\
	EXPECT_EQ((uint64_t)(n), now.field - before.field)		\
		TH_LOG(#field ": %llu -> %llu",				\
		       (unsigned long long)before.field,		\
		       (unsigned long long)now.field)

TEST_F(nv, tag_100)
{
	struct netdev before, now;
	size_t len = 0;
	uint32_t seq;
	int vid = 0;

	ASSERT_EQ(0, policy_tag(&self->g, PFX "tag", 100));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->vm_id, PFX "tag"));

	/* From the guest, untagged: leaves the host tagged 100. */
	before = port_counters(_metadata, self);
	for (seq = 10; seq < 15; seq++) {
		ASSERT_EQ(0, guest_send(&self->d, 0, 0, 0, 0, seq));
		EXPECT_EQ(seq, peer_recv(self->peer, &vid));
		EXPECT_EQ(100, vid);
	}
	now = port_counters(_metadata, self);
	EXPECT_DELTA(5, tagged);
	EXPECT_DELTA(5, forwarded);
	EXPECT_DELTA(0, tag_denied);
	EXPECT_DELTA(0, segment_denied);
	EXPECT_DELTA(0, delivered);

	/* Toward the guest: 100 arrives untagged, 200 and untagged do not. */
	before = now;
	ASSERT_EQ(0, toward_guest(self->peer, 100, 20));
	EXPECT_EQ(20, guest_recv(&self->d, &len));
	EXPECT_EQ((size_t)FRAME, len);
	now = port_counters(_metadata, self);
	EXPECT_DELTA(1, delivered);
	EXPECT_DELTA(0, segment_denied);
	ASSERT_EQ(0, toward_guest(self->peer, 200, 21));
	ASSERT_EQ(0, toward_guest(self->peer, 0, 22));
	ASSERT_EQ(0, toward_guest(self->peer, 100, 23));
	/* Same path, in order: 23 first means 21 and 22 were dropped. */
	EXPECT_EQ(23, guest_recv(&self->d, &len));
	EXPECT_EQ((size_t)FRAME, len);
	now = port_counters(_metadata, self);
	EXPECT_DELTA(2, delivered);
	EXPECT_DELTA(2, segment_denied);
	EXPECT_DELTA(0, tagged);
	EXPECT_DELTA(0, forwarded);

	/* Guest-injected tags: dropped; an untagged frame after them passes. */
	before = now;
	ASSERT_EQ(0, guest_send(&self->d, ETH_P_8021Q, 5, 0, 0, 30));
	ASSERT_EQ(0, guest_send(&self->d, ETH_P_8021Q, 100, 0, 0, 31));
	ASSERT_EQ(0, guest_send(&self->d, ETH_P_8021AD, 100, 0, 0, 32));
	ASSERT_EQ(0, guest_send(&self->d, ETH_P_8021Q, 100, ETH_P_8021Q, 5, 33));
	ASSERT_EQ(0, guest_send(&self->d, ETH_P_8021Q, 0, 0, 0, 34));
	ASSERT_EQ(0, guest_send(&self->d, 0, 0, 0, 0, 35));
	EXPECT_EQ(35, peer_recv(self->peer, &vid));
	EXPECT_EQ(100, vid);
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
	ASSERT_TRUE(wait_bound(&self->g, self->vm_id, TAP, true));
	/* One queue still has the tap: still the VM's port. */
	ASSERT_EQ(0, vhd_set_backend(&self->d, VHD_RX, -1));
	EXPECT_TRUE(wait_bound(&self->g, self->vm_id, TAP, true));
	ASSERT_EQ(0, vhd_set_backend(&self->d, VHD_TX, -1));
	EXPECT_TRUE(wait_bound(&self->g, self->vm_id, TAP, false))
		TH_LOG("detaching both queues left " TAP " bound");

	ASSERT_EQ(0, vhd_attach(&self->d, self->tapfd));
	EXPECT_TRUE(wait_bound(&self->g, self->vm_id, TAP, true))
		TH_LOG("attaching again did not bind " TAP);

	vhd_close(&self->d);
	EXPECT_TRUE(wait_bound(&self->g, self->vm_id, TAP, false))
		TH_LOG("closing /dev/vhost-net left " TAP " bound");
}

TEST_F(nv, refuse_no_vm)
{
	const struct netdev *nd;
	struct devs b;
	int status;
	pid_t pid;

	ASSERT_TRUE(wait_bound(&self->g, self->vm_id, TAP, true));
	fflush(NULL);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* Another mm, no VM; the tap fd is shared with the parent. */
		struct vhd d;
		int err = vhd_open(&d);

		if (err) {
			fprintf(stderr, "# child: vhost-net: %s\n", strerror(-err));
			_exit(2);
		}
		err = vhd_set_backend(&d, VHD_TX, self->tapfd);
		if (!err)
			fprintf(stderr, "# child without a VM attached the bound " TAP "\n");
		else
			fprintf(stderr, "# child: SET_BACKEND refused: %s\n", strerror(-err));
		vhd_close(&d);
		_exit(err ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));

	nd = dev_of(&self->g, self->vm_id, TAP, &b);
	ASSERT_NE(NULL, nd);
	EXPECT_EQ(KVMGUARD_NET_BOUND_VHOST, nd->bound_by);
}

TEST_F(nv, refuse_other_vm)
{
	const struct netdev *nd;
	struct kg_vm other;
	struct vhd d2 = { .vfd = -1 };
	struct kid k;
	struct devs b;
	uint64_t last;
	int fd2, err;

	ASSERT_EQ(0, tap_add(TAP2));
	last = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, kid_start(&k, NULL, "kgvn-kid"));
	ASSERT_EQ(0, kid_create_vm(&k, 0));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, k.pid, last, &other));

	ASSERT_EQ(0, net_bind(&self->g, other.id, TAP2, true));
	nd = dev_of(&self->g, other.id, TAP2, &b);
	ASSERT_NE(NULL, nd);
	EXPECT_EQ(KVMGUARD_NET_BOUND_MANUAL, nd->bound_by);

	fd2 = vhd_tap_open(TAP2, 0);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, vhd_open(&d2));
	err = vhd_set_backend(&d2, VHD_TX, fd2);
	EXPECT_NE(0, err) TH_LOG("a VM's process attached a tap bound to another VM");
	EXPECT_NE(NULL, dev_of(&self->g, other.id, TAP2, &b));
	EXPECT_EQ(NULL, dev_of(&self->g, self->vm_id, TAP2, &b));

	/* Unbound, it is free to take: it becomes this VM's port. */
	if (err) {
		ASSERT_EQ(0, net_bind(&self->g, 0, TAP2, false));
		EXPECT_EQ(NULL, dev_of(&self->g, other.id, TAP2, &b));
		EXPECT_EQ(0, vhd_set_backend(&d2, VHD_TX, fd2));
		nd = dev_of(&self->g, self->vm_id, TAP2, &b);
		EXPECT_NE(NULL, nd);
		if (nd)
			EXPECT_EQ(KVMGUARD_NET_BOUND_VHOST, nd->bound_by);
	}
	vhd_close(&d2);
	close(fd2);
	EXPECT_EQ(0, kid_stop(&k));
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
	ip_cmd = find_ip();
	if (!ip_cmd) {
		printf("TAP version 13\n1..0 # SKIP no iproute2 ip\n");
		return 4;
	}
	kg_prereq(KG_NEED_KVM | KG_NEED_MODULE);
	return test_harness_run(argc, argv);
}
