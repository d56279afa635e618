// SPDX-License-Identifier: GPL-2.0
/*
 * vhostbench: one packet measurement of `make bench`, run inside the test
 * host (bench/guest.sh sets up the network first).
 *
 * Plays a VMM with a virtio-net device on vhost-net (selftests/vhostdrv.c):
 * the process creates a KVM VM (KVM_CREATE_VM, nothing more: kvmguard binds
 * the taps a VM's process attaches as vhost-net backends) and attaches the
 * persistent taps guest.sh made, then moves 64-byte frames:
 *   tx:   guest A's TX ring -> tap kga -> bridge br0 -> veth vup -> vup-p
 *         in netns "up" (dropped there: unknown ethertype), unicast to
 *         02:00:00:00:00:0c (a static fdb entry on vup)
 *   rx:   an AF_PACKET socket on vup-p in netns "up" -> veth -> br0 ->
 *         tap kgb -> guest B's RX ring, unicast to 02:00:00:00:00:0b (a
 *         static fdb entry on kgb); sent with sendmmsg() in batches
 *   pair: guest A's TX ring -> kga -> br0 -> kgb -> guest B's RX ring
 *
 * VID > 0 is the access VID of the tagged configuration: rx then sends the
 * frames 802.1Q-tagged VID (as the uplink's segment would) and every
 * frame must reach the RX ring untagged; tx then checks that a frame from
 * the TX ring reaches vup-p tagged VID (PACKET_AUXDATA), with VID 0 that
 * it arrives untagged. Every frame must arrive (tx: vup's tx_packets).
 *
 * After a warm-up run of N/16 frames it times a run of N/8 and one of N
 * (CLOCK_MONOTONIC around each) and prints per frame
 * (t(N) - t(N/8)) / (N - N/8): the difference drops the fixed cost of a
 * run. Under QEMU -icount shift=0 a nanosecond is one emulated instruction.
 * The two timed runs are the windows of BENCH_PROFILE=1 (bench/kgprof.h).
 *
 *   vhostbench tx|rx|pair N [VID]
 * prints: "<per frame, 2 decimals> <t(N) ns> <t(N/8) ns> <N>"
 *
 *   vhostbench hold TAP
 * creates a VM, attaches TAP, prints "ready" and waits for a signal: another
 * VM's port while the others run (guest.sh's configuration f).
 * Exit status 1 on any failure (a lost, tagged or misdelivered frame).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/kvm.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "kgprof.h"
#include "vhostdrv.h"

#define TAP_A		"kga"
#define TAP_B		"kgb"
#define UPLINK		"vup"		/* host side of the veth, in br0 */
#define UPLINK_PEER	"vup-p"		/* its peer, in netns "up" */
#define NETNS		"/run/netns/up"
#define FRAME		64		/* untagged frame length */
#define ETYPE		0x88b5		/* IEEE local experimental */
#define INFLIGHT	(VHD_QSZ / 2)
#define WAIT_MS		2000

static const unsigned char mac_a[6] = { 0x02, 0, 0, 0, 0, 0x0a };
static const unsigned char mac_b[6] = { 0x02, 0, 0, 0, 0, 0x0b };
static const unsigned char mac_up[6] = { 0x02, 0, 0, 0, 0, 0x0c };

static struct vhd dev_a, dev_b;
static int vid;
static int src_fd = -1;		/* rx: AF_PACKET on vup-p, send only */
static const char *mode;

static void die(const char *what, int err)
{
	fprintf(stderr, "vhostbench %s: %s: %s\n", mode, what, strerror(err));
	exit(1);
}

static void fail(const char *what)
{
	fprintf(stderr, "vhostbench %s: %s\n", mode, what);
	exit(1);
}

/* A frame from @src to @dst, tagged @tag if > 0; its length. */
static size_t make_frame(unsigned char *f, const unsigned char *dst,
			 const unsigned char *src, int tag, uint32_t seq)
{
	size_t o = 12;

	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	if (tag > 0) {
		f[o++] = 0x81;
		f[o++] = 0x00;
		f[o++] = (unsigned char)(tag >> 8);
		f[o++] = (unsigned char)tag;
	}
	f[o++] = ETYPE >> 8;
	f[o++] = ETYPE & 0xff;
	memcpy(f + o, "KGBENCH!", 8);
	memcpy(f + o + 8, &seq, 4);
	memset(f + o + 12, 0x5a, FRAME - 14 - 12);
	return FRAME + (tag > 0 ? 4 : 0);
}

/* An untagged bench frame as it must reach a guest. */
static int bench_frame(const unsigned char *f, size_t len)
{
	return len == FRAME && f[12] == ETYPE >> 8 && f[13] == (ETYPE & 0xff) &&
	       !memcmp(f + 14, "KGBENCH!", 8);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t uplink_tx_packets(void)
{
	char buf[32] = "";
	FILE *f = fopen("/sys/class/net/" UPLINK "/statistics/tx_packets", "r");

	if (!f || !fgets(buf, sizeof(buf), f))
		die("/sys/class/net/" UPLINK "/statistics/tx_packets", errno);
	fclose(f);
	return strtoull(buf, NULL, 10);
}

/* Run @fn with the calling thread in netns "up"; its result. */
static int in_netns(int (*fn)(void *), void *arg)
{
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int up = open(NETNS, O_RDONLY | O_CLOEXEC);
	int ret;

	if (self < 0 || up < 0)
		die(NETNS, errno);
	if (setns(up, CLONE_NEWNET))
		die("setns " NETNS, errno);
	ret = fn(arg);
	if (setns(self, CLONE_NEWNET))
		die("setns back", errno);
	close(self);
	close(up);
	return ret;
}

/* An AF_PACKET socket bound to vup-p (in the current netns). */
static int peer_socket(void *arg)
{
	int proto = *(int *)arg;
	struct sockaddr_ll sll = { .sll_family = AF_PACKET,
				   .sll_protocol = htons(proto) };
	int s, one = 1;

	s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(proto));
	if (s < 0)
		die("AF_PACKET", errno);
	sll.sll_ifindex = (int)if_nametoindex(UPLINK_PEER);
	if (!sll.sll_ifindex)
		die(UPLINK_PEER, errno);
	if (proto && setsockopt(s, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)))
		die("PACKET_AUXDATA", errno);
	if (bind(s, (struct sockaddr *)&sll, sizeof(sll)))
		die("bind " UPLINK_PEER, errno);
	return s;
}

static void attach(struct vhd *d, const char *tap)
{
	int fd, err;

	fd = vhd_tap_open(tap, 0);
	if (fd < 0)
		die(tap, -fd);
	err = vhd_open(d);
	if (err)
		die("/dev/vhost-net", -err);
	err = vhd_attach(d, fd);
	if (err)
		die("VHOST_NET_SET_BACKEND", -err);
	err = vhd_if_up(tap);
	if (err)
		die(tap, -err);
}

/* Wait for the call eventfd of @a's queue @qa and/or @b's queue @qb. */
static void wait_calls(struct vhd *a, int qa, struct vhd *b, int qb)
{
	struct pollfd p[2];
	uint64_t v;
	int n = 0, i;

	if (a)
		p[n++] = (struct pollfd){ .fd = a->vq[qa].call, .events = POLLIN };
	if (b)
		p[n++] = (struct pollfd){ .fd = b->vq[qb].call, .events = POLLIN };
	i = poll(p, (nfds_t)n, WAIT_MS);
	if (i < 0)
		die("poll", errno);
	if (!i)
		fail("frames lost (nothing completed or arrived for 2 s)");
	for (i = 0; i < n; i++)
		if ((p[i].revents & POLLIN) && read(p[i].fd, &v, sizeof(v)) < 0 &&
		    errno != EAGAIN)
			die("read call eventfd", errno);
}

/* Post TX frames on @a up to INFLIGHT, @dst; notify. Frames posted. */
static uint32_t tx_fill(struct vhd *a, const unsigned char *dst, uint32_t *sent,
			uint32_t n)
{
	unsigned char f[FRAME];
	uint32_t batch = 0;
	int err;

	while (vhd_tx_inflight(a) < INFLIGHT && *sent < n) {
		make_frame(f, dst, mac_a, 0, *sent);
		err = vhd_tx_post(a, f, FRAME);
		if (err)
			die("TX post", -err);
		(*sent)++;
		batch++;
	}
	if (batch && (err = vhd_notify(a, VHD_TX)))
		die("TX kick", -err);
	return batch;
}

/* Reap B's RX ring: frames received; checks each, reposts, notifies. */
static uint32_t rx_drain(struct vhd *b)
{
	const unsigned char *f;
	uint32_t got = 0, reposted = 0;
	size_t len;
	int id, err;

	while ((id = vhd_rx_next(b, &f, &len, 0)) >= 0) {
		/*
		 * A frame from neither bench sender is one of the test host's
		 * own (a 54-byte IPv4 frame from a host device was seen once):
		 * not counted. A bench sender's frame must arrive as sent.
		 */
		int ours = len >= 14 && (!memcmp(f + 6, mac_a, 6) ||
					 !memcmp(f + 6, mac_up, 6));

		if (ours && !bench_frame(f, len))
			fail("a frame reached the RX ring tagged or altered");
		vhd_rx_repost(b, id);
		reposted++;
		got += ours;
	}
	if (id != -ETIMEDOUT)
		die("RX ring", -id);
	if (reposted && (err = vhd_notify(b, VHD_RX)))
		die("RX kick", -err);
	return got;
}

static int64_t run_tx(uint32_t n)
{
	uint32_t sent = 0;
	int64_t t0 = now_ns();

	while (sent < n || vhd_tx_inflight(&dev_a)) {
		uint32_t posted = tx_fill(&dev_a, mac_up, &sent, n);

		if (!vhd_tx_reap(&dev_a) && !posted)
			wait_calls(&dev_a, VHD_TX, NULL, 0);
	}
	return now_ns() - t0;
}

static int64_t run_pair(uint32_t n)
{
	uint32_t sent = 0, got = 0;
	int64_t t0 = now_ns();

	while (got < n) {
		uint32_t posted = tx_fill(&dev_a, mac_b, &sent, n);
		int done = vhd_tx_reap(&dev_a);
		uint32_t in = rx_drain(&dev_b);

		got += in;
		if (!posted && !done && !in)
			wait_calls(&dev_a, VHD_TX, &dev_b, VHD_RX);
	}
	/* TX completions may trail the last arrival. */
	while (vhd_tx_inflight(&dev_a))
		if (!vhd_tx_reap(&dev_a))
			wait_calls(&dev_a, VHD_TX, NULL, 0);
	return now_ns() - t0;
}

static int64_t run_rx(uint32_t n)
{
	static unsigned char frames[INFLIGHT][FRAME + 4];
	static struct mmsghdr msgs[INFLIGHT];
	static struct iovec iov[INFLIGHT];
	uint32_t sent = 0, got = 0;
	int64_t t0 = now_ns();

	while (got < n) {
		uint32_t batch = 0, in;
		int r;

		while (sent + batch - got < INFLIGHT && sent + batch < n) {
			iov[batch].iov_base = frames[batch];
			iov[batch].iov_len = make_frame(frames[batch], mac_b, mac_up,
							vid, sent + batch);
			msgs[batch].msg_hdr = (struct msghdr){ .msg_iov = &iov[batch],
							       .msg_iovlen = 1 };
			batch++;
		}
		if (batch) {
			r = sendmmsg(src_fd, msgs, batch, 0);
			if (r < 0)
				die("sendmmsg", errno);
			sent += (uint32_t)r;
		}
		in = rx_drain(&dev_b);
		got += in;
		if (!batch && !in)
			wait_calls(NULL, 0, &dev_b, VHD_RX);
	}
	return now_ns() - t0;
}

/* tx: one frame from the TX ring reaches vup-p tagged @vid (0: untagged). */
static void check_uplink_tag(void)
{
	int proto = ETH_P_ALL, s = in_netns(peer_socket, &proto), err;
	unsigned char f[FRAME], got[2048];
	char cbuf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
	struct iovec iov = { .iov_base = got, .iov_len = sizeof(got) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct pollfd p = { .fd = s, .events = POLLIN };
	struct cmsghdr *c;
	ssize_t len;

	make_frame(f, mac_up, mac_a, 0, 0xffffffff);
	err = vhd_tx_sync(&dev_a, f, FRAME, WAIT_MS);
	if (err)
		die("TX check frame", -err);
	for (;;) {
		if (poll(&p, 1, WAIT_MS) <= 0)
			fail("the check frame did not reach " UPLINK_PEER);
		mh.msg_controllen = sizeof(cbuf);
		len = recvmsg(s, &mh, 0);
		if (len < 0)
			die("recvmsg", errno);
		if (len >= FRAME - 4 && !memcmp(got + 14, "KGBENCH!", 8))
			break;
	}
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		struct tpacket_auxdata aux;

		if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA)
			continue;
		memcpy(&aux, CMSG_DATA(c), sizeof(aux));
		if (!(aux.tp_status & TP_STATUS_VLAN_VALID))
			aux.tp_vlan_tci = 0;
		if ((aux.tp_vlan_tci & 0xfff) != vid) {
			fprintf(stderr, "vhostbench tx: frame reached " UPLINK_PEER
				" with VID %d, expected %d\n",
				aux.tp_vlan_tci & 0xfff, vid);
			exit(1);
		}
		close(s);
		return;
	}
	fail("no PACKET_AUXDATA on the check frame");
}

/*
 * Wait up to 5 s for bridge port @tap to forward. A tap that comes up
 * again (kvmguard opens a port it closed when the last run's VM was
 * destroyed) forwards once the link watch saw its carrier, which it does
 * at most once a second: up to a second after the device came up.
 */
static void wait_forwarding(const char *tap)
{
	char path[96], buf[16];

	snprintf(path, sizeof(path), "/sys/class/net/%s/brport/state", tap);
	for (int i = 0; i < 500; i++) {
		FILE *f = fopen(path, "r");
		int state = -1;

		if (f) {
			if (fgets(buf, sizeof(buf), f))
				state = atoi(buf);
			fclose(f);
		}
		if (state == 3)		/* BR_STATE_FORWARDING */
			return;
		usleep(10000);
	}
	fail("a bridge port does not forward");
}

static void create_vm(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (kvm < 0)
		die("/dev/kvm", errno);
	if (ioctl(kvm, KVM_CREATE_VM, 0) < 0)
		die("KVM_CREATE_VM", errno);
	/* Both fds stay open until exit: the VM lives as long as we do. */
}

int main(int argc, char **argv)
{
	int64_t (*run)(uint32_t);
	int64_t t1, tn;
	uint32_t n, n1;
	uint64_t up0 = 0;

	mode = argc > 1 ? argv[1] : "";
	if (argc == 3 && !strcmp(mode, "hold")) {
		create_vm();
		attach(&dev_a, argv[2]);
		printf("ready\n");
		fflush(stdout);
		pause();
		return 0;
	}
	if (argc < 3 || argc > 4 || (strcmp(mode, "tx") && strcmp(mode, "rx") &&
				     strcmp(mode, "pair"))) {
		fprintf(stderr, "usage: vhostbench tx|rx|pair N [VID] | hold TAP\n");
		return 2;
	}
	n = (uint32_t)strtoul(argv[2], NULL, 0);
	vid = argc > 3 ? atoi(argv[3]) : 0;
	if (n < 16 || vid < 0 || vid > 4094) {
		fprintf(stderr, "vhostbench: N >= 16, 0 <= VID <= 4094\n");
		return 2;
	}
	/*
	 * The test host has one CPU. Run SCHED_FIFO, before vhost-net creates
	 * its worker (on 6.4+ a thread of this process, which inherits the
	 * policy; before, a kthread): a wakeup of the worker by a frame never
	 * preempts this process, so the worker runs when it blocks and then
	 * drains what is queued, as it would on another CPU.
	 */
	if (sched_setscheduler(0, SCHED_FIFO, &(struct sched_param){ .sched_priority = 1 }))
		die("SCHED_FIFO", errno);
	create_vm();
	if (!strcmp(mode, "tx") || !strcmp(mode, "pair"))
		attach(&dev_a, TAP_A);
	if (!strcmp(mode, "rx") || !strcmp(mode, "pair"))
		attach(&dev_b, TAP_B);
	if (!strcmp(mode, "rx")) {
		int proto = 0;	/* send only */

		src_fd = in_netns(peer_socket, &proto);
	}
	run = !strcmp(mode, "tx") ? run_tx : !strcmp(mode, "rx") ? run_rx : run_pair;
	/* Let the bridge ports reach forwarding (forward_delay 0). */
	usleep(100000);
	if (!strcmp(mode, "tx") || !strcmp(mode, "pair"))
		wait_forwarding(TAP_A);
	if (!strcmp(mode, "rx") || !strcmp(mode, "pair"))
		wait_forwarding(TAP_B);
	if (run == run_tx)
		up0 = uplink_tx_packets();
	n1 = n / 8;
	KGPROF_MARK(KGPROF_BEGIN);	/* BENCH_PROFILE: bench/kgprof.h */
	run(n / 16);		/* warm up */
	t1 = kgprof_window(run, n1);
	tn = kgprof_window(run, n);
	if (run == run_tx) {
		if (uplink_tx_packets() - up0 < (uint64_t)n / 16 + n1 + n)
			fail("frames from the TX ring did not all reach " UPLINK);
		check_uplink_tag();
	}
	KGPROF_MARK(KGPROF_COMMIT);
	printf("%.2f %lld %lld %u\n", (double)(tn - t1) / (n - n1),
	       (long long)tn, (long long)t1, n);
	return 0;
}
