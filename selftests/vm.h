/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vm: minimal KVM helper for the kvmguard selftests: a VM with user
 * memslots and vCPUs that run 16-bit real-mode code.
 */
#ifndef KVMGUARD_SELFTEST_VM_H
#define KVMGUARD_SELFTEST_VM_H

#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

#define VM_MAX_SLOTS	8
#define VM_MAX_VCPUS	8
/* Guest code lives at this guest-physical address in slot 0. */
#define VM_CODE_GPA	0x1000
#define VM_SLOT0_SIZE	0x10000
/* The looping guest writes its counter to this port. */
#define VM_IO_PORT	0x10

struct vm_slot {
	void *hva;
	uint64_t gpa;
	size_t size;
};

struct vcpu {
	int fd;
	int id;
	struct kvm_run *run;
	size_t run_size;
};

struct vm {
	int kvm_fd;
	int fd;
	struct vm_slot slots[VM_MAX_SLOTS];
	struct vcpu vcpus[VM_MAX_VCPUS];
	int nr_vcpus;
};

/* 0 if /dev/kvm can be opened and KVM_GET_API_VERSION is 12, else -errno. */
int kvm_available(void);
/* Open /dev/kvm and KVM_CREATE_VM. 0 or -errno. */
int vm_create(struct vm *vm);
/* vm_create + slot 0 with the looping guest code (out VM_IO_PORT; jmp). */
int vm_create_loop(struct vm *vm);
/* Back [gpa, gpa+size) with an anonymous mapping as user slot @slot. */
int vm_add_slot(struct vm *vm, uint32_t slot, uint64_t gpa, size_t size);
/*
 * KVM_SET_USER_MEMORY_REGION as given, bypassing vm->slots (for tests that
 * manage their own backing, flags and slot ids, address space 1 too):
 * 0 or -errno. A size of 0 deletes the slot.
 */
int vm_region(struct vm *vm, uint32_t slot, uint32_t flags, uint64_t gpa,
	      uint64_t size, const void *hva);
/* Delete user slot @slot (memory_size 0) and unmap it. */
int vm_del_slot(struct vm *vm, uint32_t slot);
/* Add vCPU @id starting in real mode at VM_CODE_GPA. Returns index or -errno. */
int vm_add_vcpu(struct vm *vm, int id);
/* One KVM_RUN; the exit reason or -errno. */
int vcpu_run(struct vcpu *v);
/* Close the VM fd (and /dev/kvm) only: vCPU fds keep the VM alive. */
void vm_close_vm_fd(struct vm *vm);
/* Close everything (the VM dies once the last fd is gone). */
void vm_destroy(struct vm *vm);

#endif
