// SPDX-License-Identifier: GPL-2.0
/*
 * kg_ipmodify: a stand-in for a livepatch, for the livepatch selftest.
 *
 * It claims the functions named by its "func" parameter (comma-separated)
 * the way the livepatch core claims a function it patches
 * (kernel/livepatch/patch.c, klp_patch_func()): one ftrace_ops with
 * FTRACE_OPS_FL_IPMODIFY and FTRACE_OPS_FL_PERMANENT, and, where the
 * architecture has no DYNAMIC_FTRACE_WITH_ARGS, FTRACE_OPS_FL_SAVE_REGS
 * (x86 has it; save_regs=1 adds the flag anyway). Its handler leaves the
 * functions alone. Loading fails with ftrace's error: -EBUSY when another
 * IPMODIFY user, or a direct call that cannot share, holds a function;
 * -EINVAL when a function is unknown to ftrace.
 *
 *   insmod kg_ipmodify.ko func=NAME[,NAME...] [save_regs=1]
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#include <linux/ftrace.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>

static char *func;
module_param(func, charp, 0444);
MODULE_PARM_DESC(func, "functions to claim, comma-separated");

static bool save_regs;
module_param(save_regs, bool, 0444);
MODULE_PARM_DESC(save_regs, "claim with FTRACE_OPS_FL_SAVE_REGS too");

static void notrace kg_ipmodify_handler(unsigned long ip,
					unsigned long parent_ip,
					struct ftrace_ops *op,
					struct ftrace_regs *fregs)
{
}

static struct ftrace_ops kg_ipmodify_ops = {
	.func = kg_ipmodify_handler,
	.flags = FTRACE_OPS_FL_IPMODIFY | FTRACE_OPS_FL_PERMANENT,
};

static int __init kg_ipmodify_init(void)
{
	char *names, *cur, *name;
	int err = -EINVAL;

	if (!func || !*func)
		return -EINVAL;
	/* ftrace's parser may write into the pattern: a copy of ours. */
	names = kstrdup(func, GFP_KERNEL);
	if (!names)
		return -ENOMEM;
	cur = names;
	while ((name = strsep(&cur, ","))) {
		if (!*name)
			continue;
		err = ftrace_set_filter(&kg_ipmodify_ops, (unsigned char *)name,
					strlen(name), 0);
		if (err) {
			pr_info("%s: not a function ftrace knows: %d\n", name, err);
			goto out;
		}
	}
	if (err)
		goto out;
	if (save_regs)
		kg_ipmodify_ops.flags |= FTRACE_OPS_FL_SAVE_REGS;
	err = register_ftrace_function(&kg_ipmodify_ops);
	if (err)
		pr_info("%s: cannot claim: %d\n", func, err);
	else
		pr_info("%s: claimed\n", func);
out:
	if (err)
		ftrace_free_filter(&kg_ipmodify_ops);
	kfree(names);
	return err;
}

static void __exit kg_ipmodify_exit(void)
{
	unregister_ftrace_function(&kg_ipmodify_ops);
	ftrace_free_filter(&kg_ipmodify_ops);
	pr_info("%s: released\n", func);
}

module_init(kg_ipmodify_init);
module_exit(kg_ipmodify_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kvmguard selftests: claims functions as a livepatch does");
