/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmguard(8): internal interfaces shared by the CLI's files.
 */
#ifndef KG_H
#define KG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <linux/kvmguard.h>

#define PROG_NAME	"kvmguard"

enum {
	EXIT_OK = 0,
	EXIT_ERR = 1,
	EXIT_USAGE = 2,
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Global options (main.c). */
extern bool opt_json;
extern bool opt_verbose;
/* -f, --force or a trailing `force`: see KVMGUARD_A_FORCE. */
extern bool opt_force;

/* util.c: growable arrays and allocation that cannot fail. */
struct vec {
	void *items;
	size_t n, cap, size;
};

#define VEC_INIT(type) { NULL, 0, 0, sizeof(type) }
#define VEC_AT(v, type, i) (&((type *)(v)->items)[i])

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
char *xstrdup(const char *s);
void *vec_push(struct vec *v);	/* zeroed new element */
void vec_free(struct vec *v);	/* frees the array only */
void vec_sort(struct vec *v, int (*cmp)(const void *, const void *));

/* Local time of a CLOCK_REALTIME nanosecond stamp, ISO 8601. */
void fmt_time(char *buf, size_t len, uint64_t ns, bool millis);
/* "4G", "512M", "1.5G", "123" */
void fmt_bytes(char *buf, size_t len, uint64_t bytes);
/*
 * Exact, in the grammar's SIZE syntax: the largest of T, G, M, K that
 * divides it ("4G", "1536M", "4097"); "none" for KVMGUARD_MEM_UNLIMITED.
 */
void fmt_size(char *buf, size_t len, uint64_t bytes);
/* Copy for a terminal: control characters become '?'. */
void fmt_safe(char *buf, size_t len, const char *s);

/* Objects as the kernel reports them (and as the CLI asks for them). */

/* Bits of kg_policy.set: which options a command line named. */
enum {
	PF_MODE = 1U << 0,
	PF_DOMAIN = 1U << 1,
	PF_HC = 1U << 2,
	PF_HYPERV = 1U << 3,
	PF_MEM_MAX = 1U << 4,
	PF_MEM_SHARED = 1U << 5,
	PF_MEM_KSM = 1U << 6,
	PF_MEM_DIRTY_MAX = 1U << 7,
	PF_NET_TAG = 1U << 8,
	PF_NET_TRUNK = 1U << 9,
	PF_NET_ISOLATE = 1U << 10,
	PF_XEN = 1U << 11,
};

struct kg_policy {
	char name[KVMGUARD_NAME_MAX + 1];
	unsigned int set;		/* PF_* given (requests) or reported */
	uint8_t mode;			/* enum kvmguard_mode */
	char domain[KVMGUARD_NAME_MAX + 1];	/* "" = none */
	uint8_t hc_restrict;		/* 0: every KVM hypercall allowed */
	uint64_t hc_allow;		/* bit n: hypercall n, if restricted */
	uint8_t hyperv;			/* enum kvmguard_hyperv */
	uint8_t xen;			/* enum kvmguard_xen */
	uint64_t mem_max;		/* bytes, KVMGUARD_MEM_UNLIMITED */
	uint8_t mem_shared;		/* enum kvmguard_mem_shared */
	uint8_t mem_ksm;		/* enum kvmguard_ksm */
	uint64_t mem_dirty_max;		/* bytes, KVMGUARD_MEM_UNLIMITED */
	uint16_t net_tag;		/* access VID, 0: none */
	uint8_t net_isolate;		/* 0 off, 1 on */
	/* bit v (byte v / 8, bit v % 8): VID v is on the trunk */
	uint8_t net_trunk[KVMGUARD_NET_TRUNK_BYTES];
	uint32_t vms, bindings;		/* kernel replies only */
	int line;			/* apply files: where it was defined */
};

struct kg_selector {
	uint8_t type;			/* enum kvmguard_bind_type */
	char *cgroup;			/* KVMGUARD_BIND_CGROUP, owned */
	uint32_t pid;			/* KVMGUARD_BIND_PID */
};

struct kg_bind {
	struct kg_selector sel;
	char policy[KVMGUARD_NAME_MAX + 1];
	int line;
};

/* A network device bound to a VM (KVMGUARD_A_NET_DEV). */
#define KG_IFNAMSIZ	16

struct kg_net_dev {
	char name[KG_IFNAMSIZ];
	uint32_t ifindex;
	uint8_t bound_by;		/* enum kvmguard_net_bound_by */
	uint64_t tagged, forwarded, delivered;
	/* frames that broke each rule, by enum kvmguard_net_rule */
	uint64_t denied[KVMGUARD_NET_RULE_MAX + 1];
};

/* A guarded bridge (NET_GUARD_GET), or a net guard line of an apply file. */
struct kg_guard {
	char name[KG_IFNAMSIZ];
	uint32_t ifindex;
	uint32_t ports;			/* unbound ports dropping frames */
	uint64_t dropped;		/* frames dropped since the guard */
	bool on;			/* apply files: on or off */
	int line;
};

struct kg_vm {
	uint64_t id;
	uint32_t pid;
	char comm[64];
	char *cgroup;			/* owned, may be NULL */
	uint64_t created_ns;
	uint32_t vcpus, memslots;
	uint64_t mem_bytes;
	uint32_t flags;
	uint8_t bound_by;
	char policy[KVMGUARD_NAME_MAX + 1];	/* "" = none */
	/* counters; index KVMGUARD_HC_NR_OTHER: every number of 64 or more */
	struct {
		bool present;
		uint64_t allowed, denied;
	} hc[KVMGUARD_HC_NR_OTHER + 1];
	uint64_t hv_allowed, hv_denied;
	uint64_t mem_shared_bytes, mem_dirty_bytes;
	/* violations of the memory rules, by enum kvmguard_mem_rule */
	uint64_t mem_denied[KVMGUARD_MEM_RULE_MAX + 1];
	uint64_t mem_ksm_madvise;	/* VMM default requests, not violations */
	struct kg_net_dev *net_devs;	/* owned */
	size_t n_net_devs;
};

void kg_selector_free(struct kg_selector *s);
void kg_selector_copy(struct kg_selector *dst, const struct kg_selector *src);
int kg_selector_cmp(const struct kg_selector *a, const struct kg_selector *b);
/*
 * "default", "cgroup /x", "pid 12" for messages and tables (control
 * characters as '?'); KG_SELECTOR_TEXT always suffices.
 */
#define KG_SELECTOR_TEXT	(KVMGUARD_CGROUP_MAX + 64)
void kg_selector_fmt(char *buf, size_t len, const struct kg_selector *s);
/* The same in apply-file syntax, the path quoted as needed, whole. */
void kg_selector_fput(FILE *f, const struct kg_selector *s);
void kg_vm_free(struct kg_vm *vm);

const char *mode_name(uint8_t mode);
const char *bound_by_name(uint8_t b);
const char *bind_type_name(uint8_t t);
const char *mem_shared_name(uint8_t v);	/* allow, deny, domain */
const char *ksm_name(uint8_t v);		/* allow, deny */
const char *mem_rule_name(uint8_t rule);	/* limit, ...; NULL if unknown */
const char *net_rule_name(uint8_t rule);	/* tag, ...; NULL if unknown */
const char *net_dir_name(uint8_t dir);		/* from_guest, to_guest, NULL */
const char *net_bound_by_name(uint8_t b);	/* vhost, manual, found */

/* parse.c: one grammar for argv and apply files. */
enum kg_op {
	OP_NONE,
	OP_HELP,
	OP_VM_LIST,
	OP_VM_SHOW,
	OP_VM_SET,
	OP_POLICY_ADD,
	OP_POLICY_SET,
	OP_POLICY_DEL,
	OP_POLICY_SHOW,
	OP_BIND,
	OP_UNBIND,
	OP_BIND_SHOW,
	OP_MONITOR,
	OP_APPLY,
	OP_DUMP,
	OP_NET_BIND,
	OP_NET_UNBIND,
	OP_NET_GUARD,
	OP_NET_SHOW,
	OP_VM_CHECK,
	__OP_MAX,
};

struct kg_request {
	enum kg_op op;
	uint64_t vm_id;
	struct kg_policy policy;	/* name and options (policy ops) */
	bool has_name;			/* policy show NAME */
	struct kg_selector sel;		/* bind, unbind */
	char bind_policy[KVMGUARD_NAME_MAX + 1];	/* bind, vm set */
	const char *file;		/* apply */
	bool check;			/* apply --check: change nothing */
	bool diff;			/* apply --diff: print the plan */
	char ifname[KG_IFNAMSIZ];	/* net bind, net unbind: dev */
	uint32_t ifindex;		/* or ifindex (then ifname is "") */
	bool guard;			/* net guard: on */
	uint8_t check_rule;		/* vm check: enum kvmguard_mem_rule */
	bool check_all;			/* vm check dirty-log all */
	uint64_t check_bytes;		/* vm check: SIZE */
	bool force;			/* a trailing `force` word */
};

#define ERRMSG_MAX 512

void kg_request_free(struct kg_request *req);
/*
 * Parse one command (argv without the program name and global options).
 * On a usage error returns -1 with a message in err. file_mode restricts
 * the grammar to what apply files accept.
 */
int parse_command(int argc, char **argv, struct kg_request *req,
		  bool file_mode, char *err, size_t errlen);
/*
 * Split a line of an apply file into words (whitespace, "double quotes" with
 * \\ \" \n \t \xHH escapes, # comments). Returns the word count, or -1 with
 * a message in err. *words must be freed with free_words().
 */
int split_words(const char *line, char ***words, char *err, size_t errlen);
void free_words(char **words, int n);
/* Write a word so that split_words() reads it back unchanged. */
void fput_word(FILE *f, const char *w);

bool valid_name(const char *s);
int parse_name(const char *what, const char *s, char *dst, char *err,
	       size_t errlen);
int parse_cgroup(const char *s, char **dst, char *err, size_t errlen);
int parse_pid(const char *s, uint32_t *pid, char *err, size_t errlen);
int parse_vm_id(const char *s, uint64_t *id, char *err, size_t errlen);
/*
 * SIZE|none of the memory rules: decimal bytes with an optional binary
 * suffix K, M, G, T (or KiB, MiB, GiB, TiB), at most 2^64 - 1; "none" is
 * KVMGUARD_MEM_UNLIMITED. what names the rule in messages ("mem max").
 */
int parse_mem_size(const char *what, const char *s, uint64_t *out, char *err,
		   size_t errlen);
/* A network interface name as the kernel accepts it (dev_valid_name()). */
int parse_ifname(const char *s, char *dst, char *err, size_t errlen);
/*
 * VID|none of net tag: 1..KVMGUARD_NET_VID_MAX, none is 0. VIDLIST|none of
 * net trunk: comma-separated VIDs and ranges ("100,200-210"), each VID once,
 * into a KVMGUARD_NET_TRUNK_BYTES bitmap; none clears it. what names the
 * rule in messages.
 */
int parse_vid(const char *what, const char *s, uint16_t *out, char *err,
	      size_t errlen);
int parse_vidlist(const char *what, const char *s, uint8_t *bits, char *err,
		  size_t errlen);
static inline bool vid_isset(const uint8_t *bits, unsigned int vid)
{
	return bits[vid / 8] & (1U << (vid % 8));
}
/*
 * The VIDs of a trunk bitmap as parse_vidlist() reads them back: ascending,
 * runs of two or more as ranges ("100,200-210"), "none" when empty. Returns
 * the length like snprintf(); KG_VIDLIST_TEXT always suffices.
 */
#define KG_VIDLIST_TEXT	16384
int fmt_vidlist(char *buf, size_t len, const uint8_t *bits);

/*
 * The policy options, one table entry each (parse.c). A rule of a later ABI
 * revision is one more entry plus its attribute.
 */
struct nl_msg;
struct nlattr;
struct json;

struct policy_opt {
	const char *word;		/* its words, e.g. "mem dirty-log max" */
	unsigned int flag;		/* PF_* */
	int attr;			/* KVMGUARD_A_* the kernel reports it in */
	/*
	 * Part of the first ABI: apply's POLICY_SET always sends it. Later
	 * rules are sent only when they differ or the kernel reported them,
	 * so that apply keeps working with a kernel that predates them.
	 */
	bool base;
	bool always_dump;		/* dump lines show it even at default */
	/*
	 * A field of struct kg_policy (OPT_CHOICE: u8 index of names[];
	 * OPT_SIZE: u64 bytes; OPT_VID: u16; OPT_VIDLIST: the bitmap) needs
	 * no callbacks; others set them all.
	 */
	/* OPT_VID: u16 VID, 0 for none; OPT_VIDLIST: trunk bitmap */
	enum { OPT_CUSTOM, OPT_CHOICE, OPT_SIZE, OPT_VID, OPT_VIDLIST } kind;
	size_t field;			/* offsetof(struct kg_policy, ...) */
	const char *const *names;
	size_t n_names;
	/* consume argv[0..] after the word; returns words used or -1 */
	int (*parse)(struct kg_policy *p, int argc, char **argv,
		     char *err, size_t errlen);
	int (*put)(struct nl_msg *msg, const struct kg_policy *p);
	void (*get)(struct kg_policy *p, struct nlattr **tb);
	bool (*equal)(const struct kg_policy *a, const struct kg_policy *b);
	/* " mode audit", in apply syntax, always explicit */
	void (*print)(FILE *f, const struct kg_policy *p);
};

extern const struct policy_opt policy_opts[];
/* The callbacks of an option, or what its field kind implies. */
int policy_opt_parse(const struct policy_opt *o, struct kg_policy *p,
		     int argc, char **argv, char *err, size_t errlen);
int policy_opt_put(const struct policy_opt *o, struct nl_msg *msg,
		   const struct kg_policy *p);
void policy_opt_get(const struct policy_opt *o, struct kg_policy *p,
		    struct nlattr **tb);
bool policy_opt_equal(const struct policy_opt *o, const struct kg_policy *a,
		      const struct kg_policy *b);
void policy_opt_print(const struct policy_opt *o, FILE *f,
		      const struct kg_policy *p);
/* The value policy_opt_print() writes, of a field option (not OPT_CUSTOM). */
void policy_opt_fmt(const struct policy_opt *o, const struct kg_policy *p,
		    char *buf, size_t len);
const struct policy_opt *policy_opt_find(unsigned int flag);	/* PF_* */
extern const size_t policy_opts_count;
void policy_defaults(struct kg_policy *p);
bool policy_equal(const struct kg_policy *a, const struct kg_policy *b);
void policy_dump_line(FILE *f, const struct kg_policy *p);
/* KVM hypercall names (kvm_para.h) */
const char *hc_name(unsigned int nr);
/* "all", "none" or "kick_cpu,send_ipi,20" */
void fmt_hypercalls(char *buf, size_t len, const struct kg_policy *p);

/* json.c: a small writer. */
struct json {
	FILE *f;
	int depth;
	bool need_comma[32];
	bool after_key;
};

void json_init(struct json *j, FILE *f);
void json_obj_begin(struct json *j);
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j);
void json_arr_end(struct json *j);
void json_key(struct json *j, const char *k);
void json_str(struct json *j, const char *s);
void json_u64(struct json *j, uint64_t v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);
/* Escape s as a JSON string (with quotes); invalid UTF-8 -> U+FFFD. */
void json_fput_string(FILE *f, const char *s);

/* nl.c: the generic netlink transport. */
struct kg_nl;

/* Prints why and returns NULL when the family cannot be reached. */
struct kg_nl *kg_nl_open(void);
void kg_nl_close(struct kg_nl *nl);
int kg_nl_fd(struct kg_nl *nl);
struct nl_msg *kg_msg(struct kg_nl *nl, uint8_t cmd, int flags);
/*
 * An nla_put_*() into msg failed: free msg, print "kvmguard: WHAT: the
 * request does not fit ..." and return -1. A request is never sent with
 * an attribute missing.
 */
int kg_msg_unbuilt(struct nl_msg *msg, const char *what);
/* What the CLI says when the module is gone or going during a request. */
#define KG_NOT_LOADED "the kvmguard module is not loaded (or is being unloaded)"
typedef int (*kg_reply_fn)(struct nlattr **tb, void *arg);
/*
 * Send msg (consumed), wait for the reply/ack. cb runs on each reply's
 * attributes. On a kernel error prints "kvmguard: WHAT: strerror[: extack]".
 * Returns 0 or -1.
 */
int kg_nl_request(struct kg_nl *nl, struct nl_msg *msg, kg_reply_fn cb,
		  void *arg, const char *what);
/* What an errno means for one command, said when the kernel said nothing. */
struct kg_errhint {
	int err;			/* 0 ends a list */
	const char *text;
};

int kg_nl_request_hints(struct kg_nl *nl, struct nl_msg *msg, kg_reply_fn cb,
			void *arg, const char *what,
			const struct kg_errhint *hints);
/* Dump cmd; on NLM_F_DUMP_INTR calls reset(arg) and dumps again. */
int kg_nl_dump(struct kg_nl *nl, uint8_t cmd, kg_reply_fn cb,
	       void (*reset)(void *), void *arg, const char *what);
int kg_nl_subscribe(struct kg_nl *nl, const char *group);
/* Receive pending multicast messages; returns -1 on a fatal error. */
int kg_nl_recv_events(struct kg_nl *nl, kg_reply_fn cb, void *arg);

/* Reply parsing shared by show/apply/monitor (show.c). */
void vm_from_attrs(struct kg_vm *vm, struct nlattr **tb);
void policy_from_attrs(struct kg_policy *p, struct nlattr **tb);
int bind_from_attrs(struct kg_bind *b, struct nlattr **tb);
int fetch_policies(struct kg_nl *nl, struct vec *out);	/* kg_policy */
int fetch_binds(struct kg_nl *nl, struct vec *out);	/* kg_bind */
int fetch_vm(struct kg_nl *nl, uint64_t id, struct kg_vm *vm);
int fetch_vms(struct kg_nl *nl, struct vec *out);		/* kg_vm */
void binds_free(struct vec *binds);
int policy_cmp_name(const void *a, const void *b);
int bind_cmp(const void *a, const void *b);
void json_vm(struct json *j, const struct kg_vm *vm);

/* Command implementations: return an exit code. */
int cmd_vm_list(struct kg_nl *nl, const struct kg_request *req);
int cmd_vm_show(struct kg_nl *nl, const struct kg_request *req);
int cmd_vm_set(struct kg_nl *nl, const struct kg_request *req);
/* Exit status of vm check when the policy would refuse. */
#define EXIT_REFUSED 3
int cmd_vm_check(struct kg_nl *nl, const struct kg_request *req);
int cmd_policy_add(struct kg_nl *nl, const struct kg_request *req);
int cmd_policy_set(struct kg_nl *nl, const struct kg_request *req);
int cmd_policy_del(struct kg_nl *nl, const struct kg_request *req);
int cmd_policy_show(struct kg_nl *nl, const struct kg_request *req);
int cmd_bind(struct kg_nl *nl, const struct kg_request *req);
int cmd_unbind(struct kg_nl *nl, const struct kg_request *req);
int cmd_bind_show(struct kg_nl *nl, const struct kg_request *req);
int cmd_monitor(struct kg_nl *nl, const struct kg_request *req);
int cmd_apply(struct kg_nl *nl, const struct kg_request *req); /* nl: NULL */
int cmd_dump(struct kg_nl *nl, const struct kg_request *req);
int cmd_net_bind(struct kg_nl *nl, const struct kg_request *req);
int cmd_net_unbind(struct kg_nl *nl, const struct kg_request *req);
int cmd_net_guard(struct kg_nl *nl, const struct kg_request *req);
int cmd_net_show(struct kg_nl *nl, const struct kg_request *req);
/* Guarded bridges, by name (kg_guard). */
int fetch_guards(struct kg_nl *nl, struct vec *out);

/* Requests shared by the commands and apply (show.c). */
int send_policy(struct kg_nl *nl, uint8_t cmd, const struct kg_policy *p,
		unsigned int mask);
int send_bind(struct kg_nl *nl, const struct kg_selector *sel,
	      const char *policy);
int send_unbind(struct kg_nl *nl, const struct kg_selector *sel);
int send_policy_del(struct kg_nl *nl, const char *name);
int send_vm_set(struct kg_nl *nl, uint64_t id, const char *policy);
int send_guard(struct kg_nl *nl, const char *bridge, bool on);
/* After a POLICY_SET: say which VMs map more than its mem max. */
void mem_max_notice(struct kg_nl *nl, const char *policy);

/* apply.c: the file format and convergence, separable for tests. */
struct kg_config {
	struct vec policies;		/* kg_policy */
	struct vec binds;		/* kg_bind */
	struct vec vm_sets;		/* kg_vm_set */
	struct vec guards;		/* kg_guard */
	/*
	 * Pid bindings are runtime state (they end with their process, and
	 * dump writes them as comments): a file's plan removes only those of
	 * the file's own pids. A rollback's config owns them all.
	 */
	bool all_pid_binds;
};

struct kg_vm_set {
	uint64_t id;
	char policy[KVMGUARD_NAME_MAX + 1];
	int line;
};

struct kg_state {
	struct vec policies;		/* kg_policy */
	struct vec binds;		/* kg_bind */
	struct vec vms;			/* kg_vm, for the config's vm set ids */
	struct vec guards;		/* kg_guard */
};

enum kg_action_type {
	ACT_POLICY_NEW,
	ACT_POLICY_SET,
	ACT_BIND_NEW,
	ACT_BIND_DEL,
	ACT_POLICY_DEL,
	ACT_VM_SET,
	ACT_GUARD_ON,
	ACT_GUARD_OFF,
};

struct kg_action {
	enum kg_action_type type;
	const struct kg_policy *policy;	/* POLICY_NEW/SET: from the config */
	const struct kg_policy *cur;	/* POLICY_SET: the kernel's */
	const char *name;		/* POLICY_DEL, VM_SET/BIND_NEW policy,
					 * GUARD_ON/OFF bridge */
	const struct kg_selector *sel;	/* BIND_NEW/DEL */
	uint64_t vm_id;
	int line;			/* of the file; 0: what it lacks */
};

void config_init(struct kg_config *c);
void config_free(struct kg_config *c);
void state_init(struct kg_state *s);
void state_free(struct kg_state *s);
/* Parse a whole file; on error prints "NAME:LINE: message" and returns -1. */
int config_parse(FILE *in, const char *name, struct kg_config *c);
/* Compute the change requests that make s match c (pure). */
int plan_actions(const struct kg_config *c, const struct kg_state *s,
		 struct vec *actions);
void action_print(FILE *f, const struct kg_action *a);
/* The options POLICY_SET sends for an apply action. */
unsigned int set_mask(const struct kg_action *a);

#endif /* KG_H */
