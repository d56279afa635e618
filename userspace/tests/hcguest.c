// SPDX-License-Identifier: GPL-2.0
/*
 * hcguest NR SECONDS: a KVM VM whose one vCPU loops on the KVM hypercall NR
 * (real mode: mov eax, NR; vmmcall; out 0x10, al; jmp) for SECONDS or until
 * SIGTERM, so that tests/guest-cli.sh can check hypercall events and
 * counters end to end. Prints its pid once the VM exists, then the number of
 * loops and the last hypercall result (rax).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE 0x10000
#define CODE 0x1000

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

int main(int argc, char **argv)
{
	uint8_t code[] = {
		0x66, 0xb8, 0, 0, 0, 0,		/* mov eax, NR */
		0x0f, 0x01, 0xd9,		/* vmmcall (AMD) */
		0xe6, 0x10,			/* out 0x10, al */
		0xeb, 0xf3,			/* jmp back 13 bytes */
	};
	struct sigaction sa = { .sa_handler = on_term };	/* no SA_RESTART */
	struct kvm_userspace_memory_region region = { 0 };
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run;
	unsigned long loops = 0;
	uint32_t nr;
	time_t end;
	int kvm, vm, vcpu, size;
	uint8_t *mem;

	if (argc != 3) {
		fprintf(stderr, "usage: hcguest NR SECONDS\n");
		return 2;
	}
	nr = (uint32_t)strtoul(argv[1], NULL, 0);
	end = time(NULL) + atoi(argv[2]);
	memcpy(code + 2, &nr, sizeof(nr));

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("/dev/kvm");
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM");
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	memcpy(mem + CODE, code, sizeof(code));
	region.memory_size = MEM_SIZE;
	region.userspace_addr = (uintptr_t)mem;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region))
		die("KVM_SET_USER_MEMORY_REGION");
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		die("KVM_CREATE_VCPU");
	size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		die("mmap kvm_run");
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs))
		die("KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs))
		die("KVM_SET_SREGS");
	memset(&regs, 0, sizeof(regs));
	regs.rip = CODE;
	regs.rflags = 2;
	if (ioctl(vcpu, KVM_SET_REGS, &regs))
		die("KVM_SET_REGS");
	sigaction(SIGTERM, &sa, NULL);
	printf("%d\n", getpid());
	fflush(stdout);

	while (!stop && time(NULL) < end) {
		if (ioctl(vcpu, KVM_RUN, 0)) {
			if (errno == EINTR)
				continue;
			die("KVM_RUN");
		}
		if (run->exit_reason != KVM_EXIT_IO) {
			fprintf(stderr, "hcguest: exit reason %u\n",
				run->exit_reason);
			return 1;
		}
		loops++;
	}
	if (ioctl(vcpu, KVM_GET_REGS, &regs))
		die("KVM_GET_REGS");
	printf("loops %lu rax %lld\n", loops, (long long)regs.rax);
	return 0;
}
