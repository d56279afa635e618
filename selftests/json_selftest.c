// SPDX-License-Identifier: GPL-2.0
/*
 * json_selftest: the strict JSON validator used by the cli test accepts
 * what RFC 8259 accepts and refuses the rest (pure userspace).
 */
#include <stdio.h>
#include <string.h>

#include "kselftest_harness.h"
#include "json.h"
#include "kg.h"

static const char *const valid[] = {
	"{}", "[]", "0", "-0", "1.5e+10", "-12.25E-3", "true", "false", "null",
	"\"\"", " \t\r\n{\"a\" : [1, 2, {\"b\": null}]}\n ",
	"\"\\u00e9\\ud83d\\ude00\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
	"\"caf\xc3\xa9 \xf0\x9f\x98\x80\"",
	"{\"id\":18446744073709551615,\"x\":[[],{}]}",
};

static const char *const invalid[] = {
	"", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "[1 2]",
	"01", "-", "1.", ".5", "1e", "+1", "0x10", "NaN", "Infinity",
	"tru", "nul", "True", "'a'", "\"a", "\"\\x\"", "\"\\u12\"",
	"\"\\ud800\"", "\"\\udc00\"", "\"a\tb\"", "\"\xc3\"", "\"\xc0\xaf\"",
	"\"\xed\xa0\x80\"", "{\"a\":1,\"a\":2}", "{} {}", "[1] x", "{\"a\":1}}",
	"[\"\\u0000\"]x",
};

TEST(accepts_valid)
{
	char err[128];

	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		struct json *j = json_parse(valid[i], err, sizeof(err));

		EXPECT_NE(NULL, j) TH_LOG("refused %s: %s", valid[i], err);
		json_free(j);
	}
}

TEST(refuses_invalid)
{
	char err[128];

	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		struct json *j = json_parse(invalid[i], err, sizeof(err));

		EXPECT_EQ(NULL, j) TH_LOG("accepted [%s]", invalid[i]);
		if (!j) {
			EXPECT_NE(0, err[0]);
		}
		json_free(j);
	}
}

TEST(refuses_deep_nesting)
{
	char buf[300];
	struct json *j;

	memset(buf, '[', 200);
	buf[200] = 0;
	j = json_parse(buf, NULL, 0);
	EXPECT_EQ(NULL, j);
	json_free(j);
}

TEST(tree_values)
{
	char err[128];
	struct json *j = json_parse("{\"id\":42,\"s\":\"a\\u0062c\",\"n\":null,"
				    "\"t\":true,\"neg\":-1,\"f\":1.5,"
				    "\"a\":[{\"k\":\"v\"}]}", err, sizeof(err));
	uint64_t v = 0;

	ASSERT_NE(NULL, j) TH_LOG("%s", err);
	EXPECT_TRUE(json_u64(json_get(j, "id"), &v));
	EXPECT_EQ(42ULL, v);
	EXPECT_STREQ("abc", json_str(json_get(j, "s")));
	EXPECT_EQ((int)JSON_NULL, (int)json_get(j, "n")->type);
	EXPECT_EQ((int)JSON_BOOL, (int)json_get(j, "t")->type);
	EXPECT_TRUE(json_get(j, "t")->b);
	EXPECT_FALSE(json_u64(json_get(j, "neg"), NULL));
	EXPECT_FALSE(json_u64(json_get(j, "f"), NULL));
	EXPECT_EQ(NULL, json_get(j, "missing"));
	EXPECT_EQ((int)JSON_ARR, (int)json_get(j, "a")->type);
	EXPECT_EQ(1, json_get(j, "a")->n);
	EXPECT_STREQ("v", json_str(json_get(json_get(j, "a")->items[0], "k")));
	json_free(j);
}

KG_HARNESS_MAIN(0)
