// SPDX-License-Identifier: GPL-2.0
/*
 * vm_check: KVMGUARD_CMD_VM_CHECK, asking before acting. For the memory
 * limit ("mem add SIZE") and the dirty-log budget ("dirty-log SIZE|all")
 * the module answers allowed, refused (enforce) or audited (audit) with the
 * limit, what it counts now and what it would count after, and changes
 * nothing (no memslot, no counter, no event). Its answer matches what KVM
 * then does with the same request, host memory in both address spaces
 * counted once. A VM without a policy is allowed everything; an unknown VM
 * is ENOENT; malformed requests are EINVAL (ERANGE for an out-of-range
 * rule) with an extack message; without CAP_NET_ADMIN it is EPERM. The
 * CLI's "vm check" exits 0 when allowed and 3 when refused, in text and
 * JSON.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>

#include "kselftest_harness.h"
#include "kg.h"
#include "memg.h"
#include "vm.h"

#define P "kgvc-"
#define MEM_SIZE (16 * MEMG_MIB)
#define DIRTY KVM_MEM_LOG_DIRTY_PAGES
#define ALL UINT64_MAX		/* check(): dirty-log all */

struct answer {
	bool got;
	uint64_t id;
	uint8_t rule, verdict, mode;
	uint64_t limit, used, total;
	char policy[KVMGUARD_NAME_MAX + 1];
	int unknown;
};

static int answer_cb(const struct nlmsghdr *nlh, void *arg)
{
	const struct nlattr *tb[KVMGUARD_A_MAX + 1];
	struct answer *a = arg;

	if (gnl_parse(nlh, tb, KVMGUARD_A_MAX, &a->unknown))
		return -EBADMSG;
	if (!tb[KVMGUARD_A_VM_ID] || !tb[KVMGUARD_A_CHECK_RULE] ||
	    !tb[KVMGUARD_A_CHECK_VERDICT] || !tb[KVMGUARD_A_POLICY_MODE] ||
	    !tb[KVMGUARD_A_CHECK_LIMIT] || !tb[KVMGUARD_A_CHECK_USED] ||
	    !tb[KVMGUARD_A_CHECK_TOTAL])
		return -EBADMSG;
	a->got = true;
	a->id = gnl_get_u64(tb[KVMGUARD_A_VM_ID]);
	a->rule = gnl_get_u8(tb[KVMGUARD_A_CHECK_RULE]);
	a->verdict = gnl_get_u8(tb[KVMGUARD_A_CHECK_VERDICT]);
	a->mode = gnl_get_u8(tb[KVMGUARD_A_POLICY_MODE]);
	a->limit = gnl_get_u64(tb[KVMGUARD_A_CHECK_LIMIT]);
	a->used = gnl_get_u64(tb[KVMGUARD_A_CHECK_USED]);
	a->total = gnl_get_u64(tb[KVMGUARD_A_CHECK_TOTAL]);
	if (tb[KVMGUARD_A_POLICY_NAME] && gnl_get_str(tb[KVMGUARD_A_POLICY_NAME]))
		snprintf(a->policy, sizeof(a->policy), "%s",
			 gnl_get_str(tb[KVMGUARD_A_POLICY_NAME]));
	return 0;
}

/* VM_CHECK of @rule for @bytes more (ALL: dirty-log all). 0 or -errno. */
static int check(struct gnl *g, uint64_t id, uint8_t rule, uint64_t bytes,
		 struct answer *a)
{
	static struct gnl_msg m;
	int r;

	memset(a, 0, sizeof(*a));
	kg_req(g, &m, KVMGUARD_CMD_VM_CHECK, false);
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, id);
	gnl_put_u8(&m, KVMGUARD_A_CHECK_RULE, rule);
	if (bytes == ALL)
		gnl_put(&m, KVMGUARD_A_CHECK_ALL, NULL, 0);
	else
		gnl_put_u64(&m, KVMGUARD_A_CHECK_BYTES, bytes);
	r = gnl_transact(g, &m, answer_cb, a);
	if (!r && !a->got)
		return -ENOMSG;
	return r;
}

FIXTURE(chk) {
	struct gnl g;
	struct vm vm;
	uint64_t id;
	char *mem;
	int nr_as;
};

FIXTURE_SETUP(chk)
{
	self->vm.fd = -1;
	ASSERT_EQ(0, kg_open(&self->g));
	self->g.timeout_ms = 5000;
	kg_cleanup(&self->g, P);
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm, NULL, &self->id));
	self->nr_as = memg_nr_as(&self->vm);
	self->mem = memg_anon(MEM_SIZE);
	ASSERT_NE(NULL, self->mem);
}

FIXTURE_TEARDOWN(chk)
{
	if (self->vm.fd >= 0)
		vm_destroy(&self->vm);
	if (self->mem)
		munmap(self->mem, MEM_SIZE);
	kg_cleanup(&self->g, P);
	gnl_close(&self->g);
}

#define VMGET(v) ASSERT_EQ(0, memg_vm_get(&self->g, self->id, &(v)))
#define REGION(slot, flags, gpa, size, off) \
	vm_region(&self->vm, slot, flags, gpa, size, self->mem + (off))
#define CHECK(rule, bytes, a) ASSERT_EQ(0, check(&self->g, self->id, rule, bytes, &(a)))
#define LIMIT KVMGUARD_MEM_RULE_LIMIT
#define DLOG KVMGUARD_MEM_RULE_DIRTY_LOG

TEST_F(chk, no_policy_allows_everything)
{
	struct answer a;

	ASSERT_EQ(0, REGION(0, 0, 0, MEMG_MIB, 0));
	CHECK(LIMIT, 1ULL << 50, a);
	EXPECT_EQ(self->id, a.id);
	EXPECT_EQ(LIMIT, a.rule);
	EXPECT_EQ(KVMGUARD_CHECK_ALLOWED, a.verdict);
	EXPECT_EQ(KVMGUARD_MEM_UNLIMITED, a.limit);
	EXPECT_EQ(MEMG_MIB, a.used);
	EXPECT_EQ(MEMG_MIB + (1ULL << 50), a.total);
	EXPECT_STREQ("", a.policy);
	EXPECT_EQ(0, a.unknown);
	/* Totals saturate. */
	CHECK(LIMIT, UINT64_MAX - 1, a);
	EXPECT_EQ(UINT64_MAX, a.total);
	CHECK(DLOG, ALL, a);
	EXPECT_EQ(KVMGUARD_CHECK_ALLOWED, a.verdict);
	EXPECT_EQ(0ULL, a.used);
	EXPECT_EQ(MEMG_MIB, a.total);
}

TEST_F(chk, limit_answers_match_kvm)
{
	struct answer a;
	struct kg_vm v;

	ASSERT_EQ(0, memg_new(&self->g, P "lim", NULL, MEMG_MAX(MEM_SIZE)));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "lim"));
	ASSERT_EQ(0, REGION(MEMG_SLOT(0, 0), 0, 0, MEM_SIZE / 2, 0));
	if (self->nr_as > 1)	/* the SMM alias counts nothing */
		ASSERT_EQ(0, REGION(MEMG_SLOT(1, 0), 0, 0, MEM_SIZE / 2, 0));

	CHECK(LIMIT, MEM_SIZE / 2, a);
	EXPECT_EQ(KVMGUARD_CHECK_ALLOWED, a.verdict);
	EXPECT_EQ(KVMGUARD_MODE_ENFORCE, a.mode);
	EXPECT_STREQ(P "lim", a.policy);
	EXPECT_EQ(MEM_SIZE, a.limit);
	EXPECT_EQ(MEM_SIZE / 2, a.used);
	EXPECT_EQ(MEM_SIZE, a.total);
	CHECK(LIMIT, MEM_SIZE / 2 + MEMG_PAGE, a);
	EXPECT_EQ(KVMGUARD_CHECK_REFUSED, a.verdict);
	EXPECT_EQ(MEM_SIZE + MEMG_PAGE, a.total);

	/* Asking changed nothing: no slot, no count, no refusal. */
	VMGET(v);
	EXPECT_EQ(0ULL, v.mem_limit_denied);
	EXPECT_EQ(MEM_SIZE / 2, v.mem_bytes);

	/* KVM agrees with both answers. */
	EXPECT_EQ(-EDQUOT, REGION(1, 0, 64 * MEMG_MIB, MEM_SIZE / 2 + MEMG_PAGE,
				  MEM_SIZE / 2));
	EXPECT_EQ(0, REGION(1, 0, 64 * MEMG_MIB, MEM_SIZE / 2, MEM_SIZE / 2));
	CHECK(LIMIT, MEMG_PAGE, a);
	EXPECT_EQ(KVMGUARD_CHECK_REFUSED, a.verdict);
	CHECK(LIMIT, 0, a);
	EXPECT_EQ(KVMGUARD_CHECK_ALLOWED, a.verdict);

	/* Audit mode: over the limit is audited, and let through. */
	ASSERT_EQ(0, memg_set(&self->g, P "lim", MEMG_MODE(KVMGUARD_MODE_AUDIT)));
	CHECK(LIMIT, MEMG_PAGE, a);
	EXPECT_EQ(KVMGUARD_CHECK_AUDITED, a.verdict);
	EXPECT_EQ(KVMGUARD_MODE_AUDIT, a.mode);
	VMGET(v);
	EXPECT_EQ(1ULL, v.mem_limit_denied);
}

/* Migration and save: may all of the VM's memory be dirty-tracked? */
TEST_F(chk, dirty_log_answers_match_kvm)
{
	struct answer a;
	struct kg_vm v;

	ASSERT_EQ(0, memg_new(&self->g, P "dl", NULL, MEMG_DIRTY(4 * MEMG_MIB)));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "dl"));
	ASSERT_EQ(0, REGION(MEMG_SLOT(0, 0), 0, 0, 8 * MEMG_MIB, 0));
	if (self->nr_as > 1)
		ASSERT_EQ(0, REGION(MEMG_SLOT(1, 0), 0, 0, 8 * MEMG_MIB, 0));
	/* A framebuffer-sized slot, tracked as QEMU's VGA is. */
	ASSERT_EQ(0, REGION(MEMG_SLOT(0, 1), DIRTY, 64 * MEMG_MIB, 2 * MEMG_MIB,
			    8 * MEMG_MIB));

	CHECK(DLOG, ALL, a);
	EXPECT_EQ(DLOG, a.rule);
	EXPECT_EQ(KVMGUARD_CHECK_REFUSED, a.verdict);
	EXPECT_EQ(4 * MEMG_MIB, a.limit);
	EXPECT_EQ(2 * MEMG_MIB, a.used);
	EXPECT_EQ(10 * MEMG_MIB, a.total);
	CHECK(DLOG, 2 * MEMG_MIB, a);
	EXPECT_EQ(KVMGUARD_CHECK_ALLOWED, a.verdict);
	EXPECT_EQ(4 * MEMG_MIB, a.total);
	CHECK(DLOG, 2 * MEMG_MIB + MEMG_PAGE, a);
	EXPECT_EQ(KVMGUARD_CHECK_REFUSED, a.verdict);
	VMGET(v);
	EXPECT_EQ(0ULL, v.mem_dirty_denied);

	/* What a migration does: KVM refuses the RAM slot, as answered. */
	EXPECT_EQ(-EDQUOT, REGION(MEMG_SLOT(0, 0), DIRTY, 0, 8 * MEMG_MIB, 0));

	/* A budget of all of it: allowed, and KVM lets every slot track. */
	ASSERT_EQ(0, memg_set(&self->g, P "dl", MEMG_DIRTY(10 * MEMG_MIB)));
	CHECK(DLOG, ALL, a);
	EXPECT_EQ(KVMGUARD_CHECK_ALLOWED, a.verdict);
	EXPECT_EQ(10 * MEMG_MIB, a.total);
	EXPECT_EQ(0, REGION(MEMG_SLOT(0, 0), DIRTY, 0, 8 * MEMG_MIB, 0));
	if (self->nr_as > 1)
		EXPECT_EQ(0, REGION(MEMG_SLOT(1, 0), DIRTY, 0, 8 * MEMG_MIB, 0));
	VMGET(v);
	EXPECT_EQ(10 * MEMG_MIB, v.mem_dirty_bytes);
	EXPECT_EQ(1ULL, v.mem_dirty_denied);
	CHECK(DLOG, ALL, a);
	EXPECT_EQ(10 * MEMG_MIB, a.used);
	EXPECT_EQ(KVMGUARD_CHECK_ALLOWED, a.verdict);

	/* Budget 0 (no tracking at all): refused, even for nothing mapped more. */
	ASSERT_EQ(0, memg_set(&self->g, P "dl", MEMG_DIRTY(0)));
	CHECK(DLOG, MEMG_PAGE, a);
	EXPECT_EQ(KVMGUARD_CHECK_REFUSED, a.verdict);
}

TEST_F(chk, unknown_vm)
{
	struct answer a;

	EXPECT_EQ(-ENOENT, check(&self->g, 1ULL << 62, LIMIT, MEMG_PAGE, &a));
	EXPECT_NE(0, self->g.ext_msg[0]);
	EXPECT_FALSE(a.got);
	/* A VM that is gone. */
	vm_destroy(&self->vm);
	self->vm.fd = -1;
	EXPECT_EQ(-ENOENT, check(&self->g, self->id, DLOG, ALL, &a));
}

/* Expect @err for self->m, with an extack message or the missing type. */
#define REFUSED(what, err, ...) do {						\
	int __r = gnl_transact(&self->g, &m, NULL, NULL);			\
	int __e[] = { err, ##__VA_ARGS__ };					\
	bool __ok = false;							\
									\
	for (size_t __i = 0; __i < sizeof(__e) / sizeof(__e[0]); __i++)	\
		__ok |= __r == __e[__i];					\
	printf("# %-34s -> %d msg='%s' miss=%u\n", what, __r,			\
	       self->g.ext_msg, self->g.ext_miss_type);				\
	EXPECT_TRUE(__ok) TH_LOG("%s: got %d", what, __r);			\
	EXPECT_TRUE(self->g.ext_msg[0] || self->g.ext_miss_type)		\
		TH_LOG("%s: no extack", what);					\
	EXPECT_EQ(0, self->g.n_msgs);						\
} while (0)

#define REQ() kg_req(&self->g, &m, KVMGUARD_CMD_VM_CHECK, false)

TEST_F(chk, malformed)
{
	static struct gnl_msg m;
	uint32_t u32 = 5;
	struct kg_vm v;

	ASSERT_EQ(0, memg_new(&self->g, P "mal", NULL, MEMG_MAX(MEMG_MIB)));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "mal"));

	REQ();
	gnl_put_u8(&m, KVMGUARD_A_CHECK_RULE, LIMIT);
	gnl_put_u64(&m, KVMGUARD_A_CHECK_BYTES, 1);
	REFUSED("no VM id", -EINVAL);
	REQ();
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, self->id);
	gnl_put_u64(&m, KVMGUARD_A_CHECK_BYTES, 1);
	REFUSED("no rule", -EINVAL);
	REQ();
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, self->id);
	gnl_put_u8(&m, KVMGUARD_A_CHECK_RULE, LIMIT);
	REFUSED("no size", -EINVAL);
	REQ();
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, self->id);
	gnl_put_u8(&m, KVMGUARD_A_CHECK_RULE, KVMGUARD_MEM_RULE_SHARED);
	gnl_put_u64(&m, KVMGUARD_A_CHECK_BYTES, 1);
	REFUSED("rule shared", -EINVAL);
	REQ();
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, self->id);
	gnl_put_u8(&m, KVMGUARD_A_CHECK_RULE, 0);
	gnl_put_u64(&m, KVMGUARD_A_CHECK_BYTES, 1);
	REFUSED("rule 0", -EINVAL, -ERANGE);
	REQ();
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, self->id);
	gnl_put_u8(&m, KVMGUARD_A_CHECK_RULE, KVMGUARD_MEM_RULE_MAX + 1);
	gnl_put_u64(&m, KVMGUARD_A_CHECK_BYTES, 1);
	REFUSED("rule past the last", -EINVAL, -ERANGE);
	REQ();
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, self->id);
	gnl_put_u8(&m, KVMGUARD_A_CHECK_RULE, LIMIT);
	gnl_put(&m, KVMGUARD_A_CHECK_ALL, NULL, 0);
	REFUSED("all with the limit", -EINVAL);
	REQ();
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, self->id);
	gnl_put_u8(&m, KVMGUARD_A_CHECK_RULE, DLOG);
	gnl_put(&m, KVMGUARD_A_CHECK_ALL, NULL, 0);
	gnl_put_u64(&m, KVMGUARD_A_CHECK_BYTES, 1);
	REFUSED("all and a size", -EINVAL);
	REQ();
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, self->id);
	gnl_put_u8(&m, KVMGUARD_A_CHECK_RULE, DLOG);
	gnl_put(&m, KVMGUARD_A_CHECK_BYTES, &u32, sizeof(u32));
	REFUSED("32-bit size", -EINVAL, -ERANGE);
	REQ();
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, self->id);
	gnl_put_u8(&m, KVMGUARD_A_CHECK_RULE, DLOG);
	gnl_put(&m, KVMGUARD_A_CHECK_ALL, &u32, sizeof(u32));
	REFUSED("flag with a payload", -EINVAL, -ERANGE);
	REQ();
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, 0);
	gnl_put_u8(&m, KVMGUARD_A_CHECK_RULE, LIMIT);
	gnl_put_u64(&m, KVMGUARD_A_CHECK_BYTES, 1);
	REFUSED("VM id 0", -EINVAL, -ERANGE);
	/* Strict: an attribute the command does not take. */
	REQ();
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, self->id);
	gnl_put_u8(&m, KVMGUARD_A_CHECK_RULE, LIMIT);
	gnl_put_u64(&m, KVMGUARD_A_CHECK_BYTES, 1);
	gnl_put_u64(&m, KVMGUARD_A_CHECK_TOTAL, 1);
	REFUSED("an answer's attribute", -EINVAL);
	REQ();
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, self->id);
	gnl_put_u8(&m, KVMGUARD_A_CHECK_RULE, LIMIT);
	gnl_put_u64(&m, KVMGUARD_A_CHECK_BYTES, 1);
	gnl_put_u8(&m, KVMGUARD_A_MAX + 1, 1);
	REFUSED("an unknown attribute", -EINVAL);

	/* Nothing counted, and a well-formed request still answers. */
	VMGET(v);
	EXPECT_EQ(0ULL, v.mem_limit_denied);
	struct answer a;

	CHECK(LIMIT, MEMG_MIB, a);
	EXPECT_EQ(KVMGUARD_CHECK_ALLOWED, a.verdict);
}

static int drop_net_admin(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	int idx = CAP_NET_ADMIN / 32;
	uint32_t bit = 1u << (CAP_NET_ADMIN % 32);

	if (prctl(PR_CAPBSET_DROP, CAP_NET_ADMIN, 0, 0, 0))
		return -errno;
	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[idx].effective &= ~bit;
	d[idx].permitted &= ~bit;
	d[idx].inheritable &= ~bit;
	if (syscall(SYS_capset, &h, d))
		return -errno;
	return 0;
}

TEST_F(chk, needs_cap_net_admin)
{
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		static struct gnl g;
		struct answer a;
		int r;

		if (drop_net_admin() || kg_open(&g))
			_exit(100);
		g.timeout_ms = 3000;
		r = check(&g, self->id, LIMIT, MEMG_PAGE, &a);
		printf("# unprivileged VM_CHECK -> %d\n", r);
		_exit(r == -EPERM && !a.got ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/* Run the CLI with @args; its exit status, its stdout in @out. */
static int cli(const char *args, char *out, size_t len)
{
	const char *bin = getenv("KVMGUARD_CLI");
	char cmd[512];
	size_t n = 0;
	FILE *f;
	int st;

	snprintf(cmd, sizeof(cmd), "%s %s 2>&1", bin, args);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (n + 1 < len && fgets(out + n, len - n, f))
		n += strlen(out + n);
	out[n] = '\0';
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST_F(chk, cli)
{
	const char *bin = getenv("KVMGUARD_CLI");
	char args[128], out[4096];
	int r;

	if (!bin || access(bin, X_OK))
		SKIP(return, "$KVMGUARD_CLI is not executable");
	ASSERT_EQ(0, memg_new(&self->g, P "cli", NULL, MEMG_MAX(4 * MEMG_MIB),
			      MEMG_DIRTY(MEMG_MIB)));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "cli"));
	ASSERT_EQ(0, REGION(0, 0, 0, 2 * MEMG_MIB, 0));

	snprintf(args, sizeof(args), "vm check %llu mem add 2M",
		 (unsigned long long)self->id);
	r = cli(args, out, sizeof(out));
	printf("%s", out);
	EXPECT_EQ(0, r);
	EXPECT_NE(NULL, strstr(out, "verdict: allowed"));
	EXPECT_NE(NULL, strstr(out, "policy: " P "cli (enforce)"));

	snprintf(args, sizeof(args), "vm check %llu mem add 2052K",
		 (unsigned long long)self->id);
	r = cli(args, out, sizeof(out));
	printf("%s", out);
	EXPECT_EQ(3, r);
	EXPECT_NE(NULL, strstr(out, "verdict: refused"));

	snprintf(args, sizeof(args), "-j vm check %llu dirty-log all",
		 (unsigned long long)self->id);
	r = cli(args, out, sizeof(out));
	printf("%s", out);
	EXPECT_EQ(3, r);
	EXPECT_NE(NULL, strstr(out, "\"verdict\":\"refused\""));
	EXPECT_NE(NULL, strstr(out, "\"total\":2097152"));
	EXPECT_NE(NULL, strstr(out, "\"limit\":1048576"));

	r = cli("vm check 999999999 dirty-log all", out, sizeof(out));
	printf("%s", out);
	EXPECT_EQ(1, r);
	EXPECT_NE(NULL, strstr(out, "no VM with that id"));
	snprintf(args, sizeof(args), "vm check %llu dirty-log some",
		 (unsigned long long)self->id);
	EXPECT_EQ(2, cli(args, out, sizeof(out)));
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
