/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kid: a child process that creates a VM on request, from a given cgroup,
 * so that a test controls the creator's pid and cgroup.
 */
#ifndef KVMGUARD_SELFTEST_KID_H
#define KVMGUARD_SELFTEST_KID_H

#include <sys/types.h>

struct kid {
	pid_t pid;
	int cmd;	/* write end: commands to the child */
	int ack;	/* read end: one byte per command, 'k' ok, 'e' error */
};

/* Fork a child that moves into @cgroup (NULL: stays) and sets @comm. */
int kid_start(struct kid *k, const char *cgroup, const char *comm);
/* Ask the child to create a VM (and @vcpus vCPUs); 0 or -1. */
int kid_create_vm(struct kid *k, int vcpus);
/* Ask the child to destroy its VMs and exit; reap it. 0 if it exited 0. */
int kid_stop(struct kid *k);

#endif
