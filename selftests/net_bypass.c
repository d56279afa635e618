// SPDX-License-Identifier: GPL-2.0
/*
 * net_bypass: the roads by which a frame could reach or leave a guest
 * without passing kvmguard's hooks on its tap (tun_net_xmit() toward the
 * guest, br_handle_frame() or netfilter ingress from it). Port A is a tap
 * on a flat bridge with a veth uplink (VLAN 100 and 200 devices in the
 * uplink's namespace); its VM has "net tag 100". The test does what an
 * attacker on the host side would:
 *
 *  - xdp_redirect_in: an XDP program on another device (a veth pair of
 *    the test) redirects frames into A (XDP_REDIRECT reaches tun through
 *    tun_xdp_xmit(), never tun_net_xmit()): untagged and VLAN 200 frames
 *    must not reach A's guest once A is bound; they are counted as
 *    segment violations. (Before binding, they do: the road works.)
 *  - xdp_on_tap: an XDP program (native and generic) attached to A runs
 *    on the guest's frames before any hook: refused while A is bound
 *    (EBUSY), and binding A with a program attached is refused too.
 *  - tc_ingress: a clsact (or ingress) qdisc on A, whose ingress filters
 *    run before the bridge and netfilter ingress, with a mirred redirect
 *    of the guest's frames to the uplink: the qdisc is refused while A is
 *    bound (EBUSY); a VLAN 200 frame of the guest never reaches VLAN 200.
 *    Binding A while it has such a qdisc is refused. Needs tc(8) with
 *    sch_ingress, cls_matchall and act_mirred; skips without.
 *  - tcx (6.6+): a tc BPF program attached without a qdisc (BPF_PROG_ATTACH,
 *    BPF_TCX_INGRESS) runs where a clsact's ingress filters do: refused
 *    on a bound tap, and binding a tap with one refused. Skips before 6.6.
 *  - packet_tx: an AF_PACKET socket on A sends frames toward the guest
 *    (through the qdisc and with PACKET_QDISC_BYPASS, with an honest and
 *    a lying sll_protocol): they reach tun_net_xmit() and the rule, so
 *    only the access VID's reach the guest, untagged.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/ethernet.h>

#include "kselftest_harness.h"
#include "hcg.h"
#include "kg.h"
#include "memg.h"
#include "netg.h"

#define N	4	/* frames per kind */
#define POS_MS	3000
#define NEG_MS	300
#define A	0

#define VETH0	NETG_PREFIX "x0"	/* the attacker's frames enter here */
#define VETH1	NETG_PREFIX "x1"	/* its peer, with the XDP program */
#define TC	"/usr/sbin/tc"

static const uint16_t vids[] = { 100 };

/* ---- BPF and XDP by hand: no libbpf, no tc/ip with BPF in the host ---- */

static int bpf_load_xdp(const struct bpf_insn *insns, int cnt, char *log, size_t logsz)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_XDP;
	attr.insns = (uintptr_t)insns;
	attr.insn_cnt = cnt;
	attr.license = (uintptr_t)"GPL";
	attr.log_buf = (uintptr_t)log;
	attr.log_size = logsz;
	attr.log_level = 1;
	return syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), \
	.src_reg = (s), .off = (o), .imm = (i) })
#define MOV64_IMM(d, i)	INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define CALL(f)		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT()		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* An XDP program: bpf_redirect(@ifindex, 0), or XDP_PASS for 0. -errno. */
static int xdp_prog(int ifindex)
{
	struct bpf_insn redirect[] = {
		MOV64_IMM(1, ifindex), MOV64_IMM(2, 0),
		CALL(BPF_FUNC_redirect), EXIT(),
	};
	struct bpf_insn pass[] = { MOV64_IMM(0, XDP_PASS), EXIT() };
	static char log[4096];
	int fd;

	log[0] = 0;
	fd = ifindex ? bpf_load_xdp(redirect, 4, log, sizeof(log)) :
		       bpf_load_xdp(pass, 2, log, sizeof(log));
	if (fd < 0) {
		fd = -errno;
		printf("# BPF_PROG_LOAD: %s\n%s\n", strerror(-fd), log);
	}
	return fd;
}

/*
 * RTM_SETLINK of @ifindex with IFLA_XDP { FD @fd (-1: detach), FLAGS
 * @flags }: 0 or -errno, with the extended ack's message in @msg.
 */
static int xdp_attach(int ifindex, int fd, uint32_t flags, char *msg, size_t msz)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
		char attrs[64];
	} req;
	char buf[4096];
	struct nlattr *nest, *a;
	struct nlmsghdr *nh;
	int s, one = 1, err = -EIO;
	ssize_t n;

	msg[0] = 0;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_type = RTM_SETLINK;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.ifi.ifi_family = AF_UNSPEC;
	req.ifi.ifi_index = ifindex;
	nest = (struct nlattr *)req.attrs;
	nest->nla_type = IFLA_XDP | NLA_F_NESTED;
	a = (struct nlattr *)((char *)nest + NLA_HDRLEN);
	a->nla_type = IFLA_XDP_FD;
	a->nla_len = NLA_HDRLEN + 4;
	memcpy((char *)a + NLA_HDRLEN, &fd, 4);
	a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len));
	a->nla_type = IFLA_XDP_FLAGS;
	a->nla_len = NLA_HDRLEN + 4;
	memcpy((char *)a + NLA_HDRLEN, &flags, 4);
	nest->nla_len = NLA_HDRLEN + 2 * NLA_ALIGN(NLA_HDRLEN + 4);
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.ifi)) + nest->nla_len;

	s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (s < 0)
		return -errno;
	setsockopt(s, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	if (send(s, &req, req.nh.nlmsg_len, 0) < 0) {
		err = -errno;
		goto out;
	}
	n = recv(s, buf, sizeof(buf), 0);
	if (n < 0) {
		err = -errno;
		goto out;
	}
	for (nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, n); nh = NLMSG_NEXT(nh, n)) {
		struct nlmsgerr *e = NLMSG_DATA(nh);
		size_t off;

		if (nh->nlmsg_type != NLMSG_ERROR)
			continue;
		err = e->error;
		/* The extended ack: TLVs after the echoed request header. */
		off = NLMSG_HDRLEN + sizeof(*e);
		if (!(nh->nlmsg_flags & NLM_F_CAPPED))
			off += NLMSG_ALIGN(e->msg.nlmsg_len - NLMSG_HDRLEN);
		while (off + NLA_HDRLEN <= nh->nlmsg_len) {
			a = (struct nlattr *)((char *)nh + off);
			if (a->nla_len < NLA_HDRLEN)
				break;
			if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG)
				snprintf(msg, msz, "%.*s", (int)(a->nla_len - NLA_HDRLEN),
					 (char *)a + NLA_HDRLEN);
			off += NLA_ALIGN(a->nla_len);
		}
		break;
	}
out:
	close(s);
	return err;
}

/* Run "tc ARGS": its exit status (0: success), -1 if it did not run. */
static int tc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int tc(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int n, st;

	n = snprintf(cmd, sizeof(cmd), TC " ");
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof(cmd) - n, fmt, ap);
	va_end(ap);
	printf("# %s\n", cmd);
	fflush(stdout);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

FIXTURE(bypass) {
	struct netg_lab l;
	struct netg_pkt pk[64];
};

FIXTURE_SETUP(bypass)
{
	ASSERT_EQ(0, netg_lab_up(&self->l, 0, 1, vids));
	ASSERT_EQ(0, netg_policy_new(&self->l.g, NETG_POLICY "100", .tag = 100));
}

FIXTURE_TEARDOWN(bypass)
{
	if (netg_ifindex(VETH0) > 0)
		netg_ip("link del " VETH0 "\n");
	NETG_LAB_DOWN(&self->l);
}

#define L (&self->l)
#define PORT(i) (&self->l.t.port[i])
#define PFD(i) (self->l.t.port[i].fd)
#define UP(k) (self->l.t.up[NETG_UP_##k])
#define GOT(fd, want) netg_collect(fd, want, (want) ? POS_MS : NEG_MS, self->pk, 64)

/* The segment drops counted at port @i (bound to VM @i), or -1. */
static long long seg_denied(FIXTURE_DATA(bypass) *self, int i)
{
	struct netg_dev d;

	if (netg_dev(&L->g, L->id[i], PORT(i)->name, &d))
		return -1;
	return (long long)d.segment_denied;
}

/* N untagged and N VLAN 200 frames on packet socket @fd, from MAC @from. */
static void send_other(struct __test_metadata *_metadata, int fd, int from, uint32_t seq)
{
	struct netg_tag t200 = NETG_Q(200);
	uint8_t src[6];

	netg_mac(from, src);
	for (int s = 0; s < N; s++) {
		ASSERT_EQ(0, netg_psend_test(fd, netg_bcast, src, NULL, 0, seq + s));
		ASSERT_EQ(0, netg_psend_test(fd, netg_bcast, src, &t200, 1, seq + N + s));
	}
}

TEST_F_TIMEOUT(bypass, xdp_redirect_in, 120)
{
	char msg[256];
	int prog, x0, x1, ps;

	ASSERT_EQ(0, netg_ip("link add " VETH0 " type veth peer name " VETH1 "\n"));
	netg_noipv6(VETH0);
	netg_noipv6(VETH1);
	ASSERT_EQ(0, netg_ip("link set " VETH0 " up\nlink set " VETH1 " up\n"));
	x0 = netg_ifindex(VETH0);
	x1 = netg_ifindex(VETH1);
	ASSERT_LT(0, x1);
	prog = xdp_prog(PORT(A)->ifindex);
	if (prog < 0)
		SKIP(return, "cannot load an XDP program: %s", strerror(-prog));
	ASSERT_EQ(0, xdp_attach(x1, prog, XDP_FLAGS_DRV_MODE, msg, sizeof(msg)))
		TH_LOG("native XDP on the veth: %s", msg);
	ps = netg_psock(NULL, VETH0);
	ASSERT_LE(0, ps);
	(void)x0;

	/* Unbound, the road works: what the veth gets, A's guest gets. */
	netg_flush(PFD(A));
	send_other(_metadata, ps, 1, 0);
	EXPECT_EQ(2 * N, GOT(PFD(A), 2 * N)) TH_LOG("XDP_REDIRECT into an unbound tap");

	/* Bound with tag 100: neither untagged nor VLAN 200 frames get in. */
	ASSERT_EQ(0, netg_lab_vm(L, A, NETG_POLICY "100"));
	netg_flush(PFD(A));
	send_other(_metadata, ps, 1, 100);
	EXPECT_EQ(0, GOT(PFD(A), 0)) TH_LOG("frames of another segment reached the guest through XDP_REDIRECT");
	EXPECT_EQ(2 * N, seg_denied(self, A));

	xdp_attach(x1, -1, XDP_FLAGS_DRV_MODE, msg, sizeof(msg));
	close(prog);
	close(ps);
}

TEST_F_TIMEOUT(bypass, xdp_on_tap, 120)
{
	static const uint32_t modes[] = { XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE };
	char msg[256];
	int prog, err;

	prog = xdp_prog(0);
	if (prog < 0)
		SKIP(return, "cannot load an XDP program: %s", strerror(-prog));
	ASSERT_EQ(0, netg_lab_vm(L, A, NETG_POLICY "100"));
	for (int m = 0; m < 2; m++) {
		err = xdp_attach(PORT(A)->ifindex, prog, modes[m], msg, sizeof(msg));
		EXPECT_EQ(-EBUSY, err) TH_LOG("%s XDP on a bound tap: %s (%s)",
			m ? "generic" : "native", strerror(-err), msg);
		if (!err)
			xdp_attach(PORT(A)->ifindex, -1, modes[m], msg, sizeof(msg));
		else
			EXPECT_NE(NULL, strstr(msg, "kvmguard")) TH_LOG("extack: %s", msg);
	}

	/* Not bound: it attaches, and then binding is refused. */
	netg_lab_vm_destroy(L, A);
	for (int m = 0; m < 2; m++) {
		int id;

		ASSERT_EQ(0, xdp_attach(PORT(A)->ifindex, prog, modes[m], msg, sizeof(msg)))
			TH_LOG("XDP on an unbound tap: %s", msg);
		err = netg_vm(&L->g, &L->vm[A], NETG_POLICY "100", &L->id[A]);
		ASSERT_EQ(0, err);
		L->has_vm[A] = true;
		id = netg_bind(&L->g, L->id[A], PORT(A)->name, 0);
		EXPECT_EQ(-EBUSY, id) TH_LOG("bind with %s XDP: %s (%s)",
			m ? "generic" : "native", strerror(-id), L->g.ext_msg);
		netg_lab_vm_destroy(L, A);
		ASSERT_EQ(0, xdp_attach(PORT(A)->ifindex, -1, modes[m], msg, sizeof(msg)));
	}
	/* Without it the bind goes through. */
	ASSERT_EQ(0, netg_lab_vm(L, A, NETG_POLICY "100"));
	close(prog);
}

TEST_F_TIMEOUT(bypass, tc_ingress, 120)
{
	static const char * const kinds[] = { "clsact", "ingress" };
	const char *name = PORT(A)->name;
	struct netg_tag t200 = NETG_Q(200);
	int err;

	if (access(TC, X_OK))
		SKIP(return, "no " TC " in the test host");
	/* The kernel must have both qdiscs for a refusal to mean anything. */
	for (int k = 0; k < 2; k++) {
		if (tc("qdisc add dev %s %s", NETG_UP, kinds[k]))
			SKIP(return, "no %s qdisc in this kernel", kinds[k]);
		ASSERT_EQ(0, tc("qdisc del dev %s %s", NETG_UP, kinds[k]));
	}
	ASSERT_EQ(0, netg_lab_vm(L, A, NETG_POLICY "100"));
	for (int k = 0; k < 2; k++) {
		err = tc("qdisc add dev %s %s", name, kinds[k]);
		EXPECT_NE(0, err) TH_LOG("a %s qdisc on a bound tap was accepted", kinds[k]);
		if (err)
			continue;
		/* What an attacker does with it: the guest's frames, out. */
		if (tc("filter add dev %s ingress matchall action mirred egress redirect dev %s",
		       name, NETG_UP))
			SKIP(goto del, "no matchall or mirred");
		netg_flush(UP(200));
		for (int s = 0; s < N; s++)
			ASSERT_EQ(0, netg_send_test(PORT(A), netg_bcast, A, &t200, 1, s));
		EXPECT_EQ(0, GOT(UP(200), 0)) TH_LOG("the guest's VLAN 200 frames reached VLAN 200");
del:
		tc("qdisc del dev %s %s", name, kinds[k]);
	}

	/* Not bound: the qdisc is created, and then binding is refused. */
	netg_lab_vm_destroy(L, A);
	for (int k = 0; k < 2; k++) {
		ASSERT_EQ(0, tc("qdisc add dev %s %s", name, kinds[k]));
		ASSERT_EQ(0, netg_vm(&L->g, &L->vm[A], NETG_POLICY "100", &L->id[A]));
		L->has_vm[A] = true;
		err = netg_bind(&L->g, L->id[A], name, 0);
		EXPECT_EQ(-EBUSY, err) TH_LOG("bind with a %s qdisc: %s (%s)", kinds[k],
					      strerror(-err), L->g.ext_msg);
		netg_lab_vm_destroy(L, A);
		ASSERT_EQ(0, tc("qdisc del dev %s %s", name, kinds[k]));
	}
	ASSERT_EQ(0, netg_lab_vm(L, A, NETG_POLICY "100"));
}

/* 6.6+: BPF_TCX_INGRESS (headers of older kernels lack it). */
#define KG_BPF_TCX_INGRESS	46

/* BPF_PROG_ATTACH (or DETACH) of tc program @prog to @ifindex's tcx ingress. */
static int tcx(int cmd, int ifindex, int prog)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.target_fd = ifindex;
	attr.attach_bpf_fd = prog;
	attr.attach_type = KG_BPF_TCX_INGRESS;
	return syscall(__NR_bpf, cmd, &attr, sizeof(attr)) ? -errno : 0;
}

TEST_F_TIMEOUT(bypass, tcx, 120)
{
	struct bpf_insn insns[] = { MOV64_IMM(0, 0), EXIT() };
	int ifindex = PORT(A)->ifindex;
	union bpf_attr attr;
	int prog, err;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_SCHED_CLS;
	attr.insns = (uintptr_t)insns;
	attr.insn_cnt = 2;
	attr.license = (uintptr_t)"GPL";
	prog = syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
	if (prog < 0)
		SKIP(return, "cannot load a tc program: %s", strerror(errno));
	/* Unbound, it attaches (where the kernel has tcx at all). */
	err = tcx(BPF_PROG_ATTACH, ifindex, prog);
	if (err == -EINVAL)
		SKIP(return, "no tcx in this kernel (6.6+)");
	ASSERT_EQ(0, err);
	ASSERT_EQ(0, netg_vm(&L->g, &L->vm[A], NETG_POLICY "100", &L->id[A]));
	L->has_vm[A] = true;
	err = netg_bind(&L->g, L->id[A], PORT(A)->name, 0);
	EXPECT_EQ(-EBUSY, err) TH_LOG("bind with a tcx program: %s (%s)", strerror(-err),
				      L->g.ext_msg);
	netg_lab_vm_destroy(L, A);
	ASSERT_EQ(0, tcx(BPF_PROG_DETACH, ifindex, prog));

	ASSERT_EQ(0, netg_lab_vm(L, A, NETG_POLICY "100"));
	err = tcx(BPF_PROG_ATTACH, ifindex, prog);
	EXPECT_EQ(-EBUSY, err) TH_LOG("a tcx program on a bound tap: %s", strerror(-err));
	if (!err)
		tcx(BPF_PROG_DETACH, ifindex, prog);
	close(prog);
}

/* A raw frame to @ps's device with sll_protocol @proto, direct or not. */
static int psend_proto(int ps, int ifindex, uint16_t proto, const struct netg_tag *tag,
		       uint32_t seq)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_ifindex = ifindex,
				   .sll_protocol = htons(proto), .sll_halen = 6 };
	static uint8_t buf[256];
	uint8_t src[6];
	size_t len;

	netg_mac(1, src);
	len = netg_frame(buf, netg_bcast, src, tag, tag ? 1 : 0, seq);
	memcpy(sll.sll_addr, netg_bcast, 6);
	return sendto(ps, buf, len, 0, (struct sockaddr *)&sll, sizeof(sll)) == (ssize_t)len ?
	       0 : -errno;
}

TEST_F_TIMEOUT(bypass, packet_tx, 120)
{
	static const uint16_t protos[] = { 0, ETH_P_IP, ETH_Q, ETH_AD, NETG_ETH_TEST };
	struct netg_tag t100 = NETG_Q(100), t200 = NETG_Q(200);
	int ps, one = 1, got;

	ASSERT_EQ(0, netg_lab_vm(L, A, NETG_POLICY "100"));
	ps = netg_psock(NULL, PORT(A)->name);
	ASSERT_LE(0, ps);
	for (int direct = 0; direct < 2; direct++) {
		if (direct)
			ASSERT_EQ(0, setsockopt(ps, SOL_PACKET, PACKET_QDISC_BYPASS,
						&one, sizeof(one)));
		for (unsigned int p = 0; p < sizeof(protos) / sizeof(protos[0]); p++) {
			netg_flush(PFD(A));
			ASSERT_EQ(0, psend_proto(ps, PORT(A)->ifindex, protos[p], NULL, 0));
			ASSERT_EQ(0, psend_proto(ps, PORT(A)->ifindex, protos[p], &t200, 1));
			EXPECT_EQ(0, GOT(PFD(A), 0)) TH_LOG("%s, sll_protocol %#x: a frame of another segment reached the guest",
				direct ? "PACKET_QDISC_BYPASS" : "through the qdisc", protos[p]);
			/* The access VID's own: in, untagged (when the tag is seen). */
			ASSERT_EQ(0, psend_proto(ps, PORT(A)->ifindex, protos[p], &t100, 2));
			got = GOT(PFD(A), 1);
			for (int i = 0; i < got && i < 64; i++)
				EXPECT_EQ(0, self->pk[i].ntags) TH_LOG("VLAN 100 tag left on");
		}
	}
	close(ps);
}

NETG_HARNESS_MAIN
