// SPDX-License-Identifier: GPL-2.0
/*
 * tracing_off: kvmguard's hooks against the host's global switches of
 * the tracing machinery they are built on (review of issue 13, item 5:
 * "a livepatch can no longer undo them" - these are other roads to the
 * same place).
 *  - kernel.ftrace_enabled=0 (sysctl) turns every ftrace call site into
 *    a nop unless a registered ftrace_ops is FTRACE_OPS_FL_PERMANENT (as
 *    livepatch's are): the write must be refused while kvmguard enforces,
 *    or the rules must still hold.
 *  - /sys/kernel/debug/kprobes/enabled=0 disarms every kprobe: the VM
 *    destroy hook (a kprobe) must not be one of them, or a VM destroyed
 *    meanwhile stays registered with vm->kvm pointing to freed memory (and
 *    no VM_DESTROY event is sent).
 * Both switches are put back before any assertion.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <linux/kvm_para.h>

#include "kselftest_harness.h"
#include "hcg.h"
#include "kg.h"
#include "vm.h"

#define P "kgrv-"
#define FTRACE_ENABLED "/proc/sys/kernel/ftrace_enabled"
#define KPROBES_ENABLED "/sys/kernel/debug/kprobes/enabled"

/* hypercalls.c's guest: each KVM_RUN makes one hypercall and stops at the out. */
static const unsigned char hc_code[] = {
	0x66, 0xb8, 0, 0, 0, 0, 0x66, 0x31, 0xdb, 0x0f, 0x01, 0xd9,
	0x66, 0xe7, VM_IO_PORT, 0xeb, 0xef,
};
#define NR_OFFSET 2

/* Write @s to @path: 0 or -errno (of the open or the write). */
static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		err = -errno;
	close(fd);
	return err;
}

/* The first character of @path, or -errno. */
static int read_char(const char *path)
{
	char c;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	r = read(fd, &c, 1);
	close(fd);
	return r == 1 ? c : -EIO;
}

FIXTURE(rv) {
	struct gnl g;
	struct gnl sub;
	struct vm vm;
	uint64_t id;
};

FIXTURE_SETUP(rv)
{
	struct kg_vm v;
	uint64_t max;

	self->vm.fd = -1;
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
	ASSERT_EQ(0, kg_open(&self->sub));
	ASSERT_EQ(0, gnl_join(&self->sub, gnl_grp_id(&self->sub, KVMGUARD_MCGRP_EVENTS)));
	max = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, vm_create(&self->vm));
	ASSERT_EQ(0, vm_add_slot(&self->vm, 0, 0, VM_SLOT0_SIZE));
	memcpy((char *)self->vm.slots[0].hva + VM_CODE_GPA, hc_code, sizeof(hc_code));
	ASSERT_EQ(0, vm_add_vcpu(&self->vm, 0));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	self->id = v.id;
}

FIXTURE_TEARDOWN(rv)
{
	/* Whatever happened, the switches are on again. */
	if (read_char(FTRACE_ENABLED) == '0')
		write_str(FTRACE_ENABLED, "1");
	if (read_char(KPROBES_ENABLED) == '0')
		write_str(KPROBES_ENABLED, "1");
	if (self->vm.fd >= 0)
		vm_destroy(&self->vm);
	kg_cleanup(&self->g, P);
	gnl_close(&self->sub);
	gnl_close(&self->g);
}

/* One hypercall @nr; the guest's eax after it, or a poison on failure. */
static int64_t hcall(struct vm *vm, uint32_t nr)
{
	struct kvm_run *run = vm->vcpus[0].run;
	int32_t ret;
	int r;

	memcpy((char *)vm->slots[0].hva + VM_CODE_GPA + NR_OFFSET, &nr, 4);
	do {
		r = vcpu_run(&vm->vcpus[0]);
	} while (r == -EINTR);
	if (r != KVM_EXIT_IO || run->io.port != VM_IO_PORT || run->io.size != 4) {
		printf("# hypercall %u: exit %d\n", nr, r);
		return 0x7fffffffffffLL;
	}
	memcpy(&ret, (char *)run + run->io.data_offset, 4);
	return ret;
}

/* Wait up to @ms for an event of @type about VM @id; 0 or -ETIMEDOUT. */
static int wait_vm_event(struct gnl *sub, int type, uint64_t id, int ms)
{
	uint64_t deadline = kg_now_ns() + ms * 1000000ull;

	while (kg_now_ns() < deadline) {
		const struct nlmsghdr *nlh;
		int len = gnl_recv(sub, 100);

		if (len == -ETIMEDOUT)
			continue;
		if (len < 0)
			return len;
		for (nlh = (const void *)sub->rbuf; NLMSG_OK(nlh, (unsigned int)len);
		     nlh = NLMSG_NEXT(nlh, len)) {
			struct kg_event e;

			if (nlh->nlmsg_type != sub->family || kg_parse_event(nlh, &e))
				continue;
			if (e.type == type && e.vm_id == id)
				return 0;
		}
	}
	return -ETIMEDOUT;
}

TEST_F(rv, ftrace_enabled_off_keeps_the_rules)
{
	int64_t during;
	int err;

	if (read_char(FTRACE_ENABLED) < 0)
		SKIP(return, "no %s", FTRACE_ENABLED);
	if (read_char(FTRACE_ENABLED) != '1')
		SKIP(return, "ftrace is off already");
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "hc",
				KVMGUARD_MODE_ENFORCE, 1,
				1ull << KVM_HC_VAPIC_POLL_IRQ, -1));
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "hc"));
	ASSERT_EQ(-KVM_EPERM, hcall(&self->vm, KVM_HC_SCHED_YIELD));

	err = write_str(FTRACE_ENABLED, "0");
	if (err) {
		/* Refused: kvmguard's hooks are permanent ftrace users. */
		TH_LOG("ftrace_enabled=0 refused: %s", strerror(-err));
		EXPECT_EQ(-EBUSY, err);
		EXPECT_EQ(-KVM_EPERM, hcall(&self->vm, KVM_HC_SCHED_YIELD));
		return;
	}
	/* Nothing may be destroyed meanwhile: the destroy kprobe is off too. */
	during = hcall(&self->vm, KVM_HC_SCHED_YIELD);
	ASSERT_EQ(0, write_str(FTRACE_ENABLED, "1"));
	EXPECT_EQ(-KVM_EPERM, during)
		TH_LOG("sysctl kernel.ftrace_enabled=0 was accepted and the denied hypercall ran (%lld): every kvmguard hook was off",
		       (long long)during);
	EXPECT_EQ(-KVM_EPERM, hcall(&self->vm, KVM_HC_SCHED_YIELD));
}

TEST_F(rv, kprobes_disarmed_destroy_still_seen)
{
	struct kg_vm v;
	struct vm vm2;
	uint64_t max;
	int err, seen;

	if (read_char(KPROBES_ENABLED) < 0)
		mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	if (read_char(KPROBES_ENABLED) != '1')
		SKIP(return, "no %s, or kprobes disarmed already", KPROBES_ENABLED);
	max = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, vm_create(&vm2));
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));

	err = write_str(KPROBES_ENABLED, "0");
	if (err) {
		vm_destroy(&vm2);
		SKIP(return, "cannot disarm kprobes: %s", strerror(-err));
	}
	vm_destroy(&vm2);
	ASSERT_EQ(0, write_str(KPROBES_ENABLED, "1"));
	seen = wait_vm_event(&self->sub, KVMGUARD_EVENT_VM_DESTROY, v.id, 3000);
	if (seen) {
		/*
		 * VM v.id is still registered with a dangling vm->kvm: a VM
		 * dump would take a reference on freed memory. Unload the
		 * module (which does not follow vm->kvm) before anything
		 * dumps it, and load it again for the tests that follow.
		 */
		TH_LOG("VM %llu destroyed while kprobes were disarmed: no VM_DESTROY, it stays registered with a freed struct kvm; reloading kvmguard",
		       (unsigned long long)v.id);
		EXPECT_EQ(0, kg_rmmod());
		EXPECT_EQ(0, kg_insmod());
	}
	EXPECT_EQ(0, seen);
}

KG_HARNESS_MAIN(KG_NEED_KVM | KG_NEED_MODULE)
