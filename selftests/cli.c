// SPDX-License-Identifier: GPL-2.0
/*
 * cli: the kvmguard CLI ($KVMGUARD_CLI) against the real module, checked
 * through raw netlink: policy add/set/del, bind/unbind and show do what
 * they say; -j output of vm list, vm show, policy show and bind show is
 * strict JSON with the kernel's values; `dump | apply -` changes nothing;
 * apply converges (what the file lacks is removed) and a second apply
 * changes nothing; exit codes 0/1/2; a refused request prints the kernel's
 * extack message on stderr. The memory rules: `policy add/set ... mem ...`
 * reach the kernel exactly (sizes, none, 0), bad sizes change nothing,
 * policy show (text, -j) and dump | apply carry them; vm show (text, -j)
 * reports the shared, dirty-tracked bytes and violation counters that a VM
 * of known memslots must have, and monitor (text, -j) its MEMORY events.
 * The network rules: `net tag/trunk/isolate` reach the kernel exactly (the
 * trunk bitmap bit by bit), bad VIDs and lists change nothing, policy show
 * (text, -j) and dump | apply carry them; `net bind/unbind` of a tap to a
 * VM, with vm show (text, -j) listing it, and their refusals; a frame the
 * "guest" writes into a bound tap shows in monitor's NET events (text, -j)
 * and in vm show's counters, which are the kernel's.
 * The longest cgroup binding the kernel takes is bound, shown, dumped and
 * unbound by the CLI; commands racing rmmod say the module is not loaded
 * or being unloaded.
 * The host's policies and bindings are saved with `dump` first and
 * applied back at the end.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>

#include "kselftest_harness.h"
#include "json.h"
#include "kg.h"
#include "vm.h"

#define P "kgc-"
#define CG "/kvmguard-cli"
#define APPLY_FILE "/tmp/kvmguard-selftest-apply.conf"

static const char *cli;

FIXTURE(cli) {
	struct gnl g;
	char *saved;	/* `kvmguard dump` before the test */
};

/* Run the CLI with printf-style arguments; returns the exit status. */
static int run(char **out, char **err, const char *in, const char *fmt, ...)
{
	char *args = NULL, *cmd = NULL;
	va_list ap;
	int r = -1;

	va_start(ap, fmt);
	if (vasprintf(&args, fmt, ap) < 0)
		args = NULL;
	va_end(ap);
	if (args && asprintf(&cmd, "'%s' %s", cli, args) >= 0) {
		r = kg_run(cmd, in, out, err);
		if (strlen(args) > 200)
			printf("# $ kvmguard %.200s... (%zu bytes) -> %d\n", args,
			       strlen(args), r);
		else
			printf("# $ kvmguard %s -> %d\n", args, r);
	}
	free(cmd);
	free(args);
	return r;
}

/* Run, expect @status, discard output. */
#define RUN_OK(...) do {						\
	char *__o = NULL, *__e = NULL;					\
	int __r = run(&__o, &__e, NULL, __VA_ARGS__);			\
	EXPECT_EQ(0, __r) TH_LOG("stderr: %s", __e ? __e : "");	\
	free(__o);							\
	free(__e);							\
} while (0)

static struct json *run_json(char **err, const char *fmt, const char *arg)
{
	char *out = NULL, e[128];
	struct json *j = NULL;

	if (run(&out, err, NULL, fmt, arg) == 0 && out) {
		j = json_parse(out, e, sizeof(e));
		if (!j)
			printf("# invalid JSON (%s): %s\n", e, out);
	}
	free(out);
	return j;
}

FIXTURE_SETUP(cli)
{
	char *err = NULL;

	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
	kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, CG, 0);
	ASSERT_EQ(0, run(&self->saved, &err, NULL, "dump")) TH_LOG("%s", err);
	free(err);
}

FIXTURE_TEARDOWN(cli)
{
	char *err = NULL;

	kg_cleanup(&self->g, P);
	kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, CG, 0);
	if (self->saved && run(NULL, &err, self->saved, "apply -"))
		TH_LOG("restoring the host's policies failed: %s", err ? err : "");
	free(err);
	free(self->saved);
	gnl_close(&self->g);
}

static const struct json *find(const struct json *arr, const char *key, const char *val)
{
	for (int i = 0; arr && arr->type == JSON_ARR && i < arr->n; i++) {
		const char *s = json_str(json_get(arr->items[i], key));

		if (s && !strcmp(s, val))
			return arr->items[i];
	}
	return NULL;
}

static const struct json *find_u64(const struct json *arr, const char *key, uint64_t val)
{
	for (int i = 0; arr && arr->type == JSON_ARR && i < arr->n; i++) {
		uint64_t v;

		if (json_u64(json_get(arr->items[i], key), &v) && v == val)
			return arr->items[i];
	}
	return NULL;
}

static uint64_t u64_of(const struct json *j, const char *key)
{
	uint64_t v = 0xdeadbeef;

	json_u64(json_get(j, key), &v);
	return v;
}

static const char *bound_by_name(int b)
{
	static const char *const n[] = { "none", "default", "cgroup", "pid", "explicit" };

	return b >= 0 && b <= KVMGUARD_BOUND_MAX ? n[b] : "?";
}

/* The memory rules of a policy as the kernel reports them (raw netlink). */
struct mem_rules {
	uint64_t max, dirty_max;
	uint8_t shared, ksm;
};

static int mem_rules_cb(const struct nlmsghdr *nlh, void *arg)
{
	const struct nlattr *tb[KVMGUARD_A_MAX + 1];
	struct mem_rules *r = arg;

	if (gnl_parse(nlh, tb, KVMGUARD_A_MAX, NULL) ||
	    !tb[KVMGUARD_A_POLICY_MEM_MAX] || !tb[KVMGUARD_A_POLICY_MEM_SHARED] ||
	    !tb[KVMGUARD_A_POLICY_MEM_KSM] || !tb[KVMGUARD_A_POLICY_MEM_DIRTY_MAX])
		return -EBADMSG;
	r->max = gnl_get_u64(tb[KVMGUARD_A_POLICY_MEM_MAX]);
	r->shared = gnl_get_u8(tb[KVMGUARD_A_POLICY_MEM_SHARED]);
	r->ksm = gnl_get_u8(tb[KVMGUARD_A_POLICY_MEM_KSM]);
	r->dirty_max = gnl_get_u64(tb[KVMGUARD_A_POLICY_MEM_DIRTY_MAX]);
	return 0;
}

static int kernel_mem_rules(struct gnl *g, const char *name, struct mem_rules *r)
{
	static struct gnl_msg m;

	memset(r, 0xa5, sizeof(*r));
	kg_req(g, &m, KVMGUARD_CMD_POLICY_GET, false);
	gnl_put_str(&m, KVMGUARD_A_POLICY_NAME, name);
	return gnl_transact(g, &m, mem_rules_cb, r);
}

/* The network rules of a policy as the kernel reports them (raw netlink). */
struct net_rules {
	uint16_t tag;
	uint8_t isolate;
	uint8_t trunk[KVMGUARD_NET_TRUNK_BYTES];
};

static int net_rules_cb(const struct nlmsghdr *nlh, void *arg)
{
	const struct nlattr *tb[KVMGUARD_A_MAX + 1];
	struct net_rules *r = arg;

	if (gnl_parse(nlh, tb, KVMGUARD_A_MAX, NULL) ||
	    !tb[KVMGUARD_A_POLICY_NET_TAG] || !tb[KVMGUARD_A_POLICY_NET_TRUNK] ||
	    !tb[KVMGUARD_A_POLICY_NET_ISOLATE] ||
	    gnl_alen(tb[KVMGUARD_A_POLICY_NET_TAG]) != 2 ||
	    gnl_alen(tb[KVMGUARD_A_POLICY_NET_TRUNK]) != KVMGUARD_NET_TRUNK_BYTES)
		return -EBADMSG;
	memcpy(&r->tag, (const char *)tb[KVMGUARD_A_POLICY_NET_TAG] + NLA_HDRLEN, 2);
	memcpy(r->trunk, (const char *)tb[KVMGUARD_A_POLICY_NET_TRUNK] + NLA_HDRLEN,
	       KVMGUARD_NET_TRUNK_BYTES);
	r->isolate = gnl_get_u8(tb[KVMGUARD_A_POLICY_NET_ISOLATE]);
	return 0;
}

static int kernel_net_rules(struct gnl *g, const char *name, struct net_rules *r)
{
	static struct gnl_msg m;

	memset(r, 0xa5, sizeof(*r));
	kg_req(g, &m, KVMGUARD_CMD_POLICY_GET, false);
	gnl_put_str(&m, KVMGUARD_A_POLICY_NAME, name);
	return gnl_transact(g, &m, net_rules_cb, r);
}

/* The trunk bitmap of VIDs first..last (per the ABI: byte v / 8, bit v % 8). */
static void trunk_set(uint8_t *bits, unsigned int first, unsigned int last)
{
	for (unsigned int v = first; v <= last; v++)
		bits[v / 8] |= 1U << (v % 8);
}

/* A VM's memory counters as the kernel reports them, in this order. */
static const int vm_mem_attrs[] = {
	KVMGUARD_A_VM_MEM_BYTES, KVMGUARD_A_VM_MEM_SHARED_BYTES,
	KVMGUARD_A_VM_MEM_DIRTY_BYTES, KVMGUARD_A_VM_MEM_LIMIT_DENIED,
	KVMGUARD_A_VM_MEM_SHARED_DENIED, KVMGUARD_A_VM_MEM_KSM_DENIED,
	KVMGUARD_A_VM_MEM_DIRTY_DENIED,
};

#define N_VM_MEM ((int)(sizeof(vm_mem_attrs) / sizeof(vm_mem_attrs[0])))

static int vm_mem_cb(const struct nlmsghdr *nlh, void *arg)
{
	const struct nlattr *tb[KVMGUARD_A_MAX + 1];
	uint64_t *v = arg;

	if (gnl_parse(nlh, tb, KVMGUARD_A_MAX, NULL))
		return -EBADMSG;
	for (int i = 0; i < N_VM_MEM; i++) {
		if (!tb[vm_mem_attrs[i]])
			return -EBADMSG;
		v[i] = gnl_get_u64(tb[vm_mem_attrs[i]]);
	}
	return 0;
}

static int kernel_vm_mem(struct gnl *g, uint64_t id, uint64_t v[N_VM_MEM])
{
	static struct gnl_msg m;

	kg_req(g, &m, KVMGUARD_CMD_VM_GET, false);
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, id);
	return gnl_transact(g, &m, vm_mem_cb, v);
}

TEST_F_TIMEOUT(cli, policy_and_bind_commands, 120)
{
	struct kg_policy p;
	struct kg_bind *b;
	struct json *j;
	const struct json *e;
	char *err = NULL, *out = NULL;
	int n, found = 0;

	RUN_OK("policy add " P "a mode audit domain d1");
	ASSERT_EQ(0, kg_policy_get(&self->g, P "a", &p));
	EXPECT_EQ(KVMGUARD_MODE_AUDIT, p.mode);
	EXPECT_STREQ("d1", p.domain);
	RUN_OK("policy set " P "a domain none");
	ASSERT_EQ(0, kg_policy_get(&self->g, P "a", &p));
	EXPECT_FALSE(p.has_domain);
	EXPECT_EQ(KVMGUARD_MODE_AUDIT, p.mode);
	RUN_OK("policy set " P "a mode enforce");
	ASSERT_EQ(0, kg_policy_get(&self->g, P "a", &p));
	EXPECT_EQ(KVMGUARD_MODE_ENFORCE, p.mode);
	RUN_OK("policy add " P "b");

	RUN_OK("bind cgroup " CG " policy " P "a");
	RUN_OK("bind pid %d policy " P "a", getpid());
	RUN_OK("bind default policy " P "b");
	ASSERT_EQ(0, kg_bind_dump(&self->g, &b, &n));
	for (int i = 0; i < n; i++) {
		if (b[i].type == KVMGUARD_BIND_CGROUP && !strcmp(b[i].cgroup, CG)) {
			EXPECT_STREQ(P "a", b[i].policy);
			found++;
		}
		if (b[i].type == KVMGUARD_BIND_PID && b[i].pid == (uint32_t)getpid()) {
			EXPECT_STREQ(P "a", b[i].policy);
			found++;
		}
		if (b[i].type == KVMGUARD_BIND_DEFAULT) {
			EXPECT_STREQ(P "b", b[i].policy);
			found++;
		}
	}
	free(b);
	EXPECT_EQ(3, found);

	j = run_json(&err, "-j policy show %s", P "a");
	ASSERT_NE(NULL, j) TH_LOG("%s", err);
	EXPECT_EQ(JSON_OBJ, (int)j->type);
	EXPECT_STREQ(P "a", json_str(json_get(j, "name")));
	EXPECT_STREQ("enforce", json_str(json_get(j, "mode")));
	ASSERT_NE(NULL, json_get(j, "domain"));
	EXPECT_EQ(JSON_NULL, (int)json_get(j, "domain")->type);
	EXPECT_EQ(0ULL, u64_of(j, "vms"));
	EXPECT_EQ(2ULL, u64_of(j, "bindings"));
	json_free(j);

	j = run_json(&err, "-j policy %s", "show");
	ASSERT_NE(NULL, j) TH_LOG("%s", err);
	ASSERT_EQ(JSON_ARR, (int)j->type);
	e = find(j, "name", P "b");
	ASSERT_NE(NULL, e);
	EXPECT_EQ(1ULL, u64_of(e, "bindings"));
	EXPECT_NE(NULL, find(j, "name", P "a"));
	json_free(j);

	j = run_json(&err, "-j bind %s", "show");
	ASSERT_NE(NULL, j) TH_LOG("%s", err);
	ASSERT_EQ(JSON_ARR, (int)j->type);
	e = find(j, "selector", "default");
	ASSERT_NE(NULL, e);
	EXPECT_STREQ(P "b", json_str(json_get(e, "policy")));
	EXPECT_EQ(NULL, json_get(e, "cgroup"));
	EXPECT_EQ(NULL, json_get(e, "pid"));
	e = find(j, "cgroup", CG);
	ASSERT_NE(NULL, e);
	EXPECT_STREQ("cgroup", json_str(json_get(e, "selector")));
	EXPECT_STREQ(P "a", json_str(json_get(e, "policy")));
	e = find_u64(j, "pid", getpid());
	ASSERT_NE(NULL, e);
	EXPECT_STREQ("pid", json_str(json_get(e, "selector")));
	EXPECT_STREQ(P "a", json_str(json_get(e, "policy")));
	/* The first binding is the default. */
	EXPECT_STREQ("default", json_str(json_get(j->items[0], "selector")));
	json_free(j);

	/* Text output names them too. */
	EXPECT_EQ(0, run(&out, NULL, NULL, "bind show"));
	EXPECT_NE(NULL, out && strstr(out, CG) ? out : NULL);
	free(out);
	out = NULL;
	EXPECT_EQ(0, run(&out, NULL, NULL, "policy show"));
	EXPECT_NE(NULL, out && strstr(out, P "a") ? out : NULL);
	free(out);

	RUN_OK("unbind cgroup " CG);
	RUN_OK("unbind pid %d", getpid());
	RUN_OK("unbind default");
	ASSERT_EQ(0, kg_policy_get(&self->g, P "a", &p));
	EXPECT_EQ(0U, p.bindings);
	RUN_OK("policy del " P "a");
	EXPECT_EQ(-ENOENT, kg_policy_get(&self->g, P "a", &p));
	free(err);
}

TEST_F_TIMEOUT(cli, vm_json, 120)
{
	struct kg_vm v;
	struct vm vm;
	struct json *j;
	const struct json *e;
	char *err = NULL, id[32];
	uint64_t max = kg_max_vm_id(&self->g);

	ASSERT_EQ(0, prctl(PR_SET_NAME, "kg-cli-vm"));
	ASSERT_EQ(0, vm_create_loop(&vm));
	ASSERT_EQ(0, vm_add_vcpu(&vm, 0));
	ASSERT_EQ(1, vm_add_vcpu(&vm, 1));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	snprintf(id, sizeof(id), "%llu", (unsigned long long)v.id);

	j = run_json(&err, "-j vm %s", "list");
	ASSERT_NE(NULL, j) TH_LOG("%s", err);
	ASSERT_EQ(JSON_ARR, (int)j->type);
	e = find_u64(j, "id", v.id);
	ASSERT_NE(NULL, e);
	EXPECT_EQ((uint64_t)getpid(), u64_of(e, "pid"));
	EXPECT_STREQ("kg-cli-vm", json_str(json_get(e, "comm")));
	EXPECT_STREQ(v.cgroup, json_str(json_get(e, "cgroup")));
	EXPECT_EQ(v.created_ns, u64_of(e, "created_ns"));
	EXPECT_EQ(2ULL, u64_of(e, "vcpus"));
	EXPECT_EQ(1ULL, u64_of(e, "memslots"));
	EXPECT_EQ((uint64_t)VM_SLOT0_SIZE, u64_of(e, "mem_bytes"));
	EXPECT_STREQ(bound_by_name(v.bound_by), json_str(json_get(e, "bound_by")));
	ASSERT_NE(NULL, json_get(e, "discovered"));
	EXPECT_EQ(JSON_BOOL, (int)json_get(e, "discovered")->type);
	EXPECT_FALSE(json_get(e, "discovered")->b);
	ASSERT_NE(NULL, json_get(e, "policy"));
	if (v.has_policy) {
		EXPECT_STREQ(v.policy, json_str(json_get(e, "policy")));
	} else {
		EXPECT_EQ(JSON_NULL, (int)json_get(e, "policy")->type);
	}
	/* Sorted by id like the kernel's dump. */
	for (int i = 1; i < j->n; i++) {
		EXPECT_LT(u64_of(j->items[i - 1], "id"), u64_of(j->items[i], "id"));
	}
	json_free(j);

	ASSERT_EQ(0, kg_policy_new(&self->g, P "v", KVMGUARD_MODE_AUDIT, NULL));
	RUN_OK("vm set %s policy " P "v", id);
	ASSERT_EQ(0, kg_vm_get(&self->g, v.id, &v));
	EXPECT_EQ(KVMGUARD_BOUND_EXPLICIT, v.bound_by);
	EXPECT_STREQ(P "v", v.policy);

	j = run_json(&err, "-j vm show %s", id);
	ASSERT_NE(NULL, j) TH_LOG("%s", err);
	ASSERT_EQ(JSON_OBJ, (int)j->type);
	EXPECT_EQ(v.id, u64_of(j, "id"));
	EXPECT_STREQ(P "v", json_str(json_get(j, "policy")));
	EXPECT_STREQ("explicit", json_str(json_get(j, "bound_by")));
	EXPECT_EQ(2ULL, u64_of(j, "vcpus"));
	json_free(j);

	j = run_json(&err, "-j policy show %s", P "v");
	ASSERT_NE(NULL, j) TH_LOG("%s", err);
	EXPECT_EQ(1ULL, u64_of(j, "vms"));
	EXPECT_STREQ("audit", json_str(json_get(j, "mode")));
	json_free(j);

	vm_destroy(&vm);
	free(err);
}

TEST_F_TIMEOUT(cli, exit_codes_and_extack, 120)
{
	char *out = NULL, *err = NULL;
	const char *msg;

	/* Usage errors: 2. */
	EXPECT_EQ(2, run(NULL, NULL, NULL, "%s", ""));
	EXPECT_EQ(2, run(NULL, NULL, NULL, "%s", "frobnicate"));
	EXPECT_EQ(2, run(NULL, NULL, NULL, "%s", "policy frobnicate x"));
	EXPECT_EQ(2, run(NULL, NULL, NULL, "%s", "bind cgroup"));
	EXPECT_EQ(2, run(NULL, NULL, NULL, "%s", "policy add " P "x mode sometimes"));
	EXPECT_EQ(2, run(NULL, NULL, NULL, "%s", "vm show notanumber"));
	/* Kernel errors: 1, with a message. */
	EXPECT_EQ(1, run(NULL, &err, NULL, "%s", "policy del " P "nope"));
	EXPECT_NE(0, err && err[0]);
	free(err);
	err = NULL;
	EXPECT_EQ(1, run(NULL, &err, NULL, "%s", "vm show 999999999999"));
	EXPECT_NE(0, err && err[0]);
	free(err);
	err = NULL;
	RUN_OK("policy add " P "x");
	EXPECT_EQ(1, run(NULL, NULL, NULL, "%s", "policy add " P "x"));
	EXPECT_EQ(0, run(NULL, NULL, NULL, "%s", "policy show " P "x"));

	/* The extack message the kernel gives appears on stderr. */
	RUN_OK("bind cgroup " CG " policy " P "x");
	ASSERT_EQ(-EBUSY, kg_policy_del(&self->g, P "x"));
	msg = self->g.ext_msg;
	ASSERT_NE(0, msg[0]) TH_LOG("the kernel gave no extack message");
	EXPECT_EQ(1, run(&out, &err, NULL, "%s", "policy del " P "x"));
	EXPECT_NE(NULL, err && strstr(err, msg) ? err : NULL)
		TH_LOG("stderr [%s] lacks [%s]", err ? err : "", msg);
	free(out);
	free(err);
	RUN_OK("unbind cgroup " CG);
	RUN_OK("policy del " P "x");
}

/* Everything the kernel holds about policies and bindings, as text. */
static char *kernel_state(struct gnl *g)
{
	struct kg_policy *p;
	struct kg_bind *b;
	size_t size = 0;
	char *s = NULL;
	FILE *f = open_memstream(&s, &size);
	int n;

	if (!kg_policy_dump(g, &p, &n)) {
		for (int i = 0; i < n; i++) {
			struct mem_rules r;

			fprintf(f, "policy %s %d %d:%s vms %u bindings %u\n", p[i].name,
				p[i].mode, p[i].has_domain, p[i].domain, p[i].vms,
				p[i].bindings);
			struct net_rules nr;

			if (!kernel_mem_rules(g, p[i].name, &r))
				fprintf(f, "  mem %llu %u %u %llu\n",
					(unsigned long long)r.max, r.shared, r.ksm,
					(unsigned long long)r.dirty_max);
			else
				fprintf(f, "  mem unreadable\n");
			if (!kernel_net_rules(g, p[i].name, &nr)) {
				fprintf(f, "  net %u %u", nr.tag, nr.isolate);
				for (int v = 0; v < KVMGUARD_NET_TRUNK_BYTES * 8; v++)
					if (nr.trunk[v / 8] & (1U << (v % 8)))
						fprintf(f, " %d", v);
				fputc('\n', f);
			} else {
				fprintf(f, "  net unreadable\n");
			}
		}
	}
	free(p);
	if (!kg_bind_dump(g, &b, &n))
		for (int i = 0; i < n; i++)
			fprintf(f, "bind %d %s %u %s\n", b[i].type, b[i].cgroup,
				b[i].pid, b[i].policy);
	free(b);
	fclose(f);
	return s;
}

TEST_F_TIMEOUT(cli, dump_apply_roundtrip, 120)
{
	char *d1 = NULL, *d2 = NULL, *out = NULL, *err = NULL, *k1, *k2, cmd[4200];
	struct gnl sub;

	RUN_OK("policy add " P "r1 mode audit domain dx");
	RUN_OK("policy add " P "r2 mem max 1536M mem shared domain mem ksm deny"
	       " mem dirty-log max 4097");
	RUN_OK("policy add " P "r3 mem max 0 mem dirty-log max 0 mem shared deny");
	RUN_OK("policy add " P "r4 net tag 4094 net trunk 1,3,5-9,4000-4093 net isolate on");
	RUN_OK("bind cgroup " CG "/r policy " P "r2");
	RUN_OK("bind pid %d policy " P "r2", getpid());
	k1 = kernel_state(&self->g);
	ASSERT_EQ(0, run(&d1, NULL, NULL, "%s", "dump"));
	EXPECT_NE(NULL, strstr(d1, P "r1"));
	EXPECT_NE(NULL, strstr(d1, CG "/r"));
	EXPECT_NE(NULL, strstr(d1, "policy add " P "r2 mode enforce mem max 1536M "
			       "mem shared domain mem ksm deny mem dirty-log max 4097\n"))
		TH_LOG("%s", d1);
	EXPECT_NE(NULL, strstr(d1, "policy add " P "r3 mode enforce mem max 0 "
			       "mem shared deny mem dirty-log max 0\n"))
		TH_LOG("%s", d1);
	EXPECT_NE(NULL, strstr(d1, "policy add " P "r4 mode enforce net tag 4094 "
			       "net trunk 1,3,5-9,4000-4093 net isolate on\n"))
		TH_LOG("%s", d1);

	/* Subscribe: a no-op apply must not make anything happen. */
	ASSERT_EQ(0, kg_open(&sub));
	ASSERT_EQ(0, gnl_join(&sub, gnl_grp_id(&sub, KVMGUARD_MCGRP_EVENTS)));
	snprintf(cmd, sizeof(cmd), "'%s' dump | '%s' -v apply -", cli, cli);
	EXPECT_EQ(0, kg_run(cmd, NULL, &out, &err)) TH_LOG("%s", err);
	EXPECT_EQ(-ETIMEDOUT, gnl_recv(&sub, 300)) TH_LOG("an event during a no-op apply");
	gnl_close(&sub);
	EXPECT_STREQ("", out) TH_LOG("dump | apply made changes");
	free(out);
	free(err);
	k2 = kernel_state(&self->g);
	EXPECT_STREQ(k1, k2);
	ASSERT_EQ(0, run(&d2, NULL, NULL, "%s", "dump"));
	EXPECT_STREQ(d1, d2);
	free(k1);
	free(k2);
	free(d1);
	free(d2);
}

TEST_F_TIMEOUT(cli, apply_converges_and_is_idempotent, 120)
{
	static const char file[] =
		"# kvmguard selftest\n"
		"policy add " P "r1 mode enforce domain dy\n"
		"\n"
		"policy add " P "r3 mode audit\n"
		"bind cgroup " CG "/r3 policy " P "r3\n"
		"bind default policy " P "r1\n";
	struct kg_policy p, *all;
	struct kg_bind *b;
	char *out = NULL, *err = NULL, *k1, *k2;
	int n, binds = 0;
	FILE *f;

	RUN_OK("policy add " P "r1 mode audit domain dx");
	RUN_OK("policy add " P "r2");
	RUN_OK("bind cgroup " CG "/r policy " P "r2");

	EXPECT_EQ(0, run(&out, &err, file, "-v apply -")) TH_LOG("%s", err);
	EXPECT_STRNE("", out) TH_LOG("apply -v printed no change");
	free(out);
	free(err);
	out = err = NULL;
	EXPECT_EQ(-ENOENT, kg_policy_get(&self->g, P "r2", &p));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "r1", &p));
	EXPECT_EQ(KVMGUARD_MODE_ENFORCE, p.mode);
	EXPECT_STREQ("dy", p.domain);
	ASSERT_EQ(0, kg_policy_get(&self->g, P "r3", &p));
	EXPECT_EQ(KVMGUARD_MODE_AUDIT, p.mode);
	ASSERT_EQ(0, kg_bind_dump(&self->g, &b, &n));
	for (int i = 0; i < n; i++) {
		binds++;
		if (b[i].type == KVMGUARD_BIND_CGROUP) {
			EXPECT_STREQ(CG "/r3", b[i].cgroup);
			EXPECT_STREQ(P "r3", b[i].policy);
		} else {
			EXPECT_EQ(KVMGUARD_BIND_DEFAULT, b[i].type);
			EXPECT_STREQ(P "r1", b[i].policy);
		}
	}
	free(b);
	EXPECT_EQ(2, binds);
	/* Only what the file says exists. */
	ASSERT_EQ(0, kg_policy_dump(&self->g, &all, &n));
	free(all);
	EXPECT_EQ(2, n);

	/* Again, from a file this time: nothing left to change. */
	k1 = kernel_state(&self->g);
	f = fopen(APPLY_FILE, "w");
	ASSERT_NE(NULL, f);
	fputs(file, f);
	fclose(f);
	EXPECT_EQ(0, run(&out, &err, NULL, "-v apply " APPLY_FILE)) TH_LOG("%s", err);
	unlink(APPLY_FILE);
	EXPECT_STREQ("", out) TH_LOG("second apply changed things");
	k2 = kernel_state(&self->g);
	EXPECT_STREQ(k1, k2);
	free(out);
	free(err);
	free(k1);
	free(k2);

	/* A broken file changes nothing and is an error. */
	k1 = kernel_state(&self->g);
	EXPECT_NE(0, run(NULL, NULL, "policy add " P "r9\nfrobnicate\n", "apply -"));
	EXPECT_EQ(-ENOENT, kg_policy_get(&self->g, P "r9", &p));
	k2 = kernel_state(&self->g);
	EXPECT_STREQ(k1, k2);
	free(k1);
	free(k2);
}

/*
 * Start `kvmguard [-j] monitor` with its stdout in @fd; returns its pid once
 * it has printed something (it is subscribed then), or -1. On a slow
 * (debug) kernel the CLI may take seconds to start, so probe with
 * throwaway VMs.
 */
static pid_t monitor_start(int fd, bool json)
{
	struct vm vm;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(fd, 1);
		if (json)
			execl(cli, cli, "-j", "monitor", (char *)NULL);
		else
			execl(cli, cli, "monitor", (char *)NULL);
		_exit(127);
	}
	for (int tries = 0; lseek(fd, 0, SEEK_END) == 0; tries++) {
		if (tries == 100 || vm_create(&vm)) {
			printf("# monitor printed nothing in 20 s\n");
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return -1;
		}
		vm_destroy(&vm);
		usleep(200000);
	}
	return pid;
}

/* SIGTERM, wait; its exit status (-1 if not a normal exit), output in *text. */
static int monitor_stop(pid_t pid, int fd, char **text)
{
	int status;
	off_t len;

	kill(pid, SIGTERM);
	if (waitpid(pid, &status, 0) != pid)
		status = -1;
	len = lseek(fd, 0, SEEK_END);
	*text = calloc(1, len + 1);
	if (*text && pread(fd, *text, len, 0) != len)
		(*text)[0] = 0;
	close(fd);
	return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* `-j monitor`: one strict JSON object per line, with our VM's events. */
TEST_F_TIMEOUT(cli, monitor_json, 120)
{
	int fd = memfd_create("kg-monitor", MFD_CLOEXEC), creates = 0, destroys = 0;
	char *text, *line, *save = NULL, e[128];
	struct kg_vm v;
	struct vm vm;
	uint64_t max;
	pid_t pid;

	ASSERT_LE(0, fd);
	pid = monitor_start(fd, true);
	ASSERT_LT(0, pid);
	max = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, prctl(PR_SET_NAME, "kg-cli-mon"));
	ASSERT_EQ(0, vm_create(&vm));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	vm_destroy(&vm);
	usleep(500000);
	EXPECT_EQ(0, monitor_stop(pid, fd, &text));
	ASSERT_NE(NULL, text);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct json *j = json_parse(line, e, sizeof(e));
		const struct json *jv;
		const char *ev;

		EXPECT_NE(NULL, j) TH_LOG("not JSON (%s): %s", e, line);
		if (!j)
			continue;
		EXPECT_EQ(JSON_OBJ, (int)j->type);
		jv = json_get(j, "vm");
		ev = json_str(json_get(j, "event"));
		if (jv && u64_of(jv, "id") == v.id && ev) {
			EXPECT_EQ((uint64_t)getpid(), u64_of(jv, "pid"));
			EXPECT_STREQ("kg-cli-mon", json_str(json_get(jv, "comm")));
			EXPECT_NE(0xdeadbeefULL, u64_of(j, "time_ns"));
			creates += !strcmp(ev, "vm_create");
			destroys += !strcmp(ev, "vm_destroy");
		}
		json_free(j);
	}
	free(text);
	EXPECT_EQ(1, creates);
	EXPECT_EQ(1, destroys);
}

/* The memory rules from the command line to the kernel and back. */
TEST_F_TIMEOUT(cli, mem_policy_rules, 120)
{
	static const char *const bad[] = {
		"4X", "-1", "16777216T", "18446744073709551616", "1.5G", "4g", "4GB", "",
	};
	struct mem_rules r, r2;
	struct json *j;
	const struct json *m;
	char *out = NULL, *err = NULL, *line, cells[4][64];

	RUN_OK("policy add " P "m mem max 4G mem shared domain mem ksm deny"
	       " mem dirty-log max 16MiB domain dm");
	ASSERT_EQ(0, kernel_mem_rules(&self->g, P "m", &r));
	EXPECT_EQ(4ULL << 30, r.max);
	EXPECT_EQ(KVMGUARD_MEM_SHARED_DOMAIN, r.shared);
	EXPECT_EQ(KVMGUARD_KSM_DENY, r.ksm);
	EXPECT_EQ(16ULL << 20, r.dirty_max);

	/* set changes what it names; none is no limit, 0 is a limit */
	RUN_OK("policy set " P "m mem max none mem dirty-log max 0 mem shared deny");
	ASSERT_EQ(0, kernel_mem_rules(&self->g, P "m", &r));
	EXPECT_EQ(KVMGUARD_MEM_UNLIMITED, r.max);
	EXPECT_EQ(KVMGUARD_MEM_SHARED_DENY, r.shared);
	EXPECT_EQ(KVMGUARD_KSM_DENY, r.ksm);
	EXPECT_EQ(0ULL, r.dirty_max);

	/* bad sizes are usage errors naming the word, and change nothing */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[96];

		snprintf(want, sizeof(want), "kvmguard: invalid mem max '%s': ", bad[i]);
		EXPECT_EQ(2, run(NULL, &err, NULL, "policy set " P "m mem max '%s'", bad[i]));
		EXPECT_NE(NULL, err && strstr(err, want) ? err : NULL)
			TH_LOG("stderr [%s] lacks [%s]", err ? err : "", want);
		free(err);
		err = NULL;
	}
	ASSERT_EQ(0, kernel_mem_rules(&self->g, P "m", &r2));
	EXPECT_EQ(0, memcmp(&r, &r2, sizeof(r)));

	/* the largest size the grammar has, and one that is no multiple of 1K */
	RUN_OK("policy set " P "m mem max 16777215T mem dirty-log max 4097");
	ASSERT_EQ(0, kernel_mem_rules(&self->g, P "m", &r));
	EXPECT_EQ(16777215ULL << 40, r.max);
	EXPECT_EQ(4097ULL, r.dirty_max);

	/* -j: exact bytes, null for no limit */
	RUN_OK("policy set " P "m mem max 1536M mem dirty-log max none");
	j = run_json(&err, "-j policy show %s", P "m");
	ASSERT_NE(NULL, j) TH_LOG("%s", err);
	m = json_get(j, "mem");
	ASSERT_NE(NULL, m);
	EXPECT_EQ(1536ULL << 20, u64_of(m, "max"));
	ASSERT_NE(NULL, json_get(m, "dirty_log_max"));
	EXPECT_EQ(JSON_NULL, (int)json_get(m, "dirty_log_max")->type);
	EXPECT_STREQ("deny", json_str(json_get(m, "shared")));
	EXPECT_STREQ("deny", json_str(json_get(m, "ksm")));
	json_free(j);

	/* the table's memory cells, given back as rule values, change nothing */
	ASSERT_EQ(0, run(&out, &err, NULL, "policy show %s", P "m")) TH_LOG("%s", err);
	line = out ? strstr(out, "\n" P "m ") : NULL;
	ASSERT_NE(NULL, line) TH_LOG("%s", out);
	ASSERT_EQ(4, sscanf(line, "%*s %*s %*s %*s %*s %*s %*s %63s %63s %63s %63s",
			    cells[0], cells[1], cells[2], cells[3])) TH_LOG("%s", out);
	EXPECT_STREQ("1536M", cells[0]);
	EXPECT_STREQ("deny", cells[1]);
	EXPECT_STREQ("deny", cells[2]);
	EXPECT_STREQ("none", cells[3]);
	ASSERT_EQ(0, kernel_mem_rules(&self->g, P "m", &r));
	RUN_OK("policy set " P "m mem max %s mem shared %s mem ksm %s mem dirty-log max %s",
	       cells[0], cells[1], cells[2], cells[3]);
	ASSERT_EQ(0, kernel_mem_rules(&self->g, P "m", &r2));
	EXPECT_EQ(0, memcmp(&r, &r2, sizeof(r)));
	free(out);
	free(err);
	out = err = NULL;

	/* apply: rules the file leaves out go back to their defaults */
	EXPECT_EQ(0, run(NULL, &err, "policy add " P "m domain dm\n", "apply -")) TH_LOG("%s", err);
	ASSERT_EQ(0, kernel_mem_rules(&self->g, P "m", &r));
	EXPECT_EQ(KVMGUARD_MEM_UNLIMITED, r.max);
	EXPECT_EQ(KVMGUARD_MEM_SHARED_ALLOW, r.shared);
	EXPECT_EQ(KVMGUARD_KSM_ALLOW, r.ksm);
	EXPECT_EQ(KVMGUARD_MEM_UNLIMITED, r.dirty_max);
	free(err);
}

static int region(struct vm *vm, uint32_t slot, uint32_t flags, uint64_t gpa,
		  uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa,
		.memory_size = size, .userspace_addr = (uintptr_t)hva,
	};

	return ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r) ? -errno : 0;
}

#define SHARED_SZ	(64ULL << 10)
#define DIRTY_SZ	(128ULL << 10)
#define BIG_SZ		(1ULL << 20)
#define SMALL_SZ	(64ULL << 10)
#define ANON_SZ		(2ULL << 20)

/* What a MEMORY event of monitor -j must say, by rule. */
struct want_event {
	const char *rule;
	uint64_t bytes;
	int slot;	/* -1: none */
	int seen;
};

/*
 * The next line of `-j monitor` output in *cursor (consumed) that is an
 * @event of VM @id, parsed; NULL at the end. A line that is not JSON fails
 * the test.
 */
static struct json *next_event(struct __test_metadata *_metadata, char **cursor,
			       const char *event, uint64_t id)
{
	char *line, e[128];

	while ((line = strsep(cursor, "\n"))) {
		struct json *j;
		const char *ev;

		if (!line[0])
			continue;
		j = json_parse(line, e, sizeof(e));
		EXPECT_NE(NULL, j) TH_LOG("not JSON (%s): %s", e, line);
		if (!j)
			continue;
		ev = json_str(json_get(j, "event"));
		if (ev && !strcmp(ev, event) && u64_of(json_get(j, "vm"), "id") == id)
			return j;
		json_free(j);
	}
	return NULL;
}

static void check_mem_event(struct __test_metadata *_metadata,
			    const struct json *j, struct want_event *w, int n)
{
	const struct json *slot = json_get(j, "slot");
	const char *rule = json_str(json_get(j, "rule"));

	for (int i = 0; i < n; i++) {
		if (!rule || strcmp(rule, w[i].rule))
			continue;
		w[i].seen++;
		EXPECT_STREQ("denied", json_str(json_get(j, "action")));
		EXPECT_EQ(1ULL, u64_of(j, "count"));
		EXPECT_EQ(w[i].bytes, u64_of(j, "bytes")) TH_LOG("rule %s", rule);
		/* The madvise of KSM is the one VMM-default request here. */
		EXPECT_EQ(!strcmp(rule, "ksm"), json_get(j, "vmm_default") != NULL)
			TH_LOG("rule %s", rule);
		if (w[i].slot < 0) {
			EXPECT_EQ(NULL, slot) TH_LOG("rule %s", rule);
		} else {
			ASSERT_NE(NULL, slot) TH_LOG("rule %s", rule);
			EXPECT_EQ(0ULL, u64_of(slot, "as_id"));
			EXPECT_EQ((uint64_t)w[i].slot, u64_of(slot, "id"));
		}
	}
}

/*
 * A VM of known memslots under memory rules: every refusal reaches the
 * ioctl, vm show (text, -j) reports the bytes and counters it must have,
 * both monitors print the MEMORY events, and turning KSM deny on while the
 * process has mergeable memory fails with the kernel's message.
 */
TEST_F_TIMEOUT(cli, mem_vm_show_and_monitor, 120)
{
	int mfd = memfd_create("kg-cli-shared", MFD_CLOEXEC);
	int tfd = memfd_create("kg-monitor", MFD_CLOEXEC);
	int jfd = memfd_create("kg-monitor-j", MFD_CLOEXEC);
	struct want_event want[] = {
		{ "limit", SHARED_SZ + DIRTY_SZ + BIG_SZ, 2, 0 },
		{ "dirty_log", DIRTY_SZ + SMALL_SZ, 3, 0 },
		{ "shared", SHARED_SZ, 4, 0 },
		{ "ksm", SMALL_SZ, -1, 0 },
	};
	char *out = NULL, *err = NULL, *text = NULL, *jtext = NULL, *cursor;
	char id[32], buf[256];
	uint64_t kv[N_VM_MEM], max;
	const struct json *d;
	pid_t tpid, jpid;
	struct kg_vm v;
	struct json *j;
	unsigned char *shared, *anon;
	struct vm vm;

	ASSERT_LE(0, mfd);
	ASSERT_LE(0, tfd);
	ASSERT_LE(0, jfd);
	ASSERT_EQ(0, ftruncate(mfd, 2 * SHARED_SZ));
	shared = mmap(NULL, 2 * SHARED_SZ, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	ASSERT_NE(MAP_FAILED, shared);
	anon = mmap(NULL, ANON_SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, anon);

	RUN_OK("policy add " P "vm mem max 1M mem dirty-log max 128K");
	RUN_OK("bind pid %d policy " P "vm", getpid());
	tpid = monitor_start(tfd, false);
	ASSERT_LT(0, tpid);
	jpid = monitor_start(jfd, true);
	ASSERT_LT(0, jpid);

	ASSERT_EQ(0, prctl(PR_SET_NAME, "kg-cli-mem"));
	max = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, vm_create(&vm));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	EXPECT_STREQ(P "vm", v.policy);
	snprintf(id, sizeof(id), "%llu", (unsigned long long)v.id);

	/* 64K of a memfd (shared) and 128K dirty-tracked: within the rules */
	ASSERT_EQ(0, region(&vm, 0, 0, 0, SHARED_SZ, shared));
	ASSERT_EQ(0, region(&vm, 1, KVM_MEM_LOG_DIRTY_PAGES, 1 << 20, DIRTY_SZ, anon));
	/* 1M more is over mem max 1M; 64K more dirty-tracked over 128K */
	EXPECT_EQ(-EDQUOT, region(&vm, 2, 0, 4 << 20, BIG_SZ, anon + DIRTY_SZ));
	EXPECT_EQ(-EDQUOT, region(&vm, 3, KVM_MEM_LOG_DIRTY_PAGES, 8 << 20, SMALL_SZ,
				  anon + DIRTY_SZ + BIG_SZ));
	RUN_OK("policy set " P "vm mem shared deny mem ksm deny");
	EXPECT_EQ(-EPERM, region(&vm, 4, 0, 16 << 20, SHARED_SZ, shared + SHARED_SZ));
	EXPECT_EQ(-1, madvise(anon + DIRTY_SZ + BIG_SZ, SMALL_SZ, MADV_MERGEABLE));
	EXPECT_EQ(EPERM, errno);

	/* -j vm show: what this VM must have, and what the kernel says */
	ASSERT_EQ(0, kernel_vm_mem(&self->g, v.id, kv));
	j = run_json(&err, "-j vm show %s", id);
	ASSERT_NE(NULL, j) TH_LOG("%s", err);
	EXPECT_EQ(2ULL, u64_of(j, "memslots"));
	EXPECT_EQ(SHARED_SZ + DIRTY_SZ, u64_of(j, "mem_bytes"));
	EXPECT_EQ(SHARED_SZ, u64_of(j, "mem_shared_bytes"));
	EXPECT_EQ(DIRTY_SZ, u64_of(j, "mem_dirty_bytes"));
	d = json_get(j, "mem_denied");
	ASSERT_NE(NULL, d);
	EXPECT_EQ(1ULL, u64_of(d, "limit"));
	EXPECT_EQ(1ULL, u64_of(d, "shared"));
	/* The madvise is a VMM's default request: counted apart. */
	EXPECT_EQ(0ULL, u64_of(d, "ksm"));
	EXPECT_EQ(1ULL, u64_of(j, "mem_ksm_madvise"));
	EXPECT_EQ(1ULL, u64_of(d, "dirty_log"));
	EXPECT_EQ(kv[0], u64_of(j, "mem_bytes"));
	EXPECT_EQ(kv[1], u64_of(j, "mem_shared_bytes"));
	EXPECT_EQ(kv[2], u64_of(j, "mem_dirty_bytes"));
	EXPECT_EQ(kv[3], u64_of(d, "limit"));
	EXPECT_EQ(kv[4], u64_of(d, "shared"));
	EXPECT_EQ(kv[5], u64_of(d, "ksm"));
	EXPECT_EQ(kv[6], u64_of(d, "dirty_log"));
	json_free(j);

	/* text */
	ASSERT_EQ(0, run(&out, &err, NULL, "vm show %s", id)) TH_LOG("%s", err);
	EXPECT_NE(NULL, strstr(out, "\nmemory: 192K (196608 bytes)\n"
			       "memory shared: 64K (65536 bytes)\n"
			       "memory dirty-tracked: 128K (131072 bytes)\n"
			       "memory denied: limit 1, shared 1, ksm 0, dirty_log 1\n"
			       "memory ksm madvise (vmm default): 1\n"))
		TH_LOG("%s", out);
	free(out);
	free(err);
	out = err = NULL;

	/* KSM deny cannot be turned on over mergeable memory: the kernel says why */
	RUN_OK("policy set " P "vm mem ksm allow");
	ASSERT_EQ(0, madvise(anon + DIRTY_SZ + BIG_SZ, SMALL_SZ, MADV_MERGEABLE));
	EXPECT_EQ(1, run(NULL, &err, NULL, "policy set " P "vm mem ksm deny"));
	EXPECT_NE(NULL, err && strstr(err, "kvmguard: cannot change policy " P "vm: "
				      "Device or resource busy: ") ? err : NULL)
		TH_LOG("stderr: %s", err ? err : "");
	free(err);
	err = NULL;
	ASSERT_EQ(0, madvise(anon + DIRTY_SZ + BIG_SZ, SMALL_SZ, MADV_UNMERGEABLE));
	RUN_OK("policy set " P "vm mem ksm deny");

	usleep(500000);
	EXPECT_EQ(0, monitor_stop(tpid, tfd, &text));
	EXPECT_EQ(0, monitor_stop(jpid, jfd, &jtext));
	ASSERT_NE(NULL, text);
	ASSERT_NE(NULL, jtext);

	/* text events: rule, action, count, bytes and the slot as as_id/id */
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int o = snprintf(buf, sizeof(buf),
				 " memory id=%s pid=%d comm=kg-cli-mem policy=" P "vm"
				 " rule=%s action=denied%s count=1 bytes=%llu",
				 id, getpid(), want[i].rule,
				 strcmp(want[i].rule, "ksm") ? "" : " vmm_default=1",
				 (unsigned long long)want[i].bytes);

		if (want[i].slot >= 0)
			snprintf(buf + o, sizeof(buf) - o, " slot=0/%d\n", want[i].slot);
		else
			snprintf(buf + o, sizeof(buf) - o, "\n");
		EXPECT_NE(NULL, strstr(text, buf)) TH_LOG("no [%s] in:\n%s", buf, text);
	}

	/* -j events */
	cursor = jtext;
	while ((j = next_event(_metadata, &cursor, "memory", v.id))) {
		EXPECT_STREQ(P "vm", json_str(json_get(j, "policy")));
		check_mem_event(_metadata, j, want, sizeof(want) / sizeof(want[0]));
		json_free(j);
	}
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		EXPECT_EQ(1, want[i].seen) TH_LOG("monitor -j: %d %s events", want[i].seen,
						  want[i].rule);
	}
	free(text);
	free(jtext);
	vm_destroy(&vm);
	munmap(shared, 2 * SHARED_SZ);
	munmap(anon, ANON_SZ);
	close(mfd);
}

/* The network rules from the command line to the kernel and back. */
TEST_F_TIMEOUT(cli, net_policy_rules, 120)
{
	/* a few of each kind (the unit tests have them all) */
	static const char *const bad_trunk[] = {
		"0", "4000-4095", "4096", "1,,2", "5-3", "1-10,5", "",
	};
	static const char *const bad_tag[] = { "0", "4095" };
	struct net_rules r, r2;
	uint8_t want[KVMGUARD_NET_TRUNK_BYTES] = { 0 };
	struct json *j;
	const struct json *n, *t;
	char *out = NULL, *err = NULL, *line, cells[3][64];
	uint64_t v;

	RUN_OK("policy add " P "n net tag 100 net trunk 300,200-210,4094 net isolate on");
	ASSERT_EQ(0, kernel_net_rules(&self->g, P "n", &r));
	EXPECT_EQ(100, r.tag);
	EXPECT_EQ(1, r.isolate);
	trunk_set(want, 200, 210);
	trunk_set(want, 300, 300);
	trunk_set(want, 4094, 4094);
	EXPECT_EQ(0, memcmp(want, r.trunk, sizeof(want)));
	EXPECT_EQ(0xff, r.trunk[25]);	/* VIDs 200-207 */
	EXPECT_EQ(0x40, r.trunk[511]);	/* VID 4094 */

	/* set changes what it names; none clears */
	RUN_OK("policy set " P "n net trunk none");
	ASSERT_EQ(0, kernel_net_rules(&self->g, P "n", &r));
	memset(want, 0, sizeof(want));
	EXPECT_EQ(0, memcmp(want, r.trunk, sizeof(want)));
	EXPECT_EQ(100, r.tag);
	EXPECT_EQ(1, r.isolate);
	RUN_OK("policy set " P "n net tag none net trunk 1-4094 net isolate off");
	ASSERT_EQ(0, kernel_net_rules(&self->g, P "n", &r));
	trunk_set(want, 1, 4094);
	EXPECT_EQ(0, memcmp(want, r.trunk, sizeof(want)));
	EXPECT_EQ(0, r.tag);
	EXPECT_EQ(0, r.isolate);
	RUN_OK("policy set " P "n net tag 4094 net trunk 1,5-7 net isolate on");
	ASSERT_EQ(0, kernel_net_rules(&self->g, P "n", &r));

	/* bad values are usage errors naming the value, and change nothing */
	for (size_t i = 0; i < sizeof(bad_trunk) / sizeof(bad_trunk[0]); i++) {
		char w[96];

		snprintf(w, sizeof(w), "kvmguard: invalid net trunk '%s': ", bad_trunk[i]);
		EXPECT_EQ(2, run(NULL, &err, NULL, "policy set " P "n net trunk '%s'",
				 bad_trunk[i]));
		EXPECT_NE(NULL, err && strstr(err, w) ? err : NULL)
			TH_LOG("stderr [%s] lacks [%s]", err ? err : "", w);
		free(err);
		err = NULL;
	}
	for (size_t i = 0; i < sizeof(bad_tag) / sizeof(bad_tag[0]); i++) {
		char w[96];

		snprintf(w, sizeof(w), "kvmguard: invalid net tag '%s': ", bad_tag[i]);
		EXPECT_EQ(2, run(NULL, &err, NULL, "policy set " P "n net tag '%s'",
				 bad_tag[i]));
		EXPECT_NE(NULL, err && strstr(err, w) ? err : NULL)
			TH_LOG("stderr [%s] lacks [%s]", err ? err : "", w);
		free(err);
		err = NULL;
	}
	EXPECT_EQ(2, run(NULL, NULL, NULL, "policy set " P "n net isolate yes"));
	ASSERT_EQ(0, kernel_net_rules(&self->g, P "n", &r2));
	EXPECT_EQ(0, memcmp(&r, &r2, sizeof(r)));

	/* -j: the tag, every trunk VID ascending, isolate as a boolean */
	j = run_json(&err, "-j policy show %s", P "n");
	ASSERT_NE(NULL, j) TH_LOG("%s", err);
	n = json_get(j, "net");
	ASSERT_NE(NULL, n);
	EXPECT_EQ(4094ULL, u64_of(n, "tag"));
	ASSERT_NE(NULL, json_get(n, "isolate"));
	EXPECT_EQ(JSON_BOOL, (int)json_get(n, "isolate")->type);
	EXPECT_TRUE(json_get(n, "isolate")->b);
	t = json_get(n, "trunk");
	ASSERT_NE(NULL, t);
	ASSERT_EQ(JSON_ARR, (int)t->type);
	ASSERT_EQ(4, t->n);
	for (int i = 0; i < 4; i++) {
		static const uint64_t vids[] = { 1, 5, 6, 7 };

		EXPECT_TRUE(json_u64(t->items[i], &v) && v == vids[i]);
	}
	json_free(j);

	/* the table's net cells, given back as rule values, change nothing */
	ASSERT_EQ(0, run(&out, &err, NULL, "policy show %s", P "n")) TH_LOG("%s", err);
	line = out ? strstr(out, "\n" P "n ") : NULL;
	ASSERT_NE(NULL, line) TH_LOG("%s", out);
	ASSERT_EQ(3, sscanf(line, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %63s %63s %63s",
			    cells[0], cells[1], cells[2])) TH_LOG("%s", out);
	EXPECT_STREQ("4094", cells[0]);
	EXPECT_STREQ("1,5-7", cells[1]);
	EXPECT_STREQ("on", cells[2]);
	RUN_OK("policy set " P "n net tag %s net trunk %s net isolate %s",
	       cells[0], cells[1], cells[2]);
	ASSERT_EQ(0, kernel_net_rules(&self->g, P "n", &r2));
	EXPECT_EQ(0, memcmp(&r, &r2, sizeof(r)));
	free(out);
	free(err);
	out = err = NULL;

	/* apply: rules the file leaves out go back to their defaults */
	EXPECT_EQ(0, run(NULL, &err, "policy add " P "n net trunk 9\n", "apply -"))
		TH_LOG("%s", err);
	ASSERT_EQ(0, kernel_net_rules(&self->g, P "n", &r));
	memset(want, 0, sizeof(want));
	trunk_set(want, 9, 9);
	EXPECT_EQ(0, r.tag);
	EXPECT_EQ(0, r.isolate);
	EXPECT_EQ(0, memcmp(want, r.trunk, sizeof(want)));
	free(err);
}

/* A tap of this process, or -errno. */
static int tap_open(const char *name)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT && !system("modprobe tun 2>/dev/null"))
		fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr)) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

/* How the kernel lists device @name among VM @id's: its BOUND_BY, or -1. */
struct net_dev_find {
	const char *name;
	int bound_by;
	uint32_t ifindex;
	/* NET_TAGGED .. NET_ISOLATE_DENIED, in the uapi's order */
	uint64_t counters[KVMGUARD_A_NET_ISOLATE_DENIED - KVMGUARD_A_NET_TAGGED + 1];
};

static int net_dev_cb(const struct nlmsghdr *nlh, void *arg)
{
	const struct nlattr *tb[KVMGUARD_A_MAX + 1], *dev;
	struct net_dev_find *f = arg;
	int rem;

	if (gnl_parse(nlh, tb, KVMGUARD_A_MAX, NULL) || !tb[KVMGUARD_A_VM_NET_DEVS])
		return -EBADMSG;
	dev = (const struct nlattr *)((const char *)tb[KVMGUARD_A_VM_NET_DEVS] + NLA_HDRLEN);
	rem = gnl_alen(tb[KVMGUARD_A_VM_NET_DEVS]);
	while (rem >= NLA_HDRLEN && dev->nla_len >= NLA_HDRLEN && dev->nla_len <= rem) {
		const struct nlattr *a = (const struct nlattr *)((const char *)dev + NLA_HDRLEN);
		int left = dev->nla_len - NLA_HDRLEN;
		const char *name = NULL;
		int bound_by = -1;
		uint32_t ifindex = 0;
		uint64_t c[sizeof(f->counters) / sizeof(f->counters[0])];

		while (left >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= left) {
			int type = a->nla_type & NLA_TYPE_MASK;

			if (type == KVMGUARD_A_NET_IFNAME)
				name = gnl_get_str(a);
			else if (type == KVMGUARD_A_NET_BOUND_BY)
				bound_by = gnl_get_u8(a);
			else if (type == KVMGUARD_A_NET_IFINDEX)
				ifindex = gnl_get_u32(a);
			else if (type >= KVMGUARD_A_NET_TAGGED &&
				 type <= KVMGUARD_A_NET_ISOLATE_DENIED)
				c[type - KVMGUARD_A_NET_TAGGED] = gnl_get_u64(a);
			left -= NLA_ALIGN(a->nla_len);
			a = (const struct nlattr *)((const char *)a + NLA_ALIGN(a->nla_len));
		}
		if (name && !strcmp(name, f->name)) {
			f->bound_by = bound_by;
			f->ifindex = ifindex;
			memcpy(f->counters, c, sizeof(c));
		}
		rem -= NLA_ALIGN(dev->nla_len);
		dev = (const struct nlattr *)((const char *)dev + NLA_ALIGN(dev->nla_len));
	}
	return 0;
}

static int kernel_net_dev(struct gnl *g, uint64_t id, struct net_dev_find *f)
{
	static struct gnl_msg m;

	f->bound_by = -1;
	f->ifindex = 0;
	memset(f->counters, 0xa5, sizeof(f->counters));
	kg_req(g, &m, KVMGUARD_CMD_VM_GET, false);
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, id);
	return gnl_transact(g, &m, net_dev_cb, f);
}

#define TAP P "tap0"

/* net bind / unbind of a tap, vm show listing it, and the refusals. */
TEST_F_TIMEOUT(cli, net_bind_and_vm_show, 120)
{
	struct net_dev_find f = { .name = TAP };
	struct kg_vm v, v2;
	struct vm vm, vm2;
	struct json *j;
	const struct json *devs, *d = NULL;
	char *out = NULL, *err = NULL, want[128];
	uint64_t max;
	unsigned int ifindex;
	int tap;

	tap = tap_open(TAP);
	if (tap < 0)
		SKIP(return, "cannot create a tap: %s", strerror(-tap));
	ifindex = if_nametoindex(TAP);
	ASSERT_NE(0U, ifindex);
	max = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, vm_create_loop(&vm));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	ASSERT_EQ(0, vm_create_loop(&vm2));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), v.id, &v2));

	RUN_OK("net bind %llu dev " TAP, (unsigned long long)v.id);
	ASSERT_EQ(0, kernel_net_dev(&self->g, v.id, &f));
	EXPECT_EQ(KVMGUARD_NET_BOUND_MANUAL, f.bound_by);
	EXPECT_EQ(ifindex, f.ifindex);
	/* again, to the same VM: nothing changes */
	RUN_OK("net bind %llu dev " TAP, (unsigned long long)v.id);

	/* refusals: exit 1, the errno (and what it means) on stderr */
	EXPECT_EQ(1, run(NULL, &err, NULL, "net bind %llu dev " TAP,
			 (unsigned long long)v2.id));
	EXPECT_NE(NULL, err && strstr(err, "Device or resource busy") ? err : NULL)
		TH_LOG("%s", err);
	free(err);
	err = NULL;
	EXPECT_EQ(1, run(NULL, &err, NULL, "net bind %llu dev lo", (unsigned long long)v.id));
	EXPECT_NE(NULL, err && strstr(err, "kvmguard: cannot bind lo to VM ") &&
		  strstr(err, "Operation not supported") ? err : NULL) TH_LOG("%s", err);
	free(err);
	err = NULL;
	EXPECT_EQ(1, run(NULL, &err, NULL, "net bind %llu dev " P "nodev",
			 (unsigned long long)v.id));
	EXPECT_NE(NULL, err && strstr(err, "No such device") ? err : NULL) TH_LOG("%s", err);
	free(err);
	err = NULL;
	EXPECT_EQ(1, run(NULL, &err, NULL, "%s", "net bind 999999999999 dev " TAP));
	EXPECT_NE(NULL, err && strstr(err, "No such file or directory") ? err : NULL)
		TH_LOG("%s", err);
	free(err);
	err = NULL;
	EXPECT_EQ(2, run(NULL, NULL, NULL, "%s", "net bind 1 dev a/b"));
	ASSERT_EQ(0, kernel_net_dev(&self->g, v.id, &f));
	EXPECT_EQ(KVMGUARD_NET_BOUND_MANUAL, f.bound_by);
	ASSERT_EQ(0, kernel_net_dev(&self->g, v2.id, &f));
	EXPECT_EQ(-1, f.bound_by);

	/* vm show: the device and its counters, text and JSON */
	ASSERT_EQ(0, run(&out, &err, NULL, "vm show %llu", (unsigned long long)v.id))
		TH_LOG("%s", err);
	snprintf(want, sizeof(want), "\nnet device " TAP ": ifindex %u, bound by manual, tagged ",
		 ifindex);
	EXPECT_NE(NULL, out && strstr(out, want) ? out : NULL) TH_LOG("%s", out);
	EXPECT_NE(NULL, out && strstr(out, "\nnet devices: 1\n") ? out : NULL) TH_LOG("%s", out);
	free(out);
	free(err);
	out = err = NULL;
	snprintf(want, sizeof(want), "%llu", (unsigned long long)v.id);
	j = run_json(&err, "-j vm show %s", want);
	ASSERT_NE(NULL, j) TH_LOG("%s", err);
	devs = json_get(j, "net_devs");
	ASSERT_NE(NULL, devs);
	ASSERT_EQ(JSON_ARR, (int)devs->type);
	for (int i = 0; i < devs->n; i++) {
		const char *name = json_str(json_get(devs->items[i], "name"));

		if (name && !strcmp(name, TAP))
			d = devs->items[i];
	}
	ASSERT_NE(NULL, d);
	EXPECT_EQ((uint64_t)ifindex, u64_of(d, "ifindex"));
	EXPECT_STREQ("manual", json_str(json_get(d, "bound_by")));
	EXPECT_NE(0xdeadbeefULL, u64_of(d, "tagged"));
	EXPECT_NE(0xdeadbeefULL, u64_of(d, "forwarded"));
	EXPECT_NE(0xdeadbeefULL, u64_of(d, "delivered"));
	ASSERT_NE(NULL, json_get(d, "denied"));
	EXPECT_EQ(0ULL, u64_of(json_get(d, "denied"), "tag"));
	EXPECT_EQ(0ULL, u64_of(json_get(d, "denied"), "segment"));
	EXPECT_EQ(0ULL, u64_of(json_get(d, "denied"), "isolate"));
	json_free(j);

	RUN_OK("net unbind dev " TAP);
	ASSERT_EQ(0, kernel_net_dev(&self->g, v.id, &f));
	EXPECT_EQ(-1, f.bound_by);
	EXPECT_EQ(1, run(NULL, &err, NULL, "%s", "net unbind dev " TAP));
	EXPECT_NE(NULL, err && strstr(err, "kvmguard: cannot unbind " TAP
				      ": No such file or directory") ? err : NULL)
		TH_LOG("%s", err);
	free(err);
	err = NULL;
	EXPECT_EQ(1, run(NULL, &err, NULL, "%s", "net unbind dev " P "nodev"));
	EXPECT_NE(NULL, err && strstr(err, "No such device") ? err : NULL) TH_LOG("%s", err);
	free(err);

	/* now free for the other VM; destroying that VM ends the binding */
	RUN_OK("net bind %llu dev " TAP, (unsigned long long)v2.id);
	ASSERT_EQ(0, kernel_net_dev(&self->g, v2.id, &f));
	EXPECT_EQ(KVMGUARD_NET_BOUND_MANUAL, f.bound_by);
	vm_destroy(&vm2);
	for (int i = 0; i < 20; i++) {
		if (!run(NULL, NULL, NULL, "net bind %llu dev " TAP, (unsigned long long)v.id))
			break;
		usleep(100 * 1000);
	}
	ASSERT_EQ(0, kernel_net_dev(&self->g, v.id, &f));
	EXPECT_EQ(KVMGUARD_NET_BOUND_MANUAL, f.bound_by)
		TH_LOG("the binding did not end with its VM");
	RUN_OK("net unbind dev " TAP);
	vm_destroy(&vm);
	close(tap);
}

static int if_up(const char *name)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = -1;

	if (s < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (!ioctl(s, SIOCGIFFLAGS, &ifr)) {
		ifr.ifr_flags |= IFF_UP;
		r = ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
	return r;
}

#define TAP1 P "tap1"

/*
 * The guest's side of a tap is its file: a frame written there enters the
 * host at the tap's ingress. An 802.1Q frame breaks net tag (a NET event,
 * the tag-denied counter); an untagged one gets the VID (tagged).
 */
TEST_F_TIMEOUT(cli, net_monitor_and_counters, 120)
{
	static const char *const keys[] = {
		"tagged", "forwarded", "delivered", "tag", "segment", "isolate",
	};
	unsigned char tagged[60] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1,
		0x81, 0x00, 0x00, 0x05, 0x08, 0x06,
	};
	unsigned char untagged[60] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x08, 0x06,
	};
	int tfd = memfd_create("kg-monitor", MFD_CLOEXEC);
	int jfd = memfd_create("kg-monitor-j", MFD_CLOEXEC);
	struct net_dev_find f = { .name = TAP1 };
	char *text = NULL, *jtext = NULL, *err = NULL, *cursor;
	char id[32], buf[256], path[96];
	struct net_dev_find f2 = { .name = TAP1 };
	const struct json *devs, *d = NULL;
	const char *rule;
	FILE *sysctl;
	struct json *j;
	struct kg_vm v;
	struct vm vm;
	unsigned int ifindex;
	int tap, seen = 0;
	pid_t tpid, jpid;
	uint64_t max;

	tap = tap_open(TAP1);
	if (tap < 0)
		SKIP(return, "cannot create a tap: %s", strerror(-tap));
	/* keep the host quiet toward the guest (no IPv6 autoconfiguration) */
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", TAP1);
	sysctl = fopen(path, "w");
	if (sysctl) {
		fputs("1\n", sysctl);
		fclose(sysctl);
	}
	ASSERT_EQ(0, if_up(TAP1));
	ifindex = if_nametoindex(TAP1);
	ASSERT_NE(0U, ifindex);
	ASSERT_EQ(0, prctl(PR_SET_NAME, "kg-cli-net"));
	max = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, vm_create_loop(&vm));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	snprintf(id, sizeof(id), "%llu", (unsigned long long)v.id);
	RUN_OK("policy add " P "nt net tag 100");
	RUN_OK("vm set %s policy " P "nt", id);
	RUN_OK("net bind %s dev " TAP1, id);

	ASSERT_LE(0, tfd);
	ASSERT_LE(0, jfd);
	tpid = monitor_start(tfd, false);
	ASSERT_LT(0, tpid);
	jpid = monitor_start(jfd, true);
	ASSERT_LT(0, jpid);
	EXPECT_EQ((ssize_t)sizeof(tagged), write(tap, tagged, sizeof(tagged)));
	EXPECT_EQ((ssize_t)sizeof(untagged), write(tap, untagged, sizeof(untagged)));
	usleep(500000);
	EXPECT_EQ(0, monitor_stop(tpid, tfd, &text));
	EXPECT_EQ(0, monitor_stop(jpid, jfd, &jtext));
	ASSERT_NE(NULL, text);
	ASSERT_NE(NULL, jtext);

	snprintf(buf, sizeof(buf), " net id=%s pid=%d comm=kg-cli-net policy=" P "nt"
		 " rule=tag dir=from_guest action=denied count=1 dev=" TAP1
		 " ifindex=%u vid=5\n", id, getpid(), ifindex);
	EXPECT_NE(NULL, strstr(text, buf)) TH_LOG("no [%s] in:\n%s", buf, text);
	cursor = jtext;
	while ((j = next_event(_metadata, &cursor, "net", v.id))) {
		rule = json_str(json_get(j, "rule"));
		/* the host's own traffic toward the guest (IPv6 neighbour
		 * discovery, untagged) may break the rule too: segment */
		if (rule && strcmp(rule, "segment")) {
			seen++;
			EXPECT_STREQ(P "nt", json_str(json_get(j, "policy")));
			EXPECT_STREQ("tag", rule);
			EXPECT_STREQ("from_guest", json_str(json_get(j, "dir")));
			EXPECT_STREQ("denied", json_str(json_get(j, "action")));
			EXPECT_EQ(1ULL, u64_of(j, "count"));
			EXPECT_STREQ(TAP1, json_str(json_get(j, "dev")));
			EXPECT_EQ((uint64_t)ifindex, u64_of(j, "ifindex"));
			EXPECT_EQ(5ULL, u64_of(j, "vid"));
		}
		json_free(j);
	}
	EXPECT_EQ(1, seen) TH_LOG("monitor -j: %d tag events of VM %s", seen, id);

	/* vm show -j: the kernel's counters (read before and after: they only grow) */
	ASSERT_EQ(0, kernel_net_dev(&self->g, v.id, &f));
	EXPECT_EQ(1ULL, f.counters[0]) TH_LOG("tagged");
	EXPECT_EQ(1ULL, f.counters[KVMGUARD_A_NET_TAG_DENIED - KVMGUARD_A_NET_TAGGED]);
	j = run_json(&err, "-j vm show %s", id);
	ASSERT_EQ(0, kernel_net_dev(&self->g, v.id, &f2));
	ASSERT_NE(NULL, j) TH_LOG("%s", err);
	devs = json_get(j, "net_devs");
	ASSERT_NE(NULL, devs);
	ASSERT_EQ(JSON_ARR, (int)devs->type);
	ASSERT_EQ(1, devs->n);
	d = devs->items[0];
	EXPECT_STREQ(TAP1, json_str(json_get(d, "name")));
	for (int i = 0; i < 6; i++) {
		const struct json *o = i < 3 ? d : json_get(d, "denied");

		EXPECT_LE(f.counters[i], u64_of(o, keys[i])) TH_LOG("%s", keys[i]);
		EXPECT_GE(f2.counters[i], u64_of(o, keys[i])) TH_LOG("%s", keys[i]);
	}
	json_free(j);
	free(err);
	free(text);
	free(jtext);
	RUN_OK("net unbind dev " TAP1);
	vm_destroy(&vm);
	close(tap);
}

/* Does the kernel hold a cgroup binding of @path to @policy? */
static bool kernel_has_bind(struct gnl *g, const char *path, const char *policy)
{
	struct kg_bind *b;
	bool found = false;
	int n;

	if (kg_bind_dump(g, &b, &n))
		return false;
	for (int i = 0; i < n; i++)
		if (b[i].type == KVMGUARD_BIND_CGROUP && !strcmp(b[i].cgroup, path) &&
		    !strcmp(b[i].policy, policy))
			found = true;
	free(b);
	return found;
}

/*
 * A cgroup path of KVMGUARD_CGROUP_MAX bytes under CG: components of up
 * to 200 bytes of @fill (or, with fill 0, of "b\x01" pairs, a control
 * character that dump must quote as \x01).
 */
static char *longest_path(char fill)
{
	char *p = malloc(KVMGUARD_CGROUP_MAX + 1);
	size_t len;

	if (!p)
		return NULL;
	len = snprintf(p, KVMGUARD_CGROUP_MAX + 1, "%s", CG);
	while (len < KVMGUARD_CGROUP_MAX) {
		size_t seg = KVMGUARD_CGROUP_MAX - len - 1;

		if (seg > 200)
			seg = 200;
		p[len++] = '/';
		for (size_t i = 0; i < seg; i++)
			p[len + i] = fill ? fill : (i % 2 ? '\x01' : 'b');
		len += seg;
	}
	p[len] = 0;
	return p;
}

/*
 * The longest cgroup binding the kernel takes (KVMGUARD_CGROUP_MAX bytes):
 * the CLI binds it, shows it (text, -j), dumps it so that apply reads it
 * back, unbinds it, and an apply of an empty file removes it; with control
 * characters in it, too (dump quotes each as four bytes).
 */
TEST_F_TIMEOUT(cli, longest_cgroup_binding, 120)
{
	char *path = longest_path('a'), *ctl = longest_path(0);
	char *out = NULL, *err = NULL, *want = NULL, *q, cmd[512];
	struct json *j;

	ASSERT_NE(NULL, path);
	ASSERT_NE(NULL, ctl);
	ASSERT_EQ((size_t)KVMGUARD_CGROUP_MAX, strlen(path));
	ASSERT_EQ((size_t)KVMGUARD_CGROUP_MAX, strlen(ctl));
	RUN_OK("policy add " P "long");

	RUN_OK("bind cgroup %s policy " P "long", path);
	EXPECT_TRUE(kernel_has_bind(&self->g, path, P "long"));
	if (!kernel_has_bind(&self->g, path, P "long"))
		ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_CGROUP, path, 0,
					 P "long"));

	EXPECT_EQ(0, run(&out, &err, NULL, "%s", "bind show")) TH_LOG("%s", err);
	EXPECT_NE(NULL, out && strstr(out, path) ? out : NULL);
	free(out);
	free(err);
	out = err = NULL;
	j = run_json(&err, "%s", "-j bind show");
	EXPECT_NE(NULL, find(j, "cgroup", path)) TH_LOG("%s", err ? err : "");
	json_free(j);
	free(err);
	err = NULL;

	ASSERT_LT(0, asprintf(&want, "bind cgroup %s policy " P "long\n", path));
	EXPECT_EQ(0, run(&out, &err, NULL, "%s", "dump")) TH_LOG("%s", err);
	EXPECT_NE(NULL, out && strstr(out, want) ? out : NULL)
		TH_LOG("dump lacks the binding");
	free(out);
	free(err);
	free(want);
	out = err = NULL;
	snprintf(cmd, sizeof(cmd), "'%s' dump | '%s' -v apply -", cli, cli);
	EXPECT_EQ(0, kg_run(cmd, NULL, &out, &err)) TH_LOG("%s", err);
	EXPECT_STREQ("", out ? out : "?") TH_LOG("dump | apply made changes");
	EXPECT_TRUE(kernel_has_bind(&self->g, path, P "long"));
	free(out);
	free(err);
	out = err = NULL;

	RUN_OK("unbind cgroup %s", path);
	EXPECT_FALSE(kernel_has_bind(&self->g, path, P "long"));
	EXPECT_EQ(1, run(NULL, &err, NULL, "unbind cgroup %s", path));
	ASSERT_LT(0, asprintf(&want, "kvmguard: cannot unbind cgroup %s: No such file or directory",
			      path));
	EXPECT_NE(NULL, err && strstr(err, want) ? err : NULL) TH_LOG("%s", err);
	free(err);
	free(want);
	err = NULL;

	/* Bound by another tool: an empty apply file removes it. */
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_CGROUP, path, 0, P "long"));
	EXPECT_EQ(0, run(&out, &err, "", "%s", "apply -")) TH_LOG("%s", err);
	EXPECT_FALSE(kernel_has_bind(&self->g, path, P "long"));
	free(out);
	free(err);
	out = err = NULL;

	/* Control characters: the quoted path is four times as long. */
	RUN_OK("policy add " P "long");
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_CGROUP, ctl, 0, P "long"));
	want = malloc(4 * KVMGUARD_CGROUP_MAX + 64);
	ASSERT_NE(NULL, want);
	q = want + sprintf(want, "bind cgroup \"");
	for (const char *c = ctl; *c; c++)
		q += *c == '\x01' ? sprintf(q, "\\x01") : sprintf(q, "%c", *c);
	sprintf(q, "\" policy " P "long\n");
	EXPECT_EQ(0, run(&out, &err, NULL, "%s", "dump")) TH_LOG("%s", err);
	EXPECT_NE(NULL, out && strstr(out, want) ? out : NULL)
		TH_LOG("dump cut the quoted path");
	free(want);
	free(out);
	free(err);
	out = err = NULL;
	EXPECT_EQ(0, kg_run(cmd, NULL, &out, &err)) TH_LOG("%s", err);
	EXPECT_STREQ("", out ? out : "?") TH_LOG("dump | apply made changes");
	EXPECT_TRUE(kernel_has_bind(&self->g, ctl, P "long"));
	free(out);
	free(err);
	kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, ctl, 0);
	free(path);
	free(ctl);
}

/*
 * CLI requests racing rmmod. While the module is going (its exit runs,
 * the family is still registered) a dump fails in netlink_dump_start()
 * with EPROTONOSUPPORT; once the family is gone a request to its old id
 * fails with ENOENT, and the lookup by name fails. Every failure must
 * say that the module is not loaded or is being unloaded, never
 * "Protocol not supported" or "No such file or directory".
 */
TEST_F_TIMEOUT(cli, requests_racing_rmmod, 300)
{
	static const char errs[] = "/tmp/kvmguard-cli-race.err";
	static const char stop[] = "/tmp/kvmguard-cli-race.stop";
	int bad = 0, going = 0, lines = 0, round;
	char *cmd = NULL;

	if (!getenv("KVMGUARD_KO"))
		SKIP(return, "KVMGUARD_KO not set: cannot load the module again");
	ASSERT_LT(0, asprintf(&cmd,
			      "while [ ! -e %s ]; do '%s' dump; '%s' bind show; "
			      "'%s' -j vm list; '%s' policy add %s; '%s' policy del %s; "
			      "done >/dev/null 2>>%s", stop, cli, cli, cli, cli,
			      P "race", cli, P "race", errs));
	unlink(errs);
	for (round = 0; round < 6 && going < 3; round++) {
		char *text, *line, *save = NULL;
		int fd, status;
		pid_t pid;

		unlink(stop);
		fflush(stdout);
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
			_exit(127);
		}
		usleep(500000);
		EXPECT_EQ(0, kg_rmmod());
		usleep(300000);
		fd = open(stop, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
		waitpid(pid, &status, 0);
		/* (a lookup of the family may have loaded it again already) */
		ASSERT_EQ(0, kg_ensure_loaded());

		fd = open(errs, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		text = calloc(1, 1 << 20);
		ASSERT_NE(NULL, text);
		if (read(fd, text, (1 << 20) - 1) < 0)
			text[0] = 0;
		close(fd);
		unlink(errs);
		for (line = strtok_r(text, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			lines++;
			if (strstr(line, "being unloaded") ||
			    strstr(line, "Protocol not supported"))
				going++;
			if (!strstr(line, "kvmguard module is not loaded")) {
				bad++;
				printf("# unexpected: %s\n", line);
			}
		}
		free(text);
	}
	printf("# %d rounds, %d error lines, %d in the unload window\n", round,
	       lines, going);
	EXPECT_EQ(0, bad);
	unlink(stop);
	free(cmd);
	gnl_close(&self->g);
	ASSERT_EQ(0, kg_open(&self->g));
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	cli = getenv("KVMGUARD_CLI");
	if (!cli || access(cli, X_OK)) {
		printf("TAP version 13\n1..0 # SKIP $KVMGUARD_CLI is not executable\n");
		return 4;
	}
	kg_prereq(KG_NEED_KVM | KG_NEED_MODULE);
	return test_harness_run(argc, argv);
}

static void __attribute__((constructor)) __constructor_order_last(void)
{
	if (!__constructor_order)
		__constructor_order = _CONSTRUCTOR_ORDER_BACKWARD;
}
