# seriesweb — build, install, test and demo.
#
# `make demo` and `make test` are the two entry points of the README: each one
# installs what is missing (test/setup.sh), builds and installs the extension,
# and runs PostgreSQL as an unprivileged user (test/as-user.sh), because
# PostgreSQL refuses to run as root and CI runs as root.

EXTENSION  = seriesweb
EXTVERSION = 0.1
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

# Everything below runs as an unprivileged user with the extension installed.
check-unprivileged: check-regress check-tap

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
