// SPDX-License-Identifier: GPL-2.0
/*
 * cli: the kvmguard CLI ($KVMGUARD_CLI) against the real module, checked
 * through raw netlink: policy add/set/del, bind/unbind and show do what
 * they say; -j output of vm list, vm show, policy show and bind show is
 * strict JSON with the kernel's values; `dump | apply -` changes nothing;
 * apply converges (what the file lacks is removed) and a second apply
 * changes nothing; exit codes 0/1/2; a refused request prints the kernel's
 * extack message on stderr. The host's policies and bindings are saved
 * with `dump` first and applied back at the end.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

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
	char args[4096], cmd[4200];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "'%s' %s", cli, args);
	r = kg_run(cmd, in, out, err);
	printf("# $ kvmguard %s -> %d\n", args, r);
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

TEST_F(cli, policy_and_bind_commands)
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

TEST_F(cli, vm_json)
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

TEST_F(cli, exit_codes_and_extack)
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

	if (!kg_policy_dump(g, &p, &n))
		for (int i = 0; i < n; i++)
			fprintf(f, "policy %s %d %d:%s vms %u bindings %u\n", p[i].name,
				p[i].mode, p[i].has_domain, p[i].domain, p[i].vms,
				p[i].bindings);
	free(p);
	if (!kg_bind_dump(g, &b, &n))
		for (int i = 0; i < n; i++)
			fprintf(f, "bind %d %s %u %s\n", b[i].type, b[i].cgroup,
				b[i].pid, b[i].policy);
	free(b);
	fclose(f);
	return s;
}

TEST_F(cli, dump_apply_roundtrip)
{
	char *d1 = NULL, *d2 = NULL, *out = NULL, *err = NULL, *k1, *k2, cmd[4200];
	struct gnl sub;

	RUN_OK("policy add " P "r1 mode audit domain dx");
	RUN_OK("policy add " P "r2");
	RUN_OK("bind cgroup " CG "/r policy " P "r2");
	RUN_OK("bind pid %d policy " P "r2", getpid());
	k1 = kernel_state(&self->g);
	ASSERT_EQ(0, run(&d1, NULL, NULL, "%s", "dump"));
	EXPECT_NE(NULL, strstr(d1, P "r1"));
	EXPECT_NE(NULL, strstr(d1, CG "/r"));

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

TEST_F(cli, apply_converges_and_is_idempotent)
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

/* `-j monitor`: one strict JSON object per line, with our VM's events. */
TEST_F(cli, monitor_json)
{
	int fd = memfd_create("kg-monitor", MFD_CLOEXEC), status, creates = 0, destroys = 0;
	uint64_t max = kg_max_vm_id(&self->g);
	char *text, *line, *save = NULL, e[128];
	struct kg_vm v;
	struct vm vm;
	pid_t pid;
	off_t len;

	ASSERT_LE(0, fd);
	fflush(stdout);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		dup2(fd, 1);
		execl(cli, cli, "-j", "monitor", (char *)NULL);
		_exit(127);
	}
	/*
	 * Subscribed once it reports a VM: on a slow (debug) kernel the CLI
	 * may take seconds to start, so probe with throwaway VMs.
	 */
	for (int tries = 0; lseek(fd, 0, SEEK_END) == 0; tries++) {
		ASSERT_GT(100, tries) TH_LOG("monitor printed nothing in 20 s");
		ASSERT_EQ(0, vm_create(&vm));
		vm_destroy(&vm);
		usleep(200000);
	}
	max = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, prctl(PR_SET_NAME, "kg-cli-mon"));
	ASSERT_EQ(0, vm_create(&vm));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	vm_destroy(&vm);
	usleep(500000);
	kill(pid, SIGTERM);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("monitor status %#x", status);
	len = lseek(fd, 0, SEEK_END);
	text = calloc(1, len + 1);
	ASSERT_NE(NULL, text);
	ASSERT_EQ(len, pread(fd, text, len, 0));
	close(fd);
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
