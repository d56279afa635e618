// SPDX-License-Identifier: GPL-2.0
/*
 * kvmguard(8): the vm, policy and bind commands: requests, reply parsing,
 * tables and JSON.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/attr.h>
#include <netlink/msg.h>

#include "kg.h"

#define SEL_MAX KG_SELECTOR_TEXT

static void copy_str(char *dst, size_t len, struct nlattr *a)
{
	if (!a) {
		dst[0] = '\0';
		return;
	}
	snprintf(dst, len, "%s", nla_get_string(a));
}

static uint32_t get_u32(struct nlattr *a)
{
	return a ? nla_get_u32(a) : 0;
}

static uint64_t get_u64(struct nlattr *a)
{
	return a ? nla_get_u64(a) : 0;
}

static struct nla_policy hc_stat_policy[KVMGUARD_A_MAX + 1] = {
	[KVMGUARD_A_HC_NR] = { .type = NLA_U32 },
	[KVMGUARD_A_HC_ALLOWED] = { .type = NLA_U64 },
	[KVMGUARD_A_HC_DENIED] = { .type = NLA_U64 },
};

static void vm_stats_from_attrs(struct kg_vm *vm, struct nlattr **tb)
{
	struct nlattr *stat;
	int rem;

	memset(vm->hc, 0, sizeof(vm->hc));
	vm->hv_allowed = tb[KVMGUARD_A_VM_HV_ALLOWED] ?
		nla_get_u64(tb[KVMGUARD_A_VM_HV_ALLOWED]) : 0;
	vm->hv_denied = tb[KVMGUARD_A_VM_HV_DENIED] ?
		nla_get_u64(tb[KVMGUARD_A_VM_HV_DENIED]) : 0;
	if (!tb[KVMGUARD_A_VM_HC_STATS])
		return;
	nla_for_each_nested(stat, tb[KVMGUARD_A_VM_HC_STATS], rem) {
		struct nlattr *st[KVMGUARD_A_MAX + 1];
		uint32_t nr;

		if (nla_type(stat) != KVMGUARD_A_HC_STAT ||
		    nla_parse_nested(st, KVMGUARD_A_MAX, stat, hc_stat_policy) ||
		    !st[KVMGUARD_A_HC_NR])
			continue;
		nr = nla_get_u32(st[KVMGUARD_A_HC_NR]);
		if (nr > KVMGUARD_HC_NR_OTHER)
			nr = KVMGUARD_HC_NR_OTHER;
		vm->hc[nr].present = true;
		vm->hc[nr].allowed += get_u64(st[KVMGUARD_A_HC_ALLOWED]);
		vm->hc[nr].denied += get_u64(st[KVMGUARD_A_HC_DENIED]);
	}
}

static struct nla_policy net_dev_policy[KVMGUARD_A_MAX + 1] = {
	[KVMGUARD_A_NET_IFINDEX] = { .type = NLA_U32 },
	[KVMGUARD_A_NET_IFNAME] = { .type = NLA_STRING },
	[KVMGUARD_A_NET_BOUND_BY] = { .type = NLA_U8 },
	[KVMGUARD_A_NET_TAGGED] = { .type = NLA_U64 },
	[KVMGUARD_A_NET_FORWARDED] = { .type = NLA_U64 },
	[KVMGUARD_A_NET_DELIVERED] = { .type = NLA_U64 },
	[KVMGUARD_A_NET_TAG_DENIED] = { .type = NLA_U64 },
	[KVMGUARD_A_NET_SEGMENT_DENIED] = { .type = NLA_U64 },
	[KVMGUARD_A_NET_ISOLATE_DENIED] = { .type = NLA_U64 },
};

/* The u64 counters of a KVMGUARD_A_NET_DEV and where they go. */
static const struct {
	int attr;
	size_t field;
} net_dev_counters[] = {
	{ KVMGUARD_A_NET_TAGGED, offsetof(struct kg_net_dev, tagged) },
	{ KVMGUARD_A_NET_FORWARDED, offsetof(struct kg_net_dev, forwarded) },
	{ KVMGUARD_A_NET_DELIVERED, offsetof(struct kg_net_dev, delivered) },
	{ KVMGUARD_A_NET_TAG_DENIED,
	  offsetof(struct kg_net_dev, denied[KVMGUARD_NET_RULE_TAG]) },
	{ KVMGUARD_A_NET_SEGMENT_DENIED,
	  offsetof(struct kg_net_dev, denied[KVMGUARD_NET_RULE_SEGMENT]) },
	{ KVMGUARD_A_NET_ISOLATE_DENIED,
	  offsetof(struct kg_net_dev, denied[KVMGUARD_NET_RULE_ISOLATE]) },
};

/* KVMGUARD_A_VM_NET_DEVS: one kg_net_dev per KVMGUARD_A_NET_DEV. */
static void vm_net_from_attrs(struct kg_vm *vm, struct nlattr **tb)
{
	struct vec devs = VEC_INIT(struct kg_net_dev);
	struct nlattr *dev;
	size_t i;
	int rem;

	free(vm->net_devs);
	vm->net_devs = NULL;
	vm->n_net_devs = 0;
	if (!tb[KVMGUARD_A_VM_NET_DEVS])
		return;
	nla_for_each_nested(dev, tb[KVMGUARD_A_VM_NET_DEVS], rem) {
		struct nlattr *dt[KVMGUARD_A_MAX + 1];
		struct kg_net_dev *d;

		if (nla_type(dev) != KVMGUARD_A_NET_DEV ||
		    nla_parse_nested(dt, KVMGUARD_A_MAX, dev, net_dev_policy))
			continue;
		d = vec_push(&devs);
		copy_str(d->name, sizeof(d->name), dt[KVMGUARD_A_NET_IFNAME]);
		d->ifindex = get_u32(dt[KVMGUARD_A_NET_IFINDEX]);
		d->bound_by = dt[KVMGUARD_A_NET_BOUND_BY] ?
			nla_get_u8(dt[KVMGUARD_A_NET_BOUND_BY]) : 0;
		for (i = 0; i < ARRAY_SIZE(net_dev_counters); i++)
			*(uint64_t *)((char *)d + net_dev_counters[i].field) =
				get_u64(dt[net_dev_counters[i].attr]);
	}
	vm->net_devs = devs.items;
	vm->n_net_devs = devs.n;
}

void vm_from_attrs(struct kg_vm *vm, struct nlattr **tb)
{
	vm->id = get_u64(tb[KVMGUARD_A_VM_ID]);
	vm->pid = get_u32(tb[KVMGUARD_A_VM_PID]);
	copy_str(vm->comm, sizeof(vm->comm), tb[KVMGUARD_A_VM_COMM]);
	free(vm->cgroup);
	vm->cgroup = tb[KVMGUARD_A_VM_CGROUP] ?
		xstrdup(nla_get_string(tb[KVMGUARD_A_VM_CGROUP])) : NULL;
	vm->created_ns = get_u64(tb[KVMGUARD_A_VM_CREATED_NS]);
	vm->vcpus = get_u32(tb[KVMGUARD_A_VM_VCPUS]);
	vm->memslots = get_u32(tb[KVMGUARD_A_VM_MEMSLOTS]);
	vm->mem_bytes = get_u64(tb[KVMGUARD_A_VM_MEM_BYTES]);
	vm->flags = get_u32(tb[KVMGUARD_A_VM_FLAGS]);
	vm->bound_by = tb[KVMGUARD_A_VM_BOUND_BY] ?
		nla_get_u8(tb[KVMGUARD_A_VM_BOUND_BY]) : KVMGUARD_BOUND_NONE;
	copy_str(vm->policy, sizeof(vm->policy), tb[KVMGUARD_A_POLICY_NAME]);
	vm_stats_from_attrs(vm, tb);
	vm->mem_shared_bytes = get_u64(tb[KVMGUARD_A_VM_MEM_SHARED_BYTES]);
	vm->mem_dirty_bytes = get_u64(tb[KVMGUARD_A_VM_MEM_DIRTY_BYTES]);
	vm->mem_denied[KVMGUARD_MEM_RULE_LIMIT] =
		get_u64(tb[KVMGUARD_A_VM_MEM_LIMIT_DENIED]);
	vm->mem_denied[KVMGUARD_MEM_RULE_SHARED] =
		get_u64(tb[KVMGUARD_A_VM_MEM_SHARED_DENIED]);
	vm->mem_denied[KVMGUARD_MEM_RULE_KSM] =
		get_u64(tb[KVMGUARD_A_VM_MEM_KSM_DENIED]);
	vm->mem_denied[KVMGUARD_MEM_RULE_DIRTY_LOG] =
		get_u64(tb[KVMGUARD_A_VM_MEM_DIRTY_DENIED]);
	vm->mem_ksm_madvise = get_u64(tb[KVMGUARD_A_VM_MEM_KSM_MADVISE]);
	vm_net_from_attrs(vm, tb);
}

void policy_from_attrs(struct kg_policy *p, struct nlattr **tb)
{
	size_t i;

	copy_str(p->name, sizeof(p->name), tb[KVMGUARD_A_POLICY_NAME]);
	policy_defaults(p);
	p->set = 0;
	for (i = 0; i < policy_opts_count; i++) {
		const struct policy_opt *o = &policy_opts[i];

		if (tb[o->attr]) {
			policy_opt_get(o, p, tb);
			p->set |= o->flag;
		}
	}
	p->vms = get_u32(tb[KVMGUARD_A_POLICY_VMS]);
	p->bindings = get_u32(tb[KVMGUARD_A_POLICY_BINDINGS]);
}

int bind_from_attrs(struct kg_bind *b, struct nlattr **tb)
{
	if (!tb[KVMGUARD_A_BIND_TYPE])
		return -1;
	b->sel.type = nla_get_u8(tb[KVMGUARD_A_BIND_TYPE]);
	if (b->sel.type == KVMGUARD_BIND_CGROUP) {
		if (!tb[KVMGUARD_A_BIND_CGROUP])
			return -1;
		b->sel.cgroup = xstrdup(nla_get_string(tb[KVMGUARD_A_BIND_CGROUP]));
	} else if (b->sel.type == KVMGUARD_BIND_PID) {
		if (!tb[KVMGUARD_A_BIND_PID])
			return -1;
		b->sel.pid = nla_get_u32(tb[KVMGUARD_A_BIND_PID]);
	}
	copy_str(b->policy, sizeof(b->policy), tb[KVMGUARD_A_POLICY_NAME]);
	return 0;
}

/* ---- collectors for dumps ---- */

static int collect_vm(struct nlattr **tb, void *arg)
{
	struct kg_vm *vm = vec_push(arg);

	vm_from_attrs(vm, tb);
	return 0;
}

static void reset_vms(void *arg)
{
	struct vec *v = arg;
	size_t i;

	for (i = 0; i < v->n; i++)
		kg_vm_free(VEC_AT(v, struct kg_vm, i));
	v->n = 0;
}

static int collect_policy(struct nlattr **tb, void *arg)
{
	struct kg_policy *p = vec_push(arg);

	policy_from_attrs(p, tb);
	return 0;
}

static void reset_vec(void *arg)
{
	((struct vec *)arg)->n = 0;
}

static int collect_bind(struct nlattr **tb, void *arg)
{
	struct vec *v = arg;
	struct kg_bind *b = vec_push(v);

	if (bind_from_attrs(b, tb)) {
		kg_selector_free(&b->sel);
		v->n--;
		return -1;
	}
	return 0;
}

void binds_free(struct vec *v)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		kg_selector_free(&VEC_AT(v, struct kg_bind, i)->sel);
	vec_free(v);
}

static void reset_binds(void *arg)
{
	struct vec *v = arg;
	size_t i;

	for (i = 0; i < v->n; i++)
		kg_selector_free(&VEC_AT(v, struct kg_bind, i)->sel);
	v->n = 0;
}

int policy_cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct kg_policy *)a)->name,
		      ((const struct kg_policy *)b)->name);
}

int bind_cmp(const void *a, const void *b)
{
	return kg_selector_cmp(&((const struct kg_bind *)a)->sel,
			       &((const struct kg_bind *)b)->sel);
}

int fetch_policies(struct kg_nl *nl, struct vec *out)
{
	if (kg_nl_dump(nl, KVMGUARD_CMD_POLICY_GET, collect_policy, reset_vec,
		       out, "cannot list policies"))
		return -1;
	vec_sort(out, policy_cmp_name);
	return 0;
}

int fetch_binds(struct kg_nl *nl, struct vec *out)
{
	if (kg_nl_dump(nl, KVMGUARD_CMD_BIND_GET, collect_bind, reset_binds,
		       out, "cannot list bindings"))
		return -1;
	vec_sort(out, bind_cmp);
	return 0;
}

int fetch_vms(struct kg_nl *nl, struct vec *out)
{
	return kg_nl_dump(nl, KVMGUARD_CMD_VM_GET, collect_vm, reset_vms, out,
			  "cannot list VMs");
}

static int one_vm(struct nlattr **tb, void *arg)
{
	vm_from_attrs(arg, tb);
	return 0;
}

int fetch_vm(struct kg_nl *nl, uint64_t id, struct kg_vm *vm)
{
	struct nl_msg *msg = kg_msg(nl, KVMGUARD_CMD_VM_GET, 0);
	char what[64];

	snprintf(what, sizeof(what), "cannot get VM %llu",
		 (unsigned long long)id);
	if (nla_put_u64(msg, KVMGUARD_A_VM_ID, id))
		return kg_msg_unbuilt(msg, what);
	return kg_nl_request(nl, msg, one_vm, vm, what);
}

/* ---- tables ---- */

struct table {
	int cols;
	struct vec cells;	/* char *, row-major */
};

static void table_add(struct table *t, const char *s)
{
	size_t len = strlen(s) + 1;
	char *buf = xmalloc(len);

	fmt_safe(buf, len, s);
	*(char **)vec_push(&t->cells) = buf;
}

static void table_print(struct table *t)
{
	size_t *w = xcalloc(t->cols, sizeof(*w));
	size_t i, n = t->cells.n;

	for (i = 0; i < n; i++) {
		size_t l = strlen(*VEC_AT(&t->cells, char *, i));

		if (l > w[i % t->cols])
			w[i % t->cols] = l;
	}
	for (i = 0; i < n; i++) {
		const char *s = *VEC_AT(&t->cells, char *, i);
		bool last = (int)(i % t->cols) == t->cols - 1;

		if (last)
			printf("%s\n", s);
		else
			printf("%-*s  ", (int)w[i % t->cols], s);
		free(*VEC_AT(&t->cells, char *, i));
	}
	vec_free(&t->cells);
	free(w);
}

/* ---- vm ---- */

/* "key":{"NAME":n,...}: counters by rule, 1..max, named by name() */
static void json_by_rule(struct json *j, const char *key, const uint64_t *n,
			 unsigned int max, const char *(*name)(uint8_t))
{
	unsigned int rule;

	json_key(j, key);
	json_obj_begin(j);
	for (rule = 1; rule <= max; rule++) {
		json_key(j, name(rule));
		json_u64(j, n[rule]);
	}
	json_obj_end(j);
}

void json_vm(struct json *j, const struct kg_vm *vm)
{
	unsigned int nr;
	size_t i;

	json_obj_begin(j);
	json_key(j, "id");
	json_u64(j, vm->id);
	json_key(j, "pid");
	json_u64(j, vm->pid);
	json_key(j, "comm");
	json_str(j, vm->comm);
	json_key(j, "cgroup");
	json_str(j, vm->cgroup ? vm->cgroup : "");
	json_key(j, "created_ns");
	json_u64(j, vm->created_ns);
	json_key(j, "vcpus");
	json_u64(j, vm->vcpus);
	json_key(j, "memslots");
	json_u64(j, vm->memslots);
	json_key(j, "mem_bytes");
	json_u64(j, vm->mem_bytes);
	json_key(j, "mem_shared_bytes");
	json_u64(j, vm->mem_shared_bytes);
	json_key(j, "mem_dirty_bytes");
	json_u64(j, vm->mem_dirty_bytes);
	json_key(j, "policy");
	if (vm->policy[0])
		json_str(j, vm->policy);
	else
		json_null(j);
	json_key(j, "bound_by");
	json_str(j, bound_by_name(vm->bound_by));
	json_key(j, "discovered");
	json_bool(j, vm->flags & KVMGUARD_VM_F_DISCOVERED);
	json_key(j, "hypercalls");
	json_arr_begin(j);
	for (nr = 0; nr <= KVMGUARD_HC_NR_OTHER; nr++) {
		if (!vm->hc[nr].present)
			continue;
		json_obj_begin(j);
		json_key(j, "nr");
		json_u64(j, nr);
		json_key(j, "allowed");
		json_u64(j, vm->hc[nr].allowed);
		json_key(j, "denied");
		json_u64(j, vm->hc[nr].denied);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_key(j, "hyperv");
	json_obj_begin(j);
	json_key(j, "allowed");
	json_u64(j, vm->hv_allowed);
	json_key(j, "denied");
	json_u64(j, vm->hv_denied);
	json_obj_end(j);
	json_by_rule(j, "mem_denied", vm->mem_denied, KVMGUARD_MEM_RULE_MAX,
		     mem_rule_name);
	json_key(j, "mem_ksm_madvise");
	json_u64(j, vm->mem_ksm_madvise);
	json_key(j, "net_devs");
	json_arr_begin(j);
	for (i = 0; i < vm->n_net_devs; i++) {
		const struct kg_net_dev *d = &vm->net_devs[i];

		json_obj_begin(j);
		json_key(j, "name");
		json_str(j, d->name);
		json_key(j, "ifindex");
		json_u64(j, d->ifindex);
		json_key(j, "bound_by");
		json_str(j, net_bound_by_name(d->bound_by));
		json_key(j, "tagged");
		json_u64(j, d->tagged);
		json_key(j, "forwarded");
		json_u64(j, d->forwarded);
		json_key(j, "delivered");
		json_u64(j, d->delivered);
		json_by_rule(j, "denied", d->denied, KVMGUARD_NET_RULE_MAX,
			     net_rule_name);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_obj_end(j);
}

int cmd_vm_list(struct kg_nl *nl, const struct kg_request *req)
{
	struct vec vms = VEC_INIT(struct kg_vm);
	size_t i;

	(void)req;
	if (fetch_vms(nl, &vms)) {
		reset_vms(&vms);
		vec_free(&vms);
		return EXIT_ERR;
	}
	if (opt_json) {
		struct json j;

		json_init(&j, stdout);
		json_arr_begin(&j);
		for (i = 0; i < vms.n; i++)
			json_vm(&j, VEC_AT(&vms, struct kg_vm, i));
		json_arr_end(&j);
		putchar('\n');
	} else {
		struct table t = { .cols = 8, .cells = VEC_INIT(char *) };
		static const char *const hdr[] = {
			"ID", "PID", "COMM", "VCPUS", "SLOTS", "MEMORY",
			"POLICY", "BOUND-BY",
		};

		for (i = 0; i < ARRAY_SIZE(hdr); i++)
			table_add(&t, hdr[i]);
		for (i = 0; i < vms.n; i++) {
			const struct kg_vm *vm = VEC_AT(&vms, struct kg_vm, i);
			char b[32];

			snprintf(b, sizeof(b), "%llu", (unsigned long long)vm->id);
			table_add(&t, b);
			snprintf(b, sizeof(b), "%u", vm->pid);
			table_add(&t, b);
			table_add(&t, vm->comm[0] ? vm->comm : "-");
			snprintf(b, sizeof(b), "%u", vm->vcpus);
			table_add(&t, b);
			snprintf(b, sizeof(b), "%u", vm->memslots);
			table_add(&t, b);
			fmt_bytes(b, sizeof(b), vm->mem_bytes);
			table_add(&t, b);
			table_add(&t, vm->policy[0] ? vm->policy : "-");
			table_add(&t, bound_by_name(vm->bound_by));
		}
		table_print(&t);
	}
	reset_vms(&vms);
	vec_free(&vms);
	return EXIT_OK;
}

/*
 * The policy @name as the kernel reports it; false (and nothing said) if
 * it cannot be read.
 */
static bool policy_of(struct kg_nl *nl, const char *name, struct kg_policy *out)
{
	struct vec v = VEC_INIT(struct kg_policy);
	bool found = false;
	size_t i;

	if (!name[0] || fetch_policies(nl, &v))
		goto out;
	for (i = 0; i < v.n; i++)
		if (!strcmp(VEC_AT(&v, struct kg_policy, i)->name, name)) {
			*out = *VEC_AT(&v, struct kg_policy, i);
			found = true;
		}
out:
	vec_free(&v);
	return found;
}

/*
 * After mem max of @name changed: a VM of it that maps more keeps its
 * memslots (KVM's are not taken back); what it adds is refused (audit
 * mode: reported).
 */
void mem_max_notice(struct kg_nl *nl, const char *name)
{
	struct vec vms = VEC_INIT(struct kg_vm);
	struct kg_policy p;
	char have[32], max[32];
	size_t i;

	if (!policy_of(nl, name, &p) || p.mem_max == KVMGUARD_MEM_UNLIMITED ||
	    fetch_vms(nl, &vms))
		goto out;
	for (i = 0; i < vms.n; i++) {
		const struct kg_vm *vm = VEC_AT(&vms, struct kg_vm, i);

		if (strcmp(vm->policy, name) || vm->mem_bytes <= p.mem_max)
			continue;
		fmt_bytes(have, sizeof(have), vm->mem_bytes);
		fmt_bytes(max, sizeof(max), p.mem_max);
		fprintf(stderr,
			PROG_NAME ": VM %llu maps %s, more than mem max %s of policy %s: its existing memslots stay, new ones are %s\n",
			(unsigned long long)vm->id, have, max, name,
			p.mode == KVMGUARD_MODE_AUDIT ? "reported (audit mode)" :
							"refused");
	}
out:
	reset_vms(&vms);
	vec_free(&vms);
}

int cmd_vm_show(struct kg_nl *nl, const struct kg_request *req)
{
	struct kg_vm vm = { 0 };
	struct kg_policy pol;
	char b[SEL_MAX], t[64];
	unsigned int nr, rule;
	const char *denied = "denied";
	size_t i;

	if (fetch_vm(nl, req->vm_id, &vm)) {
		kg_vm_free(&vm);
		return EXIT_ERR;
	}
	if (opt_json) {
		struct json j;

		json_init(&j, stdout);
		json_vm(&j, &vm);
		putchar('\n');
		kg_vm_free(&vm);
		return EXIT_OK;
	}
	/* Audit mode lets violations through: they would have been denied. */
	if (policy_of(nl, vm.policy, &pol) && pol.mode == KVMGUARD_MODE_AUDIT)
		denied = "would deny";
	printf("id: %llu\n", (unsigned long long)vm.id);
	printf("pid: %u\n", vm.pid);
	fmt_safe(b, sizeof(b), vm.comm);
	printf("comm: %s\n", b);
	fmt_safe(b, sizeof(b), vm.cgroup ? vm.cgroup : "");
	printf("cgroup: %s\n", b);
	fmt_time(t, sizeof(t), vm.created_ns, false);
	printf("created: %s\n", t);
	printf("vcpus: %u\n", vm.vcpus);
	printf("memslots: %u\n", vm.memslots);
	fmt_bytes(b, sizeof(b), vm.mem_bytes);
	printf("memory: %s (%llu bytes)\n", b,
	       (unsigned long long)vm.mem_bytes);
	fmt_bytes(b, sizeof(b), vm.mem_shared_bytes);
	printf("memory shared: %s (%llu bytes)\n", b,
	       (unsigned long long)vm.mem_shared_bytes);
	fmt_bytes(b, sizeof(b), vm.mem_dirty_bytes);
	printf("memory dirty-tracked: %s (%llu bytes)\n", b,
	       (unsigned long long)vm.mem_dirty_bytes);
	printf("memory %s:", denied);
	for (rule = 1; rule <= KVMGUARD_MEM_RULE_MAX; rule++)
		printf("%s %s %llu", rule > 1 ? "," : "", mem_rule_name(rule),
		       (unsigned long long)vm.mem_denied[rule]);
	putchar('\n');
	/* Not violations: every VMM that merges by default asks (see man page). */
	printf("memory ksm madvise (vmm default): %llu\n",
	       (unsigned long long)vm.mem_ksm_madvise);
	printf("net devices: %zu\n", vm.n_net_devs);
	for (i = 0; i < vm.n_net_devs; i++) {
		const struct kg_net_dev *d = &vm.net_devs[i];

		fmt_safe(b, sizeof(b), d->name);
		printf("net device %s: ifindex %u, bound by %s, tagged %llu, forwarded %llu, delivered %llu",
		       b, d->ifindex, net_bound_by_name(d->bound_by),
		       (unsigned long long)d->tagged,
		       (unsigned long long)d->forwarded,
		       (unsigned long long)d->delivered);
		for (rule = 1; rule <= KVMGUARD_NET_RULE_MAX; rule++)
			printf(", %s %s %llu", net_rule_name(rule), denied,
			       (unsigned long long)d->denied[rule]);
		putchar('\n');
	}
	printf("policy: %s\n", vm.policy[0] ? vm.policy : "none");
	printf("bound by: %s\n", bound_by_name(vm.bound_by));
	printf("flags: %s\n",
	       vm.flags & KVMGUARD_VM_F_DISCOVERED ? "discovered" : "none");
	printf("hyperv calls: allowed %llu, %s %llu\n",
	       (unsigned long long)vm.hv_allowed, denied,
	       (unsigned long long)vm.hv_denied);
	for (nr = 0; nr <= KVMGUARD_HC_NR_OTHER; nr++) {
		const char *name = hc_name(nr);

		if (!vm.hc[nr].present)
			continue;
		if (nr == KVMGUARD_HC_NR_OTHER)
			snprintf(b, sizeof(b), ">= %d", KVMGUARD_HC_NR_OTHER);
		else if (name)
			snprintf(b, sizeof(b), "%u %s", nr, name);
		else
			snprintf(b, sizeof(b), "%u", nr);
		printf("hypercall %s: allowed %llu, %s %llu\n", b,
		       (unsigned long long)vm.hc[nr].allowed, denied,
		       (unsigned long long)vm.hc[nr].denied);
	}
	kg_vm_free(&vm);
	return EXIT_OK;
}

/* KVMGUARD_A_FORCE when the command line asked for it. */
static int put_force(struct nl_msg *msg)
{
	return opt_force ? nla_put_flag(msg, KVMGUARD_A_FORCE) : 0;
}

int send_vm_set(struct kg_nl *nl, uint64_t id, const char *policy)
{
	struct nl_msg *msg = kg_msg(nl, KVMGUARD_CMD_VM_SET, 0);
	char what[96];

	snprintf(what, sizeof(what), "cannot set the policy of VM %llu to %s",
		 (unsigned long long)id, policy);
	if (nla_put_u64(msg, KVMGUARD_A_VM_ID, id) ||
	    nla_put_string(msg, KVMGUARD_A_POLICY_NAME, policy) ||
	    put_force(msg))
		return kg_msg_unbuilt(msg, what);
	return kg_nl_request(nl, msg, NULL, NULL, what);
}

int cmd_vm_set(struct kg_nl *nl, const struct kg_request *req)
{
	return send_vm_set(nl, req->vm_id, req->bind_policy) ?
		EXIT_ERR : EXIT_OK;
}

/* ---- policy ---- */

int send_policy(struct kg_nl *nl, uint8_t cmd, const struct kg_policy *p,
		unsigned int mask)
{
	struct nl_msg *msg = kg_msg(nl, cmd, 0);
	char what[96];
	size_t i;

	snprintf(what, sizeof(what), "cannot %s policy %s",
		 cmd == KVMGUARD_CMD_POLICY_NEW ? "add" : "change", p->name);
	if (nla_put_string(msg, KVMGUARD_A_POLICY_NAME, p->name) ||
	    (cmd == KVMGUARD_CMD_POLICY_SET && put_force(msg)))
		return kg_msg_unbuilt(msg, what);
	for (i = 0; i < policy_opts_count; i++)
		if ((mask & policy_opts[i].flag) &&
		    policy_opt_put(&policy_opts[i], msg, p))
			return kg_msg_unbuilt(msg, what);
	return kg_nl_request(nl, msg, NULL, NULL, what);
}

int send_policy_del(struct kg_nl *nl, const char *name)
{
	struct nl_msg *msg = kg_msg(nl, KVMGUARD_CMD_POLICY_DEL, 0);
	char what[96];

	snprintf(what, sizeof(what), "cannot delete policy %s", name);
	if (nla_put_string(msg, KVMGUARD_A_POLICY_NAME, name) || put_force(msg))
		return kg_msg_unbuilt(msg, what);
	return kg_nl_request(nl, msg, NULL, NULL, what);
}

int cmd_policy_add(struct kg_nl *nl, const struct kg_request *req)
{
	return send_policy(nl, KVMGUARD_CMD_POLICY_NEW, &req->policy,
			   req->policy.set) ? EXIT_ERR : EXIT_OK;
}

int cmd_policy_set(struct kg_nl *nl, const struct kg_request *req)
{
	if (send_policy(nl, KVMGUARD_CMD_POLICY_SET, &req->policy,
			req->policy.set))
		return EXIT_ERR;
	if (req->policy.set & (PF_MEM_MAX | PF_MODE))
		mem_max_notice(nl, req->policy.name);
	return EXIT_OK;
}

int cmd_policy_del(struct kg_nl *nl, const struct kg_request *req)
{
	return send_policy_del(nl, req->policy.name) ? EXIT_ERR : EXIT_OK;
}

/* A byte limit: null for none, like every "no restriction" of a policy. */
static void json_limit(struct json *j, uint64_t bytes)
{
	if (bytes == KVMGUARD_MEM_UNLIMITED)
		json_null(j);
	else
		json_u64(j, bytes);
}

/* ---- vm check ---- */

struct kg_check {
	bool got;
	uint8_t verdict;
	uint8_t mode;
	uint64_t limit, used, total;
	char policy[KVMGUARD_NAME_MAX + 1];
};

static int one_check(struct nlattr **tb, void *arg)
{
	struct kg_check *c = arg;
	struct nlattr *name = tb[KVMGUARD_A_POLICY_NAME];

	if (!tb[KVMGUARD_A_CHECK_VERDICT] || !tb[KVMGUARD_A_CHECK_LIMIT] ||
	    !tb[KVMGUARD_A_CHECK_USED] || !tb[KVMGUARD_A_CHECK_TOTAL])
		return 0;
	c->got = true;
	c->verdict = nla_get_u8(tb[KVMGUARD_A_CHECK_VERDICT]);
	c->mode = tb[KVMGUARD_A_POLICY_MODE] ?
		  nla_get_u8(tb[KVMGUARD_A_POLICY_MODE]) : 0;
	c->limit = get_u64(tb[KVMGUARD_A_CHECK_LIMIT]);
	c->used = get_u64(tb[KVMGUARD_A_CHECK_USED]);
	c->total = get_u64(tb[KVMGUARD_A_CHECK_TOTAL]);
	if (name)
		snprintf(c->policy, sizeof(c->policy), "%.*s",
			 (int)strnlen(nla_data(name), nla_len(name)),
			 (const char *)nla_data(name));
	return 0;
}

static const char *verdict_name(uint8_t v)
{
	switch (v) {
	case KVMGUARD_CHECK_ALLOWED:
		return "allowed";
	case KVMGUARD_CHECK_REFUSED:
		return "refused";
	case KVMGUARD_CHECK_AUDITED:
		return "audited";
	default:
		return "unknown";
	}
}

/* "128M (134217728 bytes)", or "none" for no limit */
static void print_bytes(const char *key, uint64_t bytes)
{
	char b[32];

	if (bytes == KVMGUARD_MEM_UNLIMITED) {
		printf("%s: none\n", key);
		return;
	}
	fmt_bytes(b, sizeof(b), bytes);
	printf("%s: %s (%llu bytes)\n", key, b, (unsigned long long)bytes);
}

int cmd_vm_check(struct kg_nl *nl, const struct kg_request *req)
{
	struct nl_msg *msg = kg_msg(nl, KVMGUARD_CMD_VM_CHECK, 0);
	const char *rule = req->check_rule == KVMGUARD_MEM_RULE_LIMIT ?
			   "mem add" : "dirty-log";
	struct kg_check c = { 0 };
	char what[64], b[SEL_MAX];

	snprintf(what, sizeof(what), "cannot check VM %llu",
		 (unsigned long long)req->vm_id);
	if (nla_put_u64(msg, KVMGUARD_A_VM_ID, req->vm_id) ||
	    nla_put_u8(msg, KVMGUARD_A_CHECK_RULE, req->check_rule) ||
	    (req->check_all ? nla_put_flag(msg, KVMGUARD_A_CHECK_ALL) :
	     nla_put_u64(msg, KVMGUARD_A_CHECK_BYTES, req->check_bytes))) {
		kg_msg_unbuilt(msg, what);
		return EXIT_ERR;
	}
	if (kg_nl_request(nl, msg, one_check, &c, what))
		return EXIT_ERR;
	if (!c.got) {
		fprintf(stderr, PROG_NAME ": %s: the module's answer lacks its verdict\n",
			what);
		return EXIT_ERR;
	}
	if (opt_json) {
		struct json j;

		json_init(&j, stdout);
		json_obj_begin(&j);
		json_key(&j, "id");
		json_u64(&j, req->vm_id);
		json_key(&j, "check");
		json_str(&j, rule);
		json_key(&j, "size");
		if (req->check_all)
			json_str(&j, "all");
		else
			json_u64(&j, req->check_bytes);
		json_key(&j, "verdict");
		json_str(&j, verdict_name(c.verdict));
		json_key(&j, "policy");
		if (c.policy[0])
			json_str(&j, c.policy);
		else
			json_null(&j);
		json_key(&j, "mode");
		json_str(&j, mode_name(c.mode));
		json_key(&j, "limit");
		json_limit(&j, c.limit);
		json_key(&j, "used");
		json_u64(&j, c.used);
		json_key(&j, "total");
		json_u64(&j, c.total);
		json_obj_end(&j);
		putchar('\n');
	} else {
		printf("id: %llu\n", (unsigned long long)req->vm_id);
		if (req->check_all) {
			printf("check: %s all\n", rule);
		} else {
			fmt_bytes(b, sizeof(b), req->check_bytes);
			printf("check: %s %s (%llu bytes)\n", rule, b,
			       (unsigned long long)req->check_bytes);
		}
		printf("verdict: %s\n", verdict_name(c.verdict));
		fmt_safe(b, sizeof(b), c.policy[0] ? c.policy : "none");
		printf("policy: %s (%s)\n", b, mode_name(c.mode));
		print_bytes(req->check_rule == KVMGUARD_MEM_RULE_LIMIT ?
			    "mem max" : "mem dirty-log max", c.limit);
		print_bytes("counted now", c.used);
		print_bytes("after", c.total);
	}
	return c.verdict == KVMGUARD_CHECK_REFUSED ? EXIT_REFUSED : EXIT_OK;
}

static void json_policy(struct json *j, const struct kg_policy *p)
{
	unsigned int vid;

	json_obj_begin(j);
	json_key(j, "name");
	json_str(j, p->name);
	json_key(j, "mode");
	json_str(j, mode_name(p->mode));
	json_key(j, "domain");
	if (p->domain[0])
		json_str(j, p->domain);
	else
		json_null(j);
	json_key(j, "hypercalls");
	if (p->hc_restrict) {
		unsigned int nr;

		json_arr_begin(j);
		for (nr = 0; nr < 64; nr++)
			if (p->hc_allow & (1ULL << nr))
				json_u64(j, nr);
		json_arr_end(j);
	} else {
		json_null(j);
	}
	json_key(j, "hyperv");
	json_str(j, p->hyperv == KVMGUARD_HYPERV_DENY ? "deny" : "allow");
	/* a module that knows the rule reports it */
	if (p->set & PF_XEN) {
		json_key(j, "xen");
		json_str(j, p->xen == KVMGUARD_XEN_DENY ? "deny" : "allow");
	}
	json_key(j, "mem");
	json_obj_begin(j);
	json_key(j, "max");
	json_limit(j, p->mem_max);
	json_key(j, "shared");
	json_str(j, mem_shared_name(p->mem_shared));
	json_key(j, "ksm");
	json_str(j, ksm_name(p->mem_ksm));
	json_key(j, "dirty_log_max");
	json_limit(j, p->mem_dirty_max);
	json_obj_end(j);
	json_key(j, "net");
	json_obj_begin(j);
	json_key(j, "tag");
	if (p->net_tag)
		json_u64(j, p->net_tag);
	else
		json_null(j);
	json_key(j, "trunk");
	json_arr_begin(j);
	for (vid = 0; vid < KVMGUARD_NET_TRUNK_BYTES * 8; vid++)
		if (vid_isset(p->net_trunk, vid))
			json_u64(j, vid);
	json_arr_end(j);
	json_key(j, "isolate");
	json_bool(j, p->net_isolate);
	json_obj_end(j);
	json_key(j, "vms");
	json_u64(j, p->vms);
	json_key(j, "bindings");
	json_u64(j, p->bindings);
	json_obj_end(j);
}

int cmd_policy_show(struct kg_nl *nl, const struct kg_request *req)
{
	struct vec pols = VEC_INIT(struct kg_policy);
	size_t i;

	if (req->has_name) {
		struct nl_msg *msg = kg_msg(nl, KVMGUARD_CMD_POLICY_GET, 0);
		char what[96];

		snprintf(what, sizeof(what), "cannot get policy %s",
			 req->policy.name);
		if (nla_put_string(msg, KVMGUARD_A_POLICY_NAME, req->policy.name)) {
			kg_msg_unbuilt(msg, what);
			vec_free(&pols);
			return EXIT_ERR;
		}
		if (kg_nl_request(nl, msg, collect_policy, &pols, what)) {
			vec_free(&pols);
			return EXIT_ERR;
		}
	} else if (fetch_policies(nl, &pols)) {
		vec_free(&pols);
		return EXIT_ERR;
	}
	if (opt_json) {
		struct json j;

		json_init(&j, stdout);
		if (req->has_name) {
			if (pols.n)
				json_policy(&j, VEC_AT(&pols, struct kg_policy, 0));
			else
				json_null(&j);
		} else {
			json_arr_begin(&j);
			for (i = 0; i < pols.n; i++)
				json_policy(&j, VEC_AT(&pols, struct kg_policy, i));
			json_arr_end(&j);
		}
		putchar('\n');
	} else {
		/* the rule columns after HYPERV: exact values, as the grammar
		 * reads them, so each cell can be given back as the rule */
		static const unsigned int rule_cols[] = {
			PF_MEM_MAX, PF_MEM_SHARED, PF_MEM_KSM,
			PF_MEM_DIRTY_MAX, PF_NET_TAG, PF_NET_TRUNK,
			PF_NET_ISOLATE, PF_XEN,
		};
		static const char *const hdr[] = {
			"NAME", "MODE", "DOMAIN", "VMS", "BINDINGS",
			"HYPERCALLS", "HYPERV", "MEM-MAX", "SHARED", "KSM",
			"DIRTY-LOG-MAX", "NET-TAG", "TRUNK", "ISOLATE", "XEN",
		};
		struct table t = { .cols = ARRAY_SIZE(hdr),
				   .cells = VEC_INIT(char *) };
		char *b = xmalloc(KG_VIDLIST_TEXT);
		size_t k;

		for (i = 0; i < ARRAY_SIZE(hdr); i++)
			table_add(&t, hdr[i]);
		for (i = 0; i < pols.n; i++) {
			const struct kg_policy *p =
				VEC_AT(&pols, struct kg_policy, i);

			table_add(&t, p->name);
			table_add(&t, mode_name(p->mode));
			table_add(&t, p->domain[0] ? p->domain : "-");
			snprintf(b, KG_VIDLIST_TEXT, "%u", p->vms);
			table_add(&t, b);
			snprintf(b, KG_VIDLIST_TEXT, "%u", p->bindings);
			table_add(&t, b);
			fmt_hypercalls(b, KG_VIDLIST_TEXT, p);
			table_add(&t, b);
			table_add(&t, p->hyperv == KVMGUARD_HYPERV_DENY ?
				  "deny" : "allow");
			for (k = 0; k < ARRAY_SIZE(rule_cols); k++) {
				policy_opt_fmt(policy_opt_find(rule_cols[k]),
					       p, b, KG_VIDLIST_TEXT);
				table_add(&t, b);
			}
		}
		free(b);
		table_print(&t);
	}
	vec_free(&pols);
	return EXIT_OK;
}

/* ---- bind ---- */

static int put_selector(struct nl_msg *msg, const struct kg_selector *sel)
{
	if (nla_put_u8(msg, KVMGUARD_A_BIND_TYPE, sel->type))
		return -1;
	if (sel->type == KVMGUARD_BIND_CGROUP)
		return nla_put_string(msg, KVMGUARD_A_BIND_CGROUP, sel->cgroup);
	if (sel->type == KVMGUARD_BIND_PID)
		return nla_put_u32(msg, KVMGUARD_A_BIND_PID, sel->pid);
	return 0;
}

int send_bind(struct kg_nl *nl, const struct kg_selector *sel,
	      const char *policy)
{
	struct nl_msg *msg = kg_msg(nl, KVMGUARD_CMD_BIND_NEW, 0);
	char what[SEL_MAX + 96], s[SEL_MAX];

	kg_selector_fmt(s, sizeof(s), sel);
	snprintf(what, sizeof(what), "cannot bind %s to policy %s", s, policy);
	if (put_selector(msg, sel) ||
	    nla_put_string(msg, KVMGUARD_A_POLICY_NAME, policy) || put_force(msg))
		return kg_msg_unbuilt(msg, what);
	return kg_nl_request(nl, msg, NULL, NULL, what);
}

int send_unbind(struct kg_nl *nl, const struct kg_selector *sel)
{
	struct nl_msg *msg = kg_msg(nl, KVMGUARD_CMD_BIND_DEL, 0);
	char what[SEL_MAX + 32], s[SEL_MAX];

	kg_selector_fmt(s, sizeof(s), sel);
	snprintf(what, sizeof(what), "cannot unbind %s", s);
	if (put_selector(msg, sel) || put_force(msg))
		return kg_msg_unbuilt(msg, what);
	return kg_nl_request(nl, msg, NULL, NULL, what);
}

int cmd_bind(struct kg_nl *nl, const struct kg_request *req)
{
	return send_bind(nl, &req->sel, req->bind_policy) ? EXIT_ERR : EXIT_OK;
}

int cmd_unbind(struct kg_nl *nl, const struct kg_request *req)
{
	return send_unbind(nl, &req->sel) ? EXIT_ERR : EXIT_OK;
}

int cmd_bind_show(struct kg_nl *nl, const struct kg_request *req)
{
	struct vec binds = VEC_INIT(struct kg_bind);
	size_t i;

	(void)req;
	if (fetch_binds(nl, &binds)) {
		binds_free(&binds);
		return EXIT_ERR;
	}
	if (opt_json) {
		struct json j;

		json_init(&j, stdout);
		json_arr_begin(&j);
		for (i = 0; i < binds.n; i++) {
			const struct kg_bind *b = VEC_AT(&binds, struct kg_bind, i);

			json_obj_begin(&j);
			json_key(&j, "selector");
			json_str(&j, bind_type_name(b->sel.type));
			if (b->sel.type == KVMGUARD_BIND_CGROUP) {
				json_key(&j, "cgroup");
				json_str(&j, b->sel.cgroup);
			} else if (b->sel.type == KVMGUARD_BIND_PID) {
				json_key(&j, "pid");
				json_u64(&j, b->sel.pid);
			}
			json_key(&j, "policy");
			json_str(&j, b->policy);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		putchar('\n');
	} else {
		struct table t = { .cols = 2, .cells = VEC_INIT(char *) };

		table_add(&t, "SELECTOR");
		table_add(&t, "POLICY");
		for (i = 0; i < binds.n; i++) {
			const struct kg_bind *b = VEC_AT(&binds, struct kg_bind, i);
			char s[SEL_MAX];

			kg_selector_fmt(s, sizeof(s), &b->sel);
			table_add(&t, s);
			table_add(&t, b->policy);
		}
		table_print(&t);
	}
	binds_free(&binds);
	return EXIT_OK;
}

/* ---- net ---- */

static const struct kg_errhint net_bind_hints[] = {
	{ ENOENT, "no such VM" },
	{ ENODEV, "no such network device" },
	{ EOPNOTSUPP, "only a tap or a macvtap device can be bound" },
	{ EBUSY, "the device is bound to another VM" },
	{ 0, NULL },
};

static const struct kg_errhint net_unbind_hints[] = {
	{ ENOENT, "the device is not bound to a VM" },
	{ ENODEV, "no such network device" },
	{ 0, NULL },
};

/* The name of the device of a net request, for messages. */
static void net_device_name(const struct kg_request *req, char *dev,
			    size_t len)
{
	if (req->ifindex)
		snprintf(dev, len, "ifindex %u", (unsigned int)req->ifindex);
	else
		fmt_safe(dev, len, req->ifname);
}

/* The device of a net request into @msg. */
static int put_net_device(struct nl_msg *msg, const struct kg_request *req)
{
	if (req->ifindex)
		return nla_put_u32(msg, KVMGUARD_A_NET_IFINDEX, req->ifindex);
	return nla_put_string(msg, KVMGUARD_A_NET_IFNAME, req->ifname);
}

int cmd_net_bind(struct kg_nl *nl, const struct kg_request *req)
{
	struct nl_msg *msg = kg_msg(nl, KVMGUARD_CMD_NET_BIND, 0);
	char what[96], dev[32];

	net_device_name(req, dev, sizeof(dev));
	snprintf(what, sizeof(what), "cannot bind %s to VM %llu", dev,
		 (unsigned long long)req->vm_id);
	if (nla_put_u64(msg, KVMGUARD_A_VM_ID, req->vm_id) ||
	    put_net_device(msg, req)) {
		kg_msg_unbuilt(msg, what);
		return EXIT_ERR;
	}
	return kg_nl_request_hints(nl, msg, NULL, NULL, what, net_bind_hints) ?
		EXIT_ERR : EXIT_OK;
}

int cmd_net_unbind(struct kg_nl *nl, const struct kg_request *req)
{
	struct nl_msg *msg = kg_msg(nl, KVMGUARD_CMD_NET_UNBIND, 0);
	char what[64], dev[32];

	net_device_name(req, dev, sizeof(dev));
	snprintf(what, sizeof(what), "cannot unbind %s", dev);
	if (put_net_device(msg, req)) {
		kg_msg_unbuilt(msg, what);
		return EXIT_ERR;
	}
	return kg_nl_request_hints(nl, msg, NULL, NULL, what,
				   net_unbind_hints) ? EXIT_ERR : EXIT_OK;
}

/* ---- guarded bridges ---- */

static const struct kg_errhint net_guard_hints[] = {
	{ ENODEV, "no such network device" },
	{ EOPNOTSUPP, "only a Linux bridge can be guarded" },
	{ 0, NULL },
};

int send_guard(struct kg_nl *nl, const char *bridge, bool on)
{
	struct nl_msg *msg = kg_msg(nl, KVMGUARD_CMD_NET_GUARD_SET, 0);
	char what[96], dev[KG_IFNAMSIZ];

	fmt_safe(dev, sizeof(dev), bridge);
	snprintf(what, sizeof(what), "cannot turn the guard of %s %s", dev,
		 on ? "on" : "off");
	if (nla_put_string(msg, KVMGUARD_A_NET_IFNAME, bridge) ||
	    nla_put_u8(msg, KVMGUARD_A_NET_GUARD, on))
		return kg_msg_unbuilt(msg, what);
	return kg_nl_request_hints(nl, msg, NULL, NULL, what, net_guard_hints);
}

int cmd_net_guard(struct kg_nl *nl, const struct kg_request *req)
{
	return send_guard(nl, req->ifname, req->guard) ? EXIT_ERR : EXIT_OK;
}

static int collect_guard(struct nlattr **tb, void *arg)
{
	struct kg_guard *g;

	if (!tb[KVMGUARD_A_NET_IFNAME])
		return 0;
	g = vec_push(arg);
	snprintf(g->name, sizeof(g->name), "%s",
		 nla_get_string(tb[KVMGUARD_A_NET_IFNAME]));
	if (tb[KVMGUARD_A_NET_IFINDEX])
		g->ifindex = nla_get_u32(tb[KVMGUARD_A_NET_IFINDEX]);
	if (tb[KVMGUARD_A_NET_GUARD_PORTS])
		g->ports = nla_get_u32(tb[KVMGUARD_A_NET_GUARD_PORTS]);
	if (tb[KVMGUARD_A_NET_GUARD_DROPPED])
		g->dropped = nla_get_u64(tb[KVMGUARD_A_NET_GUARD_DROPPED]);
	g->on = true;
	return 0;
}

static void reset_guards(void *arg)
{
	((struct vec *)arg)->n = 0;
}

static int guard_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kg_guard *)a)->name,
		      ((const struct kg_guard *)b)->name);
}

int fetch_guards(struct kg_nl *nl, struct vec *out)
{
	if (kg_nl_dump(nl, KVMGUARD_CMD_NET_GUARD_GET, collect_guard,
		       reset_guards, out, "cannot list guarded bridges"))
		return -1;
	vec_sort(out, guard_cmp);
	return 0;
}

int cmd_net_show(struct kg_nl *nl, const struct kg_request *req)
{
	struct vec guards = VEC_INIT(struct kg_guard);
	size_t i;

	(void)req;
	if (fetch_guards(nl, &guards)) {
		vec_free(&guards);
		return EXIT_ERR;
	}
	if (opt_json) {
		struct json j;

		json_init(&j, stdout);
		json_obj_begin(&j);
		json_key(&j, "guards");
		json_arr_begin(&j);
		for (i = 0; i < guards.n; i++) {
			const struct kg_guard *g =
				VEC_AT(&guards, struct kg_guard, i);

			json_obj_begin(&j);
			json_key(&j, "bridge");
			json_str(&j, g->name);
			json_key(&j, "ifindex");
			json_u64(&j, g->ifindex);
			json_key(&j, "unbound_ports");
			json_u64(&j, g->ports);
			json_key(&j, "dropped");
			json_u64(&j, g->dropped);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_obj_end(&j);
		putchar('\n');
	} else {
		struct table t = { .cols = 4, .cells = VEC_INIT(char *) };

		table_add(&t, "GUARDED BRIDGE");
		table_add(&t, "IFINDEX");
		table_add(&t, "UNBOUND PORTS");
		table_add(&t, "DROPPED");
		for (i = 0; i < guards.n; i++) {
			const struct kg_guard *g =
				VEC_AT(&guards, struct kg_guard, i);
			char s[32];

			fmt_safe(s, sizeof(s), g->name);
			table_add(&t, s);
			snprintf(s, sizeof(s), "%u", (unsigned int)g->ifindex);
			table_add(&t, s);
			snprintf(s, sizeof(s), "%u", (unsigned int)g->ports);
			table_add(&t, s);
			snprintf(s, sizeof(s), "%llu",
				 (unsigned long long)g->dropped);
			table_add(&t, s);
		}
		table_print(&t);
	}
	vec_free(&guards);
	return EXIT_OK;
}
