// SPDX-License-Identifier: GPL-2.0
/*
 * malformed: requests that break the ABI are refused with EINVAL and an
 * extended-ack message (or, for a missing attribute, the missing type),
 * change nothing, and never hurt the kernel: missing required attributes,
 * oversized/empty/ill-formed names, out-of-range mode and bind type,
 * unknown attribute types (beyond KVMGUARD_A_MAX, and in range but not
 * taken by the command), wrong attribute lengths, bad cgroup paths,
 * truncated messages and overrunning attributes; then a few thousand
 * random messages after which the module still answers correctly.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "kg.h"

#define P "kgm-"

FIXTURE(mal) {
	struct gnl g;
	struct gnl_msg m;
};

FIXTURE_SETUP(mal)
{
	ASSERT_EQ(0, kg_open(&self->g));
	self->g.timeout_ms = 3000;
	kg_cleanup(&self->g, P);
	kg_cleanup(&self->g, "kgf-");
}

FIXTURE_TEARDOWN(mal)
{
	kg_cleanup(&self->g, P);
	kg_cleanup(&self->g, "kgf-");
	gnl_close(&self->g);
}

/*
 * Send self->m; expect EINVAL with an extack message (or missing type).
 * The uapi header promises EINVAL for everything; the kernel's own policy
 * checks answer a value out of an NLA_POLICY_RANGE/MIN/MAX with ERANGE,
 * which REFUSED_RANGE accepts as well.
 */
#define REFUSED(what, miss) REFUSED_ERR(what, miss, false)
#define REFUSED_RANGE(what) REFUSED_ERR(what, 0, true)
#define REFUSED_ERR(what, miss, range) do {					\
	int __r = gnl_transact(&self->g, &self->m, NULL, NULL);			\
	printf("# %-40s -> %d msg='%s' miss=%u\n", what, __r,			\
	       self->g.ext_msg, self->g.ext_miss_type);				\
	EXPECT_TRUE(__r == -EINVAL || ((range) && __r == -ERANGE))		\
		TH_LOG("%s: got %d", what, __r);				\
	if (miss) {								\
		EXPECT_TRUE(self->g.ext_msg[0] || self->g.ext_miss_type == (miss)) \
			TH_LOG("%s: neither an extack message nor the missing type", what); \
	} else {								\
		EXPECT_NE(0, self->g.ext_msg[0])				\
			TH_LOG("%s: no extack message", what);			\
	}									\
} while (0)

#define REQ(cmd) kg_req(&self->g, &self->m, (cmd), false)
#define DUMPREQ(cmd) kg_req(&self->g, &self->m, (cmd), true)

static bool policy_exists(struct gnl *g, const char *name)
{
	struct kg_policy p;

	return kg_policy_get(g, name, &p) == 0;
}

TEST_F(mal, missing_required_attribute)
{
	ASSERT_EQ(0, kg_policy_new(&self->g, P "ok", -1, NULL));

	REQ(KVMGUARD_CMD_POLICY_NEW);
	gnl_put_u8(&self->m, KVMGUARD_A_POLICY_MODE, 0);
	REFUSED("POLICY_NEW without name", KVMGUARD_A_POLICY_NAME);

	REQ(KVMGUARD_CMD_POLICY_SET);
	gnl_put_u8(&self->m, KVMGUARD_A_POLICY_MODE, 1);
	REFUSED("POLICY_SET without name", KVMGUARD_A_POLICY_NAME);

	REQ(KVMGUARD_CMD_POLICY_DEL);
	REFUSED("POLICY_DEL without name", KVMGUARD_A_POLICY_NAME);

	REQ(KVMGUARD_CMD_POLICY_GET);
	REFUSED("POLICY_GET doit without name", KVMGUARD_A_POLICY_NAME);

	REQ(KVMGUARD_CMD_VM_GET);
	REFUSED("VM_GET doit without id", KVMGUARD_A_VM_ID);

	REQ(KVMGUARD_CMD_VM_SET);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "ok");
	REFUSED("VM_SET without id", KVMGUARD_A_VM_ID);

	REQ(KVMGUARD_CMD_VM_SET);
	gnl_put_u64(&self->m, KVMGUARD_A_VM_ID, 1);
	REFUSED("VM_SET without policy", KVMGUARD_A_POLICY_NAME);

	REQ(KVMGUARD_CMD_BIND_NEW);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "ok");
	REFUSED("BIND_NEW without type", KVMGUARD_A_BIND_TYPE);

	REQ(KVMGUARD_CMD_BIND_NEW);
	gnl_put_u8(&self->m, KVMGUARD_A_BIND_TYPE, KVMGUARD_BIND_CGROUP);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "ok");
	REFUSED("BIND_NEW cgroup without path", KVMGUARD_A_BIND_CGROUP);

	REQ(KVMGUARD_CMD_BIND_NEW);
	gnl_put_u8(&self->m, KVMGUARD_A_BIND_TYPE, KVMGUARD_BIND_PID);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "ok");
	REFUSED("BIND_NEW pid without pid", KVMGUARD_A_BIND_PID);

	REQ(KVMGUARD_CMD_BIND_NEW);
	gnl_put_u8(&self->m, KVMGUARD_A_BIND_TYPE, KVMGUARD_BIND_DEFAULT);
	REFUSED("BIND_NEW without policy", KVMGUARD_A_POLICY_NAME);

	REQ(KVMGUARD_CMD_BIND_DEL);
	REFUSED("BIND_DEL without type", KVMGUARD_A_BIND_TYPE);

	REQ(KVMGUARD_CMD_BIND_DEL);
	gnl_put_u8(&self->m, KVMGUARD_A_BIND_TYPE, KVMGUARD_BIND_CGROUP);
	REFUSED("BIND_DEL cgroup without path", KVMGUARD_A_BIND_CGROUP);

	/* Nothing was bound on the way. */
	struct kg_bind *b;
	int n;

	ASSERT_EQ(0, kg_bind_dump(&self->g, &b, &n));
	for (int i = 0; i < n; i++) {
		EXPECT_STRNE(P "ok", b[i].policy);
	}
	free(b);
}

TEST_F(mal, bad_names)
{
	static const char *const bad[] = {
		P "xxxxxxxxxxxxxxxxxxxxxxxxxxxx",	/* 32 bytes */
		"",
		P "a/b", P "a b", P "a\n", P "\xc3\xa9", P "a:b",
	};

	ASSERT_EQ(32U, strlen(bad[0]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char what[80];

		snprintf(what, sizeof(what), "POLICY_NEW name #%zu", i);
		REQ(KVMGUARD_CMD_POLICY_NEW);
		gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, bad[i]);
		REFUSED(what, 0);
		if (bad[i][0]) {
			EXPECT_FALSE(policy_exists(&self->g, bad[i]));
		}
	}
	/* A 32-byte domain; and a domain with a bad character. */
	REQ(KVMGUARD_CMD_POLICY_NEW);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "d");
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_DOMAIN, bad[0]);
	REFUSED("POLICY_NEW 32-byte domain", 0);
	EXPECT_FALSE(policy_exists(&self->g, P "d"));

	REQ(KVMGUARD_CMD_POLICY_NEW);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "d");
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_DOMAIN, "a/b");
	REFUSED("POLICY_NEW domain a/b", 0);
	EXPECT_FALSE(policy_exists(&self->g, P "d"));

	ASSERT_EQ(0, kg_policy_new(&self->g, P "d", -1, "dom"));
	REQ(KVMGUARD_CMD_POLICY_SET);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "d");
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_DOMAIN, bad[0]);
	REFUSED("POLICY_SET 32-byte domain", 0);
	struct kg_policy p;

	ASSERT_EQ(0, kg_policy_get(&self->g, P "d", &p));
	EXPECT_STREQ("dom", p.domain);
}

TEST_F(mal, out_of_range_values)
{
	static const uint8_t modes[] = { KVMGUARD_MODE_MAX + 1, 0x80, 0xff };
	static const uint8_t types[] = { KVMGUARD_BIND_UNSPEC, KVMGUARD_BIND_MAX + 1, 0xff };
	struct kg_policy p;

	for (size_t i = 0; i < sizeof(modes); i++) {
		REQ(KVMGUARD_CMD_POLICY_NEW);
		gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "m");
		gnl_put_u8(&self->m, KVMGUARD_A_POLICY_MODE, modes[i]);
		REFUSED_RANGE("POLICY_NEW mode out of range");
	}
	EXPECT_FALSE(policy_exists(&self->g, P "m"));
	ASSERT_EQ(0, kg_policy_new(&self->g, P "m", KVMGUARD_MODE_AUDIT, NULL));
	REQ(KVMGUARD_CMD_POLICY_SET);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "m");
	gnl_put_u8(&self->m, KVMGUARD_A_POLICY_MODE, KVMGUARD_MODE_MAX + 1);
	REFUSED_RANGE("POLICY_SET mode out of range");
	ASSERT_EQ(0, kg_policy_get(&self->g, P "m", &p));
	EXPECT_EQ(KVMGUARD_MODE_AUDIT, p.mode);

	for (size_t i = 0; i < sizeof(types); i++) {
		REQ(KVMGUARD_CMD_BIND_NEW);
		gnl_put_u8(&self->m, KVMGUARD_A_BIND_TYPE, types[i]);
		gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "m");
		REFUSED_RANGE("BIND_NEW type out of range");
		REQ(KVMGUARD_CMD_BIND_DEL);
		gnl_put_u8(&self->m, KVMGUARD_A_BIND_TYPE, types[i]);
		REFUSED_RANGE("BIND_DEL type out of range");
	}
	ASSERT_EQ(0, kg_policy_get(&self->g, P "m", &p));
	EXPECT_EQ(0U, p.bindings);
}

TEST_F(mal, hypercall_rule_values)
{
	struct kg_policy p;

	ASSERT_EQ(0, kg_policy_new(&self->g, P "h", -1, NULL));
	REQ(KVMGUARD_CMD_POLICY_SET);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "h");
	gnl_put_u64(&self->m, KVMGUARD_A_POLICY_HC_ALLOW, 1u << 1);
	REFUSED("POLICY_SET HC_ALLOW without HC_RESTRICT", 0);

	REQ(KVMGUARD_CMD_POLICY_SET);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "h");
	gnl_put_u8(&self->m, KVMGUARD_A_POLICY_HYPERV, KVMGUARD_HYPERV_MAX + 1);
	REFUSED_RANGE("POLICY_SET HYPERV out of range");

	REQ(KVMGUARD_CMD_POLICY_SET);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "h");
	gnl_put_u8(&self->m, KVMGUARD_A_POLICY_HC_RESTRICT, 2);
	REFUSED_RANGE("POLICY_SET HC_RESTRICT 2");

	REQ(KVMGUARD_CMD_POLICY_SET);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "h");
	gnl_put_u32(&self->m, KVMGUARD_A_POLICY_HC_ALLOW, 2);
	REFUSED("POLICY_SET HC_ALLOW as u32", 0);
	ASSERT_EQ(0, kg_policy_get(&self->g, P "h", &p));
	EXPECT_EQ(KVMGUARD_MODE_ENFORCE, p.mode);
}

TEST_F(mal, bad_cgroup_paths)
{
	static char longpath[KVMGUARD_CGROUP_MAX + 2];
	static const char *const bad[] = {
		"machine.slice", "/a/../b", "/a/./b", "/..", "/a/..", "", "/a//b",
		"/a/b//",
	};
	struct kg_policy p;

	ASSERT_EQ(0, kg_policy_new(&self->g, P "c", -1, NULL));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char what[80];

		snprintf(what, sizeof(what), "BIND_NEW cgroup \"%s\"", bad[i]);
		REQ(KVMGUARD_CMD_BIND_NEW);
		gnl_put_u8(&self->m, KVMGUARD_A_BIND_TYPE, KVMGUARD_BIND_CGROUP);
		gnl_put_str(&self->m, KVMGUARD_A_BIND_CGROUP, bad[i]);
		gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "c");
		REFUSED(what, 0);
	}
	longpath[0] = '/';
	memset(longpath + 1, 'a', KVMGUARD_CGROUP_MAX);	/* 4096 bytes */
	REQ(KVMGUARD_CMD_BIND_NEW);
	gnl_put_u8(&self->m, KVMGUARD_A_BIND_TYPE, KVMGUARD_BIND_CGROUP);
	gnl_put_str(&self->m, KVMGUARD_A_BIND_CGROUP, longpath);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "c");
	REFUSED("BIND_NEW cgroup of 4096 bytes", 0);
	ASSERT_EQ(0, kg_policy_get(&self->g, P "c", &p));
	EXPECT_EQ(0U, p.bindings);
}

TEST_F(mal, unknown_attributes)
{
	REQ(KVMGUARD_CMD_POLICY_NEW);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "u");
	gnl_put_u32(&self->m, KVMGUARD_A_MAX + 1, 0);
	REFUSED("POLICY_NEW attr A_MAX+1", 0);

	REQ(KVMGUARD_CMD_POLICY_NEW);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "u");
	gnl_put_u32(&self->m, 0x3fff, 0);
	REFUSED("POLICY_NEW attr 0x3fff", 0);

	REQ(KVMGUARD_CMD_POLICY_NEW);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "u");
	gnl_put_u64(&self->m, KVMGUARD_A_VM_ID, 1);
	REFUSED("POLICY_NEW with VM_ID", 0);

	REQ(KVMGUARD_CMD_POLICY_NEW);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "u");
	gnl_put_u32(&self->m, KVMGUARD_A_POLICY_VMS, 3);
	REFUSED("POLICY_NEW with POLICY_VMS (reply-only)", 0);

	REQ(KVMGUARD_CMD_POLICY_NEW);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "u");
	gnl_put_u64(&self->m, KVMGUARD_A_PAD, 0);
	REFUSED("POLICY_NEW with PAD", 0);
	EXPECT_FALSE(policy_exists(&self->g, P "u"));

	ASSERT_EQ(0, kg_policy_new(&self->g, P "u", -1, NULL));
	REQ(KVMGUARD_CMD_POLICY_GET);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "u");
	gnl_put_u32(&self->m, KVMGUARD_A_BIND_PID, 1);
	REFUSED("POLICY_GET with BIND_PID", 0);

	REQ(KVMGUARD_CMD_POLICY_DEL);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "u");
	gnl_put_u8(&self->m, KVMGUARD_A_POLICY_MODE, 0);
	REFUSED("POLICY_DEL with POLICY_MODE", 0);
	EXPECT_TRUE(policy_exists(&self->g, P "u"));

	REQ(KVMGUARD_CMD_BIND_NEW);
	gnl_put_u8(&self->m, KVMGUARD_A_BIND_TYPE, KVMGUARD_BIND_DEFAULT);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "u");
	gnl_put_u8(&self->m, KVMGUARD_A_EVENT_TYPE, 1);
	REFUSED("BIND_NEW with EVENT_TYPE", 0);

	REQ(KVMGUARD_CMD_VM_GET);
	gnl_put_u64(&self->m, KVMGUARD_A_VM_ID, 1);
	gnl_put_str(&self->m, KVMGUARD_A_VM_COMM, "x");
	REFUSED("VM_GET with VM_COMM", 0);

	DUMPREQ(KVMGUARD_CMD_VM_GET);
	gnl_put_u8(&self->m, KVMGUARD_A_POLICY_MODE, 0);
	REFUSED("VM_GET dump with POLICY_MODE", 0);

	DUMPREQ(KVMGUARD_CMD_POLICY_GET);
	gnl_put_u32(&self->m, KVMGUARD_A_MAX + 1, 0);
	REFUSED("POLICY_GET dump with A_MAX+1", 0);

	DUMPREQ(KVMGUARD_CMD_BIND_GET);
	gnl_put_u64(&self->m, KVMGUARD_A_VM_ID, 1);
	REFUSED("BIND_GET dump with VM_ID", 0);
}

TEST_F(mal, wrong_lengths)
{
	struct kg_policy p;

	REQ(KVMGUARD_CMD_VM_GET);
	gnl_put_u8(&self->m, KVMGUARD_A_VM_ID, 1);
	REFUSED("VM_GET VM_ID as u8", 0);

	REQ(KVMGUARD_CMD_VM_GET);
	gnl_put_u32(&self->m, KVMGUARD_A_VM_ID, 1);
	REFUSED("VM_GET VM_ID as u32", 0);

	REQ(KVMGUARD_CMD_POLICY_NEW);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "l");
	gnl_put_u32(&self->m, KVMGUARD_A_POLICY_MODE, 1);
	REFUSED("POLICY_NEW mode as u32", 0);

	REQ(KVMGUARD_CMD_POLICY_NEW);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "l");
	gnl_put(&self->m, KVMGUARD_A_POLICY_MODE, NULL, 0);
	REFUSED("POLICY_NEW mode empty", 0);
	EXPECT_FALSE(policy_exists(&self->g, P "l"));

	ASSERT_EQ(0, kg_policy_new(&self->g, P "l", -1, NULL));
	REQ(KVMGUARD_CMD_BIND_NEW);
	gnl_put_u32(&self->m, KVMGUARD_A_BIND_TYPE, KVMGUARD_BIND_PID);
	gnl_put_u32(&self->m, KVMGUARD_A_BIND_PID, getpid());
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "l");
	REFUSED("BIND_NEW type as u32", 0);

	REQ(KVMGUARD_CMD_BIND_NEW);
	gnl_put_u8(&self->m, KVMGUARD_A_BIND_TYPE, KVMGUARD_BIND_PID);
	gnl_put_u64(&self->m, KVMGUARD_A_BIND_PID, getpid());
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "l");
	REFUSED("BIND_NEW pid as u64", 0);

	REQ(KVMGUARD_CMD_BIND_NEW);
	gnl_put_u8(&self->m, KVMGUARD_A_BIND_TYPE, KVMGUARD_BIND_PID);
	gnl_put_u16(&self->m, KVMGUARD_A_BIND_PID, 1);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "l");
	REFUSED("BIND_NEW pid as u16", 0);
	ASSERT_EQ(0, kg_policy_get(&self->g, P "l", &p));
	EXPECT_EQ(0U, p.bindings);
}

TEST_F(mal, truncated_messages)
{
	struct nlattr a;
	struct kg_policy p;
	int r;

	/* nlmsg_len claims more than was sent: netlink drops it unanswered
	 * (or refuses it); it must never be acted on. */
	REQ(KVMGUARD_CMD_POLICY_NEW);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "t");
	gnl_hdr(&self->m)->nlmsg_len = self->m.len + 64;
	self->m.keep_len = true;
	self->g.timeout_ms = 500;
	r = gnl_transact(&self->g, &self->m, NULL, NULL);
	self->g.timeout_ms = 3000;
	printf("# nlmsg_len > sent -> %d msg='%s'\n", r, self->g.ext_msg);
	EXPECT_TRUE(r == -ETIMEDOUT || r == -EINVAL) TH_LOG("got %d", r);
	EXPECT_FALSE(policy_exists(&self->g, P "t"));

	/* The last attribute says it is longer than what is left. */
	REQ(KVMGUARD_CMD_POLICY_NEW);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "t");
	a.nla_type = KVMGUARD_A_POLICY_DOMAIN;
	a.nla_len = NLA_HDRLEN + 16;
	gnl_put_raw(&self->m, &a, sizeof(a));
	gnl_put_raw(&self->m, "abcd", 4);
	REFUSED("attribute overrunning the message", 0);
	EXPECT_FALSE(policy_exists(&self->g, P "t"));

	/* An attribute header shorter than a header. */
	REQ(KVMGUARD_CMD_POLICY_NEW);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "t");
	a.nla_type = KVMGUARD_A_POLICY_MODE;
	a.nla_len = 2;
	gnl_put_raw(&self->m, &a, sizeof(a));
	REFUSED("attribute with nla_len 2", 0);
	EXPECT_FALSE(policy_exists(&self->g, P "t"));

	/* Trailing bytes too short to be an attribute. */
	REQ(KVMGUARD_CMD_POLICY_NEW);
	gnl_put_str(&self->m, KVMGUARD_A_POLICY_NAME, P "t");
	gnl_put_raw(&self->m, "\x01\x02", 2);
	REFUSED("2 trailing bytes", 0);
	EXPECT_FALSE(policy_exists(&self->g, P "t"));

	/* A message shorter than the genetlink header. */
	REQ(KVMGUARD_CMD_POLICY_NEW);
	self->m.len = NLMSG_HDRLEN + 2;
	r = gnl_transact(&self->g, &self->m, NULL, NULL);
	printf("# short genl header -> %d msg='%s'\n", r, self->g.ext_msg);
	EXPECT_EQ(-EINVAL, r);

	/* And the family still answers. */
	ASSERT_EQ(0, kg_policy_new(&self->g, P "t", -1, NULL));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "t", &p));
}

TEST_F_TIMEOUT(mal, fuzz, 170)
{
	static const char *const strs[] = {
		"kgf-a", "kgf-b", "", "/kvmguard-fuzz", "/kvmguard-fuzz/x", "/",
		"kgf-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "..", "/a/../b",
	};
	int timeouts = 0, ok = 0, errs = 0;
	struct kg_policy p;

	srand(0x6b76);
	for (int i = 0; i < 4000; i++) {
		int cmd = rand() % (KVMGUARD_CMD_MAX + 3);
		int nattr = rand() % 6, r;

		kg_req(&self->g, &self->m, cmd, rand() % 4 == 0);
		for (int k = 0; k < nattr; k++) {
			int type = rand() % (KVMGUARD_A_MAX + 3);
			unsigned char buf[48];
			size_t len;

			switch (rand() % 5) {
			case 0:
				gnl_put_str(&self->m, type,
					    strs[rand() % (sizeof(strs) / sizeof(strs[0]))]);
				continue;
			case 1:
				gnl_put_u8(&self->m, type, rand() % 6);
				continue;
			case 2:
				gnl_put_u32(&self->m, type, rand() % 3 ? rand() % 4 : getpid());
				continue;
			case 3:
				gnl_put_u64(&self->m, type, rand() % 4);
				continue;
			}
			len = rand() % sizeof(buf);
			for (size_t j = 0; j < len; j++)
				buf[j] = rand();
			gnl_put(&self->m, type, buf, len);
		}
		if (rand() % 50 == 0) {
			/* Occasionally corrupt an attribute header. */
			size_t off = NLMSG_HDRLEN + GENL_HDRLEN;

			if (self->m.len >= off + 4)
				self->m.buf[off + rand() % 2] = rand();
		}
		if (rand() % 4 == 0)
			gnl_hdr(&self->m)->nlmsg_flags |= NLM_F_ACK;
		self->g.timeout_ms = 2000;
		r = gnl_transact(&self->g, &self->m, NULL, NULL);
		if (r == -ETIMEDOUT)
			timeouts++;
		else if (r == 0)
			ok++;
		else
			errs++;
	}
	printf("# fuzz: %d ok, %d refused, %d unanswered\n", ok, errs, timeouts);
	EXPECT_EQ(0, timeouts);
	EXPECT_GT(errs, 2500);

	/* The module still works. */
	kg_cleanup(&self->g, "kgf-");
	ASSERT_EQ(0, kg_policy_new(&self->g, P "after", KVMGUARD_MODE_AUDIT, "x"));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "after", &p));
	EXPECT_EQ(KVMGUARD_MODE_AUDIT, p.mode);
	EXPECT_STREQ("x", p.domain);
	ASSERT_EQ(0, kg_policy_del(&self->g, P "after"));
}

KG_HARNESS_MAIN(KG_NEED_MODULE)
