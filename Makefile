# vmgate — plain GNU make. `make`, `make check`, `make demo`, `make fuzz`, `make install`,
# `make clean`.
# Each top-level folder builds one static library; build/vmgate and the tests link them all.

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
BUILD   ?= build

WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wformat=2 -Wvla -Wno-unused-parameter
HARDEN   = -O2 -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fstack-clash-protection \
           -fcf-protection -fPIE
CFLAGS  ?= -g
CFLAGS  += -std=c17 -D_GNU_SOURCE $(WARN) $(HARDEN) -I. -MMD -MP
LDFLAGS += -pie -Wl,-z,relro,-z,now
LDLIBS   = -lev -lssl -lcrypto -lpam -lcrypt -lnftables -lz -lsystemd -lseccomp

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -U_FORTIFY_SOURCE
LDFLAGS += -fsanitize=address,undefined
endif

MODULES = gateway proxy auth firewall certs common
# gateway/main.c is the program; everything else is library code the tests link too.
define module_srcs
$(filter-out gateway/main.c,$(wildcard $(1)/*.c))
endef
LIBS = $(foreach m,proxy auth firewall certs gateway common,$(BUILD)/lib$(m).a)

all: $(BUILD)/vmgate

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

define module_rule
$(BUILD)/lib$(1).a: $(patsubst %.c,$(BUILD)/%.o,$(call module_srcs,$(1)))
	@echo "  AR      $$@"
	@rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach m,$(MODULES),$(eval $(call module_rule,$(m))))

# Libraries reference each other (gateway -> proxy -> auth -> common); the group resolves cycles.
LINKLIBS = -Wl,--start-group $(LIBS) -Wl,--end-group

$(BUILD)/vmgate: $(BUILD)/gateway/main.o $(LIBS)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $< $(LINKLIBS) $(LDLIBS)

# ---- unit tests (cmocka): one binary per tests/unit/test_*.c ----
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBS)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $< $(LINKLIBS) $(LDLIBS) -lcmocka

# test_web_wslay compares proxy/ws.c with libwslay (libwslay-dev, tests only).
$(BUILD)/tests/test_web_wslay: LDLIBS += -lwslay

# test_buf watches every block free() gets (the wipe before a block leaves).
$(BUILD)/tests/test_buf: LDFLAGS += -Wl,--wrap=free

# a PAM module for test_auth_pam's timing test (tests/pam/pam_slow.c)
$(BUILD)/tests/pam_slow.so: tests/pam/pam_slow.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) -std=c17 -D_GNU_SOURCE $(WARN) -O2 -fPIC -shared -o $@ $< -lpam

unit: $(UNIT_BINS) $(BUILD)/tests/pam_slow.so

# ---- test helpers written in C (raw RFB/VeNCrypt client for bad-input tests, pty driver) ----
TOOL_SRCS = $(wildcard tests/tools/*.c)
TOOL_BINS = $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRCS))
$(BUILD)/tools/%: $(BUILD)/tests/tools/%.o $(LIBS)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $< $(LINKLIBS) $(LDLIBS) -lutil
tools: $(TOOL_BINS)

deps:
	@scripts/deps.sh

check: deps
	@$(MAKE) --no-print-directory all unit tools
	@tests/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all tools
	@bench/all.sh

# login-to-first-frame for a running and a vmgate-paused VM (idle_pause), real QEMU
bench-wake:
	@$(MAKE) --no-print-directory all
	@nice bench/wake.sh

# The fuzzing campaign (not part of check): every tests/fuzz/fuzz_*.c built
# with clang -fsanitize=fuzzer,address,undefined, run one at a time under
# nice -n 19 until FUZZ_RUNS executions (default 10^7) or FUZZ_TIME seconds
# (default 1800) per target; FUZZ_TARGETS="clip qmp" picks some.  The
# corpora in tests/fuzz/corpus/ are merged (-merge=1) and written back.
fuzz:
	@BUILD=$(BUILD) tests/fuzz/campaign.sh

# Installs what the Debian package ships (debian/rules calls this with PREFIX=/usr):
# the binary in $(PREFIX)/bin (users run `vmgate console` over ssh), the man pages, the
# systemd unit (ExecStart pointed at $(BINDIR)), and, only when absent, the default
# config, the PAM service and the logrotate file for the audit trail (never overwriting an
# admin's files).
BINDIR         ?= $(PREFIX)/bin
MANDIR         ?= $(PREFIX)/share/man
SYSCONFDIR     ?= /etc
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
# vmgate's page for the browser console: web_dir's default, whatever PREFIX is (like
# SYSCONFDIR); installed elsewhere, set web_dir to match
WEBDIR         ?= /usr/share/vmgate/web
install: $(BUILD)/vmgate
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSCONFDIR)/vmgate $(DESTDIR)$(SYSCONFDIR)/pam.d \
	    $(DESTDIR)$(SYSCONFDIR)/logrotate.d
	install -m 0755 $(BUILD)/vmgate $(DESTDIR)$(BINDIR)/vmgate
	install -m 0644 docs/vmgate.8 $(DESTDIR)$(MANDIR)/man8/vmgate.8
	install -m 0644 docs/vmgate.conf.5 $(DESTDIR)$(MANDIR)/man5/vmgate.conf.5
	sed 's|/usr/bin/vmgate|$(BINDIR)/vmgate|g' dist/vmgate.service >$(DESTDIR)$(SYSTEMDUNITDIR)/vmgate.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/vmgate.service
	[ -e $(DESTDIR)$(SYSCONFDIR)/vmgate/vmgate.conf ] || \
	    install -m 0644 dist/vmgate.conf $(DESTDIR)$(SYSCONFDIR)/vmgate/vmgate.conf
	[ -e $(DESTDIR)$(SYSCONFDIR)/pam.d/vmgate ] || \
	    install -m 0644 dist/vmgate.pam $(DESTDIR)$(SYSCONFDIR)/pam.d/vmgate
	[ -e $(DESTDIR)$(SYSCONFDIR)/logrotate.d/vmgate ] || \
	    install -m 0644 dist/vmgate.logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/vmgate
	install -d $(DESTDIR)$(WEBDIR)
	install -m 0644 web/index.html web/vmgate.js web/vmgate.css $(DESTDIR)$(WEBDIR)/

# The Debian package (debian/): build/deb/vmgate_*.deb, built in a copy of the tree so
# the working tree and build/ stay as they are.  Needs debhelper (not in scripts/deps.sh's
# test set unless tests/integration/t71-deb.sh runs).
deb:
	@scripts/build-deb.sh $(BUILD)/deb

clean:
	rm -rf $(BUILD)

.PHONY: all unit tools deps check demo bench bench-wake fuzz install deb clean
.SECONDARY:
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
