// SPDX-License-Identifier: GPL-2.0
/* gnl: a small raw generic netlink helper for the kvmguard selftests. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "gnl.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

int gnl_socket(struct gnl *g)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	socklen_t sl = sizeof(sa);
	int one = 1;

	memset(g, 0, offsetof(struct gnl, rbuf));
	g->timeout_ms = 10000;
	g->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (g->fd < 0)
		return -errno;
	/* Older kernels may lack one of these; extack is required below. */
	setsockopt(g->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	if (setsockopt(g->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one)) ||
	    bind(g->fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(g->fd, (struct sockaddr *)&sa, &sl)) {
		int err = -errno;

		close(g->fd);
		g->fd = -1;
		return err;
	}
	g->portid = sa.nl_pid;
	g->seq = (uint32_t)getpid() << 8;
	return 0;
}

void gnl_close(struct gnl *g)
{
	if (g->fd >= 0)
		close(g->fd);
	g->fd = -1;
}

static int family_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct gnl *g = arg;
	const struct nlattr *tb[CTRL_ATTR_MAX + 1];
	const struct nlattr *grp;
	int rem;

	if (gnl_parse(nlh, tb, CTRL_ATTR_MAX, NULL))
		return -EINVAL;
	if (!tb[CTRL_ATTR_FAMILY_ID])
		return -EINVAL;
	g->family = *(const uint16_t *)((const char *)tb[CTRL_ATTR_FAMILY_ID] + NLA_HDRLEN);
	if (tb[CTRL_ATTR_VERSION])
		g->version = (uint8_t)gnl_get_u32(tb[CTRL_ATTR_VERSION]);
	if (!tb[CTRL_ATTR_MCAST_GROUPS])
		return 0;
	grp = (const struct nlattr *)((const char *)tb[CTRL_ATTR_MCAST_GROUPS] + NLA_HDRLEN);
	rem = gnl_alen(tb[CTRL_ATTR_MCAST_GROUPS]);
	while (rem >= NLA_HDRLEN && grp->nla_len >= NLA_HDRLEN && grp->nla_len <= rem) {
		const struct nlattr *a = (const struct nlattr *)((const char *)grp + NLA_HDRLEN);
		int arem = grp->nla_len - NLA_HDRLEN;
		struct gnl_grp *out = &g->grps[g->n_grps];

		if (g->n_grps >= GNL_MAX_GRPS)
			break;
		memset(out, 0, sizeof(*out));
		while (arem >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= arem) {
			if ((a->nla_type & NLA_TYPE_MASK) == CTRL_ATTR_MCAST_GRP_NAME && gnl_get_str(a))
				snprintf(out->name, sizeof(out->name), "%s", gnl_get_str(a));
			else if ((a->nla_type & NLA_TYPE_MASK) == CTRL_ATTR_MCAST_GRP_ID)
				out->id = gnl_get_u32(a);
			arem -= NLA_ALIGN(a->nla_len);
			a = (const struct nlattr *)((const char *)a + NLA_ALIGN(a->nla_len));
		}
		g->n_grps++;
		rem -= NLA_ALIGN(grp->nla_len);
		grp = (const struct nlattr *)((const char *)grp + NLA_ALIGN(grp->nla_len));
	}
	return 0;
}

int gnl_open(struct gnl *g, const char *family)
{
	static struct gnl_msg m;
	int err;

	err = gnl_socket(g);
	if (err)
		return err;
	gnl_msg_init(&m, GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK,
		     CTRL_CMD_GETFAMILY, 1);
	gnl_put_str(&m, CTRL_ATTR_FAMILY_NAME, family);
	err = gnl_transact(g, &m, family_cb, g);
	if (!err && !g->family)
		err = -ENOENT;
	if (err) {
		gnl_close(g);
		return err;
	}
	return 0;
}

uint32_t gnl_grp_id(const struct gnl *g, const char *name)
{
	for (int i = 0; i < g->n_grps; i++)
		if (!strcmp(g->grps[i].name, name))
			return g->grps[i].id;
	return 0;
}

int gnl_join(struct gnl *g, uint32_t grp)
{
	if (setsockopt(g->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)))
		return -errno;
	return 0;
}

void gnl_msg_init(struct gnl_msg *m, uint16_t type, uint16_t flags,
		  uint8_t cmd, uint8_t version)
{
	struct nlmsghdr *nlh = gnl_hdr(m);
	struct genlmsghdr *gh;

	memset(m->buf, 0, NLMSG_HDRLEN + GENL_HDRLEN);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	gh = (struct genlmsghdr *)(m->buf + NLMSG_HDRLEN);
	gh->cmd = cmd;
	gh->version = version;
	m->len = NLMSG_HDRLEN + GENL_HDRLEN;
	m->keep_len = false;
}

void gnl_put_raw(struct gnl_msg *m, const void *data, size_t len)
{
	if (m->len + len > sizeof(m->buf)) {
		fprintf(stderr, "gnl: message overflow\n");
		return;
	}
	memcpy(m->buf + m->len, data, len);
	m->len += len;
}

void gnl_put(struct gnl_msg *m, uint16_t type, const void *data, size_t len)
{
	struct nlattr a = { .nla_len = NLA_HDRLEN + len, .nla_type = type };
	static const unsigned char zero[NLA_ALIGNTO];

	gnl_put_raw(m, &a, sizeof(a));
	gnl_put_raw(m, data, len);
	gnl_put_raw(m, zero, NLA_ALIGN(len) - len);
}

void gnl_put_u8(struct gnl_msg *m, uint16_t type, uint8_t v)
{
	gnl_put(m, type, &v, sizeof(v));
}

void gnl_put_u16(struct gnl_msg *m, uint16_t type, uint16_t v)
{
	gnl_put(m, type, &v, sizeof(v));
}

void gnl_put_u32(struct gnl_msg *m, uint16_t type, uint32_t v)
{
	gnl_put(m, type, &v, sizeof(v));
}

void gnl_put_u64(struct gnl_msg *m, uint16_t type, uint64_t v)
{
	gnl_put(m, type, &v, sizeof(v));
}

void gnl_put_str(struct gnl_msg *m, uint16_t type, const char *s)
{
	gnl_put(m, type, s, strlen(s) + 1);
}

int gnl_send(struct gnl *g, struct gnl_msg *m)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct nlmsghdr *nlh = gnl_hdr(m);
	ssize_t n;

	if (!m->keep_len)
		nlh->nlmsg_len = m->len;
	nlh->nlmsg_seq = ++g->seq;
	nlh->nlmsg_pid = 0;
	n = sendto(g->fd, m->buf, m->len, 0, (struct sockaddr *)&sa, sizeof(sa));
	if (n < 0)
		return -errno;
	if ((size_t)n != m->len)
		return -EIO;
	return (int)(g->seq & 0x7fffffff);
}

int gnl_recv(struct gnl *g, int timeout_ms)
{
	struct pollfd pfd = { .fd = g->fd, .events = POLLIN };
	ssize_t n;
	int r;

	do {
		r = poll(&pfd, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	n = recv(g->fd, g->rbuf, sizeof(g->rbuf), 0);
	if (n < 0)
		return -errno;
	return (int)n;
}

/* Parse the error/extack of an NLMSG_ERROR or NLMSG_DONE message. */
static int parse_err(struct gnl *g, const struct nlmsghdr *nlh)
{
	const unsigned char *p = NLMSG_DATA(nlh);
	size_t plen = nlh->nlmsg_len - NLMSG_HDRLEN;
	size_t off;
	int error;

	if (plen < sizeof(int))
		return nlh->nlmsg_type == NLMSG_DONE ? 0 : -EBADMSG;
	memcpy(&error, p, sizeof(int));
	if (nlh->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = (const void *)p;

		if (plen < sizeof(*e))
			return error;
		off = sizeof(*e);
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += e->msg.nlmsg_len - NLMSG_HDRLEN;
	} else {
		off = sizeof(int);
	}
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return error;
	while (off + NLA_HDRLEN <= plen) {
		const struct nlattr *a = (const void *)(p + off);

		if (a->nla_len < NLA_HDRLEN || off + a->nla_len > plen)
			break;
		switch (a->nla_type & NLA_TYPE_MASK) {
		case NLMSGERR_ATTR_MSG:
			snprintf(g->ext_msg, sizeof(g->ext_msg), "%.*s",
				 (int)gnl_alen(a), (const char *)a + NLA_HDRLEN);
			break;
		case NLMSGERR_ATTR_OFFS:
			g->ext_offs = gnl_get_u32(a);
			break;
		case NLMSGERR_ATTR_MISS_TYPE:
			g->ext_miss_type = gnl_get_u32(a);
			break;
		}
		off += NLA_ALIGN(a->nla_len);
	}
	return error;
}

int gnl_transact(struct gnl *g, struct gnl_msg *m, gnl_cb cb, void *arg)
{
	uint32_t seq;
	int r, cbret = 0;

	g->ext_msg[0] = 0;
	g->ext_offs = 0;
	g->ext_miss_type = 0;
	g->dump_intr = false;
	g->n_msgs = 0;
	g->n_dgrams = 0;
	r = gnl_send(g, m);
	if (r < 0)
		return r;
	seq = gnl_hdr(m)->nlmsg_seq;
	for (;;) {
		const struct nlmsghdr *nlh;
		int len = gnl_recv(g, g->timeout_ms);

		if (len < 0)
			return len;
		g->n_dgrams++;
		for (nlh = (const void *)g->rbuf; NLMSG_OK(nlh, (unsigned int)len);
		     nlh = NLMSG_NEXT(nlh, len)) {
			if (nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR ||
			    nlh->nlmsg_type == NLMSG_DONE) {
				if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
					g->dump_intr = true;
				r = parse_err(g, nlh);
				return r ? r : cbret;
			}
			if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
				g->dump_intr = true;
			g->n_msgs++;
			if (cb && !cbret)
				cbret = cb(nlh, arg);
		}
	}
}

int gnl_parse(const struct nlmsghdr *nlh, const struct nlattr **tb, int max,
	      int *unknown)
{
	const unsigned char *p = (const unsigned char *)nlh + NLMSG_HDRLEN + GENL_HDRLEN;
	long rem = (long)nlh->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;

	memset(tb, 0, sizeof(*tb) * (max + 1));
	if (unknown)
		*unknown = 0;
	if (rem < 0)
		return -EINVAL;
	while (rem >= NLA_HDRLEN) {
		const struct nlattr *a = (const void *)p;
		int t = a->nla_type & NLA_TYPE_MASK;

		if (a->nla_len < NLA_HDRLEN || a->nla_len > rem)
			return -EINVAL;
		if (t > max || t == 0) {
			if (unknown)
				(*unknown)++;
		} else {
			if (tb[t] && unknown)	/* duplicates count as odd */
				(*unknown)++;
			tb[t] = a;
		}
		rem -= NLA_ALIGN(a->nla_len);
		p += NLA_ALIGN(a->nla_len);
	}
	return rem > 0 ? -EINVAL : 0;
}

uint8_t gnl_get_u8(const struct nlattr *a)
{
	return *((const uint8_t *)a + NLA_HDRLEN);
}

uint16_t gnl_get_u16(const struct nlattr *a)
{
	uint16_t v;

	memcpy(&v, (const uint8_t *)a + NLA_HDRLEN, sizeof(v));
	return v;
}

uint32_t gnl_get_u32(const struct nlattr *a)
{
	uint32_t v;

	memcpy(&v, (const char *)a + NLA_HDRLEN, sizeof(v));
	return v;
}

uint64_t gnl_get_u64(const struct nlattr *a)
{
	uint64_t v;

	memcpy(&v, (const char *)a + NLA_HDRLEN, sizeof(v));
	return v;
}

const char *gnl_get_str(const struct nlattr *a)
{
	const char *s = (const char *)a + NLA_HDRLEN;
	uint16_t len = gnl_alen(a);

	if (!len || s[len - 1] != 0)
		return NULL;
	return s;
}

void gnl_hexdump(const void *buf, size_t len)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i += 16) {
		printf("# %04zx:", i);
		for (size_t j = i; j < i + 16 && j < len; j++)
			printf(" %02x", p[j]);
		printf("\n");
	}
}
