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
bool opt_force;

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
		{ "vm set 3 policy web force", false, NULL },
		{ "vm set 3 policy web force", true, "unexpected argument 'force'" },
		{ "vm set 3 policy web force now", false, "unexpected argument 'force'" },
		{ "policy set web hypercalls none force", false, NULL },
		{ "policy del web force", false, NULL },
		{ "bind default policy web force", false, NULL },
		{ "unbind default force", false, NULL },
		{ "policy add web hypercalls none force", false,
		  "unknown policy option 'force'" },
		{ "vm set 3 web", false, "expected 'policy NAME', not 'web'" },
		{ "vm frob", false, "unknown vm subcommand 'frob'" },
		{ "vm check 3 mem add 64M", false, NULL },
		{ "vm check 3 dirty-log all", false, NULL },
		{ "vm check 3 dirty-log 0", false, NULL },
		{ "vm check 3", false, "'vm check' needs 'mem add SIZE'" },
		{ "vm check 3 mem 64M", false, "expected 'mem add SIZE'" },
		{ "vm check 3 mem add", false, "'mem add' needs a size" },
		{ "vm check 3 mem add none", false, "'mem add' needs a size, not 'none'" },
		{ "vm check 3 mem add 1Q", false, "mem add" },
		{ "vm check 3 dirty-log", false, "'dirty-log' needs a size or 'all'" },
		{ "vm check 3 dirty-log all 1", false, "unexpected argument '1'" },
		{ "vm check 3 ksm", false, "unknown check 'ksm'" },
		{ "vm check 0 dirty-log all", false, "invalid VM id '0'" },
		{ "vm check 3 dirty-log all", true, "'vm check' is not allowed in an apply file" },
		{ "policy add web", false, NULL },
		{ "policy add web domain d mode audit", false, NULL },
		{ "policy add web mode", false, "'mode' needs a value" },
		{ "policy add web mode strict", false, "invalid mode 'strict'" },
		{ "policy add web mode audit mode audit", false, "'mode' given twice" },
		{ "policy add web mem max 4G", false, NULL },
		{ "policy add web mem max none mem shared deny mem ksm deny mem dirty-log max 16M",
		  false, NULL },
		{ "policy set web mem shared domain", false, NULL },
		{ "policy set web mem dirty-log max 0", false, NULL },
		{ "policy set web mem ksm allow mem shared allow", true, NULL },
		{ "policy add web mem", false,
		  "'mem' needs more: expected mem max, mem shared, mem ksm or mem dirty-log max" },
		{ "policy add web mem limit 4G", false,
		  "unknown policy option 'mem limit': expected mem max, mem shared, mem ksm or mem dirty-log max" },
		{ "policy add web mem dirty-log 4G", false,
		  "unknown policy option 'mem dirty-log 4G': expected mem dirty-log max" },
		{ "policy add web mem dirty-log", false,
		  "'mem dirty-log' needs more: expected mem dirty-log max" },
		{ "policy add web memory max 4G", false,
		  "unknown policy option 'memory'" },
		{ "policy add web max 4G", false, "unknown policy option 'max'" },
		{ "policy add web mem max", false,
		  "'mem max' needs a value: a size such as 4G, or none" },
		{ "policy add web mem max 4G mode audit", false, NULL },
		{ "policy add web mem max mode audit", false,
		  "invalid mem max 'mode'" },
		{ "policy add web mem max -4G", false,
		  "invalid mem max '-4G': a size cannot be negative" },
		{ "policy add web mem max 4X", false,
		  "invalid mem max '4X': expected bytes with an optional K, M, G or T suffix (such as 4G), or none" },
		{ "policy add web mem max 16777216T", false,
		  "invalid mem max '16777216T': more than 2^64 - 1 bytes" },
		{ "policy add web mem dirty-log max 99999999999999999999", false,
		  "invalid mem dirty-log max '99999999999999999999': more than 2^64 - 1 bytes" },
		{ "policy add web mem dirty-log max", false,
		  "'mem dirty-log max' needs a value" },
		{ "policy add web mem max 1G mem max 2G", false,
		  "'mem max' given twice" },
		{ "policy add web mem dirty-log max 1G mem dirty-log max none",
		  false, "'mem dirty-log max' given twice" },
		{ "policy add web mem shared", false,
		  "'mem shared' needs a value: allow, deny or domain" },
		{ "policy add web mem shared tenant", false,
		  "invalid mem shared value 'tenant': expected allow, deny or domain" },
		{ "policy add web mem ksm", false,
		  "'mem ksm' needs a value: allow or deny" },
		{ "policy add web mem ksm domain", false,
		  "invalid mem ksm value 'domain': expected allow or deny" },
		{ "policy add web mem ksm deny mem ksm deny", false,
		  "'mem ksm' given twice" },
		{ "policy add web mem max \"4\nG\"", false,
		  "invalid mem max '4?G'" },
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
		{ "policy add web hypercalls none xen deny", false, NULL },
		{ "policy add web xen maybe", false,
		  "invalid xen value 'maybe'" },
		{ "policy set web xen deny xen allow", false,
		  "'xen' given twice" },
		{ "policy add web xen", false, "'xen' needs a value" },
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
		{ "policy add web net tag 100 net trunk 200-210,300 net isolate on",
		  false, NULL },
		{ "policy set web net tag none net trunk none net isolate off",
		  true, NULL },
		{ "policy add web net", false,
		  "'net' needs more: expected net tag, net trunk or net isolate" },
		{ "policy add web net vlan 5", false,
		  "unknown policy option 'net vlan': expected net tag, net trunk or net isolate" },
		{ "policy add web net tag", false,
		  "'net tag' needs a value: a VID 1 to 4094, or none" },
		{ "policy add web net tag 0", false,
		  "invalid net tag '0': VID 0 is reserved (use a VID 1 to 4094, or none)" },
		{ "policy add web net tag 4095", false,
		  "invalid net tag '4095': VID 4095 is reserved" },
		{ "policy add web net tag 4096", false,
		  "invalid net tag '4096': VID 4096 is out of range" },
		{ "policy add web net tag 1,2", false,
		  "invalid net tag '1,2': '1,2' is not a VID" },
		{ "policy add web net tag 1 net tag 2", false,
		  "'net tag' given twice" },
		{ "policy add web net trunk", false,
		  "'net trunk' needs a value: VIDs and ranges such as 100,200-210, or none" },
		{ "policy add web net trunk 100,,200", false,
		  "invalid net trunk '100,,200': an entry is empty" },
		{ "policy add web net trunk 0,100", false,
		  "invalid net trunk '0,100': VID 0 is reserved (use VIDs 1 to 4094 and ranges such as 100,200-210, or none)" },
		{ "policy add web net trunk 4000-4095", false,
		  "invalid net trunk '4000-4095': VID 4095 is reserved" },
		{ "policy add web net trunk 5000", false,
		  "invalid net trunk '5000': VID 5000 is out of range" },
		{ "policy add web net trunk 210-200", false,
		  "invalid net trunk '210-200': range 210-200 goes backwards" },
		{ "policy add web net isolate", false,
		  "'net isolate' needs a value: off or on" },
		{ "policy add web net isolate yes", false,
		  "invalid net isolate value 'yes': expected off or on" },
		{ "net bind 3 dev tap0", false, NULL },
		{ "net bind 3 dev tap0", true, "'net bind' is not allowed in an apply file (only 'net guard')" },
		{ "net show", true, "'net show' is not allowed in an apply file (only 'net guard')" },
		{ "net guard br0 on", true, NULL },
		{ "net guard br0 off", false, NULL },
		{ "net show", false, NULL },
		{ "net guard", false, "'net guard' needs a bridge name" },
		{ "net guard br0", false, "'net guard br0' needs on or off" },
		{ "net guard br0 yes", false, "expected on or off, not 'yes'" },
		{ "net guard br0 on now", false, "unexpected argument 'now'" },
		{ "net guard a/b on", false, "invalid interface name" },
		{ "net show all", false, "unexpected argument 'all'" },
		{ "net unbind dev tap0", false, NULL },
		{ "net unbind dev 012345678901234", false, NULL },
		{ "net unbind dev 0123456789012345", false,
		  "invalid interface name '0123456789012345': use 1 to 15 characters" },
		{ "net unbind dev a/b", false, "invalid interface name 'a/b'" },
		{ "net unbind dev a:1", false, "invalid interface name 'a:1'" },
		{ "net unbind dev \"a b\"", false, "invalid interface name 'a b'" },
		{ "net unbind dev \"\"", false, "invalid interface name ''" },
		{ "net unbind dev ..", false, "invalid interface name '..'" },
		{ "net unbind dev", false, "'dev' needs an interface name" },
		{ "net unbind tap0", false, "expected 'dev IFNAME' or 'ifindex N', not 'tap0'" },
		{ "net unbind", false, "missing 'dev IFNAME' or 'ifindex N'" },
		{ "net bind", false, "'net bind' needs a VM id" },
		{ "net bind 0 dev tap0", false, "invalid VM id '0'" },
		{ "net bind 3 tap0", false, "expected 'dev IFNAME' or 'ifindex N', not 'tap0'" },
		{ "net bind 3 dev tap0 now", false, "unexpected argument 'now'" },
		{ "net bind 3 ifindex 7", false, NULL },
		{ "net unbind ifindex 2147483647", false, NULL },
		{ "net unbind ifindex 0", false, "invalid interface index '0'" },
		{ "net unbind ifindex 2147483648", false, "invalid interface index '2147483648'" },
		{ "net unbind ifindex -1", false, "invalid interface index '-1'" },
		{ "net unbind ifindex 07x", false, "invalid interface index '07x'" },
		{ "net unbind ifindex", false, "'ifindex' needs an interface index" },
		{ "net bind 3 ifindex 7 8", false, "unexpected argument '8'" },
		{ "net", false, "'net' needs a subcommand: bind, unbind, guard or show" },
		{ "net list", false, "unknown net subcommand 'list': expected bind, unbind, guard or show" },
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
	CHECK(!parse_str("policy set web xen deny", &req, false, err) &&
	      req.policy.set == PF_XEN &&
	      req.policy.xen == KVMGUARD_XEN_DENY, "xen deny");
	CHECK(!parse_str("policy set web mem max 4G mem dirty-log max 0", &req,
			 false, err) &&
	      req.policy.set == (PF_MEM_MAX | PF_MEM_DIRTY_MAX) &&
	      req.policy.mem_max == 4ULL << 30 && req.policy.mem_dirty_max == 0 &&
	      req.policy.mem_shared == KVMGUARD_MEM_SHARED_ALLOW &&
	      req.policy.mem_ksm == KVMGUARD_KSM_ALLOW,
	      "mem max/dirty-log values: %s", err);
	CHECK(!parse_str("policy add web mem shared domain mem ksm deny "
			 "mem max none", &req, false, err) &&
	      req.policy.set == (PF_MEM_SHARED | PF_MEM_KSM | PF_MEM_MAX) &&
	      req.policy.mem_shared == KVMGUARD_MEM_SHARED_DOMAIN &&
	      req.policy.mem_ksm == KVMGUARD_KSM_DENY &&
	      req.policy.mem_max == KVMGUARD_MEM_UNLIMITED &&
	      req.policy.mem_dirty_max == KVMGUARD_MEM_UNLIMITED,
	      "mem shared/ksm values: %s", err);
	CHECK(!parse_str("policy add web mem shared deny", &req, false, err) &&
	      req.policy.mem_shared == KVMGUARD_MEM_SHARED_DENY,
	      "mem shared deny");
	CHECK(!parse_str("vm set 42 policy p", &req, false, err) &&
	      req.vm_id == 42 && !strcmp(req.bind_policy, "p"), "vm set");
	CHECK(!parse_str("policy set web net tag 4094 net isolate on", &req,
			 false, err) &&
	      req.policy.set == (PF_NET_TAG | PF_NET_ISOLATE) &&
	      req.policy.net_tag == 4094 && req.policy.net_isolate == 1,
	      "net tag/isolate values: %s", err);
	CHECK(!parse_str("policy set web net trunk 1,4094 net tag none", &req,
			 false, err) &&
	      req.policy.set == (PF_NET_TAG | PF_NET_TRUNK) &&
	      req.policy.net_tag == 0 && req.policy.net_trunk[0] == 2 &&
	      req.policy.net_trunk[511] == 0x40 && !req.policy.net_isolate,
	      "net trunk bitmap: %s", err);
	CHECK(!parse_str("net bind 7 dev macvtap3", &req, false, err) &&
	      req.op == OP_NET_BIND && req.vm_id == 7 &&
	      !strcmp(req.ifname, "macvtap3"), "net bind");
	CHECK(!parse_str("net bind 7 ifindex 12", &req, false, err) &&
	      req.op == OP_NET_BIND && req.vm_id == 7 && req.ifindex == 12 &&
	      !req.ifname[0], "net bind ifindex");
	CHECK(!parse_str("net unbind dev tap0", &req, false, err) &&
	      req.op == OP_NET_UNBIND && !strcmp(req.ifname, "tap0"),
	      "net unbind");
}

static void set_vids(uint8_t *bits, unsigned int first, unsigned int last)
{
	unsigned int v;

	for (v = first; v <= last; v++)
		bits[v / 8] |= 1U << (v % 8);
}

/* net tag VID and net trunk VIDLIST: what is taken, what is refused, and
 * that the text shown reads back as the same bitmap */
static void test_vids(void)
{
	static const struct {
		const char *in;
		uint16_t want;
	} good_vid[] = {
		{ "1", 1 }, { "9", 9 }, { "100", 100 }, { "4094", 4094 },
		{ "none", 0 },
	};
	static const char *const bad_vid[] = {
		"", "0", "00", "0100", "4095", "4096", "65536", "99999999999999999999",
		"-1", "+1", " 1", "1 ", "1x", "0x10", "1,2", "1-2", "None", "1.0",
	};
	static const struct {
		const char *in, *text;	/* text: fmt_vidlist() of it */
		unsigned int first, last, n;	/* lowest, highest, count */
	} good_list[] = {
		{ "none", "none", 0, 0, 0 },
		{ "100", "100", 100, 100, 1 },
		{ "100,200-210", "100,200-210", 100, 210, 12 },
		{ "200-210,100", "100,200-210", 100, 210, 12 },
		{ "1-4094", "1-4094", 1, 4094, 4094 },
		{ "1,2,3", "1-3", 1, 3, 3 },
		{ "5,7", "5,7", 5, 7, 2 },
		{ "7-7", "7", 7, 7, 1 },
		{ "4094,1", "1,4094", 1, 4094, 2 },
		{ "10-19,20-29", "10-29", 10, 29, 20 },
		{ "1-9,11-4094", "1-9,11-4094", 1, 4094, 4093 },
	};
	static const struct {
		const char *in, *err;
	} bad_list[] = {
		{ "", "invalid t '': an entry is empty" },
		{ ",", "an entry is empty" },
		{ "100,", "invalid t '100,': an entry is empty" },
		{ ",100", "an entry is empty" },
		{ "100,,200", "an entry is empty" },
		{ "0", "VID 0 is reserved" },
		{ "0-10", "VID 0 is reserved" },
		{ "4095", "VID 4095 is reserved" },
		{ "4000-4095", "VID 4095 is reserved" },
		{ "4096", "VID 4096 is out of range" },
		{ "1-5000", "VID 5000 is out of range" },
		{ "99999999999999999999", "VID 99999999999999999999 is out of range" },
		{ "10-5", "range 10-5 goes backwards" },
		{ "100,100", "VID 100 is listed twice" },
		{ "100-110,105", "VID 105 is listed twice" },
		{ "1-10,10-20", "VID 10 is listed twice" },
		{ "-5", "a VID is missing" },
		{ "5-", "a VID is missing" },
		{ "1-2-3", "'2-3' is not a VID" },
		{ "1 ,2", "'1 ' is not a VID" },
		{ "1, 2", "' 2' is not a VID" },
		{ "+1", "'+1' is not a VID" },
		{ "0x10", "'0x10' is not a VID" },
		{ "010", "VID '010' has a leading zero" },
		{ "1;2", "'1;2' is not a VID" },
		{ "all", "'all' is not a VID" },
		{ "None", "'None' is not a VID" },
		{ "none,1", "'none' is not a VID" },
		{ "100..200", "'100..200' is not a VID" },
	};
	uint8_t bits[KVMGUARD_NET_TRUNK_BYTES], back[KVMGUARD_NET_TRUNK_BYTES];
	char err[ERRMSG_MAX], *b = malloc(KG_VIDLIST_TEXT);
	unsigned int v, n, pat, seed = 1;
	uint16_t vid;
	size_t i;
	int len, longest = 0;

	for (i = 0; i < ARRAY_SIZE(good_vid); i++) {
		vid = 77;
		err[0] = '\0';
		CHECK(!parse_vid("t", good_vid[i].in, &vid, err, sizeof(err)) &&
		      vid == good_vid[i].want, "vid '%s': %u %s", good_vid[i].in,
		      vid, err);
	}
	for (i = 0; i < ARRAY_SIZE(bad_vid); i++) {
		vid = 77;
		CHECK(parse_vid("t", bad_vid[i], &vid, err, sizeof(err)) < 0 &&
		      vid == 77 && !strncmp(err, "invalid t '", 11),
		      "vid '%s' accepted (%u) or bad message '%s'", bad_vid[i],
		      vid, err);
	}
	for (i = 0; i < ARRAY_SIZE(good_list); i++) {
		unsigned int lo = 0, hi = 0;

		memset(bits, 0xa5, sizeof(bits));
		err[0] = '\0';
		CHECK(!parse_vidlist("t", good_list[i].in, bits, err,
				     sizeof(err)), "list '%s': %s",
		      good_list[i].in, err);
		for (v = 0, n = 0; v < 4096; v++) {
			if (!vid_isset(bits, v))
				continue;
			if (!n++)
				lo = v;
			hi = v;
		}
		CHECK(n == good_list[i].n && lo == good_list[i].first &&
		      hi == good_list[i].last, "list '%s': %u VIDs %u..%u",
		      good_list[i].in, n, lo, hi);
		len = fmt_vidlist(b, KG_VIDLIST_TEXT, bits);
		CHECK(!strcmp(b, good_list[i].text) && len == (int)strlen(b),
		      "list '%s' shows as '%s' (%d)", good_list[i].in, b, len);
	}
	for (i = 0; i < ARRAY_SIZE(bad_list); i++) {
		memset(bits, 0xa5, sizeof(bits));
		err[0] = '\0';
		CHECK(parse_vidlist("t", bad_list[i].in, bits, err, sizeof(err)) < 0 &&
		      strstr(err, bad_list[i].err) && bits[0] == 0xa5 &&
		      bits[511] == 0xa5,
		      "list '%s': got '%s', want '%s'", bad_list[i].in, err,
		      bad_list[i].err);
	}
	CHECK(!parse_vidlist("t", "1-4094", bits, err, sizeof(err)) &&
	      bits[0] == 0xfe && bits[1] == 0xff && bits[511] == 0x7f,
	      "bit order: %02x %02x %02x", bits[0], bits[1], bits[511]);

	/* round trip, and the text always fits KG_VIDLIST_TEXT: patterns of
	 * every period up to 5 (the longest texts) and random bitmaps */
	for (pat = 0; pat < 64 + 200; pat++) {
		memset(bits, 0, sizeof(bits));
		for (v = 1; v <= KVMGUARD_NET_VID_MAX; v++) {
			if (pat < 64) {
				unsigned int period = 2 + pat % 4;

				if ((1U << ((v + pat / 4) % period)) & (pat / 4 + 1))
					bits[v / 8] |= 1U << (v % 8);
			} else {
				seed = seed * 1103515245 + 12345;
				if ((seed >> 16) % (pat % 7 + 2) == 0)
					bits[v / 8] |= 1U << (v % 8);
			}
		}
		len = fmt_vidlist(b, KG_VIDLIST_TEXT, bits);
		if (len > longest)
			longest = len;
		CHECK(len < KG_VIDLIST_TEXT && len == (int)strlen(b),
		      "pattern %u: %d bytes", pat, len);
		memset(back, 0xa5, sizeof(back));
		CHECK(!parse_vidlist("t", b, back, err, sizeof(err)) &&
		      !memcmp(bits, back, sizeof(bits)),
		      "pattern %u does not read back: %s", pat, err);
	}
	/* the worst case: pairs "a-b" with one VID between them */
	memset(bits, 0, sizeof(bits));
	for (v = 1; v + 1 <= KVMGUARD_NET_VID_MAX; v += 3)
		set_vids(bits, v, v + 1);
	len = fmt_vidlist(b, KG_VIDLIST_TEXT, bits);
	CHECK(len < KG_VIDLIST_TEXT && len >= longest,
	      "worst case %d bytes, a pattern had %d", len, longest);
	/* a short buffer truncates but reports the whole length */
	len = fmt_vidlist(err, 8, bits);
	CHECK(len > 8 && strlen(err) == 7, "truncated: %d '%s'", len, err);
	free(b);
}

static void test_sizes(void)
{
	static const struct {
		const char *in;
		uint64_t want;
	} good[] = {
		{ "0", 0 },
		{ "0G", 0 },
		{ "1", 1 },
		{ "4097", 4097 },
		{ "1K", 1024 },
		{ "1KiB", 1024 },
		{ "512M", 512ULL << 20 },
		{ "512MiB", 512ULL << 20 },
		{ "4G", 4ULL << 30 },
		{ "4GiB", 4ULL << 30 },
		{ "007G", 7ULL << 30 },
		{ "2T", 2ULL << 40 },
		{ "2TiB", 2ULL << 40 },
		{ "16777215T", 16777215ULL << 40 },
		{ "18446744073709551614", UINT64_MAX - 1 },
		/* the largest number is the ABI's "no limit" */
		{ "18446744073709551615", KVMGUARD_MEM_UNLIMITED },
		{ "none", KVMGUARD_MEM_UNLIMITED },
	};
	static const struct {
		const char *in, *err;
	} bad[] = {
		{ "", "invalid w '': expected bytes" },
		{ "-1", "invalid w '-1': a size cannot be negative" },
		{ "-0", "cannot be negative" },
		{ "+1", "invalid w '+1': expected bytes" },
		{ " 1", "expected bytes" },
		{ "1 ", "expected bytes" },
		{ "G", "invalid w 'G': expected bytes" },
		{ "4g", "invalid w '4g': expected bytes" },
		{ "4KB", "expected bytes" },
		{ "4kB", "expected bytes" },
		{ "4Gi", "expected bytes" },
		{ "4P", "invalid w '4P': expected bytes" },
		{ "1.5G", "expected bytes" },
		{ "0x10", "expected bytes" },
		{ "1e9", "expected bytes" },
		{ "4G4", "expected bytes" },
		{ "unlimited", "invalid w 'unlimited': expected bytes with an optional K, M, G or T suffix (such as 4G), or none" },
		{ "None", "expected bytes" },
		{ "18446744073709551616", "more than 2^64 - 1 bytes" },
		{ "99999999999999999999999", "more than 2^64 - 1 bytes" },
		{ "16777216T", "invalid w '16777216T': more than 2^64 - 1 bytes" },
		{ "17179869184G", "more than 2^64 - 1 bytes" },
		{ "17592186044416M", "more than 2^64 - 1 bytes" },
		{ "18014398509481984K", "more than 2^64 - 1 bytes" },
	};
	static const uint64_t round[] = {
		0, 1, 1023, 1024, 1025, 4096, 1536ULL << 20, 4ULL << 30,
		(4ULL << 30) + 1, 3ULL << 40, 16777215ULL << 40,
		UINT64_MAX - 1, KVMGUARD_MEM_UNLIMITED, 1ULL << 63,
	};
	char err[ERRMSG_MAX], b[32];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(good); i++) {
		uint64_t v = 12345;

		err[0] = '\0';
		CHECK(!parse_mem_size("w", good[i].in, &v, err, sizeof(err)) &&
		      v == good[i].want, "size '%s': %llu %s", good[i].in,
		      (unsigned long long)v, err);
	}
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		uint64_t v = 12345;

		err[0] = '\0';
		CHECK(parse_mem_size("w", bad[i].in, &v, err, sizeof(err)) < 0 &&
		      strstr(err, bad[i].err) && v == 12345,
		      "size '%s': got '%s', want '%s'", bad[i].in, err,
		      bad[i].err);
	}
	/* what show and dump print reads back as the same number */
	for (i = 0; i < ARRAY_SIZE(round); i++) {
		uint64_t v = 12345;

		fmt_size(b, sizeof(b), round[i]);
		CHECK(!parse_mem_size("w", b, &v, err, sizeof(err)) &&
		      v == round[i], "round trip %llu -> '%s' -> %llu",
		      (unsigned long long)round[i], b, (unsigned long long)v);
	}
	fmt_size(b, sizeof(b), 0);
	CHECK(!strcmp(b, "0"), "%s", b);
	fmt_size(b, sizeof(b), 4ULL << 30);
	CHECK(!strcmp(b, "4G"), "%s", b);
	fmt_size(b, sizeof(b), 1536ULL << 20);
	CHECK(!strcmp(b, "1536M"), "%s", b);
	fmt_size(b, sizeof(b), 4097);
	CHECK(!strcmp(b, "4097"), "%s", b);
	fmt_size(b, sizeof(b), 1ULL << 50);
	CHECK(!strcmp(b, "1024T"), "%s", b);
	fmt_size(b, sizeof(b), KVMGUARD_MEM_UNLIMITED);
	CHECK(!strcmp(b, "none"), "%s", b);
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

	/* as policy_from_attrs() does: what the kernel omits is at default */
	policy_defaults(p);
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
	       /* pid 8 is not the file's: runtime state, kept */
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
	p.mem_max = 4ULL << 30;
	p.mem_shared = KVMGUARD_MEM_SHARED_DOMAIN;
	p.mem_ksm = KVMGUARD_KSM_DENY;
	p.mem_dirty_max = 0;
	policy_dump_line(f, &p);
	policy_defaults(&p);
	p.mem_max = 0;
	p.mem_dirty_max = (16ULL << 20) + 4096;
	p.mem_shared = KVMGUARD_MEM_SHARED_DENY;
	policy_dump_line(f, &p);
	policy_defaults(&p);
	p.net_tag = 100;
	set_vids(p.net_trunk, 200, 210);
	set_vids(p.net_trunk, 4094, 4094);
	p.net_isolate = 1;
	policy_dump_line(f, &p);
	p.net_tag = 0;
	policy_dump_line(f, &p);
	fclose(f);
	CHECK(!strcmp(buf, "policy add web mode enforce\n"
		      "policy add web mode audit domain t hypercalls allow kick_cpu,send_ipi,40 hyperv deny\n"
		      "policy add web mode audit domain t hypercalls none hyperv deny\n"
		      "policy add web mode audit domain t hypercalls none hyperv deny mem max 4G mem shared domain mem ksm deny mem dirty-log max 0\n"
		      "policy add web mode enforce mem max 0 mem shared deny mem dirty-log max 16388K\n"
		      "policy add web mode enforce net tag 100 net trunk 200-210,4094 net isolate on\n"
		      "policy add web mode enforce net trunk 200-210,4094 net isolate on\n"),
	      "dump lines:\n%s", buf);
	free(buf);
}

/* A dump line parses back (apply grammar) to the policy it came from. */
static void test_dump_roundtrip(void)
{
	static const uint64_t sizes[] = {
		0, 1, 4097, 1ULL << 20, 3ULL << 30, (5ULL << 40) + 1024,
		UINT64_MAX - 1, KVMGUARD_MEM_UNLIMITED,
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sizes) * 3; i++) {
		struct kg_policy p = { .name = "rt" };
		struct kg_config c;
		char *buf = NULL, *errs;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);

		policy_defaults(&p);
		p.mem_max = sizes[i % ARRAY_SIZE(sizes)];
		p.mem_dirty_max = sizes[(i + 3) % ARRAY_SIZE(sizes)];
		p.mem_shared = i % 3;
		p.mem_ksm = i % 2;
		p.net_tag = (uint16_t)(i * 577 % 4095);
		if (i % 4)
			set_vids(p.net_trunk, i * 13 + 1, i * 13 + i % 5 + 1);
		if (i % 5 == 1)
			set_vids(p.net_trunk, 4000, 4094);
		p.net_isolate = i % 2;
		policy_dump_line(f, &p);
		fclose(f);
		CHECK(!parse_file(buf, &c, &errs) && c.policies.n == 1 &&
		      policy_equal(&p, VEC_AT(&c.policies, struct kg_policy, 0)),
		      "dump line does not read back: %s%s", buf, errs);
		config_free(&c);
		free(errs);
		free(buf);
	}
}

/* A cgroup path of KVMGUARD_CGROUP_MAX bytes, components of 200 bytes. */
static char *longest_cgroup(const char *pattern)
{
	char *p = xmalloc(KVMGUARD_CGROUP_MAX + 1);
	size_t len = 0, plen = strlen(pattern), k = 0;

	while (len < KVMGUARD_CGROUP_MAX) {
		size_t seg = KVMGUARD_CGROUP_MAX - len - 1, i;

		if (seg > 200)
			seg = 200;
		p[len++] = '/';
		for (i = 0; i < seg; i++)
			p[len++] = pattern[k++ % plen];
	}
	p[len] = '\0';
	return p;
}

/*
 * The bindings apply -v prints and dump writes read back whole, however
 * long the quoted path (a control character is four bytes: \x01).
 */
static void test_long_cgroup_lines(void)
{
	static const char *const patterns[] = { "a", "b\x01", " \"\\\t\x7f" };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(patterns); i++) {
		char *path = longest_cgroup(patterns[i]), *buf = NULL, *errs;
		struct kg_selector sel = { .type = KVMGUARD_BIND_CGROUP,
					   .cgroup = path };
		struct kg_action a = { .type = ACT_BIND_NEW, .name = "p",
				       .sel = &sel };
		struct kg_config c;
		struct kg_request req;
		char err[ERRMSG_MAX], **w = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		int n;

		CHECK(strlen(path) == KVMGUARD_CGROUP_MAX, "path length");
		fputs("policy add p\n", f);
		action_print(f, &a);
		fclose(f);
		CHECK(!parse_file(buf, &c, &errs) && c.binds.n == 1 &&
		      !strcmp(VEC_AT(&c.binds, struct kg_bind, 0)->sel.cgroup, path),
		      "bind line of pattern %zu does not read back (%zu bytes): %s",
		      i, len, errs);
		config_free(&c);
		free(errs);
		free(buf);

		buf = NULL;
		f = open_memstream(&buf, &len);
		a.type = ACT_BIND_DEL;
		action_print(f, &a);
		fclose(f);
		n = split_words(buf, &w, err, sizeof(err));
		CHECK(n == 3 && !parse_command(n, w, &req, false, err, sizeof(err)) &&
		      req.op == OP_UNBIND && req.sel.cgroup &&
		      !strcmp(req.sel.cgroup, path),
		      "unbind line of pattern %zu does not read back: %s", i,
		      n < 0 ? err : "");
		if (n == 3)
			kg_request_free(&req);
		if (n >= 0)
			free_words(w, n);
		free(buf);
		free(path);
	}
}

/* apply against kernels that do or do not report the later rules */
static void test_plan_rules(void)
{
	const unsigned int all = PF_MODE | PF_HC | PF_HYPERV | PF_MEM_MAX |
		PF_MEM_SHARED | PF_MEM_KSM | PF_MEM_DIRTY_MAX;
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

	/* memory rules: sent when they differ or the kernel reports them */
	CHECK(!parse_file("policy add a mem max 4G\n"
			  "policy add b mode audit\n"
			  "policy add n mem ksm deny mem dirty-log max 16M\n",
			  &c, &errs), "%s", errs);
	free(errs);
	state_init(&s);
	/* a kernel without them: only a's limit differs */
	k = add_policy(&s.policies, "a", KVMGUARD_MODE_ENFORCE, "");
	k->set = PF_MODE | PF_HC | PF_HYPERV;
	k = add_policy(&s.policies, "b", KVMGUARD_MODE_ENFORCE, "");
	k->set = PF_MODE | PF_HC | PF_HYPERV;
	got = plan_text(&c, &s);
	CHECK(!strcmp(got, "policy set a mode enforce domain none hypercalls all hyperv allow mem max 4G\n"
		      "policy set b mode audit domain none hypercalls all hyperv allow\n"
		      "policy add n mode enforce mem ksm deny mem dirty-log max 16M\n"),
	      "mem rules, old kernel plan:\n%s", got);
	free(got);
	state_free(&s);
	/* a kernel with them: every rule, and a kernel that matches: none */
	state_init(&s);
	k = add_policy(&s.policies, "a", KVMGUARD_MODE_ENFORCE, "");
	k->set = all;
	k->mem_max = 4ULL << 30;
	k->mem_shared = KVMGUARD_MEM_SHARED_DENY;
	k = add_policy(&s.policies, "b", KVMGUARD_MODE_AUDIT, "");
	k->set = all;
	k = add_policy(&s.policies, "n", KVMGUARD_MODE_ENFORCE, "");
	k->set = all;
	k->mem_ksm = KVMGUARD_KSM_DENY;
	k->mem_dirty_max = 16ULL << 20;
	got = plan_text(&c, &s);
	CHECK(!strcmp(got, "policy set a mode enforce domain none hypercalls all hyperv allow mem max 4G mem shared allow mem ksm allow mem dirty-log max none\n"),
	      "mem rules, new kernel plan:\n%s", got);
	free(got);
	state_free(&s);
	config_free(&c);

	/* network rules: the same, on kernels without and with them */
	CHECK(!parse_file("policy add a net tag 100\n"
			  "policy add b mode audit\n"
			  "policy add c net trunk 5-7 net isolate on\n",
			  &c, &errs), "%s", errs);
	free(errs);
	state_init(&s);
	k = add_policy(&s.policies, "a", KVMGUARD_MODE_ENFORCE, "");
	k->set = all;
	k = add_policy(&s.policies, "b", KVMGUARD_MODE_ENFORCE, "");
	k->set = all;
	k = add_policy(&s.policies, "c", KVMGUARD_MODE_ENFORCE, "");
	k->set = all;
	got = plan_text(&c, &s);
	CHECK(!strcmp(got, "policy set a mode enforce domain none hypercalls all hyperv allow mem max none mem shared allow mem ksm allow mem dirty-log max none net tag 100\n"
		      "policy set b mode audit domain none hypercalls all hyperv allow mem max none mem shared allow mem ksm allow mem dirty-log max none\n"
		      "policy set c mode enforce domain none hypercalls all hyperv allow mem max none mem shared allow mem ksm allow mem dirty-log max none net trunk 5-7 net isolate on\n"),
	      "net rules, old kernel plan:\n%s", got);
	free(got);
	state_free(&s);
	state_init(&s);
	k = add_policy(&s.policies, "a", KVMGUARD_MODE_ENFORCE, "");
	k->set = all | PF_NET_TAG | PF_NET_TRUNK | PF_NET_ISOLATE;
	k->net_tag = 100;
	k = add_policy(&s.policies, "b", KVMGUARD_MODE_ENFORCE, "");
	k->set = all | PF_NET_TAG | PF_NET_TRUNK | PF_NET_ISOLATE;
	k->net_tag = 5;
	set_vids(k->net_trunk, 1, 4094);
	k = add_policy(&s.policies, "c", KVMGUARD_MODE_ENFORCE, "");
	k->set = all | PF_NET_TAG | PF_NET_TRUNK | PF_NET_ISOLATE;
	set_vids(k->net_trunk, 5, 7);
	k->net_isolate = 1;
	got = plan_text(&c, &s);
	CHECK(!strcmp(got, "policy set b mode audit domain none hypercalls all hyperv allow mem max none mem shared allow mem ksm allow mem dirty-log max none net tag none net trunk none net isolate off\n"),
	      "net rules, new kernel plan:\n%s", got);
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
	test_sizes();
	test_vids();
	test_words();
	test_apply_files(argc > 1 ? argv[1] : "tests/apply");
	test_apply_semantics();
	test_plan();
	test_dump_line();
	test_dump_roundtrip();
	test_long_cgroup_lines();
	test_plan_rules();
	test_format();
	printf("unit: %d checks, %d failures\n", checks, failures);
	return failures ? 1 : 0;
}
