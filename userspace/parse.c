// SPDX-License-Identifier: GPL-2.0
/*
 * kvmguard(8): the command grammar, used for the command line and for the
 * lines of apply files, and the local validation of names, paths and ids.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/attr.h>
#include <netlink/msg.h>

#include "kg.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Quote user input in messages without letting it mangle the terminal. */
static const char *q(const char *s, char *buf, size_t len)
{
	fmt_safe(buf, len, s);
	return buf;
}

bool valid_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n < 1 || n > KVMGUARD_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (!isascii(c) || !(isalnum(c) || c == '.' || c == '_' ||
				     c == '-'))
			return false;
	}
	return true;
}

int parse_name(const char *what, const char *s, char *dst, char *err,
	       size_t errlen)
{
	char b[64];

	if (!valid_name(s))
		return fail(err, errlen,
			    "invalid %s name '%s': use 1 to %d characters of A-Z a-z 0-9 . _ -",
			    what, q(s, b, sizeof(b)), KVMGUARD_NAME_MAX);
	strcpy(dst, s);
	return 0;
}

/*
 * An absolute path without "." or ".." components; repeated and trailing
 * slashes are dropped (the kernel ignores a trailing one), so that the path
 * compares equal to what the kernel reports.
 */
int parse_cgroup(const char *s, char **dst, char *err, size_t errlen)
{
	char b[64];
	size_t n = strlen(s), i = 0, o = 0;
	char *p;

	if (s[0] != '/')
		return fail(err, errlen,
			    "invalid cgroup path '%s': it must be absolute (start with '/')",
			    q(s, b, sizeof(b)));
	p = xmalloc(n + 1);
	while (i < n) {
		size_t len;

		while (s[i] == '/')
			i++;
		if (!s[i])
			break;
		len = strcspn(s + i, "/");
		if ((len == 1 && s[i] == '.') ||
		    (len == 2 && s[i] == '.' && s[i + 1] == '.')) {
			free(p);
			return fail(err, errlen,
				    "invalid cgroup path '%s': '.' and '..' components are not allowed",
				    q(s, b, sizeof(b)));
		}
		p[o++] = '/';
		memcpy(p + o, s + i, len);
		o += len;
		i += len;
	}
	if (!o)
		p[o++] = '/';
	p[o] = '\0';
	if (o > KVMGUARD_CGROUP_MAX) {
		free(p);
		return fail(err, errlen,
			    "invalid cgroup path: longer than %d bytes",
			    KVMGUARD_CGROUP_MAX);
	}
	*dst = p;
	return 0;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v == 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

int parse_pid(const char *s, uint32_t *pid, char *err, size_t errlen)
{
	char b[64];
	uint64_t v;

	if (parse_u64(s, INT32_MAX, &v))
		return fail(err, errlen,
			    "invalid pid '%s': expected a positive integer",
			    q(s, b, sizeof(b)));
	*pid = (uint32_t)v;
	return 0;
}

int parse_vm_id(const char *s, uint64_t *id, char *err, size_t errlen)
{
	char b[64];

	if (parse_u64(s, UINT64_MAX, id))
		return fail(err, errlen,
			    "invalid VM id '%s': expected a positive integer",
			    q(s, b, sizeof(b)));
	return 0;
}

/*
 * SIZE|none of the memory rules: decimal bytes, optionally followed by a
 * binary unit (K = 1024 bytes ... T = 2^40); KiB, MiB, GiB and TiB are the
 * same units spelled out. No sign, spaces, fractions or decimal (kB) units.
 */
static const struct {
	const char *suffix;
	unsigned int shift;
} size_units[] = {
	{ "", 0 },
	{ "K", 10 }, { "KiB", 10 },
	{ "M", 20 }, { "MiB", 20 },
	{ "G", 30 }, { "GiB", 30 },
	{ "T", 40 }, { "TiB", 40 },
};

int parse_mem_size(const char *what, const char *s, uint64_t *out, char *err,
		   size_t errlen)
{
	char b[64];
	unsigned long long v;
	size_t i;
	char *end;

	if (!strcmp(s, "none")) {
		*out = KVMGUARD_MEM_UNLIMITED;
		return 0;
	}
	if (s[0] == '-')
		return fail(err, errlen,
			    "invalid %s '%s': a size cannot be negative",
			    what, q(s, b, sizeof(b)));
	if (!isdigit((unsigned char)s[0]))
		goto bad;
	errno = 0;
	v = strtoull(s, &end, 10);
	for (i = 0; i < ARRAY_SIZE(size_units); i++)
		if (!strcmp(end, size_units[i].suffix))
			break;
	if (i == ARRAY_SIZE(size_units))
		goto bad;
	if (errno == ERANGE || v > UINT64_MAX >> size_units[i].shift)
		return fail(err, errlen,
			    "invalid %s '%s': more than 2^64 - 1 bytes",
			    what, q(s, b, sizeof(b)));
	*out = (uint64_t)v << size_units[i].shift;
	return 0;
bad:
	return fail(err, errlen,
		    "invalid %s '%s': expected bytes with an optional K, M, G or T suffix (such as 4G), or none",
		    what, q(s, b, sizeof(b)));
}

/*
 * A network interface name as dev_valid_name() takes it: 1 to 15 bytes, not
 * "." or "..", without '/', ':' or blanks.
 */
int parse_ifname(const char *s, char *dst, char *err, size_t errlen)
{
	char b[64];
	size_t n = strlen(s), i;

	for (i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == ':' || isspace((unsigned char)s[i]))
			break;
	if (n < 1 || n >= KG_IFNAMSIZ || i < n || !strcmp(s, ".") ||
	    !strcmp(s, ".."))
		return fail(err, errlen,
			    "invalid interface name '%s': use 1 to %d characters without '/', ':' or blanks",
			    q(s, b, sizeof(b)), KG_IFNAMSIZ - 1);
	strcpy(dst, s);
	return 0;
}

/*
 * One VID of net tag or net trunk: plain decimal (no sign, blank or leading
 * zero), 1..KVMGUARD_NET_VID_MAX. On error says why in why[].
 */
static int vid_word(const char *s, size_t len, unsigned int *vid, char *why,
		    size_t whylen)
{
	unsigned int v = 0;
	char b[64];
	size_t i;

	snprintf(b, sizeof(b), "%.*s", (int)len, s);
	fmt_safe(b, sizeof(b), b);
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i])) {
			snprintf(why, whylen, "'%s' is not a VID", b);
			return -1;
		}
		if (v <= KVMGUARD_NET_VID_MAX + 1)
			v = v * 10 + (unsigned int)(s[i] - '0');
	}
	if (!len) {
		snprintf(why, whylen, "a VID is missing");
		return -1;
	}
	if (s[0] == '0' && len > 1) {
		snprintf(why, whylen, "VID '%s' has a leading zero", b);
		return -1;
	}
	if (v == 0 || v == KVMGUARD_NET_VID_MAX + 1) {
		snprintf(why, whylen, "VID %u is reserved", v);
		return -1;
	}
	if (v > KVMGUARD_NET_VID_MAX) {
		snprintf(why, whylen, "VID %s is out of range", b);
		return -1;
	}
	*vid = v;
	return 0;
}

int parse_vid(const char *what, const char *s, uint16_t *out, char *err,
	      size_t errlen)
{
	char b[64], why[96];
	unsigned int v;

	if (!strcmp(s, "none")) {
		*out = 0;
		return 0;
	}
	if (vid_word(s, strlen(s), &v, why, sizeof(why)))
		return fail(err, errlen,
			    "invalid %s '%s': %s (use a VID 1 to %d, or none)",
			    what, q(s, b, sizeof(b)), why, KVMGUARD_NET_VID_MAX);
	*out = (uint16_t)v;
	return 0;
}

int parse_vidlist(const char *what, const char *s, uint8_t *bits, char *err,
		  size_t errlen)
{
	uint8_t set[KVMGUARD_NET_TRUNK_BYTES] = { 0 };
	const char *tok = s;
	char b[128], why[96];

	if (!strcmp(s, "none")) {
		memset(bits, 0, KVMGUARD_NET_TRUNK_BYTES);
		return 0;
	}
	for (;;) {
		size_t len = strcspn(tok, ","), alen;
		const char *dash = memchr(tok, '-', len);
		unsigned int first, last, v;

		if (!len)
			return fail(err, errlen,
				    "invalid %s '%s': an entry is empty (separate VIDs and ranges with single commas)",
				    what, q(s, b, sizeof(b)));
		alen = dash ? (size_t)(dash - tok) : len;
		if (vid_word(tok, alen, &first, why, sizeof(why)))
			goto bad;
		last = first;
		if (dash) {
			if (vid_word(dash + 1, len - alen - 1, &last, why,
				     sizeof(why)))
				goto bad;
			if (last < first) {
				snprintf(why, sizeof(why),
					 "range %u-%u goes backwards", first,
					 last);
				goto bad;
			}
		}
		for (v = first; v <= last; v++) {
			if (vid_isset(set, v)) {
				snprintf(why, sizeof(why),
					 "VID %u is listed twice", v);
				goto bad;
			}
			set[v / 8] |= 1U << (v % 8);
		}
		if (!tok[len])
			break;
		tok += len + 1;
	}
	memcpy(bits, set, sizeof(set));
	return 0;
bad:
	return fail(err, errlen,
		    "invalid %s '%s': %s (use VIDs 1 to %d and ranges such as 100,200-210, or none)",
		    what, q(s, b, sizeof(b)), why, KVMGUARD_NET_VID_MAX);
}

int fmt_vidlist(char *buf, size_t len, const uint8_t *bits)
{
	unsigned int v, first, n = KVMGUARD_NET_TRUNK_BYTES * 8;
	size_t o = 0;

	if (len)
		buf[0] = '\0';
	for (v = 0; v < n; v++) {
		if (!vid_isset(bits, v))
			continue;
		first = v;
		while (v + 1 < n && vid_isset(bits, v + 1))
			v++;
		if (first == v)
			o += snprintf(o < len ? buf + o : NULL,
				      o < len ? len - o : 0, "%s%u",
				      o ? "," : "", v);
		else
			o += snprintf(o < len ? buf + o : NULL,
				      o < len ? len - o : 0, "%s%u-%u",
				      o ? "," : "", first, v);
	}
	if (!o)
		return snprintf(buf, len, "none");
	return (int)o;
}

/* ---- policy options: one table entry per option ---- */

/*
 * A value that is one of names[] (n of them, the index is the value).
 * Messages: "'OPT' needs a value: a, b or c", "invalid WHAT 'x': expected
 * a, b or c".
 */
static int parse_choice(const char *opt, const char *what, int argc,
			char **argv, const char *const *names, size_t n,
			uint8_t *out, char *err, size_t errlen)
{
	char b[64], list[128] = "";
	size_t i, o = 0;

	for (i = 0; i < n && o < sizeof(list); i++)
		o += snprintf(list + o, sizeof(list) - o, "%s%s",
			      !i ? "" : i == n - 1 ? " or " : ", ", names[i]);
	if (argc < 1)
		return fail(err, errlen, "'%s' needs a value: %s", opt, list);
	for (i = 0; i < n; i++) {
		if (!strcmp(argv[0], names[i])) {
			*out = (uint8_t)i;
			return 1;
		}
	}
	return fail(err, errlen, "invalid %s '%s': expected %s", what,
		    q(argv[0], b, sizeof(b)), list);
}

static const char *const mode_names[] = {
	[KVMGUARD_MODE_ENFORCE] = "enforce",
	[KVMGUARD_MODE_AUDIT] = "audit",
};

static const char *const hyperv_names[] = {
	[KVMGUARD_HYPERV_ALLOW] = "allow",
	[KVMGUARD_HYPERV_DENY] = "deny",
};

static const char *const xen_names[] = {
	[KVMGUARD_XEN_ALLOW] = "allow",
	[KVMGUARD_XEN_DENY] = "deny",
};

static const char *const mem_shared_names[] = {
	[KVMGUARD_MEM_SHARED_ALLOW] = "allow",
	[KVMGUARD_MEM_SHARED_DENY] = "deny",
	[KVMGUARD_MEM_SHARED_DOMAIN] = "domain",
};

static const char *const ksm_names[] = {
	[KVMGUARD_KSM_ALLOW] = "allow",
	[KVMGUARD_KSM_DENY] = "deny",
};

static const char *const isolate_names[] = { "off", "on" };

static int opt_mode_parse(struct kg_policy *p, int argc, char **argv,
			  char *err, size_t errlen)
{
	return parse_choice("mode", "mode", argc, argv, mode_names,
			    ARRAY_SIZE(mode_names), &p->mode, err, errlen);
}

static int opt_mode_put(struct nl_msg *msg, const struct kg_policy *p)
{
	return nla_put_u8(msg, KVMGUARD_A_POLICY_MODE, p->mode);
}

static void opt_mode_get(struct kg_policy *p, struct nlattr **tb)
{
	p->mode = nla_get_u8(tb[KVMGUARD_A_POLICY_MODE]);
}

static bool opt_mode_equal(const struct kg_policy *a, const struct kg_policy *b)
{
	return a->mode == b->mode;
}

static void opt_mode_print(FILE *f, const struct kg_policy *p)
{
	fprintf(f, " mode %s", mode_name(p->mode));
}

static int opt_domain_parse(struct kg_policy *p, int argc, char **argv,
			    char *err, size_t errlen)
{
	if (argc < 1)
		return fail(err, errlen, "'domain' needs a value: a name or none");
	if (!strcmp(argv[0], "none")) {
		p->domain[0] = '\0';
		return 1;
	}
	if (parse_name("domain", argv[0], p->domain, err, errlen))
		return -1;
	return 1;
}

static int opt_domain_put(struct nl_msg *msg, const struct kg_policy *p)
{
	/* an empty string clears the domain */
	return nla_put_string(msg, KVMGUARD_A_POLICY_DOMAIN, p->domain);
}

static void opt_domain_get(struct kg_policy *p, struct nlattr **tb)
{
	struct nlattr *a = tb[KVMGUARD_A_POLICY_DOMAIN];
	size_t len = strnlen(nla_data(a), nla_len(a));

	if (len > KVMGUARD_NAME_MAX)
		len = KVMGUARD_NAME_MAX;
	memcpy(p->domain, nla_data(a), len);
	p->domain[len] = '\0';
}

static bool opt_domain_equal(const struct kg_policy *a,
			     const struct kg_policy *b)
{
	return !strcmp(a->domain, b->domain);
}

static void opt_domain_print(FILE *f, const struct kg_policy *p)
{
	fprintf(f, " domain %s", p->domain[0] ? p->domain : "none");
}

/* KVM_HC_* of <linux/kvm_para.h> that x86 guests use */
static const struct {
	const char *name;
	unsigned int nr;
} hc_names[] = {
	{ "vapic_poll_irq", 1 },
	{ "kick_cpu", 5 },
	{ "clock_pairing", 9 },
	{ "send_ipi", 10 },
	{ "sched_yield", 11 },
	{ "map_gpa_range", 12 },
};

const char *hc_name(unsigned int nr)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(hc_names); i++)
		if (hc_names[i].nr == nr)
			return hc_names[i].name;
	return NULL;
}

void fmt_hypercalls(char *buf, size_t len, const struct kg_policy *p)
{
	size_t o = 0;
	unsigned int nr;

	if (!p->hc_restrict) {
		snprintf(buf, len, "all");
		return;
	}
	if (!p->hc_allow) {
		snprintf(buf, len, "none");
		return;
	}
	buf[0] = '\0';
	for (nr = 0; nr < 64 && o < len; nr++) {
		const char *name = hc_name(nr);

		if (!(p->hc_allow & (1ULL << nr)))
			continue;
		if (name)
			o += snprintf(buf + o, len - o, "%s%s", o ? "," : "", name);
		else
			o += snprintf(buf + o, len - o, "%s%u", o ? "," : "", nr);
	}
}

/* hypercalls all | none | allow NAME|NR[,NAME|NR...] */
static int opt_hc_parse(struct kg_policy *p, int argc, char **argv,
			char *err, size_t errlen)
{
	char b[64], *list, *tok, *save = NULL;

	if (argc < 1)
		return fail(err, errlen,
			    "'hypercalls' needs a value: all, none or allow LIST");
	if (!strcmp(argv[0], "all")) {
		p->hc_restrict = 0;
		p->hc_allow = 0;
		return 1;
	}
	if (!strcmp(argv[0], "none")) {
		p->hc_restrict = 1;
		p->hc_allow = 0;
		return 1;
	}
	if (strcmp(argv[0], "allow"))
		return fail(err, errlen,
			    "invalid hypercalls value '%s': expected all, none or allow LIST",
			    q(argv[0], b, sizeof(b)));
	if (argc < 2)
		return fail(err, errlen,
			    "'hypercalls allow' needs a list such as kick_cpu,send_ipi, or all or none");
	/* hypercalls allow all|none: the same as hypercalls all|none */
	if (!strcmp(argv[1], "all") || !strcmp(argv[1], "none")) {
		p->hc_restrict = !strcmp(argv[1], "none");
		p->hc_allow = 0;
		return 2;
	}
	p->hc_restrict = 1;
	p->hc_allow = 0;
	list = xstrdup(argv[1]);
	for (tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		uint64_t nr;
		size_t i;
		bool found = false;

		for (i = 0; i < ARRAY_SIZE(hc_names); i++) {
			if (!strcmp(tok, hc_names[i].name)) {
				p->hc_allow |= 1ULL << hc_names[i].nr;
				found = true;
			}
		}
		if (found)
			continue;
		if (!strcmp(tok, "0")) {
			nr = 0;
		} else if (parse_u64(tok, 63, &nr)) {
			fail(err, errlen,
			     "unknown hypercall '%s': use a name (vapic_poll_irq, kick_cpu, clock_pairing, send_ipi, sched_yield, map_gpa_range) or a number 0..63",
			     q(tok, b, sizeof(b)));
			free(list);
			return -1;
		}
		p->hc_allow |= 1ULL << nr;
	}
	free(list);
	if (!p->hc_allow || argv[1][0] == ',' ||
	    argv[1][strlen(argv[1]) - 1] == ',' || strstr(argv[1], ",,"))
		return fail(err, errlen, "invalid hypercall list '%s'",
			    q(argv[1], b, sizeof(b)));
	return 2;
}

static int opt_hc_put(struct nl_msg *msg, const struct kg_policy *p)
{
	if (nla_put_u8(msg, KVMGUARD_A_POLICY_HC_RESTRICT, p->hc_restrict))
		return -1;
	if (!p->hc_restrict)
		return 0;
	return nla_put_u64(msg, KVMGUARD_A_POLICY_HC_ALLOW, p->hc_allow);
}

static void opt_hc_get(struct kg_policy *p, struct nlattr **tb)
{
	p->hc_restrict = nla_get_u8(tb[KVMGUARD_A_POLICY_HC_RESTRICT]) ? 1 : 0;
	p->hc_allow = tb[KVMGUARD_A_POLICY_HC_ALLOW] ?
		nla_get_u64(tb[KVMGUARD_A_POLICY_HC_ALLOW]) : 0;
	if (!p->hc_restrict)
		p->hc_allow = 0;
}

static bool opt_hc_equal(const struct kg_policy *a, const struct kg_policy *b)
{
	if (!a->hc_restrict || !b->hc_restrict)
		return a->hc_restrict == b->hc_restrict;
	return a->hc_allow == b->hc_allow;
}

static void opt_hc_print(FILE *f, const struct kg_policy *p)
{
	char b[512];

	fmt_hypercalls(b, sizeof(b), p);
	if (p->hc_restrict && p->hc_allow)
		fprintf(f, " hypercalls allow %s", b);
	else
		fprintf(f, " hypercalls %s", b);
}

/*
 * Options that are one field of struct kg_policy: a choice among names
 * (u8 attribute), a SIZE (u64), a VID (u16) or a VID list (the trunk
 * bitmap). The table says which field, and these do the rest
 * (policy_opt_*() below pick them).
 */
#define OPT_U8(p, o)	((uint8_t *)((char *)(p) + (o)->field))
#define OPT_U16(p, o)	((uint16_t *)((char *)(p) + (o)->field))
#define OPT_U64(p, o)	((uint64_t *)((char *)(p) + (o)->field))
#define OPT_BITS(p, o)	((uint8_t *)((char *)(p) + (o)->field))

static int opt_field_parse(const struct policy_opt *o, struct kg_policy *p,
			   int argc, char **argv, char *err, size_t errlen)
{
	static const char *const value_of[] = {
		[OPT_SIZE] = "a size such as 4G, or none",
		[OPT_VID] = "a VID 1 to 4094, or none",
		[OPT_VIDLIST] = "VIDs and ranges such as 100,200-210, or none",
	};
	char what[64];
	int ret = -1;

	if (o->kind == OPT_CHOICE) {
		snprintf(what, sizeof(what), "%s value", o->word);
		return parse_choice(o->word, what, argc, argv, o->names,
				    o->n_names, OPT_U8(p, o), err, errlen);
	}
	if (argc < 1)
		return fail(err, errlen, "'%s' needs a value: %s", o->word,
			    value_of[o->kind]);
	if (o->kind == OPT_SIZE)
		ret = parse_mem_size(o->word, argv[0], OPT_U64(p, o), err,
				     errlen);
	else if (o->kind == OPT_VID)
		ret = parse_vid(o->word, argv[0], OPT_U16(p, o), err, errlen);
	else if (o->kind == OPT_VIDLIST)
		ret = parse_vidlist(o->word, argv[0], OPT_BITS(p, o), err,
				    errlen);
	return ret ? -1 : 1;
}

void policy_opt_fmt(const struct policy_opt *o, const struct kg_policy *p,
		    char *buf, size_t len)
{
	uint8_t v;

	switch (o->kind) {
	case OPT_CHOICE:
		v = *OPT_U8(p, o);
		snprintf(buf, len, "%s", v < o->n_names ? o->names[v] : "unknown");
		return;
	case OPT_SIZE:
		fmt_size(buf, len, *OPT_U64(p, o));
		return;
	case OPT_VID:
		if (*OPT_U16(p, o))
			snprintf(buf, len, "%u", *OPT_U16(p, o));
		else
			snprintf(buf, len, "none");
		return;
	case OPT_VIDLIST:
		fmt_vidlist(buf, len, OPT_BITS(p, o));
		return;
	case OPT_CUSTOM:
		break;
	}
	snprintf(buf, len, "?");
}

int policy_opt_parse(const struct policy_opt *o, struct kg_policy *p,
		     int argc, char **argv, char *err, size_t errlen)
{
	if (o->parse)
		return o->parse(p, argc, argv, err, errlen);
	return opt_field_parse(o, p, argc, argv, err, errlen);
}

int policy_opt_put(const struct policy_opt *o, struct nl_msg *msg,
		   const struct kg_policy *p)
{
	if (o->put)
		return o->put(msg, p);
	switch (o->kind) {
	case OPT_CHOICE:
		return nla_put_u8(msg, o->attr, *OPT_U8(p, o));
	case OPT_VID:
		return nla_put_u16(msg, o->attr, *OPT_U16(p, o));
	case OPT_VIDLIST:
		return nla_put(msg, o->attr, KVMGUARD_NET_TRUNK_BYTES,
			       OPT_BITS(p, o));
	default:
		return nla_put_u64(msg, o->attr, *OPT_U64(p, o));
	}
}

/* The reply policy (nl.c) checked the attribute's length. */
void policy_opt_get(const struct policy_opt *o, struct kg_policy *p,
		    struct nlattr **tb)
{
	if (o->get)
		o->get(p, tb);
	else if (o->kind == OPT_CHOICE)
		*OPT_U8(p, o) = nla_get_u8(tb[o->attr]);
	else if (o->kind == OPT_VID)
		*OPT_U16(p, o) = nla_get_u16(tb[o->attr]);
	else if (o->kind == OPT_VIDLIST)
		memcpy(OPT_BITS(p, o), nla_data(tb[o->attr]),
		       KVMGUARD_NET_TRUNK_BYTES);
	else
		*OPT_U64(p, o) = nla_get_u64(tb[o->attr]);
}

bool policy_opt_equal(const struct policy_opt *o, const struct kg_policy *a,
		      const struct kg_policy *b)
{
	if (o->equal)
		return o->equal(a, b);
	switch (o->kind) {
	case OPT_CHOICE:
		return *OPT_U8(a, o) == *OPT_U8(b, o);
	case OPT_VID:
		return *OPT_U16(a, o) == *OPT_U16(b, o);
	case OPT_VIDLIST:
		return !memcmp(OPT_BITS(a, o), OPT_BITS(b, o),
			       KVMGUARD_NET_TRUNK_BYTES);
	default:
		return *OPT_U64(a, o) == *OPT_U64(b, o);
	}
}

void policy_opt_print(const struct policy_opt *o, FILE *f,
		      const struct kg_policy *p)
{
	char b[KG_VIDLIST_TEXT];

	if (o->print) {
		o->print(f, p);
		return;
	}
	policy_opt_fmt(o, p, b, sizeof(b));
	fprintf(f, " %s %s", o->word, b);
}

const struct policy_opt policy_opts[] = {
	{
		.word = "mode",
		.flag = PF_MODE,
		.attr = KVMGUARD_A_POLICY_MODE,
		.base = true,
		.always_dump = true,
		.parse = opt_mode_parse,
		.put = opt_mode_put,
		.get = opt_mode_get,
		.equal = opt_mode_equal,
		.print = opt_mode_print,
	},
	{
		.word = "domain",
		.flag = PF_DOMAIN,
		.attr = KVMGUARD_A_POLICY_DOMAIN,
		.base = true,
		.parse = opt_domain_parse,
		.put = opt_domain_put,
		.get = opt_domain_get,
		.equal = opt_domain_equal,
		.print = opt_domain_print,
	},
	{
		.word = "hypercalls",
		.flag = PF_HC,
		.attr = KVMGUARD_A_POLICY_HC_RESTRICT,
		.parse = opt_hc_parse,
		.put = opt_hc_put,
		.get = opt_hc_get,
		.equal = opt_hc_equal,
		.print = opt_hc_print,
	},
	{
		.word = "hyperv",
		.flag = PF_HYPERV,
		.attr = KVMGUARD_A_POLICY_HYPERV,
		.kind = OPT_CHOICE,
		.field = offsetof(struct kg_policy, hyperv),
		.names = hyperv_names,
		.n_names = ARRAY_SIZE(hyperv_names),
	},
	{
		.word = "xen",
		.flag = PF_XEN,
		.attr = KVMGUARD_A_POLICY_XEN,
		.kind = OPT_CHOICE,
		.field = offsetof(struct kg_policy, xen),
		.names = xen_names,
		.n_names = ARRAY_SIZE(xen_names),
	},
	{
		.word = "mem max",
		.flag = PF_MEM_MAX,
		.attr = KVMGUARD_A_POLICY_MEM_MAX,
		.kind = OPT_SIZE,
		.field = offsetof(struct kg_policy, mem_max),
	},
	{
		.word = "mem shared",
		.flag = PF_MEM_SHARED,
		.attr = KVMGUARD_A_POLICY_MEM_SHARED,
		.kind = OPT_CHOICE,
		.field = offsetof(struct kg_policy, mem_shared),
		.names = mem_shared_names,
		.n_names = ARRAY_SIZE(mem_shared_names),
	},
	{
		.word = "mem ksm",
		.flag = PF_MEM_KSM,
		.attr = KVMGUARD_A_POLICY_MEM_KSM,
		.kind = OPT_CHOICE,
		.field = offsetof(struct kg_policy, mem_ksm),
		.names = ksm_names,
		.n_names = ARRAY_SIZE(ksm_names),
	},
	{
		.word = "mem dirty-log max",
		.flag = PF_MEM_DIRTY_MAX,
		.attr = KVMGUARD_A_POLICY_MEM_DIRTY_MAX,
		.kind = OPT_SIZE,
		.field = offsetof(struct kg_policy, mem_dirty_max),
	},
	{
		.word = "net tag",
		.flag = PF_NET_TAG,
		.attr = KVMGUARD_A_POLICY_NET_TAG,
		.kind = OPT_VID,
		.field = offsetof(struct kg_policy, net_tag),
	},
	{
		.word = "net trunk",
		.flag = PF_NET_TRUNK,
		.attr = KVMGUARD_A_POLICY_NET_TRUNK,
		.kind = OPT_VIDLIST,
		.field = offsetof(struct kg_policy, net_trunk),
	},
	{
		.word = "net isolate",
		.flag = PF_NET_ISOLATE,
		.attr = KVMGUARD_A_POLICY_NET_ISOLATE,
		.kind = OPT_CHOICE,
		.field = offsetof(struct kg_policy, net_isolate),
		.names = isolate_names,
		.n_names = ARRAY_SIZE(isolate_names),
	},
};
const size_t policy_opts_count = ARRAY_SIZE(policy_opts);

const struct policy_opt *policy_opt_find(unsigned int flag)
{
	size_t i;

	for (i = 0; i < policy_opts_count; i++)
		if (policy_opts[i].flag == flag)
			return &policy_opts[i];
	return NULL;
}

/* Defaults of a policy whose options were not given (and of POLICY_NEW). */
void policy_defaults(struct kg_policy *p)
{
	p->mode = KVMGUARD_MODE_ENFORCE;
	p->domain[0] = '\0';
	p->hc_restrict = 0;
	p->hc_allow = 0;
	p->hyperv = KVMGUARD_HYPERV_ALLOW;
	p->xen = KVMGUARD_XEN_ALLOW;
	p->mem_max = KVMGUARD_MEM_UNLIMITED;
	p->mem_shared = KVMGUARD_MEM_SHARED_ALLOW;
	p->mem_ksm = KVMGUARD_KSM_ALLOW;
	p->mem_dirty_max = KVMGUARD_MEM_UNLIMITED;
	p->net_tag = 0;
	memset(p->net_trunk, 0, sizeof(p->net_trunk));
	p->net_isolate = 0;
}

bool policy_equal(const struct kg_policy *a, const struct kg_policy *b)
{
	size_t i;

	for (i = 0; i < policy_opts_count; i++)
		if (!policy_opt_equal(&policy_opts[i], a, b))
			return false;
	return true;
}

/* "policy add NAME ..." with the options that are not at their defaults */
void policy_dump_line(FILE *f, const struct kg_policy *p)
{
	struct kg_policy d = { 0 };
	size_t i;

	policy_defaults(&d);
	fprintf(f, "policy add %s", p->name);
	for (i = 0; i < policy_opts_count; i++)
		if (policy_opts[i].always_dump ||
		    !policy_opt_equal(&policy_opts[i], p, &d))
			policy_opt_print(&policy_opts[i], f, p);
	fputc('\n', f);
}

/*
 * How many words of an option name ("mem dirty-log max") argv starts with,
 * counting while they match.
 */
static int opt_words_matched(const char *name, int argc, char **argv)
{
	int n = 0;

	while (n < argc) {
		size_t len = strcspn(name, " ");

		if (strlen(argv[n]) != len || strncmp(argv[n], name, len))
			break;
		n++;
		name += len;
		if (!*name)
			break;
		name++;
	}
	return n;
}

static int opt_words_count(const char *name)
{
	int n = 1;

	for (; *name; name++)
		n += *name == ' ';
	return n;
}

/*
 * No option matched: name the words that were typed and, when they begin
 * some options' names ("mem ..."), list those options.
 */
static int unknown_opt(int argc, char **argv, char *err, size_t errlen)
{
	char b[64], typed[256] = "", list[512] = "";
	int best = 0, i, n, alternatives = 0;
	size_t k, o = 0;

	for (k = 0; k < policy_opts_count; k++) {
		n = opt_words_matched(policy_opts[k].word, argc, argv);
		if (n > best)
			best = n;
	}
	for (i = 0; i <= best && i < argc; i++)
		snprintf(typed + strlen(typed), sizeof(typed) - strlen(typed),
			 "%s%s", i ? " " : "", q(argv[i], b, sizeof(b)));
	if (!best)
		return fail(err, errlen, "unknown policy option '%s'", typed);
	for (k = 0; k < policy_opts_count; k++)
		if (opt_words_matched(policy_opts[k].word, argc, argv) == best)
			alternatives++;
	for (k = 0, i = 0; k < policy_opts_count && o < sizeof(list); k++) {
		if (opt_words_matched(policy_opts[k].word, argc, argv) != best)
			continue;
		i++;
		o += snprintf(list + o, sizeof(list) - o, "%s%s",
			      i == 1 ? "" : i == alternatives ? " or " : ", ",
			      policy_opts[k].word);
	}
	if (best == argc)
		return fail(err, errlen, "'%s' needs more: expected %s", typed,
			    list);
	return fail(err, errlen, "unknown policy option '%s': expected %s",
		    typed, list);
}

static int parse_policy_opts(struct kg_policy *p, int argc, char **argv,
			     char *err, size_t errlen)
{
	int i = 0;

	while (i < argc) {
		const struct policy_opt *o = NULL;
		int used, words = 0;
		size_t k;

		for (k = 0; k < policy_opts_count; k++) {
			int n = opt_words_matched(policy_opts[k].word,
						  argc - i, argv + i);

			if (n == opt_words_count(policy_opts[k].word)) {
				o = &policy_opts[k];
				words = n;
			}
		}
		if (!o)
			return unknown_opt(argc - i, argv + i, err, errlen);
		if (p->set & o->flag)
			return fail(err, errlen, "'%s' given twice", o->word);
		used = policy_opt_parse(o, p, argc - i - words, argv + i + words, err,
				errlen);
		if (used < 0)
			return -1;
		p->set |= o->flag;
		i += words + used;
	}
	return 0;
}

/* ---- commands ---- */

static int extra(int argc, char **argv, int used, char *err, size_t errlen)
{
	char b[64];

	if (argc > used)
		return fail(err, errlen, "unexpected argument '%s'",
			    q(argv[used], b, sizeof(b)));
	return 0;
}

static int parse_selector(int argc, char **argv, struct kg_selector *sel,
			  char *err, size_t errlen)
{
	char b[64];

	if (argc < 1)
		return fail(err, errlen,
			    "missing selector: default, cgroup PATH or pid PID");
	if (!strcmp(argv[0], "default")) {
		sel->type = KVMGUARD_BIND_DEFAULT;
		return 1;
	}
	if (!strcmp(argv[0], "cgroup")) {
		if (argc < 2)
			return fail(err, errlen, "'cgroup' needs a path");
		sel->type = KVMGUARD_BIND_CGROUP;
		if (parse_cgroup(argv[1], &sel->cgroup, err, errlen))
			return -1;
		return 2;
	}
	if (!strcmp(argv[0], "pid")) {
		if (argc < 2)
			return fail(err, errlen, "'pid' needs a process id");
		sel->type = KVMGUARD_BIND_PID;
		if (parse_pid(argv[1], &sel->pid, err, errlen))
			return -1;
		return 2;
	}
	return fail(err, errlen,
		    "unknown selector '%s': expected default, cgroup PATH or pid PID",
		    q(argv[0], b, sizeof(b)));
}

/* "policy NAME" at the end of bind and vm set */
static int parse_policy_ref(int argc, char **argv, char *dst, char *err,
			    size_t errlen)
{
	char b[64];

	if (argc < 1)
		return fail(err, errlen, "missing 'policy NAME'");
	if (strcmp(argv[0], "policy"))
		return fail(err, errlen, "expected 'policy NAME', not '%s'",
			    q(argv[0], b, sizeof(b)));
	if (argc < 2)
		return fail(err, errlen, "'policy' needs a name");
	if (parse_name("policy", argv[1], dst, err, errlen))
		return -1;
	return extra(argc, argv, 2, err, errlen);
}

/* "mem add SIZE" or "dirty-log SIZE|all" after vm check ID */
static int parse_vm_check(int argc, char **argv, struct kg_request *req,
			  char *err, size_t errlen)
{
	const char *what, *size;
	char b[64];
	int used;

	if (argc < 1)
		return fail(err, errlen,
			    "'vm check' needs 'mem add SIZE' or 'dirty-log SIZE|all'");
	if (!strcmp(argv[0], "mem")) {
		if (argc < 2 || strcmp(argv[1], "add"))
			return fail(err, errlen, "expected 'mem add SIZE'");
		if (argc < 3)
			return fail(err, errlen, "'mem add' needs a size");
		req->check_rule = KVMGUARD_MEM_RULE_LIMIT;
		what = "mem add";
		size = argv[2];
		used = 3;
	} else if (!strcmp(argv[0], "dirty-log")) {
		if (argc < 2)
			return fail(err, errlen, "'dirty-log' needs a size or 'all'");
		req->check_rule = KVMGUARD_MEM_RULE_DIRTY_LOG;
		what = "dirty-log";
		size = argv[1];
		used = 2;
		if (!strcmp(size, "all")) {
			req->check_all = true;
			return extra(argc, argv, used, err, errlen);
		}
	} else {
		return fail(err, errlen,
			    "unknown check '%s': expected 'mem add SIZE' or 'dirty-log SIZE|all'",
			    q(argv[0], b, sizeof(b)));
	}
	if (!strcmp(size, "none"))
		return fail(err, errlen, "'%s' needs a size, not 'none'", what);
	if (parse_mem_size(what, size, &req->check_bytes, err, errlen))
		return -1;
	return extra(argc, argv, used, err, errlen);
}

static int parse_vm(int argc, char **argv, struct kg_request *req,
		    bool file_mode, char *err, size_t errlen)
{
	char b[64];

	if (argc < 1)
		return fail(err, errlen, "'vm' needs a subcommand: list, show, set or check");
	if (file_mode && strcmp(argv[0], "set"))
		return fail(err, errlen,
			    "'vm %s' is not allowed in an apply file", q(argv[0], b, sizeof(b)));
	if (!strcmp(argv[0], "list")) {
		req->op = OP_VM_LIST;
		return extra(argc, argv, 1, err, errlen);
	}
	if (!strcmp(argv[0], "show") || !strcmp(argv[0], "set")) {
		bool set = argv[0][1] == 'e';

		if (argc < 2)
			return fail(err, errlen, "'vm %s' needs a VM id", argv[0]);
		if (parse_vm_id(argv[1], &req->vm_id, err, errlen))
			return -1;
		if (!set) {
			req->op = OP_VM_SHOW;
			return extra(argc, argv, 2, err, errlen);
		}
		req->op = OP_VM_SET;
		return parse_policy_ref(argc - 2, argv + 2, req->bind_policy,
					err, errlen);
	}
	if (!strcmp(argv[0], "check")) {
		if (argc < 2)
			return fail(err, errlen, "'vm check' needs a VM id");
		if (parse_vm_id(argv[1], &req->vm_id, err, errlen))
			return -1;
		req->op = OP_VM_CHECK;
		return parse_vm_check(argc - 2, argv + 2, req, err, errlen);
	}
	return fail(err, errlen,
		    "unknown vm subcommand '%s': expected list, show, set or check",
		    q(argv[0], b, sizeof(b)));
}

static int parse_policy(int argc, char **argv, struct kg_request *req,
			bool file_mode, char *err, size_t errlen)
{
	char b[64];
	const char *sub;

	if (argc < 1)
		return fail(err, errlen,
			    "'policy' needs a subcommand: add, set, del or show");
	sub = argv[0];
	if (file_mode && strcmp(sub, "add") && strcmp(sub, "set"))
		return fail(err, errlen,
			    "'policy %s' is not allowed in an apply file",
			    q(sub, b, sizeof(b)));
	if (!strcmp(sub, "add") || !strcmp(sub, "set")) {
		req->op = sub[0] == 'a' ? OP_POLICY_ADD : OP_POLICY_SET;
		if (argc < 2)
			return fail(err, errlen, "'policy %s' needs a name", sub);
		if (parse_name("policy", argv[1], req->policy.name, err, errlen))
			return -1;
		policy_defaults(&req->policy);
		if (parse_policy_opts(&req->policy, argc - 2, argv + 2, err,
				      errlen))
			return -1;
		if (!file_mode && req->op == OP_POLICY_SET && !req->policy.set)
			return fail(err, errlen,
				    "'policy set' needs something to change");
		return 0;
	}
	if (!strcmp(sub, "del")) {
		req->op = OP_POLICY_DEL;
		if (argc < 2)
			return fail(err, errlen, "'policy del' needs a name");
		if (parse_name("policy", argv[1], req->policy.name, err, errlen))
			return -1;
		return extra(argc, argv, 2, err, errlen);
	}
	if (!strcmp(sub, "show")) {
		req->op = OP_POLICY_SHOW;
		if (argc < 2)
			return 0;
		req->has_name = true;
		if (parse_name("policy", argv[1], req->policy.name, err, errlen))
			return -1;
		return extra(argc, argv, 2, err, errlen);
	}
	return fail(err, errlen,
		    "unknown policy subcommand '%s': expected add, set, del or show",
		    q(sub, b, sizeof(b)));
}

static int parse_bind(int argc, char **argv, struct kg_request *req,
		      bool file_mode, char *err, size_t errlen)
{
	int used;

	if (!file_mode && argc == 1 && !strcmp(argv[0], "show")) {
		req->op = OP_BIND_SHOW;
		return 0;
	}
	req->op = OP_BIND;
	used = parse_selector(argc, argv, &req->sel, err, errlen);
	if (used < 0)
		return -1;
	return parse_policy_ref(argc - used, argv + used, req->bind_policy,
				err, errlen);
}

static int parse_unbind(int argc, char **argv, struct kg_request *req,
			bool file_mode, char *err, size_t errlen)
{
	int used;

	(void)file_mode;
	req->op = OP_UNBIND;
	used = parse_selector(argc, argv, &req->sel, err, errlen);
	if (used < 0)
		return -1;
	return extra(argc, argv, used, err, errlen);
}

/* net guard BRIDGE on|off (also in apply files) */
static int parse_net_guard(int argc, char **argv, struct kg_request *req,
			   char *err, size_t errlen)
{
	char b[64];

	req->op = OP_NET_GUARD;
	if (argc < 2)
		return fail(err, errlen, "'net guard' needs a bridge name");
	if (parse_ifname(argv[1], req->ifname, err, errlen))
		return -1;
	if (argc < 3)
		return fail(err, errlen, "'net guard %s' needs on or off",
			    q(argv[1], b, sizeof(b)));
	if (!strcmp(argv[2], "on"))
		req->guard = true;
	else if (strcmp(argv[2], "off"))
		return fail(err, errlen, "expected on or off, not '%s'",
			    q(argv[2], b, sizeof(b)));
	return extra(argc, argv, 3, err, errlen);
}

/*
 * net bind ID DEVICE | net unbind DEVICE | net guard BRIDGE on|off |
 * net show; DEVICE: dev IFNAME | ifindex N. Apply files: net guard only.
 */
static int parse_net(int argc, char **argv, struct kg_request *req,
		     bool file_mode, char *err, size_t errlen)
{
	char b[64];
	int at;

	if (argc < 1)
		return fail(err, errlen,
			    "'net' needs a subcommand: bind, unbind, guard or show");
	if (!strcmp(argv[0], "guard"))
		return parse_net_guard(argc, argv, req, err, errlen);
	if (file_mode)
		return fail(err, errlen,
			    "'net %s' is not allowed in an apply file (only 'net guard')",
			    q(argv[0], b, sizeof(b)));
	if (!strcmp(argv[0], "show")) {
		req->op = OP_NET_SHOW;
		return extra(argc, argv, 1, err, errlen);
	}
	if (!strcmp(argv[0], "bind")) {
		req->op = OP_NET_BIND;
		if (argc < 2)
			return fail(err, errlen, "'net bind' needs a VM id");
		if (parse_vm_id(argv[1], &req->vm_id, err, errlen))
			return -1;
		at = 2;
	} else if (!strcmp(argv[0], "unbind")) {
		req->op = OP_NET_UNBIND;
		at = 1;
	} else {
		return fail(err, errlen,
			    "unknown net subcommand '%s': expected bind, unbind, guard or show",
			    q(argv[0], b, sizeof(b)));
	}
	if (argc <= at)
		return fail(err, errlen, "missing 'dev IFNAME' or 'ifindex N'");
	if (!strcmp(argv[at], "ifindex")) {
		uint64_t index;

		if (argc <= at + 1)
			return fail(err, errlen, "'ifindex' needs an interface index");
		if (parse_u64(argv[at + 1], INT32_MAX, &index))
			return fail(err, errlen,
				    "invalid interface index '%s': expected 1 to %d",
				    q(argv[at + 1], b, sizeof(b)), INT32_MAX);
		req->ifindex = index;
		return extra(argc, argv, at + 2, err, errlen);
	}
	if (strcmp(argv[at], "dev"))
		return fail(err, errlen,
			    "expected 'dev IFNAME' or 'ifindex N', not '%s'",
			    q(argv[at], b, sizeof(b)));
	if (argc <= at + 1)
		return fail(err, errlen, "'dev' needs an interface name");
	if (parse_ifname(argv[at + 1], req->ifname, err, errlen))
		return -1;
	return extra(argc, argv, at + 2, err, errlen);
}

static int parse_monitor(int argc, char **argv, struct kg_request *req,
			 bool file_mode, char *err, size_t errlen)
{
	(void)file_mode;
	req->op = OP_MONITOR;
	return extra(argc, argv, 0, err, errlen);
}

static int parse_apply(int argc, char **argv, struct kg_request *req,
		       bool file_mode, char *err, size_t errlen)
{
	(void)file_mode;
	req->op = OP_APPLY;
	for (; argc > 0; argc--, argv++) {
		if (!strcmp(argv[0], "--check") || !strcmp(argv[0], "-c"))
			req->check = true;
		else if (!strcmp(argv[0], "--diff") || !strcmp(argv[0], "-d"))
			req->diff = true;
		else
			break;
	}
	if (req->check && req->diff)
		return fail(err, errlen, "'apply' takes --check or --diff, not both");
	if (argc < 1)
		return fail(err, errlen, "'apply' needs a file name or -");
	req->file = argv[0];
	return extra(argc, argv, 1, err, errlen);
}

static int parse_dump(int argc, char **argv, struct kg_request *req,
		      bool file_mode, char *err, size_t errlen)
{
	(void)file_mode;
	req->op = OP_DUMP;
	return extra(argc, argv, 0, err, errlen);
}

static int parse_help(int argc, char **argv, struct kg_request *req,
		      bool file_mode, char *err, size_t errlen)
{
	(void)file_mode;
	req->op = OP_HELP;
	return extra(argc, argv, 0, err, errlen);
}

/* The first word of a command; in_file: accepted in apply files. */
static const struct {
	const char *word;
	bool in_file;
	int (*parse)(int argc, char **argv, struct kg_request *req,
		     bool file_mode, char *err, size_t errlen);
} commands[] = {
	{ "vm", true, parse_vm },
	{ "policy", true, parse_policy },
	{ "bind", true, parse_bind },
	{ "unbind", false, parse_unbind },
	{ "net", true, parse_net },
	{ "monitor", false, parse_monitor },
	{ "apply", false, parse_apply },
	{ "dump", false, parse_dump },
	{ "help", false, parse_help },
};

int parse_command(int argc, char **argv, struct kg_request *req,
		  bool file_mode, char *err, size_t errlen)
{
	char b[64];
	size_t i;
	int ret;

	memset(req, 0, sizeof(*req));
	if (argc < 1)
		return fail(err, errlen, "missing command");
	for (i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(argv[0], commands[i].word))
			break;
	if (i == ARRAY_SIZE(commands) || (file_mode && !commands[i].in_file)) {
		if (file_mode)
			return fail(err, errlen,
				    "'%s' is not allowed in an apply file (accepted: policy add, policy set, bind, vm set, net guard)",
				    q(argv[0], b, sizeof(b)));
		return fail(err, errlen, "unknown command '%s'",
			    q(argv[0], b, sizeof(b)));
	}
	/*
	 * A trailing `force` (command line only) of the commands that change
	 * what running VMs get; after `domain` it is a domain's name.
	 */
	if (!file_mode && argc >= 3 && !strcmp(argv[argc - 1], "force") &&
	    strcmp(argv[argc - 2], "domain") &&
	    (!strcmp(argv[0], "vm") || !strcmp(argv[0], "bind") ||
	     !strcmp(argv[0], "unbind") || (!strcmp(argv[0], "policy") &&
	     (!strcmp(argv[1], "set") || !strcmp(argv[1], "del"))))) {
		req->force = true;
		argc--;
	}
	ret = commands[i].parse(argc - 1, argv + 1, req, file_mode, err,
				errlen);
	if (ret) {
		kg_request_free(req);
		req->op = OP_NONE;
	}
	return ret;
}

void kg_request_free(struct kg_request *req)
{
	kg_selector_free(&req->sel);
}

/* ---- words of apply files ---- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

void free_words(char **words, int n)
{
	int i;

	for (i = 0; i < n; i++)
		free(words[i]);
	free(words);
}

int split_words(const char *line, char ***out, char *err, size_t errlen)
{
	struct vec words = VEC_INIT(char *);
	const char *s = line;
	size_t len = strlen(line);
	char *buf = xmalloc(len + 1);

	for (;;) {
		size_t o = 0;
		bool quoted = false;

		while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			s++;
		if (!*s || *s == '#')
			break;
		while (*s && (quoted || !strchr(" \t\r\n", *s))) {
			if (*s == '"') {
				quoted = !quoted;
				s++;
				continue;
			}
			if (*s == '\\' && quoted) {
				int h1, h2;

				s++;
				switch (*s) {
				case '\\':
				case '"':
					buf[o++] = *s++;
					break;
				case 'n':
					buf[o++] = '\n';
					s++;
					break;
				case 't':
					buf[o++] = '\t';
					s++;
					break;
				case 'x':
					h1 = s[1] ? hexval(s[1]) : -1;
					h2 = h1 >= 0 && s[2] ? hexval(s[2]) : -1;
					if (h2 < 0 || (h1 == 0 && h2 == 0))
						goto bad_escape;
					buf[o++] = (char)(h1 << 4 | h2);
					s += 3;
					break;
				default:
					goto bad_escape;
				}
				continue;
			}
			buf[o++] = *s++;
		}
		if (quoted) {
			fail(err, errlen, "unterminated quote");
			goto error;
		}
		buf[o] = '\0';
		*(char **)vec_push(&words) = xstrdup(buf);
	}
	free(buf);
	*out = words.items;
	return (int)words.n;

bad_escape:
	fail(err, errlen,
	     "invalid escape in quotes (use \\\\ \\\" \\n \\t or \\xHH)");
error:
	free(buf);
	free_words(words.items, (int)words.n);
	return -1;
}

/* Outside quotes a backslash is literal (systemd's "\x2d" in cgroup names). */
void fput_word(FILE *f, const char *w)
{
	const unsigned char *s = (const unsigned char *)w;
	bool plain = *s && *s != '#';

	for (; *s && plain; s++)
		if (*s <= ' ' || *s == '"' || *s == 0x7f)
			plain = false;
	if (plain) {
		fputs(w, f);
		return;
	}
	fputc('"', f);
	for (s = (const unsigned char *)w; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else if (*s == '\t')
			fputs("\\t", f);
		else if (*s < ' ' || *s == 0x7f)
			fprintf(f, "\\x%02x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}
