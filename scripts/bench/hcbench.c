// SPDX-License-Identifier: GPL-2.0
/*
 * hcbench: cost of one KVM hypercall round trip, for `make bench`.
 *
 * A 16-bit real-mode guest runs "mov eax, NR; vmmcall; dec ecx; jnz" ECX times
 * and halts.  Runs with ECX = N and ECX = 2N; the difference of their times,
 * divided by N, cancels the fixed cost of KVM_RUN.  Under QEMU with
 * -icount shift=0,sleep=off a nanosecond of CLOCK_MONOTONIC is one emulated
 * instruction, so the result counts instructions and repeats exactly.
 *
 *   hcbench [-n N] [-r NR] [-k REPEATS]
 * prints: "hcbench: nr NR: X.XX ns per hypercall (N calls, best of REPEATS)"
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CODE_GPA	0x1000
#define MEM_SIZE	0x10000

static int vm_fd, vcpu_fd;
static struct kvm_run *run;

static void die(const char *what)
{
	fprintf(stderr, "hcbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void setup(uint32_t nr)
{
	/* loop: mov eax, NR; vmmcall; dec ecx; jnz loop; hlt */
	uint8_t code[] = {
		0x66, 0xb8, 0, 0, 0, 0,		/* mov eax, imm32 */
		0x0f, 0x01, 0xd9,		/* vmmcall */
		0x66, 0x49,			/* dec ecx */
		0x75, 0xf3,			/* jnz loop (-13) */
		0xf4,				/* hlt */
	};
	struct kvm_userspace_memory_region region = { 0 };
	struct kvm_sregs sregs;
	int kvm, run_size;
	uint8_t *mem;

	memcpy(&code[2], &nr, sizeof(nr));
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("/dev/kvm");
	vm_fd = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm_fd < 0)
		die("KVM_CREATE_VM");
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	memcpy(mem + CODE_GPA, code, sizeof(code));
	region.memory_size = MEM_SIZE;
	region.userspace_addr = (uintptr_t)mem;
	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("KVM_SET_USER_MEMORY_REGION");
	vcpu_fd = ioctl(vm_fd, KVM_CREATE_VCPU, 0);
	if (vcpu_fd < 0)
		die("KVM_CREATE_VCPU");
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < 0)
		die("KVM_GET_VCPU_MMAP_SIZE");
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
	if (run == MAP_FAILED)
		die("mmap kvm_run");
	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");
}

/* Run the loop for n calls; nanoseconds taken. */
static double run_loop(uint32_t n)
{
	struct kvm_regs regs = { .rip = CODE_GPA, .rcx = n, .rflags = 2 };
	struct timespec t0, t1;

	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (ioctl(vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			die("KVM_RUN");
		}
		if (run->exit_reason == KVM_EXIT_HLT)
			break;
		fprintf(stderr, "hcbench: unexpected exit %u\n", run->exit_reason);
		exit(1);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
}

int main(int argc, char **argv)
{
	uint32_t n = 10000, nr = 1;
	int opt, k, repeats = 3;
	double best = 0;

	while ((opt = getopt(argc, argv, "n:r:k:")) != -1) {
		switch (opt) {
		case 'n': n = strtoul(optarg, NULL, 0); break;
		case 'r': nr = strtoul(optarg, NULL, 0); break;
		case 'k': repeats = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: hcbench [-n N] [-r NR] [-k REPEATS]\n");
			return 2;
		}
	}
	if (!n || repeats < 1) {
		fprintf(stderr, "hcbench: N and REPEATS must be positive\n");
		return 2;
	}
	setup(nr);
	run_loop(n / 10 + 1);	/* warm up: page faults, caches */
	for (k = 0; k < repeats; k++) {
		double per = (run_loop(2 * n) - run_loop(n)) / n;

		if (!k || per < best)
			best = per;
	}
	printf("hcbench: nr %u: %.2f ns per hypercall (%u calls, best of %d)\n",
	       nr, best, n, repeats);
	return 0;
}
