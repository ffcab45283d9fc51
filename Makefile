# seriesweb — build, install, test and demo.
#
# `make demo` and `make test` are the two entry points of the README: each one
# installs what is missing (test/setup.sh), builds and installs the extension,
# and runs PostgreSQL as an unprivileged user (test/as-user.sh), because
# PostgreSQL refuses to run as root and CI runs as root.

EXTENSION  = seriesweb
# The version is the control file's default_version, written once there.
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)
MODULE_big = seriesweb
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
DATA       = $(sort $(wildcard sql/seriesweb--*.sql))
PG_CPPFLAGS = -I$(srcdir)/src -DSERIESWEB_VERSION='"$(EXTVERSION)"'
SHLIB_LINK  = -lcurl

# pg_regress suites, run against a throwaway instance (see check-regress).
REGRESS = schema validation matching templates filters testing guard limits privileges bad_input

# Debian's versioned pg_config first, so that a client-only pg_config on the
# PATH cannot pick the wrong server; override with PG_CONFIG=... for 13–17.
PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
else
all:
	@echo "seriesweb: PostgreSQL server headers not found ($(PG_CONFIG) --pgxs)." >&2
	@echo "Run 'make test' or 'make demo' (they install what is missing), or as root:" >&2
	@echo "  $$(sh test/setup.sh --print)" >&2
	@exit 1
endif

.PHONY: test demo deps check-unprivileged check-regress check-tap format format-check

# Install missing packages (apt as root; otherwise print the exact command).
deps:
	@sh test/setup.sh

# The README's test command: deps, build, install, then every suite as an
# unprivileged user against throwaway clusters.
test: deps
	@$(MAKE) --no-print-directory all
	@sh test/as-user.sh install-and-run check-unprivileged

# The README's demo command.
demo: deps
	@$(MAKE) --no-print-directory all
	@sh test/as-user.sh install-and-run demo-unprivileged

demo-unprivileged:
	@bash test/demo.sh

# Benchmarks (issue 5): not part of `make test`.  `make bench` (QUICK=1 for a
# one-minute smoke run) installs what is missing, runs test/bench/run.sh as an
# unprivileged user and writes test/bench/report.md here.
BENCH_DIR ?= /tmp/seriesweb-bench-tree
.PHONY: bench bench-unprivileged
bench:
	@SERIESWEB_EXTRA_PACKAGES="$${SERIESWEB_EXTRA_PACKAGES:-} nginx-light libnginx-mod-http-echo wrk curl" sh test/setup.sh
	@$(MAKE) --no-print-directory all
	@SERIESWEB_TEST_DIR='$(BENCH_DIR)' sh test/as-user.sh install-and-run bench-unprivileged QUICK='$(QUICK)' \
		BENCH_REVISION="$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$$(git --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' with local changes')"
	@if [ "$$(id -u)" -eq 0 ]; then cp '$(BENCH_DIR)/test/bench/report.md' test/bench/report.md; fi

bench-unprivileged:
	@QUICK='$(QUICK)' BENCH_REVISION='$(BENCH_REVISION)' PG_CONFIG='$(PG_CONFIG)' bash test/bench/run.sh

# Fuzzing (issue 4): `make fuzz` installs clang and libFuzzer if missing, then,
# as an unprivileged user in FUZZ_DIR, builds the harnesses of test/fuzz/ and
# runs each for FUZZ_SECONDS inside a single-user PostgreSQL (FUZZ_TARGETS
# picks some); a crash or sanitizer report fails it (test/fuzz/README.md).
FUZZ_DIR ?= /tmp/seriesweb-fuzz-tree
FUZZ_SECONDS ?= 60
.PHONY: fuzz fuzz-unprivileged
fuzz:
	@SERIESWEB_EXTRA_PACKAGES="$${SERIESWEB_EXTRA_PACKAGES:-} clang-14 libclang-rt-14-dev" sh test/setup.sh
	@$(MAKE) --no-print-directory all
	@SERIESWEB_TEST_DIR='$(FUZZ_DIR)' sh test/as-user.sh install-and-run fuzz-unprivileged \
		FUZZ_SECONDS='$(FUZZ_SECONDS)' FUZZ_TARGETS='$(FUZZ_TARGETS)'

fuzz-unprivileged:
	@$(MAKE) -s --no-print-directory -C test/fuzz run PG_CONFIG='$(PG_CONFIG)'

# Everything below runs as an unprivileged user with the extension installed.
# With SANITIZE=1 (`make test SANITIZE=1`), the same suites run against an
# ASan+UBSan build in a private copy of the server installation, and any
# sanitizer report fails them (test/sanitize/README.md).
ifeq ($(SANITIZE),1)
export SERIESWEB_EXTRA_PACKAGES += clang-14 libclang-rt-14-dev
check-unprivileged:
	@PG_CONFIG='$(PG_CONFIG)' sh test/sanitize/run.sh
else
check-unprivileged: check-regress check-tap
endif

check-regress:
	@mkdir -p tmp_check
	$(pg_regress_installcheck) $(REGRESS_OPTS) --temp-instance=./tmp_check/regress \
		--temp-config=test/regress.conf $(REGRESS)

check-tap:
	rm -rf tmp_check/log && mkdir -p tmp_check
	TESTDIR='$(CURDIR)' PATH="$(bindir):$$PATH" \
	PG_REGRESS='$(dir $(PGXS))../../src/test/regress/pg_regress' \
	$(PROVE) -I '$(dir $(PGXS))../../src/test/perl' -I test/lib $(PROVE_FLAGS) \
		$(if $(PROVE_TESTS),$(PROVE_TESTS),test/t/*.pl)

# C formatting: .clang-format (close to pgindent); CI runs format-check.
format:
	@SERIESWEB_EXTRA_PACKAGES=clang-format sh test/setup.sh
	clang-format -i src/*.c src/*.h

format-check:
	@SERIESWEB_EXTRA_PACKAGES=clang-format sh test/setup.sh
	@clang-format --dry-run --Werror src/*.c src/*.h && echo "seriesweb: src/ is formatted"

EXTRA_CLEAN = tmp_check results regression.diffs regression.out
