// SPDX-License-Identifier: GPL-2.0
/*
 * soak: everything at once, for a bounded time, while the module is
 * unloaded and loaded again and again.
 *
 * Processes, each in a loop until told to stop:
 *   vmm0..2   create a VM, give it memslots and create, move, re-flag
 *             (dirty logging) and delete them at random, then destroy it;
 *             vmm0's VMs also run a vCPU looping on a hypercall for a
 *             moment, vmm1's and vmm2's attach a tap (kgns1, kgns2) as a
 *             vhost-net backend every other VM (bound by vhost) and send
 *             frames on its TX ring. Each runs in its own cgroup
 *             /kvmguard-soak/wN.
 *   memchurn  POLICY_NEW, POLICY_SET and POLICY_DEL of four policies with
 *             memory rules (mem max, dirty max, shared), so that the
 *             memslot hook is attached and detached over and over.
 *   editor    base policies kgo-b0..3 (hypercall allowlist; memory caps; net
 *             tag 100; shared deny, isolate, Hyper-V deny, audit) kept in
 *             existence and edited, kgo-t0..3 created and deleted with
 *             hypercall, memory and net rules, policy dumps.
 *   binder    pid bindings of the vmm processes, cgroup bindings of their
 *             cgroups, deleted again; VM dumps, VM_GET, VM_SET of live VMs;
 *             binding dumps.
 * and this process unloads the module (retrying while a dump holds it:
 * EAGAIN) and loads it again, 0.5-1.5 s after each load. memchurn runs at
 * full speed while the module is being unloaded, paced otherwise (each
 * hook change waits for RCU-tasks grace periods under the genetlink mutex,
 * which would starve the other clients).
 *
 * Required: at least 3 unload/load cycles; every netlink request answered
 * (0 or an errno the request explains: ENOENT/EEXIST/EBUSY/ESRCH/ENOSPC,
 * ENOENT with no message once the family is gone, EPROTONOSUPPORT for a
 * dump while it goes); every memslot change succeeds or fails with a
 * memory rule's errno (EDQUOT, EPERM, EXDEV); every worker exits by itself
 * (not killed by an oops); at the end the module is loaded and answers, no
 * VM of the workers is left, and the kernel log has no oops, BUG, WARNING,
 * KASAN, UBSAN or lockdep report. On a kernel with kmemleak (debug lane),
 * two scans afterwards: no unreferenced object younger than the soak whose
 * backtrace is in kvmguard (by name, or by address in any of the module's
 * load addresses seen during the soak, since kmemleak cannot name the
 * frames of an unloaded module); the reports stay for check.sh.
 *
 * KVMGUARD_SOAK_SECONDS: how long (default 30; run_tests.sh passes the
 * lane's), and longer until MIN_CYCLES unloads (at most SOAK_EXTRA_S more).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <linux/kvm_para.h>

#include "kselftest_harness.h"
#include "hcg.h"
#include "kg.h"
#include "netg.h"
#include "vm.h"
#include "vhostdrv.h"

#define P	"kgo-"
#define CG	"/kvmguard-soak"
#define NVMM	3
#define NSLOT	6		/* user slots 1..6; slot 0 is hcg's code */
#define SLOT_MAX (1 << 20)
#define MIN_CYCLES 3
#define SOAK_EXTRA_S 150

enum role { R_VMM0, R_MEMCHURN = NVMM, R_EDITOR, R_BINDER, NROLE };

static const char *const role_name[NROLE] = {
	"vmm0", "vmm1", "vmm2", "memchurn", "editor", "binder",
};

struct role_stats {
	pid_t pid;
	atomic_long ops;	/* requests or memslot changes */
	atomic_long refused;	/* answered with an errno the request explains */
	atomic_long unexpected;
	atomic_long unanswered;
	atomic_long vms, taps, hc_loops, vhost_refused;
	atomic_int vhost_errno;	/* of the last refused SET_BACKEND */
	char last[192];		/* the last unexpected result */
};

struct shared {
	atomic_int stop;
	atomic_int unloading;	/* rmmod under way: memchurn at full speed */
	atomic_int gen;		/* module loads so far */
	struct role_stats r[NROLE];
};

static struct shared *sh;

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static bool debug_kernel(void)
{
	return !access("/sys/kernel/debug/kmemleak", F_OK);
}

static uint64_t rs;

static uint32_t rnd(uint32_t n)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return n ? (uint32_t)((rs >> 11) % n) : 0;
}

static void unexpected(struct role_stats *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void unexpected(struct role_stats *st, const char *fmt, ...)
{
	va_list ap;

	atomic_fetch_add(&st->unexpected, 1);
	va_start(ap, fmt);
	vsnprintf(st->last, sizeof(st->last), fmt, ap);
	va_end(ap);
}

/* A netlink client that survives the module going away and coming back. */
struct nl {
	struct gnl g;
	bool up;
	int gen;		/* sh->gen when opened */
	double retry;		/* not before this time while the family is gone */
	struct role_stats *st;
	struct gnl_msg m;
};

static bool nl_ready(struct nl *n)
{
	int gen = atomic_load(&sh->gen);

	if (n->up && n->gen == gen)
		return true;
	if (n->up)
		gnl_close(&n->g);
	n->up = false;
	/* Resolving an absent family makes the kernel run modprobe: not in a loop. */
	if (n->gen == gen && now_s() < n->retry)
		return false;
	n->gen = gen;
	if (kg_open(&n->g)) {
		n->retry = now_s() + 0.05;
		return false;
	}
	n->g.timeout_ms = debug_kernel() ? 60000 : 20000;
	n->up = true;
	return true;
}

/* Start a request (false: the family is not there now). */
static bool nl_req(struct nl *n, uint8_t cmd, bool dump)
{
	if (!nl_ready(n))
		return false;
	kg_req(&n->g, &n->m, cmd, dump);
	return true;
}

/*
 * Send n->m. Answers the churn explains are counted as refused; anything
 * else as unexpected. Returns the answer.
 */
static int nl_send(struct nl *n, const char *what)
{
	int r = gnl_transact(&n->g, &n->m, NULL, NULL);

	atomic_fetch_add(&n->st->ops, 1);
	switch (-r) {
	case 0:
		break;
	case ETIMEDOUT:
		atomic_fetch_add(&n->st->unanswered, 1);
		unexpected(n->st, "%s: no answer", what);
		n->up = false;
		gnl_close(&n->g);
		break;
	case ENOENT:
		/* Without a message: the family itself is gone (rmmod). */
		if (!n->g.ext_msg[0]) {
			n->up = false;
			gnl_close(&n->g);
			n->retry = now_s() + 0.02;
		}
		atomic_fetch_add(&n->st->refused, 1);
		break;
	case EPROTONOSUPPORT:	/* a dump while the module goes */
	case EEXIST:
	case EBUSY:
	case ESRCH:
	case ENOSPC:
		atomic_fetch_add(&n->st->refused, 1);
		break;
	default:
		unexpected(n->st, "%s: %d (%s) '%s'", what, r, strerror(-r), n->g.ext_msg);
		break;
	}
	return r;
}

static void pname(char *buf, const char *kind, int i)
{
	snprintf(buf, KVMGUARD_NAME_MAX + 1, P "%s%d", kind, i);
}

/* The rules of a policy request, some at random. */
static void put_rules(struct nl *n, bool mem, bool hc, bool net)
{
	struct gnl_msg *m = &n->m;

	if (mem) {
		static const uint64_t caps[] = {
			256 << 10, 1 << 20, 4 << 20, 16 << 20, KVMGUARD_MEM_UNLIMITED,
		};

		gnl_put_u64(m, KVMGUARD_A_POLICY_MEM_MAX, caps[rnd(5)]);
		if (rnd(2))
			gnl_put_u64(m, KVMGUARD_A_POLICY_MEM_DIRTY_MAX, caps[rnd(5)]);
		if (rnd(3) == 0)
			gnl_put_u8(m, KVMGUARD_A_POLICY_MEM_SHARED, rnd(KVMGUARD_MEM_SHARED_MAX + 1));
	}
	if (hc) {
		gnl_put_u8(m, KVMGUARD_A_POLICY_HC_RESTRICT, 1);
		gnl_put_u64(m, KVMGUARD_A_POLICY_HC_ALLOW, rnd(2) ? 0 : 1ULL << KVM_HC_VAPIC_POLL_IRQ);
		if (rnd(2))
			gnl_put_u8(m, KVMGUARD_A_POLICY_HYPERV, rnd(2));
	}
	if (net) {
		gnl_put_u16(m, KVMGUARD_A_POLICY_NET_TAG, rnd(3) ? 100 + rnd(2) * 100 : 0);
		if (rnd(3) == 0) {
			unsigned char trunk[KVMGUARD_NET_TRUNK_BYTES] = { 0 };

			trunk[300 / 8] |= 1 << (300 % 8);
			gnl_put(m, KVMGUARD_A_POLICY_NET_TRUNK, trunk, sizeof(trunk));
		}
		if (rnd(2))
			gnl_put_u8(m, KVMGUARD_A_POLICY_NET_ISOLATE, rnd(2));
	}
	if (rnd(4) == 0)
		gnl_put_u8(m, KVMGUARD_A_POLICY_MODE, rnd(2));
}

static bool stopping(void)
{
	return atomic_load(&sh->stop);
}

/* Sleep a little while the family is away. */
static void idle(void)
{
	usleep(2000);
}

/* Policies with memory rules made and unmade as fast as the module goes. */
static int memchurn(struct role_stats *st)
{
	struct nl n = { .st = st };
	char name[KVMGUARD_NAME_MAX + 1];

	while (!stopping()) {
		int op = rnd(3);

		/*
		 * Attaching and detaching the hook waits for RCU-tasks grace
		 * periods under the genetlink mutex, holding up every other
		 * request: full speed only while the module is being unloaded.
		 */
		if (!atomic_load(&sh->unloading))
			usleep(50000 + rnd(100000));
		pname(name, "m", rnd(4));
		if (!nl_req(&n, op == 0 ? KVMGUARD_CMD_POLICY_NEW :
			    op == 1 ? KVMGUARD_CMD_POLICY_SET : KVMGUARD_CMD_POLICY_DEL, false)) {
			idle();
			continue;
		}
		gnl_put_str(&n.m, KVMGUARD_A_POLICY_NAME, name);
		if (op == 0) {
			gnl_put_u64(&n.m, KVMGUARD_A_POLICY_MEM_MAX, 1 << 20);
			nl_send(&n, "memchurn POLICY_NEW");
		} else if (op == 1) {
			/* Toggle: the last memory rule of a policy goes and comes. */
			gnl_put_u64(&n.m, KVMGUARD_A_POLICY_MEM_MAX,
				    rnd(2) ? KVMGUARD_MEM_UNLIMITED : 2 << 20);
			if (rnd(2))
				gnl_put_u64(&n.m, KVMGUARD_A_POLICY_MEM_DIRTY_MAX,
					    rnd(2) ? KVMGUARD_MEM_UNLIMITED : 1 << 20);
			nl_send(&n, "memchurn POLICY_SET");
		} else {
			nl_send(&n, "memchurn POLICY_DEL");
		}
	}
	gnl_close(&n.g);
	return 0;
}

static void base_rules(struct nl *n, int b)
{
	switch (b) {
	case 0:
		gnl_put_u8(&n->m, KVMGUARD_A_POLICY_HC_RESTRICT, 1);
		gnl_put_u64(&n->m, KVMGUARD_A_POLICY_HC_ALLOW, 1ULL << KVM_HC_VAPIC_POLL_IRQ);
		break;
	case 1:
		gnl_put_u64(&n->m, KVMGUARD_A_POLICY_MEM_MAX, 4 << 20);
		gnl_put_u64(&n->m, KVMGUARD_A_POLICY_MEM_DIRTY_MAX, 1 << 20);
		break;
	case 2:
		gnl_put_u16(&n->m, KVMGUARD_A_POLICY_NET_TAG, 100);
		break;
	default:
		gnl_put_u8(&n->m, KVMGUARD_A_POLICY_MEM_SHARED, KVMGUARD_MEM_SHARED_DENY);
		gnl_put_u8(&n->m, KVMGUARD_A_POLICY_NET_ISOLATE, 1);
		gnl_put_u8(&n->m, KVMGUARD_A_POLICY_HYPERV, KVMGUARD_HYPERV_DENY);
		gnl_put_u8(&n->m, KVMGUARD_A_POLICY_MODE, KVMGUARD_MODE_AUDIT);
		break;
	}
}

static int editor(struct role_stats *st)
{
	struct nl n = { .st = st };
	char name[KVMGUARD_NAME_MAX + 1];

	while (!stopping()) {
		int op = rnd(10), r;

		if (op < 4) {
			/* Edit a base policy; make it if the module is new. */
			int b = rnd(4);

			pname(name, "b", b);
			if (!nl_req(&n, KVMGUARD_CMD_POLICY_SET, false))
				goto away;
			gnl_put_str(&n.m, KVMGUARD_A_POLICY_NAME, name);
			put_rules(&n, rnd(2), rnd(2), rnd(2));
			r = nl_send(&n, "editor POLICY_SET");
			if (r == -ENOENT && n.up) {
				if (!nl_req(&n, KVMGUARD_CMD_POLICY_NEW, false))
					goto away;
				gnl_put_str(&n.m, KVMGUARD_A_POLICY_NAME, name);
				base_rules(&n, b);
				nl_send(&n, "editor POLICY_NEW base");
			}
		} else if (op < 6) {
			pname(name, "t", rnd(4));
			if (!nl_req(&n, KVMGUARD_CMD_POLICY_NEW, false))
				goto away;
			gnl_put_str(&n.m, KVMGUARD_A_POLICY_NAME, name);
			put_rules(&n, rnd(2), rnd(2), rnd(2));
			nl_send(&n, "editor POLICY_NEW");
		} else if (op < 8) {
			pname(name, "t", rnd(4));
			if (!nl_req(&n, KVMGUARD_CMD_POLICY_DEL, false))
				goto away;
			gnl_put_str(&n.m, KVMGUARD_A_POLICY_NAME, name);
			nl_send(&n, "editor POLICY_DEL");
		} else if (op < 9) {
			if (!nl_req(&n, KVMGUARD_CMD_POLICY_GET, true))
				goto away;
			nl_send(&n, "editor policy dump");
		} else {
			pname(name, "b", rnd(4));
			if (!nl_req(&n, KVMGUARD_CMD_POLICY_GET, false))
				goto away;
			gnl_put_str(&n.m, KVMGUARD_A_POLICY_NAME, name);
			nl_send(&n, "editor POLICY_GET");
		}
		continue;
away:
		idle();
	}
	gnl_close(&n.g);
	return 0;
}

struct ids {
	uint64_t id[64];
	int n;
};

static int collect_id(const struct nlmsghdr *nlh, void *arg)
{
	const struct nlattr *tb[KVMGUARD_A_MAX + 1];
	struct ids *ids = arg;

	if (!gnl_parse(nlh, tb, KVMGUARD_A_MAX, NULL) && tb[KVMGUARD_A_VM_ID] &&
	    ids->n < 64)
		ids->id[ids->n++] = gnl_get_u64(tb[KVMGUARD_A_VM_ID]);
	return 0;
}

static void random_policy(char *name)
{
	pname(name, rnd(3) ? "b" : "t", rnd(4));
}

static int binder(struct role_stats *st)
{
	struct nl n = { .st = st };
	char name[KVMGUARD_NAME_MAX + 1], cg[64];
	struct ids ids = { .n = 0 };

	while (!stopping()) {
		int op = rnd(10), w = rnd(NVMM), r;

		if (rnd(2))
			snprintf(cg, sizeof(cg), CG "/w%d", w);
		else
			snprintf(cg, sizeof(cg), CG);
		random_policy(name);
		switch (op) {
		case 0:
		case 1:
			if (!nl_req(&n, KVMGUARD_CMD_BIND_NEW, false))
				goto away;
			gnl_put_u8(&n.m, KVMGUARD_A_BIND_TYPE, KVMGUARD_BIND_PID);
			gnl_put_u32(&n.m, KVMGUARD_A_BIND_PID, sh->r[w].pid);
			gnl_put_str(&n.m, KVMGUARD_A_POLICY_NAME, name);
			nl_send(&n, "binder BIND_NEW pid");
			break;
		case 2:
		case 3:
			if (!nl_req(&n, KVMGUARD_CMD_BIND_NEW, false))
				goto away;
			gnl_put_u8(&n.m, KVMGUARD_A_BIND_TYPE, KVMGUARD_BIND_CGROUP);
			gnl_put_str(&n.m, KVMGUARD_A_BIND_CGROUP, cg);
			gnl_put_str(&n.m, KVMGUARD_A_POLICY_NAME, name);
			nl_send(&n, "binder BIND_NEW cgroup");
			break;
		case 4:
			if (!nl_req(&n, KVMGUARD_CMD_BIND_DEL, false))
				goto away;
			if (rnd(2)) {
				gnl_put_u8(&n.m, KVMGUARD_A_BIND_TYPE, KVMGUARD_BIND_PID);
				gnl_put_u32(&n.m, KVMGUARD_A_BIND_PID, sh->r[w].pid);
			} else {
				gnl_put_u8(&n.m, KVMGUARD_A_BIND_TYPE, KVMGUARD_BIND_CGROUP);
				gnl_put_str(&n.m, KVMGUARD_A_BIND_CGROUP, cg);
			}
			nl_send(&n, "binder BIND_DEL");
			break;
		case 5:
			if (!nl_req(&n, KVMGUARD_CMD_VM_GET, true))
				goto away;
			ids.n = 0;
			r = gnl_transact(&n.g, &n.m, collect_id, &ids);
			/* Accounted like any other request. */
			atomic_fetch_add(&st->ops, 1);
			if (r == -ETIMEDOUT) {
				atomic_fetch_add(&st->unanswered, 1);
				unexpected(st, "binder VM dump: no answer");
			} else if (r && r != -ENOENT && r != -EPROTONOSUPPORT) {
				unexpected(st, "binder VM dump: %d (%s)", r, strerror(-r));
			} else if (r) {
				atomic_fetch_add(&st->refused, 1);
				if (r == -ENOENT) {
					n.up = false;
					gnl_close(&n.g);
				}
			}
			break;
		case 6:
		case 7:
			if (!ids.n)
				break;
			if (!nl_req(&n, KVMGUARD_CMD_VM_SET, false))
				goto away;
			gnl_put_u64(&n.m, KVMGUARD_A_VM_ID, ids.id[rnd(ids.n)]);
			gnl_put_str(&n.m, KVMGUARD_A_POLICY_NAME, name);
			nl_send(&n, "binder VM_SET");
			break;
		case 8:
			if (!ids.n)
				break;
			if (!nl_req(&n, KVMGUARD_CMD_VM_GET, false))
				goto away;
			gnl_put_u64(&n.m, KVMGUARD_A_VM_ID, ids.id[rnd(ids.n)]);
			nl_send(&n, "binder VM_GET");
			break;
		default:
			if (!nl_req(&n, KVMGUARD_CMD_BIND_GET, true))
				goto away;
			nl_send(&n, "binder bind dump");
			break;
		}
		continue;
away:
		idle();
	}
	gnl_close(&n.g);
	return 0;
}

struct slot {
	bool on, dirty;
	uint64_t gpa, size;
};

/* One memslot change; counted as unexpected on an errno no rule explains. */
static void slot_step(struct role_stats *st, struct vm *vm, struct slot *sl, int s,
		      char *mem)
{
	static const uint64_t sizes[] = { 4096, 64 << 10, 256 << 10, SLOT_MAX };
	uint64_t base = (uint64_t)(s + 1) * 2 * SLOT_MAX;	/* above hcg's slot 0 */
	char *hva = mem + (size_t)(s - 1) * SLOT_MAX;
	const char *what;
	int r;

	if (!sl->on) {
		sl->size = sizes[rnd(4)];
		sl->gpa = base;
		sl->dirty = rnd(3) == 0;
		r = vm_region(vm, s, sl->dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0, sl->gpa,
			      sl->size, hva);
		what = "create";
		sl->on = !r;
	} else {
		switch (rnd(3)) {
		case 0:
			r = vm_region(vm, s, 0, 0, 0, NULL);
			what = "delete";
			if (!r)
				sl->on = false;
			break;
		case 1:
			r = vm_region(vm, s, sl->dirty ? 0 : KVM_MEM_LOG_DIRTY_PAGES,
				      sl->gpa, sl->size, hva);
			what = "flags";
			if (!r)
				sl->dirty = !sl->dirty;
			break;
		default: {
			uint64_t gpa = sl->gpa == base ? base + SLOT_MAX : base;

			r = vm_region(vm, s, sl->dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0, gpa,
				      sl->size, hva);
			what = "move";
			if (!r)
				sl->gpa = gpa;
			break;
		}
		}
	}
	atomic_fetch_add(&st->ops, 1);
	if (!r)
		return;
	if (r == -EDQUOT || r == -EPERM || r == -EXDEV) {
		atomic_fetch_add(&st->refused, 1);
		return;
	}
	unexpected(st, "memslot %s of slot %d: %d (%s)", what, s, r, strerror(-r));
}

static void tx_frames(struct vhd *d, int w)
{
	uint8_t frame[64], mac[6];
	size_t len;

	netg_mac(w, mac);
	len = netg_frame(frame, netg_bcast, mac, NULL, 0, rnd(1000));
	vhd_tx_reap(d);
	for (int i = 0; i < 4; i++)
		if (vhd_tx_post(d, frame, len))
			break;
	vhd_kick(d, VHD_TX);
}

static int vmm(int w, struct role_stats *st)
{
	bool vhost = !access("/dev/vhost-net", R_OK | W_OK) && !access("/dev/net/tun", R_OK);
	char cg[64], tap[16], *mem;
	long iter = 0;

	snprintf(cg, sizeof(cg), CG "/w%d", w);
	if (kg_cg_enter(cg))
		printf("# %s: cannot enter %s\n", role_name[w], cg);
	snprintf(tap, sizeof(tap), "kgns%d", w);
	mem = mmap(NULL, (size_t)NSLOT * SLOT_MAX, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 2;
	while (!stopping()) {
		struct slot sl[NSLOT + 1] = { 0 };
		struct hcg_runner run = { 0 };
		struct vhd d = { .vfd = -1 };
		int tapfd = -1, r, steps;
		struct vm vm;

		iter++;
		r = w == 0 ? hcg_vm_create(&vm, false) : vm_create(&vm);
		atomic_fetch_add(&st->ops, 1);
		if (r) {
			/* The module refuses a VM it cannot register: ENOMEM. */
			if (r == -ENOMEM || r == -EDQUOT || r == -EPERM)
				atomic_fetch_add(&st->refused, 1);
			else
				unexpected(st, "VM create: %d (%s)", r, strerror(-r));
			usleep(10000);
			continue;
		}
		atomic_fetch_add(&st->vms, 1);
		if (w == 0 && vm_add_vcpu(&vm, 0) >= 0 &&
		    hcg_loop_start(&run, &vm, 0, iter % 2 ? KVM_HC_VAPIC_POLL_IRQ : 1000, 0) == 0)
			atomic_fetch_add(&st->hc_loops, 1);
		if (w > 0 && vhost && iter % 2) {
			tapfd = vhd_tap_open(tap, 0);
			if (tapfd >= 0 && !vhd_if_up(tap) && !vhd_open(&d)) {
				r = vhd_attach(&d, tapfd);
				if (r) {
					atomic_fetch_add(&st->vhost_refused, 1);
					atomic_store(&st->vhost_errno, -r);
				} else {
					atomic_fetch_add(&st->taps, 1);
				}
			}
		}
		steps = 10 + rnd(30);
		for (int i = 0; i < steps && !stopping(); i++) {
			int s = 1 + rnd(NSLOT);

			slot_step(st, &vm, &sl[s], s, mem);
			if (d.vfd >= 0 && i % 4 == 0)
				tx_frames(&d, w);
			/* The vCPU's loop only for a moment: it takes a whole CPU. */
			if (run.started && i == 3)
				hcg_run_stop(&run);
		}
		if (run.started)
			hcg_run_stop(&run);
		vhd_close(&d);
		if (tapfd >= 0)
			close(tapfd);
		vm_destroy(&vm);
	}
	munmap(mem, (size_t)NSLOT * SLOT_MAX);
	return 0;
}

static pid_t spawn(int role)
{
	pid_t pid = fork();
	int rc;

	if (pid)
		return pid;
	/* Never outlive the test (run_tests.sh's timeout kills only the harness). */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(3);
	rs = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)time(NULL);
	signal(SIGPIPE, SIG_IGN);
	if (role < NVMM)
		rc = vmm(role, &sh->r[role]);
	else if (role == R_MEMCHURN)
		rc = memchurn(&sh->r[role]);
	else if (role == R_EDITOR)
		rc = editor(&sh->r[role]);
	else
		rc = binder(&sh->r[role]);
	_exit(rc);
}

/* Where the module's code is now: [lo, hi) pairs for the kmemleak check. */
struct ranges {
	unsigned long lo[256], hi[256];
	int n;
};

static void note_module(struct ranges *rg)
{
	char line[256], name[64];
	unsigned long size, base, init;
	FILE *f = fopen("/proc/modules", "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %lu %*s %*s %*s %lx", name, &size, &base) == 3 &&
		    !strcmp(name, "kvmguard") && base && rg->n < 255) {
			rg->lo[rg->n] = base;
			rg->hi[rg->n++] = base + size;
		}
	}
	fclose(f);
	f = fopen("/sys/module/kvmguard/sections/.init.text", "r");
	if (f) {
		if (fscanf(f, "%lx", &init) == 1 && init && rg->n < 256) {
			rg->lo[rg->n] = init;
			rg->hi[rg->n++] = init + 65536;
		}
		fclose(f);
	}
}

static bool in_ranges(const struct ranges *rg, unsigned long a)
{
	for (int i = 0; i < rg->n; i++)
		if (a >= rg->lo[i] && a < rg->hi[i])
			return true;
	return false;
}

/*
 * kmemleak: scan twice, then count the reports younger than @max_age
 * seconds that are kvmguard's (printing them). -1 if there is no kmemleak.
 */
static int kmemleak_ours(const struct ranges *rg, double max_age)
{
	static char buf[1 << 20];
	char *block = NULL, *p, *nl;
	size_t len = 0;
	ssize_t n;
	int fd, ours = 0;

	fd = open("/sys/kernel/debug/kmemleak", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		if (write(fd, "scan", 4) != 4) {
			printf("# kmemleak scan: %s\n", strerror(errno));
			close(fd);
			return -1;
		}
		sleep(1);
	}
	lseek(fd, 0, SEEK_SET);
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += n;
	close(fd);
	buf[len] = 0;
	/* Blocks: "unreferenced object ..." up to the next one. */
	for (p = buf; p && *p; p = nl) {
		char *next = strstr(p + 1, "unreferenced object");
		bool hit = false;
		double age = 0;
		char *a, *s;

		nl = next;
		if (strncmp(p, "unreferenced object", 19))
			continue;
		if (next)
			next[-1] = 0;
		block = p;
		s = strstr(block, "(age ");
		if (s)
			age = strtod(s + 5, NULL);
		if (strstr(block, "kvmguard"))
			hit = true;
		for (a = strstr(block, "ffffffff"); a && !hit; a = strstr(a + 8, "ffffffff"))
			hit = in_ranges(rg, strtoul(a, NULL, 16));
		if (hit && age <= max_age) {
			ours++;
			if (ours <= 3)
				printf("# kmemleak:\n%s\n", block);
		}
	}
	return ours;
}

/* A progress line. */
static void mark(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void mark(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* delete_module, retried while something holds the module; 0 or -errno. */
static int unload(long *busy)
{
	double end = now_s() + 20;

	for (;;) {
		if (!syscall(SYS_delete_module, "kvmguard", O_NONBLOCK))
			return 0;
		if ((errno != EAGAIN && errno != EBUSY) || now_s() > end)
			return -errno;
		(*busy)++;
		usleep(10000);
	}
}

FIXTURE(soak) {
	int unused;
};

FIXTURE_SETUP(soak)
{
	/* Die with the harness, and the workers with us. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

FIXTURE_TEARDOWN(soak)
{
}

TEST_F_TIMEOUT(soak, everything_at_once, 1800)
{
	double secs = 30, t0, t, end, wait_end;
	long rm_ok = 0, ins_ok = 0, busy = 0, rm_fail = 0, ins_fail = 0;
	int exited_ok = 0, klog_bad, leaks, n = 0, theirs = 0;
	struct ranges rg = { .n = 0 };
	pid_t pids[NROLE] = { 0 };
	struct hcg_klog klog;
	struct kg_vm *vms;
	const char *v;
	struct gnl g;

	if (!getenv("KVMGUARD_KO"))
		SKIP(return, "KVMGUARD_KO not set: cannot load the module again");
	v = getenv("KVMGUARD_SOAK_SECONDS");
	if (v && *v)
		secs = strtod(v, NULL);
	ASSERT_EQ(0, hcg_klog_open(&klog));
	ASSERT_EQ(0, kg_open(&g));
	kg_cleanup(&g, P);
	gnl_close(&g);
	note_module(&rg);
	ASSERT_EQ(0, kg_cg_mkdir(CG));
	for (int w = 0; w < NVMM; w++) {
		char cg[64];

		snprintf(cg, sizeof(cg), CG "/w%d", w);
		ASSERT_EQ(0, kg_cg_mkdir(cg));
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	memset(sh, 0, sizeof(*sh));
	rs = (uint64_t)getpid() ^ (uint64_t)time(NULL) << 20;

	mark("%.0f s, %d VMM processes, rmmod 0.5-1.5 s after each insmod", secs, NVMM);
	t0 = now_s();
	end = t0 + secs;
	/* VMMs first: the binder binds their pids. */
	for (int i = 0; i < NROLE; i++) {
		pids[i] = spawn(i);
		ASSERT_LT(0, pids[i]);
		sh->r[i].pid = pids[i];
	}

	/*
	 * The cycles are the point, not the seconds: an unload takes from 4 s
	 * to 20 s in the test host under load, so the soak goes on (up to
	 * SOAK_EXTRA_S more) until MIN_CYCLES unloads have happened.
	 */
	while (now_s() < end || (rm_ok < MIN_CYCLES && now_s() < end + SOAK_EXTRA_S)) {
		const char *rm_res = "ok";
		int r;

		usleep(500000 + rnd(1000000));
		t = now_s();
		atomic_store(&sh->unloading, 1);
		r = unload(&busy);
		atomic_store(&sh->unloading, 0);
		if (r) {
			rm_res = "failed";
			rm_fail++;
			printf("# rmmod: %s\n", strerror(-r));
			if (kg_module_loaded())
				continue;
		} else {
			rm_ok++;
		}
		mark("%5.1f s: cycle %ld: rmmod %s in %.1f s (%ld retries while held, in all)",
		     now_s() - t0, rm_ok + rm_fail, rm_res, now_s() - t, busy);
		usleep(50000 + rnd(200000));
		t = now_s();
		for (int k = 0; k < 5; k++) {
			r = kg_insmod();
			if (!r || r == -EEXIST)
				break;
			usleep(100000);
		}
		if (r && r != -EEXIST) {
			ins_fail++;
			printf("# insmod: %s\n", strerror(-r));
		} else {
			ins_ok++;
			note_module(&rg);
		}
		mark("%5.1f s: cycle %ld: insmod %s in %.1f s", now_s() - t0, rm_ok + rm_fail,
		     r && r != -EEXIST ? "failed" : "ok", now_s() - t);
		atomic_fetch_add(&sh->gen, 1);
	}
	atomic_store(&sh->stop, 1);
	mark("%5.1f s: stopping the workers", now_s() - t0);

	/* Every worker must stop by itself; one killed by an oops does not. */
	wait_end = now_s() + (debug_kernel() ? 180 : 60);
	for (int i = 0; i < NROLE; i++) {
		int status = 0;
		pid_t r;

		while ((r = waitpid(pids[i], &status, WNOHANG)) == 0 && now_s() < wait_end)
			usleep(20000);
		if (r == 0) {
			printf("# %s (pid %d) did not stop: killing it\n", role_name[i], pids[i]);
			kill(pids[i], SIGKILL);
			waitpid(pids[i], &status, 0);
			continue;
		}
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			exited_ok++;
		else
			printf("# %s (pid %d) ended with status 0x%x%s\n", role_name[i], pids[i],
			       status, WIFSIGNALED(status) ? " (killed by a signal)" : "");
	}

	for (int i = 0; i < NROLE; i++) {
		struct role_stats *st = &sh->r[i];

		printf("# %-8s %6ld ops, %5ld refused, %ld unexpected, %ld unanswered",
		       role_name[i], atomic_load(&st->ops), atomic_load(&st->refused),
		       atomic_load(&st->unexpected), atomic_load(&st->unanswered));
		if (i < NVMM)
			printf("; %ld VMs, %ld hypercall loops, %ld taps bound by vhost, %ld refused (%s)",
			       atomic_load(&st->vms), atomic_load(&st->hc_loops),
			       atomic_load(&st->taps), atomic_load(&st->vhost_refused),
			       strerror(atomic_load(&st->vhost_errno)));
		printf("\n");
		if (st->last[0])
			printf("#   last unexpected: %s\n", st->last);
	}
	printf("# rmmod: %ld ok, %ld failed, %ld retries while held; insmod: %ld ok, %ld failed\n",
	       rm_ok, rm_fail, busy, ins_ok, ins_fail);

	/* The end state: loaded, answering, no VM of the workers left. */
	EXPECT_EQ(0, kg_ensure_loaded());
	ASSERT_EQ(0, kg_open(&g));
	EXPECT_EQ(0, kg_vm_dump(&g, &vms, &n));
	for (int i = 0; i < n; i++)
		for (int k = 0; k < NROLE; k++)
			if (vms[i].pid == (uint32_t)pids[k]) {
				printf("# VM %llu of %s is still there\n",
				       (unsigned long long)vms[i].id, role_name[k]);
				theirs++;
			}
	free(vms);
	kg_cleanup(&g, P);
	gnl_close(&g);
	for (int w = 0; w < NVMM; w++) {
		char cg[64];

		snprintf(cg, sizeof(cg), CG "/w%d", w);
		kg_cg_rmdir(cg);
	}
	kg_cg_rmdir(CG);

	leaks = kmemleak_ours(&rg, now_s() - t0 + 5);
	klog_bad = hcg_klog_problems(&klog);
	hcg_klog_close(&klog);

	EXPECT_EQ(0, klog_bad) TH_LOG("the kernel log shows %d problem lines", klog_bad);
	EXPECT_EQ(NROLE, exited_ok);
	EXPECT_LE(MIN_CYCLES, rm_ok) TH_LOG("too few unload/load cycles");
	EXPECT_EQ(0, ins_fail);
	EXPECT_EQ(0, theirs);
	for (int i = 0; i < NROLE; i++) {
		EXPECT_EQ(0, atomic_load(&sh->r[i].unanswered)) TH_LOG("%s", role_name[i]);
		EXPECT_EQ(0, atomic_load(&sh->r[i].unexpected)) TH_LOG("%s", role_name[i]);
		EXPECT_LT(0, atomic_load(&sh->r[i].ops)) TH_LOG("%s did nothing", role_name[i]);
	}
	for (int i = 0; i < NVMM; i++) {
		EXPECT_LT(0, atomic_load(&sh->r[i].vms)) TH_LOG("%s made no VM", role_name[i]);
	}
	if (leaks >= 0) {
		EXPECT_EQ(0, leaks) TH_LOG("kmemleak: %d objects of kvmguard's", leaks);
	}
	munmap(sh, sizeof(*sh));
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
