/* SPDX-License-Identifier: GPL-2.0 */
/*
 * json: a small strict JSON (RFC 8259) parser for checking the CLI's -j
 * output in the test host (which has no python). Rejects trailing commas,
 * leading zeros, bad escapes, invalid UTF-8, raw control characters,
 * duplicate object keys and anything after the top-level value.
 */
#ifndef KVMGUARD_SELFTEST_JSON_H
#define KVMGUARD_SELFTEST_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ };

struct json {
	enum json_type type;
	bool b;
	char *text;		/* JSON_NUM: the literal; JSON_STR: decoded (UTF-8) */
	size_t len;		/* JSON_STR: decoded length (may contain NUL) */
	int n;			/* JSON_ARR / JSON_OBJ: members */
	struct json **items;
	char **keys;		/* JSON_OBJ */
};

/* Parse @text; NULL on error with a message (and byte offset) in @err. */
struct json *json_parse(const char *text, char *err, size_t errsize);
void json_free(struct json *j);
/* Object member by key, NULL if absent or @j is not an object. */
const struct json *json_get(const struct json *j, const char *key);
/* True if @j is a number that is a non-negative integer fitting u64. */
bool json_u64(const struct json *j, uint64_t *out);
/* String value or NULL if @j is not a string. */
const char *json_str(const struct json *j);

#endif
