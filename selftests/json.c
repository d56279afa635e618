// SPDX-License-Identifier: GPL-2.0
/* json: a small strict JSON (RFC 8259) parser for the kvmguard selftests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define JSON_MAX_DEPTH 64

struct parser {
	const char *s;
	size_t pos;
	char *err;
	size_t errsize;
	int depth;
};

static void *fail(struct parser *p, const char *msg)
{
	if (p->err && !p->err[0])
		snprintf(p->err, p->errsize, "%s at byte %zu", msg, p->pos);
	return NULL;
}

static void ws(struct parser *p)
{
	while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
	       p->s[p->pos] == '\n' || p->s[p->pos] == '\r')
		p->pos++;
}

static struct json *new(enum json_type t)
{
	struct json *j = calloc(1, sizeof(*j));

	if (j)
		j->type = t;
	return j;
}

void json_free(struct json *j)
{
	if (!j)
		return;
	free(j->text);
	for (int i = 0; i < j->n; i++) {
		json_free(j->items[i]);
		if (j->keys)
			free(j->keys[i]);
	}
	free(j->items);
	free(j->keys);
	free(j);
}

static struct json *value(struct parser *p);

static int hex4(struct parser *p, unsigned int *out)
{
	unsigned int v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p->s[p->pos + i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	p->pos += 4;
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned int cp)
{
	if (cp < 0x80) {
		o[0] = cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = 0xc0 | (cp >> 6);
		o[1] = 0x80 | (cp & 0x3f);
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = 0xe0 | (cp >> 12);
		o[1] = 0x80 | ((cp >> 6) & 0x3f);
		o[2] = 0x80 | (cp & 0x3f);
		return 3;
	}
	o[0] = 0xf0 | (cp >> 18);
	o[1] = 0x80 | ((cp >> 12) & 0x3f);
	o[2] = 0x80 | ((cp >> 6) & 0x3f);
	o[3] = 0x80 | (cp & 0x3f);
	return 4;
}

/* Length of a valid UTF-8 sequence at s, or 0. */
static int utf8_len(const unsigned char *s)
{
	unsigned int cp;
	int n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (int i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static char *string(struct parser *p, size_t *lenp)
{
	size_t start, cap, len = 0;
	char *out;

	if (p->s[p->pos] != '"')
		return fail(p, "expected string");
	start = ++p->pos;
	cap = strlen(p->s + start) + 1;
	out = malloc(cap);
	if (!out)
		return fail(p, "out of memory");
	for (;;) {
		unsigned char c = p->s[p->pos];

		if (c == '"') {
			p->pos++;
			break;
		}
		if (c == 0) {
			free(out);
			return fail(p, "unterminated string");
		}
		if (c < 0x20) {
			free(out);
			return fail(p, "control character in string");
		}
		if (c == '\\') {
			unsigned int cp, lo;

			p->pos++;
			switch (p->s[p->pos++]) {
			case '"': out[len++] = '"'; break;
			case '\\': out[len++] = '\\'; break;
			case '/': out[len++] = '/'; break;
			case 'b': out[len++] = '\b'; break;
			case 'f': out[len++] = '\f'; break;
			case 'n': out[len++] = '\n'; break;
			case 'r': out[len++] = '\r'; break;
			case 't': out[len++] = '\t'; break;
			case 'u':
				if (hex4(p, &cp))
					goto bad_escape;
				if (cp >= 0xdc00 && cp <= 0xdfff)
					goto bad_escape;
				if (cp >= 0xd800 && cp <= 0xdbff) {
					if (p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
						goto bad_escape;
					p->pos += 2;
					if (hex4(p, &lo) || lo < 0xdc00 || lo > 0xdfff)
						goto bad_escape;
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				}
				len += put_utf8(out + len, cp);
				break;
			default:
				goto bad_escape;
			}
			continue;
		}
		{
			int n = utf8_len((const unsigned char *)p->s + p->pos);

			if (!n) {
				free(out);
				return fail(p, "invalid UTF-8");
			}
			memcpy(out + len, p->s + p->pos, n);
			len += n;
			p->pos += n;
		}
	}
	out[len] = 0;
	*lenp = len;
	(void)start;
	return out;
bad_escape:
	free(out);
	return fail(p, "bad escape");
}

static int digits(struct parser *p)
{
	size_t start = p->pos;

	while (p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
		p->pos++;
	return p->pos > start;
}

static struct json *number(struct parser *p)
{
	size_t start = p->pos;
	struct json *j;

	if (p->s[p->pos] == '-')
		p->pos++;
	if (p->s[p->pos] == '0') {
		p->pos++;
		if (p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
			return fail(p, "leading zero");
	} else if (!digits(p)) {
		return fail(p, "bad number");
	}
	if (p->s[p->pos] == '.') {
		p->pos++;
		if (!digits(p))
			return fail(p, "bad fraction");
	}
	if (p->s[p->pos] == 'e' || p->s[p->pos] == 'E') {
		p->pos++;
		if (p->s[p->pos] == '+' || p->s[p->pos] == '-')
			p->pos++;
		if (!digits(p))
			return fail(p, "bad exponent");
	}
	j = new(JSON_NUM);
	if (!j)
		return fail(p, "out of memory");
	j->text = strndup(p->s + start, p->pos - start);
	return j;
}

static int append(struct json *j, struct json *item, char *key)
{
	struct json **items = realloc(j->items, (j->n + 1) * sizeof(*items));

	if (!items)
		return -1;
	j->items = items;
	if (j->type == JSON_OBJ) {
		char **keys = realloc(j->keys, (j->n + 1) * sizeof(*keys));

		if (!keys)
			return -1;
		j->keys = keys;
		j->keys[j->n] = key;
	}
	j->items[j->n++] = item;
	return 0;
}

static struct json *container(struct parser *p, bool obj)
{
	struct json *j = new(obj ? JSON_OBJ : JSON_ARR);

	if (!j)
		return fail(p, "out of memory");
	if (++p->depth > JSON_MAX_DEPTH) {
		json_free(j);
		return fail(p, "too deep");
	}
	p->pos++;
	ws(p);
	if (p->s[p->pos] == (obj ? '}' : ']')) {
		p->pos++;
		p->depth--;
		return j;
	}
	for (;;) {
		struct json *item;
		char *key = NULL;
		size_t klen;

		ws(p);
		if (obj) {
			key = string(p, &klen);
			if (!key)
				goto err;
			if (strlen(key) != klen || json_get(j, key)) {
				fail(p, strlen(key) != klen ? "NUL in key" : "duplicate key");
				free(key);
				goto err;
			}
			ws(p);
			if (p->s[p->pos] != ':') {
				free(key);
				fail(p, "expected ':'");
				goto err;
			}
			p->pos++;
		}
		item = value(p);
		if (!item) {
			free(key);
			goto err;
		}
		if (append(j, item, key)) {
			json_free(item);
			free(key);
			fail(p, "out of memory");
			goto err;
		}
		ws(p);
		if (p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->s[p->pos] == (obj ? '}' : ']')) {
			p->pos++;
			break;
		}
		fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
		goto err;
	}
	p->depth--;
	return j;
err:
	json_free(j);
	return NULL;
}

static struct json *literal(struct parser *p, const char *word, struct json *j)
{
	if (!j)
		return fail(p, "out of memory");
	if (strncmp(p->s + p->pos, word, strlen(word))) {
		json_free(j);
		return fail(p, "bad literal");
	}
	p->pos += strlen(word);
	return j;
}

static struct json *value(struct parser *p)
{
	struct json *j;

	ws(p);
	switch (p->s[p->pos]) {
	case '{':
		return container(p, true);
	case '[':
		return container(p, false);
	case '"':
		j = new(JSON_STR);
		if (!j)
			return fail(p, "out of memory");
		j->text = string(p, &j->len);
		if (!j->text) {
			json_free(j);
			return NULL;
		}
		return j;
	case 't':
		j = literal(p, "true", new(JSON_BOOL));
		if (j)
			j->b = true;
		return j;
	case 'f':
		return literal(p, "false", new(JSON_BOOL));
	case 'n':
		return literal(p, "null", new(JSON_NULL));
	default:
		if (p->s[p->pos] == '-' || (p->s[p->pos] >= '0' && p->s[p->pos] <= '9'))
			return number(p);
		return fail(p, p->s[p->pos] ? "unexpected character" : "unexpected end");
	}
}

struct json *json_parse(const char *text, char *err, size_t errsize)
{
	struct parser p = { .s = text, .err = err, .errsize = errsize };
	struct json *j;

	if (err && errsize)
		err[0] = 0;
	j = value(&p);
	if (!j)
		return NULL;
	ws(&p);
	if (p.s[p.pos]) {
		json_free(j);
		return fail(&p, "trailing garbage");
	}
	return j;
}

const struct json *json_get(const struct json *j, const char *key)
{
	if (!j || j->type != JSON_OBJ)
		return NULL;
	for (int i = 0; i < j->n; i++)
		if (!strcmp(j->keys[i], key))
			return j->items[i];
	return NULL;
}

bool json_u64(const struct json *j, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!j || j->type != JSON_NUM || !j->text || j->text[0] == '-' ||
	    strpbrk(j->text, ".eE"))
		return false;
	errno = 0;
	v = strtoull(j->text, &end, 10);
	if (errno || *end)
		return false;
	if (out)
		*out = v;
	return true;
}

const char *json_str(const struct json *j)
{
	return j && j->type == JSON_STR ? j->text : NULL;
}
