/* SPDX-License-Identifier: GPL-2.0 */
/*
 * netg: helpers for the network selftests (net_*): the test topology (a
 * bridge, taps or macvtaps played by the test as guests, a veth uplink into
 * a network namespace with VLAN subinterfaces), frames with a marker the
 * receivers recognise, policies with network rules, device bindings, the
 * per-device counters of VM_NET_DEVS and NET events.
 *
 * The test plays each guest: writing to a tap fd is a frame from the guest,
 * reading one is a frame to the guest. Devices are made with iproute2
 * (NETG_IP, by full path: the test host's busybox has its own ip applet).
 */
#ifndef KVMGUARD_SELFTEST_NETG_H
#define KVMGUARD_SELFTEST_NETG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <net/if.h>
#include <linux/kvmguard.h>

#include "gnl.h"
#include "hcg.h"
#include "kg.h"
#include "vm.h"

#define NETG_IP		"/usr/sbin/ip"
#define NETG_BRIDGE	"/usr/sbin/bridge"

/* Every device and namespace of a test starts with this (netg_cleanup). */
#define NETG_PREFIX	"kgn"
#define NETG_NS		"kgnup"		/* the uplink's network namespace */
#define NETG_BR		"kgnbr"
#define NETG_UP		"kgnup"		/* uplink veth, bridge side */
#define NETG_UPP	"kgnup-p"	/* its peer, in NETG_NS */

/* Ethertype of the test frames (IEEE 802 local experimental). */
#define NETG_ETH_TEST	0x88b5
#define ETH_Q		0x8100
#define ETH_AD		0x88a8

#define NETG_MAX_PORTS	4
#define NETG_FRAME_MAX	65600

/* One outer-to-inner VLAN header of a frame: TPID and TCI. */
struct netg_tag {
	uint16_t tpid;
	uint16_t tci;
};

#define NETG_Q(vid)	((struct netg_tag){ ETH_Q, (vid) })
#define NETG_AD(vid)	((struct netg_tag){ ETH_AD, (vid) })

/* A test frame as received: its tags, ethertype and marker. */
struct netg_pkt {
	int ntags;
	struct netg_tag tags[3];
	uint16_t etype;		/* after the tags */
	bool ours;		/* NETG_ETH_TEST with our cookie */
	uint32_t seq;
	size_t len;		/* whole frame, tags included */
	uint8_t src[6], dst[6];
};

/* A frame of ours: dst, src (MAC of port @from), @tags, marker with @seq. */
size_t netg_frame(uint8_t *buf, const uint8_t *dst, const uint8_t *src,
		  const struct netg_tag *tags, int ntags, uint32_t seq);
/* Parse a frame; false if it is too short to be Ethernet. */
bool netg_parse(const uint8_t *buf, size_t len, struct netg_pkt *p);
/* The marker of this process's frames (random per process). */
uint32_t netg_cookie(void);

extern const uint8_t netg_bcast[6];
/* Locally administered MAC of test port @i (02:6b:67:00:00:i+1). */
void netg_mac(int i, uint8_t *mac);

/* A tap (tun IFF_TAP | IFF_NO_PI) or macvtap queue the test plays the guest on. */
struct netg_port {
	int fd;
	char name[IFNAMSIZ];
	int ifindex;
	bool vnet;		/* frames carry a struct virtio_net_hdr */
	bool macvtap;
};

#define NETG_VNET	1u	/* IFF_VNET_HDR (10-byte header), TSO/CSUM offloads on */

/*
 * Create tap @name (not persistent: it goes away with the fd), with ifindex
 * @ifindex if not 0 (TUNSETIFINDEX), IPv6 off, down. 0 or -errno.
 */
int netg_tap_open(struct netg_port *p, const char *name, unsigned int flags, int ifindex);
/* Open the queue of macvtap @name (/dev/tapIFINDEX). 0 or -errno. */
int netg_macvtap_open(struct netg_port *p, const char *name, unsigned int flags);
void netg_port_close(struct netg_port *p);

/* One frame from the guest (a write of @len bytes, header included if vnet). */
int netg_send(const struct netg_port *p, const void *buf, size_t len);
/* A test frame from the guest, untagged or with @tags, to @dst. */
int netg_send_test(const struct netg_port *p, const uint8_t *dst, int from,
		   const struct netg_tag *tags, int ntags, uint32_t seq);

/*
 * Receive one frame on @fd (a port's fd or a packet socket) within @ms:
 * its length, -ETIMEDOUT or -errno. On packet sockets an out-of-band VLAN
 * tag (PACKET_AUXDATA) is put back into the frame and our own outgoing
 * frames are skipped, so the buffer holds the frame as on the wire.
 */
int netg_recv(int fd, void *buf, size_t size, int ms);

/*
 * Collect our test frames on @fd for up to @ms (0: those queued now),
 * returning early once @want (> 0) came. Stores up to @max of them in @out
 * (may be NULL); returns the number of our frames seen.
 */
int netg_collect(int fd, int want, int ms, struct netg_pkt *out, int max);
/* Drop whatever is queued on @fd. */
void netg_flush(int fd);

/* Run ip -batch with @cmds (one command per line); 0, or -1 with stderr logged. */
int netg_ip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same for bridge -batch. */
int netg_bridge(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* IPv6 off on @dev ("all", "default" too) of the current namespace. */
int netg_noipv6(const char *dev);
/* ifindex of @name in the current namespace, or -errno. */
int netg_ifindex(const char *name);
/* Remove links and namespaces named NETG_PREFIX* that a test left. */
void netg_cleanup(void);

/* Enter namespace @ns (NULL: back to the initial one) for this thread. */
int netg_enter(const char *ns);
/* AF_PACKET socket on @ifname of namespace @ns (NULL: ours), non-blocking. */
int netg_psock(const char *ns, const char *ifname);
/* Send a frame on a packet socket. */
int netg_psend(int fd, const void *buf, size_t len);
int netg_psend_test(int fd, const uint8_t *dst, const uint8_t *src,
		    const struct netg_tag *tags, int ntags, uint32_t seq);
/* With PACKET_VNET_HDR: frames carry a struct virtio_net_hdr. */
int netg_psock_vnet(int fd);

/* Iproute2 there? 0, or -1 with the reason in @why. */
int netg_prereq(char *why, size_t wsz);

/* ---- topology ---- */

#define NETG_FILTERING	1u	/* bridge with vlan_filtering 1; VM VIDs tagged on ports */
#define NETG_MACVTAP	2u	/* macvtaps (bridge mode) on the uplink veth, no bridge */
#define NETG_PORT_VNET	4u	/* ports with NETG_VNET */

/* Uplink sockets in NETG_NS: the parent device and its VLAN 100 / 200 devices. */
enum { NETG_UP_ALL, NETG_UP_100, NETG_UP_200, NETG_UP_N };

struct netg_topo {
	unsigned int flags;
	int nports;
	struct netg_port port[NETG_MAX_PORTS];
	uint16_t vid[NETG_MAX_PORTS];	/* for NETG_FILTERING: VID tagged on the port */
	int up[NETG_UP_N];		/* packet sockets in NETG_NS */
	bool shared;			/* main()'s: not ours to take down */
};

/*
 * Build the topology with @nports ports "kgna".. (VIDs @vids for
 * NETG_FILTERING), all up, IPv6 off everywhere. 0 or -errno.
 */
int netg_topo_up(struct netg_topo *t, unsigned int flags, int nports, const uint16_t *vids);
void netg_topo_down(struct netg_topo *t);

/* ---- kvmguard requests ---- */

/*
 * Network rules of a policy request; a field left 0 is not sent. mode:
 * NETG_ENFORCE or NETG_AUDIT; tag: a VID, or NETG_NOTAG to send 0 (none);
 * isolate: NETG_ISO_ON / NETG_ISO_OFF; trunk: sent if trunk_set.
 */
struct netg_rules {
	int mode;
	int tag;
	int isolate;
	bool trunk_set;
	int ntrunk;
	uint16_t trunk[8];
};

#define NETG_ENFORCE	1
#define NETG_AUDIT	2
#define NETG_NOTAG	0x10000
#define NETG_ISO_ON	1
#define NETG_ISO_OFF	2

#define NETG_RULES(...) ((struct netg_rules){ __VA_ARGS__ })

int netg_policy(struct gnl *g, uint8_t cmd, const char *name, struct netg_rules r);
#define netg_policy_new(g, name, ...) \
	netg_policy(g, KVMGUARD_CMD_POLICY_NEW, name, NETG_RULES(__VA_ARGS__))
#define netg_policy_set(g, name, ...) \
	netg_policy(g, KVMGUARD_CMD_POLICY_SET, name, NETG_RULES(__VA_ARGS__))

/* NET_BIND of @ifname (or @ifindex if @ifname is NULL) to VM @vm_id; 0 or -errno. */
int netg_bind(struct gnl *g, uint64_t vm_id, const char *ifname, uint32_t ifindex);
int netg_unbind(struct gnl *g, const char *ifname, uint32_t ifindex);

/* One KVMGUARD_A_NET_DEV of VM_NET_DEVS. */
struct netg_dev {
	uint32_t ifindex;
	char ifname[IFNAMSIZ];
	uint8_t bound_by;
	uint64_t tagged, forwarded, delivered;
	uint64_t tag_denied, segment_denied, isolate_denied;
	uint32_t missing;	/* counters absent: bit per counter */
};

/*
 * VM_GET of @vm_id: its devices (at most @max). The number of devices,
 * -EBADMSG if VM_NET_DEVS is absent or malformed, or -errno.
 */
int netg_devs(struct gnl *g, uint64_t vm_id, struct netg_dev *out, int max);
/* The device @ifname of VM @vm_id: 0, -ENOENT if it is not bound to it, -errno. */
int netg_dev(struct gnl *g, uint64_t vm_id, const char *ifname, struct netg_dev *d);

/* Expected counters: tagged, forwarded, delivered, tag/segment/isolate denied. */
#define NETG_CTRS(t, f, d, td, sd, id) ((struct netg_dev){ .tagged = (t), \
	.forwarded = (f), .delivered = (d), .tag_denied = (td), \
	.segment_denied = (sd), .isolate_denied = (id) })

/*
 * Do the counters of @ifname on VM @vm_id equal @want? 0, or -1 with what
 * differs in @why.
 */
int netg_dev_check(struct gnl *g, uint64_t vm_id, const char *ifname,
		   const struct netg_dev *want, char *why, size_t wsz);

/* A NET event. */
struct netg_event {
	uint64_t vm_id;
	uint32_t pid;
	bool has_policy;
	char policy[KVMGUARD_NAME_MAX + 1];
	uint8_t rule, dir, action;
	uint64_t count;
	bool has_ifindex, has_ifname, has_vid, has_time;
	uint32_t ifindex;
	char ifname[IFNAMSIZ];
	uint16_t vid;
};

/*
 * NET events of @vm_id (0: any) from @sub (subscribed with hcg_subscribe)
 * within @ms, returning early once @want (> 0) came. Returns how many were
 * stored (at most @max).
 */
int netg_events(struct gnl *sub, uint64_t vm_id, int want, int ms,
		struct netg_event *ev, int max);

/* A VM of this process with @policy (NULL: none): memg_vm. */
int netg_vm(struct gnl *g, struct vm *vm, const char *policy, uint64_t *id);

/* ---- a test's lab: the topology, VMs bound to its ports, netlink ---- */

#define NETG_POLICY	"kgn-"	/* prefix of the tests' policies */

struct netg_lab {
	struct gnl g;		/* requests */
	struct gnl sub;		/* events */
	struct netg_topo t;
	struct vm vm[NETG_MAX_PORTS];
	bool has_vm[NETG_MAX_PORTS];
	uint64_t id[NETG_MAX_PORTS];
	struct hcg_klog klog;	/* the kernel log since the lab came up */
};

/*
 * Netlink, the events subscription, the kernel log watch and the topology.
 * 0 or -errno.
 */
int netg_lab_up(struct netg_lab *l, unsigned int flags, int nports, const uint16_t *vids);
/*
 * VM @i (destroying the one there was) with @policy (NULL: none), port @i
 * bound to it. 0 or -errno.
 */
int netg_lab_vm(struct netg_lab *l, int i, const char *policy);
void netg_lab_vm_destroy(struct netg_lab *l, int i);
/* Everything but the kernel log watch (see NETG_LAB_DOWN). */
void netg_lab_down(struct netg_lab *l);

/*
 * In a teardown: the lab down, and nothing went wrong in the kernel log
 * since it came up (an oops, a WARNING, a KASAN or lockdep report).
 */
#define NETG_LAB_DOWN(l) do {						\
	netg_lab_down(l);						\
	EXPECT_EQ(0, hcg_klog_problems(&(l)->klog))			\
		TH_LOG("the kernel log shows problems");		\
	hcg_klog_close(&(l)->klog);					\
} while (0)

/* In a test: the counters of port @i (bound to VM @i) are exactly these. */
#define NETG_EXPECT_CTRS(l, i, ...) do {				\
	struct netg_dev __want = NETG_CTRS(__VA_ARGS__);		\
	char __why[400];						\
	EXPECT_EQ(0, netg_dev_check(&(l)->g, (l)->id[i], (l)->t.port[i].name, \
				    &__want, __why, sizeof(__why)))	\
		TH_LOG("%s", __why);					\
} while (0)

/*
 * A topology built once by main() for all the tests of a binary (building
 * one takes a few ip(8) runs, slow on the debug kernel): a lab whose flags
 * (but NETG_FILTERING, switched on the bridge as needed) and port count fit
 * uses it instead of its own. The tests (forked children) inherit its fds
 * and must leave its devices as they found them.
 */
int netg_shared_up(unsigned int flags, int nports, const uint16_t *vids);
void netg_shared_down(void);

/* Skip (exit 4) unless KVM, the module and iproute2 are there. */
void netg_prereq_or_skip(void);

#define NETG_HARNESS_MAIN_SHARED(flags, nports, vids)			\
	static void __attribute__((constructor))			\
	__constructor_order_last(void)					\
	{								\
		if (!__constructor_order)				\
			__constructor_order = _CONSTRUCTOR_ORDER_BACKWARD; \
	}								\
	int main(int argc, char **argv)					\
	{								\
		int __ret;						\
									\
		setvbuf(stdout, NULL, _IOLBF, 0);			\
		netg_prereq_or_skip();					\
		kg_prereq(KG_NEED_KVM | KG_NEED_MODULE);		\
		if ((nports) && netg_shared_up(flags, nports, vids)) {	\
			printf("Bail out! the test topology cannot be built\n"); \
			return 1;					\
		}							\
		__ret = test_harness_run(argc, argv);			\
		netg_shared_down();					\
		return __ret;						\
	}

/* Each test builds its own topology. */
#define NETG_HARNESS_MAIN NETG_HARNESS_MAIN_SHARED(0, 0, NULL)

#endif
