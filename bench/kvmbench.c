// SPDX-License-Identifier: GPL-2.0
/*
 * kvmbench: one measurement of `make bench`, run inside the test host.
 *
 * Creates a VM straight on /dev/kvm (one 64 KiB memslot, one vCPU in 16-bit
 * real mode, no in-kernel irqchip) whose code loops ECX times on one exit
 * and then halts:
 *   hypercall: mov eax, 1; vmmcall; dec ecx; jnz   (KVM_HC_VAPIC_POLL_IRQ,
 *              handled inside KVM: no exit to this process)
 *   pio:       out 0x10, al; dec ecx; jnz          (every out exits to this
 *              process, which checks it and re-enters with KVM_RUN)
 * CLOCK_MONOTONIC is read around the whole KVM_RUN sequence of a run. After
 * a warm-up run (page faults, caches) it times a run of 1 iteration and one
 * of N and prints, per round trip, (t(N) - t(1)) / (N - 1): the difference
 * drops the fixed cost of entering and leaving the guest once. Under QEMU
 * -icount shift=0 a nanosecond is one emulated instruction, so this counts
 * the instructions of one round trip (host kernel, guest, and for pio the
 * VMM loop). The two timed runs are the windows of BENCH_PROFILE=1
 * (bench/kgprof.h).
 *
 *   memslot:   the same VM, plus a second memslot of 16 MiB (so it looks
 *              like a VM with RAM beside its firmware), after its vCPU ran
 *              once (the MMU is set up); then KVM_SET_USER_MEMORY_REGION
 *              creates and deletes memslot 2 (2 MiB of anonymous private
 *              memory, 2 MiB aligned) N times. Same timing scheme, per
 *              create + delete pair; every ioctl must succeed.
 *
 *   memslot-many: the memslot VM, but memslot 2 covers MANY_MAPS pages,
 *              each a MAP_SHARED mapping of a memfd of its own (what a
 *              slot over many distinct shared objects costs the rules
 *              that record them). Per create + delete pair.
 *
 *   kvmbench hypercall|pio|memslot|memslot-many N
 * prints: "<per round trip, 2 decimals> <t(N) ns> <t(1) ns> <N>"
 * Exit status 1 on any failure (including a hypercall that did not return 0,
 * or a memslot change that failed, e.g. one refused by a policy: the bench
 * would then measure the wrong path).
 */
#define _GNU_SOURCE
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

#include "kgprof.h"

#define CODE_GPA	0x1000
#define MEM_SIZE	0x10000
#define PIO_PORT	0x10
#define RAM_SLOT	1
#define RAM_GPA		0x100000
#define RAM_SIZE	(16 << 20)
#define BENCH_SLOT	2
#define BENCH_GPA	0x10000000
#define BENCH_SIZE	(2 << 20)

static int vm_fd, vcpu_fd;
static struct kvm_run *run;
static int pio;
static void *bench_mem;

static void die(const char *what)
{
	fprintf(stderr, "kvmbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void fail(const char *what)
{
	fprintf(stderr, "kvmbench: %s\n", what);
	exit(1);
}

static const uint8_t hc_code[] = {
	0x66, 0xb8, 0x01, 0x00, 0x00, 0x00,	/* loop: mov eax, 1 */
	0x0f, 0x01, 0xd9,			/* vmmcall */
	0x66, 0x49,				/* dec ecx */
	0x75, 0xf3,				/* jnz loop (-13) */
	0xf4,					/* hlt */
};

static const uint8_t pio_code[] = {
	0xe6, PIO_PORT,				/* loop: out PIO_PORT, al */
	0x66, 0x49,				/* dec ecx */
	0x75, 0xfa,				/* jnz loop (-6) */
	0xf4,					/* hlt */
};

static void setup(void)
{
	struct kvm_userspace_memory_region region = { 0 };
	struct kvm_sregs sregs;
	int kvm, run_size;
	uint8_t *mem;

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
	if (pio)
		memcpy(mem + CODE_GPA, pio_code, sizeof(pio_code));
	else
		memcpy(mem + CODE_GPA, hc_code, sizeof(hc_code));
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
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   vcpu_fd, 0);
	if (run == MAP_FAILED)
		die("mmap kvm_run");
	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");
}

static int64_t elapsed_ns(const struct timespec *t0, const struct timespec *t1)
{
	return (int64_t)(t1->tv_sec - t0->tv_sec) * 1000000000 +
	       (t1->tv_nsec - t0->tv_nsec);
}

/* One run of @n iterations; nanoseconds of CLOCK_MONOTONIC it took. */
static int64_t run_loop(uint32_t n)
{
	struct kvm_regs regs = { .rip = CODE_GPA, .rcx = n, .rflags = 2 };
	struct timespec t0, t1;
	uint32_t outs = 0;

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
		if (pio && run->exit_reason == KVM_EXIT_IO &&
		    run->io.direction == KVM_EXIT_IO_OUT &&
		    run->io.port == PIO_PORT && run->io.size == 1 &&
		    run->io.count == 1) {
			outs++;
			continue;
		}
		fprintf(stderr, "kvmbench: unexpected exit %u\n",
			run->exit_reason);
		exit(1);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (ioctl(vcpu_fd, KVM_GET_REGS, &regs) < 0)
		die("KVM_GET_REGS");
	if (pio && outs != n)
		fail("pio: wrong number of exits");
	/* KVM_HC_VAPIC_POLL_IRQ returns 0; a refused call -KVM_EPERM. */
	if (!pio && (uint32_t)regs.rax != 0) {
		fprintf(stderr, "kvmbench: hypercall returned %d\n",
			(int32_t)regs.rax);
		exit(1);
	}
	return elapsed_ns(&t0, &t1);
}

static void set_slot(uint32_t slot, uint64_t gpa, uint64_t size, void *mem)
{
	struct kvm_userspace_memory_region region = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)mem,
	};

	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die(size ? "KVM_SET_USER_MEMORY_REGION (create)" :
			   "KVM_SET_USER_MEMORY_REGION (delete)");
}

/* Anonymous private memory of @size, aligned to @size (a power of 2). */
static void *map_aligned(size_t size)
{
	uint8_t *p;
	uintptr_t a;

	p = mmap(NULL, 2 * size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	a = ((uintptr_t)p + size - 1) & ~(uintptr_t)(size - 1);
	return (void *)a;
}

/* The memslot VM: setup()'s VM after one run, plus a RAM slot. */
static void memslot_setup(void)
{
	setup();
	run_loop(1);
	set_slot(RAM_SLOT, RAM_GPA, RAM_SIZE, map_aligned(RAM_SIZE));
	bench_mem = map_aligned(BENCH_SIZE);
}

#define MANY_MAPS	4000
static uint64_t bench_size = BENCH_SIZE;

/* The memslot VM, its bench memory MANY_MAPS memfds of a page each. */
static void memslot_many_setup(void)
{
	uint8_t *p;
	int i, fd;

	memslot_setup();
	bench_size = MANY_MAPS * 4096ull;
	p = mmap(NULL, bench_size, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	for (i = 0; i < MANY_MAPS; i++) {
		fd = memfd_create("kvmbench", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, 4096) ||
		    mmap(p + i * 4096, 4096, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED)
			die("memfd mapping");
		close(fd);
	}
	bench_mem = p;
}

/* @n creates and deletes of the bench memslot; nanoseconds they took. */
static int64_t memslot_loop(uint32_t n)
{
	struct timespec t0, t1;
	uint32_t i;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++) {
		set_slot(BENCH_SLOT, BENCH_GPA, bench_size, bench_mem);
		set_slot(BENCH_SLOT, BENCH_GPA, 0, bench_mem);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return elapsed_ns(&t0, &t1);
}

int main(int argc, char **argv)
{
	int64_t (*loop)(uint32_t) = run_loop;
	int64_t t1, tn;
	uint32_t n;

	if (argc != 3 || (strcmp(argv[1], "hypercall") && strcmp(argv[1], "pio") &&
			  strcmp(argv[1], "memslot") &&
			  strcmp(argv[1], "memslot-many"))) {
		fprintf(stderr, "usage: kvmbench hypercall|pio|memslot|memslot-many N\n");
		return 2;
	}
	pio = !strcmp(argv[1], "pio");
	n = strtoul(argv[2], NULL, 0);
	if (n < 2) {
		fprintf(stderr, "kvmbench: N must be at least 2\n");
		return 2;
	}
	if (!strcmp(argv[1], "memslot")) {
		memslot_setup();
		loop = memslot_loop;
	} else if (!strcmp(argv[1], "memslot-many")) {
		memslot_many_setup();
		loop = memslot_loop;
	} else {
		setup();
	}
	KGPROF_MARK(KGPROF_BEGIN);	/* BENCH_PROFILE: bench/kgprof.h */
	loop(n / 16 + 1);	/* warm up */
	t1 = kgprof_window(loop, 1);
	tn = kgprof_window(loop, n);
	KGPROF_MARK(KGPROF_COMMIT);
	printf("%.2f %lld %lld %u\n", (double)(tn - t1) / (n - 1),
	       (long long)tn, (long long)t1, n);
	return 0;
}
