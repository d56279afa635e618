// SPDX-License-Identifier: GPL-2.0
/*
 * net_faults: every path that attaches kvmguard to the kernel, made to fail
 * by the failure-injection build of the module (make KVMGUARD_FAULTS=1,
 * kmod/fault_inject.h), which each test swaps in for the normal one and
 * swaps out again; SKIP without it ($KVMGUARD_FAULTS_KO, default
 * /kvmguard/faults/kvmguard.ko) or without $KVMGUARD_KO. The topology is
 * net_tags' flat bridge (taps A, B); the kernel log must stay clean, the
 * unload of the faults build included (a hook left counted warns there).
 *
 *  - bind_*: NET_BIND fails with the error of the port's allocation
 *    (ENOMEM), of the direct call at tun_net_xmit() (EBUSY) or of the
 *    netfilter hook of a tap off the bridge (ENOMEM, after the direct call
 *    attached): nothing stays bound or attached, the tap's frames go as if
 *    kvmguard were not there. A bridged tap whose bridge hook fails falls
 *    back to netfilter and is enforced.
 *  - policy_set_* / vm_set / policy_delete: a policy edit, VM_SET or
 *    POLICY_DEL whose new rules (for a delete: those of the policy its VMs
 *    move to) need a hook that cannot attach fails with its error and an
 *    extack message and changes nothing: the policy keeps its rules (a tap
 *    bound afterwards is not tagged), the VM its policy.
 *  - vlan_upper: a VLAN device on a bridged tap needs the netfilter hook;
 *    if it cannot attach, creating the VLAN device fails.
 *  - leave_bridge: a bridged tap leaves its bridge (cannot be refused) and
 *    its netfilter hook cannot attach: the port fails closed, every frame
 *    either way is dropped and counted (segment denied) and reported; it
 *    cannot join a bridge; once the hook can attach it is enforced again.
 *  - init_sites: the module refuses to load, and leaves nothing behind,
 *    when a hook it attaches at load (genetlink family, lifecycle kprobes,
 *    KSM kprobes, vhost-net probes) or the registration of a running VM
 *    fails.
 *  - hc_attach, memslot_attach: a policy that needs the hypercall or
 *    memslot hook is refused when it cannot attach.
 *  - registry_add: a VM that cannot be registered is refused (ENOMEM).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "hcg.h"
#include "kg.h"
#include "memg.h"
#include "netg.h"

#define POS_MS		3000
#define A		0
#define B		1
#define C		2	/* a VM of the test's own, no lab port */
#define FAULTS_KO	"/kvmguard/faults/kvmguard.ko"
#define PARAMS		"/sys/module/kvmguard/parameters/"

static const char *faults_ko(void)
{
	const char *p = getenv("KVMGUARD_FAULTS_KO");

	return p ? p : FAULTS_KO;
}

/* Load the module at @path with @params; 0 or -errno. */
static int insmod_path(const char *path, const char *params)
{
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, params, 0))
		err = -errno;
	close(fd);
	return err;
}

static int unload(void)
{
	return kg_module_loaded() ? kg_rmmod() : 0;
}

/* The failure-injection build in place of the loaded module. */
static int faults_load(const char *params)
{
	int err = unload();

	return err ? err : insmod_path(faults_ko(), params);
}

/* The normal build back. */
static int normal_load(void)
{
	int err = unload();

	return err ? err : kg_insmod();
}

static int param_put(const char *name, const char *val)
{
	char path[128];
	int fd, err = 0;

	snprintf(path, sizeof(path), PARAMS "%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		err = -errno;
	close(fd);
	return err;
}

/* Fail hits @nth.. @nth + @times - 1 (@times -1: all) of @site from now on. */
static int fault_set(const char *site, int nth, int times)
{
	char buf[16];
	int err;

	snprintf(buf, sizeof(buf), "%d", nth);
	err = param_put("fault_nth", buf);
	snprintf(buf, sizeof(buf), "%d", times);
	if (!err)
		err = param_put("fault_times", buf);
	return err ? err : param_put("fault_site", site);
}

/* Failures injected since the last fault_set(), or -errno. */
static int fault_injected(void)
{
	unsigned long v;
	int err = memg_get_ulong(PARAMS "fault_injected", &v);

	return err ? err : (int)v;
}

FIXTURE(nf) {
	struct netg_lab l;
	struct netg_port extra;		/* a tap of the test's own */
	int psock;			/* a packet socket on a tap */
	bool swapped;
	struct netg_pkt pk[16];
	uint32_t seq;
};

#define L (&self->l)
#define G (&self->l.g)
#define PORT(i) (&self->l.t.port[i])
#define UP(k) (self->l.t.up[NETG_UP_##k])
#define GOT(fd, want) netg_collect(fd, want, (want) ? POS_MS : 0, self->pk, 16)
#define NEED_FAULTS() do {						\
	if (!self->swapped)						\
		SKIP(return, "no failure-injection module at %s, or no KVMGUARD_KO", \
		     faults_ko());					\
} while (0)

FIXTURE_SETUP(nf)
{
	self->extra.fd = -1;
	self->psock = -1;
	if (!getenv("KVMGUARD_KO") || access(faults_ko(), R_OK))
		return;
	ASSERT_EQ(0, faults_load(""));
	self->swapped = true;
	ASSERT_EQ(0, netg_lab_up(&self->l, 0, 2, NULL));
	ASSERT_EQ(0, netg_policy_new(G, NETG_POLICY "100", .tag = 100));
	ASSERT_EQ(0, netg_policy_new(G, NETG_POLICY "none", .mode = NETG_ENFORCE));
}

FIXTURE_TEARDOWN(nf)
{
	if (!self->swapped)
		return;
	fault_set("none", 1, 1);
	if (self->psock >= 0)
		close(self->psock);
	if (self->extra.fd >= 0)
		netg_port_close(&self->extra);
	netg_lab_down(&self->l);
	/* The faults build goes: a hook it left counted would warn now. */
	EXPECT_EQ(0, normal_load());
	EXPECT_EQ(0, hcg_klog_problems(&self->l.klog))
		TH_LOG("the kernel log shows problems");
	hcg_klog_close(&self->l.klog);
}

/* A frame from port @i reaches the uplink with VID @vid (0: untagged). */
static void uplink_sees(struct __test_metadata *_metadata, FIXTURE_DATA(nf) *self,
			int i, int vid)
{
	netg_flush(UP(ALL));
	ASSERT_EQ(0, netg_send_test(PORT(i), netg_bcast, i, NULL, 0, self->seq++));
	ASSERT_EQ(1, GOT(UP(ALL), 1));
	if (vid) {
		EXPECT_EQ(1, self->pk[0].ntags);
		EXPECT_EQ(vid, self->pk[0].tags[0].tci & 0xfff);
	} else {
		EXPECT_EQ(0, self->pk[0].ntags) TH_LOG("tagged %#x", self->pk[0].tags[0].tci);
	}
}

/* VM C of the test, with @policy, bound to nothing. */
static uint64_t vm_c(struct __test_metadata *_metadata, FIXTURE_DATA(nf) *self,
		     const char *policy)
{
	ASSERT_EQ(0, netg_vm(G, &L->vm[C], policy, &L->id[C]));
	L->has_vm[C] = true;
	return L->id[C];
}

TEST_F_TIMEOUT(nf, bind_alloc, 120)
{
	NEED_FAULTS();
	vm_c(_metadata, self, NETG_POLICY "100");
	ASSERT_EQ(0, fault_set("port_alloc", 1, 1));
	EXPECT_EQ(-ENOMEM, netg_bind(G, L->id[C], PORT(A)->name, 0));
	EXPECT_EQ(1, fault_injected());
	EXPECT_EQ(0, netg_devs(G, L->id[C], NULL, 0));
	uplink_sees(_metadata, self, A, 0);
	EXPECT_EQ(0, netg_bind(G, L->id[C], PORT(A)->name, 0));
	uplink_sees(_metadata, self, A, 100);
}

TEST_F_TIMEOUT(nf, bind_xmit, 120)
{
	NEED_FAULTS();
	vm_c(_metadata, self, NETG_POLICY "100");
	ASSERT_EQ(0, fault_set("tap_xmit", 1, 1));
	EXPECT_EQ(-EBUSY, netg_bind(G, L->id[C], PORT(A)->name, 0));
	EXPECT_STRNE("", G->ext_msg);
	EXPECT_EQ(1, fault_injected());
	EXPECT_EQ(0, netg_devs(G, L->id[C], NULL, 0));
	uplink_sees(_metadata, self, A, 0);
	EXPECT_EQ(0, netg_bind(G, L->id[C], PORT(A)->name, 0));
	uplink_sees(_metadata, self, A, 100);
}

/*
 * Issue 13 item 2: a tap off the bridge gets the direct call at
 * tun_net_xmit() (its port in the cache), then the netfilter hook fails.
 * The failed port must be gone from the cache and the hook's users: frames
 * toward the tap are nobody's business then, and arrive.
 */
TEST_F_TIMEOUT(nf, bind_nf_after_direct, 120)
{
	uint8_t mac[6];
	int got;

	NEED_FAULTS();
	ASSERT_EQ(0, netg_tap_open(&self->extra, "kgnc", 0, 0));
	ASSERT_EQ(0, netg_ip("link set kgnc up\n"));
	vm_c(_metadata, self, NETG_POLICY "100");
	ASSERT_EQ(0, fault_set("nf_hooks", 1, 1));
	EXPECT_EQ(-ENOMEM, netg_bind(G, L->id[C], "kgnc", 0));
	EXPECT_STRNE("", G->ext_msg);
	EXPECT_EQ(1, fault_injected());
	EXPECT_EQ(0, netg_devs(G, L->id[C], NULL, 0));
	usleep(300000);		/* past the failed port's grace period */

	self->psock = netg_psock(NULL, "kgnc");
	ASSERT_LE(0, self->psock);
	netg_mac(3, mac);
	netg_flush(self->extra.fd);
	for (int i = 0; i < 20; i++)
		ASSERT_EQ(0, netg_psend_test(self->psock, netg_bcast, mac, NULL, 0, self->seq++));
	got = netg_collect(self->extra.fd, 20, POS_MS, self->pk, 16);
	EXPECT_EQ(20, got) TH_LOG("frames toward an unbound tap dropped");
	for (int i = 0; i < 20; i++)
		ASSERT_EQ(0, netg_send_test(&self->extra, netg_bcast, 2, NULL, 0, self->seq++));

	/* Bound for good now, and unbound. */
	EXPECT_EQ(0, netg_bind(G, L->id[C], "kgnc", 0));
	EXPECT_EQ(1, netg_devs(G, L->id[C], NULL, 0));
	EXPECT_EQ(0, netg_unbind(G, "kgnc", 0));
}

/* The bridge's direct call fails: netfilter's hook enforces instead. */
TEST_F_TIMEOUT(nf, bind_bridge, 120)
{
	NEED_FAULTS();
	vm_c(_metadata, self, NETG_POLICY "100");
	ASSERT_EQ(0, fault_set("tap_bridge", 1, 1));
	EXPECT_EQ(0, netg_bind(G, L->id[C], PORT(A)->name, 0));
	EXPECT_EQ(1, fault_injected());
	uplink_sees(_metadata, self, A, 100);
	/* A tag of the guest's own is dropped. */
	netg_flush(UP(ALL));
	ASSERT_EQ(0, netg_send_test(PORT(A), netg_bcast, A, &NETG_Q(200), 1, self->seq++));
	EXPECT_EQ(0, GOT(UP(ALL), 0));
	usleep(300000);
	EXPECT_EQ(0, GOT(UP(ALL), 0));
}

/*
 * Issue 13 item 4: an edit that adds a network rule to a policy whose VM
 * has a port, when the port's hook cannot attach.
 */
static void edit_refused(struct __test_metadata *_metadata, FIXTURE_DATA(nf) *self,
			 const char *site, int err)
{
	ASSERT_EQ(0, netg_lab_vm(L, A, NETG_POLICY "none"));
	uplink_sees(_metadata, self, A, 0);
	ASSERT_EQ(0, fault_set(site, 1, 1));
	EXPECT_EQ(err, netg_policy_set(G, NETG_POLICY "none", .tag = 100));
	EXPECT_STRNE("", G->ext_msg);
	EXPECT_EQ(1, fault_injected());
	uplink_sees(_metadata, self, A, 0);
	/* The policy kept its rules: a port bound now is not tagged either. */
	ASSERT_EQ(0, netg_lab_vm(L, B, NETG_POLICY "none"));
	uplink_sees(_metadata, self, B, 0);
	/* And the edit goes through once the hook attaches. */
	EXPECT_EQ(0, netg_policy_set(G, NETG_POLICY "none", .tag = 100));
	uplink_sees(_metadata, self, A, 100);
	uplink_sees(_metadata, self, B, 100);
}

TEST_F_TIMEOUT(nf, policy_set_xmit, 120)
{
	NEED_FAULTS();
	edit_refused(_metadata, self, "tap_xmit", -EBUSY);
}

/* Off the bridge: the direct call attaches, netfilter's hook does not. */
TEST_F_TIMEOUT(nf, policy_set_nf, 120)
{
	NEED_FAULTS();
	ASSERT_EQ(0, netg_lab_vm(L, A, NETG_POLICY "none"));
	ASSERT_EQ(0, netg_ip("link set kgna nomaster\n"));
	ASSERT_EQ(0, fault_set("nf_hooks", 1, 1));
	EXPECT_EQ(-ENOMEM, netg_policy_set(G, NETG_POLICY "none", .tag = 100));
	EXPECT_STRNE("", G->ext_msg);
	EXPECT_EQ(1, fault_injected());
	/* Back on the bridge, still untagged: the rules did not change. */
	ASSERT_EQ(0, netg_ip("link set kgna master " NETG_BR "\n"));
	uplink_sees(_metadata, self, A, 0);
	EXPECT_EQ(0, netg_policy_set(G, NETG_POLICY "none", .tag = 100));
	uplink_sees(_metadata, self, A, 100);
}

TEST_F_TIMEOUT(nf, vm_set, 120)
{
	struct kg_vm v;

	NEED_FAULTS();
	ASSERT_EQ(0, netg_lab_vm(L, A, NETG_POLICY "none"));
	ASSERT_EQ(0, fault_set("tap_xmit", 1, 1));
	EXPECT_EQ(-EBUSY, kg_vm_set(G, L->id[A], NETG_POLICY "100"));
	EXPECT_STRNE("", G->ext_msg);
	EXPECT_EQ(1, fault_injected());
	ASSERT_EQ(0, memg_vm_get(G, L->id[A], &v));
	EXPECT_STREQ(NETG_POLICY "none", v.policy);
	uplink_sees(_metadata, self, A, 0);
	EXPECT_EQ(0, kg_vm_set(G, L->id[A], NETG_POLICY "100"));
	uplink_sees(_metadata, self, A, 100);
}

/*
 * Deleting a policy moves its VMs to what the bindings say: when that
 * policy has a network rule whose hook cannot attach, the delete fails.
 */
TEST_F_TIMEOUT(nf, policy_delete, 120)
{
	struct kg_policy p;
	struct kg_vm v;

	NEED_FAULTS();
	ASSERT_EQ(0, netg_policy_new(G, NETG_POLICY "del", .mode = NETG_ENFORCE));
	ASSERT_EQ(0, kg_bind_new(G, KVMGUARD_BIND_DEFAULT, NULL, 0, NETG_POLICY "100"));
	ASSERT_EQ(0, netg_lab_vm(L, A, NETG_POLICY "del"));
	uplink_sees(_metadata, self, A, 0);
	ASSERT_EQ(0, fault_set("tap_xmit", 1, 1));
	EXPECT_EQ(-EBUSY, kg_policy_del(G, NETG_POLICY "del"));
	EXPECT_STRNE("", G->ext_msg);
	EXPECT_EQ(1, fault_injected());
	EXPECT_EQ(0, kg_policy_get(G, NETG_POLICY "del", &p));
	ASSERT_EQ(0, memg_vm_get(G, L->id[A], &v));
	EXPECT_STREQ(NETG_POLICY "del", v.policy);
	uplink_sees(_metadata, self, A, 0);
	/* Deleted once the hook attaches: A is on the default's policy. */
	EXPECT_EQ(0, kg_policy_del(G, NETG_POLICY "del"));
	ASSERT_EQ(0, memg_vm_get(G, L->id[A], &v));
	EXPECT_STREQ(NETG_POLICY "100", v.policy);
	uplink_sees(_metadata, self, A, 100);
	EXPECT_EQ(0, kg_bind_del(G, KVMGUARD_BIND_DEFAULT, NULL, 0));
}

/* A VLAN device on a bridged tap needs netfilter's hook: refused without. */
TEST_F_TIMEOUT(nf, vlan_upper, 120)
{
	NEED_FAULTS();
	ASSERT_EQ(0, netg_lab_vm(L, A, NETG_POLICY "100"));
	uplink_sees(_metadata, self, A, 100);
	ASSERT_EQ(0, fault_set("nf_hooks", 1, 1));
	EXPECT_NE(0, netg_ip("link add link kgna name kgna.5 type vlan id 5\n"));
	EXPECT_EQ(1, fault_injected());
	EXPECT_GT(0, netg_ifindex("kgna.5"));
	uplink_sees(_metadata, self, A, 100);
	/* It can be added once the hook attaches. */
	EXPECT_EQ(0, netg_ip("link add link kgna name kgna.5 type vlan id 5\n"));
	uplink_sees(_metadata, self, A, 100);
	netg_ip("link del kgna.5\n");
}

/* A bridged tap leaves its bridge and netfilter's hook cannot attach. */
TEST_F_TIMEOUT(nf, leave_bridge, 150)
{
	struct netg_event ev[8];
	struct netg_dev d0, d;
	uint8_t mac[6];
	int n, i, joined = 0;

	NEED_FAULTS();
	ASSERT_EQ(0, netg_lab_vm(L, A, NETG_POLICY "100"));
	uplink_sees(_metadata, self, A, 100);
	ASSERT_EQ(0, fault_set("nf_hooks", 1, -1));
	ASSERT_EQ(0, netg_ip("link set kgna nomaster\n"));
	EXPECT_LE(1, fault_injected());
	usleep(300000);
	ASSERT_EQ(0, netg_dev(G, L->id[A], PORT(A)->name, &d0));

	/* From the guest: dropped, counted, reported. */
	for (i = 0; i < 5; i++)
		ASSERT_EQ(0, netg_send_test(PORT(A), netg_bcast, A, NULL, 0, self->seq++));
	/* Toward the guest, even a frame of its own VLAN. */
	self->psock = netg_psock(NULL, PORT(A)->name);
	ASSERT_LE(0, self->psock);
	netg_mac(3, mac);
	netg_flush(PORT(A)->fd);
	for (i = 0; i < 5; i++)
		ASSERT_EQ(0, netg_psend_test(self->psock, netg_bcast, mac, &NETG_Q(100), 1,
					     self->seq++));
	EXPECT_EQ(0, netg_collect(PORT(A)->fd, 0, 500, NULL, 0));
	ASSERT_EQ(0, netg_dev(G, L->id[A], PORT(A)->name, &d));
	EXPECT_EQ(d0.forwarded, d.forwarded);
	EXPECT_EQ(d0.delivered, d.delivered);
	EXPECT_LE(d0.segment_denied + 10, d.segment_denied)
		TH_LOG("segment denied %llu, was %llu",
		       (unsigned long long)d.segment_denied,
		       (unsigned long long)d0.segment_denied);
	n = netg_events(&L->sub, L->id[A], 1, 2000, ev, 8);
	EXPECT_LE(1, n);
	for (i = 0; i < n; i++) {
		EXPECT_EQ(KVMGUARD_NET_RULE_SEGMENT, ev[i].rule);
		EXPECT_EQ(KVMGUARD_ACTION_DENIED, ev[i].action);
	}

	/* While the hook is lost, no bridge takes the tap. */
	EXPECT_NE(0, netg_ip("link set kgna master " NETG_BR "\n"));

	/* Once it can attach, the port is enforced again. */
	ASSERT_EQ(0, fault_set("none", 1, 1));
	for (i = 0; i < 50 && !joined; i++) {
		usleep(100000);
		joined = !netg_ip("link set kgna master " NETG_BR "\n");
	}
	ASSERT_TRUE(joined);
	uplink_sees(_metadata, self, A, 100);
}

/* A policy that restricts hypercalls needs the hypercall hook. */
TEST_F_TIMEOUT(nf, hc_attach, 60)
{
	struct kg_policy p;

	NEED_FAULTS();
	ASSERT_EQ(0, fault_set("hc_attach", 1, 1));
	EXPECT_EQ(-EBUSY, hcg_policy(G, KVMGUARD_CMD_POLICY_NEW, NETG_POLICY "hc", -1, 1,
				     1ull << 1, -1));
	EXPECT_EQ(1, fault_injected());
	EXPECT_EQ(-ENOENT, kg_policy_get(G, NETG_POLICY "hc", &p));
	EXPECT_EQ(0, hcg_policy(G, KVMGUARD_CMD_POLICY_NEW, NETG_POLICY "hc", -1, 1,
				1ull << 1, -1));
}

/* A policy with a memory rule needs the memslot hook. */
TEST_F_TIMEOUT(nf, memslot_attach, 60)
{
	struct kg_policy p;

	NEED_FAULTS();
	ASSERT_EQ(0, fault_set("memslot_attach", 1, 1));
	EXPECT_EQ(-EBUSY, memg_new(G, NETG_POLICY "mem", NULL, MEMG_MAX(1ull << 30)));
	EXPECT_EQ(1, fault_injected());
	EXPECT_EQ(-ENOENT, kg_policy_get(G, NETG_POLICY "mem", &p));
	EXPECT_EQ(0, memg_new(G, NETG_POLICY "mem", NULL, MEMG_MAX(1ull << 30)));
}

/* A VM the registry cannot take is refused. */
TEST_F_TIMEOUT(nf, registry_add, 60)
{
	struct vm vm;

	NEED_FAULTS();
	ASSERT_EQ(0, fault_set("registry_add", 1, 1));
	EXPECT_EQ(-ENOMEM, vm_create(&vm));
	EXPECT_EQ(1, fault_injected());
	ASSERT_EQ(0, vm_create(&vm));
	vm_destroy(&vm);
}

/* Load-time sites: the module refuses to load and leaves nothing behind. */
TEST_F_TIMEOUT(nf, init_sites, 180)
{
	static const struct {
		const char *site;
		int err;
		bool need_vhost;
	} sites[] = {
		{ "genl_family", -ENOMEM, false },
		{ "lifecycle_kprobes", -EBUSY, false },
		{ "ksm_kprobes", -EBUSY, false },
		{ "vhost_probes", -EBUSY, true },
		{ "registry_add", -ENOMEM, false },	/* of the running VM below */
	};
	char params[64];
	struct vm vm;

	NEED_FAULTS();
	/* A VM running before the load, which the module must register. */
	ASSERT_EQ(0, vm_create(&vm));
	for (size_t i = 0; i < sizeof(sites) / sizeof(sites[0]); i++) {
		if (sites[i].need_vhost && access("/sys/module/vhost_net", F_OK)) {
			TH_LOG("%s: vhost_net not loaded, not tried", sites[i].site);
			continue;
		}
		ASSERT_EQ(0, unload());
		snprintf(params, sizeof(params), "fault_site=%s", sites[i].site);
		EXPECT_EQ(sites[i].err, insmod_path(faults_ko(), params))
			TH_LOG("site %s", sites[i].site);
		EXPECT_FALSE(kg_module_loaded()) TH_LOG("site %s", sites[i].site);
		/* It loads with no failure injected. */
		EXPECT_EQ(0, insmod_path(faults_ko(), ""));
		EXPECT_TRUE(kg_module_loaded());
	}
	vm_destroy(&vm);
}

NETG_HARNESS_MAIN
