// SPDX-License-Identifier: GPL-2.0
/* hcg: hypercall guests for the kvmguard selftests (see hcg.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/time.h>

#include "hcg.h"
#include "kg.h"

/*
 * HCG_CALL_GPA, valid in all three modes:
 *	vmmcall			0f 01 d9
 *	out HCG_PORT_DONE, al	e6 10
 *	jmp HCG_CALL_GPA	eb f9
 */
static const unsigned char call_code[] = {
	0x0f, 0x01, 0xd9, 0xe6, HCG_PORT_DONE, 0xeb, 0xf9,
};

/*
 * HCG_LOOP_GPA, real mode. The whole of EAX is loaded each time: a 16-bit
 * "mov ax" would keep bits 16-31 of the previous result. The host stops
 * it by setting the byte at HCG_STOP_GPA: it then leaves at the loop head,
 * so its counts include every call it made.
 * 1100: cmp byte [2008], 0	80 3e 08 20 00
 * 1105: jne 112a		75 23
 * 1107: mov eax, NR		66 b8 NR(4)
 * 110d: xor ebx, ebx		66 31 db
 * 1110: mov cx, A1		b9 A1(2)	(ECX's upper half stays 0)
 * 1113: vmmcall		0f 01 d9
 * 1116: cmp eax, -1		66 83 f8 ff
 * 111a: je 1123		74 07
 * 111c: inc dword [2000]	66 ff 06 00 20
 * 1121: jmp 1100		eb dd
 * 1123: inc dword [2004]	66 ff 06 04 20
 * 1128: jmp 1100		eb d6
 * 112a: out HCG_PORT_DONE, al	e6 10
 * 112c: jmp 112a		eb fc
 */
static const unsigned char loop_code[] = {
	0x80, 0x3e, HCG_STOP_GPA & 0xff, HCG_STOP_GPA >> 8, 0x00,
	0x75, 0x23,
	0x66, 0xb8, 0, 0, 0, 0,
	0x66, 0x31, 0xdb,
	0xb9, 0, 0,
	0x0f, 0x01, 0xd9,
	0x66, 0x83, 0xf8, 0xff,
	0x74, 0x07,
	0x66, 0xff, 0x06, HCG_COUNT_GPA & 0xff, HCG_COUNT_GPA >> 8,
	0xeb, 0xdd,
	0x66, 0xff, 0x06, (HCG_COUNT_GPA + 4) & 0xff, (HCG_COUNT_GPA + 4) >> 8,
	0xeb, 0xd6,
	0xe6, HCG_PORT_DONE,
	0xeb, 0xfc,
};

/*
 * HCG_HALT_GPA, real mode, interrupts off: only a PV kick (or INIT/NMI)
 * ends the hlt.
 *	cli			fa
 *	out HCG_PORT_HALTING, al	e6 12
 *	hlt			f4
 *	out HCG_PORT_WOKEN, al	e6 11
 *	jmp $			eb fe
 */
static const unsigned char halt_code[] = {
	0xfa, 0xe6, HCG_PORT_HALTING, 0xf4, 0xe6, HCG_PORT_WOKEN, 0xeb, 0xfe,
};

int hcg_vm_create(struct vm *vm, bool irqchip)
{
	char *mem;
	uint64_t *pt;
	int err = vm_create(vm);

	if (err)
		return err;
	if (irqchip && ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0)) {
		err = -errno;
		vm_destroy(vm);
		return err;
	}
	err = vm_add_slot(vm, 0, 0, VM_SLOT0_SIZE);
	if (err) {
		vm_destroy(vm);
		return err;
	}
	mem = vm->slots[0].hva;
	memcpy(mem + HCG_CALL_GPA, call_code, sizeof(call_code));
	memcpy(mem + HCG_LOOP_GPA, loop_code, sizeof(loop_code));
	memcpy(mem + HCG_HALT_GPA, halt_code, sizeof(halt_code));
	/* Identity map of the first 2 MiB: PML4 -> PDPT -> PD with one 2M page. */
	pt = (uint64_t *)(mem + HCG_PT_GPA);
	pt[0] = (HCG_PT_GPA + 0x1000) | 3;
	pt[512] = (HCG_PT_GPA + 0x2000) | 3;
	pt[1024] = 0x83;
	return 0;
}

int hcg_set_mode(struct vm *vm, int i, enum hcg_mode mode)
{
	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = 0x8, .type = 0xb,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
	struct kvm_segment data = {
		.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 0x3,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
	struct kvm_sregs s;
	int fd = vm->vcpus[i].fd;

	if (mode == HCG_REAL16)
		return 0;	/* vm_add_vcpu left it in real mode */
	if (ioctl(fd, KVM_GET_SREGS, &s))
		return -errno;
	if (mode == HCG_LONG64) {
		code.l = 1;
		code.db = 0;
		s.cr3 = HCG_PT_GPA;
		s.cr4 |= 0x20;			/* PAE */
		s.efer |= 0x500;		/* LME | LMA */
		s.cr0 = 0x80000011;		/* PG | ET | PE */
	} else {
		s.cr0 = (s.cr0 & ~0xe0000000ULL) | 0x11;	/* ET | PE */
	}
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	if (ioctl(fd, KVM_SET_SREGS, &s))
		return -errno;
	return 0;
}

#define HCG_MAX_CPUID		256
#define HCG_HV_MSR_GUEST_OS_ID	0x40000000

struct hcg_cpuid {
	struct kvm_cpuid2 c;
	struct kvm_cpuid_entry2 e[HCG_MAX_CPUID];
};

int hcg_hv_enable(struct vm *vm, int i)
{
	static struct hcg_cpuid basic, hv, out;
	struct {
		struct kvm_msrs m;
		struct kvm_msr_entry e;
	} msrs = {
		.m.nmsrs = 1,
		.e = { .index = HCG_HV_MSR_GUEST_OS_ID, .data = 0x8100000000000000ULL },
	};
	int vfd = vm->vcpus[i].fd, n = 0;

	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV) <= 0)
		return -EOPNOTSUPP;
	basic.c.nent = HCG_MAX_CPUID;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, &basic))
		return -errno;
	hv.c.nent = HCG_MAX_CPUID;
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYS_HYPERV_CPUID) > 0) {
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_HV_CPUID, &hv))
			return -errno;
	} else if (ioctl(vfd, KVM_GET_SUPPORTED_HV_CPUID, &hv)) {
		return -errno;
	}
	for (uint32_t j = 0; j < basic.c.nent && n < HCG_MAX_CPUID; j++)
		if ((basic.e[j].function & 0xf0000000) != 0x40000000)
			out.e[n++] = basic.e[j];
	for (uint32_t j = 0; j < hv.c.nent && n < HCG_MAX_CPUID; j++)
		out.e[n++] = hv.e[j];
	out.c.nent = n;
	if (ioctl(vfd, KVM_SET_CPUID2, &out))
		return -errno;
	return ioctl(vfd, KVM_SET_MSRS, &msrs) == 1 ? 0 : -EIO;
}

static void on_signal(int sig)
{
	(void)sig;
}

int hcg_call(struct vm *vm, int i, const struct hcg_regs *in, struct hcg_result *res)
{
	struct vcpu *v = &vm->vcpus[i];
	struct kvm_regs regs = {
		.rax = in->rax, .rbx = in->rbx, .rcx = in->rcx, .rdx = in->rdx,
		.rsi = in->rsi, .rdi = in->rdi, .r8 = in->r8,
		.rip = HCG_CALL_GPA, .rflags = 2,
	};
	/* no SA_RESTART: the tick ends KVM_RUN with EINTR */
	struct sigaction sa = { .sa_handler = on_signal };
	struct itimerval tick = { { 0, 100000 }, { 0, 100000 } }, off = { 0 };
	uint64_t deadline;
	int r;

	memset(res, 0, sizeof(*res));
	if (ioctl(v->fd, KVM_SET_REGS, &regs)) {
		res->exit = -errno;
		return -1;
	}
	/*
	 * A guest that never gets past the vmmcall (a refusal that does not
	 * move RIP makes it call again and again inside KVM_RUN) must fail
	 * the test, not hang it: give up after HCG_CALL_TIMEOUT_S.
	 */
	deadline = hcg_mono_ns() + HCG_CALL_TIMEOUT_S * 1000000000ull;
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &tick, NULL);
	do {
		r = vcpu_run(v);
	} while (r == -EINTR && hcg_mono_ns() < deadline);
	setitimer(ITIMER_REAL, &off, NULL);
	res->exit = r;
	if (r == KVM_EXIT_IO)
		res->port = v->run->io.port;
	if (ioctl(v->fd, KVM_GET_REGS, &res->regs))
		return -1;
	res->rip = res->regs.rip;
	if (r != KVM_EXIT_IO || res->port != HCG_PORT_DONE ||
	    res->rip != HCG_CALL_GPA + 3)
		return -1;
	return 0;
}

struct stats_arg {
	struct hcg_stats *st;
	int err;
};

static int stats_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct hcg_stats *st = ((struct stats_arg *)arg)->st;
	const struct nlattr *tb[KVMGUARD_A_MAX + 1];
	const struct nlattr *nest, *a;
	int rem;

	memset(st, 0, sizeof(*st));
	if (gnl_parse(nlh, tb, KVMGUARD_A_MAX, NULL) || !tb[KVMGUARD_A_VM_HC_STATS])
		return -EBADMSG;
	if (tb[KVMGUARD_A_VM_HV_ALLOWED] && tb[KVMGUARD_A_VM_HV_DENIED]) {
		st->has_hv = true;
		st->hv_allowed = gnl_get_u64(tb[KVMGUARD_A_VM_HV_ALLOWED]);
		st->hv_denied = gnl_get_u64(tb[KVMGUARD_A_VM_HV_DENIED]);
	}
	nest = tb[KVMGUARD_A_VM_HC_STATS];
	rem = gnl_alen(nest);
	for (a = (const void *)((const char *)nest + NLA_HDRLEN);
	     rem >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= rem;
	     rem -= NLA_ALIGN(a->nla_len),
	     a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len))) {
		const struct nlattr *e = (const void *)((const char *)a + NLA_HDRLEN);
		int erem = gnl_alen(a);
		int64_t nr = -1;
		uint64_t allowed = 0, denied = 0;

		if ((a->nla_type & NLA_TYPE_MASK) != KVMGUARD_A_HC_STAT)
			return -EBADMSG;
		for (; erem >= NLA_HDRLEN && e->nla_len >= NLA_HDRLEN && e->nla_len <= erem;
		     erem -= NLA_ALIGN(e->nla_len),
		     e = (const void *)((const char *)e + NLA_ALIGN(e->nla_len))) {
			switch (e->nla_type & NLA_TYPE_MASK) {
			case KVMGUARD_A_HC_NR:
				nr = gnl_get_u32(e);
				break;
			case KVMGUARD_A_HC_ALLOWED:
				allowed = gnl_get_u64(e);
				break;
			case KVMGUARD_A_HC_DENIED:
				denied = gnl_get_u64(e);
				break;
			}
		}
		if (nr < 0 || nr > KVMGUARD_HC_NR_OTHER || st->seen[nr])
			return -EBADMSG;
		st->allowed[nr] = allowed;
		st->denied[nr] = denied;
		st->seen[nr] = true;
		st->entries++;
	}
	return 0;
}

int hcg_stats(struct gnl *g, uint64_t id, struct hcg_stats *st)
{
	static struct gnl_msg m;
	struct stats_arg arg = { st, 0 };

	kg_req(g, &m, KVMGUARD_CMD_VM_GET, false);
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, id);
	return gnl_transact(g, &m, stats_cb, &arg);
}

int hcg_policy(struct gnl *g, uint8_t cmd, const char *name, int mode,
	       int restrict_, uint64_t allow, int hyperv)
{
	static struct gnl_msg m;

	kg_req(g, &m, cmd, false);
	gnl_put_str(&m, KVMGUARD_A_POLICY_NAME, name);
	if (mode >= 0)
		gnl_put_u8(&m, KVMGUARD_A_POLICY_MODE, mode);
	if (restrict_ >= 0)
		gnl_put_u8(&m, KVMGUARD_A_POLICY_HC_RESTRICT, restrict_);
	if (restrict_ == 1)
		gnl_put_u64(&m, KVMGUARD_A_POLICY_HC_ALLOW, allow);
	if (hyperv >= 0)
		gnl_put_u8(&m, KVMGUARD_A_POLICY_HYPERV, hyperv);
	return gnl_transact(g, &m, NULL, NULL);
}

int hcg_subscribe(struct gnl *g)
{
	uint32_t grp = gnl_grp_id(g, KVMGUARD_MCGRP_EVENTS);

	return grp ? gnl_join(g, grp) : -ENOENT;
}

static bool take_hc_event(const struct nlmsghdr *nlh,
			  const struct nlattr **tb, void *ctx)
{
	struct kg_event_sink *sink = ctx;
	struct hcg_event *e = (struct hcg_event *)sink->ev + sink->n;
	uint8_t type;

	(void)nlh;
	if (!tb[KVMGUARD_A_EVENT_TYPE] || !tb[KVMGUARD_A_VM_ID])
		return false;
	type = gnl_get_u8(tb[KVMGUARD_A_EVENT_TYPE]);
	if ((type != KVMGUARD_EVENT_HYPERCALL && type != KVMGUARD_EVENT_HYPERV &&
	     type != KVMGUARD_EVENT_XEN) ||
	    (sink->vm_id && gnl_get_u64(tb[KVMGUARD_A_VM_ID]) != sink->vm_id) ||
	    sink->n >= sink->max)
		return false;
	memset(e, 0, sizeof(*e));
	e->type = type;
	e->vm_id = gnl_get_u64(tb[KVMGUARD_A_VM_ID]);
	e->nr = tb[KVMGUARD_A_EVENT_HC_NR] ?
		gnl_get_u64(tb[KVMGUARD_A_EVENT_HC_NR]) : ~0ull;
	e->action = tb[KVMGUARD_A_EVENT_ACTION] ?
		    gnl_get_u8(tb[KVMGUARD_A_EVENT_ACTION]) : 0xff;
	e->count = tb[KVMGUARD_A_EVENT_COUNT] ?
		   gnl_get_u64(tb[KVMGUARD_A_EVENT_COUNT]) : 0;
	if (tb[KVMGUARD_A_EVENT_HV_CODE] && gnl_alen(tb[KVMGUARD_A_EVENT_HV_CODE]) == 2) {
		e->has_hv_code = true;
		e->hv_code = gnl_get_u16(tb[KVMGUARD_A_EVENT_HV_CODE]);
	}
	if (tb[KVMGUARD_A_POLICY_NAME] && gnl_get_str(tb[KVMGUARD_A_POLICY_NAME])) {
		e->has_policy = true;
		snprintf(e->policy, sizeof(e->policy), "%s",
			 gnl_get_str(tb[KVMGUARD_A_POLICY_NAME]));
	}
	sink->n++;
	return true;
}

int hcg_events(struct gnl *sub, uint64_t vm_id, int ms, struct hcg_event *ev, int max)
{
	struct kg_event_sink sink = { .vm_id = vm_id, .ev = ev, .max = max };

	return kg_collect_events(sub, ms, 0, take_hc_event, &sink);
}

static void *run_thread(void *arg)
{
	struct hcg_runner *r = arg;
	struct vcpu *v = &r->vm->vcpus[r->vcpu];

	for (;;) {
		int ret = ioctl(v->fd, KVM_RUN, 0);

		if (ret < 0 && errno == EINTR) {
			if (r->stop) {
				r->last_exit = 0;
				break;
			}
			continue;
		}
		if (ret == 0 && v->run->exit_reason == KVM_EXIT_IO &&
		    v->run->io.port == HCG_PORT_HALTING) {
			r->halting = true;
			continue;
		}
		if (ret == 0 && v->run->exit_reason == KVM_EXIT_IO &&
		    (v->run->io.port == HCG_PORT_WOKEN ||
		     (r->guest_stop && v->run->io.port == HCG_PORT_DONE))) {
			r->woken = v->run->io.port == HCG_PORT_WOKEN;
			r->last_exit = 0;
			break;
		}
		r->last_exit = ret < 0 ? -errno : (int)v->run->exit_reason;
		if (r->last_exit == 0)
			r->last_exit = -1000;	/* KVM_EXIT_UNKNOWN */
		break;
	}
	r->done = true;
	return NULL;
}

int hcg_run_start(struct hcg_runner *r, struct vm *vm, int i, uint64_t rip)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct kvm_regs regs = { .rip = rip, .rflags = 2 };

	r->vm = vm;
	r->vcpu = i;
	r->stop = r->done = false;
	r->last_exit = 0;
	sigaction(SIGUSR1, &sa, NULL);	/* no SA_RESTART: KVM_RUN returns EINTR */
	vm->vcpus[i].run->immediate_exit = 0;
	if (rip && ioctl(vm->vcpus[i].fd, KVM_SET_REGS, &regs))
		return -errno;
	if (pthread_create(&r->thread, NULL, run_thread, r))
		return -EAGAIN;
	r->started = true;
	return 0;
}

int hcg_loop_start(struct hcg_runner *r, struct vm *vm, int i, uint32_t nr, uint16_t a1)
{
	char *mem = vm->slots[0].hva;

	memset(r, 0, sizeof(*r));
	memcpy(mem + HCG_LOOP_NR, &nr, 4);
	memcpy(mem + HCG_LOOP_A1, &a1, 2);
	memset(mem + HCG_COUNT_GPA, 0, 8);
	mem[HCG_STOP_GPA] = 0;
	r->guest_stop = true;
	return hcg_run_start(r, vm, i, HCG_LOOP_GPA);
}

int hcg_halt_start(struct hcg_runner *r, struct vm *vm, int i)
{
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };

	memset(r, 0, sizeof(*r));
	if (ioctl(vm->vcpus[i].fd, KVM_SET_MP_STATE, &mp))
		return -errno;
	return hcg_run_start(r, vm, i, HCG_HALT_GPA);
}

int hcg_run_stop(struct hcg_runner *r)
{
	struct kvm_run *run;

	if (!r->started)
		return -1;
	run = r->vm->vcpus[r->vcpu].run;
	if (r->guest_stop) {
		/* Let the loop finish its iteration and leave by itself. */
		((volatile char *)r->vm->slots[0].hva)[HCG_STOP_GPA] = 1;
		for (int i = 0; i < 1000 && !r->done; i++)
			usleep(2000);
	}
	r->stop = true;
	while (!r->done) {
		run->immediate_exit = 1;
		pthread_kill(r->thread, SIGUSR1);
		usleep(2000);
	}
	pthread_join(r->thread, NULL);
	run->immediate_exit = 0;
	r->started = false;
	return r->last_exit;
}

uint32_t hcg_loop_ok(struct vm *vm)
{
	return *(volatile uint32_t *)((char *)vm->slots[0].hva + HCG_COUNT_GPA);
}

uint32_t hcg_loop_eperm(struct vm *vm)
{
	return *(volatile uint32_t *)((char *)vm->slots[0].hva + HCG_COUNT_GPA + 4);
}

int hcg_klog_open(struct hcg_klog *k)
{
	k->fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (k->fd < 0)
		return -errno;
	lseek(k->fd, 0, SEEK_END);
	return 0;
}

static const char *const klog_bad[] = {
	"Oops", "BUG:", "WARNING:", "general protection", "KASAN", "UBSAN",
	"lockdep", "circular locking", "Call Trace", "NULL pointer", "RIP:",
	"stack-protector", "refcount_t", "list_add corruption", "list_del corruption",
	"suspicious RCU usage", "sleeping function called from invalid context",
	"inconsistent lock state",
};

int hcg_klog_problems(struct hcg_klog *k)
{
	char rec[2048];
	int bad = 0;

	if (k->fd < 0)
		return 0;
	for (;;) {
		ssize_t n = read(k->fd, rec, sizeof(rec) - 1);
		char *msg;

		if (n < 0 && errno == EPIPE)
			continue;	/* records overwritten: go on */
		if (n <= 0)
			break;
		rec[n] = 0;
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		msg[strcspn(msg, "\n")] = 0;
		for (size_t i = 0; i < sizeof(klog_bad) / sizeof(klog_bad[0]); i++) {
			if (strstr(msg, klog_bad[i])) {
				printf("# klog: %s\n", msg);
				bad++;
				break;
			}
		}
		if (strstr(msg, "kvmguard") && !strstr(msg, "kvmguard-test"))
			printf("# klog: %s\n", msg);
	}
	return bad;
}

void hcg_klog_close(struct hcg_klog *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
}

uint64_t hcg_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}
