// SPDX-License-Identifier: GPL-2.0
/*
 * policies: POLICY_NEW/SET/GET/DEL semantics (EEXIST, ENOENT, SET changes
 * only what it names, an empty domain clears it, DEL refused with EBUSY
 * while a binding names the policy) and a dump of 1,000 policies that is
 * complete, exact, sorted by name and spans several netlink reads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "kg.h"

#define P "kgp-"

FIXTURE(pol) {
	struct gnl g;
};

FIXTURE_SETUP(pol)
{
	ASSERT_EQ(0, kg_open(&self->g));
	kg_cleanup(&self->g, P);
}

FIXTURE_TEARDOWN(pol)
{
	kg_cleanup(&self->g, P);
	kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, "/kvmguard-pol", 0);
	gnl_close(&self->g);
}

TEST_F(pol, new_defaults_and_get)
{
	struct kg_policy p;

	ASSERT_EQ(0, kg_policy_new(&self->g, P "a", -1, NULL));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "a", &p));
	EXPECT_STREQ(P "a", p.name);
	EXPECT_EQ(KVMGUARD_MODE_ENFORCE, p.mode);
	EXPECT_FALSE(p.has_domain);
	EXPECT_TRUE(!!(p.present & (1u << KVMGUARD_A_POLICY_VMS)));
	EXPECT_TRUE(!!(p.present & (1u << KVMGUARD_A_POLICY_BINDINGS)));
	EXPECT_EQ(0U, p.vms);
	EXPECT_EQ(0U, p.bindings);
	/* Every rule is reported, at its default too. */
	EXPECT_TRUE(!!(p.present & (1u << KVMGUARD_A_POLICY_HC_RESTRICT)));
	EXPECT_TRUE(!!(p.present & (1u << KVMGUARD_A_POLICY_HC_ALLOW)));
	EXPECT_TRUE(!!(p.present & (1u << KVMGUARD_A_POLICY_HYPERV)));

	ASSERT_EQ(0, kg_policy_new(&self->g, P "b", KVMGUARD_MODE_AUDIT, "dom-1"));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "b", &p));
	EXPECT_STREQ(P "b", p.name);
	EXPECT_EQ(KVMGUARD_MODE_AUDIT, p.mode);
	EXPECT_TRUE(p.has_domain);
	EXPECT_STREQ("dom-1", p.domain);

	/* Longest legal name: 31 bytes of the allowed alphabet. */
	ASSERT_EQ(31U, strlen(P "Az09._-xxxxxxxxxxxxxxxxxxxx"));
	ASSERT_EQ(0, kg_policy_new(&self->g, P "Az09._-xxxxxxxxxxxxxxxxxxxx", -1, NULL));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "Az09._-xxxxxxxxxxxxxxxxxxxx", &p));
	EXPECT_STREQ(P "Az09._-xxxxxxxxxxxxxxxxxxxx", p.name);
}

TEST_F(pol, new_eexist_keeps_original)
{
	struct kg_policy p;

	ASSERT_EQ(0, kg_policy_new(&self->g, P "dup", KVMGUARD_MODE_AUDIT, "d1"));
	EXPECT_EQ(-EEXIST, kg_policy_new(&self->g, P "dup", -1, NULL));
	EXPECT_EQ(-EEXIST, kg_policy_new(&self->g, P "dup", KVMGUARD_MODE_ENFORCE, "d2"));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "dup", &p));
	EXPECT_EQ(KVMGUARD_MODE_AUDIT, p.mode);
	EXPECT_STREQ("d1", p.domain);
}

TEST_F(pol, enoent)
{
	struct kg_policy p;

	EXPECT_EQ(-ENOENT, kg_policy_get(&self->g, P "nope", &p));
	EXPECT_EQ(-ENOENT, kg_policy_set(&self->g, P "nope", KVMGUARD_MODE_AUDIT, NULL));
	EXPECT_EQ(-ENOENT, kg_policy_del(&self->g, P "nope"));
	/* SET on an unknown name must not create it. */
	EXPECT_EQ(-ENOENT, kg_policy_get(&self->g, P "nope", &p));
}

TEST_F(pol, set_changes_only_what_it_names)
{
	struct kg_policy p;

	ASSERT_EQ(0, kg_policy_new(&self->g, P "s", KVMGUARD_MODE_AUDIT, "d1"));

	ASSERT_EQ(0, kg_policy_set(&self->g, P "s", KVMGUARD_MODE_ENFORCE, NULL));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "s", &p));
	EXPECT_EQ(KVMGUARD_MODE_ENFORCE, p.mode);
	EXPECT_TRUE(p.has_domain);
	EXPECT_STREQ("d1", p.domain);

	ASSERT_EQ(0, kg_policy_set(&self->g, P "s", -1, "d2"));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "s", &p));
	EXPECT_EQ(KVMGUARD_MODE_ENFORCE, p.mode);
	EXPECT_STREQ("d2", p.domain);

	ASSERT_EQ(0, kg_policy_set(&self->g, P "s", KVMGUARD_MODE_AUDIT, NULL));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "s", &p));
	EXPECT_EQ(KVMGUARD_MODE_AUDIT, p.mode);
	EXPECT_STREQ("d2", p.domain);

	/* A SET naming nothing but the policy changes nothing. */
	ASSERT_EQ(0, kg_policy_set(&self->g, P "s", -1, NULL));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "s", &p));
	EXPECT_EQ(KVMGUARD_MODE_AUDIT, p.mode);
	EXPECT_STREQ("d2", p.domain);

	/* An empty domain clears it; the mode stays. */
	ASSERT_EQ(0, kg_policy_set(&self->g, P "s", -1, ""));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "s", &p));
	EXPECT_FALSE(p.has_domain);
	EXPECT_EQ(KVMGUARD_MODE_AUDIT, p.mode);
}

TEST_F(pol, new_with_empty_domain_has_none)
{
	struct kg_policy p;

	ASSERT_EQ(0, kg_policy_new(&self->g, P "e", -1, ""));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "e", &p));
	EXPECT_FALSE(p.has_domain);
}

TEST_F(pol, del_and_recreate)
{
	struct kg_policy p;

	ASSERT_EQ(0, kg_policy_new(&self->g, P "d", KVMGUARD_MODE_AUDIT, "x"));
	ASSERT_EQ(0, kg_policy_del(&self->g, P "d"));
	EXPECT_EQ(-ENOENT, kg_policy_get(&self->g, P "d", &p));
	EXPECT_EQ(-ENOENT, kg_policy_del(&self->g, P "d"));
	/* A new policy of that name starts from scratch. */
	ASSERT_EQ(0, kg_policy_new(&self->g, P "d", -1, NULL));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "d", &p));
	EXPECT_EQ(KVMGUARD_MODE_ENFORCE, p.mode);
	EXPECT_FALSE(p.has_domain);
}

TEST_F(pol, del_busy_while_bound)
{
	struct kg_policy p;

	ASSERT_EQ(0, kg_policy_new(&self->g, P "bound", -1, NULL));
	ASSERT_EQ(0, kg_bind_new(&self->g, KVMGUARD_BIND_CGROUP, "/kvmguard-pol", 0, P "bound"));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "bound", &p));
	EXPECT_EQ(1U, p.bindings);
	EXPECT_EQ(-EBUSY, kg_policy_del(&self->g, P "bound"));
	EXPECT_NE(0, self->g.ext_msg[0]) TH_LOG("EBUSY without an extack message");
	ASSERT_EQ(0, kg_policy_get(&self->g, P "bound", &p));
	ASSERT_EQ(0, kg_bind_del(&self->g, KVMGUARD_BIND_CGROUP, "/kvmguard-pol", 0));
	ASSERT_EQ(0, kg_policy_get(&self->g, P "bound", &p));
	EXPECT_EQ(0U, p.bindings);
	EXPECT_EQ(0, kg_policy_del(&self->g, P "bound"));
}

#define NPOL 1000

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

TEST_F_TIMEOUT(pol, dump_1000, 200)
{
	static char names[NPOL][KVMGUARD_NAME_MAX + 1];
	static int seen[NPOL];
	char *sorted[NPOL];
	int order[NPOL], n = 0, ours = 0;
	struct kg_policy *all = NULL;

	/* Names of varying length so byte order differs from creation order. */
	for (int i = 0; i < NPOL; i++) {
		snprintf(names[i], sizeof(names[i]), P "%d%s", i * 7919 % NPOL,
			 i % 3 ? "" : "_z");
		order[i] = i;
	}
	srand(1234);
	for (int i = NPOL - 1; i > 0; i--) {
		int j = rand() % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (int k = 0; k < NPOL; k++) {
		int i = order[k];

		ASSERT_EQ(0, kg_policy_new(&self->g, names[i], i % 2,
					   i % 5 ? NULL : "dom")) TH_LOG("%s", names[i]);
	}
	ASSERT_EQ(0, kg_policy_dump(&self->g, &all, &n));
	EXPECT_GE(self->g.n_dgrams, 2) TH_LOG("the dump fit in one read");
	TH_LOG("dump: %d policies in %d reads", n, self->g.n_dgrams);
	for (int k = 0; k < n; k++) {
		if (k) {
			EXPECT_LT(0, strcmp(all[k].name, all[k - 1].name))
				TH_LOG("not sorted: %s after %s", all[k].name, all[k - 1].name);
		}
		if (strncmp(all[k].name, P, strlen(P)))
			continue;
		ours++;
		for (int i = 0; i < NPOL; i++) {
			if (strcmp(names[i], all[k].name))
				continue;
			seen[i]++;
			EXPECT_EQ(i % 2, (int)all[k].mode);
			EXPECT_EQ(!(i % 5), (int)all[k].has_domain);
			break;
		}
	}
	EXPECT_EQ(NPOL, ours);
	for (int i = 0, bad = 0; i < NPOL && bad < 10; i++) {
		if (seen[i] == 1)
			continue;
		bad++;
		EXPECT_EQ(1, seen[i]) TH_LOG("%s seen %d times", names[i], seen[i]);
	}
	/* And the expected order is exactly byte order of our names. */
	for (int i = 0; i < NPOL; i++)
		sorted[i] = names[i];
	qsort(sorted, NPOL, sizeof(sorted[0]), cmp_str);
	for (int k = 0, i = 0; k < n && i < NPOL; k++) {
		if (strncmp(all[k].name, P, strlen(P)))
			continue;
		if (strcmp(sorted[i], all[k].name)) {
			/* Report the first difference only. */
			EXPECT_STREQ(sorted[i], all[k].name);
			break;
		}
		i++;
	}
	free(all);

	for (int i = 0; i < NPOL; i++)
		ASSERT_EQ(0, kg_policy_del(&self->g, names[i]));
	ASSERT_EQ(0, kg_policy_dump(&self->g, &all, &n));
	for (int k = 0; k < n; k++) {
		EXPECT_NE(0, strncmp(all[k].name, P, strlen(P)));
	}
	free(all);
}

KG_HARNESS_MAIN(KG_NEED_MODULE)
