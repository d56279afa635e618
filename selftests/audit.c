// SPDX-License-Identifier: GPL-2.0
/*
 * audit: kvmguard writes every configuration change and every violation
 * report to the kernel audit log. Read as auditd's peers read it, from the
 * audit netlink multicast group AUDIT_NLGRP_READLOG (CAP_AUDIT_READ; no
 * auditd in the test host): one AUDIT_KERNEL_OTHER record each, whose
 * key=value fields say the operation, policy, VM id, pid and comm, the
 * rule, the action and the result. Checked: policy new, set and del; bind
 * and unbind (cgroup and pid); a refused request (res=0 and its errno);
 * vm set; net bind and unbind of a tap; a pid binding ended by its
 * process's exit; a denied and an audited hypercall (rule, nr, action,
 * count, res), rate-limited as the events are (a guest looping on a
 * refused hypercall for 2.5 s gives at most 4 records, whose counts add up
 * to at most the violations counted). Audit is switched on for the test
 * (AUDIT_SET, as auditd does) and back off after. SKIP when the kernel has
 * no audit (CONFIG_AUDIT), or when the module is not loaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/audit.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>

#include "kselftest_harness.h"
#include "hcg.h"
#include "kg.h"
#include "vm.h"

#define P "kga-"
#define CG "/kvmguard-audit-test"
#define TAP "kga-tap0"

/* Records of one op seen since the socket opened. */
#define REC_MAX 64

struct audit_rx {
	int fd;
	char *rec[REC_MAX];	/* the text after "audit(...): " */
	int n;
};

static int audit_open_readlog(struct audit_rx *rx)
{
	struct sockaddr_nl sa = {
		.nl_family = AF_NETLINK,
		.nl_groups = 1U << (AUDIT_NLGRP_READLOG - 1),
	};
	int rcvbuf = 1 << 20;

	memset(rx, 0, sizeof(*rx));
	rx->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
	if (rx->fd < 0)
		return -errno;
	setsockopt(rx->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(rx->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;

		close(rx->fd);
		rx->fd = -1;
		return err;
	}
	return 0;
}

static void audit_rx_clear(struct audit_rx *rx)
{
	for (int i = 0; i < rx->n; i++)
		free(rx->rec[i]);
	rx->n = 0;
}

static void audit_rx_close(struct audit_rx *rx)
{
	audit_rx_clear(rx);
	if (rx->fd >= 0)
		close(rx->fd);
	rx->fd = -1;
}

/*
 * Read records for @ms milliseconds, keeping kvmguard's (AUDIT_KERNEL_OTHER
 * with "op="); stops early once @want (> 0) records are kept in all.
 */
static void audit_collect(struct audit_rx *rx, int ms, int want)
{
	uint64_t deadline = kg_now_ns() + (uint64_t)ms * 1000000;
	static char buf[1 << 16];

	while (kg_now_ns() < deadline && !(want > 0 && rx->n >= want)) {
		struct timeval tv = { 0, 100000 };
		struct nlmsghdr *nlh;
		int len;

		setsockopt(rx->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		len = recv(rx->fd, buf, sizeof(buf), 0);
		if (len < 0)
			continue;
		/* int, not size_t: NLMSG_NEXT() may take it below 0 */
		for (nlh = (void *)buf; NLMSG_OK(nlh, len); nlh = NLMSG_NEXT(nlh, len)) {
			const char *text = NLMSG_DATA(nlh);
			size_t tlen = nlh->nlmsg_len - NLMSG_HDRLEN;
			char *s, *body;

			if (nlh->nlmsg_type != AUDIT_KERNEL_OTHER)
				continue;
			s = strndup(text, tlen);
			body = s ? strstr(s, "): ") : NULL;
			if (!body || strncmp(body + 3, "op=", 3) || rx->n >= REC_MAX) {
				free(s);
				continue;
			}
			memmove(s, body + 3, strlen(body + 3) + 1);
			printf("# audit: %s\n", s);
			rx->rec[rx->n++] = s;
		}
	}
}

/* The value of field @key in record @rec ("" if absent); quotes dropped. */
static const char *field(const char *rec, const char *key, char *buf, size_t size)
{
	size_t klen = strlen(key);
	const char *p = rec;

	buf[0] = '\0';
	while (p && *p) {
		if (!strncmp(p, key, klen) && p[klen] == '=' &&
		    (p == rec || p[-1] == ' ')) {
			const char *v = p + klen + 1;
			size_t n;

			if (*v == '"') {
				v++;
				n = strcspn(v, "\"");
			} else {
				n = strcspn(v, " ");
			}
			if (n >= size)
				n = size - 1;
			memcpy(buf, v, n);
			buf[n] = '\0';
			return buf;
		}
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return buf;
}

/*
 * The first record whose fields match the "key=value" pairs of @spec,
 * separated by blanks (quotes of the record's values ignored), or NULL.
 */
static const char *find_rec(const struct audit_rx *rx, const char *spec)
{
	for (int i = 0; i < rx->n; i++) {
		char *copy = strdup(spec), *tok, *save = NULL;
		bool ok = true;

		for (tok = strtok_r(copy, " ", &save); tok && ok;
		     tok = strtok_r(NULL, " ", &save)) {
			char key[64], val[256], got[256];
			char *eq = strchr(tok, '=');

			if (!eq)
				continue;
			snprintf(key, sizeof(key), "%.*s", (int)(eq - tok), tok);
			snprintf(val, sizeof(val), "%s", eq + 1);
			field(rx->rec[i], key, got, sizeof(got));
			if (strcmp(got, val))
				ok = false;
		}
		free(copy);
		if (ok)
			return rx->rec[i];
	}
	return NULL;
}

/* AUDIT_GET / AUDIT_SET of the enabled flag over a unicast socket. */
static int audit_enabled_get(void)
{
	struct {
		struct nlmsghdr nlh;
		char pad[512];
	} req = { .nlh = { .nlmsg_len = NLMSG_HDRLEN, .nlmsg_type = AUDIT_GET,
			   .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = 1 } };
	static char buf[8192];
	int fd, ret = -EIO;
	ssize_t len;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
	if (fd < 0)
		return -errno;
	if (send(fd, &req, req.nlh.nlmsg_len, 0) < 0) {
		ret = -errno;
		goto out;
	}
	for (int tries = 0; tries < 4; tries++) {
		struct nlmsghdr *nlh = (void *)buf;

		len = recv(fd, buf, sizeof(buf), 0);
		if (len < (ssize_t)NLMSG_HDRLEN)
			break;
		if (nlh->nlmsg_type == AUDIT_GET) {
			struct audit_status *st = NLMSG_DATA(nlh);

			ret = st->enabled;
			break;
		}
		if (nlh->nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr *e = NLMSG_DATA(nlh);

			if (e->error) {
				ret = e->error;
				break;
			}
		}
	}
out:
	close(fd);
	return ret;
}

static int audit_enabled_set(uint32_t on)
{
	struct {
		struct nlmsghdr nlh;
		struct audit_status st;
	} req = { .nlh = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct audit_status)),
			   .nlmsg_type = AUDIT_SET,
			   .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK, .nlmsg_seq = 2 },
		  .st = { .mask = AUDIT_STATUS_ENABLED, .enabled = on } };
	char buf[1024];
	int fd, ret = -EIO;
	ssize_t len;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
	if (fd < 0)
		return -errno;
	if (send(fd, &req, req.nlh.nlmsg_len, 0) < 0) {
		ret = -errno;
	} else {
		len = recv(fd, buf, sizeof(buf), 0);
		if (len >= (ssize_t)NLMSG_HDRLEN &&
		    ((struct nlmsghdr *)buf)->nlmsg_type == NLMSG_ERROR)
			ret = ((struct nlmsgerr *)NLMSG_DATA((struct nlmsghdr *)buf))->error;
	}
	close(fd);
	return ret;
}

FIXTURE(audit) {
	struct gnl g;
	struct audit_rx rx;
	int was_enabled;
	char comm[17];
};

FIXTURE_SETUP(audit)
{
	int err;

	self->rx.fd = -1;
	self->was_enabled = -1;
	err = audit_open_readlog(&self->rx);
	if (err == -EPROTONOSUPPORT || err == -ENOENT)
		SKIP(return, "the kernel has no audit (CONFIG_AUDIT)");
	ASSERT_EQ(0, err) TH_LOG("audit read-log group: %s", strerror(-err));
	self->was_enabled = audit_enabled_get();
	ASSERT_LE(0, self->was_enabled) TH_LOG("AUDIT_GET: %s", strerror(-self->was_enabled));
	if (self->was_enabled == 0)
		ASSERT_EQ(0, audit_enabled_set(1));
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
	kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, CG, 0);
	memset(self->comm, 0, sizeof(self->comm));
	prctl(PR_GET_NAME, self->comm);
	/* What the setup's own changes wrote is not the test's. */
	audit_collect(&self->rx, 200, 0);
	audit_rx_clear(&self->rx);
}

FIXTURE_TEARDOWN(audit)
{
	if (self->g.fd > 0) {
		kg_cleanup(&self->g, P);
		kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, CG, 0);
		gnl_close(&self->g);
	}
	if (self->was_enabled == 0)
		audit_enabled_set(0);
	audit_rx_close(&self->rx);
}

#define EXPECT_REC(spec) \
	EXPECT_NE(NULL, find_rec(&self->rx, spec)) TH_LOG("no record with %s", spec)

TEST_F_TIMEOUT(audit, config_changes, 60)
{
	char spec[512], pid[32];

	snprintf(pid, sizeof(pid), "%d", getpid());
	ASSERT_EQ(0, kg_policy_new(&self->g, P "a", KVMGUARD_MODE_ENFORCE, NULL));
	ASSERT_EQ(-EEXIST, kg_policy_new(&self->g, P "a", -1, NULL));
	ASSERT_EQ(0, kg_policy_set(&self->g, P "a", KVMGUARD_MODE_AUDIT, NULL));
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_CGROUP, CG, 0, P "a"));
	ASSERT_EQ(0, kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, CG, 0));
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL, getpid(), P "a"));
	ASSERT_EQ(0, kg_bind_del(&self->g, KVMGUARD_BIND_PID, NULL, getpid()));
	ASSERT_EQ(0, kg_policy_del(&self->g, P "a"));
	audit_collect(&self->rx, 3000, 8);

	snprintf(spec, sizeof(spec), "op=policy_new policy=" P "a vm=? pid=%s comm=%s res=1 err=0",
		 pid, self->comm);
	EXPECT_REC(spec);
	snprintf(spec, sizeof(spec), "op=policy_new policy=" P "a pid=%s res=0 err=%d",
		 pid, -EEXIST);
	EXPECT_REC(spec);
	snprintf(spec, sizeof(spec), "op=policy_set policy=" P "a pid=%s comm=%s res=1", pid,
		 self->comm);
	EXPECT_REC(spec);
	snprintf(spec, sizeof(spec), "op=bind policy=" P "a bind=cgroup cgroup=" CG " pid=%s res=1",
		 pid);
	EXPECT_REC(spec);
	EXPECT_REC("op=unbind bind=cgroup cgroup=" CG " res=1");
	snprintf(spec, sizeof(spec), "op=bind policy=" P "a bind=pid target_pid=%s res=1", pid);
	EXPECT_REC(spec);
	snprintf(spec, sizeof(spec), "op=unbind bind=pid target_pid=%s res=1", pid);
	EXPECT_REC(spec);
	snprintf(spec, sizeof(spec), "op=policy_del policy=" P "a pid=%s comm=%s res=1", pid,
		 self->comm);
	EXPECT_REC(spec);
}

static int vm_id_of_self(struct gnl *g, uint64_t after, uint64_t *id)
{
	struct kg_vm vm;
	int err = kg_find_new_vm(g, getpid(), after, &vm);

	if (!err)
		*id = vm.id;
	return err;
}

TEST_F_TIMEOUT(audit, vm_set_and_net_bind, 60)
{
	struct ifreq ifr = { 0 };
	char spec[512];
	struct vm vm;
	uint64_t id = 0, after;
	int tap;

	if (kvm_available())
		SKIP(return, "no /dev/kvm");
	after = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, vm_create(&vm));
	ASSERT_EQ(0, vm_id_of_self(&self->g, after, &id));
	ASSERT_EQ(0, kg_policy_new(&self->g, P "v", KVMGUARD_MODE_ENFORCE, NULL));
	ASSERT_EQ(0, kg_vm_set(&self->g, id, P "v"));
	EXPECT_EQ(-ENOENT, kg_vm_set(&self->g, id, P "nosuch"));

	tap = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (tap >= 0) {
		struct gnl_msg m;

		ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), TAP);
		ASSERT_EQ(0, ioctl(tap, TUNSETIFF, &ifr));
		kg_req(&self->g, &m, KVMGUARD_CMD_NET_BIND, false);
		gnl_put_u64(&m, KVMGUARD_A_VM_ID, id);
		gnl_put_str(&m, KVMGUARD_A_NET_IFNAME, TAP);
		EXPECT_EQ(0, gnl_transact(&self->g, &m, NULL, NULL));
		kg_req(&self->g, &m, KVMGUARD_CMD_NET_UNBIND, false);
		gnl_put_str(&m, KVMGUARD_A_NET_IFNAME, TAP);
		EXPECT_EQ(0, gnl_transact(&self->g, &m, NULL, NULL));
	}
	audit_collect(&self->rx, 3000, tap >= 0 ? 5 : 3);

	snprintf(spec, sizeof(spec), "op=vm_set policy=" P "v vm=%llu pid=%d comm=%s res=1",
		 (unsigned long long)id, getpid(), self->comm);
	EXPECT_REC(spec);
	snprintf(spec, sizeof(spec), "op=vm_set policy=" P "nosuch vm=%llu res=0 err=%d",
		 (unsigned long long)id, -ENOENT);
	EXPECT_REC(spec);
	if (tap >= 0) {
		snprintf(spec, sizeof(spec), "op=net_bind vm=%llu dev=" TAP " pid=%d res=1",
			 (unsigned long long)id, getpid());
		EXPECT_REC(spec);
		EXPECT_REC("op=net_unbind dev=" TAP " res=1");
		close(tap);
	} else {
		printf("# no /dev/net/tun: net bind not checked\n");
	}
	vm_destroy(&vm);
}

/* A pid binding ends with its process, and says so. */
TEST_F_TIMEOUT(audit, pid_binding_exit, 60)
{
	char spec[512];
	pid_t child;
	int st;

	ASSERT_EQ(0, kg_policy_new(&self->g, P "p", KVMGUARD_MODE_ENFORCE, NULL));
	child = fork();
	ASSERT_LE(0, child);
	if (!child) {
		pause();
		_exit(0);
	}
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL, child, P "p"));
	kill(child, SIGKILL);
	waitpid(child, &st, 0);
	/* policy_new, bind, and the unbind at the exit */
	audit_collect(&self->rx, 3000, 3);
	snprintf(spec, sizeof(spec),
		 "op=unbind policy=" P "p bind=pid target_pid=%d reason=process_exit res=1",
		 child);
	EXPECT_REC(spec);
}

/* Make hypercall 9 (clock_pairing) @n times; returns how many were refused. */
static int refused_calls(struct vm *vm, int n)
{
	struct hcg_regs in = { .rax = 9 };
	struct hcg_result res;
	int refused = 0;

	for (int i = 0; i < n; i++)
		if (!hcg_call(vm, 0, &in, &res) && res.regs.rax == HCG_EPERM32)
			refused++;
	return refused;
}

TEST_F_TIMEOUT(audit, violations, 90)
{
	uint64_t after, id = 0, total = 0;
	char spec[512], buf[64];
	const char *rec;
	struct vm vm;
	int n = 0, refused, records = 0;

	if (kvm_available())
		SKIP(return, "no /dev/kvm");
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "hc",
				KVMGUARD_MODE_ENFORCE, 1, 0, -1));
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL, getpid(), P "hc"));
	after = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, hcg_vm_create(&vm, false));
	ASSERT_EQ(0, vm_id_of_self(&self->g, after, &id));
	ASSERT_EQ(0, vm_add_vcpu(&vm, 0));
	ASSERT_EQ(0, hcg_set_mode(&vm, 0, HCG_REAL16));
	audit_collect(&self->rx, 300, 0);
	audit_rx_clear(&self->rx);

	/* One refused call: one record at once. */
	ASSERT_EQ(1, refused_calls(&vm, 1));
	audit_collect(&self->rx, 3000, 1);
	snprintf(spec, sizeof(spec),
		 "op=violation policy=" P "hc vm=%llu pid=%d comm=%s rule=hypercall nr=9 action=deny count=1 res=0",
		 (unsigned long long)id, getpid(), self->comm);
	EXPECT_REC(spec);
	audit_rx_clear(&self->rx);

	/* A loop for 2.5 s: rate-limited to one record a second. */
	{
		uint64_t end = kg_now_ns() + 2500000000ull;

		refused = 0;
		while (kg_now_ns() < end) {
			refused += refused_calls(&vm, 5);
			n += 5;
		}
	}
	audit_collect(&self->rx, 1500, 0);
	for (int i = 0; i < self->rx.n; i++) {
		if (strcmp(field(self->rx.rec[i], "op", buf, sizeof(buf)), "violation"))
			continue;
		records++;
		total += strtoull(field(self->rx.rec[i], "count", buf, sizeof(buf)), NULL, 10);
	}
	printf("# %d calls, %d refused, %d records for %llu violations\n", n, refused,
	       records, (unsigned long long)total);
	EXPECT_EQ(n, refused);
	EXPECT_GE(4, records);
	EXPECT_GE((uint64_t)refused, total);
	audit_rx_clear(&self->rx);

	/*
	 * Audit mode: let through, res=1. Past the last record's second, the
	 * record stands for this call and every one held back before: no
	 * violation is lost to the rate limit.
	 */
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_SET, P "hc",
				KVMGUARD_MODE_AUDIT, -1, 0, -1));
	usleep(1100000);
	refused_calls(&vm, 1);
	audit_collect(&self->rx, 3000, 2);
	snprintf(spec, sizeof(spec),
		 "op=violation policy=" P "hc vm=%llu rule=hypercall nr=9 action=audit res=1",
		 (unsigned long long)id);
	EXPECT_REC(spec);
	rec = find_rec(&self->rx, spec);
	if (rec)
		total += strtoull(field(rec, "count", buf, sizeof(buf)), NULL, 10);
	EXPECT_EQ((uint64_t)refused + 1, total);
	vm_destroy(&vm);
	kg_bind_del(&self->g, KVMGUARD_BIND_PID, NULL, getpid());
}

KG_HARNESS_MAIN(KG_NEED_MODULE)
