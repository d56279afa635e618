// SPDX-License-Identifier: GPL-2.0
/* kg: kvmguard helpers shared by the selftests. */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "kg.h"
#include "vm.h"

#define KG_MODULE "kvmguard"

int kg_open(struct gnl *g)
{
	return gnl_open(g, KVMGUARD_GENL_NAME);
}

void kg_req(struct gnl *g, struct gnl_msg *m, uint8_t cmd, bool dump)
{
	gnl_msg_init(m, g->family,
		     NLM_F_REQUEST | (dump ? NLM_F_DUMP : NLM_F_ACK),
		     cmd, KVMGUARD_GENL_VERSION);
}

static void copy_str(char *dst, size_t size, const struct nlattr *a)
{
	size_t len = gnl_alen(a);
	const char *s = (const char *)a + NLA_HDRLEN;

	if (len && s[len - 1] == 0)
		len--;
	if (len >= size)
		len = size - 1;
	memcpy(dst, s, len);
	dst[len] = 0;
}

static kg_mask_t present(const struct nlattr **tb, int max)
{
	kg_mask_t p = 0;

	for (int i = 1; i <= max && i < 128; i++)
		if (tb[i])
			p |= KG_BIT(i);
	return p;
}

/* Strict reads: a wrong length leaves the value at a poison and clears
 * the present bit, so that tests asserting on it fail. */
#define GET(tb, t, var, bits) do {					\
	if ((tb)[t] && gnl_alen((tb)[t]) == (bits) / 8)			\
		var = gnl_get_u##bits((tb)[t]);				\
	else if ((tb)[t])						\
		p &= ~KG_BIT(t);					\
} while (0)

int kg_parse_vm(const struct nlmsghdr *nlh, struct kg_vm *vm)
{
	const struct nlattr *tb[KVMGUARD_A_MAX + 1];
	kg_mask_t p;

	memset(vm, 0, sizeof(*vm));
	vm->bound_by = 0xff;
	if (gnl_parse(nlh, tb, KVMGUARD_A_MAX, &vm->unknown))
		return -EINVAL;
	p = present(tb, KVMGUARD_A_MAX);
	GET(tb, KVMGUARD_A_VM_ID, vm->id, 64);
	GET(tb, KVMGUARD_A_VM_PID, vm->pid, 32);
	GET(tb, KVMGUARD_A_VM_CREATED_NS, vm->created_ns, 64);
	GET(tb, KVMGUARD_A_VM_VCPUS, vm->vcpus, 32);
	GET(tb, KVMGUARD_A_VM_MEMSLOTS, vm->memslots, 32);
	GET(tb, KVMGUARD_A_VM_MEM_BYTES, vm->mem_bytes, 64);
	GET(tb, KVMGUARD_A_VM_FLAGS, vm->flags, 32);
	GET(tb, KVMGUARD_A_VM_BOUND_BY, vm->bound_by, 8);
	GET(tb, KVMGUARD_A_VM_MEM_SHARED_BYTES, vm->mem_shared_bytes, 64);
	GET(tb, KVMGUARD_A_VM_MEM_DIRTY_BYTES, vm->mem_dirty_bytes, 64);
	GET(tb, KVMGUARD_A_VM_MEM_LIMIT_DENIED, vm->mem_limit_denied, 64);
	GET(tb, KVMGUARD_A_VM_MEM_SHARED_DENIED, vm->mem_shared_denied, 64);
	GET(tb, KVMGUARD_A_VM_MEM_KSM_DENIED, vm->mem_ksm_denied, 64);
	GET(tb, KVMGUARD_A_VM_MEM_KSM_MADVISE, vm->mem_ksm_madvise, 64);
	GET(tb, KVMGUARD_A_VM_MEM_DIRTY_DENIED, vm->mem_dirty_denied, 64);
	if (tb[KVMGUARD_A_VM_COMM])
		copy_str(vm->comm, sizeof(vm->comm), tb[KVMGUARD_A_VM_COMM]);
	if (tb[KVMGUARD_A_VM_CGROUP])
		copy_str(vm->cgroup, sizeof(vm->cgroup), tb[KVMGUARD_A_VM_CGROUP]);
	if (tb[KVMGUARD_A_POLICY_NAME]) {
		vm->has_policy = true;
		copy_str(vm->policy, sizeof(vm->policy), tb[KVMGUARD_A_POLICY_NAME]);
	}
	vm->present = p;
	return 0;
}

int kg_parse_policy(const struct nlmsghdr *nlh, struct kg_policy *pol)
{
	const struct nlattr *tb[KVMGUARD_A_MAX + 1];
	kg_mask_t p;

	memset(pol, 0, sizeof(*pol));
	pol->mode = 0xff;
	pol->mem_shared = pol->mem_ksm = 0xff;
	if (gnl_parse(nlh, tb, KVMGUARD_A_MAX, NULL))
		return -EINVAL;
	p = present(tb, KVMGUARD_A_MAX);
	GET(tb, KVMGUARD_A_POLICY_MODE, pol->mode, 8);
	GET(tb, KVMGUARD_A_POLICY_VMS, pol->vms, 32);
	GET(tb, KVMGUARD_A_POLICY_BINDINGS, pol->bindings, 32);
	GET(tb, KVMGUARD_A_POLICY_MEM_MAX, pol->mem_max, 64);
	GET(tb, KVMGUARD_A_POLICY_MEM_SHARED, pol->mem_shared, 8);
	GET(tb, KVMGUARD_A_POLICY_MEM_KSM, pol->mem_ksm, 8);
	GET(tb, KVMGUARD_A_POLICY_MEM_DIRTY_MAX, pol->mem_dirty_max, 64);
	if (tb[KVMGUARD_A_POLICY_NAME])
		copy_str(pol->name, sizeof(pol->name), tb[KVMGUARD_A_POLICY_NAME]);
	if (tb[KVMGUARD_A_POLICY_DOMAIN]) {
		pol->has_domain = true;
		copy_str(pol->domain, sizeof(pol->domain), tb[KVMGUARD_A_POLICY_DOMAIN]);
	}
	pol->present = p;
	return 0;
}

int kg_parse_bind(const struct nlmsghdr *nlh, struct kg_bind *b)
{
	const struct nlattr *tb[KVMGUARD_A_MAX + 1];
	kg_mask_t p;

	memset(b, 0, sizeof(*b));
	if (gnl_parse(nlh, tb, KVMGUARD_A_MAX, NULL))
		return -EINVAL;
	p = present(tb, KVMGUARD_A_MAX);
	GET(tb, KVMGUARD_A_BIND_TYPE, b->type, 8);
	GET(tb, KVMGUARD_A_BIND_PID, b->pid, 32);
	if (tb[KVMGUARD_A_BIND_CGROUP])
		copy_str(b->cgroup, sizeof(b->cgroup), tb[KVMGUARD_A_BIND_CGROUP]);
	if (tb[KVMGUARD_A_POLICY_NAME])
		copy_str(b->policy, sizeof(b->policy), tb[KVMGUARD_A_POLICY_NAME]);
	b->present = p;
	return 0;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int kg_collect_events(struct gnl *sub, int ms, int want, kg_event_take take,
		      void *ctx)
{
	uint64_t end = mono_ns() + (uint64_t)ms * 1000000;
	int n = 0;

	while (mono_ns() < end && !(want > 0 && n >= want)) {
		const struct nlmsghdr *nlh;
		int len = gnl_recv(sub, 20);

		if (len < 0)
			continue;
		for (nlh = (const void *)sub->rbuf; NLMSG_OK(nlh, (unsigned int)len);
		     nlh = NLMSG_NEXT(nlh, len)) {
			const struct nlattr *tb[KVMGUARD_A_MAX + 1];

			if (nlh->nlmsg_type == sub->family &&
			    !gnl_parse(nlh, tb, KVMGUARD_A_MAX, NULL) &&
			    take(nlh, tb, ctx))
				n++;
		}
	}
	return n;
}

int kg_parse_event(const struct nlmsghdr *nlh, struct kg_event *e)
{
	const struct nlattr *tb[KVMGUARD_A_MAX + 1];
	kg_mask_t p;

	memset(e, 0, sizeof(*e));
	e->action = e->mem_rule = 0xff;
	if (gnl_parse(nlh, tb, KVMGUARD_A_MAX, NULL))
		return -EINVAL;
	p = present(tb, KVMGUARD_A_MAX);
	GET(tb, KVMGUARD_A_EVENT_TYPE, e->type, 8);
	GET(tb, KVMGUARD_A_EVENT_ACTION, e->action, 8);
	GET(tb, KVMGUARD_A_EVENT_COUNT, e->count, 64);
	GET(tb, KVMGUARD_A_EVENT_HC_NR, e->hc_nr, 64);
	GET(tb, KVMGUARD_A_EVENT_MEM_RULE, e->mem_rule, 8);
	GET(tb, KVMGUARD_A_EVENT_MEM_SLOT, e->mem_slot, 32);
	GET(tb, KVMGUARD_A_EVENT_MEM_BYTES, e->mem_bytes, 64);
	GET(tb, KVMGUARD_A_EVENT_VMM_DEFAULT, e->vmm_default, 8);
	GET(tb, KVMGUARD_A_EVENT_HV_CODE, e->hv_code, 16);
	GET(tb, KVMGUARD_A_EVENT_TIME_NS, e->time_ns, 64);
	GET(tb, KVMGUARD_A_VM_ID, e->vm_id, 64);
	GET(tb, KVMGUARD_A_VM_PID, e->pid, 32);
	if (tb[KVMGUARD_A_VM_COMM])
		copy_str(e->comm, sizeof(e->comm), tb[KVMGUARD_A_VM_COMM]);
	if (tb[KVMGUARD_A_POLICY_NAME]) {
		e->has_policy = true;
		copy_str(e->policy, sizeof(e->policy), tb[KVMGUARD_A_POLICY_NAME]);
	}
	e->present = p;
	return 0;
}

/* ---- collecting replies ---- */

struct collect {
	void *arr;
	int n, cap;
	size_t size;
	int (*parse)(const struct nlmsghdr *, void *);
};

static int collect_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct collect *c = arg;

	if (c->n == c->cap) {
		int cap = c->cap ? c->cap * 2 : 64;
		void *a = realloc(c->arr, cap * c->size);

		if (!a)
			return -ENOMEM;
		c->arr = a;
		c->cap = cap;
	}
	if (c->parse(nlh, (char *)c->arr + c->n * c->size))
		return -EBADMSG;
	c->n++;
	return 0;
}

static int collect(struct gnl *g, struct gnl_msg *m, struct collect *c)
{
	int err;

	for (int tries = 0; tries < 10; tries++) {
		c->n = 0;
		err = gnl_transact(g, m, collect_cb, c);
		if (err || !g->dump_intr)
			break;
	}
	if (!err && g->dump_intr)
		err = -EINTR;
	return err;
}

static int get_one(struct gnl *g, struct gnl_msg *m, void *out, size_t size,
		   int (*parse)(const struct nlmsghdr *, void *))
{
	struct collect c = { .size = size, .parse = parse };
	int err = collect(g, m, &c);

	if (!err && c.n != 1)
		err = -EBADMSG;
	if (!err)
		memcpy(out, c.arr, size);
	free(c.arr);
	return err;
}

#define PARSER(fn) ((int (*)(const struct nlmsghdr *, void *))(fn))

int kg_vm_get(struct gnl *g, uint64_t id, struct kg_vm *out)
{
	static struct gnl_msg m;

	kg_req(g, &m, KVMGUARD_CMD_VM_GET, false);
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, id);
	return get_one(g, &m, out, sizeof(*out), PARSER(kg_parse_vm));
}

int kg_vm_dump(struct gnl *g, struct kg_vm **out, int *n)
{
	static struct gnl_msg m;
	struct collect c = { .size = sizeof(**out), .parse = PARSER(kg_parse_vm) };
	int err;

	kg_req(g, &m, KVMGUARD_CMD_VM_GET, true);
	err = collect(g, &m, &c);
	*out = c.arr;
	*n = c.n;
	return err;
}

int kg_vm_set(struct gnl *g, uint64_t id, const char *policy)
{
	static struct gnl_msg m;

	kg_req(g, &m, KVMGUARD_CMD_VM_SET, false);
	gnl_put_u64(&m, KVMGUARD_A_VM_ID, id);
	gnl_put_str(&m, KVMGUARD_A_POLICY_NAME, policy);
	return gnl_transact(g, &m, NULL, NULL);
}

static int policy_req(struct gnl *g, uint8_t cmd, const char *name, int mode,
		      const char *domain)
{
	static struct gnl_msg m;

	kg_req(g, &m, cmd, false);
	gnl_put_str(&m, KVMGUARD_A_POLICY_NAME, name);
	if (mode >= 0)
		gnl_put_u8(&m, KVMGUARD_A_POLICY_MODE, mode);
	if (domain)
		gnl_put_str(&m, KVMGUARD_A_POLICY_DOMAIN, domain);
	return gnl_transact(g, &m, NULL, NULL);
}

int kg_policy_new(struct gnl *g, const char *name, int mode, const char *domain)
{
	return policy_req(g, KVMGUARD_CMD_POLICY_NEW, name, mode, domain);
}

int kg_policy_set(struct gnl *g, const char *name, int mode, const char *domain)
{
	return policy_req(g, KVMGUARD_CMD_POLICY_SET, name, mode, domain);
}

int kg_policy_del(struct gnl *g, const char *name)
{
	return policy_req(g, KVMGUARD_CMD_POLICY_DEL, name, -1, NULL);
}

int kg_policy_get(struct gnl *g, const char *name, struct kg_policy *out)
{
	static struct gnl_msg m;

	kg_req(g, &m, KVMGUARD_CMD_POLICY_GET, false);
	gnl_put_str(&m, KVMGUARD_A_POLICY_NAME, name);
	return get_one(g, &m, out, sizeof(*out), PARSER(kg_parse_policy));
}

int kg_policy_dump(struct gnl *g, struct kg_policy **out, int *n)
{
	static struct gnl_msg m;
	struct collect c = { .size = sizeof(**out), .parse = PARSER(kg_parse_policy) };
	int err;

	kg_req(g, &m, KVMGUARD_CMD_POLICY_GET, true);
	err = collect(g, &m, &c);
	*out = c.arr;
	*n = c.n;
	return err;
}

static void put_selector(struct gnl_msg *m, int type, const char *cgroup, uint32_t pid)
{
	gnl_put_u8(m, KVMGUARD_A_BIND_TYPE, type);
	if (type == KVMGUARD_BIND_CGROUP)
		gnl_put_str(m, KVMGUARD_A_BIND_CGROUP, cgroup);
	else if (type == KVMGUARD_BIND_PID)
		gnl_put_u32(m, KVMGUARD_A_BIND_PID, pid);
}

int kg_bind_new(struct gnl *g, int type, const char *cgroup, uint32_t pid,
		const char *policy)
{
	static struct gnl_msg m;

	kg_req(g, &m, KVMGUARD_CMD_BIND_NEW, false);
	put_selector(&m, type, cgroup, pid);
	gnl_put_str(&m, KVMGUARD_A_POLICY_NAME, policy);
	return gnl_transact(g, &m, NULL, NULL);
}

int kg_bind_del(struct gnl *g, int type, const char *cgroup, uint32_t pid)
{
	static struct gnl_msg m;

	kg_req(g, &m, KVMGUARD_CMD_BIND_DEL, false);
	put_selector(&m, type, cgroup, pid);
	return gnl_transact(g, &m, NULL, NULL);
}

int kg_bind_dump(struct gnl *g, struct kg_bind **out, int *n)
{
	static struct gnl_msg m;
	struct collect c = { .size = sizeof(**out), .parse = PARSER(kg_parse_bind) };
	int err;

	kg_req(g, &m, KVMGUARD_CMD_BIND_GET, true);
	err = collect(g, &m, &c);
	*out = c.arr;
	*n = c.n;
	return err;
}

int kg_vms_of_pid(struct gnl *g, pid_t pid, struct kg_vm **out, int *n)
{
	struct kg_vm *all;
	int nall, err, k = 0;

	err = kg_vm_dump(g, &all, &nall);
	if (err) {
		free(all);
		*out = NULL;
		*n = 0;
		return err;
	}
	for (int i = 0; i < nall; i++)
		if (all[i].pid == (uint32_t)pid)
			all[k++] = all[i];
	*out = all;
	*n = k;
	return 0;
}

int kg_find_new_vm(struct gnl *g, pid_t pid, uint64_t after_id, struct kg_vm *out)
{
	struct kg_vm *v;
	int n, err, found = 0;

	err = kg_vms_of_pid(g, pid, &v, &n);
	if (err)
		return err;
	for (int i = 0; i < n; i++) {
		if (v[i].id > after_id) {
			*out = v[i];
			found++;
		}
	}
	free(v);
	return found == 1 ? 0 : (found ? -EEXIST : -ENOENT);
}

uint64_t kg_max_vm_id(struct gnl *g)
{
	struct kg_vm *v;
	uint64_t max = 0;
	int n;

	if (kg_vm_dump(g, &v, &n) == 0)
		for (int i = 0; i < n; i++)
			if (v[i].id > max)
				max = v[i].id;
	free(v);
	return max;
}

/* ---- module ---- */

bool kg_module_loaded(void)
{
	struct stat st;

	return stat("/sys/module/" KG_MODULE, &st) == 0;
}

int kg_insmod(void)
{
	const char *ko = getenv("KVMGUARD_KO");
	int fd, err = 0;

	if (!ko)
		return -ENOENT;
	fd = open(ko, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, "", 0))
		err = -errno;
	close(fd);
	return err;
}

int kg_rmmod(void)
{
	int err = 0;

	/* Transient references (an in-flight request) may delay it. */
	for (int i = 0; i < 50; i++) {
		if (syscall(SYS_delete_module, KG_MODULE, O_NONBLOCK) == 0)
			return 0;
		err = -errno;
		if (err != -EAGAIN && err != -EBUSY)
			break;
		usleep(100000);
	}
	return err;
}

int kg_ensure_loaded(void)
{
	int err;

	if (kg_module_loaded())
		return 0;
	err = kg_insmod();
	return err == -EEXIST ? 0 : err;
}

/* ---- cgroups ---- */

int kg_cg_mkdir(const char *path)
{
	char buf[4096];
	size_t root = strlen(KG_CGROOT);

	snprintf(buf, sizeof(buf), "%s%s", KG_CGROOT, path);
	for (char *p = buf + root + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

int kg_cg_enter(const char *path)
{
	char buf[4096];
	int fd, err = 0;

	snprintf(buf, sizeof(buf), "%s%s/cgroup.procs", KG_CGROOT,
		 strcmp(path, "/") ? path : "");
	fd = open(buf, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (dprintf(fd, "%d\n", getpid()) < 0)
		err = -errno;
	close(fd);
	return err;
}

int kg_cg_rmdir(const char *path)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s%s", KG_CGROOT, path);
	/* A just-exited process may still be accounted for a moment. */
	for (int i = 0; i < 50; i++) {
		if (!rmdir(buf) || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		usleep(20000);
	}
	return -EBUSY;
}

int kg_cg_self(char *buf, size_t size)
{
	char line[4200];
	FILE *f = fopen("/proc/self/cgroup", "re");
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = 0;
		snprintf(buf, size, "%s", line + 3);
		err = 0;
		break;
	}
	fclose(f);
	return err;
}

void kg_cleanup(struct gnl *g, const char *prefix)
{
	size_t pl = strlen(prefix);
	struct kg_policy *p = NULL;
	struct kg_bind *b = NULL;
	int n;

	if (kg_bind_dump(g, &b, &n) == 0)
		for (int i = 0; i < n; i++)
			if (!strncmp(b[i].policy, prefix, pl))
				kg_bind_del(g, b[i].type, b[i].cgroup, b[i].pid);
	free(b);
	if (kg_policy_dump(g, &p, &n) == 0)
		for (int i = 0; i < n; i++)
			if (!strncmp(p[i].name, prefix, pl))
				kg_policy_del(g, p[i].name);
	free(p);
}

uint64_t kg_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static char *slurp(int fd)
{
	off_t len = lseek(fd, 0, SEEK_END);
	char *s;

	if (len < 0)
		len = 0;
	s = calloc(1, len + 1);
	if (s && len && pread(fd, s, len, 0) != len)
		s[0] = 0;
	return s;
}

int kg_run(const char *cmd, const char *in, char **out, char **err)
{
	int fin = memfd_create("kg-in", MFD_CLOEXEC);
	int fout = memfd_create("kg-out", MFD_CLOEXEC);
	int ferr = memfd_create("kg-err", MFD_CLOEXEC);
	int status = -1;
	pid_t pid;

	if (fin < 0 || fout < 0 || ferr < 0)
		goto out;
	if (in && write(fin, in, strlen(in)) != (ssize_t)strlen(in))
		goto out;
	lseek(fin, 0, SEEK_SET);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		goto out;
	if (pid == 0) {
		dup2(fin, 0);
		dup2(fout, 1);
		dup2(ferr, 2);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		status = -1;
	else
		status = WEXITSTATUS(status);
	if (out)
		*out = slurp(fout);
	if (err)
		*err = slurp(ferr);
out:
	if (fin >= 0)
		close(fin);
	if (fout >= 0)
		close(fout);
	if (ferr >= 0)
		close(ferr);
	return status;
}

void kg_prereq(int needs)
{
	struct gnl g;
	int err;

	/* Tests talk to children over pipes; a dead child is a failure
	 * to report, not a reason to die. */
	signal(SIGPIPE, SIG_IGN);

	if ((needs & KG_NEED_KVM) && kvm_available()) {
		printf("TAP version 13\n");
		printf("1..0 # SKIP /dev/kvm is not usable\n");
		exit(4);
	}
	if (!(needs & KG_NEED_MODULE))
		return;
	if (!kg_module_loaded()) {
		const char *ko = getenv("KVMGUARD_KO");

		if (!ko || access(ko, R_OK)) {
			printf("TAP version 13\n");
			printf("1..0 # SKIP kvmguard not loaded and $KVMGUARD_KO not readable\n");
			exit(4);
		}
		err = kg_insmod();
		if (err && err != -EEXIST) {
			printf("Bail out! insmod %s: %s\n", ko, strerror(-err));
			exit(1);
		}
	}
	err = kg_open(&g);
	if (err) {
		printf("Bail out! kvmguard family not resolvable: %s\n", strerror(-err));
		exit(1);
	}
	gnl_close(&g);
}
