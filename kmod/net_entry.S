/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Entries of the tap hooks, reached by ftrace direct calls from the first
 * instruction of (see net.c, "Taps"):
 *   netdev_tx_t tun_net_xmit(struct sk_buff *skb, struct net_device *dev)
 *	every frame a tap sends to its guest;
 *   rx_handler_result_t br_handle_frame(struct sk_buff **pskb)
 *	every frame a bridge port receives, a bridged tap's from its guest.
 *
 * Each is attached only while some tap port needs it, and then runs for
 * every tap or bridge port of the host, so the miss is the fast path: the
 * device's slot in kvmguard_net_cache is empty. It uses only %rax, %r10
 * and %r11, which hold nothing at a function's entry. A slot holding a
 * port goes to C with the port (NULL if the port is another device's:
 * the C looks the device up), saving the traced function's arguments; the
 * C returns true when it dropped the frame, and then the traced function
 * is skipped and its caller gets 0 (NETDEV_TX_OK, RX_HANDLER_CONSUMED), as
 * if the function had consumed the frame itself.
 *
 * These run with bottom halves disabled, inside the RCU read-side section
 * of the traced function's caller: a port is freed only after a grace
 * period that follows its removal from the cache.
 */
#include <linux/linkage.h>
#include <asm/nospec-branch.h>
#include <asm/unwind_hints.h>

#include "compat.h"
#include "offsets.h"

/* %rax = the cached port of the slot of the device in %rax, or 0 */
.macro PORT_SLOT
	movabsq	$KG_GOLDEN_RATIO_64, %r11
	imulq	%r11, %rax
	shrq	$(64 - KG_NET_CACHE_BITS), %rax
	leaq	kvmguard_net_cache(%rip), %r11
	movq	(%r11, %rax, 8), %rax
.endm

/*
 * Return 0 to the traced function's caller if the C verdict in %al says
 * the frame was dropped, else return into the traced function.
 */
.macro VERDICT
	testb	%al, %al
	jnz	1f
	RET
1:
	/* Skip the traced function: drop the return address into it. */
	xorl	%eax, %eax
	addq	$8, %rsp
	UNWIND_HINT_FUNC
	RET
.endm

	.text
/* Two arguments: %rdx and the other argument registers hold nothing yet. */
SYM_FUNC_START(kvmguard_tun_xmit_entry)
	KVMGUARD_CALL_DEPTH_ACCOUNT
	movq	%rsi, %rax
	PORT_SLOT
	testq	%rax, %rax
	jnz	.Ltx_port
	RET
.Ltx_port:
	/* kvmguard_net_tun_xmit(skb, dev, port or NULL) */
	xorl	%edx, %edx
	cmpq	KG_PORT_DEV(%rax), %rsi
	cmoveq	%rax, %rdx
	pushq	%rbp
	movq	%rsp, %rbp
	pushq	%rdi
	pushq	%rsi
	call	kvmguard_net_tun_xmit
	popq	%rsi
	popq	%rdi
	popq	%rbp
	VERDICT
SYM_FUNC_END(kvmguard_tun_xmit_entry)

/* One argument: %rsi and the others hold nothing yet. */
SYM_FUNC_START(kvmguard_br_frame_entry)
	KVMGUARD_CALL_DEPTH_ACCOUNT
	movq	(%rdi), %rax
	movq	KG_SKB_DEV(%rax), %rax
	movq	%rax, %r10
	PORT_SLOT
	testq	%rax, %rax
	jnz	.Lbr_port
	RET
.Lbr_port:
	/* kvmguard_net_br_frame(skb, port or NULL) */
	xorl	%esi, %esi
	cmpq	KG_PORT_DEV(%rax), %r10
	cmoveq	%rax, %rsi
	pushq	%rbp
	movq	%rsp, %rbp
	pushq	%rdi
	movq	(%rdi), %rdi
	call	kvmguard_net_br_frame
	popq	%rdi
	popq	%rbp
	VERDICT
SYM_FUNC_END(kvmguard_br_frame_entry)
