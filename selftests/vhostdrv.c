// SPDX-License-Identifier: GPL-2.0
/*
 * vhostdrv: drive /dev/vhost-net as a VMM does; see vhostdrv.h.
 *
 * Guest RAM layout (GPA 0 = d->mem), per queue: descriptor table (one
 * page), avail ring (one page), used ring (one page), then VHD_QSZ
 * buffers. Descriptor addresses are GPAs; the ring addresses given to
 * VHOST_SET_VRING_ADDR are this process's virtual addresses.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <linux/if_tun.h>
#include <linux/vhost.h>
#include <linux/virtio_net.h>

#include "vhostdrv.h"

#define PAGE		4096
#define QUEUE_BYTES	((size_t)3 * PAGE + (size_t)VHD_QSZ * VHD_BUFSZ)

_Static_assert(sizeof(struct virtio_net_hdr_mrg_rxbuf) == VHD_HDRSZ,
	       "VERSION_1 header size");
_Static_assert(16 * VHD_QSZ <= PAGE && 6 + 2 * VHD_QSZ <= PAGE &&
	       6 + 8 * VHD_QSZ <= PAGE, "rings fit a page each");

int vhd_tap_open(const char *name, int extra_flags)
{
	int hdrsz = VHD_HDRSZ, fd, err;
	struct ifreq ifr;

	if (name[0] == '/') {
		fd = open(name, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return -errno;
	} else {
		fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		memset(&ifr, 0, sizeof(ifr));
		if (strlen(name) >= IFNAMSIZ) {
			close(fd);
			return -ENAMETOOLONG;
		}
		strcpy(ifr.ifr_name, name);
		ifr.ifr_flags = (short)(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR |
					extra_flags);
		if (ioctl(fd, TUNSETIFF, &ifr))
			goto fail;
	}
	/*
	 * Without VHOST_NET_F_VIRTIO_NET_HDR the tap carries the header, and
	 * its size must be the one the features imply (VERSION_1: 12).
	 */
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdrsz))
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

int vhd_if_up(const char *name)
{
	struct ifreq ifr;
	int s, err = 0;

	if (strlen(name) >= IFNAMSIZ)
		return -ENAMETOOLONG;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, name);
	if (ioctl(s, SIOCGIFFLAGS, &ifr)) {
		err = -errno;
	} else {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr))
			err = -errno;
	}
	close(s);
	return err;
}

static uint64_t gpa(const struct vhd *d, const void *p)
{
	return (uint64_t)((const char *)p - d->mem);
}

static int vq_setup(struct vhd *d, int i)
{
	struct vhd_vq *q = &d->vq[i];
	char *base = d->mem + (size_t)i * QUEUE_BYTES;
	struct vhost_vring_state num = { .index = i, .num = VHD_QSZ };
	struct vhost_vring_state start = { .index = i, .num = 0 };
	struct vhost_vring_addr addr = { .index = i };
	struct vhost_vring_file kick = { .index = i }, call = { .index = i };

	q->desc = (struct vring_desc *)base;
	q->avail = (struct vring_avail *)(base + PAGE);
	q->used = (struct vring_used *)(base + 2 * PAGE);
	q->bufs = base + 3 * PAGE;
	q->avail_idx = 0;
	q->used_seen = 0;
	q->kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	q->call = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->kick < 0 || q->call < 0)
		return -errno;
	addr.desc_user_addr = (uint64_t)(uintptr_t)q->desc;
	addr.avail_user_addr = (uint64_t)(uintptr_t)q->avail;
	addr.used_user_addr = (uint64_t)(uintptr_t)q->used;
	kick.fd = q->kick;
	call.fd = q->call;
	if (ioctl(d->vfd, VHOST_SET_VRING_NUM, &num) ||
	    ioctl(d->vfd, VHOST_SET_VRING_BASE, &start) ||
	    ioctl(d->vfd, VHOST_SET_VRING_ADDR, &addr) ||
	    ioctl(d->vfd, VHOST_SET_VRING_KICK, &kick) ||
	    ioctl(d->vfd, VHOST_SET_VRING_CALL, &call))
		return -errno;
	return 0;
}

/* Make descriptor @id (with its own buffer) available. */
static void post(struct vhd *d, struct vhd_vq *q, uint16_t id, uint32_t len,
		 int writable)
{
	q->desc[id].addr = gpa(d, q->bufs + (size_t)id * VHD_BUFSZ);
	q->desc[id].len = len;
	q->desc[id].flags = writable ? VRING_DESC_F_WRITE : 0;
	q->desc[id].next = 0;
	q->avail->ring[q->avail_idx % VHD_QSZ] = id;
	q->avail_idx++;
	/* The descriptor and ring entry before the index. */
	__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
}

/* Next used entry without waiting: id, or -1. */
static int used_next(struct vhd_vq *q, uint32_t *len)
{
	struct vring_used_elem *e;

	if (__atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE) == q->used_seen)
		return -1;
	e = &q->used->ring[q->used_seen % VHD_QSZ];
	q->used_seen++;
	if (len)
		*len = e->len;
	return (int)e->id;
}

int vhd_open(struct vhd *d)
{
	uint64_t features;
	struct {
		struct vhost_memory hdr;
		struct vhost_memory_region region;
	} mt;
	int i, err;

	memset(d, 0, sizeof(*d));
	d->vfd = -1;
	for (i = 0; i < 2; i++)
		d->vq[i].kick = d->vq[i].call = -1;
	d->memsz = 2 * QUEUE_BYTES;
	d->mem = mmap(NULL, d->memsz, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (d->mem == MAP_FAILED) {
		d->mem = NULL;
		return -errno;
	}
	d->vfd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);
	if (d->vfd < 0)
		goto fail;
	if (ioctl(d->vfd, VHOST_SET_OWNER) ||
	    ioctl(d->vfd, VHOST_GET_FEATURES, &features))
		goto fail;
	if (!(features & (1ULL << VIRTIO_F_VERSION_1))) {
		errno = EOPNOTSUPP;
		goto fail;
	}
	features = 1ULL << VIRTIO_F_VERSION_1;
	if (ioctl(d->vfd, VHOST_SET_FEATURES, &features))
		goto fail;
	memset(&mt, 0, sizeof(mt));
	mt.hdr.nregions = 1;
	mt.region.guest_phys_addr = 0;
	mt.region.memory_size = d->memsz;
	mt.region.userspace_addr = (uint64_t)(uintptr_t)d->mem;
	if (ioctl(d->vfd, VHOST_SET_MEM_TABLE, &mt))
		goto fail;
	for (i = 0; i < 2; i++) {
		err = vq_setup(d, i);
		if (err) {
			errno = -err;
			goto fail;
		}
	}
	/* Fill the RX ring before a backend can start polling the socket. */
	for (i = 0; i < VHD_QSZ; i++)
		post(d, &d->vq[VHD_RX], (uint16_t)i, VHD_BUFSZ, 1);
	return 0;
fail:
	err = -errno;
	vhd_close(d);
	return err;
}

int vhd_set_backend(struct vhd *d, int q, int fd)
{
	struct vhost_vring_file be = { .index = (unsigned int)q, .fd = fd };

	return ioctl(d->vfd, VHOST_NET_SET_BACKEND, &be) ? -errno : 0;
}

int vhd_attach(struct vhd *d, int fd)
{
	int err;

	err = vhd_set_backend(d, VHD_RX, fd);
	if (!err)
		err = vhd_set_backend(d, VHD_TX, fd);
	if (!err)
		err = vhd_kick(d, VHD_RX);
	return err;
}

int vhd_detach(struct vhd *d)
{
	int e1 = vhd_set_backend(d, VHD_RX, -1);
	int e2 = vhd_set_backend(d, VHD_TX, -1);

	return e1 ? e1 : e2;
}

void vhd_close(struct vhd *d)
{
	int i;

	if (d->vfd >= 0)
		close(d->vfd);
	d->vfd = -1;
	for (i = 0; i < 2; i++) {
		if (d->vq[i].kick >= 0)
			close(d->vq[i].kick);
		if (d->vq[i].call >= 0)
			close(d->vq[i].call);
		d->vq[i].kick = d->vq[i].call = -1;
	}
	if (d->mem)
		munmap(d->mem, d->memsz);
	d->mem = NULL;
}

int vhd_kick(struct vhd *d, int q)
{
	uint64_t one = 1;

	if (write(d->vq[q].kick, &one, sizeof(one)) != sizeof(one))
		return -errno;
	return 0;
}

int vhd_notify(struct vhd *d, int q)
{
	uint16_t flags = __atomic_load_n(&d->vq[q].used->flags, __ATOMIC_ACQUIRE);

	return flags & VRING_USED_F_NO_NOTIFY ? 0 : vhd_kick(d, q);
}

int vhd_wait(struct vhd *d, int q, int timeout_ms)
{
	struct pollfd p = { .fd = d->vq[q].call, .events = POLLIN };
	uint64_t v;
	int n;

	n = poll(&p, 1, timeout_ms);
	if (n < 0)
		return -errno;
	if (n && read(p.fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	return n;
}

int vhd_tx_post(struct vhd *d, const void *frame, size_t len)
{
	struct vhd_vq *q = &d->vq[VHD_TX];
	uint16_t id = (uint16_t)(d->tx_posted % VHD_QSZ);
	char *b = q->bufs + (size_t)id * VHD_BUFSZ;

	if (len > VHD_BUFSZ - VHD_HDRSZ)
		return -EMSGSIZE;
	/* vhost-net's copy path completes in order: ids recycle in order. */
	if (vhd_tx_inflight(d) >= VHD_QSZ - 1)
		return -ENOSPC;
	memset(b, 0, VHD_HDRSZ);
	((struct virtio_net_hdr *)b)->gso_type = VIRTIO_NET_HDR_GSO_NONE;
	memcpy(b + VHD_HDRSZ, frame, len);
	post(d, q, id, (uint32_t)(VHD_HDRSZ + len), 0);
	d->tx_posted++;
	return 0;
}

int vhd_tx_reap(struct vhd *d)
{
	int n = 0;

	while (used_next(&d->vq[VHD_TX], NULL) >= 0)
		n++;
	d->tx_done += (uint32_t)n;
	return n;
}

int vhd_tx_sync(struct vhd *d, const void *frame, size_t len, int timeout_ms)
{
	int err, waited = 0;

	err = vhd_tx_post(d, frame, len);
	if (!err)
		err = vhd_kick(d, VHD_TX);
	while (!err && (vhd_tx_reap(d), vhd_tx_inflight(d))) {
		if (waited >= timeout_ms)
			return -ETIMEDOUT;
		err = vhd_wait(d, VHD_TX, 10);
		err = err < 0 ? err : 0;
		waited += 10;
	}
	return err;
}

int vhd_rx_next(struct vhd *d, const unsigned char **frame, size_t *len,
		int timeout_ms)
{
	struct vhd_vq *q = &d->vq[VHD_RX];
	uint32_t used_len;
	int id, n;

	for (;;) {
		id = used_next(q, &used_len);
		if (id >= 0)
			break;
		if (!timeout_ms)
			return -ETIMEDOUT;
		n = vhd_wait(d, VHD_RX, timeout_ms);
		if (n < 0)
			return n;
		if (!n)
			return -ETIMEDOUT;
	}
	if (id >= VHD_QSZ || used_len < VHD_HDRSZ || used_len > VHD_BUFSZ)
		return -EPROTO;
	*frame = (const unsigned char *)q->bufs + (size_t)id * VHD_BUFSZ +
		 VHD_HDRSZ;
	*len = used_len - VHD_HDRSZ;
	return id;
}

void vhd_rx_repost(struct vhd *d, int id)
{
	post(d, &d->vq[VHD_RX], (uint16_t)id, VHD_BUFSZ, 1);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int vhd_rx_wait(struct vhd *d, int (*match)(const unsigned char *f, size_t len,
					     void *arg),
		void *arg, void *buf, size_t size, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	const unsigned char *f;
	size_t len;
	int id, err, hit;

	for (;;) {
		uint64_t now = now_ms();

		id = vhd_rx_next(d, &f, &len, now >= end ? 0 : (int)(end - now));
		if (id < 0)
			return id;
		hit = !match || match(f, len, arg);
		if (hit)
			memcpy(buf, f, len < size ? len : size);
		vhd_rx_repost(d, id);
		err = vhd_kick(d, VHD_RX);
		if (err)
			return err;
		if (hit)
			return (int)len;
	}
}
