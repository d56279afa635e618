// SPDX-License-Identifier: GPL-2.0
/*
 * net_rmmod: the module unloaded while frames flow. VMs A and B have tag
 * 100 on the flat bridge of net_tags; a thread plays A's guest sending a
 * broadcast every 2 ms while the test reads what reaches the uplink and B.
 * The uplink sees VLAN 100 until rmmod, untagged frames after it (the
 * hooks are gone with the module), and still untagged ones after the
 * module is loaded again (a new module knows no binding); B receives
 * throughout. rmmod must not fail or hang, and nothing may oops (the
 * kernel log is checked by the harness around the suite).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "hcg.h"
#include "kg.h"
#include "memg.h"
#include "netg.h"

#define WANT	20	/* frames of each kind per phase */
#define A	0
#define B	1

FIXTURE(rm) {
	struct netg_lab l;
	pthread_t sender;
	bool running;
	atomic_bool stop;
	atomic_uint sent, errors;
};

static void *send_loop(void *arg)
{
	FIXTURE_DATA(rm) *self = arg;
	uint32_t seq = 0;

	while (!atomic_load(&self->stop)) {
		if (netg_send_test(&self->l.t.port[A], netg_bcast, A, NULL, 0, seq++))
			atomic_fetch_add(&self->errors, 1);
		else
			atomic_fetch_add(&self->sent, 1);
		usleep(2000);
	}
	return NULL;
}

FIXTURE_SETUP(rm)
{
	ASSERT_EQ(0, netg_lab_up(&self->l, 0, 2, NULL));
	ASSERT_EQ(0, netg_policy_new(&self->l.g, NETG_POLICY "100", .tag = 100));
	ASSERT_EQ(0, netg_lab_vm(&self->l, A, NETG_POLICY "100"));
	ASSERT_EQ(0, netg_lab_vm(&self->l, B, NETG_POLICY "100"));
}

FIXTURE_TEARDOWN(rm)
{
	if (self->running) {
		atomic_store(&self->stop, true);
		pthread_join(self->sender, NULL);
	}
	kg_ensure_loaded();
	/* The netlink sockets may predate the module loaded now. */
	gnl_close(&self->l.g);
	kg_open(&self->l.g);
	netg_lab_down(&self->l);
}

/* Frames at the uplink and at B until @want untagged (@vid 0) or VID @vid
 * ones came at the uplink and @want at B, or 10 s. */
struct tally {
	int tagged, untagged, other, at_b;
};

static void watch(FIXTURE_DATA(rm) *self, int vid, struct tally *t)
{
	struct timespec t0, now;

	memset(t, 0, sizeof(*t));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		struct netg_pkt p;

		if (netg_collect(self->l.t.up[NETG_UP_ALL], 1, 50, &p, 1) == 1) {
			if (!p.ntags)
				t->untagged++;
			else if (p.ntags == 1 && (p.tags[0].tci & 0xfff) == vid)
				t->tagged++;
			else
				t->other++;
		}
		t->at_b += netg_collect(self->l.t.port[B].fd, 0, 1, NULL, 0);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (((vid ? t->tagged : t->untagged) < WANT || t->at_b < WANT) &&
		 now.tv_sec - t0.tv_sec < 10);
}

TEST_F_TIMEOUT(rm, unload_under_traffic, 90)
{
	struct kg_vm *vms;
	struct tally t;
	int err, n;

	if (!getenv("KVMGUARD_KO"))
		SKIP(return, "KVMGUARD_KO not set: cannot load the module again");
	ASSERT_EQ(0, pthread_create(&self->sender, NULL, send_loop, self));
	self->running = true;

	watch(self, 100, &t);
	EXPECT_LE(WANT, t.tagged);
	EXPECT_EQ(0, t.untagged) TH_LOG("untagged frames while bound");
	EXPECT_LE(WANT, t.at_b);

	err = kg_rmmod();
	ASSERT_EQ(0, err) TH_LOG("rmmod: %s", strerror(-err));
	ASSERT_FALSE(kg_module_loaded());
	/* Frames still in flight may be tagged; then untagged only. */
	watch(self, 0, &t);
	EXPECT_LE(WANT, t.untagged) TH_LOG("%d tagged, %d other", t.tagged, t.other);
	EXPECT_LE(WANT, t.at_b);
	watch(self, 0, &t);
	EXPECT_EQ(0, t.tagged);
	EXPECT_LE(WANT, t.untagged);

	err = kg_insmod();
	ASSERT_EQ(0, err) TH_LOG("insmod: %s", strerror(-err));
	gnl_close(&self->l.g);
	ASSERT_EQ(0, kg_open(&self->l.g));
	watch(self, 0, &t);
	EXPECT_EQ(0, t.tagged);
	EXPECT_LE(WANT, t.untagged);
	EXPECT_LE(WANT, t.at_b);

	/* The VMs are found again, with no device bound. */
	ASSERT_EQ(0, kg_vms_of_pid(&self->l.g, getpid(), &vms, &n));
	EXPECT_EQ(2, n);
	for (int i = 0; i < n; i++)
		EXPECT_EQ(0, netg_devs(&self->l.g, vms[i].id, NULL, 0));
	free(vms);
	atomic_store(&self->stop, true);
	pthread_join(self->sender, NULL);
	self->running = false;
	EXPECT_EQ(0U, atomic_load(&self->errors));
	TH_LOG("%u frames sent", atomic_load(&self->sent));
}

NETG_HARNESS_MAIN
