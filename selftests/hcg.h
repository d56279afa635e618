/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hcg: hypercall guests for the kvmguard selftests. One vmmcall made with
 * registers chosen by the host, in real, 32-bit protected or 64-bit long
 * mode; a real-mode guest that loops on one hypercall and counts its
 * results in guest memory; per-VM hypercall counters and violation events
 * as the module reports them; a watch on the kernel log.
 */
#ifndef KVMGUARD_SELFTEST_HCG_H
#define KVMGUARD_SELFTEST_HCG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>
#include <linux/kvmguard.h>

#include "gnl.h"
#include "vm.h"

/* Guest memory layout in slot 0 (VM_SLOT0_SIZE bytes at GPA 0). */
#define HCG_CALL_GPA	0x1000	/* vmmcall; out HCG_PORT_DONE, al; jmp */
#define HCG_LOOP_GPA	0x1100	/* real-mode loop, see hcg.c */
#define HCG_LOOP_NR	(HCG_LOOP_GPA + 9)	/* imm32 of its mov eax */
#define HCG_LOOP_A1	(HCG_LOOP_GPA + 0x11)	/* imm16 of its mov cx */
#define HCG_HALT_GPA	0x1200	/* cli; out HCG_PORT_HALTING; hlt; out HCG_PORT_WOKEN */
#define HCG_COUNT_GPA	0x2000	/* u32 ok, u32 eperm (written by the loop) */
#define HCG_STOP_GPA	0x2008	/* u8: non-zero stops the loop */
#define HCG_DATA_GPA	0x3000	/* a page a hypercall may write */
#define HCG_PT_GPA	0x8000	/* PML4, PDPT, PD for long mode */

#define HCG_PORT_DONE		0x10
#define HCG_PORT_WOKEN		0x11
#define HCG_PORT_HALTING	0x12

/* What a 16/32-bit and a 64-bit caller get back for -KVM_EPERM. */
#define HCG_EPERM32	0xffffffffULL
#define HCG_EPERM64	0xffffffffffffffffULL

enum hcg_mode { HCG_REAL16, HCG_PROT32, HCG_LONG64 };

/* A VM with slot 0 holding the code above; no vCPU yet. 0 or -errno. */
int hcg_vm_create(struct vm *vm, bool irqchip);
/* Put vCPU index @i into @mode (segments, CR0/CR4/EFER, page tables). */
int hcg_set_mode(struct vm *vm, int i, enum hcg_mode mode);
/*
 * Enable Hyper-V hypercalls on vCPU index @i: KVM's supported CPUID with
 * its 0x4000xxxx leaves replaced by the Hyper-V ones, and
 * HV_X64_MSR_GUEST_OS_ID set. 0, -EOPNOTSUPP without KVM_CAP_HYPERV, or
 * -errno.
 */
int hcg_hv_enable(struct vm *vm, int i);

struct hcg_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, r8;
};

struct hcg_result {
	int exit;		/* exit reason, -errno of KVM_RUN */
	uint16_t port;		/* of a KVM_EXIT_IO */
	uint64_t rip;		/* after the exit */
	struct kvm_regs regs;	/* after the exit */
};

/*
 * Run vCPU index @i once from the vmmcall at HCG_CALL_GPA with @in, until
 * the next exit; normally the out right after the vmmcall. 0 if the vCPU
 * stopped at that out (RIP = HCG_CALL_GPA + 3), else -1 (see @res; exit
 * -EINTR: no exit within HCG_CALL_TIMEOUT_S).
 */
#define HCG_CALL_TIMEOUT_S	3
int hcg_call(struct vm *vm, int i, const struct hcg_regs *in, struct hcg_result *res);

/* Per-number counters (index KVMGUARD_HC_NR_OTHER: 64 and up). */
struct hcg_stats {
	uint64_t allowed[KVMGUARD_HC_NR_OTHER + 1];
	uint64_t denied[KVMGUARD_HC_NR_OTHER + 1];
	bool seen[KVMGUARD_HC_NR_OTHER + 1];
	int entries;
	uint64_t hv_allowed, hv_denied;
	bool has_hv;
};

/* VM_GET of @id; 0 or -errno (-EBADMSG for a malformed VM_HC_STATS). */
int hcg_stats(struct gnl *g, uint64_t id, struct hcg_stats *st);

/*
 * POLICY_NEW/SET: mode, restrict_ and hyperv < 0 are not sent; the
 * allowlist is sent (with the restriction) when restrict_ is 1.
 */
int hcg_policy(struct gnl *g, uint8_t cmd, const char *name, int mode,
	       int restrict_, uint64_t allow, int hyperv);

struct hcg_event {
	uint8_t type;
	uint64_t vm_id;
	uint64_t nr;		/* ~0ull: absent */
	uint8_t action;		/* 0xff: absent */
	uint64_t count;		/* 0: absent */
	bool has_hv_code;	/* HYPERV: EVENT_HV_CODE */
	uint16_t hv_code;
	bool has_policy;
	char policy[KVMGUARD_NAME_MAX + 1];
};

/* Subscribe @g (opened with kg_open) to the events group; 0 or -errno. */
int hcg_subscribe(struct gnl *g);
/*
 * Collect HYPERCALL/HYPERV/XEN events for @vm_id (0: any VM) for @ms
 * milliseconds; returns how many were stored (at most @max).
 */
int hcg_events(struct gnl *sub, uint64_t vm_id, int ms, struct hcg_event *ev, int max);

/*
 * A thread that keeps vCPU index @vcpu in KVM_RUN until stopped. An exit
 * at HCG_PORT_HALTING sets halting and goes on; one at HCG_PORT_WOKEN sets
 * woken and ends the thread, as does any other exit (last_exit).
 */
struct hcg_runner {
	struct vm *vm;
	int vcpu;
	pthread_t thread;
	volatile bool stop;
	volatile bool done;
	volatile bool halting;
	volatile bool woken;
	volatile int last_exit;	/* exit reason or -errno that ended it */
	bool started;
	bool guest_stop;	/* the loop: stopped through HCG_STOP_GPA */
};

/* Start the thread; from @rip if not 0, else where the vCPU stands. */
int hcg_run_start(struct hcg_runner *r, struct vm *vm, int i, uint64_t rip);
/*
 * Stop and join (the loop is asked through HCG_STOP_GPA first, then a
 * signal); 0 if it stopped only because we asked (or woke).
 */
int hcg_run_stop(struct hcg_runner *r);
/*
 * The real-mode loop (HCG_LOOP_GPA) making hypercall @nr with a0 = 0 and
 * a1 = @a1 (16 bits). It counts results other than (u32)-KVM_EPERM at
 * HCG_COUNT_GPA and -KVM_EPERM at HCG_COUNT_GPA + 4.
 */
int hcg_loop_start(struct hcg_runner *r, struct vm *vm, int i, uint32_t nr, uint16_t a1);
/* vCPU @i made runnable (an AP waits for SIPI otherwise) at HCG_HALT_GPA. */
int hcg_halt_start(struct hcg_runner *r, struct vm *vm, int i);
uint32_t hcg_loop_ok(struct vm *vm);
uint32_t hcg_loop_eperm(struct vm *vm);

/* Kernel log: remember where it ends now; later, report problems since. */
struct hcg_klog {
	int fd;
};

int hcg_klog_open(struct hcg_klog *k);
/*
 * Read the log since hcg_klog_open() (or the previous call): print every
 * kvmguard line and every line that shows an oops, BUG, WARNING, KASAN,
 * UBSAN or lockdep report, with "# klog: "; return how many of the latter.
 */
int hcg_klog_problems(struct hcg_klog *k);
void hcg_klog_close(struct hcg_klog *k);

/* Nanoseconds of CLOCK_MONOTONIC. */
uint64_t hcg_mono_ns(void);

#endif
