// SPDX-License-Identifier: GPL-2.0
/*
 * mem_remap: the memory rules hold for a memslot's whole life, whatever
 * the process does to the mappings under it after the slot was made.
 * Under `mem shared deny` a shared mapping (memfd MAP_SHARED,
 * MAP_SHARED | MAP_ANONYMOUS, a SysV segment) or a private mapping of a
 * shared object (a memfd MAP_PRIVATE, whose pages are the memfd's page
 * cache until written) cannot be put under a live slot, by mmap(MAP_FIXED),
 * shmat(SHM_REMAP), mremap() onto it or into a hole the slot covers, or
 * mremap() growing a mapping into such a hole; private anonymous memory
 * can. Under `domain`, a MAP_PRIVATE mapping of a memfd that a VM of
 * another domain maps is refused at slot creation (EXDEV), and only an
 * object that already backs the VM may be mapped under its live slots.
 * Under `ksm deny`, a region made mergeable before the VM existed cannot
 * be mremap()ed onto a slot, nor a slot made over a hole a mergeable
 * MAP_GROWSDOWN mapping can grow into. A slot over thousands of distinct
 * shared mappings is created, and every one of them counts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/shm.h>

#include "kselftest_harness.h"
#include "kg.h"
#include "memg.h"
#include "vm.h"

#define P "kgmr-"
#define SZ (64 * MEMG_KIB)

FIXTURE(rm) {
	struct gnl g;
	struct vm vm[2];
	uint64_t id[2];
	int shmid;
	int memfd;
};

FIXTURE_SETUP(rm)
{
	self->vm[0].fd = self->vm[1].fd = -1;
	self->shmid = -1;
	self->memfd = -1;
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
	ASSERT_EQ(0, memg_new(&self->g, P "deny", NULL,
			      MEMG_SHARED(KVMGUARD_MEM_SHARED_DENY)));
	ASSERT_EQ(0, memg_new(&self->g, P "red", "red",
			      MEMG_SHARED(KVMGUARD_MEM_SHARED_DOMAIN)));
	ASSERT_EQ(0, memg_new(&self->g, P "blue", "blue",
			      MEMG_SHARED(KVMGUARD_MEM_SHARED_DOMAIN)));
	ASSERT_EQ(0, memg_new(&self->g, P "ksm", NULL,
			      MEMG_KSM(KVMGUARD_KSM_DENY)));
	self->memfd = memg_memfd(SZ, 0);
	ASSERT_LE(0, self->memfd);
	ASSERT_EQ((ssize_t)6, pwrite(self->memfd, "other", 6, 0));
}

FIXTURE_TEARDOWN(rm)
{
	for (int i = 0; i < 2; i++)
		if (self->vm[i].fd >= 0)
			vm_destroy(&self->vm[i]);
	if (self->shmid >= 0)
		shmctl(self->shmid, IPC_RMID, NULL);
	if (self->memfd >= 0)
		close(self->memfd);
	kg_bind_del(&self->g, KVMGUARD_BIND_PID, NULL, getpid());
	kg_cleanup(&self->g, P);
	gnl_close(&self->g);
}

#define NEWVM(i, policy) \
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm[i], policy, &self->id[i]))
#define REGION(i, slot, gpa, size, hva) vm_region(&self->vm[i], slot, 0, gpa, size, hva)
#define VMGET(i, v) ASSERT_EQ(0, memg_vm_get(&self->g, self->id[i], &(v)))

/* Guest memory with a mark the test can check is still there. */
static char *guest_mem(size_t size)
{
	char *p = memg_anon(size);

	if (p)
		memcpy(p, "guest", 6);
	return p;
}

/* Did a refused mapping leave the slot's own memory in place? */
#define STILL_GUEST(p) EXPECT_STREQ("guest", (const char *)(p))

/*
 * The inode of the mapping at @addr (0: anonymous memory), -1 if nothing
 * is mapped there. mremap(MREMAP_FIXED) unmaps its destination before it
 * moves anything, so a refused move leaves a hole in the slot.
 */
static long inode_at(const void *addr)
{
	unsigned long a = (unsigned long)addr, lo, hi, ino;
	char line[512];
	long ret = -1;
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		return -2;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %*s %*s %*s %lu", &lo, &hi, &ino) == 3 &&
		    a >= lo && a < hi) {
			ret = ino;
			break;
		}
	fclose(f);
	return ret;
}

/* No file memory (a shared object's pages) under @p after a refused move. */
#define NO_FILE_AT(p) EXPECT_GE(0, inode_at(p))

TEST_F(rm, map_fixed_shared_over_slot)
{
	char *g, *r;
	struct kg_vm v;

	NEWVM(0, P "deny");
	g = guest_mem(SZ);
	ASSERT_NE(NULL, g);
	ASSERT_EQ(0, REGION(0, 0, 0, SZ, g));

	r = mmap(g, SZ, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 self->memfd, 0);
	EXPECT_EQ(MAP_FAILED, r);
	EXPECT_EQ(EPERM, errno);
	STILL_GUEST(g);
	/* One page in the middle, and shared anonymous memory. */
	r = mmap(g + MEMG_PAGE, MEMG_PAGE, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, self->memfd, 0);
	EXPECT_EQ(MAP_FAILED, r);
	r = mmap(g, SZ, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	EXPECT_EQ(MAP_FAILED, r);
	STILL_GUEST(g);
	/* MAP_PRIVATE of the memfd: its page cache until written. */
	r = mmap(g, SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED,
		 self->memfd, 0);
	EXPECT_EQ(MAP_FAILED, r);
	STILL_GUEST(g);
	/* Private anonymous memory may replace it (a VMM resetting RAM). */
	r = mmap(g, SZ, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	EXPECT_EQ(g, r);
	VMGET(0, v);
	EXPECT_LE(4ULL, v.mem_shared_denied);
	EXPECT_EQ(0ULL, v.mem_shared_bytes);
	/* Once the slot is gone, the process maps what it likes there. */
	ASSERT_EQ(0, REGION(0, 0, 0, 0, NULL));
	r = mmap(g, SZ, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 self->memfd, 0);
	EXPECT_EQ(g, r);
	EXPECT_STREQ("other", r);
}

TEST_F(rm, shmat_remap_over_slot)
{
	char *g;
	void *r;

	NEWVM(0, P "deny");
	g = guest_mem(SZ);
	ASSERT_NE(NULL, g);
	ASSERT_EQ(0, REGION(0, 0, 0, SZ, g));
	self->shmid = shmget(IPC_PRIVATE, SZ, IPC_CREAT | 0600);
	ASSERT_LE(0, self->shmid);
	r = shmat(self->shmid, g, SHM_REMAP);
	EXPECT_EQ((void *)-1, r);
	EXPECT_EQ(EPERM, errno);
	STILL_GUEST(g);
	if (r != (void *)-1)
		shmdt(r);
}

TEST_F(rm, mremap_memfd_onto_slot)
{
	char *g, *m, *priv, *anon, *r;

	NEWVM(0, P "deny");
	g = guest_mem(SZ);
	ASSERT_NE(NULL, g);
	ASSERT_EQ(0, REGION(0, 0, 0, SZ, g));
	/*
	 * All mapped first: a refused move leaves a hole in the slot, where
	 * the kernel would place the next mmap(NULL, ...) - and refuse it.
	 */
	m = memg_map_fd(self->memfd, SZ, MAP_SHARED, 0);
	priv = memg_map_fd(self->memfd, SZ, MAP_PRIVATE, 0);
	anon = memg_anon(SZ);
	ASSERT_NE(NULL, m);
	ASSERT_NE(NULL, priv);
	ASSERT_NE(NULL, anon);
	r = mremap(m, SZ, SZ, MREMAP_MAYMOVE | MREMAP_FIXED, g);
	EXPECT_EQ(MAP_FAILED, r);
	NO_FILE_AT(g);
	NO_FILE_AT(g + SZ - MEMG_PAGE);
	/* The memfd mapping is where it was. */
	EXPECT_STREQ("other", m);
	/* A private one of the memfd too. */
	r = mremap(priv, SZ, SZ, MREMAP_MAYMOVE | MREMAP_FIXED, g + MEMG_PAGE);
	EXPECT_EQ(MAP_FAILED, r);
	NO_FILE_AT(g + MEMG_PAGE);
	EXPECT_STREQ("other", priv);
	/* Private anonymous memory moves in. */
	r = mremap(anon, SZ, SZ, MREMAP_MAYMOVE | MREMAP_FIXED, g);
	EXPECT_EQ(g, r);
}

TEST_F(rm, mapping_into_a_hole_of_the_slot)
{
	char *res, *hole, *r;

	NEWVM(0, P "deny");
	/* [res, res + 2 SZ): guest memory, a hole; the slot covers both. */
	res = memg_reserve(4 * SZ);
	ASSERT_NE(NULL, res);
	ASSERT_EQ(0, munmap(res + SZ, 3 * SZ));
	ASSERT_EQ(res, mmap(res, SZ, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
	hole = res + SZ;
	ASSERT_EQ(0, REGION(0, 0, 0, 2 * SZ, res));

	r = mmap(hole, SZ, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED_NOREPLACE, self->memfd, 0);
	EXPECT_EQ(MAP_FAILED, r);
	EXPECT_EQ(EPERM, errno);
	/* A hint: the kernel would place it in the hole. */
	r = mmap(hole, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, self->memfd, 0);
	EXPECT_TRUE(r == MAP_FAILED || r >= hole + SZ || r + SZ <= res);
	if (r != MAP_FAILED)
		munmap(r, SZ);
}

TEST_F(rm, mremap_grows_into_a_hole_of_the_slot)
{
	char *res, *r;

	NEWVM(0, P "deny");
	/* [res, +page): the memfd, outside the slot; the slot: the hole after. */
	res = memg_reserve(SZ);
	ASSERT_NE(NULL, res);
	ASSERT_EQ(0, munmap(res + MEMG_PAGE, SZ - MEMG_PAGE));
	ASSERT_EQ(res, mmap(res, MEMG_PAGE, PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_FIXED, self->memfd, 0));
	ASSERT_EQ(0, REGION(0, 0, 0, SZ - MEMG_PAGE, res + MEMG_PAGE));
	/* In place (no MREMAP_MAYMOVE): over the slot's first page. */
	r = mremap(res, MEMG_PAGE, 2 * MEMG_PAGE, 0);
	EXPECT_EQ(MAP_FAILED, r);
	EXPECT_EQ(-1, inode_at(res + MEMG_PAGE));
	EXPECT_EQ(0, munmap(res, SZ));
	/* A SysV segment grows another way (its mapping has a close()). */
	self->shmid = shmget(IPC_PRIVATE, MEMG_PAGE, IPC_CREAT | 0600);
	ASSERT_LE(0, self->shmid);
	ASSERT_EQ(res, shmat(self->shmid, res, 0));
	r = mremap(res, MEMG_PAGE, 2 * MEMG_PAGE, 0);
	EXPECT_EQ(MAP_FAILED, r);
	EXPECT_EQ(-1, inode_at(res + MEMG_PAGE));
	EXPECT_EQ(0, shmdt(res));
}

TEST_F(rm, private_mapping_of_another_domains_memfd)
{
	char *sh, *priv, *g, *r;
	struct kg_vm v;

	NEWVM(0, P "red");
	NEWVM(1, P "blue");
	sh = memg_map_fd(self->memfd, SZ, MAP_SHARED, 0);
	priv = memg_map_fd(self->memfd, SZ, MAP_PRIVATE, 0);
	ASSERT_NE(NULL, sh);
	ASSERT_NE(NULL, priv);
	ASSERT_EQ(0, REGION(0, 0, 0, SZ, sh));
	/* Blue would read red's live writes through its page cache. */
	EXPECT_EQ(-EXDEV, REGION(1, 0, 0, SZ, priv));
	VMGET(1, v);
	EXPECT_EQ(1ULL, v.mem_shared_denied);
	/* And later, under a live slot of blue's. */
	g = guest_mem(SZ);
	ASSERT_NE(NULL, g);
	ASSERT_EQ(0, REGION(1, 0, 0, SZ, g));
	r = mmap(g, SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED,
		 self->memfd, 0);
	EXPECT_EQ(MAP_FAILED, r);
	EXPECT_EQ(EXDEV, errno);
	STILL_GUEST(g);
	/* deny: a private mapping of a memfd is a shared backing. */
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id[1], P "deny"));
	EXPECT_EQ(-EPERM, REGION(1, 1, MEMG_MIB, SZ, priv));
	/* Red may map its own object again under its slot (a VMM remapping
	 * a poisoned page).
	 */
	r = mmap(sh, SZ, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 self->memfd, 0);
	EXPECT_EQ(sh, r);
	VMGET(0, v);
	EXPECT_EQ(0ULL, v.mem_shared_denied);
}

TEST_F(rm, mergeable_region_mremapped_onto_slot)
{
	char *a, *g, *r;
	struct kg_vm v;

	a = memg_anon(SZ);
	g = guest_mem(SZ);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, g);
	/* Marked before the VM exists, which gets ksm deny at creation. */
	if (madvise(a, SZ, MADV_MERGEABLE))
		SKIP(return, "madvise(MADV_MERGEABLE): %s", strerror(errno));
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL, getpid(), P "ksm"));
	NEWVM(0, NULL);
	VMGET(0, v);
	ASSERT_STREQ(P "ksm", v.policy);
	ASSERT_EQ(0, REGION(0, 0, 0, SZ, g));
	r = mremap(a, SZ, SZ, MREMAP_MAYMOVE | MREMAP_FIXED, g);
	EXPECT_EQ(MAP_FAILED, r);
	EXPECT_NE(1, memg_vma_mergeable(0, g));
	EXPECT_EQ(1, memg_vma_mergeable(0, a));
	VMGET(0, v);
	EXPECT_LE(1ULL, v.mem_ksm_denied);
}

/* The extent of the mapping at @addr in /proc/self/maps: 0, or -1 if none. */
static int vma_at(const void *addr, unsigned long *lo, unsigned long *hi)
{
	unsigned long a = (unsigned long)addr;
	char line[512];
	int ret = -1;
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		return -2;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", lo, hi) == 2 && a >= *lo && a < *hi) {
			ret = 0;
			break;
		}
	fclose(f);
	return ret;
}

/* Is anything mapped in [@lo, @hi)? 1/0, -1 without /proc/self/maps. */
static int mapped_in(unsigned long lo, unsigned long hi)
{
	unsigned long a, b;
	char line[512];
	int ret = 0;
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a < hi && b > lo) {
			ret = 1;
			break;
		}
	fclose(f);
	return ret;
}

/* The slot of the stack test, below the stack mapping. */
#define GROW (2 * MEMG_MIB)

/*
 * A MAP_GROWSDOWN mapping made mergeable before the VM exists, a slot over
 * the hole just below it: a fault in the hole grows the mapping down into
 * the slot (expand_downwards(): no mmap call, so no mapping hook sees it)
 * and the grown part is VM_MERGEABLE. The stack guard gap is checked
 * against the mapping below the hole, not the hole: here that is a
 * PROT_NONE reservation (not accessible: no gap), 2 MiB less a page lower.
 */
TEST_F(rm, ksm_stack_grows_into_a_hole_of_the_slot)
{
	unsigned long lo, hi;
	struct kg_vm v;
	struct rlimit rl;
	char *res, *x, *hole;
	int ret;

	/* The stack mapping of GROW + 1 page must fit RLIMIT_STACK. */
	ASSERT_EQ(0, getrlimit(RLIMIT_STACK, &rl));
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 2 * GROW) {
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 2 * GROW)
			SKIP(return, "RLIMIT_STACK hard limit %llu",
			     (unsigned long long)rl.rlim_max);
		rl.rlim_cur = 2 * GROW;
		ASSERT_EQ(0, setrlimit(RLIMIT_STACK, &rl));
	}
	/* [res, res + 2 GROW): reserved; [res + 2 GROW, x): the hole; x: stack. */
	res = memg_reserve(4 * GROW);
	ASSERT_NE(NULL, res);
	x = res + 4 * GROW - MEMG_PAGE;
	hole = x - GROW;
	ASSERT_EQ(0, munmap(res + 2 * GROW, 2 * GROW));
	ASSERT_EQ(x, mmap(x, MEMG_PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN |
			  MAP_FIXED_NOREPLACE, -1, 0));
	if (madvise(x, MEMG_PAGE, MADV_MERGEABLE))
		SKIP(return, "madvise(MADV_MERGEABLE): %s", strerror(errno));
	ASSERT_EQ(1, memg_vma_mergeable(0, x));
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_PID, NULL, getpid(), P "ksm"));
	NEWVM(0, NULL);
	VMGET(0, v);
	ASSERT_STREQ(P "ksm", v.policy);
	/* Nothing was placed in the hole meanwhile. */
	ASSERT_EQ(0, mapped_in((unsigned long)res + 2 * GROW, (unsigned long)x));

	ret = REGION(0, 0, 0, GROW, hole);
	EXPECT_EQ(-EPERM, ret);
	VMGET(0, v);
	EXPECT_LE(1ULL, v.mem_ksm_denied);

	/*
	 * The road (the slot or not): a touch at the slot's first byte grows
	 * the stack mapping over all of it, mergeable.
	 */
	hole[0] = 1;
	ASSERT_EQ(0, vma_at(hole, &lo, &hi));
	EXPECT_EQ((unsigned long)hole, lo);
	EXPECT_EQ((unsigned long)x + MEMG_PAGE, hi);
	EXPECT_EQ(1, memg_vma_mergeable(0, hole));
	if (!ret)
		TH_LOG("slot %p-%p accepted; now under %lx-%lx, mergeable",
		       hole, x, lo, hi);
	munmap(res, 4 * GROW);
}

/* A slot over @n distinct memfd mappings, one page each. */
#define NMAPS 4000

TEST_F_TIMEOUT(rm, slot_over_thousands_of_shared_mappings, 240)
{
	struct kg_vm v;
	char *res;
	int fd, i;

	/*
	 * The VMs first: KVM_CREATE_VM's mmu_notifier_register() takes the
	 * lock of every file mapping of the process at once (mm_take_all_locks),
	 * more than lockdep can count in the debug kernel.
	 */
	NEWVM(0, P "red");
	NEWVM(1, P "blue");
	res = memg_reserve(NMAPS * MEMG_PAGE);
	ASSERT_NE(NULL, res);
	for (i = 0; i < NMAPS; i++) {
		fd = memg_memfd(MEMG_PAGE, 0);
		ASSERT_LE(0, fd);
		ASSERT_EQ(res + i * MEMG_PAGE,
			  mmap(res + i * MEMG_PAGE, MEMG_PAGE, PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_FIXED, fd, 0));
		close(fd);
	}
	EXPECT_EQ(0, REGION(0, 0, 0, NMAPS * MEMG_PAGE, res));
	VMGET(0, v);
	EXPECT_EQ(NMAPS * MEMG_PAGE, v.mem_shared_bytes);
	/* Every object is recorded: blue cannot take the last one. */
	EXPECT_EQ(-EXDEV, REGION(1, 0, 0, MEMG_PAGE, res + (NMAPS - 1) * MEMG_PAGE));
	EXPECT_EQ(0, REGION(0, 0, 0, 0, NULL));
	EXPECT_EQ(0, REGION(1, 0, 0, MEMG_PAGE, res + (NMAPS - 1) * MEMG_PAGE));
	munmap(res, NMAPS * MEMG_PAGE);
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
