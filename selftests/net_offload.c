// SPDX-License-Identifier: GPL-2.0
/*
 * net_offload: offloads stay correct through the tag push and pop. VMs A
 * and B have tag 100 on taps with IFF_VNET_HDR (the guest's struct
 * virtio_net_hdr) and TSO/checksum offload; the uplink veth has transmit
 * checksumming off, so the stack segments and checksums in software what
 * leaves for the uplink namespace.
 *
 *  - tso: a 3-segment TCP frame from A (gso_type TCPV4, NEEDS_CSUM) reaches
 *    B as one GSO frame with the same header fields, untagged, and the
 *    uplink's VLAN 100 as three segments with valid IP and TCP checksums,
 *    the right lengths and sequence numbers and the payload in order. The
 *    same frame sent by the uplink on VLAN 100 reaches A as one GSO frame,
 *    popped, with its checksum offsets intact.
 *  - csum: a UDP frame with NEEDS_CSUM: B gets the partial checksum with
 *    csum_start/offset of an untagged frame; the uplink gets it complete.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <linux/virtio_net.h>

#include "kselftest_harness.h"
#include "hcg.h"
#include "kg.h"
#include "memg.h"
#include "netg.h"

#define MSS	1000
#define SEGS	3
#define HL	((int)sizeof(struct virtio_net_hdr))
#define ETH	14
#define IPH	20
#define TCPH	20
#define UDPH	8
#define A	0
#define B	1

FIXTURE(off) {
	struct netg_lab l;
	uint8_t buf[NETG_FRAME_MAX];
	uint8_t frame[HL + ETH + IPH + TCPH + SEGS * MSS];
	size_t len;		/* of the frame, after the header */
};

static int tx_csum_off(const char *dev)
{
	struct ethtool_value ev = { .cmd = ETHTOOL_STXCSUM, .data = 0 };
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = 0;

	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	ifr.ifr_data = (void *)&ev;
	if (ioctl(fd, SIOCETHTOOL, &ifr))
		err = -errno;
	close(fd);
	return err;
}

FIXTURE_SETUP(off)
{
	ASSERT_EQ(0, netg_lab_up(&self->l, NETG_PORT_VNET, 2, NULL));
	ASSERT_EQ(0, tx_csum_off(NETG_UP));
	ASSERT_EQ(0, netg_policy_new(&self->l.g, NETG_POLICY "100", .tag = 100));
	ASSERT_EQ(0, netg_lab_vm(&self->l, A, NETG_POLICY "100"));
	ASSERT_EQ(0, netg_lab_vm(&self->l, B, NETG_POLICY "100"));
}

FIXTURE_TEARDOWN(off)
{
	netg_lab_down(&self->l);
}

#define L (&self->l)
#define PORT(i) (&self->l.t.port[i])

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t s)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* Sum of the IPv4 pseudo header of @ip for @l4len bytes of @proto. */
static uint32_t pseudo(const uint8_t *ip, uint8_t proto, size_t l4len)
{
	return sum16(ip + 12, 8, 0) + proto + (uint32_t)l4len;
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

/*
 * An IPv4 frame of @l4len bytes of @proto after a struct virtio_net_hdr
 * with NEEDS_CSUM (the L4 checksum field holds the pseudo header's sum)
 * and @gso_type / @gso_size. Payload byte i is (i * 7 + 3) & 0xff.
 */
static size_t build(uint8_t *f, uint8_t proto, size_t l4len, uint8_t gso_type,
		    uint16_t gso_size)
{
	struct virtio_net_hdr *h = (void *)f;
	uint8_t *e = f + HL, *ip = e + ETH, *l4 = ip + IPH;
	size_t l4h = proto == IPPROTO_TCP ? TCPH : UDPH;
	uint8_t src[6];

	memset(f, 0, HL + ETH + IPH + l4len);
	netg_mac(B, e);
	netg_mac(A, src);
	memcpy(e + 6, src, 6);
	put16(e + 12, 0x0800);
	ip[0] = 0x45;
	put16(ip + 2, IPH + l4len);
	put16(ip + 4, 0x1234);
	put16(ip + 6, 0x4000);	/* DF */
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, (uint8_t[]){ 10, 100, 0, 1, 10, 100, 0, 2 }, 8);
	put16(ip + 10, ~fold(sum16(ip, IPH, 0)));
	put16(l4, 40000);
	put16(l4 + 2, 5001);
	if (proto == IPPROTO_TCP) {
		memcpy(l4 + 4, "\x11\x22\x33\x44", 4);	/* seq */
		memcpy(l4 + 8, "\x00\x00\x00\x01", 4);	/* ack */
		l4[12] = 5 << 4;
		l4[13] = 0x18;				/* PSH, ACK */
		put16(l4 + 14, 65535);
		put16(l4 + 16, fold(pseudo(ip, proto, l4len)));
	} else {
		put16(l4 + 4, l4len);
		put16(l4 + 6, fold(pseudo(ip, proto, l4len)));
	}
	for (size_t i = 0; i < l4len - l4h; i++)
		l4[l4h + i] = (i * 7 + 3) & 0xff;
	h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h->gso_type = gso_type;
	h->hdr_len = gso_type ? ETH + IPH + l4h : 0;
	h->gso_size = gso_size;
	h->csum_start = ETH + IPH;
	h->csum_offset = proto == IPPROTO_TCP ? 16 : 6;
	return ETH + IPH + l4len;
}

/* Read one frame with its header from a vnet tap of ours: length or -errno. */
static int read_ours(FIXTURE_DATA(off) *self, int fd)
{
	for (;;) {
		int n = netg_recv(fd, self->buf, sizeof(self->buf), 3000);

		if (n < 0)
			return n;
		if (n > HL + ETH + IPH && get16(self->buf + HL + 12) == 0x0800 &&
		    !memcmp(self->buf + HL + ETH + 12, "\x0a\x64\x00\x01", 4))
			return n;
		printf("# skipped a frame of %d bytes, type %#06x\n", n,
		       n > HL + ETH ? get16(self->buf + HL + 12) : 0);
	}
}

/* A frame to the guest is the one sent (length, header fields, bytes). */
static void expect_same(struct __test_metadata *_metadata, FIXTURE_DATA(off) *self,
			int n, const char *who)
{
	const struct virtio_net_hdr *sent = (void *)self->frame;
	const struct virtio_net_hdr *got = (void *)self->buf;

	ASSERT_EQ((int)(HL + self->len), n) TH_LOG("%s: frame length (a tag left inline?)", who);
	EXPECT_EQ(sent->gso_type, got->gso_type) TH_LOG("%s", who);
	EXPECT_EQ(sent->gso_size, got->gso_size) TH_LOG("%s", who);
	EXPECT_TRUE(!!(got->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)) TH_LOG("%s", who);
	EXPECT_EQ(sent->csum_start, got->csum_start) TH_LOG("%s", who);
	EXPECT_EQ(sent->csum_offset, got->csum_offset) TH_LOG("%s", who);
	/* hdr_len is a hint (tun reports the linear part): not compared. */
	/* All but the L4 checksum field (partial: the pseudo header's sum). */
	EXPECT_EQ(0, memcmp(self->frame + HL, self->buf + HL, ETH + IPH + 16)) TH_LOG("%s", who);
	EXPECT_EQ(0, memcmp(self->frame + HL + ETH + IPH + 18, self->buf + HL + ETH + IPH + 18,
			    self->len - ETH - IPH - 18)) TH_LOG("%s: payload", who);
}

TEST_F(off, tso)
{
	const uint8_t *pay = self->frame + HL + ETH + IPH + TCPH;
	uint32_t seq0 = 0x11223344;
	int fd, n, segs = 0;
	size_t got = 0;

	self->len = build(self->frame, IPPROTO_TCP, TCPH + SEGS * MSS,
			  VIRTIO_NET_HDR_GSO_TCPV4, MSS);
	ASSERT_EQ(0, netg_send(PORT(A), self->frame, HL + self->len));

	n = read_ours(self, PORT(B)->fd);
	expect_same(_metadata, self, n, "A to B");

	/* The uplink's VLAN 100: SEGS segments, checksummed in software. */
	fd = self->l.t.up[NETG_UP_100];
	while (segs < SEGS + 1) {
		const uint8_t *ip = self->buf + ETH, *tcp = ip + IPH;
		size_t plen;

		n = netg_recv(fd, self->buf, sizeof(self->buf), segs < SEGS ? 3000 : 200);
		if (n < 0)
			break;
		if (n < ETH + IPH + TCPH || get16(self->buf + 12) != 0x0800)
			continue;
		segs++;
		plen = get16(ip + 2) - IPH - TCPH;
		EXPECT_EQ(n, ETH + get16(ip + 2)) TH_LOG("segment %d", segs);
		EXPECT_EQ(0xffff, fold(sum16(ip, IPH, 0))) TH_LOG("segment %d: IP checksum", segs);
		EXPECT_EQ(0xffff, fold(sum16(tcp, TCPH + plen, pseudo(ip, IPPROTO_TCP, TCPH + plen))))
			TH_LOG("segment %d: TCP checksum", segs);
		EXPECT_EQ(seq0 + (uint32_t)got, ntohl(*(const uint32_t *)(tcp + 4))) TH_LOG("segment %d", segs);
		EXPECT_GE(MSS, (int)plen);
		if (got + plen <= SEGS * MSS) {
			EXPECT_EQ(0, memcmp(pay + got, tcp + TCPH, plen)) TH_LOG("segment %d", segs);
		}
		got += plen;
	}
	EXPECT_EQ(SEGS, segs);
	EXPECT_EQ((size_t)SEGS * MSS, got);

	/* From the uplink: the GSO frame leaves the namespace on VLAN 100. */
	ASSERT_EQ(0, netg_psock_vnet(fd));
	ASSERT_EQ(0, netg_psend(fd, self->frame, HL + self->len));
	n = read_ours(self, PORT(A)->fd);
	expect_same(_metadata, self, n, "uplink to A");
	n = read_ours(self, PORT(B)->fd);
	expect_same(_metadata, self, n, "uplink to B");

	NETG_EXPECT_CTRS(L, A, 1, 1, 1, 0, 0, 0);
	NETG_EXPECT_CTRS(L, B, 0, 0, 2, 0, 0, 0);
}

TEST_F(off, csum)
{
	const uint8_t *ip = self->buf + ETH, *udp = ip + IPH;
	int n;

	self->len = build(self->frame, IPPROTO_UDP, UDPH + 300, VIRTIO_NET_HDR_GSO_NONE, 0);
	ASSERT_EQ(0, netg_send(PORT(A), self->frame, HL + self->len));
	n = read_ours(self, PORT(B)->fd);
	expect_same(_metadata, self, n, "A to B");

	for (;;) {
		n = netg_recv(self->l.t.up[NETG_UP_100], self->buf, sizeof(self->buf), 3000);
		ASSERT_LT(0, n) TH_LOG("nothing on the uplink's VLAN 100");
		if (n >= ETH + IPH + UDPH && get16(self->buf + 12) == 0x0800)
			break;
	}
	EXPECT_EQ((int)self->len, n);
	EXPECT_NE(0, get16(udp + 6));
	EXPECT_EQ(0xffff, fold(sum16(udp, UDPH + 300, pseudo(ip, IPPROTO_UDP, UDPH + 300))))
		TH_LOG("UDP checksum");
	EXPECT_EQ(0, memcmp(self->frame + HL + ETH + IPH + UDPH, udp + UDPH, 300));
	NETG_EXPECT_CTRS(L, A, 1, 1, 0, 0, 0, 0);
	NETG_EXPECT_CTRS(L, B, 0, 0, 1, 0, 0, 0);
}

NETG_HARNESS_MAIN
