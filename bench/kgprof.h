/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Profile markers of `make bench`, for bench/kgprof.c (the QEMU plugin that
 * BENCH_PROFILE=1 loads) in the measuring programs kvmbench and vhostbench.
 *
 * A marker is one "movl $imm32, %eax" whose immediate (KGPROF_MAGIC | kind)
 * nothing else uses, so the plugin recognises it while translating. To the
 * test host it is an ordinary instruction that clobbers %eax (declared), and
 * the markers sit outside the timed parts of a run: the bench's numbers do
 * not change with or without the plugin.
 *
 * A program marks, in order:
 *   BEGIN          before its warm-up: drop any windows a failed run of
 *                  another program left uncommitted
 *   START, STOP    around each timed run (kgprof_window()): one window each
 *   COMMIT         after every check passed, just before it prints its
 *                  result: the plugin writes this run's windows to a file
 * so the plugin writes one file per successful run, in the order of the
 * BENCH lines of the console (bench/profile.py relies on it).
 */
#ifndef KGPROF_H
#define KGPROF_H

#include <stdint.h>

#define KGPROF_MAGIC	0x4b474d00u	/* "KGM" */
#define KGPROF_BEGIN	1
#define KGPROF_START	2
#define KGPROF_STOP	3
#define KGPROF_COMMIT	4
#define KGPROF_MAX_WINDOWS 4		/* per committed run */

/* A macro: the immediate must be a constant at any optimisation level. */
#define KGPROF_MARK(kind) \
	__asm__ volatile("movl %0, %%eax" : : "i" (KGPROF_MAGIC | (kind)) : "eax")

/* One timed run of @n iterations, as a profile window. */
static inline int64_t kgprof_window(int64_t (*run)(uint32_t), uint32_t n)
{
	int64_t t;

	KGPROF_MARK(KGPROF_START);
	t = run(n);
	KGPROF_MARK(KGPROF_STOP);
	return t;
}

#endif
