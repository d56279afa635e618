/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gnl: a small raw generic netlink helper for the kvmguard selftests.
 *
 * Requests are built attribute by attribute into a flat buffer, so a test
 * can also build deliberately malformed ones (wrong lengths, overrunning
 * attributes, a header that lies about the message length).
 */
#ifndef KVMGUARD_SELFTEST_GNL_H
#define KVMGUARD_SELFTEST_GNL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/netlink.h>
#include <linux/genetlink.h>

#define GNL_BUF_SIZE	(64 * 1024)
#define GNL_MAX_GRPS	8

struct gnl_grp {
	char name[GENL_NAMSIZ];
	uint32_t id;
};

struct gnl {
	int fd;
	uint32_t portid;
	uint32_t seq;
	uint16_t family;
	uint8_t version;
	int n_grps;
	struct gnl_grp grps[GNL_MAX_GRPS];
	/* From the last NLMSG_ERROR / NLMSG_DONE seen by gnl_transact(). */
	char ext_msg[256];
	uint32_t ext_offs;
	uint32_t ext_miss_type;
	bool dump_intr;		/* a reply carried NLM_F_DUMP_INTR */
	int n_msgs;		/* reply messages (not counting ACK/DONE) */
	int n_dgrams;		/* datagrams received in the last transaction */
	int timeout_ms;		/* per recv, default 10 s */
	unsigned char rbuf[GNL_BUF_SIZE];
};

struct gnl_msg {
	size_t len;		/* bytes to send */
	bool keep_len;		/* don't overwrite nlmsg_len with len */
	unsigned char buf[GNL_BUF_SIZE];
};

static inline struct nlmsghdr *gnl_hdr(struct gnl_msg *m)
{
	return (struct nlmsghdr *)m->buf;
}

/* Called for each reply message of a transaction; non-zero stops. */
typedef int (*gnl_cb)(const struct nlmsghdr *nlh, void *arg);

/* Open a socket (EXT_ACK, CAP_ACK) and resolve @family; -errno on error. */
int gnl_open(struct gnl *g, const char *family);
/* Open a socket only (family 0); for the raw cases. */
int gnl_socket(struct gnl *g);
void gnl_close(struct gnl *g);
/* Multicast group id by name, 0 if the family has none by that name. */
uint32_t gnl_grp_id(const struct gnl *g, const char *name);
/* setsockopt(NETLINK_ADD_MEMBERSHIP); 0 or -errno. */
int gnl_join(struct gnl *g, uint32_t grp);

void gnl_msg_init(struct gnl_msg *m, uint16_t type, uint16_t flags,
		  uint8_t cmd, uint8_t version);
/* Append an attribute; len is the payload length (padded to 4). */
void gnl_put(struct gnl_msg *m, uint16_t type, const void *data, size_t len);
void gnl_put_u8(struct gnl_msg *m, uint16_t type, uint8_t v);
void gnl_put_u16(struct gnl_msg *m, uint16_t type, uint16_t v);
void gnl_put_u32(struct gnl_msg *m, uint16_t type, uint32_t v);
void gnl_put_u64(struct gnl_msg *m, uint16_t type, uint64_t v);
/* NUL-terminated string attribute. */
void gnl_put_str(struct gnl_msg *m, uint16_t type, const char *s);
/* Raw bytes appended as they are (no attribute header). */
void gnl_put_raw(struct gnl_msg *m, const void *data, size_t len);

/* Send; sets seq and (unless keep_len) nlmsg_len. Returns seq or -errno. */
int gnl_send(struct gnl *g, struct gnl_msg *m);
/*
 * Send @m and read replies until the ACK (doit with NLM_F_ACK), NLMSG_DONE
 * (dump) or an error. Calls @cb for each reply message. Returns 0, the
 * negative error of the NLMSG_ERROR/NLMSG_DONE, -ETIMEDOUT if nothing came
 * within timeout_ms, or another -errno.
 */
int gnl_transact(struct gnl *g, struct gnl_msg *m, gnl_cb cb, void *arg);
/* Receive one datagram into g->rbuf with a timeout; length or -errno. */
int gnl_recv(struct gnl *g, int timeout_ms);

/* Parse the attributes after the genl header into tb[0..max]. Attributes
 * with type > max are counted in *unknown (if not NULL). Returns -EINVAL if
 * the attribute stream is malformed. */
int gnl_parse(const struct nlmsghdr *nlh, const struct nlattr **tb, int max,
	      int *unknown);
uint8_t gnl_get_u8(const struct nlattr *a);
uint16_t gnl_get_u16(const struct nlattr *a);
uint32_t gnl_get_u32(const struct nlattr *a);
uint64_t gnl_get_u64(const struct nlattr *a);
/* String payload; NULL unless it is NUL terminated. */
const char *gnl_get_str(const struct nlattr *a);
static inline uint16_t gnl_alen(const struct nlattr *a)
{
	return a->nla_len - NLA_HDRLEN;
}

/* Hex dump of a message (for debugging builders). */
void gnl_hexdump(const void *buf, size_t len);

#endif
