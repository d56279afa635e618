// SPDX-License-Identifier: GPL-2.0
/* json_check: exit 0 if stdin (or each FILE) is one strict JSON value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static int check(FILE *f, const char *name)
{
	size_t cap = 4096, len = 0, n;
	char *buf = malloc(cap), err[128];
	struct json *j;

	while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 2)
			buf = realloc(buf, cap *= 2);
	}
	if (!buf)
		return 2;
	buf[len] = 0;
	if (strlen(buf) != len) {
		fprintf(stderr, "%s: NUL byte in input\n", name);
		free(buf);
		return 1;
	}
	j = json_parse(buf, err, sizeof(err));
	free(buf);
	if (!j) {
		fprintf(stderr, "%s: %s\n", name, err);
		return 1;
	}
	json_free(j);
	return 0;
}

int main(int argc, char **argv)
{
	int ret = 0;

	if (argc < 2)
		return check(stdin, "<stdin>");
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "r");

		if (!f) {
			perror(argv[i]);
			ret = 2;
			continue;
		}
		if (check(f, argv[i]))
			ret = ret ? ret : 1;
		fclose(f);
	}
	return ret;
}
