// SPDX-License-Identifier: GPL-2.0
/* vm: minimal KVM helper for the kvmguard selftests. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "vm.h"

/*
 * 16-bit guest at VM_CODE_GPA:
 *	xor ax, ax
 * 1:	inc ax
 *	out VM_IO_PORT, al
 *	jmp 1b
 */
static const unsigned char guest_loop[] = {
	0x31, 0xc0,		/* xor ax, ax */
	0x40,			/* inc ax */
	0xe6, VM_IO_PORT,	/* out imm8, al */
	0xeb, 0xfb,		/* jmp -5 (to inc) */
};

int kvm_available(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int v;

	if (fd < 0)
		return -errno;
	v = ioctl(fd, KVM_GET_API_VERSION, 0);
	close(fd);
	return v == KVM_API_VERSION ? 0 : -ENOTSUP;
}

int vm_create(struct vm *vm)
{
	int err;

	memset(vm, 0, sizeof(*vm));
	vm->fd = -1;
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return -errno;
	do {
		vm->fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	} while (vm->fd < 0 && errno == EINTR);
	if (vm->fd < 0) {
		err = -errno;
		close(vm->kvm_fd);
		vm->kvm_fd = -1;
		return err;
	}
	/* Needed on Intel without unrestricted guest; harmless on AMD. */
	ioctl(vm->fd, KVM_SET_TSS_ADDR, 0xfffbd000UL);
	return 0;
}

int vm_create_loop(struct vm *vm)
{
	int err = vm_create(vm);

	if (err)
		return err;
	err = vm_add_slot(vm, 0, 0, VM_SLOT0_SIZE);
	if (err) {
		vm_destroy(vm);
		return err;
	}
	memcpy((char *)vm->slots[0].hva + VM_CODE_GPA, guest_loop, sizeof(guest_loop));
	return 0;
}

int vm_add_slot(struct vm *vm, uint32_t slot, uint64_t gpa, size_t size)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .guest_phys_addr = gpa, .memory_size = size,
	};
	void *p;

	if (slot >= VM_MAX_SLOTS || vm->slots[slot].hva)
		return -EINVAL;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	r.userspace_addr = (uintptr_t)p;
	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r)) {
		int err = -errno;

		munmap(p, size);
		return err;
	}
	vm->slots[slot] = (struct vm_slot){ .hva = p, .gpa = gpa, .size = size };
	return 0;
}

int vm_region(struct vm *vm, uint32_t slot, uint32_t flags, uint64_t gpa,
	      uint64_t size, const void *hva)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa,
		.memory_size = size, .userspace_addr = (uintptr_t)hva,
	};

	return ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r) ? -errno : 0;
}

int vm_del_slot(struct vm *vm, uint32_t slot)
{
	struct kvm_userspace_memory_region r = { .slot = slot };

	if (slot >= VM_MAX_SLOTS || !vm->slots[slot].hva)
		return -EINVAL;
	r.guest_phys_addr = vm->slots[slot].gpa;
	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r))
		return -errno;
	munmap(vm->slots[slot].hva, vm->slots[slot].size);
	memset(&vm->slots[slot], 0, sizeof(vm->slots[slot]));
	return 0;
}

int vm_add_vcpu(struct vm *vm, int id)
{
	struct vcpu *v;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int mmap_size, err;

	if (vm->nr_vcpus >= VM_MAX_VCPUS)
		return -ENOSPC;
	v = &vm->vcpus[vm->nr_vcpus];
	mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(struct kvm_run))
		return mmap_size < 0 ? -errno : -EINVAL;
	v->fd = ioctl(vm->fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0)
		return -errno;
	v->id = id;
	v->run_size = mmap_size;
	v->run = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		err = -errno;
		goto fail;
	}
	if (ioctl(v->fd, KVM_GET_SREGS, &sregs)) {
		err = -errno;
		goto fail_unmap;
	}
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs)) {
		err = -errno;
		goto fail_unmap;
	}
	memset(&regs, 0, sizeof(regs));
	regs.rip = VM_CODE_GPA;
	regs.rflags = 0x2;
	if (ioctl(v->fd, KVM_SET_REGS, &regs)) {
		err = -errno;
		goto fail_unmap;
	}
	return vm->nr_vcpus++;
fail_unmap:
	munmap(v->run, v->run_size);
fail:
	close(v->fd);
	memset(v, 0, sizeof(*v));
	return err;
}

int vcpu_run(struct vcpu *v)
{
	if (ioctl(v->fd, KVM_RUN, 0))
		return -errno;
	return v->run->exit_reason;
}

void vm_close_vm_fd(struct vm *vm)
{
	if (vm->fd >= 0)
		close(vm->fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->fd = -1;
	vm->kvm_fd = -1;
}

void vm_destroy(struct vm *vm)
{
	for (int i = 0; i < vm->nr_vcpus; i++) {
		munmap(vm->vcpus[i].run, vm->vcpus[i].run_size);
		close(vm->vcpus[i].fd);
	}
	vm->nr_vcpus = 0;
	vm_close_vm_fd(vm);
	for (int i = 0; i < VM_MAX_SLOTS; i++)
		if (vm->slots[i].hva)
			munmap(vm->slots[i].hva, vm->slots[i].size);
	memset(vm->slots, 0, sizeof(vm->slots));
}
