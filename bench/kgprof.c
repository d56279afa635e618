// SPDX-License-Identifier: GPL-2.0
/*
 * kgprof: the QEMU TCG plugin of `BENCH_PROFILE=1 bench/run.sh`: guest
 * instructions per code address between the markers of bench/kgprof.h.
 *
 *   qemu-system-x86_64 ... -plugin kgprof.so,out=PREFIX
 *
 * Every guest instruction, when reached, adds 1 to a counter of its address
 * (inline: no call). A window (START .. STOP) records each counter's growth;
 * COMMIT writes the windows since BEGIN to PREFIX.<k> (k = 0, 1, ... per
 * commit) as
 *   window <w> <instructions> <idle events>
 *   <w> <instruction address, hex> <times run>
 * and bench/profile.py names the addresses by the guest's kallsyms.
 *
 * Counting per translation block instead (one add per block) is faster,
 * but a block is then counted whole even when it is cut short (by an
 * exception, or an I/O instruction under icount): measured, about 1
 * instruction per frame too many on the vhost paths. Per instruction, the
 * windows give the bench's timings exactly on the vhost and memslot runs;
 * an instruction that is reached but does not complete (a fault, or the
 * bench VM's vmmcall or out, intercepted) is counted here and not by
 * icount: kvmbench's hypercall and pio runs show 1 more a round trip.
 * "idle events" count the vCPU going idle inside a window: under icount
 * the clock then jumps, and the run's time is no longer its instructions.
 *
 * One vCPU only (-smp 1, as -icount needs): the counters are plain u64s.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgprof.h"
#include "qemu-plugin.h"

#define EXPORT __attribute__((visibility("default")))
#define HASH_BITS 16

EXPORT int qemu_plugin_version = 1;

/* The instruction(s) at one guest virtual address. */
struct site {
	uint64_t vaddr;
	uint64_t count;			/* times run since boot (inline add) */
	uint64_t base;			/* count at the open window's START */
	uint64_t win[KGPROF_MAX_WINDOWS]; /* growth in each closed window */
	struct site *next;		/* hash chain */
};

static struct site *hash[1u << HASH_BITS];
static struct site **sites;		/* all of them, for the window walks */
static size_t nsites, capsites;

static const char *prefix;
static unsigned int commits;
static int active;			/* a window is open */
static unsigned int nwin;		/* closed windows since BEGIN */
static uint64_t total[KGPROF_MAX_WINDOWS], idles[KGPROF_MAX_WINDOWS];
static int lost;			/* windows beyond KGPROF_MAX_WINDOWS */

static void *xalloc(void *p, size_t size)
{
	p = p ? realloc(p, size) : calloc(1, size);
	if (!p) {
		fprintf(stderr, "kgprof: out of memory\n");
		exit(1);
	}
	return p;
}

static struct site *site_of(uint64_t vaddr)
{
	unsigned int h = (unsigned int)((vaddr * 0x9e3779b97f4a7c15ull) >> (64 - HASH_BITS));
	struct site *s;

	for (s = hash[h]; s; s = s->next)
		if (s->vaddr == vaddr)
			return s;
	s = xalloc(NULL, sizeof(*s));
	s->vaddr = vaddr;
	s->next = hash[h];
	hash[h] = s;
	if (nsites == capsites) {
		capsites = capsites ? 2 * capsites : 1u << 16;
		sites = xalloc(sites, capsites * sizeof(*sites));
	}
	sites[nsites++] = s;
	return s;
}

static void commit(void)
{
	char name[4096];
	unsigned int w;
	size_t i;
	FILE *f;

	snprintf(name, sizeof(name), "%s.%u", prefix, commits++);
	f = fopen(name, "w");
	if (!f) {
		fprintf(stderr, "kgprof: %s: %s\n", name, strerror(errno));
		return;
	}
	if (lost)
		fprintf(f, "lost %d\n", lost);
	for (w = 0; w < nwin; w++)
		fprintf(f, "window %u %llu %llu\n", w, (unsigned long long)total[w],
			(unsigned long long)idles[w]);
	for (w = 0; w < nwin; w++)
		for (i = 0; i < nsites; i++)
			if (sites[i]->win[w])
				fprintf(f, "%u %llx %llu\n", w,
					(unsigned long long)sites[i]->vaddr,
					(unsigned long long)sites[i]->win[w]);
	if (fclose(f))
		fprintf(stderr, "kgprof: %s: %s\n", name, strerror(errno));
}

static void marker(unsigned int vcpu, void *udata)
{
	size_t i;

	(void)vcpu;
	switch ((uintptr_t)udata) {
	case KGPROF_BEGIN:
		active = 0;
		nwin = 0;
		lost = 0;
		break;
	case KGPROF_START:
		for (i = 0; i < nsites; i++)
			sites[i]->base = sites[i]->count;
		if (nwin < KGPROF_MAX_WINDOWS)
			idles[nwin] = 0;
		active = 1;
		break;
	case KGPROF_STOP:
		if (!active)
			break;
		active = 0;
		if (nwin == KGPROF_MAX_WINDOWS) {
			lost++;
			break;
		}
		total[nwin] = 0;
		for (i = 0; i < nsites; i++) {
			/* sites new since START have base 0 */
			sites[i]->win[nwin] = sites[i]->count - sites[i]->base;
			total[nwin] += sites[i]->win[nwin];
		}
		nwin++;
		break;
	case KGPROF_COMMIT:
		active = 0;
		commit();
		nwin = 0;
		lost = 0;
		break;
	}
}

static void idle(qemu_plugin_id_t id, unsigned int vcpu)
{
	(void)id;
	(void)vcpu;
	if (active && nwin < KGPROF_MAX_WINDOWS)
		idles[nwin]++;
}

/* "movl $(KGPROF_MAGIC | kind), %eax": b8 and the immediate, little-endian */
static unsigned int marker_kind(const struct qemu_plugin_insn *insn)
{
	const unsigned char *d = qemu_plugin_insn_data(insn);
	uint32_t imm;

	if (qemu_plugin_insn_size(insn) != 5 || d[0] != 0xb8)
		return 0;
	imm = d[1] | d[2] << 8 | d[3] << 16 | (uint32_t)d[4] << 24;
	if ((imm & ~0xffu) != KGPROF_MAGIC)
		return 0;
	return imm & 0xff;
}

static void translated(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t n = qemu_plugin_tb_n_insns(tb), i;

	(void)id;
	for (i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		struct site *s = site_of(qemu_plugin_insn_vaddr(insn));
		unsigned int kind = marker_kind(insn);

		qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
							   &s->count, 1);

		if (kind >= KGPROF_BEGIN && kind <= KGPROF_COMMIT)
			qemu_plugin_register_vcpu_insn_exec_cb(insn, marker,
							       QEMU_PLUGIN_CB_NO_REGS,
							       (void *)(uintptr_t)kind);
	}
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
			       int argc, char **argv)
{
	if (!info->system_emulation || info->system.smp_vcpus != 1) {
		fprintf(stderr, "kgprof: needs system emulation with -smp 1\n");
		return -1;
	}
	if (argc != 1 || strncmp(argv[0], "out=", 4) || !argv[0][4]) {
		fprintf(stderr, "kgprof: usage: -plugin kgprof.so,out=PREFIX\n");
		return -1;
	}
	prefix = argv[0] + 4;
	qemu_plugin_register_vcpu_tb_trans_cb(id, translated);
	qemu_plugin_register_vcpu_idle_cb(id, idle);
	return 0;
}
