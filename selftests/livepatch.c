// SPDX-License-Identifier: GPL-2.0
/*
 * livepatch: kvmguard and a livepatch of a function it hooks. The test
 * module kg_ipmodify (modules/kg_ipmodify.c) plays the livepatch: it
 * claims the functions named by its "func" parameter with an ftrace_ops
 * that has FTRACE_OPS_FL_IPMODIFY, as the livepatch core does, and its
 * load fails with ftrace's error.
 *
 * A hook that redirects the call (sets the instruction pointer) must be
 * an IPMODIFY user itself, so that one of the two fails instead of one
 * silently undoing the other:
 *  - kvmguard first: the livepatch's load fails with EBUSY;
 *  - livepatch first: kvmguard's load (hooks attached at load) fails with
 *    EBUSY, names the function in the kernel log and leaves nothing
 *    attached (the "livepatch" can then claim every hooked function at
 *    once), and loads once the livepatch is gone.
 * At load: kvm_arch_post_init_vm (VM creation), ksm_madvise and, where it
 * exists, ksm_enable_merge_any (KSM), vhost_net_ioctl, tun_get_socket and
 * tap_get_socket (vhost-net backends; while vhost_net is loaded). The
 * probes that only observe (kvm_arch_destroy_vm, vhost_vq_access_ok,
 * vhost_net_release) coexist with a livepatch in either order.
 * Hooks attached by a policy: the memslot hook (__kvm_set_memory_region,
 * a memory rule) and the hypercall direct calls (kvm_emulate_hypercall,
 * or __kvm_emulate_hypercall on 6.10+, and kvm_hv_hypercall; an
 * allowlist): the livepatch fails while a policy needs them, loads once
 * the policy is gone; claimed first, POLICY_NEW fails with EBUSY and an
 * extack message and leaves no policy. The tap direct calls (a VM with a
 * tag on a bridged tap): tun_net_xmit refuses either order (the bind
 * fails); at br_handle_frame the livepatch fails while attached, and a
 * bind made while the livepatch holds it falls back to netfilter (tags
 * still applied).
 * Skipped without the test module (built per kernel by scripts/check.sh).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "kselftest_harness.h"
#include "hcg.h"
#include "kg.h"
#include "memg.h"
#include "netg.h"

#define P "kglp-"
#define LP_MODULE "kg_ipmodify"

/* This harness runs a test's body even when its setup skipped it. */
#define RETURN_IF_SKIPPED() do {					\
	if (_metadata->skip)						\
		return;							\
} while (0)

/* ---- the stand-in livepatch ---- */

static int lp_path(char *buf, size_t size)
{
	const char *env = getenv("KVMGUARD_TESTMOD_DIR");
	char exe[PATH_MAX];
	ssize_t n;

	if (env) {
		n = snprintf(buf, size, "%s/" LP_MODULE ".ko", env);
	} else {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n < 0)
			return -errno;
		exe[n] = 0;
		*strrchr(exe, '/') = 0;
		n = snprintf(buf, size, "%s/modules/" LP_MODULE ".ko", exe);
	}
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return access(buf, R_OK) ? -errno : 0;
}

static bool lp_loaded(void)
{
	struct stat st;

	return stat("/sys/module/" LP_MODULE, &st) == 0;
}

/* Claim @funcs (comma-separated): 0 or the load's -errno. */
static int lp_load(const char *funcs)
{
	char path[PATH_MAX], params[512];
	int fd, err = 0;

	err = lp_path(path, sizeof(path));
	if (err)
		return err;
	snprintf(params, sizeof(params), "func=%s", funcs);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, params, 0))
		err = -errno;
	close(fd);
	return err;
}

static int lp_unload(void)
{
	int err = 0;

	for (int i = 0; i < 50 && lp_loaded(); i++) {
		if (!syscall(SYS_delete_module, LP_MODULE, O_NONBLOCK))
			return 0;
		err = -errno;
		usleep(100000);
	}
	return lp_loaded() ? err : 0;
}

/*
 * Claim @funcs, retrying while it fails with EBUSY for up to @ms: hooks
 * that are detached by a work item may still be going.
 */
static int lp_load_settled(const char *funcs, int ms)
{
	int err;

	for (int t = 0; ; t += 50) {
		err = lp_load(funcs);
		if (err != -EBUSY || t >= ms)
			return err;
		usleep(50000);
	}
}

/* ---- the kernel ---- */

/* Does the kernel (or a loaded module) have a function called @name? */
static bool have_symbol(const char *name)
{
	char line[512], sym[256];
	bool found = false;
	FILE *f = fopen("/proc/kallsyms", "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%*s %*s %255s", sym) == 1 && !strcmp(sym, name);
	fclose(f);
	return found;
}

static bool module_loaded(const char *name)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "/sys/module/%s", name);
	return stat(path, &st) == 0;
}

/* The function kvmguard's hypercall hook is on. */
static const char *hc_function(void)
{
	return have_symbol("__kvm_emulate_hypercall") ? "__kvm_emulate_hypercall" :
							 "kvm_emulate_hypercall";
}

/* /dev/kmsg from now on: has a kvmguard line naming @what been logged? */
static int klog_mark(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

static bool klog_says(int fd, const char *what)
{
	char rec[2048];
	bool found = false;

	for (;;) {
		ssize_t n = read(fd, rec, sizeof(rec) - 1);
		char *msg;

		if (n < 0 && errno == EPIPE)
			continue;
		if (n <= 0)
			break;
		rec[n] = 0;
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		msg[strcspn(msg, "\n")] = 0;
		if (strstr(msg, "kvmguard") && strstr(msg, what)) {
			printf("# klog: %s\n", msg);
			found = true;
		}
	}
	return found;
}

/* ---- hooks attached when the module loads ---- */

FIXTURE(load) {
	struct hcg_klog klog;
};

FIXTURE_VARIANT(load) {
	const char *func;
	bool redirects;		/* sets the instruction pointer */
	const char *module;	/* hooked only while this module is loaded */
};

FIXTURE_VARIANT_ADD(load, vm_create) {
	.func = "kvm_arch_post_init_vm", .redirects = true,
};

FIXTURE_VARIANT_ADD(load, ksm_madvise) {
	.func = "ksm_madvise", .redirects = true,
};

FIXTURE_VARIANT_ADD(load, ksm_merge_any) {
	.func = "ksm_enable_merge_any", .redirects = true,
};

FIXTURE_VARIANT_ADD(load, vhost_ioctl) {
	.func = "vhost_net_ioctl", .redirects = true, .module = "vhost_net",
};

FIXTURE_VARIANT_ADD(load, tun_get_socket) {
	.func = "tun_get_socket", .redirects = true, .module = "vhost_net",
};

FIXTURE_VARIANT_ADD(load, tap_get_socket) {
	.func = "tap_get_socket", .redirects = true, .module = "vhost_net",
};

FIXTURE_VARIANT_ADD(load, vm_destroy) {
	.func = "kvm_arch_destroy_vm",
};

FIXTURE_VARIANT_ADD(load, vhost_vq) {
	.func = "vhost_vq_access_ok", .module = "vhost_net",
};

FIXTURE_VARIANT_ADD(load, vhost_release) {
	.func = "vhost_net_release", .module = "vhost_net",
};

/* Every redirected function of this kernel, comma-separated. */
static void redirected(char *buf, size_t size)
{
	static const char *const all[] = {
		"kvm_arch_post_init_vm", "ksm_madvise", "ksm_enable_merge_any",
		"vhost_net_ioctl", "tun_get_socket", "tap_get_socket",
	};
	size_t len = 0;

	buf[0] = 0;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (have_symbol(all[i]))
			len += snprintf(buf + len, size - len, "%s%s",
					len ? "," : "", all[i]);
}

FIXTURE_SETUP(load)
{
	char path[PATH_MAX];

	self->klog.fd = -1;
	if (lp_path(path, sizeof(path)))
		SKIP(return, "no test module modules/" LP_MODULE ".ko");
	if (variant->module && !module_loaded(variant->module))
		SKIP(return, "%s is not loaded", variant->module);
	if (!have_symbol(variant->func))
		SKIP(return, "this kernel has no %s", variant->func);
	if (!getenv("KVMGUARD_KO"))
		SKIP(return, "KVMGUARD_KO not set: cannot load the module again");
	ASSERT_EQ(0, lp_unload());
	ASSERT_EQ(0, kg_ensure_loaded());
	ASSERT_EQ(0, hcg_klog_open(&self->klog));
}

FIXTURE_TEARDOWN(load)
{
	EXPECT_EQ(0, lp_unload());
	EXPECT_EQ(0, kg_ensure_loaded());
	EXPECT_EQ(0, hcg_klog_problems(&self->klog))
		TH_LOG("the kernel log shows problems");
	hcg_klog_close(&self->klog);
}

/* kvmguard loaded, then the livepatch. */
TEST_F(load, livepatch_second)
{
	int err;

	RETURN_IF_SKIPPED();
	err = lp_load(variant->func);

	if (variant->redirects) {
		EXPECT_EQ(-EBUSY, err)
			TH_LOG("a livepatch of %s loaded under kvmguard's redirect: %s",
			       variant->func, err ? strerror(-err) : "no error");
	} else {
		EXPECT_EQ(0, err)
			TH_LOG("a livepatch of %s (only observed): %s",
			       variant->func, strerror(-err));
	}
	/* kvmguard still works: a VM is registered. */
	if (!strcmp(variant->func, "kvm_arch_post_init_vm")) {
		struct gnl g;
		struct vm vm;
		uint64_t id = 0;

		ASSERT_EQ(0, kg_open(&g));
		EXPECT_EQ(0, memg_vm(&g, &vm, NULL, &id));
		EXPECT_NE((uint64_t)0, id);
		if (id)
			vm_destroy(&vm);
		gnl_close(&g);
	}
}

/* The livepatch, then kvmguard. */
TEST_F(load, livepatch_first)
{
	char all[256];
	int mark, err;

	RETURN_IF_SKIPPED();

	err = kg_rmmod();
	ASSERT_EQ(0, err) TH_LOG("rmmod kvmguard: %s", strerror(-err));
	err = lp_load(variant->func);
	ASSERT_EQ(0, err) TH_LOG("livepatch of %s: %s", variant->func, strerror(-err));
	mark = klog_mark();
	err = kg_insmod();
	if (!variant->redirects) {
		EXPECT_EQ(0, err) TH_LOG("insmod beside a livepatch of %s (only observed): %s",
					 variant->func, strerror(-err));
		close(mark);
		return;
	}
	EXPECT_EQ(-EBUSY, err)
		TH_LOG("insmod beside a livepatch of %s: %s", variant->func,
		       err ? strerror(-err) : "loaded");
	EXPECT_FALSE(kg_module_loaded());
	EXPECT_TRUE(klog_says(mark, variant->func))
		TH_LOG("no kvmguard message names %s", variant->func);
	close(mark);
	if (kg_module_loaded())
		return;
	/* Nothing left attached: every redirected function can be claimed. */
	ASSERT_EQ(0, lp_unload());
	redirected(all, sizeof(all));
	err = lp_load(all);
	EXPECT_EQ(0, err) TH_LOG("claiming %s after the failed load: %s", all,
				 strerror(-err));
	ASSERT_EQ(0, lp_unload());
	err = kg_insmod();
	EXPECT_EQ(0, err) TH_LOG("insmod once the livepatch is gone: %s", strerror(-err));
}

/* ---- hooks attached by a policy ---- */

FIXTURE(policy) {
	struct gnl g;
	struct hcg_klog klog;
	const char *func;
};

FIXTURE_VARIANT(policy) {
	const char *func;	/* NULL: the hypercall hook's */
	bool memory;		/* a memory rule, else an allowlist */
	const char *what;	/* the extack's word for the hook */
};

FIXTURE_VARIANT_ADD(policy, memslot) {
	.func = "__kvm_set_memory_region", .memory = true, .what = "memslot",
};

FIXTURE_VARIANT_ADD(policy, hypercall) {
	.what = "hypercall",
};

FIXTURE_VARIANT_ADD(policy, hyperv) {
	.func = "kvm_hv_hypercall", .what = "hypercall",
};

static int policy_new(struct gnl *g, bool memory)
{
	if (memory)
		return memg_new(g, P "mem", NULL, MEMG_MAX(64 * MEMG_MIB));
	return hcg_policy(g, KVMGUARD_CMD_POLICY_NEW, P "hc", -1, 1, 1ull << 5, -1);
}

static const char *policy_name(bool memory)
{
	return memory ? P "mem" : P "hc";
}

FIXTURE_SETUP(policy)
{
	char path[PATH_MAX];

	self->g.fd = self->klog.fd = -1;
	self->func = variant->func ?: hc_function();
	if (lp_path(path, sizeof(path)))
		SKIP(return, "no test module modules/" LP_MODULE ".ko");
	ASSERT_EQ(0, lp_unload());
	ASSERT_EQ(0, kg_ensure_loaded());
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
	ASSERT_EQ(0, hcg_klog_open(&self->klog));
}

FIXTURE_TEARDOWN(policy)
{
	EXPECT_EQ(0, lp_unload());
	if (self->g.fd >= 0) {
		kg_cleanup(&self->g, P);
		gnl_close(&self->g);
	}
	EXPECT_EQ(0, hcg_klog_problems(&self->klog))
		TH_LOG("the kernel log shows problems");
	hcg_klog_close(&self->klog);
}

TEST_F(policy, livepatch_second)
{
	int err;

	RETURN_IF_SKIPPED();

	ASSERT_EQ(0, policy_new(&self->g, variant->memory));
	err = lp_load(self->func);
	EXPECT_EQ(-EBUSY, err)
		TH_LOG("a livepatch of %s loaded under the %s hook: %s", self->func,
		       variant->what, err ? strerror(-err) : "no error");
	ASSERT_EQ(0, lp_unload());
	/* Without a policy that needs it, the hook is gone. */
	ASSERT_EQ(0, kg_policy_del(&self->g, policy_name(variant->memory)));
	err = lp_load(self->func);
	EXPECT_EQ(0, err) TH_LOG("a livepatch of %s once no policy needs the hook: %s",
				 self->func, strerror(-err));
}

TEST_F(policy, livepatch_first)
{
	struct kg_policy p;
	int err, mark;

	RETURN_IF_SKIPPED();

	err = lp_load(self->func);
	ASSERT_EQ(0, err) TH_LOG("livepatch of %s: %s", self->func, strerror(-err));
	mark = klog_mark();
	err = policy_new(&self->g, variant->memory);
	EXPECT_EQ(-EBUSY, err) TH_LOG("POLICY_NEW beside a livepatch of %s: %s",
				      self->func, err ? strerror(-err) : "created");
	EXPECT_NE(NULL, strstr(self->g.ext_msg, variant->what))
		TH_LOG("extack: '%s'", self->g.ext_msg);
	EXPECT_EQ(-ENOENT, kg_policy_get(&self->g, policy_name(variant->memory), &p));
	EXPECT_TRUE(klog_says(mark, "attach")) TH_LOG("no kvmguard message");
	close(mark);
	ASSERT_EQ(0, lp_unload());
	err = policy_new(&self->g, variant->memory);
	EXPECT_EQ(0, err) TH_LOG("POLICY_NEW once the livepatch is gone: %s (%s)",
				 strerror(-err), self->g.ext_msg);
}

/* ---- the tap direct calls (attached by a port with rules) ---- */

FIXTURE(tap) {
	struct netg_lab l;
	bool up;
};

FIXTURE_VARIANT(tap) {
	const char *func;
	bool fallback;		/* refused, the port uses netfilter instead */
};

FIXTURE_VARIANT_ADD(tap, xmit) {
	.func = "tun_net_xmit",
};

FIXTURE_VARIANT_ADD(tap, bridge) {
	.func = "br_handle_frame", .fallback = true,
};

FIXTURE_SETUP(tap)
{
	char path[PATH_MAX], why[256];

	if (lp_path(path, sizeof(path)))
		SKIP(return, "no test module modules/" LP_MODULE ".ko");
	if (netg_prereq(why, sizeof(why)))
		SKIP(return, "%s", why);
	ASSERT_EQ(0, lp_unload());
	ASSERT_EQ(0, kg_ensure_loaded());
	ASSERT_EQ(0, netg_lab_up(&self->l, 0, 1, NULL));
	self->up = true;
	ASSERT_EQ(0, netg_policy_new(&self->l.g, NETG_POLICY "lp", .tag = 100));
}

FIXTURE_TEARDOWN(tap)
{
	EXPECT_EQ(0, lp_unload());
	if (self->up)
		NETG_LAB_DOWN(&self->l);
}

/* A frame from the guest reaches the uplink with VID 100. */
static bool tagged_at_uplink(struct netg_lab *l)
{
	struct netg_pkt p[4];
	int n;

	netg_flush(l->t.up[NETG_UP_ALL]);
	for (int i = 0; i < 3; i++)
		netg_send_test(&l->t.port[0], netg_bcast, 0, NULL, 0, i);
	n = netg_collect(l->t.up[NETG_UP_ALL], 3, 2000, p, 4);
	for (int i = 0; i < n; i++)
		if (p[i].ntags != 1 || (p[i].tags[0].tci & 0xfff) != 100)
			return false;
	return n > 0;
}

TEST_F(tap, livepatch_second)
{
	int err;

	RETURN_IF_SKIPPED();

	ASSERT_EQ(0, netg_lab_vm(&self->l, 0, NETG_POLICY "lp"));
	err = lp_load(variant->func);
	EXPECT_EQ(-EBUSY, err)
		TH_LOG("a livepatch of %s loaded under the tap hook: %s", variant->func,
		       err ? strerror(-err) : "no error");
	ASSERT_EQ(0, lp_unload());
	/* The hooks go (from a work item) with the port's last user. */
	netg_lab_vm_destroy(&self->l, 0);
	err = lp_load_settled(variant->func, 5000);
	EXPECT_EQ(0, err) TH_LOG("a livepatch of %s once no port needs the hook: %s",
				 variant->func, strerror(-err));
}

TEST_F(tap, livepatch_first)
{
	int err;

	RETURN_IF_SKIPPED();

	err = lp_load_settled(variant->func, 5000);
	ASSERT_EQ(0, err) TH_LOG("livepatch of %s: %s", variant->func, strerror(-err));
	err = netg_lab_vm(&self->l, 0, NETG_POLICY "lp");
	if (variant->fallback) {
		ASSERT_EQ(0, err) TH_LOG("bind beside a livepatch of %s: %s",
					 variant->func, strerror(-err));
		EXPECT_TRUE(tagged_at_uplink(&self->l))
			TH_LOG("the guest's frames were not tagged (netfilter fallback)");
		return;
	}
	EXPECT_EQ(-EBUSY, err) TH_LOG("bind beside a livepatch of %s: %s",
				      variant->func, err ? strerror(-err) : "bound");
	ASSERT_EQ(0, lp_unload());
	err = netg_lab_vm(&self->l, 0, NETG_POLICY "lp");
	EXPECT_EQ(0, err) TH_LOG("bind once the livepatch is gone: %s", strerror(-err));
	EXPECT_TRUE(tagged_at_uplink(&self->l));
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
