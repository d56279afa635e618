# SPDX-License-Identifier: GPL-2.0
# kvmguard: build, check and test entry points.
#
#   make [all]            module (W=1, warnings are errors), CLI and selftests
#   make KDIR=<headers>   build the module against other kernel headers
#   make modules KVMGUARD_FAULTS=1 MODBUILD=<dir>
#                         test only: a module with failure injection (kmod/fault_inject.h)
#   make sparse           sparse (C=2) on the module; any warning fails
#   make checkpatch       checkpatch.pl --strict on kmod/ and uapi/; any report fails
#   make check [LANES=..] everything, plus the selftests in QEMU on each kernel lane
#                         (LANES="vmm-6.1 vmm-6.12": Debian's QEMU and Linux
#                         guests inside the test host, selftests/vmm/)
#   make demo             boot the 6.1 test host and show the CLI on a live KVM guest
#   make bench            instructions per KVM exit and memslot change, without/with kvmguard
#                         (bench/run.sh)
#   make profile          make bench, plus the instructions by function (BENCH_PROFILE=1)
#   make install          module, CLI and man page on this machine
#
# The module is built out of tree in $(MODBUILD) so kernels do not clobber each other.

TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
CACHE := $(TOP)/.cache

# Default: Debian 12's kernel headers (as prepared by scripts/kernels.sh, else the
# newest installed /usr/src/linux-headers-*-amd64).
KDIR ?= $(or $(shell sed -n 's/^KDIR=//p' $(CACHE)/kernels/6.1/env 2>/dev/null),\
	$(shell ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1))
MODBUILD ?= $(CACHE)/build/$(notdir $(KDIR))
W ?= 1
# Kernel headers sparse checks against (check.sh passes the 6.1 and 6.12 ones).
SPARSE_KDIRS ?= $(KDIR)
KSFT_DIR := $(CACHE)/ksft
CHECKPATCH := $(CACHE)/checkpatch/checkpatch.pl

# The release the module was built for, from its vermagic (Debian's headers say
# "6.1.192" in kernel.release, but the module directory is 6.1.0-56-amd64).
KREL = $(firstword $(shell modinfo -F vermagic $(MODBUILD)/kvmguard.ko 2>/dev/null))
DESTDIR ?=
PREFIX ?= /usr/local

# kbuild variables must not leak into the userspace/selftests makes.
unexport KDIR MODBUILD W C

.PHONY: all modules userspace selftests sparse checkpatch shellcheck check demo bench profile \
	install clean distclean ksft sparse-one FORCE

all: modules userspace selftests

# Mirror the module sources (Kbuild, kmod/, uapi/) into the build directory: old
# copies go first (Kbuild globs kmod/, so a deleted file must not linger), and cp -a
# keeps mtimes so kbuild still rebuilds only what changed.
module-sources = find kmod uapi -type f \( -name '*.[chS]' -o -name Kbuild -o -name Makefile \)
define sync-module-sources
	@test -n "$(KDIR)" && test -f "$(KDIR)/Makefile" || \
		{ echo "no kernel headers at KDIR='$(KDIR)'; run scripts/deps.sh or pass KDIR=" >&2; exit 1; }
	@mkdir -p $(1)
	@cd $(1) && { ! test -d kmod || $(module-sources) -delete; }
	@cd $(TOP) && cp -a --parents Kbuild $$($(module-sources)) $(1)/
endef

modules:
	$(call sync-module-sources,$(MODBUILD))
	$(MAKE) -C $(KDIR) M=$(MODBUILD) W=$(W) modules
ifeq ($(KVMGUARD_FAULTS),)
	@cp $(MODBUILD)/kvmguard.ko $(TOP)/kmod/kvmguard.ko
	@echo "module: kmod/kvmguard.ko (built in $(MODBUILD))"
else
	@echo "module with failure injection: $(MODBUILD)/kvmguard.ko"
endif

userspace:
	$(MAKE) -C $(TOP)/userspace all

$(KSFT_DIR)/kselftest_harness.h $(CHECKPATCH):
	$(TOP)/scripts/linux-source.sh

ksft: $(KSFT_DIR)/kselftest_harness.h

selftests: ksft
	$(MAKE) -C $(TOP)/selftests KSFT_DIR=$(KSFT_DIR)

# C=2 checks every file, built or not; sparse's own exit status ignores warnings,
# so its output is scanned instead.
sparse:
	@set -e; for k in $(SPARSE_KDIRS); do \
		b=$(CACHE)/build/sparse-$$(basename $$k); \
		$(MAKE) --no-print-directory sparse-one KDIR=$$k MODBUILD=$$b; \
	done

sparse-one:
	$(call sync-module-sources,$(MODBUILD))
	@echo "sparse: $(KDIR)"
	@$(MAKE) -s -C $(KDIR) M=$(MODBUILD) W=$(W) C=2 modules >$(MODBUILD)/sparse.log 2>&1 || \
		{ cat $(MODBUILD)/sparse.log; exit 1; }
	@if grep -E '(warning|error):' $(MODBUILD)/sparse.log; then \
		echo "sparse: FAILED against $(KDIR)" >&2; exit 1; fi

checkpatch: $(CHECKPATCH)
	@files=$$(cd $(TOP) && find kmod uapi -type f ! -name '*.o' ! -name '*.ko' \
		! -name '*.mod*' ! -name '.*' ! -name '*.symvers' ! -name modules.order | sort); \
	test -n "$$files" || { echo "checkpatch: no files under kmod/ uapi/" >&2; exit 1; }; \
	fail=0; for f in $$files; do \
		out=$$(cd $(TOP) && perl $(CHECKPATCH) --strict --no-tree --no-summary --terse \
			--show-types -f $$f 2>&1) || fail=1; \
		if printf '%s\n' "$$out" | grep -qE '(ERROR|WARNING|CHECK):'; then \
			printf '%s\n' "$$out"; fail=1; fi; \
	done; \
	if [ $$fail -ne 0 ]; then echo "checkpatch: FAILED"; exit 1; fi; \
	echo "checkpatch: $$(echo $$files | wc -w) files clean"

shellcheck:
	shellcheck -x $(TOP)/scripts/*.sh $(TOP)/bench/run.sh $(TOP)/.ci/run

# LANES=... picks lanes (default: 6.1 6.12 debug; also vmm-6.1 vmm-6.12).
check:
	$(TOP)/scripts/check.sh $(LANES)

demo:
	$(TOP)/scripts/demo.sh

bench:
	$(TOP)/bench/run.sh

profile:
	BENCH_PROFILE=1 $(TOP)/bench/run.sh

install: modules userspace
	@test "$(KREL)" = "$$(uname -r)" || echo "note: installing for $(KREL), running $$(uname -r)" >&2
	install -D -m 644 $(MODBUILD)/kvmguard.ko $(DESTDIR)/lib/modules/$(KREL)/extra/kvmguard.ko
	test -n "$(DESTDIR)" || depmod -a $(KREL)
	$(MAKE) -C $(TOP)/userspace install DESTDIR=$(DESTDIR) PREFIX=$(PREFIX)

clean:
	rm -rf $(CACHE)/build $(CACHE)/initramfs $(TOP)/kmod/kvmguard.ko
	-test ! -f $(TOP)/userspace/Makefile || $(MAKE) -C $(TOP)/userspace clean
	-test ! -f $(TOP)/selftests/Makefile || $(MAKE) -C $(TOP)/selftests clean

# Also drops the downloaded kernels and extracted sources (minutes to redo).
distclean: clean
	rm -rf $(CACHE)
