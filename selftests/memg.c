// SPDX-License-Identifier: GPL-2.0
/* memg: helpers for the memory-rule selftests (see memg.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "hcg.h"
#include "memg.h"

/* Debian 12's <linux/kvm.h> predates KVM_SET_USER_MEMORY_REGION2 (6.8). */
#ifndef KVM_SET_USER_MEMORY_REGION2
struct kvm_userspace_memory_region2 {
	__u32 slot;
	__u32 flags;
	__u64 guest_phys_addr;
	__u64 memory_size;
	__u64 userspace_addr;
	__u64 guest_memfd_offset;
	__u32 guest_memfd;
	__u32 pad1;
	__u64 pad2[14];
};

#define KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2)
#endif
#ifndef KVM_CAP_USER_MEMORY2
#define KVM_CAP_USER_MEMORY2 231
#endif

#define HUGE_FREE "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"
#define HUGE_NR "/proc/sys/vm/nr_hugepages"

int memg_policy(struct gnl *g, uint8_t cmd, const char *name, const char *domain,
		const struct memg_rule *rules)
{
	static struct gnl_msg m;

	kg_req(g, &m, cmd, false);
	gnl_put_str(&m, KVMGUARD_A_POLICY_NAME, name);
	if (domain)
		gnl_put_str(&m, KVMGUARD_A_POLICY_DOMAIN, domain);
	for (; rules && rules->type; rules++) {
		switch (rules->type) {
		case KVMGUARD_A_POLICY_MODE:
		case KVMGUARD_A_POLICY_MEM_SHARED:
		case KVMGUARD_A_POLICY_MEM_KSM:
			gnl_put_u8(&m, rules->type, rules->value);
			break;
		default:
			gnl_put_u64(&m, rules->type, rules->value);
			break;
		}
	}
	return gnl_transact(g, &m, NULL, NULL);
}

int memg_vm(struct gnl *g, struct vm *vm, const char *policy, uint64_t *id)
{
	uint64_t max = kg_max_vm_id(g);
	struct kg_vm v;
	int err;

	err = vm_create(vm);
	if (err)
		return err;
	err = kg_find_new_vm(g, getpid(), max, &v);
	if (!err && policy)
		err = kg_vm_set(g, v.id, policy);
	if (err) {
		vm_destroy(vm);
		return err;
	}
	*id = v.id;
	return 0;
}

int memg_vm_get(struct gnl *g, uint64_t id, struct kg_vm *v)
{
	int err = kg_vm_get(g, id, v);

	if (err)
		return err;
	if ((v->present & KG_VM_REQUIRED) != KG_VM_REQUIRED) {
		printf("# VM %llu: attributes missing (mask 0x%llx)\n",
		       (unsigned long long)id,
		       (unsigned long long)(KG_VM_REQUIRED & ~v->present));
		return -EBADMSG;
	}
	return 0;
}

int memg_nr_as(struct vm *vm)
{
	int n = ioctl(vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_MULTI_ADDRESS_SPACE);

	return n > 1 ? n : 1;
}

bool memg_has_region2(struct vm *vm)
{
	return ioctl(vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY2) > 0;
}

int memg_region2(struct vm *vm, uint32_t slot, uint32_t flags, uint64_t gpa,
		 uint64_t size, const void *hva)
{
	struct kvm_userspace_memory_region2 r = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa,
		.memory_size = size, .userspace_addr = (uintptr_t)hva,
	};

	return ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION2, &r) ? -errno : 0;
}

int memg_dirty_log(struct vm *vm, uint32_t slot, uint64_t size)
{
	size_t words = (size / MEMG_PAGE + 63) / 64;
	uint64_t *bitmap = calloc(words ? words : 1, 8);
	struct kvm_dirty_log log = { .slot = slot, .dirty_bitmap = bitmap };
	int err;

	if (!bitmap)
		return -ENOMEM;
	err = ioctl(vm->fd, KVM_GET_DIRTY_LOG, &log) ? -errno : 0;
	free(bitmap);
	return err;
}

void *memg_anon(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void *memg_reserve(size_t size)
{
	void *p = mmap(NULL, size, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void *memg_map_fd(int fd, size_t size, int flags, off_t off)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, fd, off);

	return p == MAP_FAILED ? NULL : p;
}

int memg_memfd(size_t size, unsigned int flags)
{
	int fd = memfd_create("kgm-memfd", MFD_CLOEXEC | flags);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, size)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int memg_vma_mergeable(pid_t pid, const void *addr)
{
	char path[64], line[512];
	unsigned long a = (unsigned long)addr, lo, hi;
	bool in = false;
	int ret = -ENOENT;
	FILE *f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/smaps");
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		/* A VMA's first line: "lo-hi perms offset dev inode [path]". */
		if (line[strspn(line, "0123456789abcdef")] == '-' &&
		    sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
			in = a >= lo && a < hi;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			ret = strstr(line + 8, " mg") ? 1 : 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

static bool take_mem_event(const struct nlmsghdr *nlh,
			   const struct nlattr **tb, void *ctx)
{
	struct kg_event_sink *sink = ctx;
	struct kg_event e;

	(void)tb;
	if (kg_parse_event(nlh, &e) || e.type != KVMGUARD_EVENT_MEMORY ||
	    (sink->vm_id && e.vm_id != sink->vm_id) || sink->n >= sink->max)
		return false;
	((struct kg_event *)sink->ev)[sink->n++] = e;
	return true;
}

int memg_events(struct gnl *sub, uint64_t vm_id, int want, int ms,
		struct kg_event *ev, int max)
{
	struct kg_event_sink sink = { .vm_id = vm_id, .ev = ev, .max = max };

	return kg_collect_events(sub, ms, want, take_mem_event, &sink);
}

void memg_drain(struct gnl *sub)
{
	int r;

	do {
		r = gnl_recv(sub, 0);
	} while (r >= 0 || r == -ENOBUFS);
}

int memg_get_ulong(const char *path, unsigned long *v)
{
	char buf[64];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = 0;
	*v = strtoul(buf, NULL, 10);
	return 0;
}

int memg_put_ulong(const char *path, unsigned long v)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CLOEXEC), len, err = 0;

	if (fd < 0)
		return -errno;
	len = snprintf(buf, sizeof(buf), "%lu\n", v);
	if (write(fd, buf, len) != len)
		err = -errno;
	close(fd);
	return err;
}

long memg_ksm_merging(pid_t pid)
{
	char path[64];
	unsigned long v;
	int err;

	snprintf(path, sizeof(path), "/proc/%d/ksm_merging_pages", pid);
	err = memg_get_ulong(path, &v);
	return err ? err : (long)v;
}

/* A hugetlbfs mount with the default (2M) page size, from /proc/mounts. */
static bool find_hugetlbfs(char *dir, size_t size)
{
	char line[1024], mnt[512], type[64], opts[256];
	FILE *f = fopen("/proc/mounts", "re");
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*s %511s %63s %255s", mnt, type, opts) != 3 ||
		    strcmp(type, "hugetlbfs"))
			continue;
		if (strstr(opts, "pagesize=") && !strstr(opts, "pagesize=2M"))
			continue;
		if (strlen(mnt) >= size)
			continue;
		memcpy(dir, mnt, strlen(mnt) + 1);
		found = true;
	}
	fclose(f);
	return found;
}

int memg_huge_get(struct memg_huge *h, unsigned long pages, char *why, size_t wsz)
{
	unsigned long nr, nfree;
	int err;

	memset(h, 0, sizeof(*h));
	if (memg_get_ulong(HUGE_NR, &nr) || memg_get_ulong(HUGE_FREE, &nfree)) {
		snprintf(why, wsz, "no 2M hugetlb pages on this kernel (%s)", HUGE_FREE);
		return -ENOENT;
	}
	h->old_nr = nr;
	if (nfree < pages) {
		err = memg_put_ulong(HUGE_NR, nr + pages - nfree);
		if (err) {
			snprintf(why, wsz, "cannot raise %s: %s", HUGE_NR, strerror(-err));
			return err;
		}
		h->nr_changed = true;
		if (memg_get_ulong(HUGE_FREE, &nfree) || nfree < pages) {
			snprintf(why, wsz, "only %lu free 2M huge pages after asking for %lu",
				 nfree, nr + pages);
			memg_huge_put(h);
			return -ENOMEM;
		}
	}
	if (find_hugetlbfs(h->dir, sizeof(h->dir)))
		return 0;
	snprintf(h->dir, sizeof(h->dir), "/tmp/kgm-hugetlbfs.%d", getpid());
	if (mkdir(h->dir, 0700) && errno != EEXIST) {
		err = -errno;
		snprintf(why, wsz, "mkdir %s: %s", h->dir, strerror(errno));
		memg_huge_put(h);
		return err;
	}
	if (mount("none", h->dir, "hugetlbfs", 0, NULL)) {
		err = -errno;
		snprintf(why, wsz, "cannot mount hugetlbfs: %s", strerror(errno));
		rmdir(h->dir);
		memg_huge_put(h);
		return err;
	}
	h->mounted = true;
	return 0;
}

void memg_huge_put(struct memg_huge *h)
{
	if (h->mounted) {
		umount2(h->dir, MNT_DETACH);
		rmdir(h->dir);
		h->mounted = false;
	}
	if (h->nr_changed) {
		memg_put_ulong(HUGE_NR, h->old_nr);
		h->nr_changed = false;
	}
}

/*
 * Our ends of the pipes of the children alive: a child forked later must
 * not hold them, or an earlier child never sees its end of file.
 */
#define MAX_ENDS 64
static int ends[MAX_ENDS];
static int nr_ends;

static void ends_del(int fd)
{
	for (int i = 0; i < nr_ends; i++) {
		if (ends[i] == fd) {
			ends[i] = ends[--nr_ends];
			return;
		}
	}
}

int memg_child_start(struct memg_child *c, memg_child_fn fn, void *arg)
{
	int to[2], from[2];

	c->pid = -1;
	c->to = c->from = -1;
	if (pipe2(to, O_CLOEXEC))
		return -errno;
	if (pipe2(from, O_CLOEXEC)) {
		close(to[0]);
		close(to[1]);
		return -errno;
	}
	fflush(stdout);
	fflush(stderr);
	c->pid = fork();
	if (c->pid < 0) {
		int err = -errno;

		close(to[0]);
		close(to[1]);
		close(from[0]);
		close(from[1]);
		return err;
	}
	if (c->pid == 0) {
		close(to[1]);
		close(from[0]);
		for (int i = 0; i < nr_ends; i++)
			close(ends[i]);
		nr_ends = 0;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(fn(to[0], from[1], arg));
	}
	close(to[0]);
	close(from[1]);
	c->to = to[1];
	c->from = from[0];
	if (nr_ends + 2 <= MAX_ENDS) {
		ends[nr_ends++] = c->to;
		ends[nr_ends++] = c->from;
	}
	return 0;
}

int memg_child_end(struct memg_child *c)
{
	int status;

	if (c->to >= 0) {
		ends_del(c->to);
		close(c->to);
	}
	if (c->from >= 0) {
		ends_del(c->from);
		close(c->from);
	}
	c->to = c->from = -1;
	if (c->pid <= 0)
		return -1;
	if (waitpid(c->pid, &status, 0) != c->pid)
		status = -1;
	c->pid = -1;
	if (status == -1 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* Move all @len bytes through @fd, one way or the other. */
static int xfer(int fd, char *p, size_t len, bool out)
{
	while (len) {
		ssize_t n = out ? write(fd, p, len) : read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

int memg_write(int fd, const void *buf, size_t len)
{
	return xfer(fd, (char *)buf, len, true);
}

int memg_read(int fd, void *buf, size_t len)
{
	return xfer(fd, buf, len, false);
}
