// SPDX-License-Identifier: GPL-2.0
/*
 * vm_fields: the registry's view of a VM follows reality: pid is the
 * creator's tgid (also from a non-main thread), comm is its comm at
 * creation (PR_SET_NAME), cgroup its cgroup v2 path at creation, created_ns
 * lies between the clock readings around KVM_CREATE_VM, vcpus counts
 * online vCPUs, memslots/mem_bytes follow adding and deleting user
 * memslots (both address spaces), doit and dump agree, flags are 0.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "kselftest_harness.h"
#include "kg.h"
#include "vm.h"

#define CG_A "/kvmguard-test/a"

FIXTURE(f) {
	struct gnl g;
	struct vm vm;
	char cg[4200];
	bool moved;
};

FIXTURE_SETUP(f)
{
	self->vm.fd = -1;
	ASSERT_EQ(0, kg_open(&self->g));
	ASSERT_EQ(0, kg_cg_self(self->cg, sizeof(self->cg)));
}

FIXTURE_TEARDOWN(f)
{
	if (self->vm.fd >= 0 || self->vm.nr_vcpus)
		vm_destroy(&self->vm);
	if (self->moved)
		kg_cg_enter(self->cg);
	kg_cg_rmdir(CG_A);
	kg_cg_rmdir("/kvmguard-test");
	gnl_close(&self->g);
}

static int get_vm(struct gnl *g, uint64_t id, struct kg_vm *v)
{
	return kg_vm_get(g, id, v);
}

TEST_F(f, identity_and_time)
{
	struct kg_vm v, d;
	struct kg_vm *all;
	uint64_t t0, t1, max;
	int n, found = 0;

	ASSERT_EQ(0, prctl(PR_SET_NAME, "kg-fields-comm"));
	max = kg_max_vm_id(&self->g);
	t0 = kg_now_ns();
	ASSERT_EQ(0, vm_create(&self->vm));
	t1 = kg_now_ns();
	/* A later comm change does not rewrite history. */
	ASSERT_EQ(0, prctl(PR_SET_NAME, "kg-renamed"));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	EXPECT_EQ(KG_VM_REQUIRED, v.present & KG_VM_REQUIRED);
	EXPECT_EQ(0, v.unknown);
	EXPECT_LT(max, v.id);
	EXPECT_EQ((uint32_t)getpid(), v.pid);
	EXPECT_STREQ("kg-fields-comm", v.comm);
	EXPECT_STREQ(self->cg, v.cgroup);
	EXPECT_LE(t0, v.created_ns);
	EXPECT_GE(t1, v.created_ns);
	EXPECT_EQ(0U, v.flags);
	EXPECT_EQ(0U, v.vcpus);
	EXPECT_EQ(0U, v.memslots);
	EXPECT_EQ(0ULL, v.mem_bytes);
	EXPECT_GE(KVMGUARD_BOUND_MAX, v.bound_by);
	EXPECT_EQ(v.bound_by != KVMGUARD_BOUND_NONE, v.has_policy);

	/* doit agrees with the dump. */
	ASSERT_EQ(0, get_vm(&self->g, v.id, &d));
	EXPECT_EQ(v.id, d.id);
	EXPECT_EQ(v.pid, d.pid);
	EXPECT_STREQ(v.comm, d.comm);
	EXPECT_STREQ(v.cgroup, d.cgroup);
	EXPECT_EQ(v.created_ns, d.created_ns);
	EXPECT_EQ(KG_VM_REQUIRED, d.present & KG_VM_REQUIRED);

	/* The dump lists it once. */
	ASSERT_EQ(0, kg_vm_dump(&self->g, &all, &n));
	for (int i = 0; i < n; i++)
		found += all[i].id == v.id;
	free(all);
	EXPECT_EQ(1, found);

	vm_destroy(&self->vm);
	EXPECT_EQ(-ENOENT, get_vm(&self->g, v.id, &d));
	EXPECT_EQ(-ENOENT, get_vm(&self->g, ~0ull, &d));
	int r = get_vm(&self->g, 0, &d);

	/* Ids start at 1: id 0 is out of range (ERANGE from the policy). */
	EXPECT_TRUE(r == -ENOENT || r == -EINVAL || r == -ERANGE) TH_LOG("VM_GET id 0: %d", r);
}

struct thr {
	struct vm *vm;
	int err;
	pid_t tid;
};

static void *thread_create(void *arg)
{
	struct thr *t = arg;

	t->tid = syscall(SYS_gettid);
	t->err = vm_create(t->vm);
	return NULL;
}

TEST_F(f, pid_is_tgid_from_thread)
{
	struct thr t = { .vm = &self->vm };
	struct kg_vm v;
	pthread_t th;
	uint64_t max = kg_max_vm_id(&self->g);

	ASSERT_EQ(0, pthread_create(&th, NULL, thread_create, &t));
	ASSERT_EQ(0, pthread_join(th, NULL));
	ASSERT_EQ(0, t.err);
	ASSERT_NE(getpid(), t.tid);
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	EXPECT_EQ((uint32_t)getpid(), v.pid);
	EXPECT_NE((uint32_t)t.tid, v.pid);
}

TEST_F(f, cgroup_at_creation)
{
	struct kg_vm v;
	uint64_t max = kg_max_vm_id(&self->g);

	ASSERT_EQ(0, kg_cg_mkdir(CG_A));
	ASSERT_EQ(0, kg_cg_enter(CG_A));
	self->moved = true;
	ASSERT_EQ(0, vm_create(&self->vm));
	ASSERT_EQ(0, kg_cg_enter(self->cg));
	self->moved = false;
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	EXPECT_STREQ(CG_A, v.cgroup);
}

TEST_F(f, vcpus)
{
	struct kg_vm v;
	uint64_t max = kg_max_vm_id(&self->g);

	ASSERT_EQ(0, vm_create_loop(&self->vm));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	EXPECT_EQ(0U, v.vcpus);
	ASSERT_EQ(0, vm_add_vcpu(&self->vm, 0));
	ASSERT_EQ(0, get_vm(&self->g, v.id, &v));
	EXPECT_EQ(1U, v.vcpus);
	ASSERT_EQ(1, vm_add_vcpu(&self->vm, 1));
	ASSERT_EQ(2, vm_add_vcpu(&self->vm, 5));
	ASSERT_EQ(0, get_vm(&self->g, v.id, &v));
	EXPECT_EQ(3U, v.vcpus);
	/* A refused vCPU (duplicate id) is not counted. */
	EXPECT_GT(0, vm_add_vcpu(&self->vm, 1));
	ASSERT_EQ(0, get_vm(&self->g, v.id, &v));
	EXPECT_EQ(3U, v.vcpus);
}

TEST_F(f, memslots)
{
	struct kvm_userspace_memory_region smm = {
		.slot = (1u << 16) | 2, .guest_phys_addr = 0x30000,
		.memory_size = 0x20000,
	};
	const uint64_t s0 = VM_SLOT0_SIZE, s5 = 3 << 20;
	struct kg_vm v;
	uint64_t max = kg_max_vm_id(&self->g);
	void *mem;

	ASSERT_EQ(0, vm_create(&self->vm));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	ASSERT_EQ(0, vm_add_slot(&self->vm, 0, 0, s0));
	ASSERT_EQ(0, vm_add_slot(&self->vm, 5, 0x100000, s5));
	ASSERT_EQ(0, get_vm(&self->g, v.id, &v));
	EXPECT_EQ(2U, v.memslots);
	EXPECT_EQ(s0 + s5, v.mem_bytes);

	/* A failed KVM_SET_USER_MEMORY_REGION (overlap) changes nothing. */
	EXPECT_GT(0, vm_add_slot(&self->vm, 6, 0x200000, 0x10000));
	ASSERT_EQ(0, get_vm(&self->g, v.id, &v));
	EXPECT_EQ(2U, v.memslots);
	EXPECT_EQ(s0 + s5, v.mem_bytes);

	ASSERT_EQ(0, vm_del_slot(&self->vm, 5));
	ASSERT_EQ(0, get_vm(&self->g, v.id, &v));
	EXPECT_EQ(1U, v.memslots);
	EXPECT_EQ(s0, v.mem_bytes);

	/* The SMM address space counts too (when KVM has it). */
	if (ioctl(self->vm.fd, KVM_CHECK_EXTENSION, KVM_CAP_MULTI_ADDRESS_SPACE) < 2)
		return;
	mem = mmap(NULL, smm.memory_size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	smm.userspace_addr = (uintptr_t)mem;
	ASSERT_EQ(0, ioctl(self->vm.fd, KVM_SET_USER_MEMORY_REGION, &smm));
	ASSERT_EQ(0, get_vm(&self->g, v.id, &v));
	EXPECT_EQ(2U, v.memslots);
	EXPECT_EQ(s0 + smm.memory_size, v.mem_bytes);
	smm.memory_size = 0;
	ASSERT_EQ(0, ioctl(self->vm.fd, KVM_SET_USER_MEMORY_REGION, &smm));
	ASSERT_EQ(0, get_vm(&self->g, v.id, &v));
	EXPECT_EQ(1U, v.memslots);
	EXPECT_EQ(s0, v.mem_bytes);
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
