// SPDX-License-Identifier: GPL-2.0
/* netg: helpers for the network selftests (see netg.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>

#include "hcg.h"
#include "memg.h"
#include "netg.h"

#define MAGIC		"KGNT"
#define PAYLOAD		46	/* bytes after the ethertype: a 60-byte untagged frame */

const uint8_t netg_bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

void netg_mac(int i, uint8_t *mac)
{
	const uint8_t m[6] = { 0x02, 0x6b, 0x67, 0x00, 0x00, (uint8_t)(i + 1) };

	memcpy(mac, m, 6);
}

uint32_t netg_cookie(void)
{
	static uint32_t cookie;
	static pid_t owner;

	/* The harness forks a child per test: each gets its own. */
	if (owner != getpid()) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		owner = getpid();
		cookie = (uint32_t)owner * 2654435761u ^ (uint32_t)ts.tv_nsec;
	}
	return cookie;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

size_t netg_frame(uint8_t *buf, const uint8_t *dst, const uint8_t *src,
		  const struct netg_tag *tags, int ntags, uint32_t seq)
{
	uint32_t cookie = htonl(netg_cookie()), nseq = htonl(seq);
	size_t off = 12;

	memcpy(buf, dst, 6);
	memcpy(buf + 6, src, 6);
	for (int i = 0; i < ntags; i++, off += 4) {
		put16(buf + off, tags[i].tpid);
		put16(buf + off + 2, tags[i].tci);
	}
	put16(buf + off, NETG_ETH_TEST);
	off += 2;
	memset(buf + off, 0, PAYLOAD);
	memcpy(buf + off, MAGIC, 4);
	memcpy(buf + off + 4, &cookie, 4);
	memcpy(buf + off + 8, &nseq, 4);
	return off + PAYLOAD;
}

static bool is_vlan(uint16_t t)
{
	return t == ETH_Q || t == ETH_AD || t == 0x9100;
}

bool netg_parse(const uint8_t *buf, size_t len, struct netg_pkt *p)
{
	size_t off = 12;
	uint32_t v;

	memset(p, 0, sizeof(*p));
	if (len < 14)
		return false;
	p->len = len;
	memcpy(p->dst, buf, 6);
	memcpy(p->src, buf + 6, 6);
	while (off + 6 <= len && is_vlan(get16(buf + off)) && p->ntags < 3) {
		p->tags[p->ntags].tpid = get16(buf + off);
		p->tags[p->ntags].tci = get16(buf + off + 2);
		p->ntags++;
		off += 4;
	}
	p->etype = get16(buf + off);
	off += 2;
	if (p->etype != NETG_ETH_TEST || off + 12 > len || memcmp(buf + off, MAGIC, 4))
		return true;
	memcpy(&v, buf + off + 4, 4);
	if (ntohl(v) != netg_cookie())
		return true;
	memcpy(&v, buf + off + 8, 4);
	p->seq = ntohl(v);
	p->ours = true;
	return true;
}

/* ---- ports ---- */

int netg_noipv6(const char *dev)
{
	char path[128];
	int fd, err = 0;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", dev);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;	/* no IPv6 at all */
	if (write(fd, "1\n", 2) != 2)
		err = -errno;
	close(fd);
	return err;
}

int netg_ifindex(const char *name)
{
	unsigned int i = if_nametoindex(name);

	return i ? (int)i : -errno;
}

int netg_tap_open(struct netg_port *p, const char *name, unsigned int flags, int ifindex)
{
	struct ifreq ifr = { 0 };
	int err;

	memset(p, 0, sizeof(*p));
	p->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (p->fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | ((flags & NETG_VNET) ? IFF_VNET_HDR : 0);
	if (ifindex > 0 && ioctl(p->fd, TUNSETIFINDEX, &ifindex))
		goto fail;
	if (ioctl(p->fd, TUNSETIFF, &ifr))
		goto fail;
	if ((flags & NETG_VNET) &&
	    ioctl(p->fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6))
		goto fail;
	snprintf(p->name, sizeof(p->name), "%s", ifr.ifr_name);
	p->vnet = flags & NETG_VNET;
	p->ifindex = netg_ifindex(p->name);
	if (p->ifindex < 0) {
		errno = -p->ifindex;
		goto fail;
	}
	err = netg_noipv6(p->name);
	if (err) {
		errno = -err;
		goto fail;
	}
	return 0;
fail:
	err = -errno;
	close(p->fd);
	p->fd = -1;
	return err;
}

int netg_macvtap_open(struct netg_port *p, const char *name, unsigned int flags)
{
	struct ifreq ifr = { 0 };
	char path[64];
	int err;

	memset(p, 0, sizeof(*p));
	p->ifindex = netg_ifindex(name);
	if (p->ifindex < 0)
		return p->ifindex;
	snprintf(path, sizeof(path), "/dev/tap%d", p->ifindex);
	p->fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (p->fd < 0)
		return -errno;
	/* A macvtap queue starts with IFF_VNET_HDR; TUNSETIFF sets its flags. */
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | ((flags & NETG_VNET) ? IFF_VNET_HDR : 0);
	if (ioctl(p->fd, TUNSETIFF, &ifr) ||
	    ((flags & NETG_VNET) &&
	     ioctl(p->fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6))) {
		err = -errno;
		close(p->fd);
		p->fd = -1;
		return err;
	}
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->vnet = flags & NETG_VNET;
	p->macvtap = true;
	return 0;
}

void netg_port_close(struct netg_port *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

int netg_send(const struct netg_port *p, const void *buf, size_t len)
{
	ssize_t n = write(p->fd, buf, len);

	if (n < 0)
		return -errno;
	return n == (ssize_t)len ? 0 : -EIO;
}

int netg_send_test(const struct netg_port *p, const uint8_t *dst, int from,
		   const struct netg_tag *tags, int ntags, uint32_t seq)
{
	uint8_t buf[sizeof(struct virtio_net_hdr) + 128];
	size_t hl = p->vnet ? sizeof(struct virtio_net_hdr) : 0;
	uint8_t src[6];

	netg_mac(from, src);
	memset(buf, 0, hl);
	return netg_send(p, buf, hl + netg_frame(buf + hl, dst, src, tags, ntags, seq));
}

/* ---- receiving ---- */

int netg_recv(int fd, void *buf, size_t size, int ms)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
	} c;
	struct sockaddr_ll sll;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct iovec iov = { .iov_base = buf, .iov_len = size - 4 };
		struct msghdr msg = {
			.msg_name = &sll, .msg_namelen = sizeof(sll),
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = &c, .msg_controllen = sizeof(c),
		};
		struct cmsghdr *cm;
		ssize_t n;
		int left, r;

		clock_gettime(CLOCK_MONOTONIC, &t);
		left = ms - (int)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		r = poll(&pfd, 1, left > 0 ? left : 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		memset(&sll, 0, sizeof(sll));
		n = recvmsg(fd, &msg, MSG_DONTWAIT);
		if (n < 0 && errno == ENOTSOCK) {
			/* A tap or macvtap fd. */
			n = read(fd, buf, size);
			if (n < 0 && errno == EAGAIN)
				continue;
			return n < 0 ? -errno : (int)n;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return -errno;
		if (msg.msg_namelen && sll.sll_pkttype == PACKET_OUTGOING)
			continue;
		for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			struct tpacket_auxdata aux;
			uint8_t *f = buf;

			if (cm->cmsg_level != SOL_PACKET || cm->cmsg_type != PACKET_AUXDATA)
				continue;
			memcpy(&aux, CMSG_DATA(cm), sizeof(aux));
			if (!(aux.tp_status & TP_STATUS_VLAN_VALID) || n < 12)
				continue;
			memmove(f + 16, f + 12, n - 12);
			put16(f + 12, (aux.tp_status & TP_STATUS_VLAN_TPID_VALID) ?
			      aux.tp_vlan_tpid : ETH_Q);
			put16(f + 14, aux.tp_vlan_tci);
			n += 4;
		}
		return (int)n;
	}
}

/* Say what a frame that is not ours was (the first few of a process). */
static void netg_stray(const uint8_t *buf, int len)
{
	static pid_t owner;
	static int n;
	struct netg_pkt p;

	if (owner != getpid()) {
		owner = getpid();
		n = 0;
	}
	if (n++ >= 4 || !netg_parse(buf, len, &p))
		return;
	printf("# a frame not of this test: %d bytes, %02x:%02x:%02x:%02x:%02x:%02x > "
	       "%02x:%02x:%02x:%02x:%02x:%02x, %d tags (%#x), type %#06x\n", len,
	       p.src[0], p.src[1], p.src[2], p.src[3], p.src[4], p.src[5],
	       p.dst[0], p.dst[1], p.dst[2], p.dst[3], p.dst[4], p.dst[5],
	       p.ntags, p.ntags ? p.tags[0].tci : 0, p.etype);
}

int netg_collect(int fd, int want, int ms, struct netg_pkt *out, int max)
{
	static uint8_t buf[NETG_FRAME_MAX];
	struct timespec t0, t;
	int n = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct netg_pkt p;
		int left, len;

		if (want > 0 && n >= want)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		left = ms - (int)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		/* Past @ms, what is queued is still read. */
		len = netg_recv(fd, buf, sizeof(buf), left > 0 ? left : 0);
		if (len < 0)
			break;
		if (!netg_parse(buf, len, &p) || !p.ours) {
			netg_stray(buf, len);
			continue;
		}
		if (out && n < max)
			out[n] = p;
		n++;
	}
	return n;
}

void netg_flush(int fd)
{
	static uint8_t buf[NETG_FRAME_MAX];

	while (netg_recv(fd, buf, sizeof(buf), 0) >= 0)
		;
}

/* ---- iproute2 ---- */

static int batch(const char *tool, const char *fmt, va_list ap)
{
	char cmd[64], *in = NULL, *err = NULL;
	int rc;

	if (vasprintf(&in, fmt, ap) < 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "%s -batch -", tool);
	rc = kg_run(cmd, in, NULL, &err);
	if (rc) {
		printf("# %s -batch failed (%d):\n", tool, rc);
		for (char *l = strtok(in, "\n"); l; l = strtok(NULL, "\n"))
			printf("#   < %s\n", l);
		for (char *l = err ? strtok(err, "\n") : NULL; l; l = strtok(NULL, "\n"))
			printf("#   > %s\n", l);
	}
	free(in);
	free(err);
	return rc ? -1 : 0;
}

int netg_ip(const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = batch(NETG_IP, fmt, ap);
	va_end(ap);
	return r;
}

int netg_bridge(const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = batch(NETG_BRIDGE, fmt, ap);
	va_end(ap);
	return r;
}

void netg_cleanup(void)
{
	char *cmds = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&cmds, &len);
	struct dirent *d;
	DIR *dir;

	if (!f)
		return;
	/* Taps we hold are ours to close; links are deleted (a veth takes its
	 * peer along), then the namespaces. */
	dir = opendir("/sys/class/net");
	while (dir && (d = readdir(dir)))
		if (!strncmp(d->d_name, NETG_PREFIX, strlen(NETG_PREFIX)))
			fprintf(f, "link del dev %s\n", d->d_name);
	if (dir)
		closedir(dir);
	dir = opendir("/run/netns");
	while (dir && (d = readdir(dir)))
		if (!strncmp(d->d_name, NETG_PREFIX, strlen(NETG_PREFIX)))
			fprintf(f, "netns del %s\n", d->d_name);
	if (dir)
		closedir(dir);
	fclose(f);
	if (len)
		kg_run(NETG_IP " -force -batch -", cmds, NULL, NULL);
	free(cmds);
}

int netg_prereq(char *why, size_t wsz)
{
	if (access(NETG_IP, X_OK)) {
		snprintf(why, wsz, "iproute2's %s is missing", NETG_IP);
		return -1;
	}
	if (access(NETG_BRIDGE, X_OK)) {
		snprintf(why, wsz, "iproute2's %s is missing", NETG_BRIDGE);
		return -1;
	}
	if (kg_run(NETG_IP " -V", NULL, NULL, NULL)) {
		snprintf(why, wsz, "%s does not run", NETG_IP);
		return -1;
	}
	if (access("/dev/net/tun", R_OK | W_OK)) {
		snprintf(why, wsz, "/dev/net/tun is not usable");
		return -1;
	}
	return 0;
}

void netg_prereq_or_skip(void)
{
	char why[128];

	if (netg_prereq(why, sizeof(why))) {
		printf("TAP version 13\n");
		printf("1..0 # SKIP %s\n", why);
		exit(4);
	}
}

/* ---- namespaces and packet sockets ---- */

int netg_enter(const char *ns)
{
	static int init_fd = -1;
	char path[128];
	int fd, err = 0;

	if (init_fd < 0) {
		init_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		if (init_fd < 0)
			return -errno;
	}
	if (!ns)
		return setns(init_fd, CLONE_NEWNET) ? -errno : 0;
	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (setns(fd, CLONE_NEWNET))
		err = -errno;
	close(fd);
	return err;
}

int netg_psock(const char *ns, const char *ifname)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int fd, one = 1, err;

	if (ns && (err = netg_enter(ns)))
		return err;
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	sll.sll_ifindex = netg_ifindex(ifname);
	if (sll.sll_ifindex < 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		err = sll.sll_ifindex < 0 ? sll.sll_ifindex : -errno;
		close(fd);
		goto out;
	}
	err = fd;
out:
	if (ns)
		netg_enter(NULL);
	return err;
}

int netg_psock_vnet(int fd)
{
	int one = 1;

	return setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) ? -errno : 0;
}

int netg_psend(int fd, const void *buf, size_t len)
{
	ssize_t n = send(fd, buf, len, 0);

	if (n < 0)
		return -errno;
	return n == (ssize_t)len ? 0 : -EIO;
}

int netg_psend_test(int fd, const uint8_t *dst, const uint8_t *src,
		    const struct netg_tag *tags, int ntags, uint32_t seq)
{
	uint8_t buf[128];

	return netg_psend(fd, buf, netg_frame(buf, dst, src, tags, ntags, seq));
}

/* ---- topology ---- */

static const char *port_name(int i)
{
	static const char *names[NETG_MAX_PORTS] = { "kgna", "kgnb", "kgnc", "kgnd" };

	return names[i];
}

int netg_topo_up(struct netg_topo *t, unsigned int flags, int nports, const uint16_t *vids)
{
	char cmds[2048];
	size_t o = 0;
	int err;

	memset(t, 0, sizeof(*t));
	t->flags = flags;
	t->nports = nports;
	for (int i = 0; i < NETG_MAX_PORTS; i++)
		t->port[i].fd = -1;
	for (int i = 0; i < NETG_UP_N; i++)
		t->up[i] = -1;
	netg_cleanup();

	/*
	 * Nothing but the test's frames may move: no IPv6 anywhere (router
	 * and neighbour solicitations, MLD), no multicast snooping on the
	 * bridge (its device would join 224.0.0.106 and send IGMP reports).
	 * The uplink's namespace first.
	 */
	if (netg_ip("netns add " NETG_NS "\n"))
		return -EIO;
	err = netg_enter(NETG_NS);
	if (err)
		return err;
	netg_noipv6("all");
	netg_noipv6("default");
	netg_enter(NULL);

	if (flags & NETG_MACVTAP) {
		o += snprintf(cmds + o, sizeof(cmds) - o,
			      "link add " NETG_UP " type veth peer name " NETG_UPP
			      " netns " NETG_NS "\n");
		for (int i = 0; i < nports; i++) {
			uint8_t m[6];

			netg_mac(i, m);
			o += snprintf(cmds + o, sizeof(cmds) - o,
				      "link add link " NETG_UP " name %s address "
				      "%02x:%02x:%02x:%02x:%02x:%02x type macvtap mode bridge\n",
				      port_name(i), m[0], m[1], m[2], m[3], m[4], m[5]);
		}
	} else {
		o += snprintf(cmds + o, sizeof(cmds) - o,
			      "link add " NETG_BR " type bridge stp_state 0 forward_delay 0 "
			      "mcast_snooping 0%s\n"
			      "link add " NETG_UP " type veth peer name " NETG_UPP
			      " netns " NETG_NS "\n",
			      (flags & NETG_FILTERING) ? " vlan_filtering 1" : "");
	}
	if (netg_ip("%s", cmds))
		return -EIO;
	netg_noipv6(NETG_UP);
	if (!(flags & NETG_MACVTAP))
		netg_noipv6(NETG_BR);
	for (int i = 0; i < nports; i++) {
		unsigned int pf = (flags & NETG_PORT_VNET) ? NETG_VNET : 0;

		if (flags & NETG_MACVTAP) {
			netg_noipv6(port_name(i));
			err = netg_macvtap_open(&t->port[i], port_name(i), pf);
		} else {
			err = netg_tap_open(&t->port[i], port_name(i), pf, 0);
		}
		if (err) {
			printf("# port %s: %s\n", port_name(i), strerror(-err));
			return err;
		}
	}

	o = 0;
	if (!(flags & NETG_MACVTAP)) {
		o += snprintf(cmds + o, sizeof(cmds) - o,
			      "link set " NETG_UP " master " NETG_BR "\n");
		for (int i = 0; i < nports; i++)
			o += snprintf(cmds + o, sizeof(cmds) - o, "link set %s master " NETG_BR "\n",
				      port_name(i));
		o += snprintf(cmds + o, sizeof(cmds) - o, "link set " NETG_BR " up\n");
	}
	o += snprintf(cmds + o, sizeof(cmds) - o, "link set " NETG_UP " up\n");
	for (int i = 0; i < nports; i++)
		o += snprintf(cmds + o, sizeof(cmds) - o, "link set %s up\n", port_name(i));
	if (netg_ip("%s", cmds))
		return -EIO;

	if (flags & NETG_FILTERING) {
		/* The VMs' VIDs tagged (not PVID, not untagged) on their ports. */
		o = 0;
		for (int i = 0; i < nports; i++) {
			t->vid[i] = vids[i];
			o += snprintf(cmds + o, sizeof(cmds) - o, "vlan add dev %s vid %u\n",
				      port_name(i), vids[i]);
		}
		o += snprintf(cmds + o, sizeof(cmds) - o,
			      "vlan add dev " NETG_UP " vid 100\nvlan add dev " NETG_UP " vid 200\n");
		if (netg_bridge("%s", cmds))
			return -EIO;
	}

	err = netg_enter(NETG_NS);
	if (err)
		return err;
	err = netg_ip("link set " NETG_UPP " up\n"
		      "link add link " NETG_UPP " name " NETG_UPP ".100 type vlan id 100\n"
		      "link add link " NETG_UPP " name " NETG_UPP ".200 type vlan id 200\n"
		      "link set " NETG_UPP ".100 up\n"
		      "link set " NETG_UPP ".200 up\n") ? -EIO : 0;
	if (!err) {
		t->up[NETG_UP_ALL] = netg_psock(NULL, NETG_UPP);
		t->up[NETG_UP_100] = netg_psock(NULL, NETG_UPP ".100");
		t->up[NETG_UP_200] = netg_psock(NULL, NETG_UPP ".200");
		for (int i = 0; i < NETG_UP_N && !err; i++)
			if (t->up[i] < 0)
				err = t->up[i];
	}
	netg_enter(NULL);
	return err;
}

void netg_topo_down(struct netg_topo *t)
{
	for (int i = 0; i < NETG_UP_N; i++) {
		if (t->up[i] >= 0)
			close(t->up[i]);
		t->up[i] = -1;
	}
	for (int i = 0; i < NETG_MAX_PORTS; i++)
		if (t->port[i].fd >= 0)
			netg_port_close(&t->port[i]);
	netg_cleanup();
}

/* ---- kvmguard requests ---- */

int netg_policy(struct gnl *g, uint8_t cmd, const char *name, struct netg_rules r)
{
	static struct gnl_msg m;

	kg_req(g, &m, cmd, false);
	gnl_put_str(&m, KVMGUARD_A_POLICY_NAME, name);
	if (r.mode)
		gnl_put_u8(&m, KVMGUARD_A_POLICY_MODE, r.mode == NETG_AUDIT ?
			   KVMGUARD_MODE_AUDIT : KVMGUARD_MODE_ENFORCE);
	if (r.tag)
		gnl_put_u16(&m, KVMGUARD_A_POLICY_NET_TAG, r.tag == NETG_NOTAG ? 0 : r.tag);
	if (r.isolate)
		gnl_put_u8(&m, KVMGUARD_A_POLICY_NET_ISOLATE, r.isolate == NETG_ISO_ON);
	if (r.trunk_set) {
		uint8_t bits[KVMGUARD_NET_TRUNK_BYTES] = { 0 };

		for (int i = 0; i < r.ntrunk; i++)
			bits[r.trunk[i] / 8] |= 1u << (r.trunk[i] % 8);
		gnl_put(&m, KVMGUARD_A_POLICY_NET_TRUNK, bits, sizeof(bits));
	}
	return gnl_transact(g, &m, NULL, NULL);
}

static void put_dev(struct gnl_msg *m, const char *ifname, uint32_t ifindex)
{
	if (ifname)
		gnl_put_str(m, KVMGUARD_A_NET_IFNAME, ifname);
	else
		gnl_put_u32(m, KVMGUARD_A_NET_IFINDEX, ifindex);
}

int netg_bind(struct gnl *g, uint64_t vm_id, const char *ifname, uint32_t ifindex)
{
	static struct gnl_msg m;

	kg_req(g, &m, KVMGUARD_CMD_NET_BIND, false);
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, vm_id);
	put_dev(&m, ifname, ifindex);
	return gnl_transact(g, &m, NULL, NULL);
}

int netg_unbind(struct gnl *g, const char *ifname, uint32_t ifindex)
{
	static struct gnl_msg m;

	kg_req(g, &m, KVMGUARD_CMD_NET_UNBIND, false);
	put_dev(&m, ifname, ifindex);
	return gnl_transact(g, &m, NULL, NULL);
}

/* Attributes of the nest @a into tb[0..max]; -EINVAL if malformed. */
static int nest_parse(const struct nlattr *a, const struct nlattr **tb, int max)
{
	const unsigned char *p = (const unsigned char *)a + NLA_HDRLEN;
	long rem = gnl_alen(a);

	memset(tb, 0, sizeof(*tb) * (max + 1));
	while (rem >= NLA_HDRLEN) {
		const struct nlattr *x = (const void *)p;
		int t = x->nla_type & NLA_TYPE_MASK;

		if (x->nla_len < NLA_HDRLEN || x->nla_len > rem)
			return -EINVAL;
		if (t <= max)
			tb[t] = x;
		rem -= NLA_ALIGN(x->nla_len);
		p += NLA_ALIGN(x->nla_len);
	}
	return rem > 0 ? -EINVAL : 0;
}

static void copy_name(char *dst, size_t size, const struct nlattr *a)
{
	size_t len = gnl_alen(a);

	if (len >= size)
		len = size - 1;
	memcpy(dst, (const char *)a + NLA_HDRLEN, len);
	dst[len] = 0;
}

struct devs_arg {
	struct netg_dev *out;
	int max, n;
	int err;
};

static int devs_cb(const struct nlmsghdr *nlh, void *arg)
{
	static const uint16_t ctr[] = {
		KVMGUARD_A_NET_TAGGED, KVMGUARD_A_NET_FORWARDED, KVMGUARD_A_NET_DELIVERED,
		KVMGUARD_A_NET_TAG_DENIED, KVMGUARD_A_NET_SEGMENT_DENIED,
		KVMGUARD_A_NET_ISOLATE_DENIED,
	};
	const struct nlattr *tb[KVMGUARD_A_MAX + 1], *dtb[KVMGUARD_A_MAX + 1];
	struct devs_arg *d = arg;
	const struct nlattr *a;
	long rem;

	if (gnl_parse(nlh, tb, KVMGUARD_A_MAX, NULL) || !tb[KVMGUARD_A_VM_NET_DEVS]) {
		d->err = -EBADMSG;
		return 0;
	}
	a = (const void *)((const char *)tb[KVMGUARD_A_VM_NET_DEVS] + NLA_HDRLEN);
	rem = gnl_alen(tb[KVMGUARD_A_VM_NET_DEVS]);
	while (rem >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= rem) {
		struct netg_dev x = { 0 };

		if ((a->nla_type & NLA_TYPE_MASK) != KVMGUARD_A_NET_DEV ||
		    nest_parse(a, dtb, KVMGUARD_A_MAX) ||
		    !dtb[KVMGUARD_A_NET_IFINDEX] || !dtb[KVMGUARD_A_NET_IFNAME] ||
		    !dtb[KVMGUARD_A_NET_BOUND_BY]) {
			d->err = -EBADMSG;
			return 0;
		}
		x.ifindex = gnl_get_u32(dtb[KVMGUARD_A_NET_IFINDEX]);
		copy_name(x.ifname, sizeof(x.ifname), dtb[KVMGUARD_A_NET_IFNAME]);
		x.bound_by = gnl_get_u8(dtb[KVMGUARD_A_NET_BOUND_BY]);
		for (size_t i = 0; i < sizeof(ctr) / sizeof(ctr[0]); i++) {
			const struct nlattr *c = dtb[ctr[i]];
			uint64_t v = 0;

			if (c && gnl_alen(c) == 8)
				v = gnl_get_u64(c);
			else
				x.missing |= 1u << i;
			switch (ctr[i]) {
			case KVMGUARD_A_NET_TAGGED: x.tagged = v; break;
			case KVMGUARD_A_NET_FORWARDED: x.forwarded = v; break;
			case KVMGUARD_A_NET_DELIVERED: x.delivered = v; break;
			case KVMGUARD_A_NET_TAG_DENIED: x.tag_denied = v; break;
			case KVMGUARD_A_NET_SEGMENT_DENIED: x.segment_denied = v; break;
			default: x.isolate_denied = v; break;
			}
		}
		if (d->n < d->max)
			d->out[d->n] = x;
		d->n++;
		rem -= NLA_ALIGN(a->nla_len);
		a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len));
	}
	if (rem >= NLA_HDRLEN)
		d->err = -EBADMSG;
	return 0;
}

int netg_devs(struct gnl *g, uint64_t vm_id, struct netg_dev *out, int max)
{
	static struct gnl_msg m;
	struct devs_arg d = { .out = out, .max = max };
	int err;

	kg_req(g, &m, KVMGUARD_CMD_VM_GET, false);
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, vm_id);
	err = gnl_transact(g, &m, devs_cb, &d);
	if (err)
		return err;
	return d.err ? d.err : d.n;
}

int netg_dev(struct gnl *g, uint64_t vm_id, const char *ifname, struct netg_dev *dev)
{
	struct netg_dev all[8];
	int n = netg_devs(g, vm_id, all, 8);

	if (n < 0)
		return n;
	for (int i = 0; i < n && i < 8; i++) {
		if (!strcmp(all[i].ifname, ifname)) {
			*dev = all[i];
			return 0;
		}
	}
	return -ENOENT;
}

int netg_dev_check(struct gnl *g, uint64_t vm_id, const char *ifname,
		   const struct netg_dev *w, char *why, size_t wsz)
{
	struct netg_dev d;
	int err = netg_dev(g, vm_id, ifname, &d);

	if (err) {
		snprintf(why, wsz, "%s of VM %llu: %s", ifname, (unsigned long long)vm_id,
			 strerror(-err));
		return -1;
	}
	if (d.missing || d.tagged != w->tagged || d.forwarded != w->forwarded ||
	    d.delivered != w->delivered || d.tag_denied != w->tag_denied ||
	    d.segment_denied != w->segment_denied || d.isolate_denied != w->isolate_denied) {
		snprintf(why, wsz, "%s counters tagged/forwarded/delivered/tag/segment/isolate "
			 "%llu/%llu/%llu/%llu/%llu/%llu, want %llu/%llu/%llu/%llu/%llu/%llu%s",
			 ifname, (unsigned long long)d.tagged, (unsigned long long)d.forwarded,
			 (unsigned long long)d.delivered, (unsigned long long)d.tag_denied,
			 (unsigned long long)d.segment_denied,
			 (unsigned long long)d.isolate_denied,
			 (unsigned long long)w->tagged, (unsigned long long)w->forwarded,
			 (unsigned long long)w->delivered, (unsigned long long)w->tag_denied,
			 (unsigned long long)w->segment_denied,
			 (unsigned long long)w->isolate_denied,
			 d.missing ? " (some counters missing)" : "");
		return -1;
	}
	return 0;
}

/* ---- events ---- */

static bool take_net_event(const struct nlmsghdr *nlh,
			   const struct nlattr **tb, void *ctx)
{
	struct kg_event_sink *sink = ctx;
	struct netg_event e = { 0 };

	(void)nlh;
	if (!tb[KVMGUARD_A_EVENT_TYPE] ||
	    gnl_get_u8(tb[KVMGUARD_A_EVENT_TYPE]) != KVMGUARD_EVENT_NET ||
	    !tb[KVMGUARD_A_VM_ID])
		return false;
	e.vm_id = gnl_get_u64(tb[KVMGUARD_A_VM_ID]);
	if ((sink->vm_id && e.vm_id != sink->vm_id) || sink->n >= sink->max)
		return false;
	e.rule = e.dir = e.action = 0xff;
	if (tb[KVMGUARD_A_VM_PID])
		e.pid = gnl_get_u32(tb[KVMGUARD_A_VM_PID]);
	if (tb[KVMGUARD_A_POLICY_NAME]) {
		e.has_policy = true;
		copy_name(e.policy, sizeof(e.policy), tb[KVMGUARD_A_POLICY_NAME]);
	}
	if (tb[KVMGUARD_A_EVENT_NET_RULE])
		e.rule = gnl_get_u8(tb[KVMGUARD_A_EVENT_NET_RULE]);
	if (tb[KVMGUARD_A_EVENT_NET_DIR])
		e.dir = gnl_get_u8(tb[KVMGUARD_A_EVENT_NET_DIR]);
	if (tb[KVMGUARD_A_EVENT_ACTION])
		e.action = gnl_get_u8(tb[KVMGUARD_A_EVENT_ACTION]);
	if (tb[KVMGUARD_A_EVENT_COUNT])
		e.count = gnl_get_u64(tb[KVMGUARD_A_EVENT_COUNT]);
	e.has_time = tb[KVMGUARD_A_EVENT_TIME_NS];
	e.has_ifindex = tb[KVMGUARD_A_NET_IFINDEX];
	if (e.has_ifindex)
		e.ifindex = gnl_get_u32(tb[KVMGUARD_A_NET_IFINDEX]);
	e.has_ifname = tb[KVMGUARD_A_NET_IFNAME];
	if (e.has_ifname)
		copy_name(e.ifname, sizeof(e.ifname), tb[KVMGUARD_A_NET_IFNAME]);
	e.has_vid = tb[KVMGUARD_A_EVENT_NET_VID] &&
		    gnl_alen(tb[KVMGUARD_A_EVENT_NET_VID]) == 2;
	if (e.has_vid)
		memcpy(&e.vid, (const char *)tb[KVMGUARD_A_EVENT_NET_VID] + NLA_HDRLEN, 2);
	((struct netg_event *)sink->ev)[sink->n++] = e;
	return true;
}

int netg_events(struct gnl *sub, uint64_t vm_id, int want, int ms,
		struct netg_event *ev, int max)
{
	struct kg_event_sink sink = { .vm_id = vm_id, .ev = ev, .max = max };

	return kg_collect_events(sub, ms, want, take_net_event, &sink);
}

int netg_vm(struct gnl *g, struct vm *vm, const char *policy, uint64_t *id)
{
	return memg_vm(g, vm, policy, id);
}

/* ---- lab ---- */

/* The topology main() built for every test of the binary (see netg.h). */
static struct netg_topo shared = { .nports = -1 };

int netg_shared_up(unsigned int flags, int nports, const uint16_t *vids)
{
	int err = netg_topo_up(&shared, flags, nports, vids);

	if (err) {
		netg_topo_down(&shared);
		shared.nports = -1;
	}
	return err;
}

void netg_shared_down(void)
{
	if (shared.nports < 0)
		return;
	netg_topo_down(&shared);
	shared.nports = -1;
}

/* Is the bridge filtering VLANs now? */
static bool filtering_now(void)
{
	char c = '0';
	int fd = open("/sys/class/net/" NETG_BR "/bridge/vlan_filtering", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (read(fd, &c, 1) != 1)
			c = '0';
		close(fd);
	}
	return c == '1';
}

/*
 * The shared topology for a test with @flags: a bridge is switched to VLAN
 * filtering (the tagged VIDs of NETG_FILTERING added) or back, no port is
 * bound, no frame queued. 0, -ENOENT if it does not fit, -EIO.
 */
static int shared_use(struct gnl *g, struct netg_topo *t, unsigned int flags,
		      int nports, const uint16_t *vids)
{
	bool want = flags & NETG_FILTERING;

	if (shared.nports < nports ||
	    (shared.flags & ~NETG_FILTERING) != (flags & ~NETG_FILTERING))
		return -ENOENT;
	if (!(flags & NETG_MACVTAP) && want != filtering_now()) {
		char cmds[512];
		size_t o = 0;

		if (netg_ip("link set " NETG_BR " type bridge vlan_filtering %d\n", want))
			return -EIO;
		for (int i = 0; want && i < nports; i++)
			o += snprintf(cmds + o, sizeof(cmds) - o, "vlan add dev %s vid %u\n",
				      shared.port[i].name, vids[i]);
		if (want && netg_bridge("%svlan add dev " NETG_UP " vid 100\n"
					"vlan add dev " NETG_UP " vid 200\n", cmds))
			return -EIO;
	}
	*t = shared;
	t->flags = flags;
	for (int i = 0; i < nports; i++)
		t->vid[i] = want ? vids[i] : 0;
	t->shared = true;
	/*
	 * The VMs of the test before are gone; their ports may still be
	 * bound for a moment (the binding ends in a work item). Frames it
	 * left (not ours: another cookie) go too.
	 */
	for (int i = 0; i < shared.nports; i++)
		netg_unbind(g, shared.port[i].name, 0);
	for (int i = 0; i < t->nports; i++)
		netg_flush(t->port[i].fd);
	for (int i = 0; i < NETG_UP_N; i++)
		netg_flush(t->up[i]);
	return 0;
}

int netg_lab_up(struct netg_lab *l, unsigned int flags, int nports, const uint16_t *vids)
{
	int err;

	memset(l, 0, sizeof(*l));
	l->g.fd = l->sub.fd = l->klog.fd = -1;
	for (int i = 0; i < NETG_UP_N; i++)
		l->t.up[i] = -1;
	for (int i = 0; i < NETG_MAX_PORTS; i++)
		l->t.port[i].fd = -1;
	err = hcg_klog_open(&l->klog);
	if (!err)
		err = kg_open(&l->g);
	if (err)
		return err;
	kg_cleanup(&l->g, NETG_POLICY);
	err = kg_open(&l->sub);
	if (!err)
		err = hcg_subscribe(&l->sub);
	if (err)
		return err;
	err = shared_use(&l->g, &l->t, flags, nports, vids);
	if (err == -ENOENT)
		err = netg_topo_up(&l->t, flags, nports, vids);
	return err;
}

void netg_lab_vm_destroy(struct netg_lab *l, int i)
{
	if (l->has_vm[i])
		vm_destroy(&l->vm[i]);
	l->has_vm[i] = false;
	l->id[i] = 0;
}

int netg_lab_vm(struct netg_lab *l, int i, const char *policy)
{
	int err;

	netg_lab_vm_destroy(l, i);
	err = netg_vm(&l->g, &l->vm[i], policy, &l->id[i]);
	if (err)
		return err;
	l->has_vm[i] = true;
	/* The VM of an earlier test may still be letting the port go. */
	for (int k = 0; k < 250; k++) {
		err = netg_bind(&l->g, l->id[i], l->t.port[i].name, 0);
		if (err != -EBUSY || !l->t.shared)
			break;
		usleep(20000);
	}
	if (err)
		printf("# bind %s to VM %llu: %s (%s)\n", l->t.port[i].name,
		       (unsigned long long)l->id[i], strerror(-err), l->g.ext_msg);
	return err;
}

void netg_lab_down(struct netg_lab *l)
{
	if (!l->t.shared)
		netg_topo_down(&l->t);
	for (int i = 0; i < NETG_MAX_PORTS; i++)
		netg_lab_vm_destroy(l, i);
	if (l->g.fd >= 0)
		kg_cleanup(&l->g, NETG_POLICY);
	gnl_close(&l->sub);
	gnl_close(&l->g);
}
