/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kg: kvmguard helpers shared by the selftests: typed requests over gnl,
 * module load/unload, cgroup helpers, and a main() that skips (exit 4)
 * when the test cannot run.
 */
#ifndef KVMGUARD_SELFTEST_KG_H
#define KVMGUARD_SELFTEST_KG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/kvmguard.h>

#include "gnl.h"

#define KG_CGROOT "/sys/fs/cgroup"

/* A set of attribute numbers, for the present masks below. */
typedef unsigned __int128 kg_mask_t;

struct kg_vm {
	uint64_t id;
	uint32_t pid;
	char comm[32];
	char cgroup[KVMGUARD_CGROUP_MAX + 1];
	uint64_t created_ns;
	uint32_t vcpus;
	uint32_t memslots;
	uint64_t mem_bytes;
	uint32_t flags;
	uint8_t bound_by;
	bool has_policy;
	char policy[KVMGUARD_NAME_MAX + 1];
	uint64_t mem_shared_bytes;
	uint64_t mem_dirty_bytes;
	uint64_t mem_limit_denied;
	uint64_t mem_shared_denied;
	uint64_t mem_ksm_denied;
	uint64_t mem_ksm_madvise;
	uint64_t mem_dirty_denied;
	kg_mask_t present;	/* bit n: attribute n was present */
	int unknown;		/* attributes outside the ABI */
};

struct kg_policy {
	char name[KVMGUARD_NAME_MAX + 1];
	uint8_t mode;
	bool has_domain;
	char domain[KVMGUARD_NAME_MAX + 1];
	uint32_t vms;
	uint32_t bindings;
	uint64_t mem_max;
	uint8_t mem_shared;
	uint8_t mem_ksm;
	uint64_t mem_dirty_max;
	kg_mask_t present;
};

struct kg_bind {
	uint8_t type;
	char cgroup[KVMGUARD_CGROUP_MAX + 1];
	uint32_t pid;
	char policy[KVMGUARD_NAME_MAX + 1];
	kg_mask_t present;
};

struct kg_event {
	uint8_t type;
	uint64_t time_ns;
	uint64_t vm_id;
	uint32_t pid;
	char comm[32];
	bool has_policy;
	char policy[KVMGUARD_NAME_MAX + 1];
	uint8_t action;		/* HYPERCALL, HYPERV, MEMORY */
	uint64_t count;
	uint64_t hc_nr;		/* HYPERCALL */
	uint8_t mem_rule;	/* MEMORY */
	uint32_t mem_slot;
	uint64_t mem_bytes;
	uint8_t vmm_default;	/* MEMORY: EVENT_VMM_DEFAULT */
	uint16_t hv_code;	/* HYPERV */
	kg_mask_t present;
};

/* Bit of attribute @a in a present mask. */
#define KG_BIT(a) ((kg_mask_t)1 << (a))
_Static_assert(KVMGUARD_A_MAX < 128, "present masks hold attributes 0..127");

/* The VM fields every VM message must carry. */
#define KG_VM_REQUIRED (KG_BIT(KVMGUARD_A_VM_ID) | KG_BIT(KVMGUARD_A_VM_PID) | \
	KG_BIT(KVMGUARD_A_VM_COMM) | KG_BIT(KVMGUARD_A_VM_CGROUP) | \
	KG_BIT(KVMGUARD_A_VM_CREATED_NS) | KG_BIT(KVMGUARD_A_VM_VCPUS) | \
	KG_BIT(KVMGUARD_A_VM_MEMSLOTS) | KG_BIT(KVMGUARD_A_VM_MEM_BYTES) | \
	KG_BIT(KVMGUARD_A_VM_FLAGS) | KG_BIT(KVMGUARD_A_VM_BOUND_BY) | \
	KG_BIT(KVMGUARD_A_VM_HC_STATS) | KG_BIT(KVMGUARD_A_VM_HV_ALLOWED) | \
	KG_BIT(KVMGUARD_A_VM_HV_DENIED) | KG_BIT(KVMGUARD_A_VM_MEM_SHARED_BYTES) | \
	KG_BIT(KVMGUARD_A_VM_MEM_DIRTY_BYTES) | KG_BIT(KVMGUARD_A_VM_MEM_LIMIT_DENIED) | \
	KG_BIT(KVMGUARD_A_VM_MEM_SHARED_DENIED) | KG_BIT(KVMGUARD_A_VM_MEM_KSM_DENIED) | \
	KG_BIT(KVMGUARD_A_VM_MEM_DIRTY_DENIED))

/* The memory rules every policy message must carry. */
#define KG_POLICY_MEM (KG_BIT(KVMGUARD_A_POLICY_MEM_MAX) | \
	KG_BIT(KVMGUARD_A_POLICY_MEM_SHARED) | KG_BIT(KVMGUARD_A_POLICY_MEM_KSM) | \
	KG_BIT(KVMGUARD_A_POLICY_MEM_DIRTY_MAX))

/* Open the kvmguard family; -errno. */
int kg_open(struct gnl *g);
/* Request skeleton for a kvmguard command (doit: ACK, dump: DUMP). */
void kg_req(struct gnl *g, struct gnl_msg *m, uint8_t cmd, bool dump);

int kg_parse_vm(const struct nlmsghdr *nlh, struct kg_vm *vm);
int kg_parse_policy(const struct nlmsghdr *nlh, struct kg_policy *p);
int kg_parse_bind(const struct nlmsghdr *nlh, struct kg_bind *b);
int kg_parse_event(const struct nlmsghdr *nlh, struct kg_event *e);

/*
 * Events from @sub for @ms milliseconds, or until @want (> 0) of them were
 * kept: @take sees each message of the family, parsed into @tb, and says
 * whether it kept it. Returns how many it kept.
 */
struct kg_event_sink {		/* where @take stores them: see memg.c */
	uint64_t vm_id;			/* 0: any VM */
	void *ev;			/* an array of @max */
	int n, max;
};

typedef bool (*kg_event_take)(const struct nlmsghdr *nlh,
			      const struct nlattr **tb, void *ctx);
int kg_collect_events(struct gnl *sub, int ms, int want, kg_event_take take,
		      void *ctx);

int kg_vm_get(struct gnl *g, uint64_t id, struct kg_vm *out);
/* Dump all VMs (retries on NLM_F_DUMP_INTR). *out is malloc'ed. */
int kg_vm_dump(struct gnl *g, struct kg_vm **out, int *n);
int kg_vm_set(struct gnl *g, uint64_t id, const char *policy);
/* mode < 0: not sent; domain NULL: not sent. */
int kg_policy_new(struct gnl *g, const char *name, int mode, const char *domain);
int kg_policy_set(struct gnl *g, const char *name, int mode, const char *domain);
int kg_policy_get(struct gnl *g, const char *name, struct kg_policy *out);
int kg_policy_del(struct gnl *g, const char *name);
int kg_policy_dump(struct gnl *g, struct kg_policy **out, int *n);
/* cgroup used for KVMGUARD_BIND_CGROUP, pid for KVMGUARD_BIND_PID. */
int kg_bind_new(struct gnl *g, int type, const char *cgroup, uint32_t pid,
		const char *policy);
int kg_bind_del(struct gnl *g, int type, const char *cgroup, uint32_t pid);
int kg_bind_dump(struct gnl *g, struct kg_bind **out, int *n);

/* VMs of the dump whose pid is @pid, by id. *out malloc'ed. */
int kg_vms_of_pid(struct gnl *g, pid_t pid, struct kg_vm **out, int *n);
/* The single VM that @pid created since @after_id (id > after_id). */
int kg_find_new_vm(struct gnl *g, pid_t pid, uint64_t after_id, struct kg_vm *out);
/* Highest VM id in the dump (0 if none). */
uint64_t kg_max_vm_id(struct gnl *g);

/* Module: loaded? load from $KVMGUARD_KO / unload; 0 or -errno. */
bool kg_module_loaded(void);
int kg_insmod(void);
int kg_rmmod(void);
/* Load the module if it isn't; 0 or -errno. */
int kg_ensure_loaded(void);

/* cgroup v2 helpers; paths relative to /sys/fs/cgroup ("/a/b"). */
int kg_cg_mkdir(const char *path);	/* mkdir -p */
int kg_cg_enter(const char *path);	/* move the calling process */
int kg_cg_rmdir(const char *path);	/* rmdir, moving nothing */
/* The calling process's cgroup v2 path (from /proc/self/cgroup). */
int kg_cg_self(char *buf, size_t size);

/* Remove what a test may have left: bindings and policies whose name
 * starts with @prefix, cgroup bindings under @cgprefix. */
void kg_cleanup(struct gnl *g, const char *prefix);

/* Nanoseconds of CLOCK_REALTIME. */
uint64_t kg_now_ns(void);
/* Run cmd via /bin/sh, capturing stdout/stderr (malloc'ed, NUL
 * terminated) if not NULL; stdin from @in (NULL: /dev/null). Returns the
 * exit status (0..255) or -1. */
int kg_run(const char *cmd, const char *in, char **out, char **err);

#define KG_NEED_KVM	1
#define KG_NEED_MODULE	2
/* Exit 4 (skip) unless the prerequisites are there. */
void kg_prereq(int needs);

/* Use instead of TEST_HARNESS_MAIN. */
#define KG_HARNESS_MAIN(needs)						\
	static void __attribute__((constructor))			\
	__constructor_order_last(void)					\
	{								\
		if (!__constructor_order)				\
			__constructor_order = _CONSTRUCTOR_ORDER_BACKWARD; \
	}								\
	int main(int argc, char **argv)					\
	{								\
		setvbuf(stdout, NULL, _IOLBF, 0);			\
		kg_prereq(needs);					\
		return test_harness_run(argc, argv);			\
	}

#endif
