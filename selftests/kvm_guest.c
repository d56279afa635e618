// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_guest [-v VCPUS] [-s SECONDS] [-m MIB]: create a KVM VM with MIB of
 * guest memory and VCPUS vCPUs running a 16-bit loop (out to a port, jmp),
 * one thread each, until killed or SECONDS elapse (0: forever). Prints its
 * pid once the guest runs; prints the exit count at the end and exits 0.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vm.h"

static atomic_ulong exits;
static atomic_int stop;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop, 1);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;

	while (!atomic_load(&stop)) {
		int r = vcpu_run(v);

		if (r == -EINTR)
			continue;
		if (r != KVM_EXIT_IO) {
			fprintf(stderr, "kvm_guest: vcpu %d: exit %d\n", v->id, r);
			exit(1);
		}
		atomic_fetch_add(&exits, 1);
	}
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: kvm_guest [-v VCPUS] [-s SECONDS] [-m MIB]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned long vcpus = 1, seconds = 0, mib = 1;
	pthread_t threads[VM_MAX_VCPUS];
	struct sigaction sa = { .sa_handler = on_signal };
	struct vm vm;
	int opt, err;

	while ((opt = getopt(argc, argv, "v:s:m:h")) != -1) {
		char *end;
		unsigned long v = strtoul(optarg ? optarg : "", &end, 0);

		if (opt == 'h' || !optarg || *end)
			usage();
		if (opt == 'v')
			vcpus = v;
		else if (opt == 's')
			seconds = v;
		else if (opt == 'm')
			mib = v;
	}
	if (optind != argc || vcpus < 1 || vcpus > VM_MAX_VCPUS || mib < 1 || mib > 4096)
		usage();
	/* SIGUSR1 kicks a vCPU out of KVM_RUN without SA_RESTART. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);

	err = vm_create_loop(&vm);
	if (!err && mib * 1024 * 1024 > VM_SLOT0_SIZE)
		err = vm_add_slot(&vm, 1, 0x100000, mib * 1024 * 1024 - VM_SLOT0_SIZE);
	for (unsigned long i = 0; !err && i < vcpus; i++) {
		int r = vm_add_vcpu(&vm, i);

		err = r < 0 ? r : 0;
	}
	if (err) {
		fprintf(stderr, "kvm_guest: %s\n", strerror(-err));
		return 1;
	}
	for (unsigned long i = 0; i < vcpus; i++)
		pthread_create(&threads[i], NULL, vcpu_thread, &vm.vcpus[i]);
	printf("%d\n", getpid());
	fflush(stdout);
	if (seconds) {
		time_t end = time(NULL) + seconds;

		while (!atomic_load(&stop) && time(NULL) < end)
			usleep(100000);
	} else {
		while (!atomic_load(&stop))
			pause();
	}
	atomic_store(&stop, 1);
	for (unsigned long i = 0; i < vcpus; i++) {
		pthread_kill(threads[i], SIGUSR1);
		pthread_join(threads[i], NULL);
	}
	fprintf(stderr, "kvm_guest: %lu exits\n", atomic_load(&exits));
	vm_destroy(&vm);
	return 0;
}
