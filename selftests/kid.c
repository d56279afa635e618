// SPDX-License-Identifier: GPL-2.0
/* kid: a child process that creates VMs on request. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "kg.h"
#include "kid.h"
#include "vm.h"

#define KID_MAX_VMS 8

static void kid_main(int cmd, int ack, const char *cgroup, const char *comm)
{
	static struct vm vms[KID_MAX_VMS];
	int n = 0;
	char c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (comm)
		prctl(PR_SET_NAME, comm);
	if (cgroup && kg_cg_enter(cgroup)) {
		c = 'e';
		if (write(ack, &c, 1) != 1)
			_exit(2);
		_exit(1);
	}
	c = 'k';
	if (write(ack, &c, 1) != 1)
		_exit(2);
	while (read(cmd, &c, 1) == 1) {
		if (c == 'q')
			break;
		if (c >= '0' && c <= '8' && n < KID_MAX_VMS) {
			int vcpus = c - '0', err = vm_create_loop(&vms[n]);

			for (int i = 0; !err && i < vcpus; i++)
				err = vm_add_vcpu(&vms[n], i) < 0;
			c = err ? 'e' : 'k';
			if (!err)
				n++;
		} else {
			c = 'e';
		}
		if (write(ack, &c, 1) != 1)
			_exit(2);
	}
	for (int i = 0; i < n; i++)
		vm_destroy(&vms[i]);
	_exit(0);
}

int kid_start(struct kid *k, const char *cgroup, const char *comm)
{
	int cmd[2], ack[2];
	char c = 0;

	if (pipe(cmd) || pipe(ack))
		return -1;
	fflush(stdout);
	fflush(stderr);
	k->pid = fork();
	if (k->pid < 0)
		return -1;
	if (k->pid == 0) {
		close(cmd[1]);
		close(ack[0]);
		kid_main(cmd[0], ack[1], cgroup, comm);
	}
	close(cmd[0]);
	close(ack[1]);
	k->cmd = cmd[1];
	k->ack = ack[0];
	if (read(k->ack, &c, 1) != 1 || c != 'k') {
		kid_stop(k);
		return -1;
	}
	return 0;
}

int kid_create_vm(struct kid *k, int vcpus)
{
	char c = '0' + vcpus;

	if (vcpus < 0 || vcpus > 8 || write(k->cmd, &c, 1) != 1 ||
	    read(k->ack, &c, 1) != 1)
		return -1;
	return c == 'k' ? 0 : -1;
}

int kid_stop(struct kid *k)
{
	int status = -1;

	if (k->pid <= 0)
		return 0;
	if (write(k->cmd, "q", 1) != 1)
		kill(k->pid, SIGKILL);
	close(k->cmd);
	close(k->ack);
	if (waitpid(k->pid, &status, 0) != k->pid)
		status = -1;
	k->pid = 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}
