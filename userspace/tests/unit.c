// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of the kvmguard CLI's pure parts: the grammar, apply files,
 * word quoting, the JSON writer and the convergence plan. No netlink.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kg.h"

bool opt_json;
bool opt_verbose;

static int failures, checks;

#define CHECK(cond, ...) do {						\
	checks++;							\
	if (!(cond)) {							\
		failures++;						\
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);	\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
	}								\
} while (0)

static char *json_of(const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	json_fput_string(f, s);
	fclose(f);
	return buf;
}

static void test_json_escape(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain", "\"plain\"" },
		{ "", "\"\"" },
		{ "a\"b\\c", "\"a\\\"b\\\\c\"" },
		{ "\n\r\t\b\f", "\"\\n\\r\\t\\b\\f\"" },
		{ "\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		  "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"" },
		{ "bad\xff", "\"bad\\ufffd\"" },
		{ "trunc\xc3", "\"trunc\\ufffd\"" },
		{ "overlong\xc0\xaf", "\"overlong\\ufffd\\ufffd\"" },
		{ "surrogate\xed\xa0\x80", "\"surrogate\\ufffd\\ufffd\\ufffd\"" },
		{ "</script>", "\"</script>\"" },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		char *got = json_of(cases[i].in);

		CHECK(!strcmp(got, cases[i].out), "json %zu: got %s want %s",
		      i, got, cases[i].out);
		free(got);
	}
}

static void test_json_writer(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct json j;

	json_init(&j, f);
	json_arr_begin(&j);
	json_obj_begin(&j);
	json_key(&j, "a");
	json_u64(&j, 18446744073709551615ULL);
	json_key(&j, "b");
	json_null(&j);
	json_key(&j, "c");
	json_arr_begin(&j);
	json_bool(&j, true);
	json_bool(&j, false);
	json_arr_end(&j);
	json_obj_end(&j);
	json_obj_begin(&j);
	json_obj_end(&j);
	json_arr_end(&j);
	fclose(f);
	CHECK(!strcmp(buf, "[{\"a\":18446744073709551615,\"b\":null,\"c\":[true,false]},{}]"),
	      "writer: %s", buf);
	free(buf);
}

static int parse_str(const char *line, struct kg_request *req, bool file,
		     char *err)
{
	char **w;
	int n = split_words(line, &w, err, ERRMSG_MAX), ret;

	if (n < 0)
		return -1;
	ret = parse_command(n, w, req, file, err, ERRMSG_MAX);
	free_words(w, n);
	return ret;
}

static void test_grammar(void)
{
	static const struct {
		const char *line;
		bool file;
		const char *err;	/* NULL: must parse */
	} cases[] = {
		{ "vm list", false, NULL },
		{ "vm show 18446744073709551615", false, NULL },
		{ "vm show 18446744073709551616", false, "invalid VM id" },
		{ "vm show 0", false, "invalid VM id '0'" },
		{ "vm show -1", false, "invalid VM id '-1'" },
		{ "vm show +1", false, "invalid VM id '+1'" },
		{ "vm show 1x", false, "invalid VM id '1x'" },
		{ "vm show", false, "'vm show' needs a VM id" },
		{ "vm list extra", false, "unexpected argument 'extra'" },
		{ "vm set 3 policy web", false, NULL },
		{ "vm set 3 web", false, "expected 'policy NAME', not 'web'" },
		{ "vm frob", false, "unknown vm subcommand 'frob'" },
		{ "policy add web", false, NULL },
		{ "policy add web domain d mode audit", false, NULL },
		{ "policy add web mode", false, "'mode' needs a value" },
		{ "policy add web mode strict", false, "invalid mode 'strict'" },
		{ "policy add web mode audit mode audit", false, "'mode' given twice" },
		{ "policy add web mem max 4G", false,
		  "unknown policy option 'mem'" },
		{ "policy add web hypercalls allow kick_cpu,send_ipi,0,63", false,
		  NULL },
		{ "policy add web hypercalls none hyperv deny", false, NULL },
		{ "policy add web hypercalls all", false, NULL },
		{ "policy add web hypercalls allow", false,
		  "'hypercalls allow' needs a list" },
		{ "policy add web hypercalls allow kick", false,
		  "unknown hypercall 'kick'" },
		{ "policy add web hypercalls allow 64", false,
		  "unknown hypercall '64'" },
		{ "policy add web hypercalls allow kick_cpu,,send_ipi", false,
		  "invalid hypercall list" },
		{ "policy add web hypercalls allow kick_cpu,", false,
		  "invalid hypercall list" },
		{ "policy add web hypercalls some", false,
		  "invalid hypercalls value 'some'" },
		{ "policy add web hypercalls", false, "'hypercalls' needs a value" },
		{ "policy add web hyperv maybe", false,
		  "invalid hyperv value 'maybe'" },
		{ "policy set web hyperv deny hyperv allow", false,
		  "'hyperv' given twice" },
		{ "policy add w/b", false, "invalid policy name 'w/b'" },
		{ "policy add 0123456789012345678901234567890", false, NULL },
		{ "policy add 01234567890123456789012345678901", false,
		  "invalid policy name" },
		{ "policy add web domain bad!", false, "invalid domain name 'bad!'" },
		{ "policy set web", false, "'policy set' needs something to change" },
		{ "policy set web", true, NULL },
		{ "policy del web", false, NULL },
		{ "policy del web now", false, "unexpected argument 'now'" },
		{ "policy show", false, NULL },
		{ "policy show web", false, NULL },
		{ "bind default policy web", false, NULL },
		{ "bind cgroup machine.slice policy web", false,
		  "invalid cgroup path 'machine.slice': it must be absolute" },
		{ "bind cgroup /a/../b policy web", false, "'.' and '..'" },
		{ "bind cgroup /a/./b policy web", false, "'.' and '..'" },
		{ "bind cgroup /a/..b policy web", false, NULL },
		{ "bind pid 0 policy web", false, "invalid pid '0'" },
		{ "bind pid 12 policy", false, "'policy' needs a name" },
		{ "bind pid 12", false, "missing 'policy NAME'" },
		{ "bind user 12 policy web", false, "unknown selector 'user'" },
		{ "bind show", false, NULL },
		{ "bind show", true, "unknown selector 'show'" },
		{ "unbind default", false, NULL },
		{ "unbind pid 4 extra", false, "unexpected argument 'extra'" },
		{ "unbind default", true, "'unbind' is not allowed in an apply file" },
		{ "vm list", true, "'vm list' is not allowed" },
		{ "policy del x", true, "'policy del' is not allowed" },
		{ "monitor", false, NULL },
		{ "monitor now", false, "unexpected argument 'now'" },
		{ "apply", false, "'apply' needs a file name" },
		{ "apply -", false, NULL },
		{ "dump", false, NULL },
		{ "frobnicate", false, "unknown command 'frobnicate'" },
		{ "policy add \"we\nb\"", false, "invalid policy name 'we?b'" },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct kg_request req;
		char err[ERRMSG_MAX] = "";
		int ret = parse_str(cases[i].line, &req, cases[i].file, err);

		if (!cases[i].err)
			CHECK(ret == 0, "'%s' should parse: %s", cases[i].line,
			      err);
		else
			CHECK(ret < 0 && strstr(err, cases[i].err),
			      "'%s': got %d '%s', want '%s'", cases[i].line,
			      ret, err, cases[i].err);
		if (!ret)
			kg_request_free(&req);
	}
}

static void test_values(void)
{
	struct kg_request req;
	char err[ERRMSG_MAX];

	CHECK(!parse_str("policy set web domain none mode audit", &req, false,
			 err) && req.op == OP_POLICY_SET &&
	      req.policy.set == (PF_MODE | PF_DOMAIN) &&
	      req.policy.mode == KVMGUARD_MODE_AUDIT && !req.policy.domain[0],
	      "policy set values");
	CHECK(!parse_str("policy add web", &req, false, err) &&
	      req.policy.set == 0 && req.policy.mode == KVMGUARD_MODE_ENFORCE,
	      "policy add: nothing named, nothing set");
	CHECK(!parse_str("bind cgroup //machine.slice//a/ policy p", &req,
			 false, err) && req.sel.type == KVMGUARD_BIND_CGROUP &&
	      !strcmp(req.sel.cgroup, "/machine.slice/a"),
	      "cgroup normalised: %s", req.sel.cgroup);
	kg_request_free(&req);
	CHECK(!parse_str("bind cgroup / policy p", &req, false, err) &&
	      !strcmp(req.sel.cgroup, "/"), "root cgroup");
	kg_request_free(&req);
	CHECK(!parse_str("bind pid 2147483647 policy p", &req, false, err) &&
	      req.sel.pid == 2147483647U, "pid max");
	CHECK(parse_str("bind pid 2147483648 policy p", &req, false, err),
	      "pid beyond pid_t");
	CHECK(!parse_str("policy set web hypercalls allow send_ipi,kick_cpu,3",
			 &req, false, err) && req.policy.set == PF_HC &&
	      req.policy.hc_restrict == 1 &&
	      req.policy.hc_allow == ((1ULL << 10) | (1ULL << 5) | (1ULL << 3)),
	      "hypercall mask %llx", (unsigned long long)req.policy.hc_allow);
	CHECK(!parse_str("policy set web hypercalls none", &req, false, err) &&
	      req.policy.hc_restrict == 1 && req.policy.hc_allow == 0,
	      "hypercalls none");
	CHECK(!parse_str("policy set web hyperv deny", &req, false, err) &&
	      req.policy.set == PF_HYPERV &&
	      req.policy.hyperv == KVMGUARD_HYPERV_DENY, "hyperv deny");
	CHECK(!parse_str("vm set 42 policy p", &req, false, err) &&
	      req.vm_id == 42 && !strcmp(req.bind_policy, "p"), "vm set");
}

static void test_words(void)
{
	static const char *const words[] = {
		"plain", "with space", "quote\"d", "back\\slash", "#hash",
		"tab\there", "nl\nhere", "ctl\x01", "", "a#b",
		"/m/machine-qemu\\x2d1.scope", "\"\\x41\"",
	};
	char *buf = NULL, err[ERRMSG_MAX], **w;
	size_t len = 0, i;
	FILE *f = open_memstream(&buf, &len);
	int n;

	for (i = 0; i < ARRAY_SIZE(words); i++) {
		fput_word(f, words[i]);
		fputc(' ', f);
	}
	fputs("# comment \"not closed\n", f);
	fclose(f);
	n = split_words(buf, &w, err, sizeof(err));
	CHECK(n == (int)ARRAY_SIZE(words), "round trip count %d: %s", n, buf);
	for (i = 0; n > 0 && i < ARRAY_SIZE(words) && i < (size_t)n; i++)
		CHECK(!strcmp(w[i], words[i]), "round trip %zu: '%s'", i, w[i]);
	if (n >= 0)
		free_words(w, n);
	free(buf);

	CHECK(split_words("a \"b", &w, err, sizeof(err)) < 0 &&
	      strstr(err, "unterminated"), "unterminated quote");
	CHECK(split_words("\"\\q\"", &w, err, sizeof(err)) < 0 &&
	      strstr(err, "invalid escape"), "bad escape");
	CHECK(split_words("\"\\x00\"", &w, err, sizeof(err)) < 0,
	      "NUL escape refused");
	buf = NULL;
	f = open_memstream(&buf, &len);
	fput_word(f, "/m/machine-qemu\\x2d1\\x2dweb.scope");
	fclose(f);
	CHECK(!strcmp(buf, "/m/machine-qemu\\x2d1\\x2dweb.scope"),
	      "backslashes need no quotes: %s", buf);
	free(buf);
	n = split_words("/a\\x2d \"\\x2d\"", &w, err, sizeof(err));
	CHECK(n == 2 && !strcmp(w[0], "/a\\x2d") && !strcmp(w[1], "-"),
	      "literal backslash outside quotes, escape inside");
	free_words(w, n);
	n = split_words("   # only a comment", &w, err, sizeof(err));
	CHECK(n == 0, "comment line");
	free_words(w, n);
	n = split_words("x\"y z\"w", &w, err, sizeof(err));
	CHECK(n == 1 && !strcmp(w[0], "xy zw"), "quotes inside a word");
	free_words(w, n);
}

static int parse_file(const char *text, struct kg_config *c, char **errs)
{
	FILE *in = fmemopen((void *)text, strlen(text), "r");
	size_t len = 0;
	FILE *saved = stderr;
	int ret;

	*errs = NULL;
	stderr = open_memstream(errs, &len);
	config_init(c);
	ret = config_parse(in, "t.conf", c);
	fclose(stderr);
	stderr = saved;
	fclose(in);
	return ret;
}

/* every *.conf in tests/apply: good-* parse, bad-* fail with their .err */
static void test_apply_files(const char *dir)
{
	static const char *const good[] = { "good-full.conf", "good-empty.conf" };
	static const char *const bad[] = { "bad-dups.conf", "bad-grammar.conf",
					   "bad-undefined.conf" };
	char path[512], *errs = NULL, *want = NULL;
	struct kg_config c;
	size_t i, len = 0;
	FILE *f, *saved;
	int ret;

	for (i = 0; i < ARRAY_SIZE(good) + ARRAY_SIZE(bad); i++) {
		bool is_good = i < ARRAY_SIZE(good);
		const char *name = is_good ? good[i] : bad[i - ARRAY_SIZE(good)];

		snprintf(path, sizeof(path), "%s/%s", dir, name);
		f = fopen(path, "r");
		CHECK(f, "open %s", path);
		if (!f)
			continue;
		saved = stderr;
		stderr = open_memstream(&errs, &len);
		config_init(&c);
		ret = config_parse(f, name, &c);
		fclose(stderr);
		stderr = saved;
		fclose(f);
		if (is_good) {
			CHECK(ret == 0 && !errs[0], "%s: %s", name, errs);
		} else {
			FILE *e;

			snprintf(path, sizeof(path), "%s/%.*s.err", dir,
				 (int)(strlen(name) - 5), name);
			e = fopen(path, "r");
			CHECK(e, "open %s", path);
			if (e) {
				size_t wl = 0;

				free(want);
				want = NULL;
				if (getdelim(&want, &wl, '\0', e) < 0) {
					free(want);
					want = xstrdup("");
				}
				fclose(e);
				CHECK(ret < 0 && !strcmp(errs, want),
				      "%s: got\n%s--- want\n%s", name, errs,
				      want);
			}
		}
		config_free(&c);
		free(errs);
		errs = NULL;
	}
	free(want);
}

static void test_apply_semantics(void)
{
	struct kg_config c;
	char *errs;

	CHECK(!parse_file("policy add a mode audit\npolicy set b\n", &c, &errs),
	      "%s", errs);
	CHECK(c.policies.n == 2, "two policies");
	if (c.policies.n == 2) {
		struct kg_policy *b = VEC_AT(&c.policies, struct kg_policy, 1);

		CHECK(b->mode == KVMGUARD_MODE_ENFORCE && !b->domain[0] &&
		      b->line == 2, "policy set in a file: defaults");
	}
	config_free(&c);
	free(errs);
}

static struct kg_policy *add_policy(struct vec *v, const char *name,
				    uint8_t mode, const char *domain)
{
	struct kg_policy *p = vec_push(v);

	strcpy(p->name, name);
	p->mode = mode;
	strcpy(p->domain, domain);
	return p;
}

static void add_bind(struct vec *v, uint8_t type, const char *cg,
		     uint32_t pid, const char *policy)
{
	struct kg_bind *b = vec_push(v);

	b->sel.type = type;
	b->sel.cgroup = cg ? xstrdup(cg) : NULL;
	b->sel.pid = pid;
	strcpy(b->policy, policy);
}

static char *plan_text(struct kg_config *c, struct kg_state *s)
{
	struct vec acts = VEC_INIT(struct kg_action);
	char *buf = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&buf, &len);

	plan_actions(c, s, &acts);
	for (i = 0; i < acts.n; i++)
		action_print(f, VEC_AT(&acts, struct kg_action, i));
	fclose(f);
	vec_free(&acts);
	return buf;
}

static void test_plan(void)
{
	struct kg_config c;
	struct kg_state s;
	struct kg_vm *vm;
	char *errs, *got;
	const char *want;

	CHECK(!parse_file("policy add web mode audit domain t1\n"
			  "policy add db\n"
			  "policy add keep\n"
			  "bind default policy db\n"
			  "bind cgroup /m policy web\n"
			  "bind pid 9 policy keep\n"
			  "vm set 4 policy web\n"
			  "vm set 5 policy web\n", &c, &errs), "%s", errs);
	free(errs);

	/* kernel: web differs, keep equal, old unused; db missing */
	state_init(&s);
	add_policy(&s.policies, "web", KVMGUARD_MODE_ENFORCE, "t1");
	add_policy(&s.policies, "keep", KVMGUARD_MODE_ENFORCE, "");
	add_policy(&s.policies, "old", KVMGUARD_MODE_AUDIT, "");
	add_bind(&s.binds, KVMGUARD_BIND_DEFAULT, NULL, 0, "old");
	add_bind(&s.binds, KVMGUARD_BIND_CGROUP, "/m", 0, "web");
	add_bind(&s.binds, KVMGUARD_BIND_CGROUP, "/gone", 0, "old");
	add_bind(&s.binds, KVMGUARD_BIND_PID, NULL, 8, "keep");
	vm = vec_push(&s.vms);
	vm->id = 4;
	strcpy(vm->policy, "web");
	vm->bound_by = KVMGUARD_BOUND_CGROUP;	/* not explicit yet */
	vm = vec_push(&s.vms);
	vm->id = 5;
	strcpy(vm->policy, "web");
	vm->bound_by = KVMGUARD_BOUND_EXPLICIT;	/* already set */

	got = plan_text(&c, &s);
	want = "policy set web mode audit domain t1\n"
	       "policy add db mode enforce\n"
	       "bind default policy db\n"
	       "bind pid 9 policy keep\n"
	       "unbind cgroup /gone\n"
	       "unbind pid 8\n"
	       "policy del old\n"
	       "vm set 4 policy web\n";
	CHECK(!strcmp(got, want), "plan: got\n%s--- want\n%s", got, want);
	free(got);
	state_free(&s);

	/* a kernel that already matches: nothing to do */
	state_init(&s);
	add_policy(&s.policies, "web", KVMGUARD_MODE_AUDIT, "t1");
	add_policy(&s.policies, "db", KVMGUARD_MODE_ENFORCE, "");
	add_policy(&s.policies, "keep", KVMGUARD_MODE_ENFORCE, "");
	add_bind(&s.binds, KVMGUARD_BIND_PID, NULL, 9, "keep");
	add_bind(&s.binds, KVMGUARD_BIND_CGROUP, "/m", 0, "web");
	add_bind(&s.binds, KVMGUARD_BIND_DEFAULT, NULL, 0, "db");
	vm = vec_push(&s.vms);
	vm->id = 4;
	strcpy(vm->policy, "web");
	vm->bound_by = KVMGUARD_BOUND_EXPLICIT;
	vm = vec_push(&s.vms);
	vm->id = 5;
	strcpy(vm->policy, "web");
	vm->bound_by = KVMGUARD_BOUND_EXPLICIT;
	got = plan_text(&c, &s);
	CHECK(!strcmp(got, ""), "idempotent plan: %s", got);
	free(got);
	state_free(&s);
	config_free(&c);

	/* an empty file empties the kernel, bindings first */
	CHECK(!parse_file("# nothing\n", &c, &errs), "%s", errs);
	free(errs);
	state_init(&s);
	add_policy(&s.policies, "a", KVMGUARD_MODE_ENFORCE, "");
	add_bind(&s.binds, KVMGUARD_BIND_DEFAULT, NULL, 0, "a");
	got = plan_text(&c, &s);
	CHECK(!strcmp(got, "unbind default\npolicy del a\n"), "empty: %s", got);
	free(got);
	state_free(&s);
	config_free(&c);
}

static void test_dump_line(void)
{
	struct kg_policy p = { .name = "web" };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	policy_defaults(&p);
	policy_dump_line(f, &p);
	p.mode = KVMGUARD_MODE_AUDIT;
	strcpy(p.domain, "t");
	p.hc_restrict = 1;
	p.hc_allow = (1ULL << 5) | (1ULL << 10) | (1ULL << 40);
	p.hyperv = KVMGUARD_HYPERV_DENY;
	policy_dump_line(f, &p);
	p.hc_allow = 0;
	policy_dump_line(f, &p);
	fclose(f);
	CHECK(!strcmp(buf, "policy add web mode enforce\n"
		      "policy add web mode audit domain t hypercalls allow kick_cpu,send_ipi,40 hyperv deny\n"
		      "policy add web mode audit domain t hypercalls none hyperv deny\n"),
	      "dump lines:\n%s", buf);
	free(buf);
}

/* apply against kernels that do or do not report the later rules */
static void test_plan_rules(void)
{
	struct kg_config c;
	struct kg_state s;
	struct kg_policy *k;
	char *errs, *got;

	CHECK(!parse_file("policy add a mode audit\n"
			  "policy add b hypercalls allow kick_cpu\n", &c, &errs),
	      "%s", errs);
	free(errs);

	/* old kernel: reports mode only; a differs in mode, b in hypercalls */
	state_init(&s);
	k = add_policy(&s.policies, "a", KVMGUARD_MODE_ENFORCE, "");
	k->set = PF_MODE;
	k = add_policy(&s.policies, "b", KVMGUARD_MODE_ENFORCE, "");
	k->set = PF_MODE;
	got = plan_text(&c, &s);
	CHECK(!strcmp(got, "policy set a mode audit domain none\n"
		      "policy set b mode enforce domain none hypercalls allow kick_cpu\n"),
	      "old kernel plan:\n%s", got);
	free(got);
	state_free(&s);

	/* new kernel: reports every rule, so every rule is sent */
	state_init(&s);
	k = add_policy(&s.policies, "a", KVMGUARD_MODE_ENFORCE, "");
	k->set = PF_MODE | PF_HC | PF_HYPERV;
	k = add_policy(&s.policies, "b", KVMGUARD_MODE_ENFORCE, "");
	k->set = PF_MODE | PF_HC | PF_HYPERV;
	k->hc_restrict = 1;
	k->hc_allow = 1ULL << 5;
	got = plan_text(&c, &s);
	CHECK(!strcmp(got, "policy set a mode audit domain none hypercalls all hyperv allow\n"),
	      "new kernel plan:\n%s", got);
	free(got);
	state_free(&s);
	config_free(&c);
}

static void test_format(void)
{
	char b[64];

	fmt_bytes(b, sizeof(b), 0);
	CHECK(!strcmp(b, "0"), "%s", b);
	fmt_bytes(b, sizeof(b), 1023);
	CHECK(!strcmp(b, "1023"), "%s", b);
	fmt_bytes(b, sizeof(b), 4ULL << 30);
	CHECK(!strcmp(b, "4G"), "%s", b);
	fmt_bytes(b, sizeof(b), 1536ULL << 20);
	CHECK(!strcmp(b, "1.5G"), "%s", b);
	fmt_bytes(b, sizeof(b), UINT64_MAX);
	CHECK(!strcmp(b, "16.0E"), "%s", b);
	setenv("TZ", "UTC", 1);
	tzset();
	fmt_time(b, sizeof(b), 1700000000123456789ULL, false);
	CHECK(!strcmp(b, "2023-11-14T22:13:20+00:00"), "%s", b);
	fmt_time(b, sizeof(b), 1700000000123456789ULL, true);
	CHECK(!strcmp(b, "2023-11-14T22:13:20.123+00:00"), "%s", b);
	setenv("TZ", "EST5", 1);
	tzset();
	fmt_time(b, sizeof(b), 1700000000000000000ULL, false);
	CHECK(!strcmp(b, "2023-11-14T17:13:20-05:00"), "%s", b);
}

int main(int argc, char **argv)
{
	test_json_escape();
	test_json_writer();
	test_grammar();
	test_values();
	test_words();
	test_apply_files(argc > 1 ? argv[1] : "tests/apply");
	test_apply_semantics();
	test_plan();
	test_dump_line();
	test_plan_rules();
	test_format();
	printf("unit: %d checks, %d failures\n", checks, failures);
	return failures ? 1 : 0;
}
