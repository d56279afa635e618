// SPDX-License-Identifier: GPL-2.0
/*
 * mem_dirty_track: POLICY_MEM_DIRTY_MAX against the dirty tracking a VMM
 * can do without KVM's dirty log. A VM whose dirty-log budget is below its
 * guest memory: writing /proc/PID/clear_refs of its process (soft-dirty
 * clearing, 4, covers the whole address space) is refused (EPERM), from
 * the process itself and from another; userfaultfd write-protection armed
 * over its guest memory (UFFDIO_WRITEPROTECT, UFFDIO_COPY with
 * UFFDIO_COPY_MODE_WP, and on 6.12 UFFDIO_REGISTER_MODE_WP and PAGEMAP_SCAN
 * with PM_SCAN_WP_MATCHING) is refused (EPERM), also over memory
 * registered before it became guest memory; the same outside guest
 * memory, or with a budget that holds all of it, is allowed.
 * VM_MEM_DIRTY_DENIED counts every refusal. SKIP where the kernel lacks
 * soft-dirty, userfaultfd write-protection or PAGEMAP_SCAN.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "kg.h"
#include "memg.h"
#include "vm.h"

#define P "kgmt-"
#define MEM_SIZE (16 * MEMG_MIB)

/* PAGEMAP_SCAN (6.7+) when the build machine's headers predate it. */
#ifndef PAGEMAP_SCAN
#define PAGEMAP_SCAN		_IOWR('f', 16, struct kg_pm_scan_arg)
#define PM_SCAN_WP_MATCHING	(1 << 0)
#define PM_SCAN_CHECK_WPASYNC	(1 << 1)
#define PAGE_IS_WRITTEN		(1 << 2)
struct kg_page_region {
	__u64 start, end, categories;
};

struct kg_pm_scan_arg {
	__u64 size, flags, start, end, walk_end, vec, vec_len, max_pages;
	__u64 category_inverted, category_mask, category_anyof_mask,
	      return_mask;
};
#else
#define kg_pm_scan_arg pm_scan_arg
#define kg_page_region page_region
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC	(1 << 15)
#endif

FIXTURE(dt) {
	struct gnl g;
	struct vm vm;
	uint64_t id;
	char *mem;
	char *other;
	int uffd;
};

FIXTURE_SETUP(dt)
{
	self->vm.fd = -1;
	self->uffd = -1;
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
	self->mem = memg_anon(MEM_SIZE);
	ASSERT_NE(NULL, self->mem);
	self->other = memg_anon(MEM_SIZE);
	ASSERT_NE(NULL, self->other);
	memset(self->mem, 1, MEM_SIZE);
	memset(self->other, 1, MEM_SIZE);
}

FIXTURE_TEARDOWN(dt)
{
	if (self->vm.fd >= 0 || self->vm.nr_vcpus)
		vm_destroy(&self->vm);
	if (self->uffd >= 0)
		close(self->uffd);
	munmap(self->mem, MEM_SIZE);
	munmap(self->other, MEM_SIZE);
	kg_cleanup(&self->g, P);
	gnl_close(&self->g);
}

/* A VM of this process under policy @name with dirty budget @budget. */
static int vm_with_budget(struct gnl *g, struct vm *vm, uint64_t *id,
			  const char *name, uint64_t budget)
{
	int err = memg_new(g, name, NULL, MEMG_DIRTY(budget));

	return err ?: memg_vm(g, vm, name, id);
}

#define SLOT(self) vm_region(&(self)->vm, 0, 0, 0, MEM_SIZE, (self)->mem)
#define DENIED(self, n) do {						\
	struct kg_vm v_;						\
	ASSERT_EQ(0, memg_vm_get(&(self)->g, (self)->id, &v_));		\
	EXPECT_EQ((uint64_t)(n), v_.mem_dirty_denied);			\
} while (0)

/* Write @what to /proc/@pid/clear_refs: 0 or -errno. */
static int clear_refs(pid_t pid, const char *what)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/clear_refs", pid);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = write(fd, what, strlen(what));
	n = n < 0 ? -errno : 0;
	close(fd);
	return n;
}

/* The soft-dirty bit of the page at @p (pagemap bit 55): 1/0/-errno. */
static int soft_dirty(const void *p)
{
	uint64_t e;
	int fd = open("/proc/self/pagemap", O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = pread(fd, &e, sizeof(e), (uintptr_t)p / MEMG_PAGE * sizeof(e));
	close(fd);
	if (n != sizeof(e))
		return -EIO;
	return !!(e & (1ull << 55));
}

/* Does clear_refs 4 clear soft-dirty bits here (CONFIG_MEM_SOFT_DIRTY)? */
static bool have_soft_dirty(char *page)
{
	if (clear_refs(getpid(), "4"))
		return false;
	if (soft_dirty(page) != 0)
		return false;
	page[0]++;
	return soft_dirty(page) == 1;
}

TEST_F(dt, soft_dirty_refused)
{
	pid_t child;
	int status;

	if (!have_soft_dirty(self->mem))
		SKIP(return, "no soft-dirty tracking (CONFIG_MEM_SOFT_DIRTY)");
	ASSERT_EQ(0, vm_with_budget(&self->g, &self->vm, &self->id, P "sd",
				    MEMG_MIB));
	/* No memslot yet: no guest memory to track. */
	EXPECT_EQ(0, clear_refs(getpid(), "4"));
	self->mem[0]++;
	ASSERT_EQ(0, SLOT(self));
	EXPECT_EQ(-EPERM, clear_refs(getpid(), "4"));
	/* Whatever is written: the value cannot be read race-free. */
	EXPECT_EQ(-EPERM, clear_refs(getpid(), "1"));
	/* The bits stay set: the VMM learns nothing. */
	EXPECT_EQ(1, soft_dirty(self->mem));
	DENIED(self, 2);

	/* From another process, through /proc/PID and /proc/PID/task/TID. */
	child = fork();
	ASSERT_LE(0, child);
	if (!child) {
		char path[64];
		int fd;

		if (clear_refs(getppid(), "4") != -EPERM)
			_exit(1);
		snprintf(path, sizeof(path), "/proc/%d/task/%d/clear_refs",
			 getppid(), getppid());
		fd = open(path, O_WRONLY);
		if (fd < 0 || write(fd, "4", 1) != -1 || errno != EPERM)
			_exit(2);
		/* The child's own memory is nobody's guest memory. */
		_exit(clear_refs(getpid(), "4") ? 3 : 0);
	}
	ASSERT_EQ(child, waitpid(child, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	DENIED(self, 4);
}

TEST_F(dt, soft_dirty_within_budget)
{
	if (!have_soft_dirty(self->mem))
		SKIP(return, "no soft-dirty tracking (CONFIG_MEM_SOFT_DIRTY)");
	ASSERT_EQ(0, vm_with_budget(&self->g, &self->vm, &self->id, P "sdok",
				    MEM_SIZE));
	ASSERT_EQ(0, SLOT(self));
	EXPECT_EQ(0, clear_refs(getpid(), "4"));
	EXPECT_EQ(0, soft_dirty(self->mem));
	DENIED(self, 0);
}

TEST_F(dt, audit_counts_and_allows)
{
	ASSERT_EQ(0, memg_new(&self->g, P "au", NULL, MEMG_DIRTY(MEMG_MIB),
			      MEMG_MODE(KVMGUARD_MODE_AUDIT)));
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm, P "au", &self->id));
	ASSERT_EQ(0, SLOT(self));
	if (!have_soft_dirty(self->other))
		SKIP(return, "no soft-dirty tracking (CONFIG_MEM_SOFT_DIRTY)");
	/* have_soft_dirty() cleared once: counted, not refused. */
	EXPECT_EQ(0, soft_dirty(self->mem));
	DENIED(self, 1);
}

/* A userfaultfd with @features; -errno (SKIP material) if there is none. */
static int uffd_open(uint64_t features, uint64_t *ioctls)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api)) {
		close(fd);
		return -EOPNOTSUPP;
	}
	if (ioctls)
		*ioctls = api.ioctls;
	return fd;
}

static int uffd_register(int fd, void *p, uint64_t len, uint64_t mode,
			 uint64_t *ioctls)
{
	struct uffdio_register r = {
		.range = { .start = (uintptr_t)p, .len = len },
		.mode = mode,
	};

	if (ioctl(fd, UFFDIO_REGISTER, &r))
		return -errno;
	if (ioctls)
		*ioctls = r.ioctls;
	return 0;
}

static int uffd_wp(int fd, void *p, uint64_t len, bool on)
{
	struct uffdio_writeprotect w = {
		.range = { .start = (uintptr_t)p, .len = len },
		.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(fd, UFFDIO_WRITEPROTECT, &w) ? -errno : 0;
}

/* A userfaultfd registered for write-protection over @p, or SKIP. */
#define UFFD_WP_OR_SKIP(self, p, features) do {				\
	uint64_t ioc_ = 0;						\
	int fd_ = uffd_open(features, NULL);				\
	if (fd_ < 0)							\
		SKIP(return, "no userfaultfd: %s", strerror(-fd_));	\
	self->uffd = fd_;						\
	if (uffd_register(fd_, p, MEM_SIZE,				\
			  UFFDIO_REGISTER_MODE_WP, &ioc_) ||		\
	    !(ioc_ & (1ull << _UFFDIO_WRITEPROTECT)))			\
		SKIP(return, "no userfaultfd write-protection");	\
} while (0)

TEST_F(dt, uffd_wp_refused)
{
	uint64_t denied = 0;
	int err;

	ASSERT_EQ(0, vm_with_budget(&self->g, &self->vm, &self->id, P "wp",
				    MEMG_MIB));
	/* Registered before it is guest memory: allowed, nothing to track. */
	UFFD_WP_OR_SKIP(self, self->mem, 0);
	ASSERT_EQ(0, SLOT(self));
	EXPECT_EQ(-EPERM, uffd_wp(self->uffd, self->mem, MEM_SIZE, true));
	denied++;
	/* One page of it is enough to refuse. */
	EXPECT_EQ(-EPERM, uffd_wp(self->uffd, self->mem + MEM_SIZE - MEMG_PAGE,
				  MEMG_PAGE, true));
	denied++;
	/* Lifting it is always allowed. */
	EXPECT_EQ(0, uffd_wp(self->uffd, self->mem, MEM_SIZE, false));
	/* Not guest memory: allowed. */
	ASSERT_EQ(0, uffd_register(self->uffd, self->other, MEM_SIZE,
				   UFFDIO_REGISTER_MODE_WP, NULL));
	EXPECT_EQ(0, uffd_wp(self->uffd, self->other, MEM_SIZE, true));
	EXPECT_EQ(0, uffd_wp(self->uffd, self->other, MEM_SIZE, false));
	/* A second registration over guest memory (6.12 refuses it). */
	close(self->uffd);
	self->uffd = uffd_open(0, NULL);
	ASSERT_LE(0, self->uffd);
	err = uffd_register(self->uffd, self->mem, MEM_SIZE,
			    UFFDIO_REGISTER_MODE_WP, NULL);
	if (err) {
		EXPECT_EQ(-EPERM, err);
		denied++;
	} else {
		EXPECT_EQ(-EPERM, uffd_wp(self->uffd, self->mem, MEM_SIZE, true));
		denied++;
	}
	DENIED(self, denied);
}

TEST_F(dt, uffd_copy_wp_refused)
{
	struct uffdio_copy c = { .mode = UFFDIO_COPY_MODE_WP };
	uint64_t ioc = 0;
	int fd;

	ASSERT_EQ(0, vm_with_budget(&self->g, &self->vm, &self->id, P "cp",
				    MEMG_MIB));
	fd = uffd_open(0, NULL);
	if (fd < 0)
		SKIP(return, "no userfaultfd: %s", strerror(-fd));
	self->uffd = fd;
	/* Pages not there yet, to be filled write-protected. */
	ASSERT_EQ(0, madvise(self->mem, MEM_SIZE, MADV_DONTNEED));
	if (uffd_register(fd, self->mem, MEM_SIZE, UFFDIO_REGISTER_MODE_MISSING |
			  UFFDIO_REGISTER_MODE_WP, &ioc) ||
	    !(ioc & (1ull << _UFFDIO_COPY)))
		SKIP(return, "no userfaultfd write-protection");
	ASSERT_EQ(0, SLOT(self));
	c.dst = (uintptr_t)self->mem;
	c.src = (uintptr_t)self->other;
	c.len = MEMG_PAGE;
	EXPECT_EQ(-1, ioctl(fd, UFFDIO_COPY, &c));
	EXPECT_EQ(EPERM, errno);
	/* Without write-protection it is a plain fill. */
	c.mode = 0;
	EXPECT_EQ(0, ioctl(fd, UFFDIO_COPY, &c));
	EXPECT_EQ((int64_t)MEMG_PAGE, c.copy);
	DENIED(self, 1);
}

TEST_F(dt, uffd_wp_within_budget)
{
	ASSERT_EQ(0, vm_with_budget(&self->g, &self->vm, &self->id, P "wpok",
				    MEM_SIZE));
	ASSERT_EQ(0, SLOT(self));
	UFFD_WP_OR_SKIP(self, self->mem, 0);
	EXPECT_EQ(0, uffd_wp(self->uffd, self->mem, MEM_SIZE, true));
	EXPECT_EQ(0, uffd_wp(self->uffd, self->mem, MEM_SIZE, false));
	DENIED(self, 0);
}

TEST_F(dt, pagemap_scan_wp_refused)
{
	struct kg_page_region regions[16];
	struct kg_pm_scan_arg a = {
		.size = sizeof(a),
		.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		.vec_len = 16,
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN,
	};
	int fd, err;

	a.vec = (uintptr_t)regions;
	ASSERT_EQ(0, vm_with_budget(&self->g, &self->vm, &self->id, P "ps",
				    MEMG_MIB));
	fd = open("/proc/self/pagemap", O_RDONLY);
	ASSERT_LE(0, fd);
	/* A scan that only looks, to see if the kernel has it. */
	a.flags = 0;
	a.start = (uintptr_t)self->other;
	a.end = a.start + MEM_SIZE;
	err = ioctl(fd, PAGEMAP_SCAN, &a) < 0 ? -errno : 0;
	if (err == -ENOTTY || err == -EINVAL) {
		close(fd);
		SKIP(return, "no PAGEMAP_SCAN (6.7+)");
	}
	ASSERT_EQ(0, err);
	a.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;
	UFFD_WP_OR_SKIP(self, self->mem, UFFD_FEATURE_WP_ASYNC);
	ASSERT_EQ(0, SLOT(self));
	a.start = (uintptr_t)self->mem;
	a.end = a.start + MEM_SIZE;
	EXPECT_EQ(-1, ioctl(fd, PAGEMAP_SCAN, &a));
	EXPECT_EQ(EPERM, errno);
	close(fd);
	DENIED(self, 1);
}

/* Nanoseconds per UFFDIO_WRITEPROTECT on and off of one page at @p. */
static double wp_toggle_ns(int fd, char *p, int rounds)
{
	struct timespec a, b;
	int i;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < rounds; i++)
		if (uffd_wp(fd, p, MEMG_PAGE, true) ||
		    uffd_wp(fd, p, MEMG_PAGE, false))
			return -1;
	clock_gettime(CLOCK_MONOTONIC, &b);
	return ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) /
	       (2.0 * rounds);
}

/*
 * What the hooks cost a process without a VM: none without a budget in
 * any policy (not attached), a redirect and a registry walk with one.
 * Logged, not asserted (wall time under TCG).
 */
TEST_F(dt, hook_cost)
{
	double off, on;

	UFFD_WP_OR_SKIP(self, self->other, 0);
	/* Warm: page tables and caches as the measured rounds find them. */
	ASSERT_LT(0, wp_toggle_ns(self->uffd, self->other, 500));
	off = wp_toggle_ns(self->uffd, self->other, 2000);
	ASSERT_LT(0, off);
	ASSERT_EQ(0, memg_new(&self->g, P "cost", NULL, MEMG_DIRTY(MEMG_MIB)));
	on = wp_toggle_ns(self->uffd, self->other, 2000);
	ASSERT_LT(0, on);
	TH_LOG("UFFDIO_WRITEPROTECT: %.0f ns without a budget, %.0f ns with one (%.3fx)",
	       off, on, on / off);
}

TEST_HARNESS_MAIN
