// SPDX-License-Identifier: GPL-2.0
/*
 * kvmguard(8): small helpers: allocation, arrays, formatting, selectors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kg.h"

static void oom(void)
{
	fputs(PROG_NAME ": out of memory\n", stderr);
	exit(EXIT_ERR);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);

	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		oom();
	return p;
}

void *vec_push(struct vec *v)
{
	void *item;

	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 8;
		void *items = reallocarray(v->items, cap, v->size);

		if (!items)
			oom();
		v->items = items;
		v->cap = cap;
	}
	item = (char *)v->items + v->n++ * v->size;
	memset(item, 0, v->size);
	return item;
}

void vec_free(struct vec *v)
{
	free(v->items);
	v->items = NULL;
	v->n = 0;
	v->cap = 0;
}

void vec_sort(struct vec *v, int (*cmp)(const void *, const void *))
{
	if (v->n > 1)
		qsort(v->items, v->n, v->size, cmp);
}

void fmt_time(char *buf, size_t len, uint64_t ns, bool millis)
{
	time_t t = (time_t)(ns / 1000000000ULL);
	struct tm tm;
	char date[32], zone[8];

	if (!localtime_r(&t, &tm)) {
		snprintf(buf, len, "%llu", (unsigned long long)ns);
		return;
	}
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	strftime(zone, sizeof(zone), "%z", &tm);
	/* ISO 8601 extended: +hh:mm */
	if (strlen(zone) == 5) {
		zone[6] = '\0';
		zone[5] = zone[4];
		zone[4] = zone[3];
		zone[3] = ':';
	}
	if (millis)
		snprintf(buf, len, "%s.%03u%s", date,
			 (unsigned int)(ns % 1000000000ULL / 1000000), zone);
	else
		snprintf(buf, len, "%s%s", date, zone);
}

void fmt_bytes(char *buf, size_t len, uint64_t bytes)
{
	static const char units[] = "KMGTPE";
	int u = -1;
	uint64_t div = 1;

	while (u + 1 < (int)sizeof(units) - 1 && bytes / div >= 1024) {
		div *= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%llu", (unsigned long long)bytes);
	else if (bytes % div == 0)
		snprintf(buf, len, "%llu%c",
			 (unsigned long long)(bytes / div), units[u]);
	else
		snprintf(buf, len, "%.1f%c", (double)bytes / (double)div,
			 units[u]);
}

void fmt_size(char *buf, size_t len, uint64_t bytes)
{
	static const char units[] = "KMGT";
	int u;

	if (bytes == KVMGUARD_MEM_UNLIMITED) {
		snprintf(buf, len, "none");
		return;
	}
	for (u = (int)sizeof(units) - 2; u >= 0; u--) {
		uint64_t unit = 1ULL << (10 * (u + 1));

		if (bytes && bytes % unit == 0) {
			snprintf(buf, len, "%llu%c",
				 (unsigned long long)(bytes / unit), units[u]);
			return;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)bytes);
}

void fmt_safe(char *buf, size_t len, const char *s)
{
	size_t i;

	if (!len)
		return;
	for (i = 0; s[i] && i + 1 < len; i++) {
		unsigned char c = s[i];

		buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	buf[i] = '\0';
}

void kg_selector_free(struct kg_selector *s)
{
	free(s->cgroup);
	s->cgroup = NULL;
}

void kg_selector_copy(struct kg_selector *dst, const struct kg_selector *src)
{
	*dst = *src;
	dst->cgroup = src->cgroup ? xstrdup(src->cgroup) : NULL;
}

/* The kernel's dump order: default, cgroups by path, pids by number. */
int kg_selector_cmp(const struct kg_selector *a, const struct kg_selector *b)
{
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	if (a->type == KVMGUARD_BIND_CGROUP)
		return strcmp(a->cgroup, b->cgroup);
	if (a->type == KVMGUARD_BIND_PID && a->pid != b->pid)
		return a->pid < b->pid ? -1 : 1;
	return 0;
}

void kg_selector_fmt(char *buf, size_t len, const struct kg_selector *s)
{
	switch (s->type) {
	case KVMGUARD_BIND_DEFAULT:
		snprintf(buf, len, "default");
		break;
	case KVMGUARD_BIND_CGROUP: {
		char *safe = xstrdup(s->cgroup);

		fmt_safe(safe, strlen(safe) + 1, s->cgroup);
		snprintf(buf, len, "cgroup %s", safe);
		free(safe);
		break;
	}
	case KVMGUARD_BIND_PID:
		snprintf(buf, len, "pid %u", s->pid);
		break;
	default:
		snprintf(buf, len, "unknown(%u)", s->type);
		break;
	}
}

void kg_selector_fput(FILE *f, const struct kg_selector *s)
{
	switch (s->type) {
	case KVMGUARD_BIND_CGROUP:
		fputs("cgroup ", f);
		fput_word(f, s->cgroup);
		break;
	default: {
		char buf[64];

		kg_selector_fmt(buf, sizeof(buf), s);
		fputs(buf, f);
		break;
	}
	}
}

void kg_vm_free(struct kg_vm *vm)
{
	free(vm->cgroup);
	vm->cgroup = NULL;
	free(vm->net_devs);
	vm->net_devs = NULL;
	vm->n_net_devs = 0;
}

const char *mode_name(uint8_t mode)
{
	switch (mode) {
	case KVMGUARD_MODE_ENFORCE:
		return "enforce";
	case KVMGUARD_MODE_AUDIT:
		return "audit";
	}
	return "unknown";
}

const char *bound_by_name(uint8_t b)
{
	static const char *const names[] = {
		[KVMGUARD_BOUND_NONE] = "none",
		[KVMGUARD_BOUND_DEFAULT] = "default",
		[KVMGUARD_BOUND_CGROUP] = "cgroup",
		[KVMGUARD_BOUND_PID] = "pid",
		[KVMGUARD_BOUND_EXPLICIT] = "explicit",
	};

	return b < ARRAY_SIZE(names) ? names[b] : "unknown";
}

const char *mem_shared_name(uint8_t v)
{
	static const char *const names[] = {
		[KVMGUARD_MEM_SHARED_ALLOW] = "allow",
		[KVMGUARD_MEM_SHARED_DENY] = "deny",
		[KVMGUARD_MEM_SHARED_DOMAIN] = "domain",
	};

	return v < ARRAY_SIZE(names) ? names[v] : "unknown";
}

const char *ksm_name(uint8_t v)
{
	return v == KVMGUARD_KSM_ALLOW ? "allow" :
	       v == KVMGUARD_KSM_DENY ? "deny" : "unknown";
}

const char *mem_rule_name(uint8_t rule)
{
	static const char *const names[] = {
		[KVMGUARD_MEM_RULE_LIMIT] = "limit",
		[KVMGUARD_MEM_RULE_SHARED] = "shared",
		[KVMGUARD_MEM_RULE_KSM] = "ksm",
		[KVMGUARD_MEM_RULE_DIRTY_LOG] = "dirty_log",
	};

	return rule < ARRAY_SIZE(names) ? names[rule] : NULL;
}

const char *net_rule_name(uint8_t rule)
{
	static const char *const names[] = {
		[KVMGUARD_NET_RULE_TAG] = "tag",
		[KVMGUARD_NET_RULE_SEGMENT] = "segment",
		[KVMGUARD_NET_RULE_ISOLATE] = "isolate",
	};

	return rule < ARRAY_SIZE(names) ? names[rule] : NULL;
}

const char *net_dir_name(uint8_t dir)
{
	static const char *const names[] = {
		[KVMGUARD_NET_FROM_GUEST] = "from_guest",
		[KVMGUARD_NET_TO_GUEST] = "to_guest",
	};

	return dir < ARRAY_SIZE(names) ? names[dir] : NULL;
}

const char *net_bound_by_name(uint8_t b)
{
	static const char *const names[] = {
		[KVMGUARD_NET_BOUND_VHOST] = "vhost",
		[KVMGUARD_NET_BOUND_MANUAL] = "manual",
		[KVMGUARD_NET_BOUND_FOUND] = "found",
	};

	return b < ARRAY_SIZE(names) ? names[b] : "unknown";
}

const char *bind_type_name(uint8_t t)
{
	switch (t) {
	case KVMGUARD_BIND_DEFAULT:
		return "default";
	case KVMGUARD_BIND_CGROUP:
		return "cgroup";
	case KVMGUARD_BIND_PID:
		return "pid";
	}
	return "unknown";
}
