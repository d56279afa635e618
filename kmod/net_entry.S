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
 * every tap or bridge port of the host, so a miss must cost little: the
 * device's slot in kvmguard_net_cache (by ifindex) holds the port of no
 * device, kvmguard_net_no_port.
 *
 * Where the slot holds the device's port, the entry handles the common
 * frame of an access port by itself, as port_to_guest() and
 * port_from_guest() would: toward the guest, a frame tagged the access
 * VID in the metadata (and no inner tag) loses the tag; from the guest,
 * an untagged frame gets it. Both count the frame (a port whose hooks are
 * changing, or closed because one is missing, has no VLAN word: its frames
 * all go to the C, which drops a closed port's). Everything else goes
 * to C with the port (NULL if the slot holds another device's port: the
 * C looks the device up), saving the traced function's arguments; the C
 * returns true when it dropped the frame, and then the traced function is
 * skipped and its caller gets 0 (NETDEV_TX_OK, RX_HANDLER_CONSUMED), as if
 * the function had consumed the frame itself. The entries use only %rax,
 * %r10 and %r11, which hold nothing at a function's entry.
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

/*
 * %rax = the port of the device \dev, from its slot (by ifindex). If the
 * slot holds no port (kvmguard_net_no_port), return from the entry; if it
 * holds another device's, go to \c with %rax = 0: the C looks it up.
 */
.macro PORT_OF dev, c
	movl	KG_DEV_IFINDEX(\dev), %eax
	andl	$KG_NET_CACHE_MASK, %eax
	movq	kvmguard_net_cache(, %rax, 8), %rax
	cmpq	KG_PORT_DEV(%rax), \dev
	je	9f
	cmpq	$kvmguard_net_no_port, %rax
	jne	8f
	RET
8:
	xorl	%eax, %eax
	jmp	\c
9:
.endm

/*
 * The hardware-accelerated VLAN tag of the sk_buff at \skb: its VLAN word
 * is the 32 bits of vlan_proto and vlan_tci (see port_vlan_word()).
 */
#ifdef KVMGUARD_SKB_VLAN_PRESENT_BIT
/* Jump to \yes if there is a tag. */
.macro SKB_VLAN_PRESENT skb, yes
	testb	$KG_SKB_VLAN_PRESENT_BIT, KG_SKB_VLAN_PRESENT(\skb)
	jnz	\yes
.endm
/* Jump to \yes if there is none but the word may hold a stale one. */
.macro SKB_VLAN_STALE skb, yes
	testb	$KG_SKB_VLAN_PRESENT_BIT, KG_SKB_VLAN_PRESENT(\skb)
	jz	\yes
.endm
.macro SKB_VLAN_PUT skb, word
	movl	\word, KG_SKB_VLAN(\skb)
	orb	$KG_SKB_VLAN_PRESENT_BIT, KG_SKB_VLAN_PRESENT(\skb)
.endm
.macro SKB_VLAN_CLEAR skb
	andb	$(~KG_SKB_VLAN_PRESENT_BIT & 0xff), KG_SKB_VLAN_PRESENT(\skb)
.endm
#else
.macro SKB_VLAN_PRESENT skb, yes
	cmpl	$0, KG_SKB_VLAN(\skb)
	jne	\yes
.endm
.macro SKB_VLAN_STALE skb, yes
.endm
.macro SKB_VLAN_PUT skb, word
	movl	\word, KG_SKB_VLAN(\skb)
.endm
.macro SKB_VLAN_CLEAR skb
	movl	$0, KG_SKB_VLAN(\skb)
.endm
#endif

/* Jump to \no unless there is a tag and its word & mask == \want; %r10. */
.macro SKB_VLAN_MATCH skb, want, no
	SKB_VLAN_STALE \skb, \no
	movl	KG_SKB_VLAN(\skb), %r10d
	andl	$KG_PORT_VLAN_MASK, %r10d
	cmpl	\want, %r10d
	jne	\no
.endm

/* Jump to \yes if the protocol of the frame \skb is a VLAN's: an inner tag. */
.macro SKB_INNER_TAG skb, yes
	cmpw	$KG_ETH_P_8021Q, KG_SKB_PROTOCOL(\skb)
	je	\yes
	cmpw	$KG_ETH_P_8021AD, KG_SKB_PROTOCOL(\skb)
	je	\yes
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
	PORT_OF %rsi, .Ltx_c
	/* The access VID, in the metadata, and no inner tag: untag. */
	SKB_VLAN_MATCH %rdi, KG_PORT_TO_GUEST_VLAN(%rax), .Ltx_c
	SKB_INNER_TAG %rdi, .Ltx_c
	SKB_VLAN_CLEAR %rdi
	movq	KG_PORT_STATS(%rax), %r10
	incq	%gs:KG_STATS_DELIVERED(%r10)
	RET
.Ltx_c:
	/* kvmguard_net_tun_xmit(skb, dev, port or NULL) */
	movq	%rax, %rdx
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
	movq	(%rdi), %r11
	movq	KG_SKB_DEV(%r11), %r10
	PORT_OF %r10, .Lbr_c
	/* No tag of the guest's own: tag the access VID. */
	movl	KG_PORT_FROM_GUEST_VLAN(%rax), %r10d
	cmpl	$KG_PORT_NO_VLAN, %r10d
	je	.Lbr_c
	SKB_VLAN_PRESENT %r11, .Lbr_c
	SKB_INNER_TAG %r11, .Lbr_c
	SKB_VLAN_PUT %r11, %r10d
	movq	KG_PORT_STATS(%rax), %r10
	incq	%gs:KG_STATS_TAGGED(%r10)
	RET
.Lbr_c:
	/* kvmguard_net_br_frame(skb, port or NULL) */
	movq	%rax, %rsi
	pushq	%rbp
	movq	%rsp, %rbp
	pushq	%rdi
	movq	%r11, %rdi
	call	kvmguard_net_br_frame
	popq	%rdi
	popq	%rbp
	VERDICT
SYM_FUNC_END(kvmguard_br_frame_entry)
