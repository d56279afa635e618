// SPDX-License-Identifier: GPL-2.0
/*
 * mem_shared: POLICY_MEM_SHARED.
 * deny: a memslot over any shared mapping fails with EPERM: MAP_SHARED |
 * MAP_ANONYMOUS, a memfd, a tmpfs file (also one opened read-only, mapped
 * MAP_SHARED), a SysV shm segment, hugetlbfs (a file and a MFD_HUGETLB
 * memfd), a range that is private in its first half and shared in its
 * second, a range whose last page only is shared; a MAP_PRIVATE mapping
 * of a memfd or a file (its pages are the file's page cache until the
 * guest writes them). It allows MAP_PRIVATE | MAP_ANONYMOUS and a private
 * range that ends right where a shared mapping begins. Checked at creation only: memslots made
 * before a switch to deny stay and may move.
 * domain: one memfd may back memslots of VMs whose policies have the same
 * non-empty domain; a VM of another domain, or one with no domain (allow,
 * no policy, domain mode with an empty domain), fails with EXDEV, whichever
 * came first. Processes that are not VMs share freely. A VM's record of
 * the object goes with its memslot and with the VM.
 * VM_MEM_SHARED_BYTES counts the shared part of memslots (with or without a
 * policy) while some policy has a memory rule (slots made before the first
 * rule, and by VMs from before the module load, included), 0 when none has;
 * VM_MEM_SHARED_DENIED counts every refusal; refused memslots are not in
 * KVM, and neither are their records.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>

#include "kselftest_harness.h"
#include "kg.h"
#include "memg.h"
#include "vm.h"

#define P "kgms-"
#define SZ (64 * MEMG_KIB)

enum { DENY, ALLOW, RED1, RED2, BLUE, ALLOWRED, NODOM, NPOL };

static const char *const pol[NPOL] = {
	P "deny", P "allow", P "red1", P "red2", P "blue", P "allowred", P "nodom",
};

FIXTURE(sh) {
	struct gnl g;
	struct vm vm[2];
	uint64_t id[2];
	struct memg_child kid;
	struct memg_huge huge;
	char hfile[128];
	int shmid;
};

static void make_policies(struct __test_metadata *_metadata, struct gnl *g)
{
	ASSERT_EQ(0, memg_new(g, pol[DENY], NULL, MEMG_SHARED(KVMGUARD_MEM_SHARED_DENY)));
	ASSERT_EQ(0, memg_new(g, pol[ALLOW], NULL, MEMG_SHARED(KVMGUARD_MEM_SHARED_ALLOW)));
	ASSERT_EQ(0, memg_new(g, pol[RED1], "red", MEMG_SHARED(KVMGUARD_MEM_SHARED_DOMAIN)));
	ASSERT_EQ(0, memg_new(g, pol[RED2], "red", MEMG_SHARED(KVMGUARD_MEM_SHARED_DOMAIN)));
	ASSERT_EQ(0, memg_new(g, pol[BLUE], "blue", MEMG_SHARED(KVMGUARD_MEM_SHARED_DOMAIN)));
	ASSERT_EQ(0, memg_new(g, pol[ALLOWRED], "red", MEMG_SHARED(KVMGUARD_MEM_SHARED_ALLOW)));
	ASSERT_EQ(0, memg_new(g, pol[NODOM], NULL, MEMG_SHARED(KVMGUARD_MEM_SHARED_DOMAIN)));
}

FIXTURE_SETUP(sh)
{
	self->vm[0].fd = self->vm[1].fd = -1;
	self->kid.pid = -1;
	self->kid.to = self->kid.from = -1;
	self->shmid = -1;
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
	make_policies(_metadata, &self->g);
}

FIXTURE_TEARDOWN(sh)
{
	if (kg_ensure_loaded())
		TH_LOG("could not load the module again");
	memg_child_end(&self->kid);
	for (int i = 0; i < 2; i++)
		if (self->vm[i].fd >= 0)
			vm_destroy(&self->vm[i]);
	if (self->shmid >= 0)
		shmctl(self->shmid, IPC_RMID, NULL);
	if (self->hfile[0])
		unlink(self->hfile);
	memg_huge_put(&self->huge);
	kg_cleanup(&self->g, P);
	gnl_close(&self->g);
}

#define VMGET(i, v) ASSERT_EQ(0, memg_vm_get(&self->g, self->id[i], &(v)))
#define NEWVM(i, policy) \
	ASSERT_EQ(0, memg_vm(&self->g, &self->vm[i], policy, &self->id[i]))
#define REGION(i, slot, gpa, size, hva) vm_region(&self->vm[i], slot, 0, gpa, size, hva)
#define KVM_LACKS(i, slot) EXPECT_EQ(-EINVAL, vm_region(&self->vm[i], slot, 0, 0, 0, NULL))
#define DEL(i, slot) EXPECT_EQ(0, vm_region(&self->vm[i], slot, 0, 0, 0, NULL))

static void *shared_anon(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* A fresh memfd of SZ bytes mapped MAP_SHARED (*fd set); NULL on failure. */
static void *shared_memfd(int *fd)
{
	*fd = memg_memfd(SZ, 0);
	return *fd < 0 ? NULL : memg_map_fd(*fd, SZ, MAP_SHARED, 0);
}

/* A tmpfs file of SZ bytes, opened with @oflags. */
static int tmp_file(int oflags)
{
	char path[] = "/tmp/kgms-file.XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, SZ)) {
		close(fd);
		unlink(path);
		return -1;
	}
	if (oflags != O_RDWR) {
		int ro = open(path, oflags | O_CLOEXEC);

		close(fd);
		fd = ro;
	}
	unlink(path);
	return fd;
}

TEST_F(sh, deny_refuses_every_shared_backing)
{
	char *anon_sh, *mfd, *file, *file_ro, *shm, *half, *tail;
	int fd_m, fd_f, fd_ro, fd_half, refused = 0;
	struct kg_vm v;

	NEWVM(0, pol[DENY]);
	anon_sh = shared_anon(SZ);
	mfd = shared_memfd(&fd_m);
	fd_f = tmp_file(O_RDWR);
	ASSERT_LE(0, fd_f);
	file = memg_map_fd(fd_f, SZ, MAP_SHARED, 0);
	fd_ro = tmp_file(O_RDONLY);
	ASSERT_LE(0, fd_ro);
	file_ro = mmap(NULL, SZ, PROT_READ, MAP_SHARED, fd_ro, 0);
	ASSERT_NE(MAP_FAILED, file_ro);
	self->shmid = shmget(IPC_PRIVATE, SZ, IPC_CREAT | 0600);
	ASSERT_LE(0, self->shmid);
	shm = shmat(self->shmid, NULL, 0);
	ASSERT_NE((void *)-1, shm);
	ASSERT_NE(NULL, anon_sh);
	ASSERT_NE(NULL, mfd);
	ASSERT_NE(NULL, file);

	/* Private first half, memfd MAP_SHARED over the second. */
	half = memg_anon(2 * SZ);
	ASSERT_NE(NULL, half);
	fd_half = memg_memfd(SZ, 0);
	ASSERT_LE(0, fd_half);
	ASSERT_EQ(half + SZ, mmap(half + SZ, SZ, PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_FIXED, fd_half, 0));
	/* Private range whose last page only is shared. */
	tail = memg_anon(SZ);
	ASSERT_NE(NULL, tail);
	ASSERT_EQ(tail + SZ - MEMG_PAGE,
		  mmap(tail + SZ - MEMG_PAGE, MEMG_PAGE, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_FIXED | MAP_ANONYMOUS, -1, 0));

	EXPECT_EQ(-EPERM, REGION(0, 0, 0x000000, SZ, anon_sh));
	EXPECT_EQ(-EPERM, REGION(0, 1, 0x100000, SZ, mfd));
	EXPECT_EQ(-EPERM, REGION(0, 2, 0x200000, SZ, file));
	EXPECT_EQ(-EPERM, vm_region(&self->vm[0], 3, KVM_MEM_READONLY, 0x300000, SZ, file_ro));
	EXPECT_EQ(-EPERM, REGION(0, 4, 0x400000, SZ, shm));
	EXPECT_EQ(-EPERM, REGION(0, 5, 0x500000, 2 * SZ, half));
	EXPECT_EQ(-EPERM, REGION(0, 6, 0x600000, SZ, tail));
	refused = 7;
	for (int s = 0; s < refused; s++) {
		KVM_LACKS(0, s);
	}
	/* Only the private half / the private pages: allowed. */
	EXPECT_EQ(0, REGION(0, 7, 0x700000, SZ, half));
	EXPECT_EQ(0, REGION(0, 8, 0x800000, SZ - MEMG_PAGE, tail));

	VMGET(0, v);
	EXPECT_EQ((uint64_t)refused, v.mem_shared_denied);
	EXPECT_EQ(2U, v.memslots);
	EXPECT_EQ(2 * SZ - MEMG_PAGE, v.mem_bytes);
	EXPECT_EQ(0ULL, v.mem_shared_bytes);
	EXPECT_EQ(0ULL, v.mem_limit_denied);
	EXPECT_EQ(0ULL, v.mem_ksm_denied);

	shmdt(shm);
	close(fd_m);
	close(fd_f);
	close(fd_ro);
	close(fd_half);
}

TEST_F(sh, deny_private_mappings_of_files)
{
	char *anon, *mfd_priv, *file_priv;
	int fd_m, fd_f;
	struct kg_vm v;

	NEWVM(0, pol[DENY]);
	anon = memg_anon(SZ);
	fd_m = memg_memfd(SZ, 0);
	ASSERT_LE(0, fd_m);
	ASSERT_EQ((ssize_t)5, pwrite(fd_m, "hello", 5, 0));
	mfd_priv = memg_map_fd(fd_m, SZ, MAP_PRIVATE, 0);
	fd_f = tmp_file(O_RDWR);
	ASSERT_LE(0, fd_f);
	file_priv = memg_map_fd(fd_f, SZ, MAP_PRIVATE, 0);
	ASSERT_NE(NULL, anon);
	ASSERT_NE(NULL, mfd_priv);
	ASSERT_NE(NULL, file_priv);
	mfd_priv[0] = 'H';	/* a private copy now */

	EXPECT_EQ(0, REGION(0, 0, 0x000000, SZ, anon));
	/* Even a page the process wrote (its own copy): the rest is not. */
	EXPECT_EQ(-EPERM, REGION(0, 1, 0x100000, SZ, mfd_priv));
	EXPECT_EQ(-EPERM, REGION(0, 2, 0x200000, SZ, file_priv));
	VMGET(0, v);
	EXPECT_EQ(1U, v.memslots);
	EXPECT_EQ(SZ, v.mem_bytes);
	EXPECT_EQ(0ULL, v.mem_shared_bytes);
	EXPECT_EQ(2ULL, v.mem_shared_denied);
	close(fd_m);
	close(fd_f);
}

TEST_F(sh, shared_bytes_with_and_without_policy)
{
	char *mfd, *anon_sh, *priv;
	int fd_m;
	struct kg_vm v;

	mfd = shared_memfd(&fd_m);
	anon_sh = shared_anon(2 * SZ);
	priv = memg_anon(SZ);
	ASSERT_NE(NULL, mfd);
	ASSERT_NE(NULL, anon_sh);
	ASSERT_NE(NULL, priv);

	for (int i = 0; i < 2; i++) {
		/* VM 0 has no policy, VM 1 the allow policy. */
		NEWVM(i, i ? pol[ALLOW] : NULL);
		EXPECT_EQ(0, REGION(i, 0, 0x000000, SZ, mfd));
		EXPECT_EQ(0, REGION(i, 1, 0x100000, 2 * SZ, anon_sh));
		EXPECT_EQ(0, REGION(i, 2, 0x200000, SZ, priv));
		VMGET(i, v);
		EXPECT_EQ(4 * SZ, v.mem_bytes);
		EXPECT_EQ(3 * SZ, v.mem_shared_bytes);
		/* A move keeps the memslot's bytes where they were counted. */
		EXPECT_EQ(0, REGION(i, 0, 0x300000, SZ, mfd));
		VMGET(i, v);
		EXPECT_EQ(3 * SZ, v.mem_shared_bytes);
		DEL(i, 0);
		VMGET(i, v);
		EXPECT_EQ(2 * SZ, v.mem_shared_bytes);
		DEL(i, 1);
		DEL(i, 2);
		VMGET(i, v);
		EXPECT_EQ(0ULL, v.mem_shared_bytes);
		EXPECT_EQ(0ULL, v.mem_bytes);
		EXPECT_EQ(0ULL, v.mem_shared_denied);
	}
	close(fd_m);
}

TEST_F(sh, shared_bytes_count_the_shared_part)
{
	char *half;
	int fd;
	struct kg_vm v;

	half = memg_anon(2 * SZ);
	ASSERT_NE(NULL, half);
	fd = memg_memfd(SZ, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(half + SZ, mmap(half + SZ, SZ, PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_FIXED, fd, 0));
	NEWVM(0, pol[ALLOW]);
	EXPECT_EQ(0, REGION(0, 0, 0, 2 * SZ, half));
	VMGET(0, v);
	EXPECT_EQ(2 * SZ, v.mem_bytes);
	EXPECT_EQ(SZ, v.mem_shared_bytes);
	close(fd);
}

TEST_F(sh, slot_kvm_refuses_leaves_no_record)
{
	char *a;
	int fd;
	struct kg_vm v;

	a = shared_memfd(&fd);
	ASSERT_NE(NULL, a);
	NEWVM(0, pol[RED1]);
	NEWVM(1, pol[BLUE]);
	ASSERT_EQ(0, REGION(0, 0, 0, SZ, memg_anon(SZ)));
	/* Overlaps slot 0: KVM says EEXIST after the rules said yes. */
	EXPECT_EQ(-EEXIST, REGION(0, 1, 0, SZ, a));
	VMGET(0, v);
	EXPECT_EQ(1U, v.memslots);
	EXPECT_EQ(0ULL, v.mem_shared_bytes);
	EXPECT_EQ(0ULL, v.mem_shared_denied);
	/* So blue may use the object. */
	EXPECT_EQ(0, REGION(1, 0, 0, SZ, a));
	close(fd);
}

TEST_F(sh, deny_is_checked_at_creation)
{
	char *mfd, *mfd2;
	int fd_m, fd_m2;
	struct kg_vm v;

	mfd = shared_memfd(&fd_m);
	mfd2 = shared_memfd(&fd_m2);
	ASSERT_NE(NULL, mfd);
	ASSERT_NE(NULL, mfd2);
	ASSERT_EQ(0, memg_new(&self->g, P "flip", NULL, MEMG_SHARED(KVMGUARD_MEM_SHARED_ALLOW)));
	NEWVM(0, P "flip");
	ASSERT_EQ(0, REGION(0, 0, 0, SZ, mfd));
	ASSERT_EQ(0, memg_set(&self->g, P "flip", MEMG_SHARED(KVMGUARD_MEM_SHARED_DENY)));
	/* The existing memslot stays, may move and change flags. */
	EXPECT_EQ(0, REGION(0, 0, 0x100000, SZ, mfd));
	EXPECT_EQ(0, vm_region(&self->vm[0], 0, KVM_MEM_LOG_DIRTY_PAGES, 0x100000, SZ, mfd));
	/* A new one over the same or another shared object does not. */
	EXPECT_EQ(-EPERM, REGION(0, 1, 0x200000, SZ, mfd));
	EXPECT_EQ(-EPERM, REGION(0, 1, 0x200000, SZ, mfd2));
	KVM_LACKS(0, 1);
	VMGET(0, v);
	EXPECT_EQ(1U, v.memslots);
	EXPECT_EQ(SZ, v.mem_shared_bytes);
	EXPECT_EQ(2ULL, v.mem_shared_denied);
	/* Back to allow. */
	ASSERT_EQ(0, memg_set(&self->g, P "flip", MEMG_SHARED(KVMGUARD_MEM_SHARED_ALLOW)));
	EXPECT_EQ(0, REGION(0, 1, 0x200000, SZ, mfd2));
	VMGET(0, v);
	EXPECT_EQ(2 * SZ, v.mem_shared_bytes);
	EXPECT_EQ(2ULL, v.mem_shared_denied);
	close(fd_m);
	close(fd_m2);
}

TEST_F(sh, hugetlbfs)
{
	char why[256], *hf, *hm;
	int fd_f, fd_m;
	struct kg_vm v;

	if (memg_huge_get(&self->huge, 2, why, sizeof(why)))
		SKIP(return, "%s", why);
	snprintf(self->hfile, sizeof(self->hfile), "%s/kgms-huge.%d", self->huge.dir, getpid());
	fd_f = open(self->hfile, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	ASSERT_LE(0, fd_f);
	ASSERT_EQ(0, ftruncate(fd_f, MEMG_HUGE));
	hf = memg_map_fd(fd_f, MEMG_HUGE, MAP_SHARED, 0);
	ASSERT_NE(NULL, hf) TH_LOG("mmap of the hugetlbfs file: %s", strerror(errno));
	fd_m = memg_memfd(MEMG_HUGE, MFD_HUGETLB);
	ASSERT_LE(0, fd_m);
	hm = memg_map_fd(fd_m, MEMG_HUGE, MAP_SHARED, 0);
	ASSERT_NE(NULL, hm) TH_LOG("mmap of the hugetlb memfd: %s", strerror(errno));
	hf[0] = hm[0] = 1;

	NEWVM(0, pol[DENY]);
	EXPECT_EQ(-EPERM, REGION(0, 0, 0, MEMG_HUGE, hf));
	EXPECT_EQ(-EPERM, REGION(0, 1, MEMG_HUGE, MEMG_HUGE, hm));
	KVM_LACKS(0, 0);
	KVM_LACKS(0, 1);
	VMGET(0, v);
	EXPECT_EQ(2ULL, v.mem_shared_denied);
	EXPECT_EQ(0ULL, v.mem_shared_bytes);

	ASSERT_EQ(0, kg_vm_set(&self->g, self->id[0], pol[ALLOW]));
	EXPECT_EQ(0, REGION(0, 0, 0, MEMG_HUGE, hf));
	EXPECT_EQ(0, REGION(0, 1, MEMG_HUGE, MEMG_HUGE, hm));
	VMGET(0, v);
	EXPECT_EQ(2 * MEMG_HUGE, v.mem_shared_bytes);
	EXPECT_EQ(2 * MEMG_HUGE, v.mem_bytes);
	vm_destroy(&self->vm[0]);
	munmap(hf, MEMG_HUGE);
	munmap(hm, MEMG_HUGE);
	close(fd_f);
	close(fd_m);
}

/* VM 0 with @p0 then VM 1 with @p1 put a slot on one memfd (separate mmaps). */
static void two_on_one(struct __test_metadata *_metadata, FIXTURE_DATA(sh) *self,
		       int p0, int p1, int want1)
{
	char *a, *b;
	int fd;
	struct kg_vm v0, v1;

	a = shared_memfd(&fd);
	ASSERT_NE(NULL, a);
	b = memg_map_fd(fd, SZ, MAP_SHARED, 0);
	ASSERT_NE(NULL, b);
	NEWVM(0, pol[p0]);
	NEWVM(1, pol[p1]);
	ASSERT_EQ(0, REGION(0, 0, 0, SZ, a));
	EXPECT_EQ(want1, REGION(1, 0, 0, SZ, b))
		TH_LOG("%s then %s", pol[p0], pol[p1]);
	VMGET(0, v0);
	VMGET(1, v1);
	EXPECT_EQ(0ULL, v0.mem_shared_denied);
	EXPECT_EQ(want1 ? 1ULL : 0ULL, v1.mem_shared_denied);
	EXPECT_EQ(SZ, v0.mem_shared_bytes);
	EXPECT_EQ(want1 ? 0 : SZ, v1.mem_shared_bytes);
	if (want1) {
		KVM_LACKS(1, 0);
	} else {
		/* The same mapping as VM 0's, in a second memslot. */
		EXPECT_EQ(0, REGION(1, 1, 0x100000, SZ, a));
	}
	vm_destroy(&self->vm[0]);
	vm_destroy(&self->vm[1]);
	munmap(a, SZ);
	munmap(b, SZ);
	close(fd);
}

TEST_F(sh, domain_same_domain_shares)
{
	two_on_one(_metadata, self, RED1, RED2, 0);
	two_on_one(_metadata, self, RED1, RED1, 0);
	/* allow with domain red and domain-mode red: the same domain. */
	two_on_one(_metadata, self, RED1, ALLOWRED, 0);
	two_on_one(_metadata, self, ALLOWRED, RED2, 0);
	/* Two VMs that both allow sharing. */
	two_on_one(_metadata, self, ALLOW, ALLOW, 0);
}

TEST_F(sh, domain_other_domain_refused_both_orders)
{
	two_on_one(_metadata, self, RED1, BLUE, -EXDEV);
	two_on_one(_metadata, self, BLUE, RED1, -EXDEV);
}

TEST_F(sh, domain_without_domain_refused_both_orders)
{
	two_on_one(_metadata, self, RED1, ALLOW, -EXDEV);
	two_on_one(_metadata, self, ALLOW, RED1, -EXDEV);
	/* Domain mode with an empty domain shares with no VM. */
	two_on_one(_metadata, self, NODOM, NODOM, -EXDEV);
	two_on_one(_metadata, self, RED1, NODOM, -EXDEV);
	two_on_one(_metadata, self, NODOM, ALLOW, -EXDEV);
}

TEST_F(sh, domain_vm_without_policy_first)
{
	char *a;
	int fd;
	struct kg_vm v;

	a = shared_memfd(&fd);
	ASSERT_NE(NULL, a);
	NEWVM(0, NULL);
	NEWVM(1, pol[RED1]);
	ASSERT_EQ(0, REGION(0, 0, 0, SZ, a));
	EXPECT_EQ(-EXDEV, REGION(1, 0, 0, SZ, a));
	KVM_LACKS(1, 0);
	VMGET(1, v);
	EXPECT_EQ(1ULL, v.mem_shared_denied);
	close(fd);
}

TEST_F(sh, domain_one_vm_several_slots_and_objects)
{
	char *a, *b, *c;
	int fa, fb;
	struct kg_vm v;

	a = shared_memfd(&fa);
	b = shared_memfd(&fb);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	c = memg_map_fd(fa, SZ, MAP_SHARED, 0);
	ASSERT_NE(NULL, c);
	NEWVM(0, pol[RED1]);
	NEWVM(1, pol[BLUE]);
	/* One VM, the same object twice; other objects for other domains. */
	EXPECT_EQ(0, REGION(0, 0, 0x000000, SZ, a));
	EXPECT_EQ(0, REGION(0, 1, 0x100000, SZ, c));
	EXPECT_EQ(0, REGION(1, 0, 0x000000, SZ, b));
	EXPECT_EQ(-EXDEV, REGION(1, 1, 0x100000, SZ, c));
	EXPECT_EQ(-EXDEV, REGION(0, 2, 0x200000, SZ, b));
	VMGET(0, v);
	EXPECT_EQ(2 * SZ, v.mem_shared_bytes);
	EXPECT_EQ(1ULL, v.mem_shared_denied);
	VMGET(1, v);
	EXPECT_EQ(SZ, v.mem_shared_bytes);
	EXPECT_EQ(1ULL, v.mem_shared_denied);
	/* One of VM 0's two memslots gone: it still uses the object. */
	DEL(0, 0);
	EXPECT_EQ(-EXDEV, REGION(1, 1, 0x100000, SZ, a));
	DEL(0, 1);
	EXPECT_EQ(0, REGION(1, 1, 0x100000, SZ, a));
	close(fa);
	close(fb);
}

TEST_F(sh, domain_record_goes_with_slot_and_vm)
{
	char *a;
	int fd;

	a = shared_memfd(&fd);
	ASSERT_NE(NULL, a);
	NEWVM(0, pol[RED1]);
	NEWVM(1, pol[BLUE]);
	ASSERT_EQ(0, REGION(0, 0, 0, SZ, a));
	EXPECT_EQ(-EXDEV, REGION(1, 0, 0, SZ, a));
	/* Slot deleted: blue may use it; then red may not. */
	DEL(0, 0);
	EXPECT_EQ(0, REGION(1, 0, 0, SZ, a));
	EXPECT_EQ(-EXDEV, REGION(0, 0, 0, SZ, a));
	/* Blue's VM destroyed (its memslot with it): red may. */
	vm_destroy(&self->vm[1]);
	EXPECT_EQ(0, REGION(0, 0, 0, SZ, a));
	NEWVM(1, pol[BLUE]);
	EXPECT_EQ(-EXDEV, REGION(1, 0, 0, SZ, a));
	close(fd);
}

TEST_F(sh, domain_edit_applies_to_later_slots)
{
	char *a;
	int fd;
	struct kg_vm v;

	a = shared_memfd(&fd);
	ASSERT_NE(NULL, a);
	ASSERT_EQ(0, memg_new(&self->g, P "pink", "red",
			      MEMG_SHARED(KVMGUARD_MEM_SHARED_DOMAIN)));
	NEWVM(0, pol[RED1]);
	NEWVM(1, P "pink");
	ASSERT_EQ(0, REGION(0, 0, 0, SZ, a));
	ASSERT_EQ(0, REGION(1, 0, 0, SZ, a));
	ASSERT_EQ(0, kg_policy_set(&self->g, P "pink", -1, "pink"));
	/* Both memslots stay; a new one of the renamed domain does not. */
	VMGET(1, v);
	EXPECT_EQ(1U, v.memslots);
	EXPECT_EQ(-EXDEV, REGION(1, 1, 0x100000, SZ, a));
	VMGET(1, v);
	EXPECT_EQ(1ULL, v.mem_shared_denied);
	close(fd);
}

TEST_F_TIMEOUT(sh, vm_from_before_the_module_load, 60)
{
	struct vm old = { .fd = -1 };
	struct kg_vm *vv;
	char *a, *p;
	int fd, n;

	a = shared_memfd(&fd);
	p = memg_anon(SZ);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, p);
	gnl_close(&self->g);
	ASSERT_EQ(0, kg_rmmod());
	ASSERT_EQ(0, vm_create(&old));
	ASSERT_EQ(0, vm_region(&old, 0, 0, 0, SZ, a));
	ASSERT_EQ(0, vm_region(&old, 1, KVM_MEM_LOG_DIRTY_PAGES, 0x100000, SZ, p));
	ASSERT_EQ(0, kg_insmod());
	ASSERT_EQ(0, kg_open(&self->g));
	make_policies(_metadata, &self->g);

	ASSERT_EQ(0, kg_vms_of_pid(&self->g, getpid(), &vv, &n));
	ASSERT_EQ(1, n);
	EXPECT_EQ((uint32_t)KVMGUARD_VM_F_DISCOVERED, vv[0].flags);
	EXPECT_EQ(2U, vv[0].memslots);
	EXPECT_EQ(2 * SZ, vv[0].mem_bytes);
	EXPECT_EQ(SZ, vv[0].mem_dirty_bytes);
	TH_LOG("discovered VM: VM_MEM_SHARED_BYTES %llu",
	       (unsigned long long)vv[0].mem_shared_bytes);
	free(vv);

	/* Its memslot on the memfd is a use of the object like any other. */
	NEWVM(0, pol[RED1]);
	EXPECT_EQ(-EXDEV, REGION(0, 0, 0, SZ, a))
		TH_LOG("a VM of another domain shares an object with a VM from before the load");
	vm_destroy(&old);
	EXPECT_EQ(0, REGION(0, 1, 0x100000, SZ, a));
	close(fd);
}

/* Does any policy on the host have a memory rule? */
static bool any_memory_rule(struct gnl *g)
{
	struct kg_policy *p;
	bool any = false;
	int n;

	if (kg_policy_dump(g, &p, &n))
		return true;
	for (int i = 0; i < n; i++)
		any |= p[i].mem_max != KVMGUARD_MEM_UNLIMITED ||
		       p[i].mem_dirty_max != KVMGUARD_MEM_UNLIMITED ||
		       p[i].mem_shared != KVMGUARD_MEM_SHARED_ALLOW ||
		       p[i].mem_ksm != KVMGUARD_KSM_ALLOW;
	free(p);
	return any;
}

TEST_F(sh, shared_bytes_known_while_a_rule_exists)
{
	char *a;
	int fd;
	struct kg_vm v;

	kg_cleanup(&self->g, P);
	if (any_memory_rule(&self->g))
		SKIP(return, "a policy other than this test's has a memory rule");
	a = shared_memfd(&fd);
	ASSERT_NE(NULL, a);
	NEWVM(0, NULL);
	ASSERT_EQ(0, REGION(0, 0, 0, SZ, a));
	VMGET(0, v);
	EXPECT_EQ(0ULL, v.mem_shared_bytes);

	/* The first rule attaches the hook, which finds the slot made before. */
	ASSERT_EQ(0, memg_new(&self->g, P "hook", NULL, MEMG_MAX(1ull << 40)));
	VMGET(0, v);
	EXPECT_EQ(SZ, v.mem_shared_bytes);
	ASSERT_EQ(0, memg_new(&self->g, pol[RED1], "red",
			      MEMG_SHARED(KVMGUARD_MEM_SHARED_DOMAIN)));
	NEWVM(1, pol[RED1]);
	EXPECT_EQ(-EXDEV, REGION(1, 0, 0, SZ, a));

	/* While one rule is left the hook stays; the last one gone, it goes. */
	vm_destroy(&self->vm[1]);
	ASSERT_EQ(0, kg_policy_del(&self->g, P "hook"));
	VMGET(0, v);
	EXPECT_EQ(SZ, v.mem_shared_bytes);
	ASSERT_EQ(0, kg_policy_del(&self->g, pol[RED1]));
	VMGET(0, v);
	EXPECT_EQ(0ULL, v.mem_shared_bytes);
	close(fd);
}

/* A child that maps the memfd @arg (an fd number) shared and writes to it. */
static int mapper(int in, int out, void *arg)
{
	int fd = (int)(intptr_t)arg;
	char *p = memg_map_fd(fd, SZ, MAP_SHARED, 0), c = p ? 'k' : 'e';

	if (p)
		p[0] = 'x';
	if (memg_write(out, &c, 1))
		return 2;
	/* Hold the mapping until the parent is done. */
	while (read(in, &c, 1) > 0)
		;
	return 0;
}

TEST_F(sh, domain_non_vm_process_shares_freely)
{
	char *a, c;
	int fd;
	struct kg_vm v;

	a = shared_memfd(&fd);
	ASSERT_NE(NULL, a);
	ASSERT_EQ(0, memg_child_start(&self->kid, mapper, (void *)(intptr_t)fd));
	ASSERT_EQ(0, memg_read(self->kid.from, &c, 1));
	ASSERT_EQ('k', c);
	EXPECT_EQ('x', a[0]);
	NEWVM(0, pol[RED1]);
	EXPECT_EQ(0, REGION(0, 0, 0, SZ, a));
	VMGET(0, v);
	EXPECT_EQ(0ULL, v.mem_shared_denied);
	EXPECT_EQ(SZ, v.mem_shared_bytes);
	EXPECT_EQ(0, memg_child_end(&self->kid));
	close(fd);
}

struct vmkid_arg {
	int fd;
	const char *policy;
};

/* A child VM with @policy puts a slot on the memfd; reports id and result. */
static int vmkid(int in, int out, void *arg)
{
	struct vmkid_arg *a = arg;
	struct gnl g;
	struct vm vm;
	uint64_t id = 0;
	int32_t res = -ENOMEM;
	char *p, c;

	if (kg_open(&g) || memg_vm(&g, &vm, a->policy, &id))
		return 2;
	p = memg_map_fd(a->fd, SZ, MAP_SHARED, 0);
	if (p)
		res = vm_region(&vm, 0, 0, 0, SZ, p);
	if (memg_write(out, &id, sizeof(id)) || memg_write(out, &res, sizeof(res)))
		return 3;
	while (read(in, &c, 1) > 0)
		;
	vm_destroy(&vm);
	gnl_close(&g);
	return 0;
}

TEST_F(sh, domain_across_processes)
{
	struct vmkid_arg arg;
	uint64_t kid_id;
	int32_t res;
	char *a;
	int fd;
	struct kg_vm v;

	a = shared_memfd(&fd);
	ASSERT_NE(NULL, a);
	NEWVM(0, pol[RED1]);
	ASSERT_EQ(0, REGION(0, 0, 0, SZ, a));

	arg = (struct vmkid_arg){ .fd = fd, .policy = pol[BLUE] };
	ASSERT_EQ(0, memg_child_start(&self->kid, vmkid, &arg));
	ASSERT_EQ(0, memg_read(self->kid.from, &kid_id, sizeof(kid_id)));
	ASSERT_EQ(0, memg_read(self->kid.from, &res, sizeof(res)));
	EXPECT_EQ(-EXDEV, res);
	ASSERT_EQ(0, memg_vm_get(&self->g, kid_id, &v));
	EXPECT_EQ(1ULL, v.mem_shared_denied);
	EXPECT_EQ(0, memg_child_end(&self->kid));

	arg.policy = pol[RED2];
	ASSERT_EQ(0, memg_child_start(&self->kid, vmkid, &arg));
	ASSERT_EQ(0, memg_read(self->kid.from, &kid_id, sizeof(kid_id)));
	ASSERT_EQ(0, memg_read(self->kid.from, &res, sizeof(res)));
	EXPECT_EQ(0, res);
	/* While red VMs share it, blue here is refused too. */
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id[0], pol[BLUE]));
	EXPECT_EQ(-EXDEV, REGION(0, 1, 0x100000, SZ, a));
	EXPECT_EQ(0, memg_child_end(&self->kid));
	close(fd);
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
