/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Entry of the hypercall hook, reached by an ftrace direct call from the
 * first instruction of KVM's hypercall function (see hypercall.c):
 *   6.1:  int kvm_emulate_hypercall(struct kvm_vcpu *vcpu)
 *   6.12: unsigned long __kvm_emulate_hypercall(struct kvm_vcpu *vcpu,
 *		unsigned long nr, a0, a1, a2, a3, int op_64_bit, int cpl)
 *
 * The fast path decides "allowed" for a VM in the lookup cache, counts the
 * call in a per-CPU counter and returns into KVM. It runs in the vCPU
 * thread, preemptible, and uses only %rax, %r10 and %r11, which hold
 * nothing at a function's entry, so it saves nothing. Everything else
 * (a cache miss, a number of 64 or more, a call the bitmap does not allow,
 * the Hyper-V path on 6.1) goes to kvmguard_hc_slow() in C, which returns
 * a verdict in %rax (and on 6.12 KVM's return value in %rdx). A refused
 * call skips KVM's function: the entry code drops the return address into
 * it, then
 *  - 6.12: returns that value to KVM's caller, as if KVM's function had
 *    returned it (the caller moves RIP past the instruction);
 *  - 6.1, and the Hyper-V entry on both: C has written the guest's
 *    registers, and the entry code jumps to
 *    kvm_skip_emulated_instruction(vcpu), whose return goes to KVM's
 *    caller.
 * On 6.1 C may also route the call (HC_ROUTE): a Hyper-V or Xen call,
 * decided on one reading of the state KVM routes by, goes straight to
 * KVM's handler for it (its address in %rdx), which KVM's function would
 * have tail-called; returning into KVM would let it read that state again.
 *
 * Nothing that runs with a kvmguard frame on the stack may sleep. The
 * module's text is freed after an RCU-tasks grace period
 * (kvmguard_hypercall_uninit()), and a task that sleeps is quiescent for
 * RCU-tasks: one that slept in a function called from here could return
 * into freed code. kvm_skip_emulated_instruction() can sleep (on SVM
 * without NRIPS it decodes the instruction from guest memory, which can
 * fault), hence the tail jump: when it runs, this code is no longer on the
 * stack. The C slow paths only read, count, take spinlocks, print
 * rate-limited messages and send GFP_ATOMIC events; being preempted there
 * is fine, RCU-tasks waits for such a task.
 * The jump is direct: it needs no ENDBR (IBT) and is no call to account
 * (call-depth tracking: the return stack and its count both keep the
 * entry of the dropped return address, which a later return consumes).
 *
 * Cached kvmguard_vm entries are freed only after an RCU-tasks grace
 * period, which waits for any task inside this code.
 */
#include <linux/linkage.h>
#include <asm/nospec-branch.h>
#include <asm/unwind_hints.h>

#include "compat.h"
#include "offsets.h"

	.text
SYM_FUNC_START(kvmguard_hc_entry)
	KVMGUARD_CALL_DEPTH_ACCOUNT
	/* vm = cache[(vcpu->kvm >> shift) % slots], if it is vcpu->kvm's */
	movq	KG_VCPU_KVM(%rdi), %rax
	movq	%rax, %r10
	shrq	$KG_VM_CACHE_SHIFT, %r10
	andl	$(KG_VM_CACHE_SLOTS - 1), %r10d
	leaq	kvmguard_vm_cache(%rip), %r11
	movq	(%r11, %r10, 8), %r11
	testq	%r11, %r11
	jz	.Lslow
	cmpq	KG_VM_KVM(%r11), %rax
	jne	.Lslow
#ifdef KVMGUARD_HC_INNER
	/* The number is the second argument, still untruncated. */
	movq	%rsi, %rax
#else
	/* Hyper-V's hypercall path starts here too on 6.1. */
	cmpb	$0, KG_VCPU_HYPERV_ENABLED(%rdi)
	jne	.Lslow
	movq	KG_VCPU_RAX(%rdi), %rax
#endif
	/* Unsigned: a set upper half (to be truncated or not) goes slow. */
	cmpq	$64, %rax
	jae	.Lslow
	btq	%rax, KG_VM_HC_ALLOW(%r11)
	jnc	.Lslow
	movq	KG_VM_HC_COUNTS(%r11), %r10
	incq	%gs:(%r10, %rax, 8)
	RET

.Lslow:
	pushq	%rbp
	movq	%rsp, %rbp
	pushq	%rdi
	pushq	%rsi
	pushq	%rdx
	pushq	%rcx
	pushq	%r8
	pushq	%r9
#ifdef KVMGUARD_HC_INNER
	/*
	 * op_64_bit and cpl, the seventh and eighth arguments, sit above
	 * both return addresses.
	 */
	movl	24(%rbp), %edx
	movl	32(%rbp), %ecx
#endif
	call	kvmguard_hc_slow
	movq	%rdx, %r11
	popq	%r9
	popq	%r8
	popq	%rcx
	popq	%rdx
	popq	%rsi
	popq	%rdi
	popq	%rbp
	testq	%rax, %rax
	jnz	.Lrefuse
	RET

.Lrefuse:
	/* Skip KVM's function: drop the return address into it. */
	addq	$8, %rsp
	UNWIND_HINT_FUNC
#ifdef KVMGUARD_HC_INNER
	movq	%r11, %rax
	RET
#else
	cmpq	$2, %rax		/* HC_ROUTE, hypercall.c */
	je	.Lroute
	/* C wrote RAX, %rdi is the vCPU again; if it sleeps, we are gone. */
	jmp	kvm_skip_emulated_instruction
.Lroute:
	/*
	 * KVM's Hyper-V or Xen handler, at %r11, as KVM's function would
	 * have called it: same argument, its return goes to KVM's caller.
	 */
	JMP_NOSPEC r11
#endif
SYM_FUNC_END(kvmguard_hc_entry)

/*
 * Entry of the Hyper-V hook, at the first instruction of
 * int kvm_hv_hypercall(struct kvm_vcpu *vcpu). Rare enough to go to C
 * every time; a refusal skips the instruction as on 6.1 above.
 */
SYM_FUNC_START(kvmguard_hv_entry)
	KVMGUARD_CALL_DEPTH_ACCOUNT
	pushq	%rbp
	movq	%rsp, %rbp
	pushq	%rdi
	call	kvmguard_hv_slow
	popq	%rdi
	popq	%rbp
	testq	%rax, %rax
	jnz	.Lhv_refuse
	RET

.Lhv_refuse:
	addq	$8, %rsp
	UNWIND_HINT_FUNC
	jmp	kvm_skip_emulated_instruction
SYM_FUNC_END(kvmguard_hv_entry)
