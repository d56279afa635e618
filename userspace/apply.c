// SPDX-License-Identifier: GPL-2.0
/*
 * kvmguard(8): apply and dump. An apply file is read and checked whole,
 * then compared with the kernel's state; only the differences are sent, in
 * an order the kernel accepts (policies before the bindings that name them,
 * bindings removed before the policies they named).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>

#include "kg.h"

void config_init(struct kg_config *c)
{
	struct vec p = VEC_INIT(struct kg_policy);
	struct vec b = VEC_INIT(struct kg_bind);
	struct vec v = VEC_INIT(struct kg_vm_set);
	struct vec g = VEC_INIT(struct kg_guard);

	c->policies = p;
	c->binds = b;
	c->vm_sets = v;
	c->guards = g;
	c->all_pid_binds = false;
}

void config_free(struct kg_config *c)
{
	vec_free(&c->policies);
	binds_free(&c->binds);
	vec_free(&c->vm_sets);
	vec_free(&c->guards);
}

void state_init(struct kg_state *s)
{
	struct vec p = VEC_INIT(struct kg_policy);
	struct vec b = VEC_INIT(struct kg_bind);
	struct vec v = VEC_INIT(struct kg_vm);
	struct vec g = VEC_INIT(struct kg_guard);

	s->policies = p;
	s->binds = b;
	s->vms = v;
	s->guards = g;
}

void state_free(struct kg_state *s)
{
	size_t i;

	vec_free(&s->policies);
	binds_free(&s->binds);
	for (i = 0; i < s->vms.n; i++)
		kg_vm_free(VEC_AT(&s->vms, struct kg_vm, i));
	vec_free(&s->vms);
	vec_free(&s->guards);
}

static struct kg_guard *find_guard(const struct vec *v, const char *name)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		if (!strcmp(VEC_AT(v, struct kg_guard, i)->name, name))
			return VEC_AT(v, struct kg_guard, i);
	return NULL;
}

static struct kg_policy *find_policy(const struct vec *v, const char *name)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		if (!strcmp(VEC_AT(v, struct kg_policy, i)->name, name))
			return VEC_AT(v, struct kg_policy, i);
	return NULL;
}

static struct kg_bind *find_bind(const struct vec *v,
				 const struct kg_selector *sel)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		if (!kg_selector_cmp(&VEC_AT(v, struct kg_bind, i)->sel, sel))
			return VEC_AT(v, struct kg_bind, i);
	return NULL;
}

static int config_add(struct kg_config *c, struct kg_request *req, int line,
		      char *err, size_t errlen)
{
	char s[KG_SELECTOR_TEXT];
	size_t i;

	switch (req->op) {
	case OP_POLICY_ADD:
	case OP_POLICY_SET: {
		struct kg_policy *old = find_policy(&c->policies,
						    req->policy.name);
		struct kg_policy *p;

		if (old) {
			snprintf(err, errlen,
				 "policy %s is already defined on line %d",
				 req->policy.name, old->line);
			return -1;
		}
		p = vec_push(&c->policies);
		*p = req->policy;
		p->line = line;
		return 0;
	}
	case OP_BIND: {
		struct kg_bind *old = find_bind(&c->binds, &req->sel);
		struct kg_bind *b;

		if (old) {
			kg_selector_fmt(s, sizeof(s), &req->sel);
			snprintf(err, errlen,
				 "a binding for %.300s is already defined on line %d",
				 s, old->line);
			return -1;
		}
		b = vec_push(&c->binds);
		b->sel = req->sel;		/* takes the cgroup string */
		req->sel.cgroup = NULL;
		strcpy(b->policy, req->bind_policy);
		b->line = line;
		return 0;
	}
	case OP_VM_SET: {
		struct kg_vm_set *v;

		for (i = 0; i < c->vm_sets.n; i++) {
			v = VEC_AT(&c->vm_sets, struct kg_vm_set, i);
			if (v->id == req->vm_id) {
				snprintf(err, errlen,
					 "VM %llu is already set on line %d",
					 (unsigned long long)v->id, v->line);
				return -1;
			}
		}
		v = vec_push(&c->vm_sets);
		v->id = req->vm_id;
		strcpy(v->policy, req->bind_policy);
		v->line = line;
		return 0;
	}
	case OP_NET_GUARD: {
		struct kg_guard *old = find_guard(&c->guards, req->ifname);
		struct kg_guard *g;

		if (old) {
			char dev[KG_IFNAMSIZ];

			fmt_safe(dev, sizeof(dev), req->ifname);
			snprintf(err, errlen,
				 "net guard %s is already set on line %d", dev,
				 old->line);
			return -1;
		}
		g = vec_push(&c->guards);
		strcpy(g->name, req->ifname);
		g->on = req->guard;
		g->line = line;
		return 0;
	}
	default:
		snprintf(err, errlen, "command not allowed in an apply file");
		return -1;
	}
}

int config_parse(FILE *in, const char *name, struct kg_config *c)
{
	char *line = NULL, err[ERRMSG_MAX];
	size_t cap = 0, i;
	int lineno = 0, errors = 0;

	while (getline(&line, &cap, in) >= 0) {
		struct kg_request req;
		char **words;
		int n;

		lineno++;
		n = split_words(line, &words, err, sizeof(err));
		if (n < 0) {
			fprintf(stderr, "%s:%d: %s\n", name, lineno, err);
			errors++;
			continue;
		}
		if (n > 0) {
			if (parse_command(n, words, &req, true, err,
					  sizeof(err)) ||
			    config_add(c, &req, lineno, err, sizeof(err))) {
				fprintf(stderr, "%s:%d: %s\n", name, lineno, err);
				errors++;
			}
			kg_request_free(&req);
		}
		free_words(words, n);
	}
	free(line);
	if (ferror(in)) {
		fprintf(stderr, PROG_NAME ": cannot read %s: %s\n", name,
			strerror(errno));
		return -1;
	}

	/* everything a file names must survive the file's own deletions */
	for (i = 0; i < c->binds.n; i++) {
		const struct kg_bind *b = VEC_AT(&c->binds, struct kg_bind, i);

		if (!find_policy(&c->policies, b->policy)) {
			fprintf(stderr,
				"%s:%d: policy %s is not defined in this file\n",
				name, b->line, b->policy);
			errors++;
		}
	}
	for (i = 0; i < c->vm_sets.n; i++) {
		const struct kg_vm_set *v =
			VEC_AT(&c->vm_sets, struct kg_vm_set, i);

		if (!find_policy(&c->policies, v->policy)) {
			fprintf(stderr,
				"%s:%d: policy %s is not defined in this file\n",
				name, v->line, v->policy);
			errors++;
		}
	}
	return errors ? -1 : 0;
}

static struct kg_action *add_action(struct vec *acts,
				    enum kg_action_type type,
				    const struct kg_policy *p, const char *name,
				    const struct kg_selector *sel, uint64_t id)
{
	struct kg_action *a = vec_push(acts);

	a->type = type;
	a->policy = p;
	a->name = name;
	a->sel = sel;
	a->vm_id = id;
	if (p)
		a->line = p->line;
	return a;
}

/*
 * Does the config own the kernel's binding @b (may remove it)? Not a pid
 * binding, unless the file binds that pid too or drops its policy.
 */
static bool owns_bind(const struct kg_config *c, const struct kg_bind *b)
{
	size_t i;

	if (b->sel.type != KVMGUARD_BIND_PID || c->all_pid_binds ||
	    !find_policy(&c->policies, b->policy))
		return true;
	for (i = 0; i < c->binds.n; i++) {
		const struct kg_bind *f = VEC_AT(&c->binds, struct kg_bind, i);

		if (f->sel.type == KVMGUARD_BIND_PID && f->sel.pid == b->sel.pid)
			return true;
	}
	return false;
}

int plan_actions(const struct kg_config *c, const struct kg_state *s,
		 struct vec *acts)
{
	size_t i, k;

	for (i = 0; i < c->policies.n; i++) {
		const struct kg_policy *p =
			VEC_AT(&c->policies, struct kg_policy, i);
		const struct kg_policy *cur = find_policy(&s->policies, p->name);

		if (!cur)
			add_action(acts, ACT_POLICY_NEW, p, p->name, NULL, 0);
		else if (!policy_equal(p, cur))
			add_action(acts, ACT_POLICY_SET, p, p->name, NULL,
				   0)->cur = cur;
	}
	for (i = 0; i < c->binds.n; i++) {
		const struct kg_bind *b = VEC_AT(&c->binds, struct kg_bind, i);
		const struct kg_bind *cur = find_bind(&s->binds, &b->sel);

		if (!cur || strcmp(cur->policy, b->policy))
			add_action(acts, ACT_BIND_NEW, NULL, b->policy, &b->sel,
				   0)->line = b->line;
	}
	for (i = 0; i < s->binds.n; i++) {
		const struct kg_bind *b = VEC_AT(&s->binds, struct kg_bind, i);

		if (!find_bind(&c->binds, &b->sel) && owns_bind(c, b))
			add_action(acts, ACT_BIND_DEL, NULL, NULL, &b->sel, 0);
	}
	for (i = 0; i < s->policies.n; i++) {
		const struct kg_policy *p =
			VEC_AT(&s->policies, struct kg_policy, i);

		if (!find_policy(&c->policies, p->name))
			add_action(acts, ACT_POLICY_DEL, NULL, p->name, NULL, 0);
	}
	for (i = 0; i < c->vm_sets.n; i++) {
		const struct kg_vm_set *v =
			VEC_AT(&c->vm_sets, struct kg_vm_set, i);
		const struct kg_vm *cur = NULL;

		for (k = 0; k < s->vms.n; k++)
			if (VEC_AT(&s->vms, struct kg_vm, k)->id == v->id)
				cur = VEC_AT(&s->vms, struct kg_vm, k);
		if (!cur || strcmp(cur->policy, v->policy) ||
		    cur->bound_by != KVMGUARD_BOUND_EXPLICIT)
			add_action(acts, ACT_VM_SET, NULL, v->policy, NULL,
				   v->id)->line = v->line;
	}
	/* Guards: those of the file on, every other one off. */
	for (i = 0; i < c->guards.n; i++) {
		const struct kg_guard *g = VEC_AT(&c->guards, struct kg_guard, i);

		if (g->on && !find_guard(&s->guards, g->name))
			add_action(acts, ACT_GUARD_ON, NULL, g->name, NULL,
				   0)->line = g->line;
	}
	for (i = 0; i < s->guards.n; i++) {
		const struct kg_guard *g = VEC_AT(&s->guards, struct kg_guard, i);
		const struct kg_guard *want = find_guard(&c->guards, g->name);

		if (!want || !want->on)
			add_action(acts, ACT_GUARD_OFF, NULL, g->name, NULL,
				   0)->line = want ? want->line : 0;
	}
	return 0;
}

/* The options of POLICY_NEW that differ from the kernel's defaults. */
static unsigned int new_mask(const struct kg_policy *p)
{
	struct kg_policy d = { 0 };
	unsigned int mask = 0;
	size_t i;

	policy_defaults(&d);
	for (i = 0; i < policy_opts_count; i++)
		if (!policy_opt_equal(&policy_opts[i], p, &d))
			mask |= policy_opts[i].flag;
	return mask;
}

/*
 * POLICY_SET of apply: every option of the first ABI, plus each later rule
 * that differs or that the kernel reported (a kernel predating a rule would
 * refuse its attribute, even at the default).
 */
unsigned int set_mask(const struct kg_action *a)
{
	unsigned int mask = 0;
	size_t i;

	for (i = 0; i < policy_opts_count; i++) {
		const struct policy_opt *o = &policy_opts[i];

		if (o->base || (a->cur->set & o->flag) ||
		    !policy_opt_equal(o, a->policy, a->cur))
			mask |= o->flag;
	}
	return mask;
}

void action_print(FILE *f, const struct kg_action *a)
{
	size_t i;

	switch (a->type) {
	case ACT_POLICY_NEW:
		policy_dump_line(f, a->policy);
		return;
	case ACT_POLICY_SET:
		fprintf(f, "policy set %s", a->policy->name);
		for (i = 0; i < policy_opts_count; i++)
			if (set_mask(a) & policy_opts[i].flag)
				policy_opt_print(&policy_opts[i], f, a->policy);
		fputc('\n', f);
		return;
	case ACT_BIND_NEW:
		fputs("bind ", f);
		kg_selector_fput(f, a->sel);
		fprintf(f, " policy %s\n", a->name);
		return;
	case ACT_BIND_DEL:
		fputs("unbind ", f);
		kg_selector_fput(f, a->sel);
		fputc('\n', f);
		return;
	case ACT_POLICY_DEL:
		fprintf(f, "policy del %s\n", a->name);
		return;
	case ACT_VM_SET:
		fprintf(f, "vm set %llu policy %s\n",
			(unsigned long long)a->vm_id, a->name);
		return;
	case ACT_GUARD_ON:
	case ACT_GUARD_OFF:
		fputs("net guard ", f);
		fput_word(f, a->name);
		fputs(a->type == ACT_GUARD_ON ? " on\n" : " off\n", f);
		return;
	}
}

static int run_action(struct kg_nl *nl, const struct kg_action *a)
{
	switch (a->type) {
	case ACT_POLICY_NEW:
		return send_policy(nl, KVMGUARD_CMD_POLICY_NEW, a->policy,
				   new_mask(a->policy));
	case ACT_POLICY_SET:
		if (send_policy(nl, KVMGUARD_CMD_POLICY_SET, a->policy,
				set_mask(a)))
			return -1;
		if (a->policy->mem_max < a->cur->mem_max)
			mem_max_notice(nl, a->policy->name);
		return 0;
	case ACT_BIND_NEW:
		return send_bind(nl, a->sel, a->name);
	case ACT_BIND_DEL:
		return send_unbind(nl, a->sel);
	case ACT_POLICY_DEL:
		return send_policy_del(nl, a->name);
	case ACT_VM_SET:
		return send_vm_set(nl, a->vm_id, a->name);
	case ACT_GUARD_ON:
	case ACT_GUARD_OFF:
		return send_guard(nl, a->name, a->type == ACT_GUARD_ON);
	}
	return -1;
}

static int read_state(struct kg_nl *nl, const struct kg_config *c,
		      struct kg_state *s, const char *name)
{
	size_t i;

	if (fetch_policies(nl, &s->policies) || fetch_binds(nl, &s->binds) ||
	    fetch_guards(nl, &s->guards))
		return -1;
	for (i = 0; i < c->vm_sets.n; i++) {
		const struct kg_vm_set *v = VEC_AT(&c->vm_sets, struct kg_vm_set, i);
		struct kg_vm *vm = vec_push(&s->vms);

		if (fetch_vm(nl, v->id, vm)) {
			fprintf(stderr, "%s:%d: vm set %llu: no such VM\n", name,
				v->line, (unsigned long long)v->id);
			return -1;
		}
	}
	return 0;
}

/* Where an action comes from, for messages: "FILE:LINE" or "FILE". */
static void action_where(char *buf, size_t len, const char *name,
			 const struct kg_action *a)
{
	if (a->line)
		snprintf(buf, len, "%s:%d", name, a->line);
	else
		snprintf(buf, len, "%s (not in the file)", name);
}

/*
 * apply --check: what the running module would refuse, as far as it shows
 * without a change: pids with no process, bridges that do not exist (vm
 * set ids are checked by read_state()). Returns how many problems it
 * printed.
 */
static int check_actions(const struct vec *acts, const char *name)
{
	char where[PATH_MAX + 64];
	int problems = 0;
	size_t i;

	for (i = 0; i < acts->n; i++) {
		const struct kg_action *a = VEC_AT(acts, struct kg_action, i);

		action_where(where, sizeof(where), name, a);
		if (a->type == ACT_BIND_NEW && a->sel->type == KVMGUARD_BIND_PID &&
		    kill((pid_t)a->sel->pid, 0) && errno == ESRCH) {
			fprintf(stderr, "%s: bind pid %u: no process with that pid\n",
				where, a->sel->pid);
			problems++;
		}
		if (a->type == ACT_GUARD_ON && !if_nametoindex(a->name)) {
			char dev[KG_IFNAMSIZ];

			fmt_safe(dev, sizeof(dev), a->name);
			fprintf(stderr, "%s: net guard %s: no such device\n",
				where, dev);
			problems++;
		}
	}
	return problems;
}

/* The config that gives back state @s: every binding of it owned. */
static void config_of_state(struct kg_config *c, const struct kg_state *s)
{
	size_t i;

	c->all_pid_binds = true;
	for (i = 0; i < s->policies.n; i++)
		*(struct kg_policy *)vec_push(&c->policies) =
			*VEC_AT(&s->policies, struct kg_policy, i);
	for (i = 0; i < s->binds.n; i++) {
		const struct kg_bind *b = VEC_AT(&s->binds, struct kg_bind, i);
		struct kg_bind *n = vec_push(&c->binds);

		kg_selector_copy(&n->sel, &b->sel);
		strcpy(n->policy, b->policy);
	}
	for (i = 0; i < s->guards.n; i++) {
		struct kg_guard *g = vec_push(&c->guards);

		*g = *VEC_AT(&s->guards, struct kg_guard, i);
		g->on = true;
	}
	/*
	 * VMs of the file's vm set lines that were set before: back to that
	 * policy. No request hands a VM back to its bindings (roll_back()).
	 */
	for (i = 0; i < s->vms.n; i++) {
		const struct kg_vm *vm = VEC_AT(&s->vms, struct kg_vm, i);
		struct kg_vm_set *v;

		if (!vm->policy[0] || vm->bound_by != KVMGUARD_BOUND_EXPLICIT)
			continue;
		v = vec_push(&c->vm_sets);
		v->id = vm->id;
		strcpy(v->policy, vm->policy);
	}
}

/*
 * Undo a refused apply: plan from the kernel's state now back to @before
 * (read before the first change) and send it all, going on past a refusal.
 * Returns 0 if every request went through.
 */
static int roll_back(struct kg_nl *nl, const struct kg_state *before,
		     const struct vec *done, size_t n_done)
{
	struct vec acts = VEC_INIT(struct kg_action);
	struct kg_config want;
	struct kg_state now;
	int failed = 0;
	size_t i, k;

	for (i = 0; i < n_done; i++) {
		const struct kg_action *a = VEC_AT(done, struct kg_action, i);

		if (a->type != ACT_VM_SET)
			continue;
		for (k = 0; k < before->vms.n; k++) {
			const struct kg_vm *vm = VEC_AT(&before->vms, struct kg_vm, k);

			if (vm->id == a->vm_id &&
			    vm->bound_by != KVMGUARD_BOUND_EXPLICIT) {
				fprintf(stderr,
					PROG_NAME ": VM %llu keeps policy %s: a VM set by vm set cannot be handed back to its bindings\n",
					(unsigned long long)a->vm_id, a->name);
				failed++;
			}
		}
	}

	config_init(&want);
	state_init(&now);
	config_of_state(&want, before);
	if (read_state(nl, &want, &now, "rollback")) {
		failed = 1;
		goto out;
	}
	plan_actions(&want, &now, &acts);
	for (i = 0; i < acts.n; i++) {
		const struct kg_action *a = VEC_AT(&acts, struct kg_action, i);

		if (opt_verbose) {
			fputs("rollback: ", stdout);
			action_print(stdout, a);
			fflush(stdout);
		}
		if (run_action(nl, a))
			failed++;
	}
out:
	vec_free(&acts);
	state_free(&now);
	config_free(&want);
	return failed;
}

int cmd_apply(struct kg_nl *unused, const struct kg_request *req)
{
	struct vec acts = VEC_INIT(struct kg_action);
	struct kg_config c;
	struct kg_state s;
	struct kg_nl *nl = NULL;
	const char *name = req->file;
	char where[PATH_MAX + 64];
	FILE *in = stdin;
	int ret = EXIT_ERR;
	size_t i;

	(void)unused;
	config_init(&c);
	state_init(&s);
	if (strcmp(req->file, "-")) {
		in = fopen(req->file, "r");
		if (!in) {
			fprintf(stderr, PROG_NAME ": cannot open %s: %s\n",
				req->file, strerror(errno));
			goto out;
		}
	} else {
		name = "<stdin>";
	}
	if (config_parse(in, name, &c)) {
		if (in != stdin)
			fclose(in);
		goto out;
	}
	if (in != stdin)
		fclose(in);

	nl = kg_nl_open();
	if (!nl || read_state(nl, &c, &s, name))
		goto out;
	plan_actions(&c, &s, &acts);
	if (req->diff || (req->check && opt_verbose))
		for (i = 0; i < acts.n; i++)
			action_print(stdout, VEC_AT(&acts, struct kg_action, i));
	if (req->check) {
		if (!check_actions(&acts, name))
			ret = EXIT_OK;
		goto out;
	}
	if (req->diff) {
		ret = EXIT_OK;
		goto out;
	}
	for (i = 0; i < acts.n; i++) {
		const struct kg_action *a = VEC_AT(&acts, struct kg_action, i);

		if (opt_verbose) {
			action_print(stdout, a);
			fflush(stdout);
		}
		if (!run_action(nl, a))
			continue;
		action_where(where, sizeof(where), name, a);
		fprintf(stderr, "%s: refused: ", where);
		action_print(stderr, a);
		if (!i) {
			fprintf(stderr, PROG_NAME ": nothing was changed\n");
		} else if (roll_back(nl, &s, &acts, i)) {
			fprintf(stderr,
				PROG_NAME ": the changes made before could not all be undone; compare `kvmguard dump` with the file\n");
		} else {
			fprintf(stderr,
				PROG_NAME ": the %zu change%s made before %s undone\n",
				i, i > 1 ? "s" : "", i > 1 ? "were" : "was");
		}
		goto out;
	}
	ret = EXIT_OK;
out:
	vec_free(&acts);
	state_free(&s);
	config_free(&c);
	kg_nl_close(nl);
	return ret;
}

/* @s for a comment line: control characters (a newline) as '?'. */
static void comment_fput(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

/*
 * What `vm set` and `net bind` did, as comments: they name VMs by id, and
 * a VM gets a new id when the module is loaded again, so applied to a
 * reloaded module the lines could move another VM. The comment says
 * whose VM it is, to run them again with the id `vm list` gives then.
 */
static void vm_dump_lines(FILE *f, const struct vec *vms)
{
	bool head = false;
	size_t i, k;

	for (i = 0; i < vms->n; i++) {
		const struct kg_vm *vm = VEC_AT(vms, struct kg_vm, i);
		bool set = vm->bound_by == KVMGUARD_BOUND_EXPLICIT && vm->policy[0];
		bool any = set;

		for (k = 0; k < vm->n_net_devs; k++)
			if (vm->net_devs[k].bound_by == KVMGUARD_NET_BOUND_MANUAL)
				any = true;
		if (!any)
			continue;
		if (!head) {
			fputs("# By VM id, which a module reload changes: not applied; run\n"
			      "# them again with the ids of `kvmguard vm list`.\n", f);
			head = true;
		}
		fprintf(f, "# VM %llu: pid %u, comm ", (unsigned long long)vm->id,
			vm->pid);
		comment_fput(f, vm->comm);
		fputs(", cgroup ", f);
		comment_fput(f, vm->cgroup ? vm->cgroup : "");
		fputc('\n', f);
		if (set)
			fprintf(f, "# vm set %llu policy %s\n",
				(unsigned long long)vm->id, vm->policy);
		for (k = 0; k < vm->n_net_devs; k++) {
			if (vm->net_devs[k].bound_by != KVMGUARD_NET_BOUND_MANUAL)
				continue;
			fprintf(f, "# net bind %llu dev ", (unsigned long long)vm->id);
			comment_fput(f, vm->net_devs[k].name);
			fputc('\n', f);
		}
	}
}

/*
 * Pid bindings as comments: they end with their process, and after a
 * reboot the number is another process's (or nobody's), so applied there
 * the lines would fail or bind a stranger. apply keeps the pid bindings
 * a file does not name, so `dump | apply -` leaves them be.
 */
static void pid_dump_lines(FILE *f, const struct vec *binds)
{
	bool head = false;
	size_t i;

	for (i = 0; i < binds->n; i++) {
		const struct kg_bind *b = VEC_AT(binds, struct kg_bind, i);

		if (b->sel.type != KVMGUARD_BIND_PID)
			continue;
		if (!head) {
			fputs("# By pid, which ends with its process: not applied; bind\n"
			      "# the process again once it runs.\n", f);
			head = true;
		}
		fprintf(f, "# bind pid %u policy %s\n", b->sel.pid, b->policy);
	}
}

int cmd_dump(struct kg_nl *nl, const struct kg_request *req)
{
	struct kg_state s;
	size_t i;
	int ret = EXIT_ERR;

	(void)req;
	state_init(&s);
	if (fetch_policies(nl, &s.policies) || fetch_binds(nl, &s.binds) ||
	    fetch_guards(nl, &s.guards) || fetch_vms(nl, &s.vms))
		goto out;
	for (i = 0; i < s.policies.n; i++)
		policy_dump_line(stdout, VEC_AT(&s.policies, struct kg_policy, i));
	for (i = 0; i < s.binds.n; i++) {
		const struct kg_bind *b = VEC_AT(&s.binds, struct kg_bind, i);

		if (b->sel.type == KVMGUARD_BIND_PID)
			continue;
		fputs("bind ", stdout);
		kg_selector_fput(stdout, &b->sel);
		printf(" policy %s\n", b->policy);
	}
	for (i = 0; i < s.guards.n; i++) {
		fputs("net guard ", stdout);
		fput_word(stdout, VEC_AT(&s.guards, struct kg_guard, i)->name);
		fputs(" on\n", stdout);
	}
	pid_dump_lines(stdout, &s.binds);
	vm_dump_lines(stdout, &s.vms);
	ret = EXIT_OK;
out:
	state_free(&s);
	return ret;
}
