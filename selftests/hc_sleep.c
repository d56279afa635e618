// SPDX-License-Identifier: GPL-2.0
/*
 * hc_sleep: a vCPU that sleeps while KVM completes a refused hypercall
 * has no kvmguard code on its stack.
 *
 * The module's text is freed after an RCU-tasks grace period, which ends
 * as soon as every task has been off the CPU voluntarily once: a vCPU
 * sleeping inside a function that kvmguard called would later return into
 * freed memory. A refusal has to move the guest past its vmmcall
 * (kvm_skip_emulated_instruction()); on AMD without NRIPS that decodes the
 * instruction from guest memory, and a fault on that memory can sleep
 * (here: in userfaultfd).
 *
 * The test reloads kvm_amd with nrips=0 (QEMU's -cpu max has NRIPS, so
 * the skip would never emulate), puts a guest's code page in a memslot
 * over memory registered with userfaultfd (missing pages), and lets the
 * guest loop on a refused vmmcall (variant kvm: a KVM hypercall from real
 * mode; hyperv: a Hyper-V hypercall from 32-bit protected mode, refused
 * by "hyperv deny"). The test's main thread drops the code page
 * (MADV_DONTNEED) at a random moment just after the guest has counted an
 * iteration, and when the vCPU thread then sleeps in the fault, reads
 * that thread's /proc/PID/task/TID/stack before resolving the fault. Faults taken in
 * the emulation of the skip (x86_emulate_instruction and the like on the
 * stack, not an ordinary nested page fault) must show no frame of
 * [kvmguard]. SKIP when kvm_amd is not a loadable module or is in use
 * (VMs exist), without userfaultfd, or when no fault in the emulation was
 * caught in the time given. kvm_amd is reloaded with its original
 * parameters afterwards (by the parent process, whatever happened to the
 * tests) and every parameter is checked to read as before.
 *
 * By hand only: KVMGUARD_HC_SLEEP_RMMOD=1 unloads kvmguard while the vCPU
 * sleeps in the first such fault, then resolves it (a host whose module
 * leaves a frame on that stack crashes).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <linux/userfaultfd.h>

#include "kselftest_harness.h"
#include "hcg.h"
#include "kg.h"
#include "vm.h"

#define P "kgy-"

#define AMD_PARAMS	"/sys/module/kvm_amd/parameters"
#define MAX_PARAMS	64

/* Guest memory: VM_SLOT0_SIZE bytes at GPA 0, code at VM_CODE_GPA. */
#define COUNT_GPA	0x2000

/* Trying for faults in the emulation: stop after so many or so long. */
#define WANT_HITS	12
#define TRY_SECONDS	35
/* Random wait between the guest's count and dropping its code page. */
#define MAX_DELAY_NS	120000

/*
 * Real mode:
 * 1000: inc dword [2000]	66 ff 06 00 20
 * 1005: vmmcall		0f 01 d9
 * 1008: jmp 1000		eb f6
 */
static const unsigned char code16[] = {
	0x66, 0xff, 0x06, COUNT_GPA & 0xff, COUNT_GPA >> 8,
	0x0f, 0x01, 0xd9,
	0xeb, 0xf6,
};

/*
 * 32-bit protected mode, flat segments (a Hyper-V hypercall needs it):
 * 1000: inc dword [2000]	ff 05 00 20 00 00
 * 1006: vmmcall		0f 01 d9
 * 1009: jmp 1000		eb f5
 */
static const unsigned char code32[] = {
	0xff, 0x05, COUNT_GPA & 0xff, COUNT_GPA >> 8, 0, 0,
	0x0f, 0x01, 0xd9,
	0xeb, 0xf5,
};

/* Shared with the parent: did a test get to assert anything? */
static struct {
	int asserted;
} *shared;

struct amd_param {
	char name[64];
	char value[128];
};

static struct amd_param amd_saved[MAX_PARAMS];
static int amd_nsaved;
static char amd_ko[1024];
static char amd_args[2048];	/* as it was loaded */

static int read_line(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static int amd_read_params(struct amd_param *p, int max)
{
	DIR *d = opendir(AMD_PARAMS);
	struct dirent *e;
	char path[512];
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) && n < max) {
		if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(p->name))
			continue;
		snprintf(path, sizeof(path), AMD_PARAMS "/%s", e->d_name);
		if (read_line(path, p[n].value, sizeof(p[n].value)))
			continue;
		strcpy(p[n].name, e->d_name);
		n++;
	}
	closedir(d);
	return n;
}

/* Print what differs from amd_saved; how many do. */
static int amd_compare(void)
{
	static struct amd_param now[MAX_PARAMS];
	int n = amd_read_params(now, MAX_PARAMS), bad = 0;

	for (int i = 0; i < amd_nsaved; i++) {
		int j;

		for (j = 0; j < n; j++)
			if (!strcmp(now[j].name, amd_saved[i].name))
				break;
		if (j == n || strcmp(now[j].value, amd_saved[i].value)) {
			printf("# kvm_amd parameter %s: was %s, now %s\n", amd_saved[i].name,
			       amd_saved[i].value, j == n ? "(missing)" : now[j].value);
			bad++;
		}
	}
	return bad;
}

/* Append @arg to amd_args; 0 or -E2BIG. */
static int amd_add_arg(const char *arg, size_t n)
{
	size_t len = strlen(amd_args);

	if (len + n + 2 > sizeof(amd_args))
		return -E2BIG;
	if (len)
		amd_args[len++] = ' ';
	memcpy(amd_args + len, arg, n);
	amd_args[len + n] = 0;
	return 0;
}

/*
 * Where kvm_amd came from and with which arguments: its options on the
 * kernel command line (kvm_amd.X=Y, which modprobe would pass; boot.sh
 * sets nested), then the test host's /etc/modules.list ("PATH ARGS"
 * lines its /init loaded); else the usual path, with every parameter as
 * it reads now.
 */
static int amd_find(void)
{
	static char cmdline[4096];
	char line[sizeof(amd_ko) + sizeof(amd_args)];
	const char *c = cmdline;
	struct utsname u;
	FILE *f;

	if (read_line("/proc/cmdline", cmdline, sizeof(cmdline)) == 0) {
		while (*c) {
			size_t n = strcspn(c, " ");

			if ((!strncmp(c, "kvm_amd.", 8) || !strncmp(c, "kvm-amd.", 8)) &&
			    memchr(c, '=', n) && amd_add_arg(c + 8, n - 8))
				return -E2BIG;
			c += n + (c[n] == ' ');
		}
	}
	f = fopen("/etc/modules.list", "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char *args = line + strcspn(line, " \t\n");
			const char *base;

			if (*args)
				*args++ = 0;
			base = strrchr(line, '/');
			base = base ? base + 1 : line;
			if (strcmp(base, "kvm-amd.ko") && strcmp(base, "kvm_amd.ko"))
				continue;
			args[strcspn(args, "\n")] = 0;
			if (strlen(line) >= sizeof(amd_ko) ||
			    (*args && amd_add_arg(args, strlen(args))))
				break;
			strcpy(amd_ko, line);
			break;
		}
		fclose(f);
		if (amd_ko[0])
			return access(amd_ko, R_OK) ? -errno : 0;
	}
	if (uname(&u))
		return -errno;
	snprintf(amd_ko, sizeof(amd_ko), "/lib/modules/%s/kernel/arch/x86/kvm/kvm-amd.ko",
		 u.release);
	amd_args[0] = 0;
	for (int i = 0; i < amd_nsaved; i++) {
		char arg[sizeof(amd_saved[i].name) + sizeof(amd_saved[i].value) + 1];
		int n = snprintf(arg, sizeof(arg), "%s=%s", amd_saved[i].name,
				 amd_saved[i].value);

		if (amd_add_arg(arg, n))
			return -E2BIG;
	}
	return access(amd_ko, R_OK) ? -errno : 0;
}

/* 0, or -EBUSY while something (a VM) holds it. */
static int amd_unload(void)
{
	int err = 0;

	for (int i = 0; i < 50; i++) {
		if (syscall(SYS_delete_module, "kvm_amd", O_NONBLOCK) == 0)
			return 0;
		err = -errno;
		if (err != -EAGAIN && err != -EBUSY && err != -EWOULDBLOCK)
			break;
		usleep(100000);
	}
	return err == -EWOULDBLOCK || err == -EAGAIN ? -EBUSY : err;
}

static int amd_load(const char *args)
{
	int fd = open(amd_ko, O_RDONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, args, 0))
		err = -errno;
	close(fd);
	/* devtmpfs makes /dev/kvm as kvm_amd registers it. */
	for (int i = 0; !err && i < 100 && access("/dev/kvm", F_OK); i++)
		usleep(20000);
	return err;
}

/* kvm_amd back as it was; 0 or the number of problems. */
static int amd_restore(void)
{
	int err, bad = 0;

	if (access("/sys/module/kvm_amd", F_OK) == 0) {
		err = amd_unload();
		if (err) {
			printf("# restoring kvm_amd: unload: %s\n", strerror(-err));
			return 1;
		}
	}
	err = amd_load(amd_args);
	if (err) {
		printf("# restoring kvm_amd: load %s '%s': %s\n", amd_ko, amd_args,
		       strerror(-err));
		return 1;
	}
	bad = amd_compare();
	if (!bad)
		printf("# kvm_amd reloaded with '%s', parameters as before\n",
		       amd_args[0] ? amd_args : "(no arguments)");
	return bad;
}

static int uffd_open(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* Why the test cannot run here, or NULL. */
static const char *cannot_run(void)
{
	static char why[256];
	char v[128];
	int fd;

	if (geteuid())
		return "needs root (kvm_amd reload, /proc/PID/stack)";
	if (access("/sys/module/kvm_amd", F_OK))
		return "kvm_amd not loaded (not an AMD host)";
	if (access("/sys/module/kvm_amd/initstate", F_OK))
		return "kvm_amd is built in, cannot be reloaded with nrips=0";
	if (read_line(AMD_PARAMS "/nrips", v, sizeof(v)))
		return "kvm_amd has no nrips parameter";
	if (access("/proc/self/stack", R_OK))
		return "no /proc/PID/stack (CONFIG_STACKTRACE)";
	fd = uffd_open();
	if (fd < 0) {
		snprintf(why, sizeof(why), "no userfaultfd: %s", strerror(-fd));
		return why;
	}
	close(fd);
	return NULL;
}

/* The vCPU thread: KVM_RUN until asked to stop. */
struct vcpu_thread {
	struct vm *vm;
	pthread_t thread;
	volatile pid_t tid;
	volatile bool stop;
	volatile bool done;
	volatile int exit;	/* what ended it other than a stop request */
	bool started;
};

static void on_signal(int sig)
{
	(void)sig;
}

static void *vcpu_main(void *arg)
{
	struct vcpu_thread *t = arg;
	struct vcpu *v = &t->vm->vcpus[0];

	t->tid = syscall(SYS_gettid);
	for (;;) {
		int r = ioctl(v->fd, KVM_RUN, 0);

		if (r < 0 && errno == EINTR) {
			if (t->stop)
				break;
			continue;
		}
		t->exit = r < 0 ? -errno : (int)v->run->exit_reason;
		if (!t->exit)
			t->exit = -1000;	/* KVM_EXIT_UNKNOWN */
		break;
	}
	t->done = true;
	return NULL;
}

static int vcpu_start(struct vcpu_thread *t, struct vm *vm)
{
	struct sigaction sa = { .sa_handler = on_signal };	/* no SA_RESTART */

	memset(t, 0, sizeof(*t));
	t->vm = vm;
	sigaction(SIGUSR1, &sa, NULL);
	if (pthread_create(&t->thread, NULL, vcpu_main, t))
		return -EAGAIN;
	t->started = true;
	for (int i = 0; i < 1000 && !t->tid; i++)
		usleep(1000);
	return t->tid ? 0 : -ETIMEDOUT;
}

static void vcpu_stop(struct vcpu_thread *t)
{
	struct kvm_run *run = t->vm->vcpus[0].run;

	if (!t->started)
		return;
	t->stop = true;
	while (!t->done) {
		run->immediate_exit = 1;
		pthread_kill(t->thread, SIGUSR1);
		usleep(2000);
	}
	pthread_join(t->thread, NULL);
	run->immediate_exit = 0;
	t->started = false;
}

/* The scheduler state letter of thread @tid of this process, or 0. */
static char thread_state(pid_t tid)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	if (read_line(path, buf, sizeof(buf)))
		return 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

static int thread_stack(pid_t tid, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	size_t len = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stack", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len < size - 1 && (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += n;
	close(fd);
	buf[len] = 0;
	return 0;
}

/* A stack in the instruction emulation that skips the refused vmmcall. */
static bool in_emulation(const char *stack)
{
	static const char *const fns[] = {
		"x86_emulate_instruction", "x86_decode_emulated_instruction",
		"x86_decode_insn", "skip_emulated_instruction",
	};

	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
		if (strstr(stack, fns[i]))
			return true;
	return false;
}

static bool has_module_frame(const char *stack)
{
	return strstr(stack, "[kvmguard]") || strstr(stack, "kvmguard_");
}

static void print_stack(const char *what, const char *stack)
{
	const char *l = stack;

	printf("# %s:\n", what);
	while (*l) {
		size_t n = strcspn(l, "\n");

		printf("#   %.*s\n", (int)n, l);
		l += n + (l[n] == '\n');
	}
}

static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

FIXTURE(sleep) {
	struct gnl g;
	struct vm vm;
	struct vcpu_thread t;
	struct hcg_klog klog;
	unsigned char *mem;
	unsigned char page[4096];	/* the code page, to put back */
	long psize;
	int uffd;
	uint64_t id;
	bool ready;
	bool unloaded;
};

FIXTURE_VARIANT(sleep) {
	bool hyperv;
};

FIXTURE_VARIANT_ADD(sleep, kvm) { .hyperv = false };
FIXTURE_VARIANT_ADD(sleep, hyperv) { .hyperv = true };

FIXTURE_SETUP(sleep)
{
	struct uffdio_register reg = { 0 };
	struct kg_vm v;
	uint64_t max;
	int err;

	self->vm.fd = -1;
	self->uffd = -1;
	self->klog.fd = -1;
	self->psize = sysconf(_SC_PAGESIZE);
	ASSERT_EQ(4096, self->psize);
	hcg_klog_open(&self->klog);
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
	ASSERT_EQ(0, hcg_policy(&self->g, KVMGUARD_CMD_POLICY_NEW, P "deny",
				KVMGUARD_MODE_ENFORCE, 1, 0, KVMGUARD_HYPERV_DENY));

	max = kg_max_vm_id(&self->g);
	ASSERT_EQ(0, vm_create(&self->vm));
	self->mem = mmap(NULL, VM_SLOT0_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->mem);
	/* Every page present: only the code page will ever be missing. */
	memset(self->mem, 0xf4, VM_SLOT0_SIZE);	/* hlt */
	memset(self->mem + COUNT_GPA, 0, 8);
	if (variant->hyperv)
		memcpy(self->mem + VM_CODE_GPA, code32, sizeof(code32));
	else
		memcpy(self->mem + VM_CODE_GPA, code16, sizeof(code16));
	memcpy(self->page, self->mem + VM_CODE_GPA, sizeof(self->page));
	self->uffd = uffd_open();
	ASSERT_LE(0, self->uffd);
	reg.range.start = (uintptr_t)self->mem;
	reg.range.len = VM_SLOT0_SIZE;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	ASSERT_EQ(0, ioctl(self->uffd, UFFDIO_REGISTER, &reg));
	ASSERT_EQ(0, vm_region(&self->vm, 0, 0, 0, VM_SLOT0_SIZE, self->mem));
	/* vm_destroy() unmaps it. */
	self->vm.slots[0] = (struct vm_slot){ .hva = self->mem, .size = VM_SLOT0_SIZE };
	ASSERT_EQ(0, vm_add_vcpu(&self->vm, 0));
	if (variant->hyperv) {
		err = hcg_hv_enable(&self->vm, 0);
		if (err)
			SKIP(return, "cannot enable Hyper-V hypercalls: %s", strerror(-err));
		ASSERT_EQ(0, hcg_set_mode(&self->vm, 0, HCG_PROT32));
	}
	ASSERT_EQ(0, kg_find_new_vm(&self->g, getpid(), max, &v));
	self->id = v.id;
	ASSERT_EQ(0, kg_vm_set(&self->g, self->id, P "deny"));
	self->ready = true;
}

FIXTURE_TEARDOWN(sleep)
{
	if (self->t.started) {
		/* The code page present, so the vCPU is not left in a fault. */
		struct uffdio_copy c = {
			.dst = (uintptr_t)(self->mem + VM_CODE_GPA),
			.src = (uintptr_t)self->page, .len = self->psize,
		};

		ioctl(self->uffd, UFFDIO_COPY, &c);
		vcpu_stop(&self->t);
	}
	if (self->vm.fd >= 0)
		vm_destroy(&self->vm);
	if (self->uffd >= 0)
		close(self->uffd);
	if (self->unloaded) {
		gnl_close(&self->g);
		EXPECT_EQ(0, kg_ensure_loaded());
		EXPECT_EQ(0, kg_open(&self->g));
	}
	kg_cleanup(&self->g, P);
	gnl_close(&self->g);
	EXPECT_EQ(0, hcg_klog_problems(&self->klog));
	hcg_klog_close(&self->klog);
}

static uint64_t denied(FIXTURE_DATA(sleep) *self, bool hyperv)
{
	struct hcg_stats st;
	uint64_t n = 0;

	if (hcg_stats(&self->g, self->id, &st))
		return 0;
	if (hyperv)
		return st.hv_denied;
	for (int i = 0; i <= KVMGUARD_HC_NR_OTHER; i++)
		n += st.denied[i];
	return n;
}

TEST_F_TIMEOUT(sleep, no_module_frame, 100)
{
	static char stack[16384], first_bad[16384], sample[16384];
	volatile uint32_t *count = (volatile uint32_t *)(self->mem + COUNT_GPA);
	unsigned char *code = self->mem + VM_CODE_GPA;
	bool rmmod = getenv("KVMGUARD_HC_SLEEP_RMMOD") != NULL;
	int zaps = 0, faults = 0, hits = 0, bad = 0, other = 0;
	uint32_t seed = (uint32_t)hcg_mono_ns() | 1, c0;
	uint64_t deadline, t;

	if (!self->ready)
		return;
	ASSERT_EQ(0, vcpu_start(&self->t, &self->vm));
	/* The guest loops and its calls are refused. */
	for (int i = 0; i < 500 && (*count < 200 || !denied(self, variant->hyperv)); i++)
		usleep(10000);
	ASSERT_LE(200u, *count) TH_LOG("guest not looping (exit %d)", self->t.exit);
	ASSERT_LT(0ull, denied(self, variant->hyperv)) TH_LOG("calls not refused");

	deadline = hcg_mono_ns() + TRY_SECONDS * 1000000000ull;
	while (hits < WANT_HITS && hcg_mono_ns() < deadline && !self->t.done) {
		struct pollfd pfd = { .fd = self->uffd, .events = POLLIN };
		struct uffdio_copy c = {
			.dst = (uintptr_t)code, .src = (uintptr_t)self->page,
			.len = self->psize,
		};
		struct uffd_msg msg;
		char st;

		/* Right after the guest counted: its vmmcall comes next. */
		c0 = *count;
		t = hcg_mono_ns() + 2000000000ull;
		while (*count == c0 && hcg_mono_ns() < t)
			;
		ASSERT_NE(c0, *count) TH_LOG("guest stopped looping");
		t = hcg_mono_ns() + rnd(&seed) % MAX_DELAY_NS;
		while (hcg_mono_ns() < t)
			;
		ASSERT_EQ(0, madvise(code, self->psize, MADV_DONTNEED));
		zaps++;

		/* The vCPU runs into the missing page sooner or later. */
		ASSERT_EQ(1, poll(&pfd, 1, 5000)) TH_LOG("no fault on the dropped page");
		ASSERT_EQ((ssize_t)sizeof(msg), read(self->uffd, &msg, sizeof(msg)));
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		faults++;
		/* Asleep in handle_userfault() (the message comes first). */
		for (int i = 0; i < 500; i++) {
			st = thread_state(self->t.tid);
			if (st == 'S' || st == 'D')
				break;
			usleep(1000);
		}
		stack[0] = 0;
		if (st == 'S' || st == 'D')
			thread_stack(self->t.tid, stack, sizeof(stack));
		if (in_emulation(stack)) {
			if (!hits)
				strcpy(sample, stack);
			hits++;
			if (has_module_frame(stack) && !bad++)
				strcpy(first_bad, stack);
			if (rmmod && !self->unloaded) {
				printf("# unloading kvmguard while the vCPU sleeps there\n");
				self->unloaded = !kg_rmmod();
				printf("# unloaded: %s\n", self->unloaded ? "yes" : "no");
				sleep(1);
			}
		} else if (has_module_frame(stack)) {
			/* Anywhere else, just as wrong. */
			if (!bad++)
				strcpy(first_bad, stack);
			other++;
		}
		if (ioctl(self->uffd, UFFDIO_COPY, &c) && errno == EEXIST) {
			struct uffdio_range r = { (uintptr_t)code, self->psize };

			ioctl(self->uffd, UFFDIO_WAKE, &r);
		}
	}
	printf("# %d drops of the code page, %d faults, %d in the emulation of the skip, %d with a kvmguard frame (%d outside the emulation)\n",
	       zaps, faults, hits, bad, other);
	if (hits && !bad)
		print_stack("a fault in the emulation", sample);
	if (bad)
		print_stack("kvmguard on a sleeping vCPU's stack", first_bad);
	EXPECT_EQ(0, self->t.exit) TH_LOG("KVM_RUN ended: %d", self->t.exit);
	EXPECT_EQ(0, bad);
	if (!hits && !bad)
		SKIP(return, "no fault caught in the emulation of the skip (%d faults)", faults);
	shared->asserted = 1;
}

/* kselftest_harness.h's constructor order, as KG_HARNESS_MAIN sets it. */
static void __attribute__((constructor)) __constructor_order_last(void)
{
	if (!__constructor_order)
		__constructor_order = _CONSTRUCTOR_ORDER_BACKWARD;
}

static pid_t child;

static void on_term(int sig)
{
	(void)sig;
	if (child > 0)
		kill(child, SIGKILL);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_term };
	char args[sizeof(amd_args) + 16], v[128];
	const char *why;
	int err, status = 0, ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	kg_prereq(KG_NEED_KVM | KG_NEED_MODULE);
	why = cannot_run();
	if (why) {
		printf("TAP version 13\n1..0 # SKIP %s\n", why);
		return 4;
	}
	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		return 1;
	amd_nsaved = amd_read_params(amd_saved, MAX_PARAMS);
	err = amd_find();
	if (err) {
		printf("TAP version 13\n1..0 # SKIP no kvm-amd.ko at %s: %s\n", amd_ko,
		       strerror(-err));
		return 4;
	}
	err = amd_unload();
	if (err) {
		printf("TAP version 13\n1..0 # SKIP cannot unload kvm_amd (VMs exist?): %s\n",
		       strerror(-err));
		return 4;
	}
	snprintf(args, sizeof(args), "%s%snrips=0", amd_args, amd_args[0] ? " " : "");
	err = amd_load(args);
	if (err || read_line(AMD_PARAMS "/nrips", v, sizeof(v)) || strcmp(v, "0")) {
		printf("# kvm_amd '%s': %s\n", args, err ? strerror(-err) : v);
		if (amd_restore())
			return 1;
		printf("TAP version 13\n1..0 # SKIP cannot load kvm_amd with nrips=0\n");
		return 4;
	}
	printf("# kvm_amd reloaded with '%s'\n", args);

	child = fork();
	if (child < 0)
		return amd_restore() ? 1 : 1;
	if (!child)
		return test_harness_run(argc, argv);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	child = 0;
	if (amd_restore()) {
		printf("# kvm_amd NOT restored as it was\n");
		return 1;
	}
	if (!WIFEXITED(status)) {
		printf("# tests killed by signal %d\n", WTERMSIG(status));
		return 1;
	}
	ret = WEXITSTATUS(status);
	if (ret == 0 && !shared->asserted) {
		printf("# SKIP no fault caught in the emulation of a refused hypercall's skip\n");
		return 4;
	}
	return ret;
}
