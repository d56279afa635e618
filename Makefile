# SPDX-License-Identifier: GPL-2.0
# kvmguard: build, check and test entry points.
#
#   make [all]            module (W=1, warnings are errors), CLI and selftests, against
#                         the running kernel's headers (/lib/modules/$(uname -r)/build)
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
#   make install          module, CLI, man page, systemd unit and example config
#   make uninstall        removes what make install put there (a config that was
#                         edited stays); both take DESTDIR=, PREFIX=, KREL=
#   make packaging-check  make install/uninstall into a scratch DESTDIR leave nothing,
#                         the unit passes systemd-analyze verify, the example config
#                         applies as a no-op (part of make check; no QEMU)
#   make install-dkms-src the module sources and dkms.conf in
#                         $(DESTDIR)/usr/src/kvmguard-$(VERSION), for dkms add/build/install
#   make deb              the Debian packages kvmguard and kvmguard-dkms (.cache/deb/)
#   make shell            a root shell in the 6.1 test host, module loaded, CLI there
#
# The module is built out of tree in $(MODBUILD) so kernels do not clobber each other.

TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
CACHE := $(TOP)/.cache

# Kernel headers, as for any out-of-tree module: KDIR= if given, else the running
# kernel's (/lib/modules/$(uname -r)/build), else Debian 12's 6.1 headers (the
# test host's kernel, as prepared by scripts/kernels.sh, else the newest installed
# /usr/src/linux-headers-*-amd64), with a note saying so.
KRUNNING := $(shell uname -r)
ifeq ($(origin KDIR),undefined)
ifneq ($(wildcard /lib/modules/$(KRUNNING)/build/Makefile),)
KDIR := /lib/modules/$(KRUNNING)/build
KDIR_WHY :=
else
KDIR := $(or $(shell sed -n 's/^KDIR=//p' $(CACHE)/kernels/6.1/env 2>/dev/null),\
	$(shell ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1))
KDIR_WHY := no headers for the running kernel $(KRUNNING) (/lib/modules/$(KRUNNING)/build)
endif
endif
# One build directory per set of headers (the real name of .../build symlinks).
MODBUILD ?= $(CACHE)/build/$(notdir $(or $(realpath $(KDIR)),$(KDIR)))
W ?= 1
# Kernel headers sparse checks against (check.sh passes the 6.1 and 6.12 ones).
SPARSE_KDIRS ?= $(KDIR)
KSFT_DIR := $(CACHE)/ksft
CHECKPATCH := $(CACHE)/checkpatch/checkpatch.pl

# The release the module was built for, from its vermagic (Debian's headers say
# "6.1.192" in kernel.release, but the module directory is 6.1.0-56-amd64).
KREL = $(firstword $(shell modinfo -F vermagic $(MODBUILD)/kvmguard.ko 2>/dev/null))
# uninstall needs no build: the built module's release if there is one, else the
# running kernel's.
KREL_ANY = $(or $(KREL),$(KRUNNING))
DESTDIR ?=
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
# The release (kvmguard --version, modinfo's version:, dkms.conf, debian/changelog).
VERSION := $(shell cat $(TOP)/VERSION)
# What a DKMS package or /usr/src/kvmguard-VERSION holds: the module sources only.
DKMS_SRC := dkms.conf Kbuild VERSION

# kbuild variables must not leak into the userspace/selftests makes.
unexport KDIR MODBUILD W C

.PHONY: all modules userspace selftests sparse checkpatch shellcheck check demo bench profile \
	install install-module install-cli install-dkms-src uninstall uninstall-module \
	uninstall-cli packaging-check deb shell clean distclean ksft sparse-one FORCE

all: modules userspace selftests

# Mirror the module sources (Kbuild, VERSION, kmod/, uapi/) into the build
# directory: copies of files that are gone go first (Kbuild globs kmod/, so a
# deleted file must not linger), the generated kmod/offsets.h stays, and cp -a
# keeps mtimes, so kbuild rebuilds only what changed (and nothing when nothing did).
module-sources = find kmod uapi -type f \( -name '*.[chS]' -o -name Kbuild -o -name Makefile \)
define sync-module-sources
	@test -n "$(KDIR)" && test -f "$(KDIR)/Makefile" || \
		{ echo "no kernel headers at KDIR='$(KDIR)'; install linux-headers-$(KRUNNING)," \
			"run scripts/deps.sh (Debian 12's 6.1) or pass KDIR=" >&2; exit 1; }
	@mkdir -p $(1)
	@cd $(1) && { ! test -d kmod || $(module-sources) ! -path kmod/offsets.h | \
		while read -r f; do test -e "$(TOP)/$$f" || rm -f "$$f"; done; }
	@cd $(TOP) && cp -a --parents Kbuild VERSION $$($(module-sources)) $(1)/
endef
modules:
ifneq ($(KDIR_WHY),)
	@echo "note: $(KDIR_WHY): building against $(KDIR) (Debian 12's 6.1," \
		"the test host's kernel); pass KDIR=<headers> for another kernel" >&2
endif
	$(call sync-module-sources,$(MODBUILD))
	$(MAKE) -C $(KDIR) M=$(MODBUILD) W=$(W) modules
ifeq ($(KVMGUARD_FAULTS),)
	@cmp -s $(MODBUILD)/kvmguard.ko $(TOP)/kmod/kvmguard.ko || \
		cp -p $(MODBUILD)/kvmguard.ko $(TOP)/kmod/kvmguard.ko
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

install: install-module install-cli

uninstall: uninstall-module uninstall-cli

# KREL= picks the /lib/modules/<release> (default: the one the module was built for).
install-module: modules
	@test "$(KREL)" = "$(KRUNNING)" || echo "note: installing for $(KREL), running $(KRUNNING)" >&2
	install -D -m 644 $(MODBUILD)/kvmguard.ko $(DESTDIR)/lib/modules/$(KREL)/extra/kvmguard.ko
	test -n "$(DESTDIR)" || depmod -a $(KREL)

# The CLI, its man page, the unit (its paths follow SBINDIR and SYSCONFDIR) and
# the example config, which never replaces an existing one.
install-cli: userspace
	$(MAKE) -C $(TOP)/userspace install DESTDIR=$(DESTDIR) SBINDIR=$(SBINDIR) MANDIR=$(MANDIR)
	install -d $(DESTDIR)$(UNITDIR)
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		$(TOP)/systemd/kvmguard.service >$(DESTDIR)$(UNITDIR)/kvmguard.service
	chmod 644 $(DESTDIR)$(UNITDIR)/kvmguard.service
	test -e $(DESTDIR)$(SYSCONFDIR)/kvmguard.conf || \
		install -D -m 644 $(TOP)/etc/kvmguard.conf $(DESTDIR)$(SYSCONFDIR)/kvmguard.conf

# The module sources as DKMS wants them: $(DESTDIR)/usr/src/kvmguard-$(VERSION).
install-dkms-src:
	@test "$$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' $(TOP)/dkms.conf)" = "$(VERSION)" || \
		{ echo "dkms.conf's PACKAGE_VERSION is not VERSION ($(VERSION))" >&2; exit 1; }
	install -d $(DESTDIR)/usr/src/kvmguard-$(VERSION)
	cd $(TOP) && cp -a --parents $(DKMS_SRC) $$($(module-sources) ! -name offsets.h) \
		$(DESTDIR)/usr/src/kvmguard-$(VERSION)/

# With DESTDIR: remove these directories and their parents below DESTDIR while empty.
define prune-dirs
	@test -z "$(DESTDIR)" || for d in $(1); do \
		while [ "$${d#$(DESTDIR)/}" != "$$d" ] && rmdir "$$d" 2>/dev/null; do \
			d=$${d%/*}; done; done
endef

# Exactly what install put there; directories it made stay only when something
# else is in them. An edited /etc/kvmguard.conf stays (removed only when it is
# still the example).
uninstall-module:
	rm -f $(DESTDIR)/lib/modules/$(KREL_ANY)/extra/kvmguard.ko
	test -n "$(DESTDIR)" || ! test -d /lib/modules/$(KREL_ANY) || depmod -a $(KREL_ANY)
	$(call prune-dirs,$(DESTDIR)/lib/modules/$(KREL_ANY)/extra)

uninstall-cli:
	rm -f $(DESTDIR)$(SBINDIR)/kvmguard $(DESTDIR)$(MANDIR)/man8/kvmguard.8 \
		$(DESTDIR)$(UNITDIR)/kvmguard.service
	! cmp -s $(TOP)/etc/kvmguard.conf $(DESTDIR)$(SYSCONFDIR)/kvmguard.conf || \
		rm -f $(DESTDIR)$(SYSCONFDIR)/kvmguard.conf
	test ! -e $(DESTDIR)$(SYSCONFDIR)/kvmguard.conf || \
		echo "note: $(DESTDIR)$(SYSCONFDIR)/kvmguard.conf was edited: kept" >&2
	$(call prune-dirs,$(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR))

packaging-check: userspace
	$(MAKE) -C $(TOP)/userspace tests/kvmguard-test
	$(TOP)/scripts/packaging-check.sh

# The Debian packages, built as on a Debian 12 machine (installs the build
# dependencies with apt when run as root).
deb:
	$(TOP)/scripts/deb.sh

shell:
	$(TOP)/scripts/shell.sh

clean:
	rm -rf $(CACHE)/build $(CACHE)/initramfs $(TOP)/kmod/kvmguard.ko
	-test ! -f $(TOP)/userspace/Makefile || $(MAKE) -C $(TOP)/userspace clean
	-test ! -f $(TOP)/selftests/Makefile || $(MAKE) -C $(TOP)/selftests clean

# Also drops the downloaded kernels and extracted sources (minutes to redo).
distclean: clean
	rm -rf $(CACHE)
