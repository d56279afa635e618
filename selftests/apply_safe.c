// SPDX-License-Identifier: GPL-2.0
/*
 * apply_safe: safe configuration changes with the kvmguard CLI
 * ($KVMGUARD_CLI) against the real module, checked through raw netlink.
 *  - `apply --check FILE` changes nothing, exits 0 for a good file and 1,
 *    naming the line, for one the running module would refuse (a pid
 *    binding of a process that is gone, a vm set of a VM that is not);
 *  - `apply --diff FILE` prints the commands apply would send and changes
 *    nothing;
 *  - an apply the kernel refuses part-way is rolled back: what it changed
 *    before (a policy edited, a policy and a binding added) is as before,
 *    and the error names the file's line;
 *  - a pid binding ends when its process exits (listed no more, its policy
 *    can be deleted), and a process that gets the same pid number later is
 *    not bound (its VM has no pid binding);
 *  - `dump` writes pid bindings as comments, so a dump taken while a
 *    bound process runs applies cleanly once it is gone (after a reboot);
 *  - CLI habits: `hypercalls allow none|all`; a usage error prints the
 *    error and a one-line hint, not the whole usage; in audit mode `vm
 *    show` says "would deny"; lowering `mem max` below what a running VM
 *    maps says that its memslots stay and new ones are refused.
 * The host's policies and bindings are saved with `dump` first and applied
 * back at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "hcg.h"
#include "kg.h"
#include "vm.h"

#define P "kgs-"
#define CG "/kvmguard-apply-safe"
#define FILE_A "/tmp/kvmguard-apply-safe.conf"

static const char *cli;

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
		printf("# $ kvmguard %s -> %d\n", args, r);
		if (err && *err && **err)
			printf("# stderr: %s", *err);
	}
	free(cmd);
	free(args);
	return r;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* A pid no process has: a child that exited. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();

	if (!pid)
		_exit(0);
	waitpid(pid, NULL, 0);
	return pid;
}

static pid_t sleeper(void)
{
	pid_t pid = fork();

	if (!pid) {
		pause();
		_exit(0);
	}
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Is there a pid binding of @pid in the kernel? */
static bool pid_bound(struct gnl *g, pid_t pid)
{
	struct kg_bind *b = NULL;
	bool found = false;
	int n = 0;

	if (kg_bind_dump(g, &b, &n))
		return false;
	for (int i = 0; i < n; i++)
		if (b[i].type == KVMGUARD_BIND_PID && b[i].pid == (uint32_t)pid)
			found = true;
	free(b);
	return found;
}

static bool cg_bound(struct gnl *g, const char *path, char *policy)
{
	struct kg_bind *b = NULL;
	bool found = false;
	int n = 0;

	if (kg_bind_dump(g, &b, &n))
		return false;
	for (int i = 0; i < n; i++)
		if (b[i].type == KVMGUARD_BIND_CGROUP && !strcmp(b[i].cgroup, path)) {
			found = true;
			if (policy)
				strcpy(policy, b[i].policy);
		}
	free(b);
	return found;
}

FIXTURE(safe) {
	struct gnl g;
	char *saved;
};

FIXTURE_SETUP(safe)
{
	char *err = NULL;

	cli = getenv("KVMGUARD_CLI");
	if (!cli || access(cli, X_OK))
		SKIP(return, "no CLI at $KVMGUARD_CLI");
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
	kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, CG, 0);
	kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, CG "/x", 0);
	ASSERT_EQ(0, run(&self->saved, &err, NULL, "dump")) TH_LOG("%s", err);
	free(err);
}

FIXTURE_TEARDOWN(safe)
{
	char *err = NULL;

	if (!self->g.fd)
		return;
	kg_cleanup(&self->g, P);
	kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, CG, 0);
	kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, CG "/x", 0);
	if (self->saved && run(NULL, &err, self->saved, "apply -"))
		TH_LOG("restoring the host's policies failed: %s", err ? err : "");
	free(err);
	free(self->saved);
	unlink(FILE_A);
	gnl_close(&self->g);
}

/* The file: the host's state plus @extra, so that apply removes nothing. */
static void write_with_saved(const char *saved, const char *extra)
{
	char *text = NULL;

	if (asprintf(&text, "%s%s", saved ? saved : "", extra) >= 0)
		write_file(FILE_A, text);
	free(text);
}

TEST_F_TIMEOUT(safe, check_changes_nothing, 60)
{
	struct kg_policy p;
	char *out = NULL, *err = NULL, extra[512];
	pid_t gone = dead_pid();

	write_with_saved(self->saved, "policy add " P "a mode audit\n"
			 "bind cgroup " CG " policy " P "a\n");
	EXPECT_EQ(0, run(&out, &err, NULL, "apply --check " FILE_A));
	EXPECT_EQ(-ENOENT, kg_policy_get(&self->g, P "a", &p));
	EXPECT_FALSE(cg_bound(&self->g, CG, NULL));
	free(out);
	free(err);

	/* Line 3 of the extra part names a process that is gone. */
	snprintf(extra, sizeof(extra), "policy add " P "a\nbind cgroup " CG " policy " P "a\n"
		 "bind pid %d policy " P "a\n", gone);
	write_file(FILE_A, extra);
	out = err = NULL;
	EXPECT_EQ(1, run(&out, &err, NULL, "apply --check " FILE_A));
	EXPECT_TRUE(err && strstr(err, FILE_A ":3:")) TH_LOG("stderr: %s", err);
	EXPECT_EQ(-ENOENT, kg_policy_get(&self->g, P "a", &p));
	EXPECT_FALSE(cg_bound(&self->g, CG, NULL));
	free(out);
	free(err);

	write_file(FILE_A, "policy add " P "a\nvm set 999999999 policy " P "a\n");
	out = err = NULL;
	EXPECT_EQ(1, run(&out, &err, NULL, "apply --check " FILE_A));
	EXPECT_TRUE(err && strstr(err, FILE_A ":2:")) TH_LOG("stderr: %s", err);
	EXPECT_EQ(-ENOENT, kg_policy_get(&self->g, P "a", &p));
	free(out);
	free(err);
}

TEST_F_TIMEOUT(safe, diff_prints_commands, 60)
{
	struct kg_policy p;
	char *out = NULL, *err = NULL;

	ASSERT_EQ(0, kg_policy_new(&self->g, P "old", KVMGUARD_MODE_ENFORCE, NULL));
	ASSERT_EQ(0, kg_policy_new(&self->g, P "edit", KVMGUARD_MODE_ENFORCE, NULL));
	write_file(FILE_A, "policy add " P "edit mode audit\n"
		   "policy add " P "new\n"
		   "bind cgroup " CG " policy " P "new\n");
	EXPECT_EQ(0, run(&out, &err, NULL, "apply --diff " FILE_A));
	EXPECT_TRUE(out && strstr(out, "policy set " P "edit mode audit")) TH_LOG("%s", out);
	EXPECT_TRUE(out && strstr(out, "policy add " P "new mode enforce\n")) TH_LOG("%s", out);
	EXPECT_TRUE(out && strstr(out, "bind cgroup " CG " policy " P "new\n"));
	EXPECT_TRUE(out && strstr(out, "policy del " P "old\n"));
	/* Nothing changed. */
	EXPECT_EQ(0, kg_policy_get(&self->g, P "old", &p));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "edit", &p));
	EXPECT_EQ(KVMGUARD_MODE_ENFORCE, p.mode);
	EXPECT_EQ(-ENOENT, kg_policy_get(&self->g, P "new", &p));
	EXPECT_FALSE(cg_bound(&self->g, CG, NULL));
	free(out);
	free(err);
}

TEST_F_TIMEOUT(safe, refused_apply_rolls_back, 60)
{
	char *out = NULL, *err = NULL, extra[1024], pol[64] = "", want[128];
	struct kg_policy p;
	pid_t gone = dead_pid();
	int line;

	ASSERT_EQ(0, kg_policy_new(&self->g, P "keep", KVMGUARD_MODE_ENFORCE, NULL));
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_CGROUP, CG, 0, P "keep"));
	/* The host's state, then: an edit, a new policy and binding, a refusal. */
	snprintf(extra, sizeof(extra),
		 "policy add " P "keep mode audit\n"
		 "bind cgroup " CG " policy " P "keep\n"
		 "policy add " P "new\n"
		 "bind cgroup " CG "/x policy " P "new\n"
		 "bind pid %d policy " P "new\n", gone);
	write_with_saved(self->saved, extra);
	line = 5;
	for (const char *c = self->saved; c && *c; c++) {
		line += *c == '\n';
	}
	snprintf(want, sizeof(want), FILE_A ":%d:", line);
	EXPECT_EQ(1, run(&out, &err, NULL, "apply " FILE_A));
	EXPECT_TRUE(err && strstr(err, want)) TH_LOG("want %s in: %s", want, err);
	ASSERT_EQ(0, kg_policy_get(&self->g, P "keep", &p));
	EXPECT_EQ(KVMGUARD_MODE_ENFORCE, p.mode) TH_LOG("the edit was not rolled back");
	EXPECT_EQ(-ENOENT, kg_policy_get(&self->g, P "new", &p));
	EXPECT_FALSE(cg_bound(&self->g, CG "/x", NULL));
	EXPECT_TRUE(cg_bound(&self->g, CG, pol));
	EXPECT_STREQ(P "keep", pol);
	free(out);
	free(err);
}

TEST_F_TIMEOUT(safe, pid_binding_ends_with_process, 60)
{
	pid_t child, again;
	char path[64];
	int i, fd;

	ASSERT_EQ(0, kg_policy_new(&self->g, P "p", KVMGUARD_MODE_ENFORCE, NULL));
	child = sleeper();
	ASSERT_LT(0, child);
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL, child, P "p"));
	EXPECT_TRUE(pid_bound(&self->g, child));
	reap(child);
	for (i = 0; i < 50 && pid_bound(&self->g, child); i++)
		usleep(100000);
	EXPECT_FALSE(pid_bound(&self->g, child)) TH_LOG("binding of pid %d outlived it", child);
	EXPECT_EQ(0, kg_policy_del(&self->g, P "p"));

	/* The number again, for another process: not bound, its VM neither. */
	ASSERT_EQ(0, kg_policy_new(&self->g, P "p", KVMGUARD_MODE_ENFORCE, NULL));
	child = sleeper();
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL, child, P "p"));
	reap(child);
	fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
	if (fd < 0)
		SKIP(return, "no ns_last_pid: pid reuse not tested");
	snprintf(path, sizeof(path), "%d", child - 1);
	again = -1;
	for (i = 0; i < 20 && again != child; i++) {
		int st;

		if (write(fd, path, strlen(path)) < 0)
			break;
		again = fork();
		if (!again) {
			struct vm vm;

			if (kvm_available() || vm_create(&vm))
				_exit(3);
			sleep(2);
			_exit(0);
		}
		if (again != child) {
			waitpid(again, &st, 0);
		}
	}
	close(fd);
	if (again != child)
		SKIP(return, "could not get pid %d again", child);
	usleep(500000);
	EXPECT_FALSE(pid_bound(&self->g, child));
	if (!kvm_available()) {
		struct kg_vm *vms = NULL;
		int n = 0;

		ASSERT_EQ(0, kg_vms_of_pid(&self->g, child, &vms, &n));
		EXPECT_EQ(1, n);
		for (i = 0; i < n; i++) {
			EXPECT_NE(KVMGUARD_BOUND_PID, vms[i].bound_by);
			EXPECT_STRNE(P "p", vms[i].policy);
		}
		free(vms);
	}
	waitpid(again, NULL, 0);
}

TEST_F_TIMEOUT(safe, dump_applies_after_process_gone, 60)
{
	char *dump = NULL, *err = NULL, want[128];
	pid_t child;

	ASSERT_EQ(0, kg_policy_new(&self->g, P "d", KVMGUARD_MODE_ENFORCE, NULL));
	child = sleeper();
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL, child, P "d"));
	ASSERT_EQ(0, run(&dump, &err, NULL, "dump"));
	snprintf(want, sizeof(want), "# bind pid %d policy " P "d\n", child);
	EXPECT_NE(NULL, strstr(dump, want)) TH_LOG("%s", dump);
	/* While it runs, dump | apply keeps the binding. */
	free(err);
	err = NULL;
	EXPECT_EQ(0, run(NULL, &err, dump, "apply -"));
	EXPECT_TRUE(pid_bound(&self->g, child));
	/* "After a reboot": the process is gone. */
	reap(child);
	kg_bind_del(&self->g, KVMGUARD_BIND_PID, NULL, child);
	free(err);
	err = NULL;
	EXPECT_EQ(0, run(NULL, &err, dump, "apply -")) TH_LOG("%s", err);
	free(dump);
	free(err);
}

TEST_F_TIMEOUT(safe, cli_habits, 120)
{
	char *out = NULL, *err = NULL, id[32];
	struct hcg_regs in = { .rax = 9 };
	struct hcg_result res;
	struct kg_vm v;
	struct vm vm;
	uint64_t max;
	int lines;

	/* hypercalls allow none|all: as hypercalls none|all. */
	EXPECT_EQ(0, run(NULL, &err, NULL, "policy add " P "h hypercalls allow none"));
	free(err);
	err = NULL;
	EXPECT_EQ(0, run(&out, &err, NULL, "dump"));
	EXPECT_TRUE(out && strstr(out, "policy add " P "h mode enforce hypercalls none\n"))
		TH_LOG("%s", out);
	free(out);
	free(err);
	out = err = NULL;
	EXPECT_EQ(0, run(NULL, &err, NULL, "policy set " P "h hypercalls allow all"));
	free(err);
	err = NULL;
	EXPECT_EQ(0, run(&out, &err, NULL, "dump"));
	EXPECT_TRUE(out && strstr(out, "policy add " P "h mode enforce\n")) TH_LOG("%s", out);
	free(out);
	free(err);
	out = err = NULL;

	/* A usage error: the error and a one-line hint. */
	EXPECT_EQ(2, run(&out, &err, NULL, "policy add " P "x mode sometimes"));
	EXPECT_TRUE(err && strstr(err, "mode"));
	EXPECT_EQ(NULL, err ? strstr(err, "Usage:") : NULL) TH_LOG("%s", err);
	lines = 0;
	for (const char *c = err; c && *c; c++) {
		lines += *c == '\n';
	}
	EXPECT_EQ(2, lines) TH_LOG("%s", err);
	free(out);
	free(err);
	out = err = NULL;

	if (kvm_available())
		SKIP(return, "no /dev/kvm");
	/* Audit mode: vm show says "would deny". */
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "au",
				KVMGUARD_MODE_AUDIT, 1, 0, -1));
	max = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, hcg_vm_create(&vm, false));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	snprintf(id, sizeof(id), "%llu", (unsigned long long)v.id);
	ASSERT_EQ(0, kg_vm_set(&self->g, v.id, P "au"));
	ASSERT_EQ(0, vm_add_vcpu(&vm, 0));
	ASSERT_EQ(0, hcg_set_mode(&vm, 0, HCG_REAL16));
	EXPECT_EQ(0, hcg_call(&vm, 0, &in, &res));
	EXPECT_EQ(0, run(&out, &err, NULL, "vm show %s", id));
	EXPECT_TRUE(out && strstr(out, "would deny 1")) TH_LOG("%s", out);
	EXPECT_EQ(NULL, out ? strstr(out, "denied 1") : NULL) TH_LOG("%s", out);
	free(out);
	free(err);
	out = err = NULL;

	/* mem max below what the VM maps: said, and the memslots stay. */
	ASSERT_EQ(0, kg_policy_new(&self->g, P "m", KVMGUARD_MODE_ENFORCE, NULL));
	ASSERT_EQ(0, kg_vm_set(&self->g, v.id, P "m"));
	EXPECT_EQ(0, run(&out, &err, NULL, "policy set " P "m mem max 4K"));
	EXPECT_TRUE(err && strstr(err, "existing memslots stay, new ones are refused"))
		TH_LOG("stdout: %s stderr: %s", out, err);
	ASSERT_EQ(0, kg_vm_get(&self->g, v.id, &v));
	EXPECT_EQ((uint64_t)VM_SLOT0_SIZE, v.mem_bytes);
	free(out);
	free(err);
	vm_destroy(&vm);
}

KG_HARNESS_MAIN(KG_NEED_MODULE)
