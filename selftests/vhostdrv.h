/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhostdrv: drive /dev/vhost-net the way a VMM does, without a guest.
 *
 * The process plays the VMM and the guest's virtio-net driver at once: it
 * owns one memory region (the "guest RAM", GPA 0..), lays out the RX and TX
 * virtqueues of a virtio-net device in it, hands them to vhost-net with a
 * tap (or macvtap) fd as backend, then posts frames on TX and buffers on
 * RX, kicks, and reads the used rings. Features: VIRTIO_F_VERSION_1 only
 * (12-byte virtio_net_hdr_mrg_rxbuf, kept by the tap), no event index, no
 * mergeable buffers: one RX buffer holds the header and a whole frame.
 *
 * Every function returns 0 (or a count/length) on success and -errno on
 * failure; none exits. Not thread-safe: one thread per struct vhd.
 */
#ifndef KVMGUARD_SELFTEST_VHOSTDRV_H
#define KVMGUARD_SELFTEST_VHOSTDRV_H

#include <stddef.h>
#include <stdint.h>
#include <linux/virtio_ring.h>

#define VHD_QSZ		256	/* descriptors per virtqueue */
#define VHD_BUFSZ	2048	/* one RX or TX buffer */
#define VHD_HDRSZ	12	/* struct virtio_net_hdr_mrg_rxbuf */
#define VHD_RX		0	/* VHOST_NET_VQ_RX */
#define VHD_TX		1	/* VHOST_NET_VQ_TX */

struct vhd_vq {
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	char *bufs;		/* VHD_QSZ buffers of VHD_BUFSZ, in guest RAM */
	uint16_t avail_idx;	/* next avail slot (driver side) */
	uint16_t used_seen;	/* used entries consumed */
	int kick, call;		/* eventfds */
};

struct vhd {
	int vfd;		/* /dev/vhost-net, -1 when closed */
	char *mem;		/* the "guest RAM" */
	size_t memsz;
	struct vhd_vq vq[2];
	uint32_t tx_posted;	/* TX descriptors made available */
	uint32_t tx_done;	/* TX descriptors back in the used ring */
};

/*
 * Open (creating if needed) the tap @name through /dev/net/tun with
 * IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | @extra_flags (e.g. IFF_MULTI_QUEUE)
 * and set its vnet header size to VHD_HDRSZ; a @name starting with '/' is
 * a macvtap character device (/dev/tapIFINDEX) opened as is. fd or -errno.
 */
int vhd_tap_open(const char *name, int extra_flags);
/* Set the interface @name up (SIOCSIFFLAGS); 0 or -errno. */
int vhd_if_up(const char *name);

/*
 * Open /dev/vhost-net and set it up as a VMM does: SET_OWNER, features,
 * memory table (one region), both vrings (num, base, addresses, kick and
 * call eventfds), the RX ring filled with writable buffers. No backend.
 * On error everything is undone. 0 or -errno.
 */
int vhd_open(struct vhd *d);
/* VHOST_NET_SET_BACKEND for queue @q (VHD_RX/VHD_TX); @fd -1 detaches. */
int vhd_set_backend(struct vhd *d, int q, int fd);
/* @fd as backend of both queues, then kick RX. 0 or -errno. */
int vhd_attach(struct vhd *d, int fd);
/* Detach both queues. 0 or the first -errno. */
int vhd_detach(struct vhd *d);
/* Close the vhost fd, eventfds and unmap the region (idempotent). */
void vhd_close(struct vhd *d);

/* Write the kick eventfd of queue @q. 0 or -errno. */
int vhd_kick(struct vhd *d, int q);
/*
 * Kick queue @q unless the device suppressed notifications
 * (VRING_USED_F_NO_NOTIFY), as a virtio driver does. 0 or -errno.
 */
int vhd_notify(struct vhd *d, int q);

/*
 * Post one TX frame (virtio_net_hdr all zero: no checksum offload, no GSO,
 * then @len bytes of @frame); no kick. -ENOSPC when VHD_QSZ - 1 frames
 * are in flight, -EMSGSIZE if it does not fit a buffer.
 */
int vhd_tx_post(struct vhd *d, const void *frame, size_t len);
/* Reap completed TX descriptors without waiting: how many. */
int vhd_tx_reap(struct vhd *d);
/* Frames posted on TX and not completed yet. */
static inline uint32_t vhd_tx_inflight(const struct vhd *d)
{
	return d->tx_posted - d->tx_done;
}
/* Post, kick, and wait up to @timeout_ms for every TX frame to complete. */
int vhd_tx_sync(struct vhd *d, const void *frame, size_t len, int timeout_ms);

/*
 * Next used RX buffer, waiting up to @timeout_ms (0: no wait) on the call
 * eventfd: its descriptor id (>= 0), with *frame pointing past the virtio
 * header and *len the frame's length; -ETIMEDOUT if none came. The buffer
 * stays the caller's until vhd_rx_repost().
 */
int vhd_rx_next(struct vhd *d, const unsigned char **frame, size_t *len,
		int timeout_ms);
/* Give buffer @id back to the device (no kick). */
void vhd_rx_repost(struct vhd *d, int id);
/*
 * Copy the next RX frame for which @match returns non-zero (NULL: any)
 * into @buf (at most @size bytes), reposting and kicking every buffer it
 * reads; frames that do not match are skipped (the host sends its own,
 * e.g. IPv6 MLD). Frame length, or -ETIMEDOUT after @timeout_ms in all.
 */
int vhd_rx_wait(struct vhd *d, int (*match)(const unsigned char *f, size_t len,
					     void *arg),
		void *arg, void *buf, size_t size, int timeout_ms);

/* Wait for the call eventfd of queue @q up to @timeout_ms: 1, 0 or -errno. */
int vhd_wait(struct vhd *d, int q, int timeout_ms);

#endif
